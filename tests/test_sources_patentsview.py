"""PatentsView bulk tables: layout of the fixtures, staging, assembling, accounting, hostile input.

The fixtures in ``tests/fixtures/patentsview/`` are SYNTHETIC, written by
``benchmarks/bulk/patentsview.py`` in the published layout (``shared/spec/formats.md`` §1).
The key test builds the generic contributions table of the same records with an independent
reading of the TSVs (Python's ``csv`` module and the rules of docs/inputs.md) and checks that
both give the same documents and contributions.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from benchmarks.bulk import patentsview as gen
from conftest import SHARED_DATA
from stclusters import contributions as contrib
from stclusters import store
from stclusters.errors import InputFormatError
from stclusters.params import RankParams
from stclusters.sources import patentsview as pv
from stclusters.sources._quarantine import Quarantine
from stclusters.sources.table import ingest_table

FIXTURES = Path(__file__).parent / "fixtures" / "patentsview"
GRANTED = ("g_patent", "g_inventor_disambiguated", "g_location_disambiguated", "g_cpc_current",
           "g_ipc_at_issue", "g_assignee_disambiguated")


def _fixture(table: str) -> Path:
    return FIXTURES / f"{table}.tsv.zip"


def _members(path: Path) -> list[list[str]]:
    """Rows of a table file (any of the three forms), read with Python's csv module."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            data = z.read(z.namelist()[0])
    elif path.name.endswith(".gz"):
        data = gzip.decompress(path.read_bytes())
    else:
        data = path.read_bytes()
    return list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t", quotechar='"'))


def _dicts(path: Path) -> list[dict[str, str]]:
    header, *rows = _members(path)
    return [dict(zip(header, r, strict=True)) for r in rows]


class Bundle:
    """A workspace with PatentsView files staged (input ids in the given order)."""

    def __init__(self, paths, con=None, first_id: int = 0) -> None:
        self.con = con or store.connect()
        self.read: dict[int, int] = {}
        for k, p in enumerate(paths, start=first_id):
            q = Quarantine()
            self.read[k] = pv.stage(self.con, p, input_id=k, quarantine=q)
            store.append(self.con, "quarantine", q.to_table(), input_id=k)

    def run(self, params: RankParams | None = None) -> dict[int, dict[str, int]]:
        """Assemble, locate, count; return per input: status → n (quarantine included)."""
        from stclusters.pipeline import _geocoder  # noqa: PLC0415

        pv.assemble(self.con)
        contrib.locate(self.con, _geocoder)
        contrib.count_fractional(self.con, params or RankParams())
        per: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for input_id, _, status, n in pv.status_counts(self.con):
            per[input_id][status] += n
        for input_id, reason, n in self.con.execute(
                "SELECT input_id, reason, count(*) FROM quarantine GROUP BY ALL").fetchall():
            per[input_id]["rejected: " + reason] += n
        return per

    def balanced(self, per) -> None:
        for input_id, n_read in self.read.items():
            assert sum(per[input_id].values()) == n_read, (input_id, dict(per[input_id]))

    def quarantine(self) -> list[tuple]:
        return self.con.execute("SELECT file, position, field, reason FROM quarantine "
                                "ORDER BY ALL").fetchall()


# ----------------------------------------------------------------------------- names, layout

def test_table_of_names():
    assert pv.table_of(Path("x/g_inventor_disambiguated.tsv.zip")) == "g_inventor_disambiguated"
    assert pv.table_of(Path("g_patent.tsv")) == "g_patent"
    assert pv.table_of(Path("G_PATENT.TSV.GZ")) == "g_patent"
    assert pv.table_of(Path("pg_published_application.tsv.zip")) == "pg_published_application"
    assert pv.table_of(Path("g_patent.csv")) is None
    assert pv.table_of(Path("g_patent_abstract.tsv.zip")) is None  # not read
    assert pv.table_of(Path("tls207_part01.zip")) is None
    assert set(pv.UNITS) == set(pv.SOURCES_OF) == set(pv.TABLES)
    assert pv.SOURCES_OF["g_inventor_disambiguated"] == pv.SOURCES_OF["g_patent"] == "patent"
    assert pv.UNITS["g_patent"] == "document" and pv.SOURCES_OF["g_location_disambiguated"] == "location"


