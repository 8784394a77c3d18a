"""Sensitivity (issue 9 §3): the fast evaluator repeats the pipeline exactly; rank ranges,
merges, splits and dissolutions are found where planted; outputs are written and stable."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stclusters
from stclusters.analysis._evaluate import Evaluator
from stclusters.analysis.sensitivity import SensitivityGrid, sensitivity
from stclusters.errors import ParameterError
from stclusters.params import EARTH_RADIUS_KM, RankParams
from stclusters.synthetic import write_synthetic_world

KM_LAT = math.pi * EARTH_RADIUS_KM / 180  # km per degree of latitude


def _blob(rng, n, lat, lon, *, prefix, spread_km=2.0):
    """``n`` one-inventor patents scattered around (lat, lon)."""
    dlat = rng.normal(0, spread_km / KM_LAT, n)
    dlon = rng.normal(0, spread_km / KM_LAT / math.cos(math.radians(lat)), n)
    return [{"doc_id": f"{prefix}{i}", "source": "patent", "year": 2020, "doc_type": "utility",
             "lat": float(lat + a), "lon": float(lon + b), "country": "FR"}
            for i, (a, b) in enumerate(zip(dlat, dlon))]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Hand-made patents (min_weight 20, eps 13 km): A (300) and B (200) 30 km apart; D+E,
    two tight groups of 80 12.5 km apart (one cluster at 13 km, two at 10.4 km); C (120) and
    F (30) alone. Ranks: A 1, B 2, D+E 3, C 4, F 5."""
    rng = np.random.default_rng(1)
    rows = _blob(rng, 300, 45.0, 3.0, prefix="A")
    rows += _blob(rng, 200, 45.0 + 30 / KM_LAT, 3.0, prefix="B")
    rows += _blob(rng, 80, 47.0, 5.0, prefix="D", spread_km=0.2)
    rows += _blob(rng, 80, 47.0 + 12.5 / KM_LAT, 5.0, prefix="E", spread_km=0.2)
    rows += _blob(rng, 120, 46.5, 0.5, prefix="C")
    rows += _blob(rng, 30, 43.6, 1.4, prefix="F")
    path = tmp_path_factory.mktemp("sens") / "planted.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    params = RankParams().with_source("patent", eps_km=13.0, min_weight=20.0).replace(top_n=10)
    return stclusters.rank([str(path)], params=params)


def test_evaluator_repeats_the_pipeline_at_the_base_and_at_another_setting(planted, tmp_path):
    world = tmp_path / "w.parquet"
    write_synthetic_world(world, n_per_source=20_000, seed=11)
    located = stclusters.read([str(world)])
    base = RankParams().replace(top_n=15)
    res = located.rank(base)
    ev = Evaluator.from_result(res)
    other = base.with_source("patent", eps_km=9.0, min_weight_share_pct=0.05).with_source(
        "publication", eps_km=16.0)
    for p, run in ((base, res), (other, located.rank(other))):
        e = ev.evaluate(p)
        cl = run.table("clusters")
        stc = cl.column("stc").to_numpy()
        assert e.n_clusters == cl.num_rows > 20
        assert [e.cluster_id[k] for k in stc] == cl.column("cluster_id").to_pylist()
        for s in ("patent", "publication"):  # the same exact sums: equal to the last bit
            assert np.array_equal(e.shares_pct[s][stc], cl.column(f"{s}_share_pct").to_numpy())
        # Ranks agree except inside groups of equal score and patent share: the evaluator
        # breaks those ties by the base run's names (its clusters by id), so at the base
        # setting the ranks are the run's own, ties included.
        ours, theirs = e.rank[stc], cl.column("rank").to_numpy()
        if p is base:
            assert np.array_equal(ours, theirs)
        key = list(zip(cl.column("score_pct").to_pylist(), cl.column("patent_share_pct").to_pylist()))
        for k in set(key):
            sel = np.array([x == k for x in key])
            assert sorted(ours[sel]) == sorted(theirs[sel])
        assert np.array_equal(ours[:10], theirs[:10])
    assert ev.n_dbscan_runs == 4  # two sources × two settings, nothing recomputed


