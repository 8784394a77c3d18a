"""Publication figures (`stclusters figure`): the TopoJSON decoder, the footprint map and the
ranking bars of one real sample run (module-scoped), byte-identical SVG, and the command."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.path import Path as MplPath
from typer.testing import CliRunner

import stclusters
from stclusters import demo
from stclusters.cli import app
from stclusters.errors import ParameterError
from stclusters.params import RankParams
from stclusters.reports import _outlines as O
from stclusters.reports import figures as F

from conftest import SHARED_DATA

runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"
R_KM = 6371.0088  # the engine's sphere (methodology), written out: the tests' own constant


# --------------------------------------------------------------------------- the decoder

def _tiny_topology(*, quantized: bool) -> dict:
    """Two unit squares side by side sharing one arc (used forwards by one, reversed by the
    other), an island with a lake (MultiPolygon with a hole) and a line (skipped)."""
    # Quantized positions (integers) and the transform x = 10 + 0.5 q, y = 20 + 0.25 q.
    shared = [[4, 0], [4, 4]]
    west = [[4, 4], [0, 4], [0, 0], [4, 0]]
    east = [[4, 0], [8, 0], [8, 4], [4, 4]]
    isle = [[20, 20], [24, 20], [24, 24], [20, 20]]
    lake_shore = [[30, 30], [40, 30], [40, 40], [30, 40], [30, 30]]
    lake = [[32, 32], [32, 36], [36, 36], [32, 32]]
    line = [[0, 0], [1, 1]]
    arcs = [shared, west, east, isle, lake_shore, lake, line]
    if quantized:
        arcs = [[a[0]] + [[x1 - x0, y1 - y0] for (x0, y0), (x1, y1) in zip(a, a[1:])]
                for a in arcs]
    else:
        arcs = [[[10 + 0.5 * x, 20 + 0.25 * y] for x, y in a] for a in arcs]
    topo = {"type": "Topology", "arcs": arcs, "objects": {"countries": {
        "type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "arcs": [[1, 0]], "id": "001", "properties": {"name": "West"}},
            {"type": "Polygon", "arcs": [[2, ~0]], "id": "002", "properties": {"name": "East"}},
            {"type": "MultiPolygon", "arcs": [[[3]], [[4], [5]]], "id": "003",
             "properties": {"name": "Isles"}},
            {"type": "LineString", "arcs": [6], "properties": {"name": "Road"}}]}}}
    if quantized:
        topo["transform"] = {"scale": [0.5, 0.25], "translate": [10, 20]}
    return topo


def _deg(qs):
    return np.array([[10 + 0.5 * x, 20 + 0.25 * y] for x, y in qs])


@pytest.mark.parametrize("quantized", [True, False])
def test_decoder_on_a_hand_made_topology(quantized):
    west, east, isles = O.decode_object(_tiny_topology(quantized=quantized), "countries")
    assert [c.name for c in (west, east, isles)] == ["West", "East", "Isles"]
    assert west.feature_id == "001"
    # West: its own arc, then the shared one forwards; the joining position written once.
    np.testing.assert_allclose(west.polygons[0][0],
                               _deg([[4, 4], [0, 4], [0, 0], [4, 0], [4, 4]]))
    # East: its own arc, then the shared one reversed (~0).
    np.testing.assert_allclose(east.polygons[0][0],
                               _deg([[4, 0], [8, 0], [8, 4], [4, 4], [4, 0]]))
    assert len(isles.polygons) == 2 and [len(p) for p in isles.polygons] == [1, 2]
    np.testing.assert_allclose(isles.polygons[1][1], _deg([[32, 32], [32, 36], [36, 36],
                                                           [32, 32]]))
    for ring in west.rings + east.rings + isles.rings:
        assert (ring[0] == ring[-1]).all()  # closed


def test_shipped_outlines_hold_their_capitals():
    capitals = {"Germany": (13.405, 52.52), "Japan": (139.692, 35.690),
                "Brazil": (-47.930, -15.780), "Australia": (149.128, -35.282),
                "United States of America": (-77.037, 38.907), "China": (116.407, 39.904),
                "South Africa": (28.188, -25.746), "India": (77.209, 28.614)}
    for resolution in O.RESOLUTIONS:
        by_name = {c.name: c for c in O.load_countries(resolution)}

        def holds(country, lon, lat):
            return any(MplPath(poly[0]).contains_point((lon, lat))
                       and not any(MplPath(h).contains_point((lon, lat)) for h in poly[1:])
                       for poly in by_name[country].polygons)

        for country, (lon, lat) in capitals.items():
            assert holds(country, lon, lat), (resolution, country)
        assert not holds("France", *capitals["Germany"])
        assert not holds("Japan", *capitals["China"])


def test_rings_across_the_antimeridian_are_flat():
    russia = next(c for c in O.load_countries("110m") if c.name == "Russia")
    flat = O.flat_rings(russia.rings)
    # No edge jumps across the map, and Chukotka shows on both sides: Anadyr (177.5°E)
    # and the Chukchi peninsula east of 180° (173.5°W).
    assert all(np.abs(np.diff(r[:, 0])).max() < 180 for r in flat)
    for lon, lat in ((177.5, 64.73), (-173.5, 65.2)):
        assert any(MplPath(r).contains_point((lon, lat)) for r in flat), lon
    # A ring around a pole is closed along it.
    ring = np.array([[-180.0, -70], [-60, -72], [60, -71], [180, -70], [-180, -70]])
    closed = O.unwrapped_ring(ring)
    assert closed[-3:, 1].tolist() == [-90.0, -90.0, -70.0]


# --------------------------------------------------------------------------- one real run


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    inputs = demo.sample_inputs(SHARED_DATA)
    res = stclusters.rank(inputs.all, params=demo.sample_params())
    base = tmp_path_factory.mktemp("figures")
    run = base / "run"
    res.write(run)
    # The figures drawn once and kept (write_figures itself: the rerun and command tests).
    data = F.load_run_data(run)
    figs = {"footprints_map": F.footprint_map(data, top=0, labels=10),
            "ranking_bars": F.ranking_bars(data, top=0)}
    (run / "figures").mkdir()
    paths = [p for stem, fig in figs.items()
             for p in F.save_figure(fig, run / "figures", stem, dpi=120)]  # 300: slower
    ranking = pq.read_table(run / "ranking.parquet").to_pylist()
    return run, paths, ranking, figs


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def _svg(path: Path) -> ET.Element:
    return ET.fromstring(path.read_bytes())  # raises on anything but well-formed XML


def _by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in root.iter() if e.get("id")}


def _texts(root: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def test_files_are_valid_png_and_svg_at_print_size(sample):
    run, paths, _, _ = sample
    assert sorted(p.name for p in paths) == ["footprints_map.png", "footprints_map.svg",
                                              "ranking_bars.png", "ranking_bars.svg"]
    assert all(p.parent == run / "figures" for p in paths)
    for p in paths:
        if p.suffix == ".png":
            width, height = _png_size(p)
            assert abs(width - 180 / 25.4 * 120) <= 1 and height > 240  # 180 mm at 120 dpi
        else:
            assert _svg(p).tag == f"{SVG}svg"
    assert not list((run / "figures").glob("*.partial"))


def test_one_footprint_per_ranked_cluster_coloured_by_its_dominant_metric(sample):
    run, _, ranking, _ = sample
    ids = _by_id(_svg(run / "figures" / "footprints_map.svg"))
    drawn = sorted(int(m.group(1)) for i in ids if (m := re.fullmatch(r"cluster-(\d+)", i)))
    assert drawn == [r["rank"] for r in ranking]
    weights = json.loads((run / "manifest.json").read_text())["score_weights"]
    colours = dict(zip(("patent", "publication"), F.METRIC_COLOURS))
    for r in ranking:
        parts = {m: weights[m] * r[f"{m}_share_pct"] for m in ("patent", "publication")}
        top = max(parts, key=lambda m: (parts[m], m == "patent"))  # a tie: patent first
        path = ids[f"cluster-{r['rank']}"].find(f"{SVG}path")
        assert f"fill: {colours[top].lower()}" in path.get("style").lower(), r["name"]


def test_attribution_and_no_banner_on_real_data(sample):
    run, _, _, _ = sample
    for stem in ("footprints_map", "ranking_bars"):
        root = _svg(run / "figures" / f"{stem}.svg")
        text = _texts(root)
        for credit in ("GeoNames (geonames.org), CC BY 4.0", "World Urbanization Prospects",
                       "Natural Earth 4.1.0 admin-0 countries (public domain), via "
                       "world-atlas 2.0.2 (ISC)",
                       "OpenAlex (CC0)",
                       "USPTO patent grant full text (public domain)"):
            assert credit in text, (stem, credit)
        assert "synthetic-banner" not in _by_id(root)
        assert "SYNTHETIC" not in text


def test_svg_is_byte_identical_on_rerun(sample, tmp_path):
    run, _, _, _ = sample
    again = F.write_figures(run, out=tmp_path / "again", top=0, labels=10, formats=("svg",))
    assert [p.name for p in again] == ["footprints_map.svg", "ranking_bars.svg"]
    for p in again:
        assert p.read_bytes() == (run / "figures" / p.name).read_bytes(), p.name
        assert b"<dc:date>" not in p.read_bytes()


def test_scale_bar_length_is_true_at_the_centre_latitude(sample):
    """Read off the SVG: the bar's length over the map's width times the map's span of
    longitude, at the centre latitude's km per degree, is the km the bar says."""
    run, _, _, _ = sample
    box = (-10.0, 35.0, 30.0, 60.0)
    fig = F.footprint_map(run, top=0, labels=5, extent=box)
    out = run.parent / "scale"
    out.mkdir()
    F.save_figure(fig, out, "m", formats=("svg",))
    ids = _by_id(_svg(out / "m.svg"))
    bar = [tuple(map(float, xy.split())) for xy in re.findall(
        r"[ML] ([-\d.]+ [-\d.]+)", ids["scale-bar"].find(f"{SVG}path").get("d"))]
    bar_pt = max(x for x, _ in bar) - min(x for x, _ in bar)
    frame = [tuple(map(float, xy.split())) for xy in re.findall(
        r"[ML] ([-\d.]+ [-\d.]+)", ids["map"].find(f"{SVG}g/{SVG}path").get("d"))]
    map_pt = max(x for x, _ in frame) - min(x for x, _ in frame)
    dlon_deg = bar_pt / map_pt * (box[2] - box[0])
    centre = (box[1] + box[3]) / 2
    km = R_KM * math.radians(dlon_deg) * math.cos(math.radians(centre))
    label = "".join(ids["scale-bar-label"].itertext())
    said = float(re.fullmatch(r"\s*([\d.]+) km \(at 48°N\)\s*", label).group(1))
    assert km == pytest.approx(said, rel=2e-4)  # SVG coordinates have 6 decimals
    # The bar is a round length, about a fifth of the map's width at that latitude.
    width_km = R_KM * math.radians(box[2] - box[0]) * math.cos(math.radians(centre))
    assert said in (100, 200, 500, 1000) and width_km / 10 < said <= width_km / 5 * 1.0001
    # Along the parallel or the great circle between the bar's ends: within 0.5 % here.
    lat = math.radians(centre)
    gc = 2 * R_KM * math.asin(math.cos(lat) * math.sin(math.radians(dlon_deg) / 2))
    assert gc == pytest.approx(said, rel=5e-3)