#: Column names and order as in formats.md §1.2 (source [B]: PatentsView-DB
#: ``create_export_views.sql`` @f8aedf48; [C] for the g_ tables).
SPEC_COLUMNS = {
    "g_patent": "patent_id patent_type patent_date patent_title wipo_kind num_claims withdrawn "
                "filename",
    "g_inventor_disambiguated": "patent_id inventor_sequence inventor_id "
                                "disambig_inventor_name_first disambig_inventor_name_last "
                                "gender_code location_id",
    "g_location_disambiguated": "location_id disambig_city disambig_state disambig_country "
                                "latitude longitude county state_fips county_fips",
    "g_cpc_current": "patent_id cpc_sequence cpc_section cpc_class cpc_subclass cpc_group "
                     "cpc_type",
    "g_ipc_at_issue": "patent_id ipc_sequence classification_level section ipc_class subclass "
                      "main_group subgroup classification_value classification_status "
                      "classification_data_source action_date ipc_version_indicator",
    "g_assignee_disambiguated": "patent_id assignee_sequence assignee_id "
                                "disambig_assignee_individual_name_first "
                                "disambig_assignee_individual_name_last "
                                "disambig_assignee_organization assignee_type location_id",
    "pg_published_application": "pgpub_id application_id filing_date patent_type filing_type "
                                "published_date wipo_kind series_code application_title "
                                "rule_47_flag filename",
    "pg_inventor_disambiguated": "pgpub_id inventor_sequence inventor_id "
                                 "disambig_inventor_name_first disambig_inventor_name_last "
                                 "gender_code location_id",
    "pg_location_disambiguated": "location_id disambig_city disambig_state disambig_country "
                                 "latitude longitude county state_fips county_fips",
    "pg_cpc_current": "pgpub_id cpc_sequence cpc_section cpc_class cpc_subclass cpc_group "
                      "cpc_type cpc_version_indicator",
}


@pytest.mark.parametrize("table", sorted(SPEC_COLUMNS))
def test_fixture_layout(table):
    path = _fixture(table)
    with zipfile.ZipFile(path) as z:  # formats.md §1.1 [A]: one member <table>.tsv
        assert z.namelist() == [f"{table}.tsv"]
        raw = z.read(f"{table}.tsv")
    header, *rows = _members(path)
    assert header == SPEC_COLUMNS[table].split()
    assert rows and all(len(r) == len(header) for r in rows)
    first = raw.split(b"\n", 1)[0]  # header names in double quotes, TAB-separated [A]
    assert first == b"\t".join(b'"' + c.encode() + b'"' for c in header)
    assert b"\r" not in raw and raw.endswith(b"\n")


def test_fixture_quoting_matches_real_sample():
    """g_patent: the real row's quoting (text quoted, numbers bare), field by field, against
    ``shared/data/samples/patentsview/g_patent.head2.tsv`` (formats.md §4, source [A])."""
    sample = SHARED_DATA / "samples" / "patentsview" / "g_patent.head2.tsv"
    real_header, real_row = sample.read_bytes().split(b"\n")[:2]
    with zipfile.ZipFile(_fixture("g_patent")) as z:
        ours_header, ours_row = z.read("g_patent.tsv").split(b"\n")[:2]
    assert ours_header == real_header
    quoted = [f.startswith(b'"') and f.endswith(b'"') for f in real_row.split(b"\t")]
    assert [f.startswith(b'"') and f.endswith(b'"') for f in ours_row.split(b"\t")] == quoted
    assert quoted == [True, True, True, True, True, False, False, True]


def test_generator_is_deterministic_and_matches_fixtures(tmp_path):
    files = gen.generate(tmp_path, n_rows=60, seed=0, pregrant=True)
    assert [f.name for f in files] == sorted(p.name for p in FIXTURES.iterdir())
    for f in files:
        assert f.read_bytes() == (FIXTURES / f.name).read_bytes(), f.name


# ----------------------------------------------------------------------------- the key test

