"""The offline HTML report (``stclusters report``): payload against the run's own tables,
footprints against footprints.geojson, escaping of hostile text, no network reference,
determinism, editions' moves, the command line. The browser checks are in
``test_report_browser.py`` (they share the run built here)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters import synthetic
from stclusters._run_folder import open_run
from stclusters.cli import app
from stclusters.errors import StclustersError
from stclusters.reports import html as report_html

#: Size of the shared run: small enough to rank in seconds, big enough for ~25 clusters of
#: two economies' worth of structure.
N_PER_SOURCE = 2500
TOP_N = 25
#: The only absolute URLs the page may contain: XML namespaces (names, never fetched).
NAMESPACES = {"http://www.w3.org/2000/svg"}


def make_report_run(base: Path) -> Path:
    """A labelled SYNTHETIC run folder under ``base`` (built once per test session and
    shared with the browser tests)."""
    run = base / "report_run"
    if (run / "manifest.json").is_file():
        return run
    world = base / "report_world.parquet"
    synthetic.write_synthetic_world(world, n_per_source=N_PER_SOURCE, seed=11)
    res = stclusters.rank([world], params=stclusters.RankParams(top_n=TOP_N),
                          label=synthetic.SYNTHETIC_LABEL)
    res.write(run)
    return run


@pytest.fixture(scope="session")
def report_run(tmp_path_factory) -> Path:
    return make_report_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def ranking(report_run) -> list[dict]:
    return pacsv.read_csv(report_run / "ranking.csv").to_pylist()


@pytest.fixture(scope="module")
def payload(report_run) -> dict:
    return report_html.build_payload(report_run)


@pytest.fixture(scope="module")
def page(report_run, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "r.html"
    report_html.write_report(report_run, out)
    return out.read_text(encoding="utf-8")


def _decode(ints: list[int], scale: int) -> list[tuple[float, float]]:
    x = y = 0
    out = []
    for i in range(0, len(ints), 2):
        x, y = x + ints[i], y + ints[i + 1]
        out.append((x / scale, y / scale))
    return out


def test_payload_clusters_are_the_ranking(payload, ranking):
    assert len(ranking) == TOP_N
    assert [c["rank"] for c in payload["clusters"]] == [r["rank"] for r in ranking]
    assert payload["metrics"] == ["patent", "publication"]
    for c, r in zip(payload["clusters"], ranking):
        assert (c["cluster_id"], c["name"], c["economy"]) == (r["cluster_id"], r["name"],
                                                              r["economy"])
        for m in payload["metrics"]:
            assert c["weight"][m] == pytest.approx(r[f"{m}_weight"], abs=1e-6)
            assert c["share_pct"][m] == pytest.approx(r[f"{m}_share_pct"], abs=1e-6)
        assert c["score_pct"] == pytest.approx(r["score_pct"], abs=1e-6)
    assert payload["label"] == synthetic.SYNTHETIC_LABEL


def test_footprints_match_the_geojson(payload, report_run):
    features = {f["properties"]["cluster_id"]: f["geometry"] for f in json.loads(
        (report_run / "footprints.geojson").read_text())["features"]}
    scale = payload["coord_scale"]
    for c in payload["clusters"]:
        geom = features[c["cluster_id"]]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        assert len(c["footprint"]) == len(polys)
        for enc, poly in zip(c["footprint"], polys):
            ring, want = _decode(enc[0], scale), poly[0]
            assert len(ring) >= 3
            # Every decoded vertex is a vertex of the footprint, rounded to 1/scale degree.
            vertices = {(round(x * scale), round(y * scale)) for x, y, *_ in want}
            assert {(round(x * scale), round(y * scale)) for x, y in ring} <= vertices
            assert len(ring) >= len(vertices) // 2


def test_economy_split_adds_up_to_the_cluster_weight(payload):
    """The panel's weight by economy comes from the contributions of the cluster's points:
    it must add up to the ranking's weights (every synthetic cluster has ≤ 8 economies)."""
    for c in payload["clusters"]:
        econ = payload["details"][c["cluster_id"]]["economies"]
        total = sum(c["weight"].values())
        assert sum(w for _, w, _ in econ) == pytest.approx(total, abs=1e-5)
        assert sum(s for *_, s in econ) == pytest.approx(100.0, abs=0.01)
        assert econ[0][0] == c["economy"].split("/")[0] or "/" in c["economy"]
        places = payload["details"][c["cluster_id"]]["places"]
        assert 0 < len(places) <= report_html.TOP_PLACES
        weights = [w for *_, w, _ in places]
        assert weights == sorted(weights, reverse=True)
        assert sum(weights) <= total + 1e-6


