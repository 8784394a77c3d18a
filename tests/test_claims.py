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
import os
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
from stclusters.errors import StclustersError
from stclusters.regions._claims_logic import (BOUNDS, OPS, Interval, decide, rounding_half_unit,
                                              written_half_unit)
from stclusters.regions._claims_rank import SHIPPED_PUBLISHED, name_parts, read_published
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
    ("<", 3000, "not held"), ("=", 3599, "not held"), ("=", 3700, "not enough data"),
    # '= 3600' is written to the unit: 3600.2 (allowed by '> 3600') is written 3600
    ("=", 3600, "not enough data")])
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


def test_the_same_currency_in_another_scale_is_converted():
    """168.2 CNY billion is 1,682 CNY 100 million: decided, never 'another unit'."""
    row = _row(unit="CNY billion", value=168.2)
    held = _verdict([row], _claim(">", 1600))
    assert held.verdict == "held" and "(= 1,682 CNY 100 million)" in held.evidence
    assert _verdict([row], _claim("<", 1600)).verdict == "not held"
    assert _verdict([row], _claim("=", 1682)).verdict == "held"
    # case, spacing and the gloss are not meaning
    assert _verdict([row], _claim(">", 1600, unit="cny  100 Million")).verdict == "held"
    assert _verdict([row], _claim(">", 160, unit="CNY billion (十亿元)")).verdict == "held"


# ------------------------------------------------------------------ precision

@pytest.mark.parametrize("note, value, half", [
    ("'home to 23,000 enterprises in 2022' (rounded)", 23000.0, 500.0),
    ("'27.92万件' (rounded to 100).", 279200.0, 50.0),
    ("'168.2 billion yuan' (rounded in the report)", 1682.0, 0.5),
    ("约3.7%", 3.7, 0.05), ("about 57,000 firms", 57000.0, 500.0),
    ("a yearbook figure", 23000.0, 0.0), ("a report about the city", 23000.0, 0.0)])
def test_rounding_precision_read_from_the_note(note, value, half):
    assert rounding_half_unit(note, value) == half


def test_a_rounded_figure_is_an_interval():
    """23,000 (rounded) allows 22,500..23,500: '≥ 23,100' cannot be decided by it."""
    rows = [_row(indicator="hte", unit="enterprises", value=23000.0,
                 region="Shenzhen", year=2022)]
    rows[0]["note"] = "'The city was home to 23,000 enterprises in 2022' (rounded)"

    def verdict(op, value):
        return _verdict(rows, _claim(op, value, region="Shenzhen", year=2022,
                                     indicator="hte", unit="enterprises"))

    undecided = verdict(">=", 23100)
    assert undecided.verdict == "not enough data"
    assert "23,000 (rounded: 22,500..23,500)" in undecided.evidence
    assert "does not settle ≥ 23,100" in undecided.why
    assert verdict(">=", 22500).verdict == "held"
    assert verdict(">", 23500).verdict == "not held"
    rows[0]["note"] = "a yearbook count"  # the same figure, exact
    assert verdict(">=", 23100).verdict == "not held"


@pytest.mark.parametrize("stored, claimed, expected", [
    (3.7000000000000006, 3.7, "held"), (3.66, 3.7, "held"), (3.65, 3.7, "held"),
    (3.75, 3.7, "not held"), (3.64, 3.7, "not held"), (3.8, 3.7, "not held"),
    (16.0, 16, "held"), (16.4, 16, "held"), (17.0, 16, "not held")])