def test_top_extent_frames_the_drawn_clusters(sample):
    run, _, ranking, _ = sample
    data = F.load_run_data(run)
    german = [c for c in data.clusters if c["economy"] == "DE"][:6]
    lon0, lat0, lon1, lat1 = F._top_extent(data, german)
    for c in german:
        geometry = data.footprints[c["cluster_id"]]
        polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                    else geometry["coordinates"])
        pts = np.concatenate([np.asarray(ring) for poly in polygons for ring in poly])
        assert lon0 < pts[:, 0].min() and pts[:, 0].max() < lon1
        assert lat0 < pts[:, 1].min() and pts[:, 1].max() < lat1
    height_over_width = (lat1 - lat0) / ((lon1 - lon0) * math.cos(math.radians(
        (lat0 + lat1) / 2)))
    assert 0.5 - 1e-9 <= height_over_width <= 1 + 1e-9
    assert F._top_extent(data, data.clusters) == F.WORLD_EXTENT  # Japan to the US


def test_labels_do_not_overlap_and_name_the_best_ranked(sample):
    fig = sample[3]["footprints_map"]  # the world, every ranked cluster, 10 labels
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.findobj() if (t.get_gid() or "").startswith("label-")]
    crowded = [t.get_text() for t in fig.findobj() if t.get_gid() == "unlabelled"]
    unlabelled = [int(n) for n in re.findall(r"(\d+) [A-Z]", crowded[0])] if crowded else []
    # Each of the top 10 is labelled on the map or, enclosed by others, named under it.
    assert sorted([int(t.get_gid()[6:]) for t in labels] + unlabelled) == list(range(1, 11))
    assert len(unlabelled) <= 2
    named = [t for t in labels if " " in t.get_text()]
    assert named and named[0].get_text().startswith("1 ")
    boxes = [F._text_box(t, renderer) for t in named]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


