"""PATSTAT Global CSV exports (stclusters.sources.patstat): layout, assembly, accounting,
hostile input, and the same ranking as a generic table of the same records.

The fixture ``tests/fixtures/patstat/`` is SYNTHETIC (``benchmarks/bulk/patstat.py``,
``n_rows=300, seed=0``): PATSTAT is licensed, so no real rows exist to copy (formats.md §4).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import re
import shutil
import zipfile
from collections import defaultdict
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

import stclusters
from stclusters import contributions as contrib
from stclusters import store
from stclusters.errors import InputFormatError
from stclusters.geocode._address import parse_address
from stclusters.params import RankParams
from stclusters.sources import patstat
from stclusters.sources._quarantine import Quarantine

FIXTURE = Path(__file__).parent / "fixtures" / "patstat"
FILES = sorted(FIXTURE.glob("*.zip"))

# Column names and order of the 2020 Autumn tables, copied from formats.md §3.2–3.6 (sources
# [O]: the EPO create scripts createtls2*.sql) — written out here, apart from the generator,
# so that the fixture is checked against the spec and not against itself.
SPEC_COLUMNS = {
    "tls201": "appln_id appln_auth appln_nr appln_kind appln_filing_date appln_filing_year "
              "appln_nr_epodoc appln_nr_original ipr_type receiving_office internat_appln_id "
              "int_phase reg_phase nat_phase earliest_filing_date earliest_filing_year "
              "earliest_filing_id earliest_publn_date earliest_publn_year "
              "earliest_pat_publn_id granted docdb_family_id inpadoc_family_id "
              "docdb_family_size nb_citing_docdb_fam nb_applicants nb_inventors",
    "tls206": "person_id person_name person_name_orig_lg person_address person_ctry_code nuts "
              "nuts_level doc_std_name_id doc_std_name psn_id psn_name psn_level psn_sector "
              "han_id han_name han_harmonized",
    "tls207": "person_id appln_id applt_seq_nr invt_seq_nr",
    "tls209": "appln_id ipc_class_symbol ipc_class_level ipc_version ipc_value ipc_position "
              "ipc_gener_auth",
    "tls226": "person_orig_id person_id source source_version name_freeform "
              "person_name_orig_lg last_name first_name middle_name address_freeform "
              "address_1 address_2 address_3 address_4 address_5 street city zip_code state "
              "person_ctry_code residence_ctry_code role",
}
# Numeric and date columns (bare in the export, formats.md §3.1); all others are strings.
NUMERIC = {"appln_id", "appln_filing_date", "appln_filing_year", "internat_appln_id",
           "earliest_filing_date", "earliest_filing_year", "earliest_filing_id",
           "earliest_publn_date", "earliest_publn_year", "earliest_pat_publn_id",
           "docdb_family_id", "inpadoc_family_id", "docdb_family_size", "nb_citing_docdb_fam",
           "nb_applicants", "nb_inventors", "person_id", "nuts_level", "doc_std_name_id",
           "psn_id", "psn_level", "han_id", "han_harmonized", "applt_seq_nr", "invt_seq_nr",
           "ipc_version", "person_orig_id"}


def _member(path: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(path) as z:
        (name,) = z.namelist()
        return name, z.read(name)


_CELL = re.compile(r'"[^"]*"|[^,"]*')


def _raw_cells(line: str) -> list[str]:
    """The cells of one CSV line as written (quotes kept): a quoted string or bare text."""
    cells, pos = [], 0
    while True:
        m = _CELL.match(line, pos)
        cells.append(m.group())
        pos = m.end()
        if pos >= len(line) or line[pos] != ",":
            return cells
        pos += 1


def _rows(path: Path) -> list[dict[str, str]]:
    _, data = _member(path)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


# ----------------------------------------------------------------------------- names, layout
@pytest.mark.parametrize("name, table", [
    ("tls201_part01.zip", "tls201"), ("tls201_part03.csv", "tls201"),
    ("tls207_pers_appln_part01.csv", "tls207"), ("tls201_appln_part02.csv.gz", "tls201"),
    ("TLS206_PART02.ZIP", "tls206"), ("tls226_person_orig.csv", "tls226"),
    ("tls209_part01.zip", "tls209"),
    ("tls211_part01.zip", None), ("tls2011_part01.zip", None), ("g_patent.tsv.zip", None),
    ("tls201_part01.zip.bak", None), ("my_tls201_part01.zip", None),
])
def test_table_of_file_names(name, table):
    assert patstat.table_of(Path("/some/where") / name) == table


@pytest.mark.parametrize("name, table", [
    ("tls211_part01.zip", "tls211"), ("tls904_nuts.csv", "tls904"),
    ("tls201_part01.zip", None), ("g_patent.tsv.zip", None), ("readme.txt", None),
])
def test_other_patstat_tables_are_told_apart(name, table):
    assert patstat.other_table(Path(name)) == table


def test_fixture_follows_the_published_layout():
    """formats.md §3.1 [N]: per-table zips tlsNNN_partNN.zip holding tlsNNN_partNN.csv;
    one header of bare names (order of [O]); UTF-8, CR/LF; strings in double quotes with no
    quote inside, numbers and dates bare; §3.5: the IPC symbol's "/" is its 9th character."""
    assert {patstat.table_of(f) for f in FILES} == set(SPEC_COLUMNS)
    assert any(f.name == "tls201_part02.zip" for f in FILES)  # large tables come in parts
    for f in FILES:
        member, data = _member(f)
        assert member == f.name.replace(".zip", ".csv")
        text = data.decode("utf-8")
        lines = text.split("\r\n")
        assert lines[-1] == "" and "\n" not in "".join(lines)  # CR/LF only
        header = lines[0].split(",")
        assert header == SPEC_COLUMNS[patstat.table_of(f)].split()
        for line in lines[1:-1]:
            cells = _raw_cells(line)
            assert ",".join(cells) == line and len(cells) == len(header), line
            for col, cell in zip(header, cells):
                if col in NUMERIC:
                    assert cell and '"' not in cell, (f.name, col, cell)
                else:
                    assert cell.startswith('"') and cell.endswith('"') and len(cell) >= 2, (f.name, col, cell)
                    assert '"' not in cell[1:-1]
        if patstat.table_of(f) == "tls209":
            for row in _rows(f):
                assert row["ipc_class_symbol"][8] == "/", row["ipc_class_symbol"]


