"""The report as a person uses it, in headless Chromium (Debian's ``chromium``, driven by
Playwright with ``executable_path``): opened from disk with every non-file request aborted,
the map draws one footprint per ranked cluster, hovering a cluster shows its numbers,
sorting and filtering the table reorder it, selecting a row flies the map to the cluster,
hostile names stay text, and the console stays clean. Screenshots go to
``tests/artifacts/`` (git-ignored)."""

from __future__ import annotations

import contextlib

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from playwright.sync_api import sync_playwright

from stclusters.reports import html as report_html
from test_report import make_report_run

CHROMIUM = "/usr/bin/chromium"
#: Chromium as root in a container: no sandbox, no GPU, nothing phoning home.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_report_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def ranking(run_dir) -> list[dict]:
    return pacsv.read_csv(run_dir / "ranking.csv").to_pylist()


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    return report_html.write_report(run_dir)


@contextlib.contextmanager
def chromium(profile: Path):
    """Debian's Chromium driven by Playwright (never `playwright install`), as root in a
    container: a fresh profile, no sandbox, nothing phoning home, no service workers."""
    assert Path(CHROMIUM).is_file(), (
        f"{CHROMIUM} is missing: the browser tests drive Debian's chromium "
        "(apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport=VIEWPORT, service_workers="block")
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as ctx:
        yield ctx


class Opened:
    """A page opened from disk offline, with what it logged and tried to fetch."""

    def __init__(self, ctx, path: Path) -> None:
        self.page = ctx.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(
            f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready]", timeout=10_000)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def view(self) -> str:
        return self.page.get_attribute("svg.map-svg", "data-view")

    def settle(self) -> None:
        """Wait for a fly-to animation to end."""
        self.page.wait_for_function("() => !document.querySelector('svg.map-svg[data-animating]')")

    def clean(self) -> None:
        assert self.errors == [] and self.requests == [] and self.dialogs == []


@pytest.fixture(scope="module")
def opened(browser, report) -> Opened:
    ARTIFACTS.mkdir(exist_ok=True)
    o = Opened(browser, report)
    o.page.screenshot(path=str(ARTIFACTS / "report-world.png"))
    return o


def _num(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text.replace("\u2212", "-")))


def _rows(page) -> list[str]:
    return page.eval_on_selector_all("table.ranking tbody tr", "rs => rs.map(r => r.dataset.id)")


def test_map_draws_one_footprint_per_ranked_cluster(opened, ranking):
    page = opened.page
    assert page.locator("svg.map-svg path.footprint").count() == len(ranking)
    assert page.locator("svg.map-svg circle.marker").count() == len(ranking)
    ids = set(page.eval_on_selector_all("path.footprint", "ps => ps.map(p => p.dataset.id)"))
    assert ids == {r["cluster_id"] for r in ranking}
    # Every footprint has a drawn outline (a path with at least three vertices).
    empty = page.eval_on_selector_all(
        "path.footprint", "ps => ps.filter(p => (p.getAttribute('d').match(/L/g) || []).length "
                          "< 2).length")
    assert empty == 0
    banner = page.locator(".banner.synthetic")
    assert banner.is_visible() and banner.text_content().startswith("SYNTHETIC")
    assert "GeoNames" in page.locator("footer.credits").text_content()
    assert "Natural Earth" in page.locator("footer.credits").text_content()


def test_sorting_and_filtering_reorder_the_table(opened, ranking):
    page = opened.page
    by_rank = [r["cluster_id"] for r in ranking]
    assert _rows(page) == by_rank
    page.click("th[data-key='publication_weight']")  # numbers: largest first
    want = [r["cluster_id"] for r in sorted(ranking, key=lambda r: (-r["publication_weight"],
                                                                    r["rank"]))]
    assert _rows(page) == want != by_rank
    assert page.get_attribute("th[data-key='publication_weight']", "aria-sort") == "descending"
    page.click("th[data-key='publication_weight']")  # again: smallest first (ties by rank)
    assert _rows(page) == [r["cluster_id"] for r in sorted(
        ranking, key=lambda r: (r["publication_weight"], r["rank"]))]
    page.click("th[data-key='name']")
    names = page.eval_on_selector_all("table.ranking tbody td[data-key='name']",
                                      "ts => ts.map(t => t.textContent)")
    collated = page.evaluate("ns => [...ns].sort((a, b) => a.localeCompare(b))", names)
    assert names == collated and names != [r["name"] for r in ranking]
    assert sorted(names) == sorted(r["name"] for r in ranking)
    economy = ranking[0]["economy"]
    page.select_option("select.filter-economy", economy)
    assert set(_rows(page)) == {r["cluster_id"] for r in ranking if r["economy"] == economy}
    page.select_option("select.filter-economy", "")
    needle = ranking[1]["name"][:4]
    page.fill("input.filter-name", needle)
    assert set(_rows(page)) == {r["cluster_id"] for r in ranking
                                if needle.lower() in r["name"].lower()}
    page.fill("input.filter-name", "")
    page.click("th[data-key='rank']")
    assert _rows(page) == by_rank
    opened.clean()


