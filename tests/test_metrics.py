"""Any number of metrics (issue 9 §5): a third metric end to end, weights, exclusion, the CLI,
and the GII 2025 change (the same SYNTHETIC world ranked with two metrics and with three).

The world and the VC deals are SYNTHETIC (stclusters.synthetic), read once per module.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters.analysis.editions import compare
from stclusters.cli import app
from stclusters.cli_options import params_from_options, parse_metric
from stclusters.errors import ParameterError
from stclusters.params import RankParams
from stclusters.schema import metric_name_problem
from stclusters.synthetic import (
    SYNTHETIC_LABEL,
    VC_SOURCE,
    load_places,
    synthetic_vc_deals,
    write_synthetic_vc_deals,
    write_synthetic_world,
)

runner = CliRunner()

#: A small world (rows per source, deals) and thresholds scaled to it: 0.5 % of each
#: metric's world total.
N_PER_SOURCE, N_VC = 8_000, 3_000
SHARE_PCT = 0.5
TOP_N = 25


def _params() -> RankParams:
    p = RankParams(top_n=TOP_N)
    for s in ("patent", "publication", VC_SOURCE):
        p = p.with_source(s, min_weight_share_pct=SHARE_PCT)
    return p


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    write_synthetic_world(folder / "world.parquet", n_per_source=N_PER_SOURCE, seed=3,
                          years=(2019, 2023))
    write_synthetic_vc_deals(folder / "vc.parquet", n_deals=N_VC, seed=3, years=(2019, 2023))
    return folder


@pytest.fixture(scope="module")
def runs(world):
    """The same located records ranked with three metrics, two (VC left out), and VC at
    weight 0."""
    located = stclusters.read([world / "world.parquet", world / "vc.parquet"])
    p = _params()
    return {"located": located, "three": located.rank(p, label="SYNTHETIC"),
            "two": located.rank(p.without_metrics(VC_SOURCE), label="SYNTHETIC"),
            "zero": located.rank(p.with_metric(VC_SOURCE, weight=0.0), label="SYNTHETIC")}


# ------------------------------------------------------------------ the synthetic VC table

def test_vc_deals_are_seeded_synthetic_and_concentrated(world):
    places = load_places()  # once: the GeoNames cities the background is drawn around
    records = [{"name": n, "latitude": la, "longitude": lo, "population": p, "countrycode": c}
               for n, la, lo, p, c in zip(places.name, places.lat, places.lon, places.pop,
                                          places.country)]
    a = synthetic_vc_deals(n_deals=3000, seed=5, places=records)
    assert a.equals(synthetic_vc_deals(n_deals=3000, seed=5, places=records))
    assert not a.equals(synthetic_vc_deals(n_deals=3000, seed=6, places=records))
    assert a.num_rows == 3000 and set(a.column("source").to_pylist()) == {VC_SOURCE}
    assert len(set(a.column("doc_id").to_pylist())) == 3000  # one deal per row
    years = a.column("year").to_numpy()
    assert years.min() >= 2018 and years.max() <= 2022
    # Deals repeat at their company's location: fewer locations than deals (~3.6 per).
    locations = set(zip(a.column("lat").to_pylist(), a.column("lon").to_pylist()))
    assert 3000 / 6 < len(locations) < 3000 / 2
    # Concentrated: within 60 km of the Bay Area hub, far above its population's share.
    lat, lon = a.column("lat").to_numpy(), a.column("lon").to_numpy()
    bay = np.hypot(lat - 37.55, (lon + 122.2) * math.cos(math.radians(37.55))) < 0.55
    assert 0.12 < bay.mean() < 0.40
    meta = pq.read_schema(world / "vc.parquet").metadata
    assert meta[b"stclusters.data"].decode() == SYNTHETIC_LABEL


# ------------------------------------------------------------------ names of metrics

@pytest.mark.parametrize("name", ["vc_deal", "patent", "x", "trade_mark2"])
def test_metric_names_accepted(name):
    assert metric_name_problem(name) is None
    assert RankParams().with_metric(name, weight=2.0).weight_of(name) == 2.0


@pytest.mark.parametrize("name", ["VC", "vc deal", "2vc", "", "a" * 33, "vc-deal", "institution",
                                  "unknown", "x;drop"])
def test_bad_metric_names_refused(name):
    assert metric_name_problem(name) is not None
    with pytest.raises(ParameterError, match="metric name|reserved"):
        RankParams(source_weights={"patent": 1.0, name: 1.0})
    with pytest.raises(ParameterError):
        RankParams().with_source(name, eps_km=5)
    with pytest.raises(ParameterError):
        RankParams(excluded_sources=(name,))


@pytest.mark.parametrize("weight", [-1.0, math.nan, math.inf])
def test_bad_weights_refused(weight):
    with pytest.raises(ParameterError, match="source_weights"):
        RankParams().with_metric(VC_SOURCE, weight=weight)


def test_excluded_sources_must_be_a_tuple():
    with pytest.raises(ParameterError, match="tuple"):
        RankParams(excluded_sources="vc_deal")  # letters would read as metric names


def test_a_metric_counts_once_named():
    p = RankParams()
    assert p.metrics == ("patent", "publication") and not p.is_scored(VC_SOURCE)
    named = p.with_metric(VC_SOURCE)  # weight not given: 1
    assert named.metrics == ("patent", "publication", VC_SOURCE)
    assert named.weight_of(VC_SOURCE) == 1.0 and named.is_scored(VC_SOURCE)
    assert RankParams(source_weights={"patent": 1.0, "publication": 1.0, VC_SOURCE: 0.0}
                      ).metrics == ("patent", "publication", VC_SOURCE)
    assert named.without_metrics(VC_SOURCE).metrics == ("patent", "publication")


# ------------------------------------------------------------------ three metrics end to end

def test_three_metric_run_end_to_end(runs, tmp_path):
    res = runs["three"]
    r = res.ranking
    for s in ("patent", "publication", VC_SOURCE):
        for suffix in ("weight", "share_pct", "per_million_pop"):
            assert f"{s}_{suffix}" in r.column_names
    assert res.outcome["status"] == "ok"
    m = res.manifest
    assert set(m["world_totals"]) == {"patent", "publication", VC_SOURCE}
    assert m["world_totals"][VC_SOURCE] == N_VC  # one located deal = weight 1
    assert m["score_weights"] == {"patent": 1.0, "publication": 1.0, VC_SOURCE: 1.0}
    assert m["clustering"][VC_SOURCE]["n_clusters"] > 0
    # Accounting balances per metric and per input.
    for s in ("patent", "publication", VC_SOURCE):
        rec = m["accounting"][s]["records"]
        assert rec["read"] == rec["used"] + sum(rec["filtered"].values()) + sum(rec["rejected"].values())
    assert m["accounting"][VC_SOURCE]["records"]["read"] == N_VC
    assert all(i["records"]["balanced"] for i in m["inputs"])
    rows = r.to_pylist()
    # Names and economies for every cluster, VC-born ones too; names unique.
    assert all(not row["name"].startswith("Cluster ") and row["economy"] != "??" for row in rows)
    assert len({row["name"] for row in rows}) == len(rows)
    # Intensity per metric: weight per million inhabitants of the footprint (the column
    # ``population`` is rounded to whole inhabitants: at most 0.5 off).
    for row in rows:
        assert row["population"] > 10_000
        assert row["vc_deal_per_million_pop"] == pytest.approx(
            row["vc_deal_weight"] / row["population"] * 1e6, rel=1e-6)
    # A VC cluster's weight is the sum of its VC points (points → clusters).
    pts = res.table("points").to_pandas()
    clusters = res.clusters.to_pandas().set_index("cluster_id")
    by_stc = pts[(pts.source == VC_SOURCE) & (pts.stc >= 0)].groupby("stc").weight.sum()
    for cid, row in clusters.head(10).iterrows():
        assert row["vc_deal_weight"] == pytest.approx(by_stc.get(row["stc"], 0.0), abs=1e-9)
    # Outputs carry the metric: ranking columns, GeoJSON properties, manifest.
    out = tmp_path / "out"
    res.write(out)
    features = json.loads((out / "footprints.geojson").read_text())["features"]
    assert {"vc_deal_weight", "vc_deal_share_pct", "vc_deal_per_million_pop"} <= set(
        features[0]["properties"])
    assert "vc_deal_share_pct" in pq.read_schema(out / "ranking.parquet").names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["sources"][VC_SOURCE]["min_weight_share_pct"] == SHARE_PCT


@pytest.mark.parametrize("run", ["three", "zero"])
def test_score_is_the_weighted_sum_over_every_metric(runs, run):
    """Recomputed in plain Python from the counts, the world totals and the weights (VC
    weight 1, then 0): score and order."""
    res = runs[run]
    totals, weights = res.manifest["world_totals"], res.manifest["score_weights"]
    assert weights[VC_SOURCE] == (1.0 if run == "three" else 0.0)
    rows = res.clusters.to_pylist()
    scores = []
    for row in rows:
        score = sum(weights[s] * 100.0 * row[f"{s}_weight"] / totals[s] for s in totals)
        assert row["score_pct"] == pytest.approx(score, rel=1e-9)
        scores.append(score)
    assert scores == sorted(scores, reverse=True)
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))


def test_weight_zero_changes_nothing_in_the_score(runs):
    """VC at weight 0: the two-metric ranking, cluster for cluster, plus the VC columns."""
    two, zero = runs["two"].clusters, runs["zero"].clusters
    assert "vc_deal_weight" not in two.column_names
    assert zero.num_rows == two.num_rows
    for col in two.column_names:
        assert zero.column(col).equals(two.column(col)), col
    assert sum(zero.column("vc_deal_weight").to_pylist()) > 0  # measured, not scored
    assert runs["zero"].manifest["clustering"][VC_SOURCE]["n_core_points"] == 0


def test_sensitivity_and_calibration_leave_a_weight_zero_metric_unclustered(runs):
    """The evaluator behind sensitivity and calibration applies the pipeline's rule: a
    metric of weight 0 is not clustered, and gets no threshold axis."""
    from stclusters.analysis._evaluate import Evaluator
    from stclusters.analysis.sensitivity import SensitivityGrid, sensitivity

    zero = runs["zero"]
    e = Evaluator.from_result(zero).evaluate(zero.params)
    cl = zero.table("clusters")
    assert e.n_clusters == cl.num_rows
    assert [e.cluster_id[k] for k in cl.column("stc").to_numpy()] == \
        cl.column("cluster_id").to_pylist()
    rep = sensitivity(zero, grid=SensitivityGrid(eps_factors=(1.0,), min_weight_factors=(1.0, 2.0)))
    assert rep.settings.num_rows == 4  # patent × publication thresholds; none for vc_deal


def test_excluded_metric_is_accounted_not_counted(runs):
    m = runs["two"].manifest
    rec = m["accounting"][VC_SOURCE]["records"]
    assert rec["used"] == 0 and rec["filtered"] == {"source_excluded": N_VC}
    assert VC_SOURCE not in m["world_totals"]
    # Left out on purpose: no warning that most of its records did not count.
    assert not [w for w in runs["two"].outcome["warnings"] if w["source"] == VC_SOURCE]


def test_a_metric_named_nowhere_is_filtered_and_warned_about(runs):
    """A table's source that no parameter names (a typo such as ``patents``) does not count
    silently as a metric of its own."""
    res = runs["located"].rank(RankParams(top_n=5).with_source("patent", min_weight_share_pct=1)
                               .with_source("publication", min_weight_share_pct=1))
    rec = res.manifest["accounting"][VC_SOURCE]["records"]
    assert rec["filtered"] == {"metric_not_configured": N_VC} and rec["used"] == 0
    (warning,) = [w for w in res.outcome["warnings"] if w["source"] == VC_SOURCE]
    assert warning["reason"] == "metric_not_configured"
    assert "vc_deal_weight" not in res.ranking.column_names


# ------------------------------------------------------------------ the GII 2025 change

def test_moves_from_two_to_three_metrics(runs):
    """compare(two, three) against an independent computation from the points tables.

    Patents and publications are clustered alike in both runs, so each 2-metric cluster's
    core points fall in exactly one 3-metric cluster (VC can only add clusters or join
    them). A 3-metric cluster holding the cores of exactly one 2-metric cluster continues
    it: its previous rank is that cluster's rank; one holding none is new."""
    two, three = runs["two"], runs["three"]
    moves = compare(two, three).to_pylist()
    assert [m["rank"] for m in moves] == list(range(1, min(TOP_N, three.clusters.num_rows) + 1))
    rank2 = {r["stc"]: r["rank"] for r in two.clusters.to_pylist()}
    stc3 = {r["cluster_id"]: r["stc"] for r in three.clusters.to_pylist()}
    p2 = two.table("points").to_pandas()
    p3 = three.table("points").to_pandas()
    cores = p2[p2.is_core].merge(p3[["source", "lat", "lon", "stc"]], on=["source", "lat", "lon"],
                                 suffixes=("_2", "_3"))
    assert (cores.stc_3 >= 0).all()
    # Each 2-metric cluster lies within one 3-metric cluster.
    assert (cores.groupby("stc_2").stc_3.nunique() == 1).all()
    held = cores.groupby("stc_3").stc_2.unique()
    checked_continued = checked_new = 0
    for m in moves:
        before = held.get(stc3[m["cluster_id"]])
        if before is None:
            assert m["status"] == "new" and m["prev_rank"] is None
            checked_new += 1
        elif len(before) == 1:
            assert m["prev_rank"] == rank2[before[0]]
            assert m["move"] == m["prev_rank"] - m["rank"]
            checked_continued += 1
        else:  # a merger: the predecessor is one of the clusters joined
            assert m["prev_rank"] in {rank2[s] for s in before}
    assert checked_new >= 1 and checked_continued >= 10
    # VC moves a VC hub up: the Bay Area leads once deals count.
    assert "San Francisco" in moves[0]["name"]