def test_points_are_those_of_the_shown_clusters(report_run, payload):
    con, _, _ = open_run(report_run)
    try:
        want = con.execute("""
            SELECT count(*) FROM (SELECT DISTINCT round(p.lon * 1000), round(p.lat * 1000)
            FROM points p JOIN clusters c ON c.stc = p.stc
            JOIN ranking r ON r.cluster_id = c.cluster_id)""").fetchone()[0]
    finally:
        con.close()
    pts = payload["points"]
    assert pts["shown"] == pts["total"] == want == len(pts["xy"]) // 2 > 0
    small = report_html.build_payload(report_run, top_n=3, max_points=7)
    assert [c["rank"] for c in small["clusters"]] == [1, 2, 3]
    assert small["points"]["shown"] == 7 < small["points"]["total"] < want
    assert set(small["details"]) == {c["cluster_id"] for c in small["clusters"]}


def test_page_is_self_contained_and_locked_down(page):
    urls = set(re.findall(r"https?://[^\s\"'<>)]*", page))
    assert urls <= NAMESPACES, urls - NAMESPACES
    assert not re.search(r"\b(?:src|href)\s*=", page)
    assert "@import" not in page and "url(" not in page
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"',
                                  page).group(1))
    assert "default-src 'none'" in csp
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert page.count("</script>") == 3  # payload, outlines, code: nothing closes early
    assert '"type":"Topology"' in page  # the country outlines are inline


def test_hostile_text_is_escaped():
    evil = "</script><script>alert(1)</script>\u2028\u2029&<!--"
    text = report_html.script_json({"name": evil})
    assert "</" not in text and "<" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"name": evil}
    page = report_html.render_html({"title": evil, "clusters": [], "label": None})
    assert page.count("</script>") == 3 and "<script>alert" not in page
    assert "<title>&lt;/script&gt;" in page


def test_same_run_same_bytes(report_run, page, tmp_path):
    again = report_html.write_report(report_run, tmp_path / "again.html")
    assert again.read_text(encoding="utf-8") == page
    # A copy of the run folder under the same name gives the same bytes too.
    copy = tmp_path / "copy" / report_run.name
    shutil.copytree(report_run, copy, ignore=shutil.ignore_patterns("report.html"))
    assert report_html.write_report(copy).read_bytes() == again.read_bytes()
    assert (copy / "report.html").is_file()  # the default output


def test_edition_folder_shows_previous_rank_and_move(report_run, ranking, tmp_path):
    edition = tmp_path / "eds" / "2024"
    shutil.copytree(report_run, edition)
    rows = [{"edition": "2024", "cluster_id": r["cluster_id"], "prev_rank": r["rank"] + 2,
             "move": 2, "status": "continued"} for r in ranking[:3]]
    rows.append({"edition": "2023", "cluster_id": ranking[3]["cluster_id"], "prev_rank": 1,
                 "move": -3, "status": "continued"})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "eds" / "editions.parquet")
    clusters = report_html.build_payload(edition)["clusters"]
    assert [(c["prev_rank"], c["move"]) for c in clusters[:4]] == [
        (3, 2), (4, 2), (5, 2), (None, None)]  # the 2023 row belongs to another edition