def test_selecting_a_row_flies_to_the_cluster_and_hover_shows_its_numbers(opened, ranking):
    page = opened.page
    before = opened.view()
    target = ranking[2]
    page.click(f"table.ranking tbody tr[data-id='{target['cluster_id']}']")
    opened.settle()
    after = opened.view()
    assert after != before and float(after.split(",")[0]) > 4 * float(before.split(",")[0])
    assert page.get_attribute(f"path.footprint[data-id='{target['cluster_id']}']",
                              "class") == "footprint selected"
    assert page.locator("aside.cluster-panel h3").text_content() == target["name"]
    assert page.locator("table.ranking tr.selected").get_attribute("data-id") == \
        target["cluster_id"]
    page.screenshot(path=str(ARTIFACTS / "report-selected.png"))

    # The cluster's centre is now mid-map; hover it as a person would.
    x, y = page.evaluate("([lon, lat]) => window.stclustersReport.map.screenOf(lon, lat)",
                         [target["lon"], target["lat"]])
    box = page.locator(".map").bounding_box()
    assert abs(x - (box["x"] + box["width"] / 2)) < box["width"] / 4
    page.mouse.move(x, y)
    tip = page.locator(".tooltip")
    tip.wait_for(state="visible")
    assert tip.get_attribute("data-id") == target["cluster_id"]
    assert tip.locator(".card-title").text_content() == target["name"]
    cells = dict(zip(tip.locator("tr").evaluate_all("rs => rs.map(r => r.dataset.k)"),
                     tip.locator("td").all_text_contents()))
    assert cells["rank"] == str(target["rank"]) and cells["economy"] == target["economy"]
    for key in ("patent_weight", "publication_weight", "patent_share_pct",
                "publication_share_pct", "score_pct", "patent_per_million_pop"):
        assert _num(cells[key]) == pytest.approx(target[key], abs=0.0051), key
    assert _num(cells["population"]) == target["population"]
    page.screenshot(path=str(ARTIFACTS / "report-tooltip.png"))

    # Zoom controls change the view; the reset button returns to the whole world.
    page.click("button.zoom-out")
    page.wait_for_function(
        f"() => document.querySelector('svg.map-svg').dataset.view !== '{after}'")
    page.click("button.zoom-reset")
    opened.settle()
    assert opened.view() == before
    opened.clean()


def test_hover_on_the_world_map_and_wheel_zoom(opened, ranking):
    page = opened.page
    first = ranking[0]
    x, y = page.evaluate("([lon, lat]) => window.stclustersReport.map.screenOf(lon, lat)",
                         [first["lon"], first["lat"]])
    page.mouse.move(x, y)
    page.wait_for_function(f"() => document.querySelector('.tooltip').dataset.id === "
                           f"'{first['cluster_id']}'")
    before = opened.view()
    page.mouse.wheel(0, -600)
    page.wait_for_function(
        f"() => document.querySelector('svg.map-svg').dataset.view !== '{before}'")
    k0, k1 = float(before.split(",")[0]), float(opened.view().split(",")[0])
    assert k1 > k0
    # Zooming about the cursor keeps the point under it in place.
    x2, y2 = page.evaluate("([lon, lat]) => window.stclustersReport.map.screenOf(lon, lat)",
                           [first["lon"], first["lat"]])
    assert abs(x2 - x) < 1.5 and abs(y2 - y) < 1.5
    page.mouse.move(x2 + 1000, y2 + 1000)
    page.click("button.zoom-reset")
    opened.settle()
    opened.clean()


def test_hostile_names_stay_text(browser, run_dir, tmp_path):
    payload = report_html.build_payload(run_dir, top_n=3)
    evil = "<img src=x onerror=alert(1)></script><script>alert(2)</script>\u2028"
    payload["clusters"][0]["name"] = evil
    payload["label"] = "<b>SYNTHETIC</b>"
    path = tmp_path / "evil.html"
    path.write_text(report_html.render_html(payload), encoding="utf-8")
    o = Opened(browser, path)
    page = o.page
    assert page.locator("table.ranking td[data-key='name']").first.text_content() == evil
    assert page.locator(".banner").text_content() == "<b>SYNTHETIC</b>"
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    o.clean()
    # The page's Content-Security-Policy is in force: a script it does not name never runs.
    try:
        page.add_script_tag(content="window.injected = 1")
    except Exception:  # noqa: BLE001 - Playwright reports the refused tag as an error
        pass
    assert page.evaluate("() => window.injected") is None
    assert any("Content Security Policy" in e for e in o.errors)
    page.close()


