"""The report's region page (``stclusters report RUN_DIR --region GBA``): its payload equals
the regions API's tables (indicators with sources, flags and bounds; the counts computed from
the run; each city's cluster; integration shares and matrices; the claims' verdicts), the
page stays offline, the same inputs give the same bytes, users' indicator files reach both
the figures and the claims, and the command line. The browser checks are in
``test_report_region_browser.py`` (they share the page written here)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from stclusters._run_folder import open_run
from stclusters.cli import app
from stclusters.regions import load_region
from stclusters.regions.claims import check_claims
from stclusters.regions.indicators import (city_clusters, computed_indicators,
                                           read_indicators, rows_of_region)
from stclusters.regions.integration import collaboration_matrix, integration_shares
from stclusters.reports import html as report_html
from stclusters.reports._region import decode_table, table_payload
from test_report import NAMESPACES, make_report_run

#: A user's yearbook row: the final PRD-9 R&D expenditure of 2021 (made up for the test, as
#: a user would add it), which replaces the shipped estimate and decides the claim.
USER_CSV = (
    "region,year,indicator,value,unit,flag,source_publisher,source_title,source_url,note\n"
    "PRD-9,2021,rd_expenditure,3712.5,CNY 100 million (亿元),official final,"
    "Test Yearbook Office,Test yearbook 2022,,final figure for the test\n")


def make_region_report(base: Path) -> tuple[Path, Path]:
    """``(run folder, report.html with the GBA region page)``, written once per session by
    the command line and shared with the browser tests."""
    run = make_report_run(base)
    page = base / "region_report" / "report.html"
    if not page.is_file():
        page.parent.mkdir(exist_ok=True)
        res = CliRunner().invoke(app, ["report", str(run), "--region", "GBA",
                                       "--out", str(page)])
        assert res.exit_code == 0, res.output
        assert f"wrote {page}" in res.output.replace("\n", "")
    return run, page


def page_payload(page: Path) -> dict:
    """The JSON payload of a written page (as the page's script reads it)."""
    text = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="stc-data">(.*?)</script>', text).group(1))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Path]:
    return make_region_report(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def run(written) -> Path:
    return written[0]


@pytest.fixture(scope="module")
def region(written) -> dict:
    return page_payload(written[1])["region"]


@pytest.fixture(scope="module")
def gba():
    return load_region("GBA")


@pytest.fixture(scope="module")
def api(run, gba) -> dict[str, pa.Table]:
    """The regions API's own tables for the run, computed here independently of the page."""
    con, _, _ = open_run(run, need=("contributions", "points", "clusters", "ranking"))
    try:
        out = {"computed": computed_indicators(con, gba, origin=f"computed from run {run.name}"),
               "city_clusters": city_clusters(con, gba, placed=True),
               "shares": integration_shares(con, gba),
               "whole": collaboration_matrix(con, gba, counting="whole"),
               "fractional": collaboration_matrix(con, gba, counting="fractional")}
    finally:
        con.close()
    out["claims"] = check_claims("gba", run=run)
    return out


def _same(rows: list[dict], table: pa.Table) -> None:
    """Decoded payload rows equal the table's rows (floats to the payload's 6 decimals)."""
    want = table.to_pylist()
    assert len(rows) == len(want) > 0
    for got, exp in zip(rows, want):
        assert got.keys() == exp.keys()
        for key, value in exp.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=1e-6), key
            else:
                assert got[key] == value, key


def test_table_encoding_round_trips():
    table = pa.table({"a": ["x", None, "x", "y"], "n": [1.23456789, float("nan"), None, 2.0],
                      "k": [1, 2, 3, None]})
    enc = table_payload(table)
    assert enc["dict"] == {"a": ["x", "y"]} and enc["rows"][0] == [0, 1.234568, 1]
    assert decode_table(enc) == [{"a": "x", "n": 1.234568, "k": 1},
                                 {"a": None, "n": None, "k": 2},
                                 {"a": "x", "n": None, "k": 3}, {"a": "y", "n": 2.0, "k": None}]


def test_indicators_are_the_regions_table_with_sources_flags_and_bounds(region, gba):
    rows = decode_table(region["indicators"])
    _same(rows, rows_of_region(read_indicators(), gba))
    bound = [r for r in rows if (r["region"], r["year"], r["indicator"]) ==
             ("PRD-9", 2021, "rd_expenditure")]
    assert [(r["value"], r["bound"], r["flag"]) for r in bound] == [(3600.0, ">", "estimate")]
    assert bound[0]["source_url"].startswith("http") and bound[0]["source_publisher"]
    assert {r["flag"] for r in rows} >= {"official final", "estimate", "secondary-source"}
    assert region["publishers"] == sorted({r["source_publisher"] for r in rows})
    assert [m for m, _ in region["members"]] == list(gba.member_names)
    assert region["groups"] == [["PRD-9", list(gba.groups["PRD-9"])],
                                ["HK-MO", ["Hong Kong", "Macao"]]]


def test_computed_indicators_and_city_clusters_are_the_apis(region, api):
    _same(decode_table(region["computed"]), api["computed"])
    cities = decode_table(region["city_clusters"])
    _same(cities, api["city_clusters"])
    # The synthetic world has Shenzhen and Hong Kong records in one cross-border cluster.
    by = {(r["member"], r["source"]): r for r in cities}
    assert by[("Shenzhen", "patent")]["cluster_id"] == by[("Hong Kong", "patent")]["cluster_id"]


def test_integration_is_the_apis(region, api):
    integ = region["integration"]
    shares = decode_table(integ["shares"])
    _same(shares, api["shares"])
    assert integ["note"] is None
    assert {r["partner"] for r in shares} >= {"CN", "PRD-9", "HK-MO"}
    for counting in ("whole", "fractional"):
        _same(decode_table(integ["matrix"][counting]), api[counting])
    # Some Hong Kong document was made with the mainland (the chart is not all zeros).
    assert any(r["focal"] == "Hong Kong" and r["partner"] == "CN" and r["share_pct"] > 0
               for r in shares)
    assert set(integ["rules"]) == {"shares", "whole", "fractional"}


def test_claims_are_check_claims(region, api):
    claims = region["claims"]
    res = api["claims"]
    assert claims["counts"] == res.counts and sum(res.counts.values()) == res.table.num_rows
    _same(decode_table(claims["table"]), res.table)
    assert claims["file"] == "gba" and claims["editions"] is None
    verdicts = {r["id"]: r["verdict"] for r in decode_table(claims["table"])}
    assert verdicts["gii-second-2020-2021"] == "held"
    assert verdicts["prd9-rd-expenditure-2021"] == "not enough data"


def test_page_is_offline_and_credits_its_sources(written, region):
    text = written[1].read_text(encoding="utf-8")
    assert not re.search(r"\b(?:src|href)\s*=", text)
    assert "@import" not in text and "url(" not in text
    assert "default-src 'none'" in html.unescape(text[:2000])
    # Every address on the page is data shown as text: a source of an indicator figure or of a
    # claim, inside the JSON payload; none is in the markup or the script.
    data = re.search(r'id="stc-data">(.*?)</script>', text).group(1)
    rest = text.replace(data, "")
    assert set(re.findall(r"https?://[^\s\"'<>)\\]*", rest)) <= NAMESPACES
    texts = " ".join(v for t in (region["indicators"], region["claims"]["table"])
                     for values in t["dict"].values() for v in values)
    for url in re.findall(r"https?://[^\s\"'<>)\\|]*", data):
        assert url in texts, url  # a source address or a note's words, shown as text
    attribution = " ".join(page_payload(written[1])["attribution"])
    for office in ("Statistics Bureau of Guangdong Province",
                   "Census and Statistics Department, Hong Kong SAR",
                   "Statistics and Census Service, Macao SAR", "GeoNames",
                   "Global Innovation Index", "Natural Earth"):
        assert office in attribution, office
    assert any("GeoNames" in c for c in region["credits"])


def test_same_inputs_same_bytes(written, run):
    """The page written by the command equals one rendered from a payload built again."""
    again = report_html.render_html(report_html.build_payload(run, region="GBA"))
    assert again == written[1].read_text(encoding="utf-8")


def test_a_group_and_a_users_indicator_file(run, tmp_path):
    """PRD-9 has no member outside the mainland (no integration shares, said why); a user's
    final figure replaces the shipped estimate in the table and decides the claim."""
    csv = tmp_path / "yearbook.csv"
    csv.write_text(USER_CSV, encoding="utf-8")
    payload = report_html.build_payload(run, top_n=3, region="PRD-9", indicators=[csv])
    region = payload["region"]
    assert region["id"] == "PRD-9" and region["groups"] == []
    assert region["integration"]["shares"] is None
    assert "no default sides" in region["integration"]["note"]
    assert decode_table(region["integration"]["matrix"]["whole"])  # the city matrix is there
    rows = decode_table(region["indicators"])
    assert "Hong Kong" not in {r["region"] for r in rows}
    mine = [r for r in rows if (r["region"], r["year"], r["indicator"]) ==
            ("PRD-9", 2021, "rd_expenditure")]
    assert [(r["value"], r["bound"], r["flag"]) for r in mine] == [(3712.5, None,
                                                                     "official final")]
    assert "[replaces gba_innovation_indicators.csv" in mine[0]["note"]
    res = check_claims("gba", indicators=[csv], run=run)
    assert region["claims"]["counts"] == res.counts
    verdicts = {r["id"]: r for r in decode_table(region["claims"]["table"])}
    assert verdicts["prd9-rd-expenditure-2021"]["verdict"] == "held"
    assert "Test Yearbook Office" in verdicts["prd9-rd-expenditure-2021"]["evidence"]
    assert "Test Yearbook Office" in region["publishers"]
    # Without a region there is no region page.
    assert report_html.build_payload(run, top_n=1)["region"] is None


def test_cli_errors(run, tmp_path):
    runner = CliRunner()
    for args, message in (
            (["--claims", "gba"], "--claims and --indicators go with --region"),
            (["--region", "Atlantis"], "unknown region 'Atlantis'"),
            (["--region", "GBA", "--claims", str(tmp_path / "none.yaml")], "no such claim file"),
    ):
        res = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html"), *args])
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text(USER_CSV.replace("3712.5", "about 3700"), encoding="utf-8")
    res = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html"),
                              "--region", "GBA", "--indicators", str(bad)])
    assert res.exit_code == 2 and "bad.csv" in res.output and "line 2" in res.output
    assert not (tmp_path / "r.html").exists()
