"""Calibration (methodology §8): parameters planted in a SYNTHETIC world are recovered from
the reference table derived from them; a reference from another world is reported as poor;
reference and pairs files are read strictly."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import stclusters
from stclusters.analysis.calibrate import (CalibrationGrid, Objective, calibrate, default_pairs,
                                           name_places, read_pairs, read_reference, verdict)
from stclusters.errors import InputFormatError, ParameterError
from stclusters.params import RankParams
from stclusters.synthetic import write_synthetic_world

from conftest import SHARED_DATA

GII = SHARED_DATA / "reference" / "gii2023_top34.csv"
GRID = CalibrationGrid(eps_km=(8.0, 10.0, 13.0), min_weight_share_pct=(0.02, 0.05))
#: Planted: eps 10 km for both sources, patent threshold 0.05 %, publication 0.02 %.
PLANTED = (RankParams().replace(top_n=20)
           .with_source("patent", eps_km=10.0, min_weight_share_pct=0.05)
           .with_source("publication", eps_km=10.0, min_weight_share_pct=0.02))


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "SYNTHETIC_world.parquet"
    write_synthetic_world(path, n_per_source=50_000, seed=5)
    return stclusters.read([str(path)])


@pytest.fixture(scope="module")
def planted_run(located):
    return located.rank(PLANTED, label="SYNTHETIC")


def _derive_reference(res, path, pairs_path) -> None:
    """The planted run's top 20 as a reference table (names, economies, shares), and pairs:
    every two places of one cluster's name must merge; the two nearest ranked clusters,
    and the first and second, must stay apart."""
    rows = res.ranking.to_pylist()
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rank", "cluster", "economy", "patent_share_pct", "publication_share_pct"])
        for r in rows:
            w.writerow([r["rank"], r["name"], r["economy"], repr(r["patent_share_pct"]),
                        repr(r["publication_share_pct"])])
    pairs = []
    for r in rows:
        places = name_places(r["name"], r["economy"].split("/"))
        if len(places) >= 2:
            pairs.append(["merge", places[0].label(), r["economy"], places[1].label(),
                          r["economy"]])
    lat, lon = np.radians([r["lat"] for r in rows]), np.radians([r["lon"] for r in rows])
    d = np.arccos(np.clip(np.sin(lat)[:, None] * np.sin(lat) + np.cos(lat)[:, None]
                          * np.cos(lat) * np.cos(lon[:, None] - lon), -1, 1))
    np.fill_diagonal(d, np.inf)
    i, j = np.unravel_index(np.argmin(d), d.shape)
    for a, b in ((i, j), (0, 1)):
        pa_, pb = (name_places(rows[k]["name"], rows[k]["economy"].split("/"))[0] for k in (a, b))
        pairs.append(["apart", pa_.label(), rows[a]["economy"], pb.label(), rows[b]["economy"]])
    with open(pairs_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rule", "place_a", "economy_a", "place_b", "economy_b"])
        w.writerows(pairs)
    assert any(p[0] == "merge" for p in pairs)


def test_planted_parameters_are_recovered_with_a_perfect_fit(located, planted_run, tmp_path):
    ref_path, pairs_path = tmp_path / "ref.csv", tmp_path / "pairs.csv"
    _derive_reference(planted_run, ref_path, pairs_path)
    # The planted run only lends its points (they do not depend on eps_km or min_weight);
    # every setting is clustered anew.
    rep = calibrate(located, ref_path, params=RankParams().replace(top_n=20),
                    pairs=read_pairs(pairs_path), grid=GRID, label="SYNTHETIC", base=planted_run)
    best = rep.summary["best"]
    assert rep.summary["n_settings"] == 3 * 2 * 2
    assert best["loss"] == pytest.approx(0.0, abs=1e-9)
    assert best["verdict"] == "good" and not best["missed"]
    assert best["spearman"] == pytest.approx(1.0) and best["n_matched"] == 20
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in best["wape"].values())
    assert best["pairs_held"] == best["pairs_known"] == len(read_pairs(pairs_path))
    # The planted setting is the best one, alone (a tie would show in the count).
    assert best["parameters"]["patent"]["eps_km"] == 10.0
    assert best["parameters"]["patent"]["min_weight_share_pct"] == 0.05
    assert best["parameters"]["publication"]["min_weight_share_pct"] == 0.02
    assert rep.best_params.source("patent").min_weight_share_pct == 0.05
    assert rep.summary["n_settings_with_best_loss"] == 1
    # Every other setting fits worse, and the settings table is ordered by loss.
    losses = rep.settings.column("loss").to_pylist()
    assert losses == sorted(losses) and losses[1] > 1e-6
    # Per-cluster table: our names at the best setting are the planted names.
    cl = rep.clusters.to_pylist()
    assert [r["name"] for r in cl] == [r["ref_name"] for r in cl]
    assert [r["rank"] for r in cl] == list(range(1, 21))
    assert "verdict: GOOD" in "\n".join(rep.lines())


def test_reference_of_another_world_is_reported_as_poor(located, planted_run, tmp_path):
    ref_path, pairs_path = tmp_path / "ref.csv", tmp_path / "pairs.csv"
    _derive_reference(planted_run, ref_path, pairs_path)
    # Another world with the same counts: every rank's name and economy moved 7 rows on.
    rows = list(csv.reader(open(ref_path, encoding="utf-8")))
    body = rows[1:]
    moved = [[r[0], body[(k + 7) % len(body)][1], body[(k + 7) % len(body)][2], *r[3:]]
             for k, r in enumerate(body)]
    with open(ref_path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([rows[0], *moved])
    one = CalibrationGrid(eps_km=(10.0,), min_weight_share_pct=(0.02, 0.05))
    rep = calibrate(located, ref_path, params=PLANTED, pairs=[], grid=one, name_best=False,
                    base=planted_run)
    best = rep.summary["best"]
    assert rep.verdict == "poor" and best["loss"] > 0.5
    assert any("rank correlation" in m for m in best["missed"])
    text = "\n".join(rep.lines())
    assert "verdict: POOR" in text and "runner-up" in text
    # The GII 2023 reference (the real world) against the SYNTHETIC one: poor, in full.
    gii = calibrate(located, GII, params=PLANTED, grid=CalibrationGrid(
        eps_km=(10.0,), min_weight_share_pct=(0.05,)), label="SYNTHETIC", name_best=False,
        base=planted_run)
    assert gii.verdict == "poor"
    assert gii.clusters.num_rows == 34 and gii.pairs.num_rows == 9
    assert gii.summary["reference_places_not_found"] == []
    paths = gii.write(tmp_path / "out")
    assert {p.name for p in paths} >= {"calibration.csv", "calibration_settings.parquet",
                                       "calibration_pairs.csv", "calibration.json",
                                       "calibration.png", "calibration.svg"}
    assert (tmp_path / "out" / "calibration.csv").read_text().splitlines()[1].startswith(
        '"SYNTHETIC",')


def test_gii_reference_is_read_with_shares_refined_from_counts():
    ref = read_reference(GII)
    assert len(ref.rows) == 34 and ref.sources == ("patent", "publication")
    tokyo = ref.rows[0]
    # 127,418 of the worked-back world total (Σ counts / Σ printed shares).
    assert tokyo.shares_pct["patent"] == pytest.approx(10.15, abs=0.05)
    assert [p.label() for p in ref.rows[5].places] == ["San Jose, CA", "San Francisco, CA"]
    assert [p.label() for p in ref.rows[16].places] == ["Washington, DC", "Baltimore, MD"]
    assert ref.rows[1].places[1].economies == ("CN", "HK")


def test_default_pairs_are_those_of_the_methodology():
    pairs = default_pairs()
    assert sum(p.rule == "merge" for p in pairs) == 6 and sum(p.rule == "apart" for p in pairs) == 3
    assert {p.label() for p in pairs if p.rule == "apart"} == {
        "Boston, MA apart from New York City, NY", "Nagoya apart from Osaka",
        "Daejeon apart from Seoul"}


@pytest.mark.parametrize("text,message", [
    ("rank,cluster\n1,Tokyo\n", "missing column(s) economy"),
    ("rank,cluster,economy\n1,Tokyo,JP\n", "no share column"),
    ("rank,cluster,economy,patent_share_pct\n1,Tokyo,JP,ten\n",
     "line 2: field 'patent_share_pct' is not a number: 'ten'"),
    ("rank,cluster,economy,patent_share_pct\n1,Tokyo,JP,1\nx,Osaka,JP,1\n",
     "line 3: field 'rank' is not a number"),
    ("rank,cluster,economy,patent_share_pct\n1,,JP,1\n", "line 2: field 'cluster' is empty"),
])
def test_bad_reference_is_one_line_naming_line_and_field(tmp_path, text, message):
    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(InputFormatError) as exc:
        read_reference(path)
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_bad_pairs_and_grid_are_refused(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("rule,place_a,economy_a,place_b,economy_b\njoin,Osaka,JP,Kobe,JP\n")
    with pytest.raises(InputFormatError, match="line 2: field 'rule' must be merge or apart"):
        read_pairs(path)
    with pytest.raises(ParameterError, match="eps_km grid"):
        CalibrationGrid(eps_km=(0.0, 10.0))
    with pytest.raises(ParameterError, match="min_weight_share_pct grid"):
        CalibrationGrid(min_weight_share_pct=(200.0,))
    with pytest.raises(ParameterError, match="objective weights"):
        Objective(rank=-1)


def test_verdict_rules():
    assert verdict(0.95, 0.1, 1.0, 0.0) == ("good", [])
    v, missed = verdict(0.7, 0.3, 0.8, 0.2)
    assert v == "fair" and len(missed) == 4
    assert verdict(0.5, 0.1, 1.0, 0.0)[0] == "poor"
    assert verdict(math.nan, 0.1, 1.0, 0.0)[0] == "poor"


def _french_patents(path):
    """SYNTHETIC patents around Paris (300), Lyon (200) and Marseille (100)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    rng = np.random.default_rng(3)
    rows = []
    for name, lat, lon, n in (("P", 48.8566, 2.3522, 300), ("L", 45.7640, 4.8357, 200),
                              ("M", 43.2965, 5.3698, 100)):
        for i in range(n):
            rows.append({"doc_id": f"{name}{i}", "source": "patent", "year": 2020,
                         "doc_type": "utility", "lat": lat + rng.normal(0, 0.02),
                         "lon": lon + rng.normal(0, 0.02), "country": "FR"})
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_calibrate_command_end_to_end_and_its_errors(tmp_path):
    from typer.testing import CliRunner  # noqa: PLC0415

    from stclusters.cli import app  # noqa: PLC0415

    world = tmp_path / "SYNTHETIC_fr.parquet"
    _french_patents(world)
    ref = tmp_path / "ref.csv"
    ref.write_text("rank,cluster,economy,patent_share_pct\n1,Paris,FR,50\n2,Lyon,FR,33.3333333\n"
                   "3,Marseille,FR,16.6666667\n", encoding="utf-8")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("rule,place_a,economy_a,place_b,economy_b\napart,Paris,FR,Lyon,FR\n")
    runner = CliRunner()
    out = tmp_path / "cal"
    r = runner.invoke(app, ["calibrate", str(world), "--reference", str(ref), "--pairs",
                            str(pairs), "--eps-km-grid", "10,13", "--min-weight-share-pct-grid",
                            "1,5", "--out", str(out), "--label", "SYNTHETIC"])
    assert r.exit_code == 0, r.output
    assert "verdict: GOOD" in r.output and "pairs held: 1/1" in r.output
    assert (out / "calibration.json").exists() and (out / "calibration.svg").exists()
    # Errors: one line and a hint, exit 2, before any input is read.
    bad_ref = tmp_path / "bad.csv"
    bad_ref.write_text("rank,cluster,economy,patent_share_pct\n1,Paris,FR,lots\n")
    for args, message in (
            (["--reference", str(bad_ref)], "line 2: field 'patent_share_pct' is not a number"),
            (["--reference", str(ref), "--eps-km-grid", "10,x"], "--eps-km-grid must be comma"),
            (["--reference", str(ref), "--pairs", str(pairs), "--no-pairs"], "exclude each other"),
            (["--reference", str(ref), "--weight-rank", "-1"], "objective weights must be >= 0")):
        r = runner.invoke(app, ["calibrate", str(world), "--out", str(tmp_path / "x"), *args])
        assert r.exit_code == 2, r.output
        assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    r = runner.invoke(app, ["calibrate", "--help"])
    assert r.exit_code == 0 and "Example: stclusters calibrate" in r.output


