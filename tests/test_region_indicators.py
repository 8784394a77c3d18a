"""Region indicators (issue 10 §2): the tidy table read from the shipped GBA figures and users'
files (flags, bounds, replacement), the counts computed from a run's records checked against
an independent plain-Python count, each aggregation rule, and ``stclusters region``."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from conftest import SHARED_DATA
from stclusters.cli import app
from stclusters.errors import InputFormatError, ParameterError
from stclusters.params import RankParams
from stclusters.regions import load_region
from stclusters.regions import indicators as ind
from stclusters.regions._aggregate import aggregate, read_rates

runner = CliRunner()
DATA = Path(ind.__file__).parent / "data"
SHIPPED_NAMES = ("gba_innovation_indicators.csv",
                 "gba_11_cities_population_gdp_employment_1999_2024.csv")


# ------------------------------------------------------------------ the shipped table

def test_shipped_copies_are_byte_identical_to_the_shared_data():
    if not (SHARED_DATA / "gba").is_dir():
        pytest.skip("no ../shared/data/gba beside the checkout")
    for name in SHIPPED_NAMES:
        assert (DATA / name).read_bytes() == (SHARED_DATA / "gba" / name).read_bytes(), name


@pytest.fixture(scope="module")
def shipped() -> pa.Table:
    return ind.read_indicators()


def _raw_rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_shipped_figure_is_read_with_its_flag_source_and_line(shipped):
    assert shipped.schema == ind.SCHEMA
    innov = [r for r in shipped.to_pylist()
             if r["origin"].startswith("gba_innovation_indicators.csv:")]
    assert len(innov) == 81  # the data README: 81 figures
    # The data README's own counts: 54 secondary-source, 12 without an address.
    assert sum(r["flag"] == "secondary-source" for r in innov) == 54
    assert sum(r["source_url"] is None for r in innov) == 12
    raw = _raw_rows("gba_innovation_indicators.csv")
    by_line = {int(r["origin"].rsplit(":", 1)[1]): r for r in innov}
    for line, row in enumerate(raw, start=2):  # no field of this file spans lines
        got = by_line[line]
        assert (got["region"], got["year"], got["indicator"], got["value"], got["unit"],
                got["flag"], got["source_publisher"], got["note"]) == (
            row["region"], int(row["year"]), row["indicator"], float(row["value"]),
            row["unit"], row["flag"], row["source_publisher"], row["note"])


#: Rows of the shipped file whose notes state a bound, read by hand: (region, year,
#: indicator) → bound. Each note says "lower bound", or "exceed"/"more than"/… the figure.
SHIPPED_BOUNDS = {
    ("PRD-9", 2021, "rd_expenditure"): ">",                        # expected to EXCEED 3600
    ("PRD-9", 2021, "invention_patents_granted"): ">",             # expected to EXCEED 100000
    ("Guangdong (province)", 2023, "rd_expenditure"): ">",         # topped 460 bn, lower bound
    ("Guangdong (province)", 2023, "invention_patents_in_force"): ">",  # more than 665,000
    ("Guangdong (province)", 2023, "national_high_tech_enterprises"): ">",  # exceeded 75,000
    ("Shenzhen", 2018, "national_high_tech_enterprises"): ">",     # surpassing 14,000
}


def test_bounds_of_the_shipped_rows_are_the_ones_their_notes_state(shipped):
    innov = [r for r in shipped.to_pylist()
             if r["origin"].startswith("gba_innovation_indicators.csv:")]
    got = {(r["region"], r["year"], r["indicator"]): r["bound"] for r in innov if r["bound"]}
    assert got == SHIPPED_BOUNDS
    # Bound words about another figure do not make the row a bound:
    by_key = {(r["region"], r["year"], r["indicator"]): r for r in innov}
    for key, words in {("Guangdong (province)", 2021, "rd_expenditure"): "Upper bound for",
                       ("Guangdong (province)", 2021, "national_high_tech_enterprises"):
                           "over 77,000",
                       ("PRD-9", 2021, "national_high_tech_enterprises"): "5.7万家"}.items():
        assert words in by_key[key]["note"] and by_key[key]["bound"] is None


@pytest.mark.parametrize("note,value,bound", [
    ("'more than 1,200 firms'", 1200, ">"),
    ("at least 50 (lower bound)", 50, ">="),
    ("less than 7 labs", 7, "<"),
    ("upper bound, at most 9", 9, "<="),
    ("发明专利授权量预计超过10万件; 超过 100000", 100000, ">"),
    ("more than 3,000 were new; total 14,000", 14000, None),
    ("Upper bound for PRD-9: 4002", 4002, None),
    (None, 1, None),
])
def test_bound_from_note_rule(note, value, bound):
    assert ind.bound_from_note(note, value) == bound


def test_the_population_table_becomes_indicator_rows_with_flags_and_publishers(shipped):
    raw = _raw_rows("gba_11_cities_population_gdp_employment_1999_2024.csv")
    cells = sum(bool(r[c]) for r in raw for c in ("population_10k", "gdp_100m_local_currency",
                                                  "gdp_per_capita_local_currency",
                                                  "employed_persons_10k"))
    pop = [r for r in shipped.to_pylist() if r["origin"].startswith("gba_11_cities")]
    assert len(pop) == cells  # an empty cell is no row; every filled cell is one
    by_key = {(r["region"], r["year"], r["indicator"]): r for r in pop}
    hk = by_key[("Hong Kong", 2023, "gdp")]
    assert (hk["value"], hk["unit"], hk["flag"]) == (29834.08, "HKD 100 million", "revised")
    assert hk["source_publisher"] == "Census and Statistics Department, Hong Kong SAR"
    assert by_key[("Hong Kong", 2023, "population")]["flag"] == "official final"
    mo = by_key[("Macao", 2024, "gdp")]
    assert mo["unit"] == "MOP 100 million"
    assert mo["source_publisher"] == "Statistics and Census Service, Macao SAR"
    sz = by_key[("Shenzhen", 2021, "gdp")]
    assert sz["unit"] == "CNY 100 million (亿元)"  # as rd_expenditure's: ratios need no rate
    assert sz["source_publisher"] == "Statistics Bureau of Guangdong Province"
    assert ("Foshan", 2024, "gdp_per_capita") not in by_key  # empty in the table


# ------------------------------------------------------------------ users' files

HEADER = "region,year,indicator,value,unit,flag,source_publisher,source_title,source_url,note"


def test_a_later_file_replaces_the_same_figure_and_says_so(tmp_path):
    user = tmp_path / "mine.csv"
    user.write_text(HEADER + ",bound\n"
                    "PRD-9,2021,rd_expenditure,3658.2,CNY 100 million (亿元),official final,"
                    "Guangdong Statistics Bureau,2021 R&D bulletin,,final figure,\n"
                    "Zhongshan,2021,rd_expenditure,100.5,CNY 100 million (亿元),provisional,"
                    "Zhongshan Statistics Bureau,bulletin,,,>=\n", encoding="utf-8")
    tab = ind.read_indicators([user])
    rows = {(r["region"], r["year"], r["indicator"]): r for r in tab.to_pylist()}
    new = rows[("PRD-9", 2021, "rd_expenditure")]
    assert (new["value"], new["flag"], new["bound"]) == (3658.2, "official final", None)
    assert "replaces gba_innovation_indicators.csv:3 (value 3600, flag estimate, bound >)" \
        in new["note"]
    assert new["origin"] == f"{user}:2"
    assert rows[("Zhongshan", 2021, "rd_expenditure")]["bound"] == ">="
    assert tab.num_rows == ind.read_indicators().num_rows + 1
    # Whatever order rows come in, the table is the same bytes.
    shuffled = tmp_path / "shuffled.csv"
    lines = user.read_text(encoding="utf-8").splitlines()
    shuffled.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n", encoding="utf-8")
    again = ind.read_indicators([shuffled])
    assert again.drop(["origin", "note"]).equals(tab.drop(["origin", "note"]))


@pytest.mark.parametrize("row,line_field", [
    ("Shenzhen,20x1,rd_expenditure,1,CNY,official final,P,T,,", "line 3, field year"),
    ("Shenzhen,2021,rd_expenditure,\"3,600\",CNY,official final,P,T,,", "line 3, field value"),
    ("Shenzhen,2021,rd_expenditure,1,CNY,final,P,T,,", "line 3, field flag"),
    ("Shenzhen,2021,rd_expenditure,1,CNY,official final,,T,,", "line 3, field source_publisher"),
    ("Shenzhen,2021,R&D,1,CNY,official final,P,T,,", "line 3, field indicator"),
    ("Shenzhen,2021,rd_expenditure,1,CNY,official final,P,T", "line 3, field (row)"),
])
def test_a_bad_row_is_an_error_naming_file_line_and_field(tmp_path, row, line_field):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\nMacao,2021,x,1,u,estimate,P,T,,\n" + row + "\n",
                    encoding="utf-8")
    with pytest.raises(InputFormatError) as exc:
        ind.read_indicators([path], shipped=False)
    text = str(exc.value)
    assert str(path) in text and line_field in text and "\n" not in text


def test_a_missing_column_and_a_figure_given_twice_are_refused(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("region,year,indicator,value\nMacao,2021,x,1\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="missing columns unit, flag"):
        ind.read_indicators([path], shipped=False)
    path.write_text(HEADER + "\nMacao,2021,x,1,u,estimate,P,T,,\nMacao,2021,x,2,u,estimate,P,"
                    "T,,\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="line 3, field \\(row\\): same region.*line 2"):
        ind.read_indicators([path], shipped=False)


# ------------------------------------------------------------------ computed from records

#: Generated co-authorship with known places: name → (lat, lon, country, member or None).
PLACES = {"SZ": (22.5431, 114.0579, "CN", "Shenzhen"),
          "SZ2": (22.5333, 113.9304, "CN", "Shenzhen"),     # Nanshan district
          "GZ": (23.1291, 113.2644, "CN", "Guangzhou"),
          "HK": (22.2800, 114.1600, "HK", "Hong Kong"),
          "MO": (22.1987, 113.5439, "MO", "Macao"),
          "PAR": (48.8566, 2.3522, "FR", None), "TYO": (35.6895, 139.6917, "JP", None)}
#: doc_id, source, year, contributors (each a list of addresses).
DOCS = [("p1", "patent", 2020, [["SZ"], ["HK"]]),
        ("p2", "patent", 2021, [["SZ", "HK"], ["PAR"], ["GZ"]]),
        ("p3", "patent", 2021, [["TYO"], ["TYO"]]),
        ("p4", "patent", 2021, [["GZ"], ["SZ2"], ["SZ"], ["PAR"]]),
        ("p5", "patent", 2025, [["MO"], ["SZ"]]),
        ("w1", "publication", 2020, [["GZ"], ["MO"], ["PAR"]]),
        ("w2", "publication", 2021, [["SZ2"]]),
        ("w3", "publication", 2021, [["PAR"], ["TYO"]])]


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    """One ranking of the generated table, written as a run folder (shared by many tests)."""
    tmp = tmp_path_factory.mktemp("gen")
    path = tmp / "docs.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["doc_id", "source", "year", "contributor_seq", "address_seq", "country",
                    "lat", "lon"])
        for doc, source, year, contributors in DOCS:
            for ci, addresses in enumerate(contributors):
                for ai, place in enumerate(addresses):
                    lat, lon, cc, _ = PLACES[place]
                    w.writerow([doc, source, year, ci, ai, cc, lat, lon])
    params = (RankParams().with_source("patent", min_weight=0.1)
              .with_source("publication", min_weight=0.1))
    res = stclusters.rank([str(path)], params=params)
    res.write(tmp / "run")
    gba = load_region("GBA")
    computed = ind.computed_indicators(res.con, gba)
    clusters = ind.city_clusters(res.con, gba, placed=True)
    return res, computed, clusters, tmp / "run"


def _expected_counts() -> tuple[dict, dict]:
    """Independent count in plain Python: (fractional, whole) per (unit, source, year), with
    unit '*' the world."""
    gba = load_region("GBA")
    units = {m: {m} for m in gba.member_names}
    units |= {"GBA": set(gba.member_names), **{g: set(ms) for g, ms in gba.groups.items()}}
    frac: dict = defaultdict(Fraction)
    docs: dict = defaultdict(set)
    for doc, source, year, contributors in DOCS:
        for addresses in contributors:
            for place in addresses:
                w = Fraction(1, len(contributors) * len(addresses))
                member = PLACES[place][3]
                frac[("*", source, year)] += w
                docs[("*", source, year)].add(doc)
                for unit, ms in units.items():
                    if member in ms:
                        frac[(unit, source, year)] += w
                        docs[(unit, source, year)].add(doc)
    return frac, {k: len(v) for k, v in docs.items()}


def _population() -> dict:
    out = {}
    names = {"Hong Kong SAR": "Hong Kong", "Macao SAR": "Macao"}
    for r in _raw_rows("gba_11_cities_population_gdp_employment_1999_2024.csv"):
        out[(names.get(r["city_en"], r["city_en"]), int(r["year"]))] = float(r["population_10k"])
    return out


def test_computed_counts_match_an_independent_count(generated_run):
    _res, computed, _clusters, _ = generated_run
    frac, whole = _expected_counts()
    pop = _population()
    gba = load_region("GBA")
    got = {(r["region"], r["indicator"], r["year"]): r for r in computed.to_pylist()}
    units = [*gba.member_names, "GBA", "PRD-9", "HK-MO"]
    grid = sorted({(s, y) for (_u, s, y) in frac})
    assert len(computed) == len(units) * len(grid) * 8
    for unit in units:
        ms = gba.groups.get(unit, gba.member_names if unit == "GBA" else (unit,))
        for source, year in grid:
            f, d = frac.get((unit, source, year), Fraction(0)), whole.get((unit, source, year), 0)
            row = lambda name: got[(unit, f"{source}_{name}", year)]  # noqa: E731
            assert row("fractional_count")["value"] == pytest.approx(float(f), rel=1e-12, abs=1e-15)
            assert row("whole_count")["value"] == d
            assert row("world_share_fractional")["value"] == pytest.approx(
                float(100 * f / frac[("*", source, year)]), rel=1e-12, abs=1e-13)
            assert row("world_share_whole")["value"] == pytest.approx(
                100 * d / whole[("*", source, year)], rel=1e-12)
            prev = frac.get((unit, source, year - 1)) if (source, year - 1) in grid else None
            growth = row("growth_fractional")
            if prev:
                assert growth["value"] == pytest.approx(float(100 * (f / prev - 1)), rel=1e-9)
            else:
                assert growth["value"] is None
                assert ("no records for" if (source, year - 1) not in grid
                        else "zero count") in growth["note"]
            persons = [pop.get((m, year)) for m in ms]
            pc = row("per_million_fractional")
            if None in persons:
                assert pc["value"] is None and f"population of {year} missing" in pc["note"]
            else:
                assert pc["value"] == pytest.approx(float(f) * 1e6 / (sum(persons) * 1e4),
                                                    rel=1e-9)
                assert row("per_million_whole")["value"] == pytest.approx(
                    d * 1e6 / (sum(persons) * 1e4), rel=1e-9)
    assert set(computed.column("flag").to_pylist()) == {"computed"}
    assert set(computed.column("source_publisher").to_pylist()) == {ind.COMPUTED_PUBLISHER}
    # The case the grid holds: Shenzhen's 2021 patents (p2: 1/3 × 1/2, p4: 2 × 1/4).
    assert got[("Shenzhen", "patent_fractional_count", 2021)]["value"] == pytest.approx(2 / 3)
    assert got[("Shenzhen", "patent_whole_count", 2021)]["value"] == 2


def test_each_city_is_given_the_cluster_holding_most_of_its_weight(generated_run):
    res, _computed, clusters, _ = generated_run
    stc = {(s, lat, lon): k for s, lat, lon, k in res.con.execute(
        "SELECT source, lat, lon, stc FROM points").fetchall()}
    info = {k: (cid, rank, name) for k, cid, rank, name in res.con.execute(
        "SELECT stc, cluster_id, rank, name FROM clusters").fetchall()}
    weight: dict = defaultdict(lambda: defaultdict(Fraction))
    for doc, source, year, contributors in DOCS:
        for addresses in contributors:
            for place in addresses:
                lat, lon, _cc, member = PLACES[place]
                if member:
                    k = stc.get((source, lat, lon))
                    weight[(member, source)][info[k] if k in info else None] += Fraction(
                        1, len(contributors) * len(addresses))
    got = {(r["member"], r["source"]): r for r in clusters.to_pylist()}
    assert set(got) == set(weight)
    for key, by_cluster in weight.items():
        total = sum(by_cluster.values())
        best = max((c for c in by_cluster if c), key=lambda c: (by_cluster[c], -c[1]))
        row = got[key]
        assert (row["cluster_id"], row["rank"], row["name"]) == best
        assert row["share_pct"] == pytest.approx(float(100 * by_cluster[best] / total))
        assert row["member_weight"] == pytest.approx(float(total))


def test_computed_indicators_on_a_synthetic_world(tmp_path):
    from stclusters import synthetic

    path = tmp_path / "world.parquet"
    pq.write_table(synthetic.synthetic_world(n_per_source=800, seed=3, years=(2020, 2021)),
                   path)
    res = stclusters.rank([str(path)])
    gba = load_region("GBA")
    computed = ind.computed_indicators(res.con, gba)
    rc = res.con.execute("SELECT doc_id, source, year, member, weight_fx "
                         "FROM region_contributions").fetchall()
    frac: dict = defaultdict(int)
    docs: dict = defaultdict(set)
    for doc, source, year, member, fx in rc:  # independent count of the placed rows
        for unit in [member, "GBA", *(g for g, ms in gba.groups.items() if member in ms)]:
            if member is not None:
                frac[(unit, source, year)] += fx
                docs[(unit, source, year)].add(doc)
        frac[("*", source, year)] += fx
    got = {(r["region"], r["indicator"], r["year"]): r["value"] for r in computed.to_pylist()}
    assert frac[("GBA", "patent", 2021)] > 0  # the synthetic world has GBA places
    for (unit, source, year), fx in frac.items():
        if unit == "*":
            continue
        assert got[(unit, f"{source}_fractional_count", year)] == fx / 2**52
        assert got[(unit, f"{source}_whole_count", year)] == len(docs[(unit, source, year)])
        assert got[(unit, f"{source}_world_share_fractional", year)] == pytest.approx(
            100 * fx / frac[("*", source, year)], rel=1e-12)
    for source in ("patent", "publication"):
        key = lambda u: got[(u, f"{source}_fractional_count", 2021)]  # noqa: E731
        assert key("GBA") == pytest.approx(key("PRD-9") + key("HK-MO"), rel=1e-12)
        whole = lambda u: got[(u, f"{source}_whole_count", 2021)]  # noqa: E731
        assert max(whole(m) for m in gba.member_names) <= whole("GBA") <= sum(
            whole(m) for m in gba.member_names)


# ------------------------------------------------------------------ aggregation rules

def _row(region, indicator, value, unit, *, year=2021, flag="official final", bound=None,
         publisher="P"):
    return {"region": region, "year": year, "indicator": indicator, "value": value,
            "unit": unit, "flag": flag, "bound": bound, "source_publisher": publisher,
            "source_title": "T", "source_url": None, "note": None, "origin": "test"}


def _agg(rows, **kw):
    out = aggregate(ind.to_table(rows), into="G", members=["A", "B"], **kw)
    return {(r["indicator"], r["year"]): r for r in out.to_pylist()}


def test_rule_counts_are_summed():
    got = _agg([_row("A", "state_key_laboratories", 16, "laboratories"),
                _row("B", "state_key_laboratories", 4, "laboratories", publisher="Q")])
    row = got[("state_key_laboratories", 2021)]
    assert (row["region"], row["value"], row["unit"]) == ("G", 20, "laboratories")
    assert row["source_publisher"] == "P; Q" and "sum of A, B" in row["note"]


def test_rule_ratios_are_recomputed_from_their_parts_not_averaged():
    rows = [_row("A", "rd_expenditure", 100, "CNY 100 million (亿元)"),
            _row("A", "gdp", 1000, "CNY 100 million (亿元)"),
            _row("A", "rd_intensity", 10.0, "% of GDP"),
            _row("B", "rd_expenditure", 300, "CNY 100 million (亿元)"),
            _row("B", "gdp", 9000, "CNY 100 million (亿元)"),
            _row("B", "rd_intensity", 3.3333, "% of GDP")]
    row = _agg(rows)[("rd_intensity", 2021)]
    assert row["value"] == pytest.approx(100 * 400 / 10000)  # 4.0, not (10 + 3.33) / 2
    assert row["unit"] == "% of GDP" and "Σ rd_expenditure / Σ gdp" in row["note"]


def test_rule_per_capita_is_recomputed_from_numerator_and_population():
    rows = [_row("A", "invention_patents_in_force", 2000, "patents"),
            _row("A", "population", 100, "10k persons"),
            _row("B", "invention_patents_in_force", 1000, "patents"),
            _row("B", "population", 400, "10k persons")]
    row = _agg(rows, indicators=["invention_patents_in_force_per_10k_pop"])[
        ("invention_patents_in_force_per_10k_pop", 2021)]
    assert row["value"] == pytest.approx(3000 / 500)  # per 10,000 residents


def test_rule_percentages_intensities_and_whole_counts_are_never_summed():
    rows = [_row(m, "patent_world_share_fractional", 1.0, "% of world (fractional count)")
            for m in "AB"] + [_row(m, "patent_whole_count", 3, "documents (whole count)")
                              for m in "AB"]
    for name, words in (("patent_world_share_fractional", "never summed"),
                        ("patent_whole_count", "not additive")):
        with pytest.raises(ParameterError, match=words):
            _agg(rows, indicators=[name])
    got = _agg(rows)  # asked for everything: a row saying why, no number
    assert got[("patent_world_share_fractional", 2021)]["value"] is None
    assert "never summed" in got[("patent_world_share_fractional", 2021)]["note"]
    assert got[("patent_whole_count", 2021)]["value"] is None


def test_rule_currencies_only_with_a_cited_rate_table(tmp_path):
    rows = [_row("A", "rd_expenditure", 100, "CNY 100 million (亿元)"),
            _row("B", "rd_expenditure", 20000, "HKD million")]
    plain = _agg(rows)[("rd_expenditure", 2021)]
    assert plain["value"] is None and "units differ (CNY, HKD)" in plain["note"]
    with pytest.raises(ParameterError, match="needs a rate table"):
        _agg(rows, currency="CNY")
    rates = tmp_path / "rates.csv"
    rates.write_text("year,from_currency,to_currency,rate,source_publisher,source_title,"
                     "source_url\n2021,HKD,CNY,0.83,Test Bank,Test rates 2021,\n")
    row = _agg(rows, rates=read_rates(rates), currency="CNY")[("rd_expenditure", 2021)]
    # 100 × 1e8 CNY + 20000 × 1e6 HKD × 0.83, written in the first member's unit (1e8 CNY)
    assert row["value"] == pytest.approx(100 + 20000 * 1e6 * 0.83 / 1e8)
    assert row["unit"] == "CNY 100 million (亿元)" and "rates of Test Bank" in row["note"]
    missing = _agg([{**r, "year": 2020} for r in rows], rates=read_rates(rates),
                   currency="CNY")[("rd_expenditure", 2020)]
    assert missing["value"] is None and "no HKD→CNY rate for 2020" in missing["note"]
    rates.write_text("year,from_currency,to_currency,rate,source_publisher,source_title,"
                     "source_url\n2021,HKD,CNY,0.83,,,\n")
    with pytest.raises(InputFormatError, match="line 2.*cite its source"):
        read_rates(rates)


def test_rule_province_rows_are_never_added_to_city_rows():
    table = ind.read_indicators()
    with pytest.raises(ParameterError, match="province-level row is never added"):
        aggregate(table, into="X", members=["Guangzhou", "Guangdong (province)"])


def test_rule_a_group_total_needs_every_member():
    got = _agg([_row("A", "patents_granted_total", 5, "patents")])
    row = got[("patents_granted_total", 2021)]
    assert row["value"] is None and row["note"] == "not summed: no figure for: B"
    prd9 = load_region("PRD-9").member_names
    real = aggregate(ind.read_indicators(), into="PRD-9", members=prd9,
                     indicators=["rd_expenditure", "population"])
    rows = {(r["indicator"], r["year"]): r for r in real.to_pylist()}
    assert rows[("rd_expenditure", 2019)]["value"] is None
    assert rows[("rd_expenditure", 2019)]["note"].endswith("Zhongshan, Jiangmen, Zhaoqing")
    pop = _population()
    assert rows[("population", 2021)]["value"] == pytest.approx(
        sum(pop[(m, 2021)] for m in prd9))


def test_rule_bounds_propagate():
    lower = _agg([_row("A", "patents_granted_total", 5, "patents", bound=">"),
                  _row("B", "patents_granted_total", 7, "patents")])
    assert lower[("patents_granted_total", 2021)]["bound"] == ">"
    assert lower[("patents_granted_total", 2021)]["value"] == 12
    mixed = _agg([_row("A", "patents_granted_total", 5, "patents", bound=">="),
                   _row("B", "patents_granted_total", 7, "patents", bound="<")])
    assert mixed[("patents_granted_total", 2021)]["value"] is None
    assert "lower and upper bounds" in mixed[("patents_granted_total", 2021)]["note"]
    ratio = _agg([_row(m, "rd_expenditure", 10, "CNY 100 million (亿元)") for m in "AB"]
                 + [_row("A", "gdp", 100, "CNY 100 million (亿元)", bound=">="),
                    _row("B", "gdp", 100, "CNY 100 million (亿元)")],
                 indicators=["rd_intensity"])
    # A denominator that is at least 200 makes the intensity at most 10 %.
    assert (ratio[("rd_intensity", 2021)]["value"], ratio[("rd_intensity", 2021)]["bound"]) \
        == (pytest.approx(10.0), "<=")


def test_rule_flags_propagate_the_weakest():
    got = _agg([_row("A", "patents_granted_total", 5, "patents", flag="official final"),
                _row("B", "patents_granted_total", 7, "patents", flag="estimate")])
    assert got[("patents_granted_total", 2021)]["flag"] == "estimate"
    got = _agg([_row("A", "patents_granted_total", 5, "patents", flag="revised"),
                _row("B", "patents_granted_total", 7, "patents", flag="provisional")])
    assert got[("patents_granted_total", 2021)]["flag"] == "provisional"


# ------------------------------------------------------------------ the command

def test_region_gba_prints_the_shipped_table_with_bounds_sources_and_credits():
    r = runner.invoke(app, ["region", "GBA"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())  # the table wraps long cells
    assert "> 3,600" in text and "> 100,000" in text
    assert "Census and Statistics Department" in text  # a row's publisher and the credits
    assert "Statistics and Census Service, Macao SAR" in text
    assert "GeoNames" in text


def test_region_filters_json_and_unknown_names(tmp_path):
    r = runner.invoke(app, ["region", "PRD-9", "--year", "2021", "--indicator",
                            "rd_expenditure", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    regions = {row["region"] for row in doc["indicators"]}
    assert regions == {"PRD-9", "Guangzhou", "Shenzhen", "Guangdong (province)"}
    assert {row["year"] for row in doc["indicators"]} == {2021}
    assert "Hong Kong" not in regions  # not a PRD-9 member
    r = runner.invoke(app, ["region", "GBA", "--indicator", "no_such_thing"])
    assert r.exit_code == 2 and "no_such_thing" in r.output
    r = runner.invoke(app, ["region", "Atlantis"])
    assert r.exit_code == 2 and "unknown region" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nMacao,2021,x,1,u,guess,P,T,,\n", encoding="utf-8")
    r = runner.invoke(app, ["region", "GBA", "--indicators", str(bad)])
    assert r.exit_code == 2 and "line 2, field flag" in " ".join(r.output.split())


def test_region_with_a_run_writes_indicators_clusters_and_summary(generated_run, tmp_path):
    _res, computed, clusters, run_dir = generated_run
    out = tmp_path / "gba"
    r = runner.invoke(app, ["region", "GBA", "--run", str(run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "patent_fractional_count" in r.output and "S&T cluster of each city" in r.output
    written = pq.read_table(out / "indicators.parquet")
    assert written.schema == ind.SCHEMA
    mine = written.filter(pa.compute.equal(written.column("flag"), "computed"))
    assert mine.num_rows == computed.num_rows
    assert pq.read_table(out / "city_clusters.parquet").num_rows == clusters.num_rows
    summary = json.loads((out / "region.json").read_text())
    assert summary["region"] == "GBA" and summary["rows"] == written.num_rows
    assert any("Census and Statistics Department" in c for c in summary["credits"])
    first = [(out / n).read_bytes() for n in ("indicators.csv", "city_clusters.csv")]
    r = runner.invoke(app, ["region", "GBA", "--run", str(run_dir), "--out", str(out),
                            "--json"])  # same files again, byte for byte
    assert r.exit_code == 0 and json.loads(r.output)["city_clusters"] == clusters.to_pylist()
    assert [(out / n).read_bytes() for n in ("indicators.csv", "city_clusters.csv")] == first


def test_rows_of_a_region_are_its_members_groups_and_context(shipped, tmp_path):
    prd9 = {r["region"] for r in ind.rows_of_region(shipped, load_region("PRD-9")).to_pylist()}
    assert "Guangdong (province)" in prd9 and "PRD-9" in prd9 and "Shenzhen" in prd9
    assert not prd9 & {"Hong Kong", "Macao"}
    hkmo = {r["region"] for r in ind.rows_of_region(shipped, load_region("HK-MO")).to_pylist()}
    assert hkmo == {"Hong Kong", "Macao", "HK-MO"} & {r["region"] for r in shipped.to_pylist()}
    other = tmp_path / "other.yaml"  # a region of users: no GBA row is about it
    other.write_text("id: Lyon\nmembers:\n  - {name: Lyon, countries: [FR]}\n")
    assert ind.rows_of_region(shipped, load_region(other)).num_rows == 0


# ------------------------------------------------------------------ review fixes (issue 10)

def test_one_formatter_for_every_figure():
    from stclusters.regions._format import number

    assert number(3600.0, bound=">") == "> 3,600"
    assert number(2962.36) == "2,962.36"
    assert number(1 / 3) == "0.333333"  # at most 6 significant digits after the point
    assert number(0.000123456789) == "0.000123457"
    assert number(12.345, digits=1) == "12.3"
    assert number(None) == number(float("nan")) == "—"
    assert number(float("inf")) == "inf" and number(-float("inf")) == "-inf"
    assert number(-0.0) == "0" and number(1234567.0) == "1,234,567"


def test_one_province_predicate_and_one_unit_reader():
    from stclusters.regions._format import is_province, unit_base

    assert all(is_province(n) for n in ("Guangdong (province)", "Guangdong Province", "广东省",
                                         "Guangdong", "广西", "Hunan"))
    # Municipalities and Jilin (a city of Jilin province) are cities too.
    assert not any(is_province(n) for n in ("Shenzhen", "Provincetown", "Hong Kong", "Beijing",
                                            "上海", "Chongqing", "Jilin", "PRD-9"))
    assert unit_base("CNY 100 million (亿元)") == ("CNY", 1e8)
    assert unit_base("CNY billion") == ("CNY", 1e9)
    assert unit_base("HKD million") == ("HKD", 1e6)
    assert unit_base("10k persons") == ("persons", 1e4)
    assert unit_base("% of GDP") == ("% of GDP", 1.0)
    with pytest.raises(ParameterError, match="province-level"):
        aggregate(ind.to_table([_row("A", "gdp", 1, "CNY"), _row("广东省", "gdp", 1, "CNY")]),
                  into="G", members=["A", "广东省"])
    with pytest.raises(ParameterError, match="province-level"):
        aggregate(ind.to_table([_row("A", "gdp", 1, "CNY"), _row("Guangdong", "gdp", 1, "CNY")]),
                  into="G", members=["A", "Guangdong"])


def _rates(tmp_path, body: str) -> Path:
    path = tmp_path / "rates.csv"
    path.write_text("year,from_currency,to_currency,rate,source_publisher,source_title,"
                    "source_url\n" + body, encoding="utf-8")
    return path


def test_a_converted_ratio_is_in_the_target_currency_and_cites_its_rate(tmp_path):
    rates = read_rates(_rates(tmp_path, "2021,HKD,CNY,0.83,Test Bank,Test rates 2021,\n"))
    rows = [_row("A", "gdp", 28000, "HKD 100 million", publisher="C&SD"),
            _row("A", "gdp_per_capita", 378000, "HKD per person"),  # the first member's unit
            _row("B", "gdp_per_capita", 170000, "CNY per person"),
            _row("A", "population", 740, "10k persons"),
            _row("B", "gdp", 30000, "CNY 100 million (亿元)"),
            _row("B", "population", 1760, "10k persons")]
    row = _agg(rows, rates=rates, currency="CNY",
               indicators=["gdp_per_capita"])[("gdp_per_capita", 2021)]
    assert row["unit"] == "CNY per person"  # not the first member's "HKD …"
    assert row["value"] == pytest.approx((28000 * 0.83 + 30000) * 1e8 / (2500 * 1e4))
    assert "Test Bank, Test rates 2021" in row["note"]
    assert "Test Bank" in row["source_publisher"].split("; ")
    summed = _agg(rows, rates=rates, currency="CNY", indicators=["gdp"])[("gdp", 2021)]
    assert "Test Bank" in summed["source_publisher"].split("; ")
    assert "Test Bank, Test rates 2021" in summed["note"]
    plain = _agg([_row(m, "gdp", 1, "HKD 100 million") for m in "AB"]
                 + [_row(m, "population", 1, "10k persons") for m in "AB"],
                 indicators=["gdp_per_capita"])[("gdp_per_capita", 2021)]
    assert plain["unit"] == "HKD per person" and plain["value"] == pytest.approx(1e4)


def test_per_as_a_word_makes_an_intensity_not_per_inside_a_word():
    from stclusters.regions._aggregate import kind_of

    assert kind_of("paper_count", "papers") == "sum"
    assert kind_of("newspaper_articles", "articles") == "sum"
    assert kind_of("rd_per_capita", "CNY") == "intensity"
    assert kind_of("per_capita_income", "CNY") == "intensity"
    got = _agg([_row(m, "paper_count", 2, "papers") for m in "AB"],
               indicators=["paper_count"])
    assert got[("paper_count", 2021)]["value"] == 4


def test_a_ratio_part_in_two_units_says_so_and_rates_are_checked(tmp_path):
    rows = [_row("A", "gdp", 1, "CNY 100 million (亿元)"), _row("A", "gdp", 1, "CNY billion"),
            _row("B", "gdp", 1, "CNY 100 million (亿元)")] + [
        _row(m, "population", 1, "10k persons") for m in "AB"]
    row = _agg(rows, indicators=["gdp_per_capita"])[("gdp_per_capita", 2021)]
    assert row["value"] is None and "more than one unit of gdp for: A" in row["note"]
    for body, words in (
            ("2021,HKD,CNY,0.83,Bank,Rates,\n2021,HKD,CNY,0.84,Bank,Rates,\n",
             "line 3, field rate: HKD/CNY 2021 already given on line 2"),
            ("2021,HKD,CNY,0.83,Bank,Rates,\n2021,CNY,HKD,1.2,Bank,Rates,\n",
             "line 3, field rate: CNY/HKD 2021 already given on line 2"),
            ("2021,HKD,CNY,0.83,Bank,Rates,,extra\n", "line 2, field \\(row\\)")):
        with pytest.raises(InputFormatError, match=words):
            read_rates(_rates(tmp_path, body))
    path = tmp_path / "cols.csv"
    path.write_text("year,from_currency,to_currency,rate,source_publisher,source_title,"
                    "source_url,comment\n2021,HKD,CNY,0.83,Bank,Rates,,x\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="unknown columns comment"):
        read_rates(path)


def test_a_repeated_key_is_not_counted_twice_in_the_city_cluster(tmp_path):
    """A table with the same (doc, contributor, address) twice: the city's weight in its
    cluster is its fractional count, not more (the generic reader accepts repeated keys)."""
    path = tmp_path / "rep.csv"
    sz, hk = PLACES["SZ"][:3], PLACES["HK"][:3]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["doc_id", "source", "year", "contributor_seq", "address_seq", "country",
                    "lat", "lon"])
        for doc, ci, (lat, lon, cc) in (("d1", 0, sz), ("d1", 0, sz), ("d1", 1, hk),
                                        ("d2", 0, sz), ("d3", 0, PLACES["PAR"][:3])):
            w.writerow([doc, "patent", 2021, ci, 0, cc, lat, lon])
    res = stclusters.rank([str(path)], params=RankParams().with_source("patent",
                                                                        min_weight=0.1))
    gba = load_region("GBA")
    counted = {r["region"]: r["value"] for r in ind.computed_indicators(res.con, gba)
               .to_pylist() if r["indicator"] == "patent_fractional_count"}
    cities = {r["member"]: r for r in ind.city_clusters(res.con, gba, placed=True).to_pylist()}
    for city in ("Shenzhen", "Hong Kong"):
        assert cities[city]["member_weight"] == pytest.approx(counted[city])
        assert cities[city]["weight"] <= cities[city]["member_weight"]
    assert cities["Shenzhen"]["member_weight"] == pytest.approx(1.5)


@pytest.fixture(scope="module")
def labelled_run(generated_run, tmp_path_factory):
    """The generated table ranked again with the label SYNTHETIC, written as a run."""
    res, *_ = generated_run
    tmp = tmp_path_factory.mktemp("lab")
    params = (RankParams().with_source("patent", min_weight=0.1)
              .with_source("publication", min_weight=0.1))
    src = Path(generated_run[3]).parent / "docs.csv"
    stclusters.rank([str(src)], params=params, label="SYNTHETIC").write(tmp / "run")
    return tmp / "run"


def test_region_out_labels_only_the_rows_computed_from_a_labelled_run(labelled_run, tmp_path):
    out = tmp_path / "rg"
    r = runner.invoke(app, ["region", "GBA", "--run", str(labelled_run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for ext in ("csv", "parquet"):
        read = (pq.read_table if ext == "parquet" else pacsv.read_csv)(out / f"indicators.{ext}")
        rows = read.to_pylist()
        assert rows and all((row["data_label"] == "SYNTHETIC") == (row["flag"] == "computed")
                            for row in rows), ext
        cities = (pq.read_table if ext == "parquet" else pacsv.read_csv)(
            out / f"city_clusters.{ext}")
        assert set(cities.column("data_label").to_pylist()) == {"SYNTHETIC"}
    assert json.loads((out / "region.json").read_text())["data_label"] == "SYNTHETIC"
    doc = json.loads(runner.invoke(app, ["region", "GBA", "--run", str(labelled_run),
                                         "--json"]).output)
    assert {row["data_label"] for row in doc["indicators"]} == {None, "SYNTHETIC"}
    # Read back: a labelled row is not real data, refused with its line.
    with pytest.raises(InputFormatError, match="field data_label: labelled 'SYNTHETIC'"):
        ind.read_indicators([out / "indicators.csv"])


def test_read_indicators_reads_back_what_region_out_wrote(generated_run, tmp_path):
    out = tmp_path / "rg"
    r = runner.invoke(app, ["region", "GBA", "--run", str(generated_run[3]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    written = pq.read_table(out / "indicators.parquet")
    assert written.column("value").null_count > 0  # growth without a previous year
    for name in ("indicators.csv", "indicators.parquet"):
        alone = ind.read_indicators([out / name], shipped=False)
        assert alone.drop(["origin"]).equals(written.drop(["origin"])), name
        first = 1 if name.endswith(".parquet") else 2  # row number; line after the header
        assert f"{out / name}:{first}" in alone.column("origin").to_pylist(), name
        # Read after the shipped rows: the same figures replace nothing (origins kept).
        again = ind.read_indicators([out / name])
        computed = [r for r in alone.to_pylist() if r["flag"] == "computed"]
        assert computed and again.equals(
            ind.to_table(ind.read_indicators().to_pylist() + computed)), name
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + ",bounds\nMacao,2021,x,1,u,estimate,P,T,,,>\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="unknown columns bounds"):
        ind.read_indicators([bad], shipped=False)
    broken = tmp_path / "broken.parquet"
    pq.write_table(written.slice(0, 3).set_column(
        3, "value", pa.array(["x", "1", "2"])), broken)
    with pytest.raises(InputFormatError, match="line 1, field value"):
        ind.read_indicators([broken], shipped=False)


def _population_file(tmp_path, rows: str) -> Path:
    path = tmp_path / "pop.csv"
    path.write_text(HEADER + "\n" + rows, encoding="utf-8")
    return path


def test_users_population_rows_are_used_per_capita_and_checked(generated_run, tmp_path):
    run_dir = generated_run[3]
    base, _, _ = ind.region_table(load_region("GBA"), run=run_dir, years=[2021])
    doubled = _population_file(tmp_path, "Shenzhen,2021,population,3536,10k persons,"
                               "official final,Me,Mine,,twice the residents\n")
    table, _, _ = ind.region_table(load_region("GBA"), files=[doubled], run=run_dir,
                                   years=[2021])
    get = lambda t: {r["region"]: r["value"] for r in t.to_pylist()  # noqa: E731
                     if r["indicator"] == "patent_per_million_fractional"}
    pop = _population()
    before, after = get(base)["Shenzhen"], get(table)["Shenzhen"]
    assert after == pytest.approx(before * pop[("Shenzhen", 2021)] / 3536)
    two_units = _population_file(tmp_path, "Shenzhen,2021,population,17680000,persons,"
                                 "official final,Me,Mine,,\n")
    with pytest.raises(ParameterError, match="population of Shenzhen 2021 given twice"):
        ind.region_table(load_region("GBA"), files=[two_units], run=run_dir)
    zero = _population_file(tmp_path, "Macao,2021,population,0,10k persons,"
                            "official final,Me,Mine,,\n")
    table, _, _ = ind.region_table(load_region("GBA"), files=[zero], run=run_dir, years=[2021])
    row = [r for r in table.to_pylist() if (r["region"], r["indicator"])
           == ("Macao", "patent_per_million_fractional")][0]
    assert row["value"] is None and "not above 0" in row["note"]
    r = runner.invoke(app, ["region", "GBA", "--run", str(run_dir), "--indicators", str(zero),
                            "--indicator", "patent_per_million_fractional"])
    assert r.exit_code == 0, r.output


def test_importing_the_region_command_first_works():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import stclusters._cli_region; "
                           "import stclusters.cli; print('ok')"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-400:]


def test_the_group_title_names_the_group_once():
    r = runner.invoke(app, ["region", "PRD-9", "--year", "2021"])
    assert r.exit_code == 0, r.output
    assert "PRD-9: PRD-9" not in r.output and "(PRD-9): indicators" not in r.output
    assert "PRD-9 (Guangdong–Hong Kong–Macao Greater Bay Area)" in r.output
    r = runner.invoke(app, ["region", "GBA", "--year", "2021"])
    assert "GBA: Guangdong–Hong Kong–Macao Greater Bay Area" in r.output


def test_write_outputs_writes_tables_labelled_and_a_summary(tmp_path):
    from stclusters.analysis._output import write_outputs

    t = pa.table({"x": [1, 2]})
    mixed = pa.table({"data_label": [None, "S"], "x": [1, 2]})
    paths = write_outputs(tmp_path / "o", {"a": t, "b": mixed}, {"k": 1}, stem_json="s",
                          label="S", force=False)
    assert [p.name for p in paths] == ["a.csv", "a.parquet", "b.csv", "b.parquet", "s.json"]
    assert pq.read_table(tmp_path / "o" / "a.parquet").column("data_label").to_pylist() == \
        ["S", "S"]
    assert pq.read_table(tmp_path / "o" / "b.parquet").equals(mixed)  # labelled by its maker
    again = write_outputs(tmp_path / "o", {"a": t}, {"k": 1}, stem_json="s", label=None,
                          force=False, own_names=["b.csv", "b.parquet"])
    assert pq.read_table(again[1]).column_names == ["x"]
    (tmp_path / "o" / "other.txt").write_text("x")
    with pytest.raises(ParameterError, match="holds other files"):
        write_outputs(tmp_path / "o", {"a": t}, {}, stem_json="s", label=None, force=False)


def test_region_aggregate_adds_groups_from_members_with_cited_rates(tmp_path):
    rates = _rates(tmp_path, "2021,HKD,CNY,0.83,Test Bank,Test rates 2021,\n"
                             "2021,MOP,CNY,0.81,Test Bank,Test rates 2021,\n")
    r = runner.invoke(app, ["region", "GBA", "--aggregate", "--rates", str(rates), "--currency",
                            "cny", "--indicator", "population", "--indicator", "gdp",
                            "--year", "2021", "--json"])
    assert r.exit_code == 0, r.output
    got = {(row["region"], row["indicator"]): row for row in json.loads(r.output)["indicators"]
           if row["origin"].startswith("aggregate(")}
    pop = _population()
    prd9 = load_region("PRD-9").member_names
    assert got[("PRD-9", "population")]["value"] == pytest.approx(
        sum(pop[(m, 2021)] for m in prd9))
    gba = got[("GBA", "gdp")]
    assert gba["unit"] == "CNY 100 million (亿元)" and "Test Bank" in gba["source_publisher"]
    assert "converted at rates of Test Bank, Test rates 2021" in gba["note"]
    r = runner.invoke(app, ["region", "GBA", "--aggregate", "--indicator", "gdp", "--year",
                            "2021", "--json"])
    plain = {row["region"]: row for row in json.loads(r.output)["indicators"]
             if row["origin"] == "aggregate(GBA)"}
    assert plain["GBA"]["value"] is None and "units differ" in plain["GBA"]["note"]
    r = runner.invoke(app, ["region", "GBA", "--currency", "CNY"])
    assert r.exit_code == 2 and "--aggregate" in r.output


# ------------------------------------------------------------------ review round 3 (I3)

def test_negative_counts_amounts_and_populations_are_refused_naming_file_line_field(tmp_path):
    path = tmp_path / "neg.csv"
    path.write_text(HEADER + "\nShenzhen,2021,population,-1768,10k persons,official final,P,T,,"
                    "\nShenzhen,2021,rd_expenditure,-5,CNY 100 million (亿元),official final,"
                    "P,T,,\nShenzhen,2021,patent_growth_fractional,-3.5,% vs previous year,"
                    "official final,P,T,,\n", encoding="utf-8")
    with pytest.raises(InputFormatError) as exc:
        ind.read_indicators([path], shipped=False)
    text = str(exc.value)
    assert str(path) in text and "2 bad row(s)" in text and "\n" not in text
    assert "line 2, field value: '-1768' is negative" in text
    assert "line 3, field value: '-5' is negative" in text
    path.write_text(HEADER + "\nShenzhen,2021,patent_growth_fractional,-3.5,% vs previous year,"
                    "official final,P,T,,\n", encoding="utf-8")  # a fall is a figure
    assert ind.read_indicators([path], shipped=False).column("value").to_pylist() == [-3.5]
    r = runner.invoke(app, ["region", "GBA", "--indicators", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2


def test_aggregate_never_adds_a_negative_part_nor_divides_by_a_population_not_above_0():
    got = _agg([_row("A", "population", -50, "10k persons"),
                _row("B", "population", 100, "10k persons"),
                _row("A", "invention_patents_in_force", 10, "patents"),
                _row("B", "invention_patents_in_force", 10, "patents")])
    row = got[("population", 2021)]
    assert row["value"] is None and "negative figure for: A" in row["note"]
    per = _agg([_row("A", "population", 0, "10k persons"),
                _row("B", "population", 100, "10k persons"),
                _row("A", "invention_patents_in_force", 10, "patents"),
                _row("B", "invention_patents_in_force", 10, "patents")],
               indicators=["invention_patents_in_force_per_10k_pop"])
    row = per[("invention_patents_in_force_per_10k_pop", 2021)]
    assert row["value"] is None and "population not above 0 for: A" in row["note"]


@pytest.mark.parametrize("unit", ["percent", "Percent of national", "pct", "per cent",
                                  "percentage points", "%"])
def test_units_in_percent_are_percentages_never_summed(unit):
    from stclusters.regions._aggregate import kind_of

    assert kind_of("rd_share_of_national", unit) == "percentage"
    rows = [_row(m, "rd_share_of_national", v, unit) for m, v in (("A", 3), ("B", 4))]
    with pytest.raises(ParameterError, match="never summed"):
        _agg(rows, indicators=["rd_share_of_national"])
    row = _agg(rows)[("rd_share_of_national", 2021)]
    assert row["value"] is None and "never summed" in row["note"]
    assert kind_of("percentile_rank", "rank") == "sum"  # a word starting 'percent…' elsewhere


def test_a_group_gets_no_per_capita_figure_when_a_members_population_is_not_above_0(
        generated_run, tmp_path):
    zero = _population_file(tmp_path, "Shenzhen,2021,population,0,10k persons,"
                            "official final,Me,Mine,,\n")
    table, _, _ = ind.region_table(load_region("GBA"), files=[zero], run=generated_run[3],
                                   years=[2021], indicators=["patent_per_million_fractional"])
    got = {r["region"]: r for r in table.to_pylist()}
    for unit in ("Shenzhen", "GBA", "PRD-9"):  # the groups holding Shenzhen: no figure
        assert got[unit]["value"] is None, unit
        assert "not above 0 for: Shenzhen" in got[unit]["note"], unit
    assert got["HK-MO"]["value"] is not None  # a group without Shenzhen keeps its figure


def test_shares_are_computed_from_the_exact_integers():
    import duckdb

    from stclusters.regions._format import pct_sql

    con = duckdb.connect()
    fx = 877329965204690300  # 100.0 * x / x in floating point is 100.00000000000001
    assert con.execute("SELECT 100.0 * CAST(? AS DOUBLE) / CAST(? AS DOUBLE)",
                       [fx, fx]).fetchone()[0] != 100.0
    sql = f"SELECT {pct_sql('a', 'b')} FROM (SELECT CAST(? AS HUGEINT) a, CAST(? AS HUGEINT) b)"
    assert con.execute(sql, [fx, fx]).fetchone()[0] == 100.0
    assert con.execute(sql, [1, 3]).fetchone()[0] == 100 / 3
    assert con.execute(sql, [0, 0]).fetchone()[0] is None


def test_city_cluster_share_is_exactly_100_when_the_city_is_all_in_its_cluster(generated_run):
    clusters = generated_run[2].to_pylist()
    full = [r for r in clusters if r["weight"] is not None and r["weight"] == r["member_weight"]]
    assert full and all(r["share_pct"] == 100.0 for r in full)
    assert all(r["share_pct"] is None or 0 <= r["share_pct"] <= 100 for r in clusters)


def test_region_out_removes_its_own_earlier_city_clusters(generated_run, tmp_path):
    out = tmp_path / "r1"
    assert runner.invoke(app, ["region", "GBA", "--run", str(generated_run[3]), "--out",
                               str(out)]).exit_code == 0
    assert (out / "city_clusters.csv").exists()
    r = runner.invoke(app, ["region", "GBA", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["indicators.csv", "indicators.parquet",
                                                     "region.json"]
    assert json.loads((out / "region.json").read_text(encoding="utf-8"))["run"] is None


def test_region_outputs_do_not_depend_on_how_the_run_path_is_typed(generated_run, tmp_path,
                                                                    monkeypatch):
    run_dir = generated_run[3]
    monkeypatch.chdir(run_dir.parent)
    for args, out in (([run_dir.name], "pA"), ([str(run_dir.resolve()) + "/"], "pB"),
                      ([f"../{run_dir.parent.name}/{run_dir.name}"], "pC")):
        r = runner.invoke(app, ["region", "GBA", "--run", *args, "--out", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    for name in ("region.json", "indicators.csv", "indicators.parquet", "city_clusters.csv"):
        first = (tmp_path / "pA" / name).read_bytes()
        assert first == (tmp_path / "pB" / name).read_bytes() == (
            tmp_path / "pC" / name).read_bytes(), name
    summary = json.loads((tmp_path / "pA" / "region.json").read_text(encoding="utf-8"))
    assert summary["run"] == str(run_dir.resolve())
