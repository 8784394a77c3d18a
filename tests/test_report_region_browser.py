"""The report's region page as a person uses it, in headless Chromium (opened from disk,
every non-file request aborted; the launch settings of ``test_report_browser.py``): the
region tab opens, the claims list shows the verdict counts of ``check_claims``, a bound
shows as "> 3,600", charts and the city-by-city heat table draw the API's numbers, a city's
cluster button flies the map to it, and the console stays clean. Screenshots go to
``tests/artifacts/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from stclusters.regions._format import number
from stclusters.regions.claims import check_claims
from stclusters.reports._region import decode_table
from test_report_browser import ARTIFACTS, Opened, chromium
from test_report_region import make_region_report, page_payload


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Path]:
    return make_region_report(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def region(written) -> dict:
    return page_payload(written[1])["region"]


@pytest.fixture(scope="module")
def opened(written, tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-region")) as ctx:
        o = Opened(ctx, written[1])
        o.page.click("button.tab[data-tab='region']")
        o.page.wait_for_selector("section.region-page .region-claims")
        yield o


def test_region_tab_shows_claims_with_the_verdict_counts_of_check_claims(opened, written):
    page = opened.page
    assert page.get_attribute("body", "data-tab") == "region"
    assert page.locator("#tab-clusters").is_hidden() and page.locator("#tab-region").is_visible()
    res = check_claims("gba", run=written[0])
    for verdict, n in res.counts.items():
        assert page.locator(f".claim-counts [data-verdict='{verdict}']").text_content() == \
            f"{n} {verdict}"
    shown = page.eval_on_selector_all("li.claim", "ls => ls.map(l => [l.dataset.id, "
                                                  "l.dataset.verdict])")
    assert shown == [[r["id"], r["verdict"]] for r in res.table.to_pylist()]
    held = page.locator("li.claim[data-id='gii-second-2020-2021']")
    assert held.locator(".verdict").text_content() == "held"
    assert "GII 2020: #2" in held.locator("td.evidence").text_content()
    why = page.locator("li.claim[data-id='prd9-rd-expenditure-2021'] td.why").text_content()
    assert "estimate" in why
    page.screenshot(path=str(ARTIFACTS / "report-region.png"))
    page.locator("#region-claims").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report-region-claims.png"))
    opened.clean()


def test_indicators_show_bounds_flags_sources_and_charts(opened, region):
    page = opened.page
    row = page.locator("section.indicator[data-indicator='rd_expenditure'] "
                       "tr[data-region='PRD-9'][data-year='2021']")
    assert row.locator("td.value").text_content() == "> 3,600"
    assert row.locator("td.flag").text_content() == "estimate"
    # The source address is text, not a link.
    assert row.locator("td.source .url").text_content().startswith("http")
    assert page.evaluate("() => document.querySelectorAll('[href], [src]').length") == 0
    rows = decode_table(region["indicators"])
    cards = page.eval_on_selector_all("section.indicator", "s => s.map(x => x.dataset.indicator)")
    assert sorted(cards) == sorted({r["indicator"] for r in rows})
    # One chart per unit of measure with figures over two years or more: GDP in CNY, HKD, MOP.
    units = page.eval_on_selector_all("section.indicator[data-indicator='gdp'] figure",
                                      "fs => fs.map(f => f.dataset.unit)")
    assert sorted(units) == sorted({r["unit"] for r in rows if r["indicator"] == "gdp"})
    # Every figure of a card reads as `stclusters region` prints it (one rule for both).
    cells = page.eval_on_selector_all(
        "section.indicator[data-indicator='rd_intensity'] td.value, "
        "section.indicator[data-indicator='rd_expenditure'] td.value",
        "ts => ts.map(t => t.textContent)")
    want = [number(r["value"], bound=r["bound"]) for i in ("rd_expenditure", "rd_intensity")
            for r in rows if r["indicator"] == i]
    assert sorted(cells) == sorted(want) and any("." in c for c in cells)
    # A bound is a hollow marker on its chart.
    assert page.locator("section.indicator[data-indicator='rd_expenditure'] circle.bound").count() \
        == sum(1 for r in rows if r["indicator"] == "rd_expenditure" and r["bound"])
    opened.clean()


def test_computed_and_integration_show_the_apis_numbers(opened, region):
    page = opened.page
    computed = decode_table(region["computed"])
    page.select_option("select.computed-indicator", "patent_whole_count")
    whole = [r for r in computed if r["indicator"] == "patent_whole_count"]
    want = next(r for r in whole if r["region"] == "GBA" and r["value"])
    column = sorted({r["year"] for r in whole}).index(want["year"])  # that source's years
    cell = page.locator("table.pivot[data-indicator='patent_whole_count'] "
                        f"tr[data-region='GBA'] td >> nth={column}")
    assert cell.text_content() == f"{int(want['value']):,}"
    matrix = {counting: decode_table(region["integration"]["matrix"][counting])
              for counting in ("whole", "fractional")}
    pick = next(r for r in matrix["whole"] if r["a"] != r["b"] and r["n_docs"] > 0
                and "(other)" not in (r["a"], r["b"]))
    sel = (f"figure.heat[data-source='{pick['source']}'] tr[data-a='{pick['a']}'] "
           f"td[data-b='{pick['b']}']")
    assert page.locator(sel).text_content() == str(pick["n_docs"])
    page.select_option("select.counting", "fractional")
    frac = next(r for r in matrix["fractional"] if (r["source"], r["a"], r["b"]) ==
                (pick["source"], pick["a"], pick["b"]))
    assert page.locator(sel).text_content() == f"{frac['weight']:,.2f}"
    # The shares chart: one line per focal side with the mainland, per source.
    shares = [r for r in decode_table(region["integration"]["shares"])
              if r["counting"] == "fractional" and r["partner"] == "CN"]
    for source in {r["source"] for r in shares}:
        fig = page.locator(f".charts.shares figure[data-source='{source}'][data-partner='CN']")
        names = fig.locator("g.series").evaluate_all("gs => gs.map(g => g.dataset.name)")
        assert names == list(dict.fromkeys(r["focal"] for r in shares if r["source"] == source))
    page.locator("#region-integration").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report-region-integration.png"))
    opened.clean()


def test_a_citys_cluster_button_flies_the_map_to_it(opened, region):
    page = opened.page
    button = page.locator("button.to-cluster").first
    target = button.get_attribute("data-id")
    before = opened.view()
    button.click()
    page.wait_for_function("() => document.body.dataset.tab === 'clusters'")
    page.wait_for_selector(f"path.footprint.selected[data-id='{target}']")
    opened.settle()
    assert opened.view() != before
    assert page.locator("table.ranking tr.selected").get_attribute("data-id") == target
    names = {r["cluster_id"]: r["name"] for r in decode_table(region["city_clusters"])}
    assert page.locator("aside.cluster-panel h3").text_content() == names[target]
    page.screenshot(path=str(ARTIFACTS / "report-region-to-cluster.png"))
    opened.clean()


def test_hash_opens_the_region_tab(opened, written):
    page = opened.page.context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
               else (errors.append(r.request.url), r.abort()))
    page.goto(written[1].as_uri() + "#region")
    page.wait_for_selector("body[data-ready]")
    assert page.get_attribute("body", "data-tab") == "region"
    assert page.locator(".region-claims").is_visible()
    assert errors == []
    page.close()
