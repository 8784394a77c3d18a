"""The explorer as a person uses it, in headless Chromium (Debian's ``chromium`` driven by
Playwright, the flags of ``test_report_browser``): open the served page, move the radius
slider with the mouse and a threshold slider with the keyboard, and the cluster count and the
map follow what the engine gives for those parameters; the console stays clean. Screenshots
go to ``tests/artifacts/`` (git-ignored)."""

from __future__ import annotations

import re

import pytest

import stclusters
from stclusters import synthetic
from stclusters.serve.app import start_server
from test_report_browser import ARTIFACTS, chromium
from test_serve import TOP_N, make_serve_run

STATUS = re.compile(r"^re-clustered in [\d,]+ ms: (\d+) merged, (\d+) split, (\d+) entered, "
                    rf"(\d+) left the top {TOP_N}$")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    world, run = make_serve_run(tmp_path_factory.getbasetemp())
    server = start_server(run)
    try:
        yield server, world, run
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def page(served, tmp_path_factory):
    server, _, _ = served
    with chromium(tmp_path_factory.mktemp("chromium-explorer")) as ctx:
        pg = ctx.new_page()
        pg.errors, pg.foreign = [], []
        pg.on("console", lambda m: m.type in ("error", "warning") and pg.errors.append(m.text))
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        origin = f"http://127.0.0.1:{server.port}/"
        # Only the explorer's own server may be reached.
        pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith(origin) else (
            pg.foreign.append(r.request.url), r.abort()))
        pg.goto(server.url)
        pg.wait_for_selector("body[data-ready]", timeout=15_000)
        yield pg


def _engine_count(located, server, query: dict[str, str]) -> int:
    """The engine's cluster count under exactly the parameters the page sent."""
    res = located.rank(server.explorer.params_for(query), label=synthetic.SYNTHETIC_LABEL)
    return int(res.con.execute("SELECT count(*) FROM clusters").fetchone()[0])


def _settled(page, seq: int) -> None:
    page.wait_for_function(f"() => Number(document.body.dataset.seq || 0) >= {seq} && "
                           "!document.body.hasAttribute('data-busy')", timeout=20_000)


def test_moving_sliders_reclusters_as_the_engine_does(served, page):
    server, world, _ = served
    ARTIFACTS.mkdir(exist_ok=True)
    ex = server.explorer
    count = page.locator(".cluster-count")
    assert int(count.get_attribute("data-n")) == ex.side.clusters.num_rows
    assert page.locator("path.footprint").count() == TOP_N
    assert page.locator(".banner.synthetic").text_content().startswith("SYNTHETIC")
    page.screenshot(path=str(ARTIFACTS / "serve-start.png"))

    # The patent radius: a click on the slider's track, as a person would. Only it is sent:
    # the publication radius stays the run's own.
    eps = page.locator("input[data-key='eps_km_patent']")
    box = eps.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    _settled(page, 1)
    eps_km = eps.input_value()
    assert float(eps_km) > ex.sliders()["eps_km"]["patent"]["value"]
    assert page.evaluate("() => window.stclustersExplorer.lastQuery") == {"eps_km_patent": eps_km}
    located = stclusters.read([world])
    want = _engine_count(located, server, {"eps_km_patent": eps_km})
    assert int(count.get_attribute("data-n")) == want != ex.side.clusters.num_rows
    assert count.text_content().startswith(f"{want:,} clusters found")
    assert page.locator("path.footprint").count() == min(TOP_N, want)
    status = page.locator(".status").text_content()
    assert STATUS.match(status), status
    page.screenshot(path=str(ARTIFACTS / "serve-eps.png"))

    # A core threshold: twenty key presses in a row; only the last setting is shown.
    mw = page.locator("input[data-key='min_weight_patent']")
    mw.focus()
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    seq = page.evaluate("() => Number(document.body.dataset.seq)")
    _settled(page, seq + 1)
    threshold = mw.evaluate("i => i.nextElementSibling.textContent")
    sent = page.evaluate("() => window.stclustersExplorer.timings.at(-1)")
    assert sent["seq"] == int(page.evaluate("() => document.body.dataset.seq"))
    values = page.evaluate("() => window.stclustersExplorer.lastQuery")
    assert set(values) == {"eps_km_patent", "min_weight_patent"}
    assert values["eps_km_patent"] == eps_km and float(values["min_weight_patent"]) < \
        ex.sliders()["min_weight"]["patent"]["value"]
    assert threshold.replace(",", "") == f"{float(values['min_weight_patent']):.2f}"
    want2 = _engine_count(located, server, values)  # in full: what the page sent
    assert int(count.get_attribute("data-n")) == want2 != want
    # The table follows the map: one row per footprint, rank order.
    ranks = page.eval_on_selector_all("table.ranking tbody td[data-key='rank']",
                                      "ts => ts.map(t => Number(t.textContent))")
    assert ranks == list(range(1, min(TOP_N, want2) + 1))
    page.screenshot(path=str(ARTIFACTS / "serve-threshold.png"))

    # Back to the run's setting: no parameter sent, the run's count and ranking exactly.
    seq = page.evaluate("() => Number(document.body.dataset.seq)")
    page.locator("button.reset").click()
    _settled(page, seq + 1)
    assert page.evaluate("() => window.stclustersExplorer.lastQuery") == {}
    assert int(count.get_attribute("data-n")) == ex.side.clusters.num_rows
    status = STATUS.match(page.locator(".status").text_content())
    assert status and status.groups() == ("0", "0", "0", "0")
    assert eps.input_value() == str(ex.sliders()["eps_km"]["patent"]["value"]).removesuffix(".0")
    assert 0 in page.evaluate("() => window.stclustersExplorer.clusters().map(c => c.dominant)")

    # A patent weight of 0: publication dominates every cluster (the weights in force).
    seq = page.evaluate("() => Number(document.body.dataset.seq)")
    page.locator("input[data-key='weight_patent']").focus()
    page.keyboard.press("Home")
    _settled(page, seq + 1)
    assert page.evaluate("() => window.stclustersExplorer.lastQuery") == {"weight_patent": "0"}
    assert set(page.evaluate(
        "() => window.stclustersExplorer.clusters().map(c => c.dominant)")) == {1}

    # A threshold moved and brought back sends the run's exact threshold, not its rounding.
    seq = page.evaluate("() => Number(document.body.dataset.seq)")
    page.locator("input[data-key='min_weight_publication']").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    _settled(page, seq + 1)
    sent = page.evaluate("() => window.stclustersExplorer.lastQuery")
    assert float(sent["min_weight_publication"]) == \
        ex.sliders()["min_weight"]["publication"]["value"]
    assert page.errors == [] and page.foreign == []