def test_an_equality_claim_compares_to_the_precision_it_is_written_with(stored, claimed,
                                                                         expected):
    """'= 3.7' means a value written 3.7: [3.65, 3.75) (half-way rounds up)."""
    check = _verdict([_row(value=stored, unit="% of GDP", indicator="rd_intensity")],
                     _claim("=", claimed, unit="% of GDP", indicator="rd_intensity"))
    assert check.verdict == expected
    assert written_half_unit(claimed) == (0.05 if claimed == 3.7 else 0.5)


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
    # A place no name mentions is undecided, even where the edition lists 1-10 without gaps:
    # names carry the main places only (Dongguan lies in Shenzhen–Hong Kong–Guangzhou).
    for place in ("Nagoya", "Dongguan", "Foshan", "Zhuhai"):
        absent = verdict(place, {"op": "<=", "value": 10}, [2022])
        assert absent.verdict == "not enough data", place
        assert "main places only" in absent.why
    assert verdict("Beijing", 3, [2020]).verdict == "not enough data"
    # Whole parts, not substrings: York is not New York City, "o" names nothing.
    assert verdict("York", 9, [2022]).verdict == "not enough data"
    assert verdict("New York City", 9, [2022]).verdict == "held"
    assert verdict("Hong Kong", 2, [2018, 2022]).verdict == "held"
    assert verdict("o", 1, [2017]).verdict == "not enough data"
    # The cluster's printed name decides for a place it is not named after.
    named = verdict("Dongguan", {"op": "<=", "value": 2}, [2022],
                    published_name="Shenzhen–Hong Kong–Guangzhou")
    assert named.verdict == "held" and "#2 Shenzhen–Hong Kong–Guangzhou" in named.evidence
    assert "(published as Shenzhen–Hong Kong–Guangzhou)" in named.claim.statement()


def test_published_name_parts_drop_state_suffixes_and_two_matches_are_undecided(tmp_path):
    assert name_parts("San Jose, CA–San Francisco, CA") == ("san jose", "san francisco")
    table = tmp_path / "pub.csv"
    table.write_text('edition,rank,cluster\n2030,1,"San Jose, CA–San Francisco, CA"\n'
                     '2030,2,"Portland, OR"\n2030,3,"Portland, ME"\n', encoding="utf-8")
    claims = _rank_claim("San Francisco", 1, [2030])
    held = check_claims(claims, indicators=pa.Table.from_pylist([_row()]), published=table)
    assert held.checks[0].verdict == "held"
    two = check_claims(_rank_claim("Portland", 2, [2030]),
                       indicators=pa.Table.from_pylist([_row()]), published=table).checks[0]
    assert two.verdict == "not enough data" and "2 published clusters" in two.why