def _oracle_rows(paths: dict[str, Path], series: str) -> list[dict[str, str]]:
    """The generic-table rows of a bundle, read independently with Python (docs/inputs.md,
    PatentsView section): one per inventor row of a known, not withdrawn document."""
    key = "patent_id" if series == "g" else "pgpub_id"
    docs_table = "g_patent" if series == "g" else "pg_published_application"
    docs = {d[key]: d for d in _dicts(paths[docs_table]) if d.get("withdrawn", "0") != "1"}
    locs = {}
    for loc_series in (("g", "pg") if series == "g" else ("pg", "g")):
        for d in _dicts(paths.get(f"{loc_series}_location_disambiguated", Path("/nonexistent"))
                        ) if f"{loc_series}_location_disambiguated" in paths else []:
            locs.setdefault(d["location_id"], d)  # own series first
    cpc = defaultdict(list)
    if f"{series}_cpc_current" in paths:
        for d in _dicts(paths[f"{series}_cpc_current"]):
            cpc[d[key]].append((d["cpc_type"] != "inventional", int(d["cpc_sequence"]),
                                d["cpc_subclass"]))
    ipc = defaultdict(list)
    if f"{series}_ipc_at_issue" in paths:
        for d in _dicts(paths[f"{series}_ipc_at_issue"]):
            ipc[d[key]].append((int(d["ipc_sequence"]), d["section"] + d["ipc_class"] + d["subclass"]))
    orgs = defaultdict(list)
    if f"{series}_assignee_disambiguated" in paths:
        for d in _dicts(paths[f"{series}_assignee_disambiguated"]):
            if d["disambig_assignee_organization"]:
                orgs[d[key]].append((int(d["assignee_sequence"]), d["disambig_assignee_organization"]))
    inventors = defaultdict(list)
    for n, d in enumerate(_dicts(paths[f"{series}_inventor_disambiguated"]), start=1):
        if d[key] in docs:
            inventors[d[key]].append((int(d["inventor_sequence"]), n, d["location_id"]))
    out = []
    for doc_id, invs in inventors.items():
        doc = docs[doc_id]
        doc_type = doc["patent_type"] if series == "g" else "application-" + doc["patent_type"]
        year = (doc["patent_date"] if series == "g" else doc["published_date"])[:4]
        tech = (min(cpc[doc_id])[2] if cpc[doc_id] else min(ipc[doc_id])[1] if ipc[doc_id] else "")
        applicant = min(orgs[doc_id])[1] if orgs[doc_id] else ""
        for rank, (_, n, loc_id) in enumerate(sorted(invs)):
            loc = locs.get(loc_id, {})
            out.append({"doc_id": doc_id, "source": "patent", "year": year,
                        "contributor_seq": str(rank), "lat": loc.get("latitude", ""),
                        "lon": loc.get("longitude", ""),
                        "precision": "city" if loc.get("latitude") else "",
                        "city": loc.get("disambig_city", ""), "admin1": loc.get("disambig_state", ""),
                        "country": loc.get("disambig_country", ""), "tech_field": tech,
                        "applicant": applicant, "doc_type": doc_type, "_row": n})
    return out


_COMPARED = ("doc_id", "source", "year", "contributor_seq", "address_seq", "city", "admin1",
             "country", "lat", "lon", "precision", "tech_field", "applicant", "doc_type")


def _snapshot(con) -> tuple[list, list]:
    docs = con.execute("SELECT doc_id, source, year, doc_type, n_contributors FROM documents "
                       "ORDER BY ALL").fetchall()
    cons = con.execute(f"SELECT {', '.join(_COMPARED)} FROM raw_contributions "
                       "ORDER BY ALL").fetchall()
    return docs, cons