# ------------------------------------------------------------------ CLI

def test_metric_option_parsing():
    setting, problems = parse_metric("vc_deal:weight=0,types=seed,series_a,years=2020-")
    assert problems == [] and setting.weight == 0.0
    assert dict(setting.changes) == {"doc_types": ("seed", "series_a"), "first_year": 2020,
                                     "last_year": None}
    off, _ = parse_metric("vc_deal:off")
    assert off.off and not off.changes
    off, problems = parse_metric("vc_deal:eps_km=10,off")  # a flag anywhere
    assert off.off and off.changes == {"eps_km": 10.0} and problems == []
    p = params_from_options({"metric": ["vc_deal:weight=0.5,eps_km=10,min_weight=3",
                                        "grants:off"], "eps_km": 20.0})
    assert p.weight_of("vc_deal") == 0.5 and p.source("vc_deal").eps_km == 10.0
    assert p.source("vc_deal").min_weight == 3.0
    assert p.excluded_sources == ("grants",)
    # --eps-km reaches every metric, --metric's too; --metric's own value wins.
    assert p.source("patent").eps_km == 20.0 and p.source("grants").eps_km == 20.0
    assert params_from_options({"excluded_sources": "vc_deal"}).excluded_sources == ("vc_deal",)
    with pytest.raises(ParameterError, match="--excluded-sources"):
        params_from_options({"excluded_sources": "all"})
    named = params_from_options({"metric": ["vc_deal"]})
    assert named.source("vc_deal") == RankParams().source("x") and named.is_scored("vc_deal")