def test_edition_shows_previous_rank_and_move(browser, run_dir, tmp_path):
    payload = report_html.build_payload(run_dir, top_n=4)
    for c, (prev, move, status) in zip(payload["clusters"], [
            (3, 2, "continued"), (1, -1, "continued"), (None, None, "new"), (9, 5, "split")]):
        c["prev_rank"], c["move"], c["status"] = prev, move, status
    path = tmp_path / "edition.html"
    path.write_text(report_html.render_html(payload), encoding="utf-8")
    o = Opened(browser, path)
    page = o.page
    moves = page.eval_on_selector_all("table.ranking td[data-key='move']",
                                      "ts => ts.map(t => t.textContent)")
    assert moves == ["+2", "\u22121", "–", "+5"]
    page.click("th[data-key='move']")  # largest rise first, no move last
    assert _rows(page) == [payload["clusters"][i]["cluster_id"] for i in (3, 0, 1, 2)]
    page.click("table.ranking tbody tr[data-id='%s']" % payload["clusters"][0]["cluster_id"])
    o.settle()
    first = payload["clusters"][0]
    x, y = page.evaluate("([lon, lat]) => window.stclustersReport.map.screenOf(lon, lat)",
                         [first["lon"], first["lat"]])
    page.mouse.move(x, y)
    tip = page.locator(".tooltip")
    tip.wait_for(state="visible")
    cells = dict(zip(tip.locator("tr").evaluate_all("rs => rs.map(r => r.dataset.k)"),
                     tip.locator("td").all_text_contents()))
    assert (cells["prev_rank"], cells["move"]) == ("3", "+2")
    o.clean()
    page.close()


def test_a_run_without_clusters_says_why(browser, run_dir, tmp_path):
    payload = report_html.build_payload(run_dir, top_n=1)
    payload["clusters"], payload["details"] = [], {}
    payload["points"] = {"scale": 1000, "xy": [], "shown": 0, "total": 0}
    payload["manifest"] = {**payload["manifest"], "outcome": {
        "status": "no_cluster", "message": "no cluster found: no point reached min_weight"}}
    path = tmp_path / "empty.html"
    path.write_text(report_html.render_html(payload), encoding="utf-8")
    o = Opened(browser, path)
    assert o.page.locator("path.footprint").count() == 0
    assert o.page.locator("p.notice").text_content() == payload["manifest"]["outcome"]["message"]
    assert o.page.locator(".row-count").text_content() == "0 of 0 clusters"
    o.clean()
    o.page.close()


@pytest.mark.parametrize("weights", [{"patent": 3.0, "publication": 1.0},
                                     {"patent": 0.0, "publication": 1.0}])
def test_footprint_colours_follow_the_figures_rule(browser, run_dir, ranking, tmp_path, weights):
    """The report colours each footprint by the figures' dominant metric (weight × share, a
    weight-0 metric never dominates) in the figures' Okabe–Ito palette."""
    from stclusters.reports import figures  # noqa: PLC0415

    payload = report_html.build_payload(run_dir)
    payload["score_weights"] = weights
    path = tmp_path / "weights.html"
    path.write_text(report_html.render_html(payload), encoding="utf-8")
    o = Opened(browser, path)
    fills = dict(o.page.eval_on_selector_all(
        "path.footprint", "ps => ps.map(p => [p.dataset.id, p.getAttribute('fill')])"))
    data = figures.RunFigureData(clusters=ranking, metrics=tuple(payload["metrics"]),
                                 score_weights=weights, footprints={}, eps_km=None,
                                 data_label=None, manifest={}, run_name="")
    expected = {r["cluster_id"]: figures.METRIC_COLOURS[data.dominant(r)] for r in ranking}
    assert fills == expected
    if weights["patent"] == 0:
        assert set(fills.values()) == {figures.METRIC_COLOURS[1]}
    else:
        assert len(set(fills.values())) == 2  # the weights change the winner of some
    o.clean()
    o.page.close()


def test_a_cluster_on_the_antimeridian_is_flown_to(browser, tmp_path):
    """Fiji's points straddle ±180°: selecting the cluster zooms in on it (its box is taken
    around its centre, unwrapped), not out to a box spanning the world."""
    import stclusters

    rows = [(f"f{i}", -17.0 + 0.01 * (i % 5), 179.98 if i % 2 else -179.98) for i in range(12)]
    table = pa.table({"doc_id": [r[0] for r in rows], "source": ["patent"] * len(rows),
                      "year": [2020] * len(rows), "lat": [r[1] for r in rows],
                      "lon": [r[2] for r in rows], "country": ["FJ"] * len(rows)})
    pacsv.write_csv(table, tmp_path / "fiji.csv")
    params = stclusters.RankParams().with_source("patent", min_weight=1.0)
    run = tmp_path / "fiji"
    stclusters.rank([tmp_path / "fiji.csv"], params=params).write(run)
    opened = Opened(browser, report_html.write_report(run))
    before = float(opened.view().split(",")[0])
    opened.page.click("table.ranking tbody tr")
    opened.settle()
    assert float(opened.view().split(",")[0]) > 20 * before
    opened.clean()
    opened.page.close()
