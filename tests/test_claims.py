"""Claims checked against data (issue 10 §4, docs/claims.md).

Indicator claims are judged on hand-made rows, each operator and verdict, bounds, flags, a
missing year or region and a provincial figure. The interval rule is checked against a
brute-force sampling of each interval. Rank claims are judged on a SYNTHETIC editions folder
(two editions, one of them also used as a single run); the expected ranks are computed here
independently, with numpy haversine distances over each run's ``points.parquet``. The
shipped claim file's verdicts are asserted, each with its source.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stclusters.analysis.editions import edition_params, rank_editions
from stclusters.cli import app
from stclusters.errors import ParameterError
from stclusters.params import RankParams
from stclusters.regions._claims_logic import BOUNDS, OPS, Interval, decide
from stclusters.regions._claims_rank import SHIPPED_PUBLISHED
from stclusters.regions.claims import check_claims, load_claims, parse_claims
from stclusters.synthetic import synthetic_world

from conftest import SHARED_DATA

runner = CliRunner()
EARTH_RADIUS_KM = 6371.0088
SRC = {"publisher": "A Ministry", "title": "A speech", "url": "https://example.org/speech",
       "date": "2022-02-25"}


# ------------------------------------------------------------------ the interval rule

def _brute(iv: Interval, op: str, c: float) -> str:
    """Sample the interval densely (ends, just inside, far out) and test the claim on each."""
    lo = iv.lo if iv.lo is not None else -1e9
    hi = iv.hi if iv.hi is not None else 1e9
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 201), [lo, hi, lo + 1e-6, hi - 1e-6,
                                                                c, c - 1e-6, c + 1e-6]]))
    xs = [x for x in grid if iv.contains(x)]
    test = {"<": lambda x: x < c, "<=": lambda x: x <= c, "=": lambda x: x == c,
            ">=": lambda x: x >= c, ">": lambda x: x > c}[op]
    ok = [test(x) for x in xs]
    return "held" if all(ok) else "not held" if not any(ok) else "not enough data"


def test_decide_matches_brute_force_for_every_bound_and_operator():
    for bound, op, c in itertools.product((None, *BOUNDS), OPS, (90.0, 100.0, 110.0)):
        iv = Interval.of(100.0, bound)
        assert decide(iv, op, c) == _brute(iv, op, c), (bound, op, c)


# ------------------------------------------------------------------ indicator claims

def _row(region="PRD-9", year=2021, indicator="rd_expenditure", value=3600.0, bound=None,
         unit="CNY 100 million (亿元)", flag="official final", publisher="Stats Bureau",
         url="https://stats.example/t1", origin="shipped"):
    return {"region": region, "year": year, "indicator": indicator, "value": value,
            "unit": unit, "flag": flag, "bound": bound, "source_publisher": publisher,
            "source_title": "Yearbook table 1", "source_url": url, "note": "",
            "origin": origin}


def _claim(op, value, *, region="PRD-9", year=2021, unit="CNY 100 million", source=SRC,
           indicator="rd_expenditure"):
    return parse_claims([{"id": "c", "text": "a sentence", "source": source,
                          "indicator": indicator, "region": region, "year": year, "op": op,
                          "value": value, "unit": unit}])


def _verdict(rows, claims):
    res = check_claims(claims, indicators=pa.Table.from_pylist(rows), published=False)
    return res.checks[0]


@pytest.mark.parametrize("op, value, expected", [
    (">", 3500, "held"), (">", 3600, "not held"), (">=", 3600, "held"), ("<", 3600, "not held"),
    ("<=", 3600, "held"), ("<", 3700, "held"), ("=", 3600, "held"), ("=", 3601, "not held")])
def test_exact_official_figure_decides_every_operator(op, value, expected):
    check = _verdict([_row()], _claim(op, value))
    assert check.verdict == expected
    assert "Stats Bureau" in check.evidence and "[official final]" in check.evidence
    assert check.decided_by == ("indicators",)


@pytest.mark.parametrize("op, value, expected", [
    (">", 4000, "not enough data"), (">", 3000, "held"), (">", 3600, "held"),
    ("<", 3000, "not held"), ("=", 3600, "not held"), ("=", 3700, "not enough data")])
def test_a_stored_lower_bound_decides_only_what_it_settles(op, value, expected):
    check = _verdict([_row(bound=">", flag="secondary-source")], _claim(op, value))
    assert check.verdict == expected
    assert "> 3,600" in check.evidence
    if expected == "not enough data":
        assert "does not settle" in check.why


def test_estimate_decides_nothing_and_says_what_it_would_give():
    check = _verdict([_row(value=780000, flag="estimate", indicator="patents_granted_total",
                           unit="patents")],
                     _claim(">=", 780000, unit="patents", indicator="patents_granted_total"))
    assert check.verdict == "not enough data"
    assert "estimate" in check.why and "would give: held" in check.why


def test_provisional_decides_and_unknown_flag_does_not():
    assert _verdict([_row(flag="provisional")], _claim(">", 3000)).verdict == "held"
    check = _verdict([_row(flag="rumour")], _claim(">", 3000))
    assert check.verdict == "not enough data" and "'rumour'" in check.why


def test_the_claims_own_statement_cannot_corroborate_itself():
    by_url = _verdict([_row(url="https://example.org/speech/")], _claim(">", 3000))
    assert by_url.verdict == "not enough data" and "own statement" in by_url.why
    # The same publisher on the same date, reported by a newspaper: still the same statement.
    reported = _row(publisher="A Ministry (press conference 2022-02-25), reported by a paper")
    assert "own statement" in _verdict([reported], _claim(">", 3000)).why
    other_day = _row(publisher="A Ministry (yearbook 2023-06-30)")
    assert _verdict([other_day], _claim(">", 3000)).verdict == "held"


def test_missing_year_lists_the_years_held():
    check = _verdict([_row(year=2019), _row(year=2022)], _claim(">", 3000, year=2021))
    assert check.verdict == "not enough data"
    assert "in 2021" in check.why and "2019: 3,600" in check.why and "2022" in check.why


def test_a_provincial_figure_is_never_substituted_for_a_city_claim():
    rows = [_row(region="Guangdong (province)", value=4002.18)]
    check = _verdict(rows, _claim(">", 3000, region="Shenzhen"))
    assert check.verdict == "not enough data"
    assert "no rd_expenditure figure for Shenzhen" in check.why
    assert "Guangdong (province)" in check.why and "never substituted" in check.why
    # the province's own claim is decided by it
    assert _verdict(rows, _claim(">", 3000, region="Guangdong (province)")).verdict == "held"


def test_another_unit_is_not_converted():
    check = _verdict([_row(unit="HKD million", region="Hong Kong", value=27827)],
                     _claim(">", 20000, region="Hong Kong"))
    assert check.verdict == "not enough data" and "no conversion" in check.why


def test_figures_that_disagree_decide_nothing():
    rows = [_row(value=3500), _row(value=3700, origin="yearbook.csv", url="https://y.example")]
    check = _verdict(rows, _claim(">", 3600))
    assert check.verdict == "not enough data" and "disagree" in check.why
    rows[0]["value"] = 3650.0
    assert _verdict(rows, _claim(">", 3600)).verdict == "held"


# ------------------------------------------------------------------ the claim file

def test_every_problem_of_a_claim_file_in_one_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("""
titel: typo
claims:
  - id: a
    text: ok
    source: {publisher: P}
    indicator: rd_expenditure
    region: PRD-9
    year: twenty
    op: '~'
    value: 5
  - id: b
    text: ''
    source: {publisher: P, colour: red}
    cluster_containing: Shenzhen
    rank: {op: '<=', value: 0}
    basis: [indicators]
  - id: a
    text: t
    source: {publisher: P}
    indicator: x
    region: y
    year: 2020
    op: '='
    value: 1
    shoe: 1
""", encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        load_claims(path)
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("claim a: year", "claim a: op", "claim b: text", "claim b: source.colour",
                 "claim b: rank: a positive whole rank", "claim b: basis",
                 "claim a: shoe: not a field", "titel: not a field of a claim file"):
        assert part in msg, part
    assert "problem(s)" in msg


def test_cli_bad_claim_file_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- id: x\n  text: t\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert "claim x: source" in result.output
    assert "Example: stclusters check gba" in runner.invoke(app, ["check", "--help"]).output


# ------------------------------------------------------------------ published ranks

def test_shipped_published_ranks_are_the_shared_file():
    assert SHIPPED_PUBLISHED.read_bytes() == (
        SHARED_DATA / "reference" / "gii_top_ranks_by_edition.csv").read_bytes()


def _rank_claim(place, rank, editions, **extra):
    return parse_claims([{"id": "r", "text": "t", "source": SRC, "cluster_containing": place,
                          "rank": rank, "editions": editions, **extra}])


def test_published_ranks_absent_names_and_gaps():
    def verdict(*args, **kw):
        return check_claims(_rank_claim(*args, **kw), indicators=pa.Table.from_pylist(
            [_row()]), published=True).checks[0]

    assert verdict("Beijing", {"op": "<=", "value": 3}, [2021, 2022]).verdict == "held"
    assert verdict("Beijing", 5, [2018, 2022]).verdict == "not held"
    # 2022 lists ranks 1-10 without Nagoya: it ranks below 10.
    assert verdict("Nagoya", {"op": "<=", "value": 10}, [2022]).verdict == "not held"
    assert verdict("Nagoya", {"op": "<=", "value": 20}, [2022]).verdict == "not enough data"
    # 2020 lists ranks 2 and 5 only: an absent name says nothing.
    gap = verdict("Beijing", 3, [2020])
    assert gap.verdict == "not enough data" and "only ranks 2, 5" in gap.why
    assert "several" not in gap.why
    many = verdict("o", 1, [2017])
    assert many.verdict == "not enough data" and "published clusters of 2017 name o" in many.why


# ------------------------------------------------------------------ runs and editions (SYNTHETIC)

SHENZHEN = (22.54554, 114.0683)  # GeoNames 1795565, degrees
YEARS = [2019, 2021]


@pytest.fixture(scope="module")
def eds_dir(tmp_path_factory) -> Path:
    world = synthetic_world(n_per_source=2000, seed=3, years=(2013, 2020))
    path = tmp_path_factory.mktemp("claims") / "SYNTHETIC_world.parquet"
    pq.write_table(world, path)
    base = RankParams(top_n=30).with_source("patent", min_weight_share_pct=0.3).with_source(
        "publication", min_weight_share_pct=0.3)
    out = path.parent / "eds"
    rank_editions([str(path)], edition_params(base, YEARS), label="SYNTHETIC").write(out)
    return out


def _expected_rank(run_dir: Path) -> tuple[int | None, bool]:
    """The rank of the cluster of the nearest clustered point within 13 km of Shenzhen,
    from points.parquet with numpy (None: in a cluster beyond the top N), and whether any
    clustered point lies within 13 km."""
    pts = pq.read_table(run_dir / "points.parquet").to_pandas()
    p1, p2 = np.radians(SHENZHEN[0]), np.radians(pts["lat"].to_numpy())
    a = (np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2)
         * np.sin(np.radians(pts["lon"].to_numpy() - SHENZHEN[1]) / 2) ** 2)
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
    near = pts[(km <= 13.0) & pts["cluster_id"].notna()].assign(km=km[(km <= 13.0) & pts[
        "cluster_id"].notna()]).sort_values("km")
    if near.empty:
        return None, False
    rank = near.iloc[0]["cluster_rank"]
    return (None if rank != rank else int(rank)), True


_GEOCODER = []


def _geocoder():
    """One gazetteer for every rank check of this module (loading it takes a moment)."""
    if not _GEOCODER:
        from stclusters.geocode import Geocoder

        _GEOCODER.append(Geocoder.load())
    return _GEOCODER[0]


def _check(eds_dir, claims, **kw):
    return check_claims(claims, indicators=pa.Table.from_pylist([_row()]), published=False,
                        geocoder=_geocoder(), **kw)


def test_rank_claims_against_an_editions_folder(eds_dir):
    ranks = {}
    for year in YEARS:
        rank, clustered = _expected_rank(eds_dir / str(year))
        assert clustered and rank is not None, "the SYNTHETIC world must rank Shenzhen"
        ranks[year] = rank
    worst, best = max(ranks.values()), min(ranks.values())
    held = _check(eds_dir, _rank_claim("Shenzhen", {"op": "<=", "value": worst}, YEARS,
                                       country="CN"), editions=eds_dir).checks[0]
    assert held.verdict == "held" and held.decided_by == ("editions",)
    assert held.data_label == "SYNTHETIC"
    for year, rank in ranks.items():
        assert f"(edition {year}): #{rank} " in held.evidence
    assert best > 1  # the seeded world leaves room for a claim that fails
    assert _check(eds_dir, _rank_claim("Shenzhen", {"op": "<", "value": best}, YEARS),
                  editions=eds_dir).checks[0].verdict == "not held"
    missing = _check(eds_dir, _rank_claim("Shenzhen", worst, [2030]), editions=eds_dir)
    assert missing.checks[0].verdict == "not enough data"
    assert "edition 2030 is not in the editions folder" in missing.checks[0].why


def test_rank_claims_against_one_run(eds_dir):
    run = eds_dir / "2019"
    rank, _ = _expected_rank(run)
    one = _check(eds_dir, _rank_claim("Shenzhen", rank, [2019],
                                      metrics=["publication", "patent"]), run=run).checks[0]
    assert one.verdict == "held" and f"#{rank} " in one.evidence
    assert _check(eds_dir, _rank_claim("Shenzhen", rank + 1, []), run=run
                  ).checks[0].verdict == "not held"
    other = _check(eds_dir, _rank_claim("Shenzhen", rank, [2021]), run=run).checks[0]
    assert other.verdict == "not enough data" and "is edition 2019" in other.why
    two = _check(eds_dir, _rank_claim("Shenzhen", rank, YEARS), run=run).checks[0]
    assert two.verdict == "not enough data" and "one ranking" in two.why
    three = _check(eds_dir, _rank_claim("Shenzhen", rank, [2019],
                                        metrics=["patent", "publication", "vc_deal"]),
                   run=run).checks[0]
    assert three.verdict == "not enough data" and "scores patent, publication" in three.why
    nowhere = _check(eds_dir, _rank_claim("Longyearbyen", 1, []), run=run).checks[0]
    assert nowhere.verdict == "not enough data" and "no records within 13 km" in nowhere.why


def test_a_place_with_records_but_no_cluster_is_not_held(eds_dir):
    """A point of the run outside every footprint, with no clustered point within 13 km
    (found here with numpy): the run covers the place and no cluster holds it."""
    from stclusters.regions._claims_rank import run_rank

    pts = pq.read_table(eds_dir / "2019" / "points.parquet").to_pandas()
    lat, lon = np.radians(pts["lat"].to_numpy()), np.radians(pts["lon"].to_numpy())
    clustered = pts["cluster_id"].notna().to_numpy()
    for i in np.flatnonzero(~clustered):
        a = (np.sin((lat - lat[i]) / 2) ** 2 + np.cos(lat[i]) * np.cos(lat)
             * np.sin((lon - lon[i]) / 2) ** 2)
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
        if not (clustered & (km <= 13.0)).any():
            break
    else:
        pytest.fail("the SYNTHETIC world must have an unclustered place")
    obs = run_rank(eds_dir / "2019", "here", float(pts["lat"][i]), float(pts["lon"][i]),
                   basis="run", edition=None, metrics=None)
    assert obs.no_cluster and obs.interval is None and "none in an S&T cluster" in obs.evidence


def test_bases_that_disagree_decide_nothing(eds_dir, tmp_path):
    rank, _ = _expected_rank(eds_dir / "2019")
    table = tmp_path / "pub.csv"
    table.write_text(f"edition,rank,cluster\n2019,{rank + 1},Shenzhen–Hong Kong\n",
                     encoding="utf-8")
    check = check_claims(_rank_claim("Shenzhen", rank, [2019]), indicators=pa.Table.from_pylist(
        [_row()]), editions=eds_dir, published=table, geocoder=_geocoder()).checks[0]
    assert check.verdict == "not enough data" and "disagree" in check.why


# ------------------------------------------------------------------ the shipped example

SHIPPED_VERDICTS = {
    "prd9-rd-expenditure-2021": "not enough data",
    "prd9-rd-intensity-2021": "not enough data",
    "prd9-high-tech-enterprises-2021": "not enough data",
    "prd9-patents-granted-2021": "not enough data",
    "prd9-invention-patents-granted-2021": "not enough data",
    "hong-kong-state-key-laboratories": "not enough data",
    "macao-state-key-laboratories": "not enough data",
    "gii-second-2020-2021": "held",
    "gii-2025-first-with-three-metrics": "not enough data",
}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    out = tmp_path_factory.mktemp("check") / "out"
    result = runner.invoke(app, ["check", "gba", "--out", str(out)])
    return result, out


def test_shipped_claims_verdicts_and_sources(shipped):
    result, out = shipped
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "claims.parquet").to_pylist()
    assert {r["id"]: r["verdict"] for r in rows} == SHIPPED_VERDICTS
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        if r["kind"] == "indicator":
            assert "Ministry of Science and Technology" in r["evidence"]  # the row's publisher
            assert "http" in r["evidence"] and "[" in r["evidence"]  # address and flag
        assert r["why"] or r["verdict"] != "not enough data"
    assert "estimate" in by_id["prd9-rd-expenditure-2021"]["why"]
    assert "own statement" in by_id["hong-kong-state-key-laboratories"]["why"]
    assert "2021: 16" in by_id["hong-kong-state-key-laboratories"]["why"]
    assert "GII 2020: #2 Shenzhen–Hong Kong–Guangzhou" in by_id["gii-second-2020-2021"]["evidence"]
    assert "WIPO" in by_id["gii-second-2020-2021"]["evidence"]
    assert "edition 2025 is not in the published table" in by_id[
        "gii-2025-first-with-three-metrics"]["why"]
    assert "1 held, 0 not held, 8 not enough data" in result.output
    assert "Statistics and Census Service, Macao SAR" in result.output
    data = json.loads((out / "claims.json").read_text(encoding="utf-8"))
    assert data["counts"] == {"held": 1, "not held": 0, "not enough data": 8}
    assert (out / "claims.csv").read_text(encoding="utf-8").count("\n") >= 10


def test_shipped_check_is_byte_identical_and_json(shipped, tmp_path):
    _, out = shipped
    again = tmp_path / "again"
    assert runner.invoke(app, ["check", "gba", "--out", str(again)]).exit_code == 0
    for name in ("claims.csv", "claims.parquet", "claims.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    printed = runner.invoke(app, ["check", "gba", "--json"])
    assert json.loads(printed.output)["counts"]["held"] == 1


def test_a_users_final_figure_decides_the_shipped_claim(tmp_path):
    """A yearbook figure added with --indicators replaces the press conference's estimate
    (same region, year, indicator, unit) and decides the claim."""
    from stclusters.regions.indicators import CSV_COLUMNS

    row = {"region": "PRD-9", "year": "2021", "indicator": "rd_expenditure",
           "value": "3720.5", "unit": "CNY 100 million (亿元)", "flag": "official final",
           "source_publisher": "A provincial statistics bureau (test row)",
           "source_title": "2021 R&D bulletin (test)", "source_url": "https://stats.example/rd",
           "note": "test figure"}
    path = tmp_path / "yearbook.csv"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + ",".join(row[c] for c in CSV_COLUMNS) + "\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["check", "gba", "--indicators", str(path), "--json"])
    assert result.exit_code == 0, result.output
    claim = next(c for c in json.loads(result.output)["claims"]
                 if c["id"] == "prd9-rd-expenditure-2021")
    assert claim["verdict"] == "held"
    assert "3,720.5" in claim["evidence"] and "test row" in claim["evidence"]