def test_same_records_as_the_generic_table(tmp_path):
    paths = {p.name.split(".")[0]: p for p in FIXTURES.iterdir()}
    rows = _oracle_rows(paths, "g") + _oracle_rows(paths, "pg")
    generic = tmp_path / "same_records.csv"
    with open(generic, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "_row"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    table_con = store.connect()
    ingest_table(table_con, generic, input_id=0, quarantine=Quarantine())
    bundle = Bundle(sorted(FIXTURES.iterdir()))
    pv.assemble(bundle.con)
    ours, theirs = _snapshot(bundle.con), _snapshot(table_con)
    assert len(ours[1]) == len(rows) > 50
    assert ours == theirs
    # The edge cases are in it: designs, plant, reissue, pre-grant; unlocated rows.
    types = {r[3] for r in ours[0]}
    assert {"utility", "design", "plant", "reissue", "application-utility"} <= types
    assert any(r[8] is None for r in ours[1]) and any(r[12] is None for r in ours[1])


def test_same_ranking_as_the_generic_table_end_to_end(tmp_path):
    """Through ``stclusters.rank``: the fixture folder and the generic table of the same
    records rank the same clusters with the same counts."""
    import stclusters  # noqa: PLC0415

    paths = {p.name.split(".")[0]: p for p in FIXTURES.iterdir()}
    rows = _oracle_rows(paths, "g") + _oracle_rows(paths, "pg")
    generic = tmp_path / "same_records.csv"
    with open(generic, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "_row"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    params = RankParams().with_source("patent", min_weight=1.0)
    ours = stclusters.rank([FIXTURES], params=params)
    theirs = stclusters.rank([generic], params=params)
    assert ours.ranking.num_rows >= 3
    assert ours.ranking.to_pylist() == theirs.ranking.to_pylist()
    inputs = ours.manifest["inputs"]
    assert len(inputs) == 10 and all(i["records"]["balanced"] for i in inputs)
    assert {i["name"]: i["records"]["unit"] for i in inputs}["g_patent.tsv.zip"] == "document"


def test_accounting_balances_and_says_why(tmp_path):
    b = Bundle(sorted(FIXTURES.iterdir()))
    per = b.run()
    b.balanced(per)
    ids = dict(b.con.execute("SELECT tbl, input_id FROM pv_files").fetchall())
    inv = per[ids["g_inventor_disambiguated"]]
    # Fixed edge rows of the generator: row 14 (patent not in g_patent), rows 12-13 (a
    # withdrawn patent), rows 23 and 26 (empty / unknown location_id: no address).
    assert inv[pv.NO_SUCH_PATENT] == 1 and inv[pv.WITHDRAWN] == 2
    assert inv["unlocated (unmatched:no-city)"] == 2
    assert per[ids["g_patent"]][pv.WITHDRAWN] == 1
    assert per[ids["g_patent"]]["doc_type_excluded"] == 2  # design + reissue by default
    assert per[ids["pg_published_application"]]["doc_type_excluded"] == 10  # applications
    status = dict(b.con.execute(
        "SELECT record_ref, status FROM contributions WHERE input_id = ?",
        [ids["g_inventor_disambiguated"]]).fetchall())
    assert status["g_inventor_disambiguated.tsv.zip:row 23"] == "unlocated"
    # A location without coordinates is geocoded from its city (row 18: Altoona, US).
    row18 = b.con.execute("SELECT geocode_status, lat FROM contributions WHERE record_ref = "
                          "'g_inventor_disambiguated.tsv.zip:row 18'").fetchall()[0]
    assert row18[0].startswith("matched:") and abs(row18[1] - 40.52) < 0.1
    assert not b.quarantine()


def test_point_outside_its_country_is_flagged():
    """PatentsView's real "Limm, GB" at 11.1, 30.5167 (Africa; formats.md §4) is flagged by
    the quality step; kept by default, filtered as country_mismatch on request."""
    b = Bundle(sorted(FIXTURES.iterdir()))
    b.run()
    flag = b.con.execute("SELECT quality_flag, status, precision FROM contributions "
                         "WHERE city = 'Limm'").fetchall()
    assert flag == [("point_outside_country", "used", "city")]
    b2 = Bundle(sorted(FIXTURES.iterdir()))
    per = b2.run(RankParams(quality_action="filter"))
    b2.balanced(per)
    assert b2.con.execute("SELECT status FROM contributions WHERE city = 'Limm'").fetchall() == [
        ("country_mismatch",)]


@pytest.mark.parametrize("compress", ["gz", "none"])
def test_unzipped_and_regzipped_read_alike(tmp_path, compress):
    files = gen.generate(tmp_path, n_rows=60, seed=0, pregrant=True, compress=compress)
    b = Bundle(files)
    pv.assemble(b.con)
    ref = Bundle(sorted(FIXTURES.iterdir()))
    pv.assemble(ref.con)
    assert _snapshot(b.con) == _snapshot(ref.con)


def test_input_order_does_not_change_the_result():
    files = sorted(FIXTURES.iterdir())
    a, b = Bundle(files), Bundle(list(reversed(files)))
    pv.assemble(a.con)
    pv.assemble(b.con)
    assert _snapshot(a.con) == _snapshot(b.con)


def test_assemble_and_stage_run_again_cleanly():
    files = sorted(FIXTURES.iterdir())
    b = Bundle(files)
    pv.assemble(b.con)
    first = _snapshot(b.con)
    q = Quarantine()  # a rerun of an interrupted staging replaces the file's rows
    pv.stage(b.con, files[2], input_id=2, quarantine=q)
    pv.assemble(b.con)
    assert _snapshot(b.con) == first


# ----------------------------------------------------------------------------- releases

def test_two_releases_keep_the_newest(tmp_path):
    old = tmp_path / "2023"
    old.mkdir()
    tables = ("g_patent", "g_inventor_disambiguated", "g_location_disambiguated")
    for t in tables:
        (old / f"{t}.tsv.zip").write_bytes(_fixture(t).read_bytes())
    # The newer release has one more inventor on patent 10000000 (a corrected record).
    new = tmp_path / "2024"
    new.mkdir()
    for t in tables:
        (new / f"{t}.tsv.zip").write_bytes(_fixture(t).read_bytes())
    header, *rows = _members(_fixture("g_inventor_disambiguated"))
    rows.insert(3, ["10000000", "3", "fl:new", "New", "Inventor", "", rows[0][6]])
    _write_tsv(new / "g_inventor_disambiguated.tsv", [header, *rows])
    (new / "g_inventor_disambiguated.tsv.zip").unlink()
    files = [old / f"{t}.tsv.zip" for t in tables] + [
        new / "g_patent.tsv.zip", new / "g_inventor_disambiguated.tsv", new / "g_location_disambiguated.tsv.zip"]
    b = Bundle(files)
    per = b.run()
    b.balanced(per)
    n_docs = b.con.execute("SELECT count(*), count(DISTINCT doc_id) FROM documents").fetchall()[0]
    assert n_docs[0] == n_docs[1] == 17 + 2  # designs/reissues are documents too
    before = sum(r[0] == "10000000" for r in rows) - 1
    assert b.con.execute("SELECT n_contributors FROM documents WHERE doc_id = '10000000'"
                         ).fetchall() == [(before + 1,)]
    assert b.con.execute("SELECT DISTINCT input_id FROM raw_contributions").fetchall() == [(4,)]
    reasons = b.con.execute("SELECT file, reason, count(*) FROM quarantine GROUP BY ALL "
                            "ORDER BY ALL").fetchall()
    assert ("g_patent.tsv.zip", pv.SUPERSEDED, 20) in reasons
    # Every old inventor row: the new file lists each of their patent ids again.
    assert ("g_inventor_disambiguated.tsv.zip", pv.SUPERSEDED, 60) in reasons
    assert per[2][pv.LOOKUP_SUPERSEDED] == 36  # the older location file, every row


def _write_tsv(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL,
               lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- partial bundles

def test_without_location_file_everything_is_unlocated():
    b = Bundle([_fixture("g_patent"), _fixture("g_inventor_disambiguated")])
    per = b.run()
    b.balanced(per)
    assert "used" not in per[1] and per[1]["unlocated (unmatched:no-city)"] == 51
    assert per[0]["no_located_contributor"] == 17 and per[0]["doc_type_excluded"] == 2


def test_without_g_patent_every_inventor_has_no_such_patent():
    b = Bundle([_fixture("g_inventor_disambiguated"), _fixture("g_location_disambiguated")])
    per = b.run()
    b.balanced(per)
    assert dict(per[0]) == {pv.NO_SUCH_PATENT: 60}
    assert dict(per[1]) == {pv.NOT_REFERENCED: 36}
    assert b.con.execute("SELECT count(*) FROM documents").fetchall() == [(0,)]


# ----------------------------------------------------------------------------- hostile input

def test_bad_values_are_quarantined_with_row_and_field(tmp_path):
    header, *rows = _members(_fixture("g_patent"))
    bad = [
        ["", "utility", "2020-01-07", "t", "B2", "1", "0", "f"],                 # row 21
        ["P\x01X", "utility", "2020-01-07", "t", "B2", "1", "0", "f"],           # row 22
        ["7000001", "utility", "2020-13-45", "t", "B2", "1", "0", "f"],          # row 23
        ["7000002", "utility", "0999-01-01", "t", "B2", "1", "0", "f"],          # row 24
        ["7000003", "utility", "2020-01-07", "t", "B2", "1", "yes", "f"],        # row 25
        ["7000004", "utility", "2020-01-07", "x" * 5000, "B2", "1", "0", "f"],   # row 26: not read
        ["7000005", "u" * 1001, "2020-01-07", "t", "B2", "1", "0", "f"],         # row 27
    ]
    _write_tsv(tmp_path / "g_patent.tsv", [header, *rows, *bad])
    lheader, *lrows = _members(_fixture("g_location_disambiguated"))
    lbad = [
        ["L1", "a", "", "US", "abc", "1", "", "", ""],     # row 37
        ["L2", "a", "", "US", "95", "1", "", "", ""],      # row 38
        ["L3", "a", "", "US", "10", "", "", "", ""],       # row 39
        ["L4", "a", "", "XX", "10", "10", "", "", ""],     # row 40
        ["L5", "a", "", "US", "10", "200", "", "", ""],    # row 41
    ]
    _write_tsv(tmp_path / "g_location_disambiguated.tsv", [lheader, *lrows, *lbad])
    iheader, *irows = _members(_fixture("g_inventor_disambiguated"))
    _write_tsv(tmp_path / "g_inventor_disambiguated.tsv",
               [iheader, *irows, ["10000000", "-1", "x", "", "", "", ""]])  # row 61
    b = Bundle([tmp_path / "g_patent.tsv", tmp_path / "g_inventor_disambiguated.tsv",
                tmp_path / "g_location_disambiguated.tsv"])
    per = b.run()
    b.balanced(per)
    got = b.quarantine()
    assert got == sorted([
        ("g_patent.tsv", "row 21", "patent_id", "missing patent_id"),
        ("g_patent.tsv", "row 22", "patent_id", "control character in an identifier"),
        ("g_patent.tsv", "row 23", "patent_date", "not a date (YYYY-MM-DD)"),
        ("g_patent.tsv", "row 24", "patent_date", "year outside [1500, 2100]"),
        ("g_patent.tsv", "row 25", "withdrawn", "not an integer"),
        ("g_patent.tsv", "row 27", "patent_type", "longer than 1000 characters"),
        ("g_inventor_disambiguated.tsv", "row 61", "inventor_sequence", "not a non-negative integer"),
        ("g_location_disambiguated.tsv", "row 37", "latitude", "not a number"),
        ("g_location_disambiguated.tsv", "row 38", "latitude", "latitude outside [-90, 90]"),
        ("g_location_disambiguated.tsv", "row 39", "latitude", "only one of latitude/longitude given"),
        ("g_location_disambiguated.tsv", "row 40", "disambig_country", "not an ISO 3166-1 alpha-2 code"),
        ("g_location_disambiguated.tsv", "row 41", "longitude", "longitude outside [-180, 180]"),
    ])
    excerpt = b.con.execute("SELECT excerpt FROM quarantine WHERE position = 'row 22' AND "
                            "file = 'g_patent.tsv'").fetchall()[0][0]
    assert "patent_id=P\\x01X" in excerpt  # control characters shown, not written


def test_malformed_lines_and_bad_utf8_are_quarantined(tmp_path):
    raw = zipfile.ZipFile(_fixture("g_inventor_disambiguated")).read("g_inventor_disambiguated.tsv")
    lines = raw.split(b"\n")
    lines.insert(5, b'"10000000"\t0\t"x"')  # too few fields: line 6
    lines.insert(9, b'"10000000"\t0\t"x"\t"\xff\xfe"\t""\t""\t""')  # invalid UTF-8: line 10
    path = tmp_path / "g_inventor_disambiguated.tsv.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    b = Bundle([_fixture("g_patent"), path])
    per = b.run()
    b.balanced(per)
    reasons = {(pos, reason.split(" (")[0]) for _, pos, _, reason in b.quarantine()}
    assert reasons == {("line 6", "malformed CSV row"), ("line 10", "invalid UTF-8")}
    assert b.read[1] == 62


def test_damaged_zip_keeps_the_rows_before_the_break(tmp_path):
    n_rows = 20_000
    files = gen.generate(tmp_path / "big", n_rows=n_rows, seed=1)
    inv = next(f for f in files if f.name.startswith("g_inventor"))
    data = inv.read_bytes()
    cut = tmp_path / "cut" / inv.name
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) // 2])  # a truncated download: no central directory
    with pytest.raises(InputFormatError, match="zip"):
        pv.stage(store.connect(), cut, input_id=0, quarantine=Quarantine())
    # A corrupt deflate stream inside an intact archive: the rows before it are staged,
    # one entry says where it broke, and read = staged + quarantined still holds.
    flipped = bytearray(data)
    flipped[len(data) * 4 // 5] ^= 0xFF
    cut.write_bytes(bytes(flipped))
    q = Quarantine()
    con = store.connect()
    n = pv.stage(con, cut, input_id=0, quarantine=q)
    staged = con.execute("SELECT count(*) FROM pv_inventor").fetchall()[0][0]
    assert n_rows // 2 < staged < n_rows and n == staged + q.count
    assert q.to_table().column("reason").to_pylist()[-1] == "corrupt or truncated zip member"
    # Corrupt from its first bytes: no row to keep, and the message says why (not "empty").
    flipped = bytearray(data)
    for k in range(80, 600):
        flipped[k] ^= 0x55
    cut.write_bytes(bytes(flipped))
    with pytest.raises(InputFormatError, match="corrupt from its start"):
        pv.stage(store.connect(), cut, input_id=0, quarantine=Quarantine())


@pytest.mark.parametrize("content,match", [
    (b"not a zip at all", "not a zip"),
    (b"", "empty"),
])
def test_unreadable_files_are_refused(tmp_path, content, match):
    path = tmp_path / "g_patent.tsv.zip"
    path.write_bytes(content)
    with pytest.raises(InputFormatError, match=match):
        pv.stage(store.connect(), path, input_id=0, quarantine=Quarantine())


def test_missing_required_column_is_refused(tmp_path):
    header, *rows = _members(_fixture("g_location_disambiguated"))
    i = header.index("latitude")
    _write_tsv(tmp_path / "g_location_disambiguated.tsv",
               [[c for k, c in enumerate(r) if k != i] for r in [header, *rows]])
    with pytest.raises(InputFormatError, match="latitude"):
        pv.stage(store.connect(), tmp_path / "g_location_disambiguated.tsv", input_id=0,
                 quarantine=Quarantine())
    with pytest.raises(InputFormatError, match="none of the PatentsView tables"):
        pv.stage(store.connect(), tmp_path / "other.tsv", input_id=0, quarantine=Quarantine())


def test_older_column_names_and_extra_columns(tmp_path):
    """Before 2022-10-06 the location columns were ``city``, ``state``, ``country`` and the
    assignee organisation ``assignee_organization`` (formats.md §1.2/§1.3); extra columns
    are ignored, columns are taken by name in any order."""
    header, *rows = _members(_fixture("g_location_disambiguated"))
    old = [{"disambig_city": "city", "disambig_state": "state",
            "disambig_country": "country"}.get(c, c) for c in header]
    order = list(reversed(range(len(header))))
    _write_tsv(tmp_path / "g_location_disambiguated.tsv",
               [[*(r[k] for k in order), "extra"] for r in [old, *rows]])
    b = Bundle([_fixture("g_patent"), _fixture("g_inventor_disambiguated"),
                tmp_path / "g_location_disambiguated.tsv"])
    pv.assemble(b.con)
    ref = Bundle([_fixture(t) for t in ("g_patent", "g_inventor_disambiguated",
                                        "g_location_disambiguated")])
    pv.assemble(ref.con)
    assert _snapshot(b.con) == _snapshot(ref.con)


# ----------------------------------------------------------------------------- the peer

def test_peer_sql_gives_our_located_rows(tmp_path):
    files = gen.generate(tmp_path, n_rows=300, seed=3, compress="none")
    sql, params = gen.peer_sql([f for f in files if f.name.split(".")[0] in GRANTED])
    peer = sorted(duckdb.connect().execute(sql, params).fetchall())
    b = Bundle(files)
    pv.assemble(b.con)
    ours = sorted(b.con.execute(
        "SELECT doc_id, year, doc_type, contributor_seq, lat, lon, country, city, tech_field, "
        "applicant FROM raw_contributions WHERE lat IS NOT NULL").fetchall())
    assert len(ours) > 250 and peer == ours


# ----------------------------------------------------------------------------- legacy files

def _legacy_bundle(tmp_path: Path) -> list[Path]:
    """Legacy (pre-2022) granted files in the 2020 column order (formats.md §1.3, [E]),
    unquoted with literal ``NULL`` like the transcribed real sample; ``rawlocation`` and
    ``location`` hold the real sample rows (shared/data/samples/patentsview) plus two
    synthetic raw locations."""
    sample = SHARED_DATA / "samples" / "patentsview"
    (tmp_path / "location.tsv").write_bytes(
        (sample / "legacy2020_location.head6.transcribed.tsv").read_bytes())
    raw = (sample / "legacy2020_rawlocation.head6.transcribed.tsv").read_text()
    raw += "synrawlimm\t000iprvfzu2f\tLimm\tNULL\tGB\t51.0|0.0\n"  # → location Limm (GB)
    raw += "synrawbad\tNULL\tNowhere\tNULL\tUS\t95.0|0.0\n"        # latlong out of range
    (tmp_path / "rawlocation.tsv").write_text(raw)
    (tmp_path / "patent.tsv").write_text(
        "id\ttype\tnumber\tcountry\tdate\tabstract\ttitle\tkind\tnum_claims\tfilename\twithdrawn\n"
        "7646155\tutility\t7646155\tUS\t2010-01-12\tNULL\tSynthetic\tB2\t12\tipg100112.xml\t0\n"
        "D600001\tdesign\tD600001\tUS\t2009-09-15\tNULL\tSynthetic\tS1\t1\tipg090915.xml\t0\n")
    (tmp_path / "rawinventor.tsv.gz").write_bytes(gzip.compress(
        b"uuid\tpatent_id\tinventor_id\trawlocation_id\tname_first\tname_last\tsequence\trule_47\tdeceased\n"
        b"u1\t7646155\ti1\t00008o6jw8bp4c824ihgc1fcz\tA\tB\t0\t\tNULL\n"
        b"u2\t7646155\ti2\tsynrawlimm\tC\tD\t1\t\tNULL\n"
        b"u3\t7646155\ti3\tNULL\tE\tF\t2\t\tNULL\n"
        b"u4\tD600001\ti4\t0000a07fetfy6e2t4fjqc4nj6\tG\tH\t0\t\tNULL\n"))
    return sorted(tmp_path.iterdir())


def test_legacy_granted_chain(tmp_path):
    files = _legacy_bundle(tmp_path)
    assert [pv.table_of(f) for f in files] == ["location", "patent", "rawinventor", "rawlocation"]
    b = Bundle(files)
    per = b.run()
    b.balanced(per)
    got = b.con.execute("SELECT doc_id, year, doc_type, contributor_seq, city, admin1, country, "
                        "lat, lon, precision FROM raw_contributions ORDER BY ALL").fetchall()
    assert got == [
        ("7646155", 2010, "utility", 0, "Sunnyvale", "CA", "US", 37.3689, -122.0353, "city"),
        ("7646155", 2010, "utility", 1, "Limm", None, "GB", 11.1, 30.5167, "city"),
        ("7646155", 2010, "utility", 2, None, None, None, None, None, None),
        ("D600001", 2009, "design", 0, "Seoul", None, "KR", 37.5985, 126.9783, "city"),
    ]
    assert b.quarantine() == [("rawlocation.tsv", "row 8", "latlong", 'not "lat|lon" in range')]
    ids = dict(b.con.execute("SELECT tbl, input_id FROM pv_files").fetchall())
    assert per[ids["location"]] == {"used": 1, pv.NOT_REFERENCED: 5}  # Limm
    assert per[ids["rawlocation"]]["used"] == 2  # Sunnyvale and Limm (Seoul: a design)


def test_current_copy_beats_a_legacy_one(tmp_path):
    legacy = tmp_path / "patent.tsv"
    legacy.write_text(
        "id\ttype\tnumber\tcountry\tdate\tabstract\ttitle\tkind\tnum_claims\tfilename\twithdrawn\n"
        "10000000\tdesign\t10000000\tUS\t2001-01-02\tNULL\tOld\tB2\t1\tipg010102.xml\t0\n")
    b = Bundle([_fixture("g_patent"), _fixture("g_inventor_disambiguated"), legacy])
    pv.assemble(b.con)
    assert b.con.execute("SELECT year, doc_type, input_id FROM documents "
                         "WHERE doc_id = '10000000'").fetchall()[0][1:] == ("utility", 0)
    assert b.quarantine() == [("patent.tsv", "row 1", "patent_id", pv.SUPERSEDED)]


# ----------------------------------------------------------------------------- fuzz

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ = settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])
_ODD = st.text(max_size=20) | st.sampled_from(
    ["\x00", "NaN", "inf", "-0", "1e400", "91", "-181", "", " ", '"', "\t", "NULL", "9" * 40,
     "x" * 1001, "US", "us", "XX", "\u202e"])


def _staged_balance(con, path: Path, input_id: int) -> None:
    q = Quarantine()
    try:
        n = pv.stage(con, path, input_id=input_id, quarantine=q)
    except InputFormatError:
        return  # a file refused whole, with a one-line message
    table = pv.TABLES[pv.table_of(path)].role
    staged = con.execute(f"SELECT count(*) FROM pv_{table} WHERE input_id = ?",
                         [input_id]).fetchall()[0][0]
    assert n == staged + q.count


@_FUZZ
@given(data=st.data())
def test_fuzz_location_bytes(tmp_path, data):
    raw = zipfile.ZipFile(_fixture("g_location_disambiguated")).read(
        "g_location_disambiguated.tsv")
    at = data.draw(st.integers(0, len(raw) - 1))
    how = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if how == "flip":
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
    elif how == "insert":
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    else:
        raw = raw[:at] + raw[at + 1:]
    path = tmp_path / "g_location_disambiguated.tsv.gz"
    path.write_bytes(gzip.compress(raw))
    con = store.connect()
    for k, t in enumerate(("g_patent", "g_inventor_disambiguated")):
        pv.stage(con, _fixture(t), input_id=k, quarantine=Quarantine())
    _staged_balance(con, path, 2)
    pv.assemble(con)
    n_contrib = con.execute("SELECT count(*) FROM raw_contributions").fetchall()[0][0]
    assert n_contrib == 60 - 1 - 2  # inventors do not depend on their locations


@_FUZZ
@given(cells=st.lists(st.tuples(_ODD, _ODD, _ODD, _ODD, _ODD), min_size=1, max_size=4))
def test_fuzz_location_and_inventor_cells(tmp_path, cells):
    header, *rows = _members(_fixture("g_location_disambiguated"))
    iheader, *irows = _members(_fixture("g_inventor_disambiguated"))
    for k, (loc, lat, lon, country, seq) in enumerate(cells):
        rows.append([loc, "Town", "", country, lat, lon, "", "", ""])
        irows.append(["10000000", seq, f"i{k}", "", "", "", loc])
    _write_tsv(tmp_path / "g_location_disambiguated.tsv", [header, *rows])
    _write_tsv(tmp_path / "g_inventor_disambiguated.tsv", [iheader, *irows])
    con = store.connect()
    pv.stage(con, _fixture("g_patent"), input_id=0, quarantine=Quarantine())
    _staged_balance(con, tmp_path / "g_inventor_disambiguated.tsv", 1)
    _staged_balance(con, tmp_path / "g_location_disambiguated.tsv", 2)
    pv.assemble(con)
    bad = con.execute("SELECT count(*) FROM raw_contributions WHERE lat NOT BETWEEN -90 AND 90 "
                      "OR lon NOT BETWEEN -180 AND 180 OR isnan(lat) OR isnan(lon) "
                      "OR (lat IS NULL) <> (lon IS NULL)").fetchall()[0][0]
    assert bad == 0


def test_a_generic_table_named_like_a_legacy_file_is_not_taken_for_patentsview(tmp_path):
    from stclusters.sources import detect_kind

    generic = tmp_path / "patent.tsv"
    generic.write_text("doc_id\tsource\tyear\tlat\tlon\nD1\tpatent\t2020\t48.8\t2.3\n")
    assert pv.table_of(generic) is None and detect_kind(generic) == "table"
    legacy = tmp_path / "sub" / "patent.tsv"
    legacy.parent.mkdir()
    legacy.write_text("id\ttype\tnumber\tcountry\tdate\tabstract\ttitle\tkind\tnum_claims\t"
                      "filename\twithdrawn\n")
    assert pv.table_of(legacy) == "patent" and detect_kind(legacy) == "patentsview"