def test_bars_stack_each_metrics_weighted_share(sample):
    run, _, ranking, _ = sample
    fig = F.ranking_bars(run, top=12)
    ax = next(a for a in fig.axes if a.get_gid() == "bars")
    by_metric = {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}
    assert list(by_metric) == ["patent", "publication"]  # the fixed colour order
    for i, r in enumerate(ranking[:12]):
        assert by_metric["patent"][i] == pytest.approx(r["patent_share_pct"], rel=1e-12)
        assert by_metric["publication"][i] + by_metric["patent"][i] == pytest.approx(
            r["score_pct"], rel=1e-9)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == f"1  {ranking[0]['name']} ({ranking[0]['economy']})"
    assert len(ticks) == 12


# --------------------------------------------------------------------------- labelled runs


def _table(path: Path) -> Path:
    """Two compact cities of co-authored documents (exact coordinates, no geocoding)."""
    rows = []
    for city, (lat, lon, cc) in {"a": (52.52, 13.40, "DE"), "b": (48.14, 11.58, "DE")}.items():
        for d in range(12):
            for seq in range(2):
                rows.append({"doc_id": f"{city}{d}", "source": "publication", "year": 2020,
                             "contributor_seq": seq, "lat": lat + 0.01 * seq,
                             "lon": lon + 0.01 * d % 0.05, "country": cc})
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in rows[0]}), path)
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    base = tmp_path_factory.mktemp("labelled")
    path = _table(base / "t.parquet")
    params = RankParams().with_source("publication", min_weight=3.0, eps_km=10.0)
    run = base / "synthetic"
    res = stclusters.rank([path], params=params, label="SYNTHETIC")
    res.write(run)
    empty = base / "empty"
    stclusters.rank([path], params=params.with_source("publication", min_weight=1e6)).write(empty)
    return run, empty, res