def test_not_a_run_and_broken_footprints(report_run, tmp_path):
    with pytest.raises(StclustersError, match="not a run folder"):
        report_html.write_report(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(report_run, broken)
    (broken / "footprints.geojson").write_text('{"features": [{"geometry": null}]}')
    with pytest.raises(StclustersError, match=r"footprints.geojson: feature 1"):
        report_html.write_report(broken)
    (broken / "footprints.geojson").unlink()
    with pytest.raises(StclustersError, match=r"footprints.geojson: missing"):
        report_html.write_report(broken)


def test_cli(report_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "top3.html"
    res = runner.invoke(app, ["report", str(report_run), "--out", str(out), "--top", "3"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output.replace("\n", "")
    data = re.search(r'id="stc-data">(.*?)</script>', out.read_text()).group(1)
    assert [c["rank"] for c in json.loads(data)["clusters"]] == [1, 2, 3]
    res = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a run folder" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["report", str(report_run), "--top", "0"])
    assert res.exit_code == 2
    # The finer outlines (1:50m) replace the default 1:110m ones; an unknown scale is refused.
    fine = tmp_path / "fine.html"
    res = runner.invoke(app, ["report", str(report_run), "--out", str(fine), "--top", "3",
                              "--outlines", "50m"])
    assert res.exit_code == 0, res.output
    coarse_outlines = len(report_html.script_json(report_html._outlines("110m")))
    assert fine.stat().st_size - out.stat().st_size > 5 * coarse_outlines
    res = runner.invoke(app, ["report", str(report_run), "--outlines", "10m"])
    assert res.exit_code == 2 and "--outlines 10m" in res.output
    res = runner.invoke(app, ["report", "--help"])
    assert res.exit_code == 0 and "Example: stclusters report" in res.output


def test_payload_has_the_figures_metric_order_and_weights(payload, report_run):
    """The report's colours follow the figures' rule: the metrics in the figures' colour
    order and the run's score weights, as ``figures.load_run_data`` reads them."""
    from stclusters.reports import figures  # noqa: PLC0415

    data = figures.load_run_data(report_run)
    assert payload["metrics"] == list(data.metrics)
    assert payload["score_weights"] == data.score_weights == {"patent": 1.0, "publication": 1.0}


def test_page_keeps_only_base_names_of_input_paths(report_run, payload, page):
    """No local folder leaves the machine: the manifest's input paths are base names."""
    manifest = json.loads((report_run / "manifest.json").read_text(encoding="utf-8"))
    local = [i["path"] for i in manifest["inputs"]]
    assert all(Path(p).is_absolute() for p in local)
    assert [i["path"] for i in payload["manifest"]["inputs"]] == [Path(p).name for p in local]
    assert str(report_run.parent) not in page
    assert str(report_run.parent).replace("/", "\\/") not in page
    assert report_html.public_manifest({"a": ["C:\\data\\x.xml", "a / b", "/"]}) == {
        "a": ["x.xml", "a / b", "/"]}


def test_page_carries_the_third_party_licences(page):
    """The ISC licences of the inlined d3-geo, d3-array, topojson-client and world-atlas
    travel with the single-file page (in an HTML comment)."""
    comment = page[page.rindex("<!--"):]
    for line in ("== d3-geo ", "== d3-array ", "== topojson-client ", "== world-atlas ",
                 "Copyright 2010-2026 Mike Bostock", "Copyright 2008-2012 Charles Karney",
                 "Copyright 2012-2019 Michael Bostock", "Copyright 2013-2019 Michael Bostock"):
        assert line in comment, line
    assert comment.count("-->") == 1 and comment.endswith("-->\n</html>\n")


def test_one_ring_encoding_and_one_outlines_credit(payload, report_run):
    """``encode_ring`` (shared with ``stclusters serve``) drops repeats and the closing
    vertex; the page credits the outlines with the figures' own words."""
    from stclusters.reports import figures  # noqa: PLC0415

    ring = [[0.0, 0.0], [0.0001, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert report_html.encode_ring(ring) == [0, 0, 1000, 0, 0, 1000]
    assert report_html.encode_ring(ring, 10) == [0, 0, 10, 0, 0, 10]
    assert report_html.encode_geometry({"type": "MultiPolygon", "coordinates": [[ring]]}) == [
        [[0, 0, 1000, 0, 0, 1000]]]
    credit = payload["attribution"][-1]
    assert credit.startswith("Country outlines: Natural Earth 4.1.0")
    assert credit in figures.attribution_text(figures.load_run_data(report_run))


def test_credits_name_each_source_with_its_licence(payload, report_run):
    """The page credits the run's sources as the figures do (each with its licence or
    terms), before GeoNames, the population source and Natural Earth."""
    import json

    from stclusters.reports.figures import source_credit

    manifest = json.loads((report_run / "manifest.json").read_text())
    credit = source_credit(manifest)
    assert credit.startswith("Data: contribution tables ") and "publishers' terms" in credit
    assert payload["attribution"][0] == credit
    assert any("GeoNames" in line for line in payload["attribution"])