def test_planted_merge_split_and_dissolution(planted):
    rep = sensitivity(planted, grid=SensitivityGrid(eps_factors=(0.8, 1.0, 2.5),
                                                    min_weight_factors=(1.0, 4.0)))
    assert rep.settings.num_rows == 3 * 2  # one source: eps × min_weight
    assert planted.ranking.column("patent_weight").to_pylist() == [300, 200, 160, 120, 30]
    row = {r["rank"]: r for r in rep.clusters.to_pylist()}
    ev = rep.events.to_pylist()

    def events(kind, base_rank):
        return {(e["eps_factor"], e["patent_min_weight_factor"]) for e in ev
                if e["event"] == kind and e["base_rank"] == base_rank}

    # A and B (30 km apart) are one cluster at eps 32.5 km, at either threshold; B takes
    # A's rank there.
    assert events("merged", 1) == events("merged", 2) == {(2.5, 1.0), (2.5, 4.0)}
    merge = next(e for e in ev if e["event"] == "merged" and e["base_rank"] == 2)
    assert merge["partners"].startswith("#1 ") and merge["setting_rank"] == 1
    assert row[2]["rank_min"] == 1 and row[2]["n_merged"] == 2
    # D+E splits at 10.4 km into its two halves (50 % of its core weight each).
    assert events("split", 3) == {(0.8, 1.0), (0.8, 4.0)}
    split = next(e for e in ev if e["event"] == "split")
    assert split["partners"].count("(50%)") == 2
    # F (30 patents) has no core point at min_weight 80: dissolved, out of the top N there.
    assert events("dissolved", 5) == {(0.8, 4.0), (1.0, 4.0), (2.5, 4.0)}
    assert row[5]["top_n_share_pct"] == 50.0 and row[5]["n_dissolved"] == 3
    # Nothing else happens.
    assert {(e["event"], e["base_rank"]) for e in ev} == {
        ("merged", 1), ("merged", 2), ("split", 3), ("dissolved", 5)}
    assert row[4]["rank_min"] <= 4 <= row[4]["rank_max"]
    base_row = next(s for s in rep.settings.to_pylist()
                    if s["eps_factor"] == 1.0 and s["patent_min_weight_factor"] == 1.0)
    assert base_row["spearman_top_n"] == pytest.approx(1.0) and base_row["top_n_kept"] == 5
    assert base_row["n_merged"] == base_row["n_split"] == base_row["n_dissolved"] == 0
    for r in rep.clusters.to_pylist():  # the base setting is one of the settings
        assert r["rank_min"] <= r["rank"] <= r["rank_max"]


def test_outputs_written_and_byte_identical(planted, tmp_path):
    grid = SensitivityGrid(eps_factors=(1.0, 2.5), min_weight_factors=(1.0,))
    a = sensitivity(planted, grid=grid).write(tmp_path / "a")
    b = sensitivity(planted, grid=grid).write(tmp_path / "b")
    names = sorted(p.name for p in a)
    assert names == sorted(["sensitivity.csv", "sensitivity.parquet", "sensitivity_events.csv",
                            "sensitivity_events.parquet", "sensitivity_settings.csv",
                            "sensitivity_settings.parquet", "sensitivity.png",
                            "sensitivity.svg", "sensitivity.json"])
    for pa_, pb in zip(sorted(a), sorted(b)):
        assert pa_.read_bytes() == pb.read_bytes(), pa_.name
    assert (tmp_path / "a" / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "a" / "sensitivity.svg").read_bytes()[:400]
    # A folder of other files is refused; rewriting our own folder is fine.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="holds other files"):
        sensitivity(planted, grid=grid).write(tmp_path / "c")
    sensitivity(planted, grid=grid).write(tmp_path / "a")


def test_bad_grid_is_refused_in_one_message():
    with pytest.raises(ParameterError, match="eps factors must be positive numbers, got -1"):
        SensitivityGrid(eps_factors=(1.0, -1.0))
    with pytest.raises(ParameterError, match="min_weight factors"):
        SensitivityGrid(min_weight_factors=())


def test_sensitivity_command_end_to_end_and_its_errors(tmp_path):
    from typer.testing import CliRunner  # noqa: PLC0415

    from stclusters.cli import app  # noqa: PLC0415

    rng = np.random.default_rng(2)
    rows = _blob(rng, 200, 45.0, 3.0, prefix="A") + _blob(rng, 100, 45.0 + 30 / KM_LAT, 3.0,
                                                          prefix="B")
    world = tmp_path / "SYNTHETIC_blobs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), world)
    runner = CliRunner()
    out = tmp_path / "sens"
    r = runner.invoke(app, ["sensitivity", str(world), "--out", str(out), "--eps-factors",
                            "1,2.5", "--min-weight-factors", "1", "--min-weight-patent", "20",
                            "--label", "SYNTHETIC"])
    assert r.exit_code == 0, r.output
    assert "2 settings" in r.output and "merged 2" in r.output
    assert (out / "sensitivity.png").exists()
    assert (out / "sensitivity.csv").read_text().startswith("\"data_label\"")
    for args, message in ((["--eps-factors", "1,-2"], "eps factors must be positive"),
                          (["--min-weight-factors", "a"], "--min-weight-factors must be comma"),
                          (["--split-min-share-pct", "80"], "--split-min-share-pct must be in")):
        r = runner.invoke(app, ["sensitivity", str(world), "--out", str(tmp_path / "x"), *args])
        assert r.exit_code == 2, r.output
        assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    r = runner.invoke(app, ["sensitivity", "--help"])
    assert r.exit_code == 0 and "Example: stclusters sensitivity" in r.output