def test_a_ranking_in_memory_draws_as_its_folder(labelled):
    """From a RankResult the footprints are drawn from the core points: the same shapes as
    the run folder's footprints.geojson."""
    run, _, res = labelled
    in_memory, folder = F.load_run_data(res), F.load_run_data(run)
    assert in_memory.footprints == folder.footprints and len(folder.footprints) == 2
    assert in_memory.clusters == folder.clusters and in_memory.data_label == "SYNTHETIC"
    ids = {a.get_gid() for a in F.footprint_map(res, extent="top").findobj()}
    assert {"cluster-1", "cluster-2", "synthetic-banner", "scale-bar"} <= ids


def test_synthetic_run_gets_the_banner(labelled, tmp_path):
    run, _, _ = labelled
    paths = F.write_figures(run, out=tmp_path, formats=("svg",), extent="top")
    for p in paths:
        root = _svg(p)
        banner = _by_id(root)["synthetic-banner"]
        assert "SYNTHETIC DATA" in "".join(banner.itertext())
        assert "contribution tables t.parquet" in _texts(root)
    ids = _by_id(_svg(tmp_path / "footprints_map.svg"))
    assert {i for i in ids if re.fullmatch(r"cluster-\d+", i)} == {"cluster-1", "cluster-2"}


def test_figure_command(sample, labelled, tmp_path):
    run, _, ranking, _ = sample
    out = tmp_path / "cli"
    r = runner.invoke(app, ["figure", str(run), "--out", str(out), "--top", "5",
                            "--extent", "top", "--format", "svg,png", "--dpi", "50"])
    assert r.exit_code == 0, r.output
    assert r.output.split() == [str(out / f"{stem}.{ext}") for stem in (
        "footprints_map", "ranking_bars") for ext in ("png", "svg")]
    ids = _by_id(_svg(out / "footprints_map.svg"))
    assert sorted(i for i in ids if re.fullmatch(r"cluster-\d+", i)) == [
        f"cluster-{k}" for k in range(1, 6)]
    assert abs(_png_size(out / "ranking_bars.png")[0] - 180 / 25.4 * 50) <= 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    _, empty, _ = labelled
    for args, message in (
            ([str(tmp_path)], "not a run folder"),
            ([str(empty)], "the ranking is empty"),
            ([str(run), "--extent", "30,10,20,20"], "lon0 < lon1"),
            ([str(run), "--extent", "europe"], "world, top or lon0,lat0,lon1,lat1"),
            ([str(run), "--format", "pdf"], "png, svg or png,svg"),
            ([str(run), "--out", str(tmp_path / "other")], "holds other files")):
        r = runner.invoke(app, ["figure", *args])
        assert r.exit_code == 2, (args, r.output)
        assert message in " ".join(r.output.split()), (args, r.output)
        assert "Traceback" not in r.output
    r = runner.invoke(app, ["figure", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output


def test_editions_folder_gets_figures_per_edition(sample, labelled, tmp_path):
    """An editions folder (editions.json listing its run folders): each edition drawn, one
    with no cluster skipped and said so."""
    run, _, _, _ = sample
    _, empty, _ = labelled
    eds = tmp_path / "eds"
    eds.mkdir()
    shutil.copytree(run, eds / "2023", ignore=shutil.ignore_patterns("figures"))
    shutil.copytree(empty, eds / "2024")
    (eds / "editions.json").write_text(json.dumps({"editions": [
        {"edition": "2023", "folder": "2023"}, {"edition": "2024", "folder": "2024"}]}))
    r = runner.invoke(app, ["figure", str(eds), "--format", "svg", "--top", "3"])
    assert r.exit_code == 0, r.output
    assert (eds / "2023" / "figures" / "footprints_map.svg").is_file()
    assert not (eds / "2024" / "figures").exists()
    assert "skipped: edition 2024" in r.output


def test_bad_parameters_are_refused():
    with pytest.raises(ParameterError, match="lon0 < lon1"):
        F.parse_extent("170,0,-170,10")
    assert F.parse_extent(" World ") == "world"
    assert F.parse_extent("100,15,150,50") == (100.0, 15.0, 150.0, 50.0)
    assert F.parse_formats("svg,png") == ("png", "svg")
    assert F.metric_order(["vc_deal", "publication", "patent", "alpha"]) == (
        "patent", "publication", "alpha", "vc_deal")


def test_names_are_drawn_as_given(labelled, tmp_path):
    """A name from the data is text, not mathtext or markup: `$`, `&`, `<` survive."""
    run, _, _ = labelled
    data = F.load_run_data(run)
    data.clusters[0]["name"] = "Price $5$ & <Co>_x^2"
    for draw in (F.footprint_map, F.ranking_bars):
        F.save_figure(draw(data, top=2, extent="top") if draw is F.footprint_map
                      else draw(data, top=2), tmp_path, "f", formats=("svg",))
        assert "Price $5$ & <Co>_x^2" in _texts(_svg(tmp_path / "f.svg"))


def test_a_weight_zero_metric_never_dominates():
    """Weight × share decides, and a metric of weight 0 never dominates, even when every
    other part of the score is 0 (the report's data.js applies the same rule)."""
    data = F.RunFigureData(clusters=[], metrics=("patent", "publication"),
                           score_weights={"patent": 0.0, "publication": 1.0}, footprints={},
                           eps_km=None, data_label=None, manifest={}, run_name="")
    assert data.dominant({"patent_share_pct": 5.0, "publication_share_pct": 0.0}) == 1
    assert data.dominant({"patent_share_pct": 5.0, "publication_share_pct": 0.1}) == 1
    assert F.score_weights({"parameters": {"source_weights": {"patent": 2}},
                            "score_weights": {"publication": 0.5}},
                           ["patent", "publication", "x"]) == {
        "patent": 2.0, "publication": 0.5, "x": 1.0}