def test_fixture_is_what_the_generator_writes(tmp_path):
    from benchmarks.bulk.patstat import generate

    written = generate(tmp_path, n_rows=300, seed=0)
    assert [p.name for p in written] == [f.name for f in FILES]
    for p in written:
        assert p.read_bytes() == (FIXTURE / p.name).read_bytes(), p.name


# -------------------------------------------------------------------------- staging helpers
def _stage_all(files, *, con=None, first_id: int = 0):
    con = con or store.connect()
    q = Quarantine()
    read = {}
    for i, f in enumerate(files, start=first_id):
        read[i] = patstat.stage(con, f, input_id=i, quarantine=q)
    return con, q, read


def _sorted_rows(con, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


_CONTRIB_COLS = ("doc_id, source, year, contributor_seq, address_seq, city, admin1, country, "
                 "postcode, address_raw, applicant, tech_field, doc_type")


# ------------------------------------------------------------------------------ the oracle
def _expected_rows() -> list[dict[str, object]]:
    """The contributions of the fixture, read with Python's csv module and the documented
    rules (docs/inputs.md, PATSTAT), apart from the reader's SQL."""
    tables = defaultdict(list)
    for f in FILES:
        tables[patstat.table_of(f)].extend(_rows(f))
    apps = {int(r["appln_id"]): r for r in tables["tls201"]}
    pct = {i: r for i, r in apps.items() if r["appln_kind"] == "W" and 0 < i <= 900_000_000
           and r["earliest_publn_year"] != "9999"}
    persons = {int(r["person_id"]): r for r in tables["tls206"]}
    origs = {}
    for r in tables["tls226"]:
        origs.setdefault(int(r["person_id"]), r)
    ipc = {}
    for r in tables["tls209"]:
        if r["ipc_value"] == "I":
            ipc.setdefault(int(r["appln_id"]), r["ipc_class_symbol"].replace(" ", "")[:4])
    applicant = {}
    inventors = defaultdict(list)
    for r in tables["tls207"]:
        a, p = int(r["appln_id"]), int(r["person_id"])
        if int(r["applt_seq_nr"]) > 0:
            applicant[a] = persons[p]["person_name"]
        if int(r["invt_seq_nr"]) > 0 and a in pct and p not in {q for _, q in inventors[a]}:
            inventors[a].append((int(r["invt_seq_nr"]), p))  # a person is one inventor
    out = []
    for a, links in inventors.items():
        for seq, (_, p) in enumerate(sorted(links)):
            person = persons[p]
            address = person["person_address"].replace(" \\n ", ", ") or None
            orig = origs.get(p) if address is None else None
            if orig is not None:
                address = orig["address_freeform"] or None
            ctry = person["person_ctry_code"] or None
            parsed = parse_address(address, ctry)
            city = (orig["city"] or None) if orig is not None else None
            code = (orig["zip_code"] or None) if orig is not None else None
            out.append({"doc_id": f"patstat:{a}", "source": "patent",
                        "year": int(pct[a]["earliest_publn_year"]), "contributor_seq": seq,
                        "address_seq": 0, "city": city or parsed.city,
                        "admin1": parsed.admin1, "country": ctry or parsed.country,
                        "postcode": code or parsed.postcode, "address_raw": address,
                        "applicant": applicant.get(a), "tech_field": ipc.get(a),
                        "doc_type": "utility"})
    return out


def test_assembly_gives_the_documented_contributions():
    con, q, _ = _stage_all(FILES)
    patstat.assemble(con)
    got = _sorted_rows(con, f"SELECT {_CONTRIB_COLS} FROM raw_contributions")
    want = sorted((tuple(r.values()) for r in _expected_rows()), key=repr)
    assert len(want) > 100
    assert got == want
    docs = con.execute("SELECT count(*), sum(n_contributors) FROM documents").fetchall()[0]
    assert docs == (len({r[0] for r in want}), len(want))
    assert q.count == 0


_PARAMS = RankParams().with_source("patent", min_weight=1.0)


@pytest.fixture(scope="module")
def ranked():
    """The fixture folder ranked end to end (one run shared by the tests below)."""
    return stclusters.rank([FIXTURE], params=_PARAMS)


def test_same_ranking_as_a_generic_table_of_the_same_records(tmp_path, ranked):
    """The key test: the PATSTAT bundle and a contributions table of the same records (the
    oracle's rows) rank the same, end to end."""
    table = tmp_path / "same_records.csv"
    rows = _expected_rows()
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ours = ranked
    generic = stclusters.rank([table], params=_PARAMS)
    assert ours.ranking.num_rows > 0
    assert ours.ranking.equals(generic.ranking)
    cols = ["doc_id", "contributor_seq", "lat", "lon", "precision", "country", "status", "weight"]
    order = [("doc_id", "ascending"), ("contributor_seq", "ascending")]
    a = ours.table("contributions").select(cols).sort_by(order)
    b = generic.table("contributions").select(cols).sort_by(order)
    assert a.equals(b)
    assert ours.manifest["world_totals"] == generic.manifest["world_totals"]


# ----------------------------------------------------------------------------- accounting
@functools.cache
def _geocoder():
    from stclusters.geocode import Geocoder

    return Geocoder.load()


def _counted(con) -> None:
    contrib.locate(con, _geocoder)
    contrib.count_fractional(con, RankParams())


def test_every_staged_row_is_accounted_for_per_file():
    con, q, read = _stage_all(FILES)
    patstat.assemble(con)
    _counted(con)
    staged = defaultdict(int)
    statuses = defaultdict(lambda: defaultdict(int))
    for input_id, source, status, n in patstat.status_counts(con):
        staged[input_id] += n
        statuses[FILES[input_id].name][status] += n
    quarantined = dict(con.execute("SELECT input_id, count(*) FROM quarantine GROUP BY 1").fetchall())
    for i in read:
        assert read[i] == staged[i] + quarantined.get(i, 0) + 0, FILES[i].name
    by = {name.split("_")[0]: s for name, s in statuses.items()}
    assert by["tls207"][patstat.NOT_INVENTOR] > 0 and by["tls207"][patstat.NOT_PCT] > 0
    assert by["tls207"]["used"] > 0
    t201 = defaultdict(int)
    for name, s in statuses.items():
        if name.startswith("tls201"):
            for k, v in s.items():
                t201[k] += v
    assert {"used", patstat.NOT_PCT, "not published", "artificial application",
            "dummy application (appln_id 0)"} <= set(t201)
    assert set(statuses["tls226_part01.zip"]) <= {"used", "not used", "not referenced"}
    assert statuses["tls226_part01.zip"]["used"] > 0
    assert statuses["tls209_part01.zip"]["used"] > 0


def test_rank_accounting_balances_and_located_share_by_country(ranked, figures):
    res = ranked
    for entry in res.manifest["inputs"]:
        rec = entry["records"]
        assert rec["read"] == (rec["used"] + sum(rec["filtered"].values())
                               + sum(rec["rejected"].values())), entry["name"]
    c = res.table("contributions").to_pandas()
    fine = c.precision.isin(["point", "postcode", "city"])
    has_address = c.address_raw.notna() | c.city.notna()
    # Parseable addresses (some text or city to go on): located to a city, per country.
    rate = fine[has_address].groupby(c.country[has_address]).mean()
    assert rate.min() >= 0.9, rate.to_dict()
    figures.append("PATSTAT fixture: inventor addresses located to a city, by country: "
                   + ", ".join(f"{k} {v:.0%}" for k, v in fine.groupby(c.country).mean().items())
                   + f" (of those with an address: {fine[has_address].mean():.1%})")
    assert {"KR", "AU", "TW"} <= set(rate.index)  # located through tls226
    assert (~fine[~has_address]).all()  # no address at all: not at city precision


# ------------------------------------------------------------------------ order, newest wins
def test_file_order_does_not_change_the_assembly():
    con1, _, _ = _stage_all(FILES)
    patstat.assemble(con1)
    con2, _, _ = _stage_all(list(reversed(FILES)))
    patstat.assemble(con2)
    sql = f"SELECT {_CONTRIB_COLS} FROM raw_contributions"
    assert _sorted_rows(con1, sql) == _sorted_rows(con2, sql)


def test_two_editions_newest_wins(tmp_path):
    """The same tables in two editions: the later edition named in the path wins
    ("2020_Autumn" = 2020b after "2020_Spring" = 2020a, whatever the path order), and the
    other versions are quarantined with the kept one named."""
    spring = tmp_path / "PATSTAT_2020_Spring"
    autumn = tmp_path / "PATSTAT_2020_Autumn"
    for d in (spring, autumn):
        d.mkdir()
    for f in FILES:
        shutil.copy(f, autumn / f.name)
    # The spring edition: one application with another publication year.
    name, data = _member(FILES[0])
    text = data.decode("utf-8")
    first = next(r for r in _rows(FILES[0]) if r["appln_kind"] == "W"
                 and r["earliest_publn_year"] != "9999")
    old = text.replace(f'{first["appln_id"]},', f'{first["appln_id"]},', 1)
    old = old.replace(f',{first["earliest_publn_year"]},0,"N"', ',2001,0,"N"', 1)
    assert old != text
    with zipfile.ZipFile(spring / FILES[0].name, "w") as z:
        z.writestr(name, old)
    files = [autumn / f.name for f in FILES] + [spring / FILES[0].name]
    files.sort()  # path order puts Autumn first: the edition must still win
    con, _, _ = _stage_all(files)
    patstat.assemble(con)
    year = con.execute("SELECT year FROM documents WHERE doc_id = ?",
                       [f"patstat:{first['appln_id']}"]).fetchall()
    assert year == [(int(first["earliest_publn_year"]),)]
    dups = con.execute("SELECT file, reason, excerpt FROM quarantine").fetchall()
    n_apps = len(_rows(FILES[0]))
    assert len(dups) == n_apps and {r[1] for r in dups} == {"duplicate appln_id"}
    assert all(r[2].startswith("kept tls201_part01.zip:row ") for r in dups)
    spring_id = files.index(spring / FILES[0].name)
    assert {r[0] for r in con.execute("SELECT input_id FROM quarantine").fetchall()} == {spring_id}
    # assembling again gives the same, with no second copy of the quarantine entries
    before = _sorted_rows(con, "SELECT * FROM quarantine")
    patstat.assemble(con)
    assert _sorted_rows(con, "SELECT * FROM quarantine") == before


# --------------------------------------------------------------------- other layouts, names
def _unzipped(tmp_path: Path, *, rename=None, edit=None) -> list[Path]:
    out = []
    for f in FILES:
        name, data = _member(f)
        text = data.decode("utf-8")
        if edit:
            text = edit(patstat.table_of(f), text)
        target = tmp_path / (rename(name) if rename else name)
        target.write_bytes(text.encode("utf-8"))
        out.append(target)
    return out


def _assembled(files) -> list[tuple]:
    con, q, _ = _stage_all(files)
    patstat.assemble(con)
    return _sorted_rows(con, f"SELECT {_CONTRIB_COLS} FROM raw_contributions")


def test_unzipped_named_and_lf_variants_read_the_same(tmp_path):
    want = _assembled(FILES)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    assert _assembled(_unzipped(tmp_path / "a")) == want
    names = {"tls201": "appln", "tls206": "person", "tls207": "pers_appln",
             "tls209": "appln_ipc", "tls226": "person_orig"}
    renamed = _unzipped(tmp_path / "b", rename=lambda n: n.replace(
        "_part", f"_{names[n[:6]]}_part"))
    assert renamed[0].name == "tls201_appln_part01.csv"
    assert _assembled(renamed) == want
    # LF line ends and empty strings left empty instead of ""
    lf = _unzipped(tmp_path / "c", edit=lambda t, text: text.replace("\r\n", "\n")
                   .replace(',""', ","))
    assert _assembled(lf) == want
    gz = [p.with_name(p.name + ".gz") for p in lf]
    for p, g in zip(lf, gz):
        g.write_bytes(gzip.compress(p.read_bytes(), mtime=0))
    assert _assembled(gz) == want


def test_2017b_layout_is_read(tmp_path):
    """formats.md §3.2–3.3 [S]: no receiving_office, granted as 0/1, tls206 without nuts,
    nuts_level, han_* and person_name_orig_lg."""
    drop = {"tls201": {"receiving_office"},
            "tls206": {"nuts", "nuts_level", "han_id", "han_name", "han_harmonized",
                       "person_name_orig_lg"},
            "tls226": {"person_name_orig_lg"}}

    def edit(table, text):
        rows = list(csv.reader(io.StringIO(text, newline="")))
        keep = [i for i, c in enumerate(rows[0]) if c not in drop.get(table, ())]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for r in rows:
            w.writerow([r[i] if table != "tls201" or rows[0][i] != "granted" or r is rows[0]
                        else "0" for i in keep])
        return buf.getvalue()

    assert _assembled(_unzipped(tmp_path, edit=edit)) == _assembled(FILES)


# --------------------------------------------------------------------------- hostile input
def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


def test_bad_values_are_quarantined_with_field_and_reason(tmp_path):
    t201 = _write(tmp_path, "tls201_part01.csv",
                  "appln_id,appln_kind,earliest_publn_year,ipr_type\r\n"
                  '1,"W",2020,"PI"\r\n'
                  'abc,"W",2020,"PI"\r\n'
                  ',"W",2020,"PI"\r\n'
                  '2,"W",3000,"PI"\r\n'
                  '3,"W",20x0,"PI"\r\n'
                  '4\x01,"W",2020,"PI"\r\n'
                  '5,"W",,"PI"\r\n'
                  '-6,"W",2020,"PI"\r\n'
                  '7,"W",2020\r\n')
    t207 = _write(tmp_path, "tls207_part01.csv",
                  "person_id,appln_id,applt_seq_nr,invt_seq_nr\r\n"
                  "10,1,0,1\r\n10,1,0,x\r\n11,1,0,-1\r\n12,1,0,\r\n10,1,0,1\r\n")
    t206 = _write(tmp_path, "tls206_part01.csv",
                  "person_id,person_name,person_address,person_ctry_code\r\n"
                  f'10,"A","Hauptstr. 5, 80333 München","DE"\r\n'
                  f'11,"B","{"x" * 10_001}","DE"\r\n'
                  f'12,"C","a\x00b","DE"\r\n')
    con, q, read = _stage_all([t201, t207, t206])
    assert read == {0: 9, 1: 5, 2: 3}
    got = {(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()}
    assert {("row 2", "appln_id", "appln_id not a non-negative integer"),
            ("row 3", "appln_id", "missing appln_id"),
            ("row 4", "earliest_publn_year", "year outside [1500, 2100]"),
            ("row 5", "earliest_publn_year", "earliest_publn_year not an integer"),
            ("row 6", "appln_id", "control character in an identifier"),
            ("row 8", "appln_id", "appln_id not a non-negative integer"),
            ("row 2", "invt_seq_nr", "invt_seq_nr not a non-negative integer"),
            ("row 3", "invt_seq_nr", "invt_seq_nr not a non-negative integer"),
            ("row 4", "invt_seq_nr", "missing invt_seq_nr"),
            ("row 2", "address", "longer than 10000 characters"),
            ("row 3", "address", "NUL character in text")} <= got
    assert any(p == "line 10" and "malformed CSV row" in r for p, _, r in got)
    patstat.assemble(con)
    # an empty year is PATSTAT's 9999 (not published); the duplicated link is quarantined
    assert con.execute("SELECT count(*) FROM quarantine WHERE reason = 'duplicate row'").fetchall() == [(1,)]
    _counted(con)
    staged = defaultdict(int)
    for input_id, _, _, n in patstat.status_counts(con):
        staged[input_id] += n
    rejected = defaultdict(int)
    for r in q.to_table().to_pylist():
        rejected[{"tls201_part01.csv": 0, "tls207_part01.csv": 1, "tls206_part01.csv": 2}[r["file"]]] += 1
    for input_id, n in con.execute("SELECT input_id, count(*) FROM quarantine GROUP BY 1").fetchall():
        rejected[input_id] += n
    for i, n in read.items():
        assert n == staged[i] + rejected[i], i
    assert con.execute("SELECT doc_id, n_contributors FROM documents").fetchall() == [("patstat:1", 1)]


def test_unreadable_files_raise_one_clear_error(tmp_path):
    not_zip = _write(tmp_path, "tls201_part01.zip", "appln_id\r\n1\r\n")
    with pytest.raises(InputFormatError, match="not a zip"):
        patstat.stage(store.connect(), not_zip, input_id=0, quarantine=Quarantine())
    missing = _write(tmp_path, "tls207_part01.csv", "person_id,appln_id,applt_seq_nr\r\n1,2,0\r\n")
    with pytest.raises(InputFormatError, match="invt_seq_nr"):
        patstat.stage(store.connect(), missing, input_id=0, quarantine=Quarantine())
    with pytest.raises(InputFormatError, match="not that of a PATSTAT table"):
        patstat.stage(store.connect(), _write(tmp_path, "tls211_part01.csv", "a\r\n1\r\n"),
                      input_id=0, quarantine=Quarantine())
    with pytest.raises(InputFormatError):
        patstat.stage(store.connect(), tmp_path / "tls201_part09.zip", input_id=0,
                      quarantine=Quarantine())


def test_damaged_zip_members(tmp_path):
    """A zip cut short (no central directory) is one clear error; a member whose compressed
    data is corrupt keeps every row before the damage and says where it broke."""
    # tls206 of 60,000 persons, over 2 MB unzipped: the damage lies past the loader's
    # first read block (1 MiB)
    lines = ["person_id,person_name,person_address,person_ctry_code"]
    lines += [f'{i},"P {i}","Weg {i % 97}, {10000 + i % 89999} Ort{i % 7}","DE"'
              for i in range(1, 60_001)]
    t206 = tmp_path / "tls206_part01.zip"
    with zipfile.ZipFile(t206, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("tls206_part01.csv", "\r\n".join(lines) + "\r\n")
    data = t206.read_bytes()
    cut = tmp_path / "cut" / t206.name
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFormatError, match="zip"):
        patstat.stage(store.connect(), cut, input_id=0, quarantine=Quarantine())
    bad = tmp_path / "bad" / t206.name
    bad.parent.mkdir()
    middle = len(data) * 4 // 5
    bad.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                    + data[middle + 64:])
    q = Quarantine()
    con = store.connect()
    n = patstat.stage(con, bad, input_id=0, quarantine=q)
    staged = con.execute("SELECT count(*) FROM ps_person").fetchall()[0][0]
    assert 0 < staged < len(_rows(t206))
    entries = q.to_table().to_pylist()
    assert any(r["field"] == "zip" and r["reason"] == "corrupt or truncated zip member"
               for r in entries)
    # read = staged + rows quarantined (garbage lines decoded before the break: "line N";
    # bad values: "row N"); the one entry for the break itself is no row
    assert n == staged + sum(1 for r in entries if r["position"].startswith(("line ", "row ")))


def test_stage_again_replaces_the_rows_of_that_input():
    con, _, _ = _stage_all(FILES)
    before = con.execute("SELECT count(*) FROM ps_pers_appln").fetchall()
    patstat.stage(con, FILES[4], input_id=4, quarantine=Quarantine())
    assert con.execute("SELECT count(*) FROM ps_pers_appln").fetchall() == before


def test_peer_query_finds_the_same_inventor_rows(tmp_path):
    """The benchmark's peer (DuckDB read_csv over the unzipped members) and our reader
    agree on the PCT inventor rows and their addresses."""
    import duckdb

    from benchmarks.bulk.patstat import peer_sql, unzip

    unzip(FILES, tmp_path)
    sql, params = peer_sql([tmp_path / f.name for f in FILES])
    peer = duckdb.connect().execute(sql, params).fetchall()
    con, _, _ = _stage_all(FILES)
    patstat.assemble(con)
    ours = con.execute("SELECT count(*) FROM raw_contributions").fetchall()[0][0]
    assert len(peer) == ours


def test_cli_ranks_the_bundle_folder(tmp_path):
    """Through the CLI: the folder of PATSTAT files is read as a bundle, and the manifest
    lists each file with its balanced accounting."""
    import json

    from typer.testing import CliRunner

    from stclusters.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["rank", str(FIXTURE), "--out", str(out),
                                      "--min-weight-patent", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(i["name"] for i in manifest["inputs"]) == [f.name for f in FILES]
    assert {i["kind"] for i in manifest["inputs"]} == {"patstat"}
    assert (out / "ranking.csv").read_text().count("\n") > 1


# ------------------------------------------------------------------------------------ fuzz
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_CELLS = st.one_of(
    st.sampled_from(["", '""', "0", "1", "2", "W", '"W"', '"A"', "9999", "2021", "-1", "x",
                     '"a,b"', '"unterminated', "\x00", "\x01", "9" * 30, '"\\n"', "é", "\udc80"]),
    st.text(max_size=6))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(apps=st.lists(st.lists(_FUZZ_CELLS, min_size=3, max_size=5), max_size=6),
       links=st.lists(st.lists(_FUZZ_CELLS, min_size=3, max_size=5), max_size=8),
       cut=st.integers(0, 400))
def test_fuzzed_tables_never_lose_a_row(tmp_path_factory, apps, links, cut):
    """Hostile cells (NULs, lone surrogates, broken quotes, wrong field counts, a cut file):
    never an exception other than InputFormatError, and per file read = staged rows
    accounted by status_counts + rows quarantined."""
    d = tmp_path_factory.mktemp("fuzz")

    def write(name: str, header: str, rows: list[list[str]]) -> Path:
        text = header + "\r\n" + "".join(",".join(r) + "\r\n" for r in rows)
        data = text.encode("utf-8", "surrogateescape")
        p = d / name
        p.write_bytes(data[: max(len(header), cut)] if cut < len(data) // 2 else data)
        return p

    files = [write("tls201_part01.csv", "appln_id,appln_kind,earliest_publn_year", apps),
             write("tls207_part01.csv", "person_id,appln_id,applt_seq_nr,invt_seq_nr", links),
             write("tls206_part01.csv", "person_id,person_address,person_ctry_code",
                   [["1", '"Hauptstr. 5, 80333 München"', '"DE"'], ["2", '""', '""']])]
    con = store.connect()
    q = Quarantine()
    read = {}
    for i, f in enumerate(files):
        try:
            read[i] = patstat.stage(con, f, input_id=i, quarantine=q)
        except InputFormatError:
            read[i] = None  # the whole file refused (no header left), nothing staged
    patstat.assemble(con)
    _counted(con)
    staged = defaultdict(int)
    for input_id, _, _, n in patstat.status_counts(con):
        staged[input_id] += n
    rejected = defaultdict(int)
    names = {f.name: i for i, f in enumerate(files)}
    for r in q.to_table().to_pylist():
        if r["position"].startswith(("line ", "row ")):
            rejected[names[r["file"]]] += 1
    for input_id, n in con.execute("SELECT input_id, count(*) FROM quarantine GROUP BY 1").fetchall():
        rejected[input_id] += n
    for i, n in read.items():
        if n is not None:
            assert n == staged[i] + rejected[i], (files[i].name, n, staged[i], rejected[i])


def test_a_person_is_one_inventor_of_an_application(tmp_path):
    """Two inventor links of one person on one application (e.g. renumbered between two
    editions) make one contribution; the other link is counted with why."""
    files = [_write(tmp_path, "tls201_part01.csv",
                    'appln_id,appln_kind,earliest_publn_year\r\n1,"W",2021\r\n'),
             _write(tmp_path, "tls207_part01.csv",
                    "person_id,appln_id,applt_seq_nr,invt_seq_nr\r\n"
                    "10,1,0,2\r\n10,1,1,1\r\n11,1,0,3\r\n"),
             _write(tmp_path, "tls206_part01.csv",
                    "person_id,person_address,person_ctry_code\r\n"
                    '10,"Hauptstr. 5, 80333 München","DE"\r\n11,"","DE"\r\n')]
    con, _, _ = _stage_all(files)
    patstat.assemble(con)
    assert con.execute("SELECT contributor_seq, city, _row FROM raw_contributions "
                       "ORDER BY 1").fetchall() == [(0, "München", 2), (1, None, 3)]
    assert con.execute("SELECT _row, status FROM ps_link_status WHERE status IS NOT NULL"
                       ).fetchall() == [(1, patstat.SAME_INVENTOR)]


def test_ingest_in_two_goes_then_rank_the_workspace(tmp_path, ranked):
    """Files added to a workspace in two ingests (in reverse path order, the second run
    skipping what the first read) rank the same as the folder read at once."""
    ws = tmp_path / "ws.duckdb"
    first = stclusters.ingest([str(f) for f in FILES[4:]], workspace=ws)
    second = stclusters.ingest([str(FIXTURE)], workspace=ws)
    assert first.n_read == len(FILES) - 4
    assert second.n_read == 4 and second.n_skipped == len(FILES) - 4
    again = stclusters.rank([], workspace=ws, params=_PARAMS)
    assert again.ranking.equals(ranked.ranking)
    assert again.manifest["accounting"] == ranked.manifest["accounting"]


def test_non_pct_applications_are_accounted_but_not_warned_about():
    from stclusters.accounting import unused_warnings

    def acc(filtered: dict[str, int], used: int) -> dict:
        return {"patent": {"records": {"unit": "document", "read": used + sum(filtered.values()),
                                       "used": used, "filtered": filtered, "rejected": {}}}}

    # 95 % of tls201 is not PCT: by design, no warning.
    assert unused_warnings(acc({patstat.NOT_PCT: 90, "out_of_window": 2}, 8)) == []
    # Among the PCT applications, most out of the window: a warning naming that reason.
    (w,) = unused_warnings(acc({patstat.NOT_PCT: 40, "out_of_window": 55}, 5))
    assert w["reason"] == "out_of_window" and w["n"] == 55


def test_a_whole_download_folder_skips_the_tables_not_read(tmp_path):
    from stclusters.workspace import as_inputs, expand_inputs

    folder = tmp_path / "download"
    shutil.copytree(FIXTURE, folder)
    with zipfile.ZipFile(folder / "tls211_part01.zip", "w") as z:
        z.writestr("tls211_part01.csv", "pat_publn_id,publn_auth\r\n1,\"WO\"\r\n")
    names = {Path(i.path).name for i, _ in expand_inputs(as_inputs([str(folder)]))}
    assert "tls211_part01.zip" not in names
    assert names == {p.name for p in FIXTURE.iterdir() if p.is_file()}