def test_pairs_held_broken_and_unresolved(tmp_path):
    from stclusters.analysis.calibrate import Pair, parse_place  # noqa: PLC0415

    world = tmp_path / "SYNTHETIC_fr.parquet"
    _french_patents(world)
    located = stclusters.read([str(world)])
    ref = tmp_path / "ref.csv"
    ref.write_text("rank,cluster,economy,patent_share_pct\n1,Paris,FR,50\n2,Lyon,FR,33.3\n"
                   "3,Atlantis,FR,10\n", encoding="utf-8")

    def place(text):
        return parse_place(text, ["FR"])

    pairs = [Pair("apart", place("Paris"), place("Lyon")),       # held: two clusters
             Pair("merge", place("Paris"), place("Lyon")),       # broken
             Pair("merge", place("Paris"), place("Atlantis")),   # a place not found
             Pair("merge", place("Lyon"), place("Villeurbanne"))]  # held: 4 km apart
    rep = calibrate(located, ref, pairs=pairs, grid=CalibrationGrid(
        eps_km=(13.0,), min_weight_share_pct=(5.0,)), name_best=False)
    assert rep.pairs.column("held").to_pylist() == [True, False, None, True]
    best = rep.summary["best"]
    assert (best["pairs_held"], best["pairs_known"], best["pairs_unresolved"]) == (2, 3, 1)
    # Atlantis is no place: unmatched, said by name; Marseille is not in the reference.
    assert best["unmatched"] == ["Atlantis"] and best["n_matched"] == 2
    assert rep.summary["reference_places_not_found"] == ["Atlantis"]
    assert rep.verdict == "poor"  # 33 % unmatched, a pair broken
    assert best["loss"] == pytest.approx((1 - (-1.0)) / 2 + best["mean_wape"] + 1 / 3 + 1 / 3)
