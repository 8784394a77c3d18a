"""The command line: help with examples, user tables through `rank`, errors as one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stclusters.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["demo", "rank", "version"])
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def _csv(path, rows):
    header = "doc_id,source,year,contributor_seq,lat,lon,country,city\n"
    path.write_text(header + "".join(",".join(map(str, r)) + "\n" for r in rows))


def test_rank_on_a_located_table_with_bad_rows(tmp_path):
    rows = []
    # Shenzhen with Hong Kong co-inventors (40 documents) and Paris (20), both sources.
    for i in range(40):
        for src in ("patent", "publication"):
            rows.append((f"{src[0]}{i}", src, 2020, 0, 22.54 + i * 1e-4, 114.06, "CN", "Shenzhen"))
            # Sheung Shui, HK: ~9 km from the Shenzhen points, across the border.
            rows.append((f"{src[0]}{i}", src, 2020, 1, 22.50, 114.13 + i * 1e-4, "HK", "Sheung Shui"))
            if i < 20:
                rows.append((f"{src[0]}x{i}", src, 2021, 0, 48.85, 2.35 + i * 1e-4, "FR", "Paris"))
    rows.append(("bad1", "patent", 2020, 0, 95.0, 10.0, "DE", "Nowhere"))     # lat out of range
    rows.append(("bad2", "patent", 2020, 0, 50.0, 10.0, "XX", "Nowhere"))     # unknown country
    rows.append(("bad3", "patent", "soon", 0, 50.0, 10.0, "DE", "Nowhere"))   # bad year
    _csv(tmp_path / "contribs.csv", rows)
    out = tmp_path / "out"
    result = runner.invoke(app, ["rank", str(tmp_path / "contribs.csv"), "--out", str(out),
                                 "--min-weight-patent", "5", "--min-weight-publication", "5"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    rec = manifest["accounting"]["patent"]["records"]
    assert rec["unit"] == "row"
    # The country reason's wording belongs to the table reader; its count is what matters here.
    country = [k for k in rec["rejected"] if k.startswith("country not")]
    assert len(country) == 1 and rec["rejected"] == {
        country[0]: 1, "lat outside [-90, 90]": 1, "year not an integer": 1}
    assert rec["read"] == 100 + 3 == rec["used"] + sum(rec["filtered"].values()) + 3
    quarantine = (out / "quarantine.csv").read_text()
    assert "contribs.csv" in quarantine and "row 201" in quarantine  # the first bad row
    ranking = (out / "ranking.csv").read_text().splitlines()
    assert len(ranking) == 3, ranking  # one cross-border cluster and Paris
    top = dict(zip(ranking[0].replace('"', "").split(","), ranking[1].replace('"', "").split(",")))
    assert top["economy"] in ("CN/HK", "HK/CN") and "Shenzhen" in top["name"], top
    assert float(top["patent_share_pct"]) == pytest.approx(200 / 3)


def test_bad_parameter_is_one_line_exit_2(tmp_path):
    _csv(tmp_path / "c.csv", [("d", "patent", 2020, 0, 1.0, 1.0, "DE", "x")])
    result = runner.invoke(app, ["rank", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"),
                                 "--eps-km", "-3", "--patent-years", "2023-2019"])
    assert result.exit_code == 2
    assert "eps_km" in result.output and "first_year" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_accounting_says_documents_and_rows_apart(tmp_path):
    """Issue 7: "patent: read 468 rows" added XML documents to table rows. A source read from
    both gets one balance per unit, in the manifest and in the command's lines."""
    from conftest import SHARED_DATA

    xml = SHARED_DATA / "samples" / "uspto" / "uspto_ipg050104.small.xml.gz"
    _csv(tmp_path / "rows.csv", [(f"t{i}", "patent", 2020, 0, 48.85, 2.35, "FR", "Paris")
                                 for i in range(5)])
    out = tmp_path / "out"
    result = runner.invoke(app, ["rank", str(xml), str(tmp_path / "rows.csv"), "--out", str(out),
                                 "--patent-years", "all", "--min-weight-patent", "2"])
    assert result.exit_code in (0, 4), result.output
    rec = json.loads((out / "manifest.json").read_text())["accounting"]["patent"]["records"]
    docs, rows = rec["by_unit"]["document"], rec["by_unit"]["row"]
    assert (docs["read"], rows["read"]) == (25, 5)
    assert rec["unit"] == "record" and rec["read"] == 30
    for u in (docs, rows):
        assert u["read"] == u["used"] + sum(u["filtered"].values()) + sum(u["rejected"].values())
    assert "patent documents: read 25 documents = used" in result.output
    assert "patent table rows: read 5 rows = used 5 " in result.output
    assert "read 30" not in result.output


@pytest.mark.parametrize("text", ["[/]", "[link=file:///etc/passwd]x[/link]", "[bold]x"])
def test_ranking_text_is_printed_as_text_not_markup(tmp_path, text):
    """Issue 7 (found attacking): a name or economy holding rich markup crashed the printout
    ("[/]": MarkupError, after the outputs were written) or was run as markup (links)."""
    import pyarrow as pa

    from stclusters import cli

    table = pa.table({"rank": [1], "name": [text], "economy": [text]})
    with cli.console.capture() as captured:
        cli.print_ranking(table, title="t")
    assert text in captured.get()