def test_metric_option_problems_in_one_message():
    with pytest.raises(ParameterError) as exc:
        params_from_options({"metric": ["VC:weight=1", "vc_deal:eps_km=0,foo=1,weight=-2",
                                        "patent:eps_km=5"], "eps_km_patent": 4.0})
    msg = str(exc.value)
    for part in ("'VC' is not a metric name", "vc_deal:eps_km must be in range",
                 "unknown key 'foo'", "vc_deal:weight must be in range",
                 "patent: also set by --eps-km-patent"):
        assert part in msg, part
    assert "\n" not in msg
    with pytest.raises(ParameterError, match="must be > 0"):
        params_from_options({"weight_patent": 0.0, "weight_publication": 0.0,
                             "metric": ["vc_deal:weight=0"]})


def _three_metric_csv(path):
    rows = ["doc_id,source,year,lat,lon,country"]
    for src in ("patent", "publication", "vc_deal"):
        rows += [f"{src}-p{i},{src},2021,48.85,{2.35 + i * 1e-4:.4f},FR" for i in range(6)]
        rows += [f"{src}-s{i},{src},2021,22.54,{114.06 + i * 1e-4:.4f},CN" for i in range(4 if src != "vc_deal" else 30)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_three_metrics_weights_and_off(tmp_path):
    table = _three_metric_csv(tmp_path / "t.csv")
    base = ["rank", str(table), "--min-weight", "2"]
    help_text = runner.invoke(app, ["rank", "--help"], env={"COLUMNS": "200"},
                              terminal_width=200).output
    assert "--metric" in help_text and "vc_deal:weight=1,eps_km=13" in help_text
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a"),
                              "--metric", "vc_deal:weight=1,eps_km=13,years=2019-2023"])
    assert res.exit_code == 0, res.output
    assert "vc_deal %" in res.output
    ranking = pq.read_table(tmp_path / "a" / "ranking.parquet").to_pylist()
    # Shares Paris 60+60+17 % vs Shenzhen 40+40+83 %: with VC counted, Shenzhen leads.
    assert ranking[0]["economy"] == "CN"
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--metric", "vc_deal:off"])
    assert res.exit_code == 0, res.output
    ranking = pq.read_table(tmp_path / "b" / "ranking.parquet")
    assert ranking.to_pylist()[0]["economy"] == "FR"
    assert "vc_deal_weight" not in ranking.column_names
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["parameters"]["excluded_sources"] == ["vc_deal"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "c"), "--metric", "vc_deal:weight=-1"])
    assert res.exit_code == 2 and "vc_deal:weight must be in range" in res.output
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "d")])  # VC named nowhere
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "vc_deal rows not used: metric_not_configured" in text
    assert "--metric vc_deal" in text


# ------------------------------------------------------------------ determinism

def test_three_metric_outputs_do_not_depend_on_input_order(runs, world, tmp_path):
    runs["three"].write(tmp_path / "a")  # read world, then VC
    reversed_ = stclusters.rank([world / "vc.parquet", world / "world.parquet"], params=_params(),
                                label="SYNTHETIC")
    reversed_.write(tmp_path / "b")
    for name in ("ranking.csv", "ranking.parquet", "footprints.geojson", "points.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