def test_read_published_names_the_real_problem(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("edition,rank,cluster\n", encoding="utf-8")
    with pytest.raises(StclustersError, match="header but no ranks"):
        read_published(header_only)
    no_cluster = tmp_path / "c.csv"
    no_cluster.write_text("edition,rank\n2020,1\n", encoding="utf-8")
    with pytest.raises(StclustersError, match="lack column.s. cluster"):
        read_published(no_cluster)


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


def _copy_run(src: Path, dest: Path, **manifest_changes) -> Path:
    """A copy of a run folder whose manifest is changed (key → value; None removes it)."""
    import shutil

    shutil.copytree(src, dest)
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    for key, value in manifest_changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (dest / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return dest


def test_a_run_that_names_no_edition_decides_an_edition_claim_only_when_told(eds_dir,
                                                                             tmp_path):
    rank, _ = _expected_rank(eds_dir / "2019")
    bare = _copy_run(eds_dir / "2019", tmp_path / "bare", notes=[])
    claim = _rank_claim("Shenzhen", rank, [2019])
    untold = _check(eds_dir, claim, run=bare).checks[0]
    assert untold.verdict == "not enough data" and "names no edition" in untold.why
    assert "--run-edition" in untold.why
    told = _check(eds_dir, claim, run=bare, run_edition=2019).checks[0]
    assert told.verdict == "held" and f"#{rank} " in told.evidence
    assert _check(eds_dir, claim, run=bare, run_edition="2021").checks[0].verdict == \
        "not enough data"
    # A claim about no edition is about the run as it is.
    assert _check(eds_dir, _rank_claim("Shenzhen", rank, []), run=bare
                  ).checks[0].verdict == "held"
    # The manifest's own `edition` counts, and a --run-edition that contradicts it does not.
    named = _copy_run(eds_dir / "2019", tmp_path / "named", notes=[], edition="2019")
    assert _check(eds_dir, claim, run=named).checks[0].verdict == "held"
    clash = _check(eds_dir, claim, run=named, run_edition="2021").checks[0]
    assert clash.verdict == "not enough data" and "not 2021 as given" in clash.why
    # the command line: --run-edition
    path = tmp_path / "rank.yaml"
    path.write_text(f"- {{id: r, text: t, source: {{publisher: P}}, cluster_containing: "
                    f"Shenzhen, country: CN, rank: {rank}, editions: [2019]}}\n",
                    encoding="utf-8")
    for extra, expected in (([], "not enough data"), (["--run-edition", "2019"], "held")):
        out = runner.invoke(app, ["check", str(path), "--run", str(bare), "--no-published",
                                  "--json", *extra])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["claims"][0]["verdict"] == expected, extra


def test_a_run_without_score_weights_cannot_decide_a_claim_about_metrics(eds_dir, tmp_path):
    rank, _ = _expected_rank(eds_dir / "2019")
    run = _copy_run(eds_dir / "2019", tmp_path / "nowt", score_weights=None)
    check = _check(eds_dir, _rank_claim("Shenzhen", rank, [2019],
                                        metrics=["patent", "publication"]), run=run).checks[0]
    assert check.verdict == "not enough data" and "no score_weights" in check.why
    # without metrics the same run decides
    assert _check(eds_dir, _rank_claim("Shenzhen", rank, [2019]), run=run
                  ).checks[0].verdict == "held"


def test_indicator_claims_on_the_counts_computed_from_a_run(eds_dir):
    """`check --run` adds the run's computed indicators (flag computed, SYNTHETIC label):
    a claim at the computed whole count holds, one above it fails."""
    from stclusters._run_folder import open_run
    from stclusters.regions import load_region
    from stclusters.regions.indicators import computed_indicators

    run = eds_dir / "2019"
    con, _, _ = open_run(run, need=("contributions", "points", "clusters"))
    try:
        rows = computed_indicators(con, load_region("GBA")).to_pylist()
    finally:
        con.close()
    row = max((r for r in rows if r["region"] == "Shenzhen" and r["value"]
               and r["indicator"].endswith("_whole_count")), key=lambda r: r["year"])
    count = int(row["value"])
    assert count > 0, "the SYNTHETIC world must have records in Shenzhen"

    def claim(op, value):
        return parse_claims([{"id": "n", "text": "t", "source": SRC, "region": "Shenzhen",
                              "indicator": row["indicator"], "year": row["year"], "op": op,
                              "value": value, "unit": row["unit"]}])

    held = check_claims(claim(">=", count), indicators=pa.Table.from_pylist([_row()]),
                        run=run, published=False).checks[0]
    assert held.verdict == "held" and held.data_label == "SYNTHETIC"
    assert "[computed]" in held.evidence and "SYNTHETIC Shenzhen" in held.evidence
    assert check_claims(claim(">", count), indicators=pa.Table.from_pylist([_row()]),
                        run=run, published=False).checks[0].verdict == "not held"
    # without the run the claim has no figure
    assert check_claims(claim(">=", count), indicators=pa.Table.from_pylist([_row()]),
                        published=False).checks[0].verdict == "not enough data"
    out = runner.invoke(app, ["check", _claim_file(claim(">=", count)), "--run", str(run),
                              "--no-published", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["claims"][0]["verdict"] == "held" and data["inputs"]["data_label"] == "SYNTHETIC"


def _claim_file(claims) -> str:
    """A YAML claim file of parsed indicator claims (written beside the test's temp files)."""
    import tempfile

    import yaml

    c = claims[0]
    path = Path(tempfile.mkdtemp()) / "claims.yaml"
    path.write_text(yaml.safe_dump([{"id": c.id, "text": c.text, "source": c.source,
                                     "indicator": c.indicator, "region": c.region,
                                     "year": c.year, "op": c.op, "value": c.value,
                                     "unit": c.unit}], allow_unicode=True), encoding="utf-8")
    return str(path)


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
    assert "Statistics and Census Service, Macao SAR" in " ".join(result.output.split())
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


def test_check_reads_a_parquet_indicator_file(tmp_path):
    """`check --indicators x.parquet` (the help says CSV/Parquet); its origin and data_label
    columns are the reader's business, not the user's."""
    row = {"region": "PRD-9", "year": 2021, "indicator": "rd_expenditure", "value": 3720.5,
           "unit": "CNY 100 million (亿元)", "flag": "official final",
           "source_publisher": "A provincial statistics bureau (parquet row)",
           "source_title": "2021 R&D bulletin (test)", "source_url": "https://stats.example/pq",
           "note": "test figure", "origin": "elsewhere", "data_label": None}
    path = tmp_path / "yearbook.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    result = runner.invoke(app, ["check", "gba", "--indicators", str(path), "--json"])
    assert result.exit_code == 0, result.output
    claim = next(c for c in json.loads(result.output)["claims"]
                 if c["id"] == "prd9-rd-expenditure-2021")
    assert claim["verdict"] == "held" and "parquet row" in claim["evidence"]


# ------------------------------------------------------------------ round 3 (attack findings)

def test_a_claim_value_must_be_finite(tmp_path):
    """#6: `.inf` and `.nan` are refused when the file is read (exit 2), never a crash."""
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ParameterError, match="claim c: value: a finite number"):
            _claim("<", value)
    path = tmp_path / "inf.yaml"
    path.write_text("- {id: inf, text: t, source: {publisher: X}, indicator: rd_expenditure,\n"
                    "   region: PRD-9, year: 2021, op: '<', value: .inf}\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "claim inf: value: a finite number" in " ".join(result.output.split())


def test_claim_years_are_those_of_the_indicator_files():
    """#18: 1900–2100, as indicator CSVs."""
    for year in (0, 1899, 2101, 99999):
        with pytest.raises(ParameterError, match=f"claim c: year: {year} outside 1900–2100"):
            _claim(">", 1, year=year)
    assert _claim(">", 1, year=1900)[0].year == 1900
    assert _claim(">", 1, year=2100)[0].year == 2100


def test_duplicate_ids_in_a_large_claim_file():
    """#17: 5,000 claims parse, and a duplicate id among them is named (ids are counted once
    with a Counter, not list.count per id; speed itself is not asserted here)."""
    items = [{"id": f"c{i}", "text": "t", "source": {"publisher": "X"},
              "indicator": "rd_expenditure", "region": "Shenzhen", "year": 2000 + i % 50,
              "op": ">", "value": i} for i in range(5_000)]
    assert [c.id for c in parse_claims(items)] == [f"c{i}" for i in range(5_000)]
    with pytest.raises(ParameterError, match="id: given twice: c1$|id: given twice: c1;"):
        parse_claims(items + items[1:2])


def test_region_names_match_exactly_as_region_and_row_replacement_do():
    """#5: a row of `prd-9` is not PRD-9's; a claim naming a region no row has lists the
    regions that have that indicator."""
    rows = [_row(region="prd-9", value=3500.0), _row(region="Shenzhen", value=1682.0),
            _row(region="Guangzhou", indicator="other", value=1.0)]
    check = _verdict(rows, _claim(">", 3600))
    assert check.verdict == "not enough data"
    assert "no rd_expenditure figure for PRD-9 in any year" in check.why
    assert "regions with rd_expenditure: Shenzhen, prd-9" in check.why
    lower = _verdict(rows, _claim(">", 1000, region="shenzhen"))
    assert lower.verdict == "not enough data" and "Shenzhen, prd-9" in lower.why
    assert _verdict(rows, _claim(">", 1000, region="Shenzhen")).verdict == "held"


def test_a_claim_without_a_unit_is_not_decided_by_figures_in_several_units():
    """#4: no unit in the claim and rows in CNY and HKD: not enough data, "units differ";
    rows in one currency at two scales are compared in one unit."""
    rows = [_row(region="Shenzhen", value=1682.0),
            _row(region="Shenzhen", value=200000.0, unit="HKD million", url="https://hk.x/")]
    check = _verdict(rows, _claim(">", 1000, region="Shenzhen", unit=None))
    assert check.verdict == "not enough data" and "units differ" in check.why
    assert "CNY 100 million (亿元)" in check.why and "HKD million" in check.why
    # one unit: decided as before
    assert _verdict(rows[:1], _claim(">", 1000, region="Shenzhen", unit=None)).verdict == "held"
    # one currency, two scales: the claim is read in the figures' most common unit
    scaled = rows[:1] + [_row(region="Shenzhen", value=168.2, unit="CNY billion",
                              url="https://other.x/"),
                         _row(region="Shenzhen", value=1682.0, url="https://third.x/")]
    held = _verdict(scaled, _claim(">", 1000, region="Shenzhen", unit=None))
    assert held.verdict == "held", held.why
    assert "(= 1,682 CNY 100 million (亿元))" in held.evidence
    assert _verdict(scaled, _claim("<", 1000, region="Shenzhen", unit=None)
                    ).verdict == "not held"


def test_a_published_rank_with_a_country_needs_the_published_name():
    """#3: the published table names no economies: `country: GB` cannot pick Cambridge (UK)
    out of Boston–Cambridge; with published_name it decides."""
    def verdict(**kw):
        return check_claims(_rank_claim("Cambridge", 7, [2018], **kw),
                            indicators=pa.Table.from_pylist([_row()]), published=True).checks[0]

    gb = verdict(country="GB")
    assert gb.verdict == "not enough data", gb.evidence
    assert "country" in gb.why and "published_name" in gb.why
    assert verdict().verdict == "held"  # no country: the name part decides, as before
    rows = read_published()["2018"]
    name = next(n for _, n in rows if "Cambridge" in n and "Boston" in n)
    named = verdict(country="US", published_name=name)
    assert named.verdict == "held" and f"#7 {name}" in named.evidence


def test_check_outputs_do_not_depend_on_how_the_run_path_is_typed(eds_dir, tmp_path,
                                                                  monkeypatch):
    """#16: the run (and the other inputs) are named by their resolved paths."""
    rank, _ = _expected_rank(eds_dir / "2019")
    path = tmp_path / "c.yaml"
    path.write_text(
        "- {id: r, text: t, source: {publisher: X}, cluster_containing: Shenzhen,\n"
        f"   country: CN, rank: {rank}}}\n"
        "- {id: i, text: t, source: {publisher: X}, indicator: patent_whole_count,\n"
        "   region: Shenzhen, year: 2019, op: '>=', value: 0}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(eds_dir / "2019", tmp_path)
    outs = []
    for i, run in enumerate((str(rel), str(eds_dir / "2019"), str(eds_dir) + "/./2019/")):
        out = tmp_path / f"o{i}"
        result = runner.invoke(app, ["check", str(path), "--run", run, "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs.append(out)
    for name in ("claims.csv", "claims.parquet", "claims.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
        assert (outs[0] / name).read_bytes() == (outs[2] / name).read_bytes(), name
    data = json.loads((outs[0] / "claims.json").read_text(encoding="utf-8"))
    assert data["inputs"]["run"] == str((eds_dir / "2019").resolve())
    assert str((eds_dir / "2019").resolve()) in data["claims"][0]["evidence"]
