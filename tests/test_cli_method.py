"""The command line exposes the whole method (issue 6): every RankParams field has an
option, values are checked all at once, help shows ranges and defaults, and a run that uses
nothing or finds no cluster says so and exits with its own code."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import typing

import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

import stclusters
from stclusters import cli
from stclusters.cli import app
from stclusters.cli_options import params_from_options, parse_years, rank_options
from stclusters.errors import ParameterError
from stclusters.params import RankParams, SourceParams
from conftest import SHARED_DATA

runner = CliRunner()

OPENALEX_SAMPLE = SHARED_DATA / "samples" / "openalex" / "openalex_works_tu9_sample_410.json.gz"


def _csv(path, rows, header="doc_id,source,year,lat,lon,country,city,doc_type"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _two_cities(path, *, n_paris=12, n_shenzhen=6, year=2020):
    """Paris (bigger) and Shenzhen, both sources; Paris ranks first."""
    rows = []
    for src in ("patent", "publication"):
        rows += [(f"{src}p{i}", src, year, 48.85, 2.35 + i * 1e-4, "FR", "Paris", "")
                 for i in range(n_paris)]
        rows += [(f"{src}s{i}", src, year, 22.54, 114.06 + i * 1e-4, "CN", "Shenzhen", "")
                 for i in range(n_shenzhen)]
    return _csv(path, rows)


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


# ------------------------------------------------------------------ every field has an option

def test_every_rankparams_field_has_an_option():
    flags = {o.flag for o in rank_options()}
    for f in dataclasses.fields(RankParams):
        if f.name == "sources":
            continue
        if f.name == "source_weights":
            assert {f"--weight-{s}" for s in RankParams().source_weights} <= flags
            continue
        assert "--" + f.name.replace("_", "-") in flags, f.name
    for s in RankParams().sources:
        for f in dataclasses.fields(SourceParams):
            if f.name in ("first_year", "last_year"):
                assert f"--{s}-years" in flags
            elif f.name == "doc_types":
                assert f"--{s}-types" in flags
            else:
                flag = "--" + f.name.replace("_", "-")
                assert {flag, f"{flag}-{s}"} <= flags, f.name
    text = _help("rank", "--help")
    for flag in flags:
        assert flag in text, flag
    # A field with a closed set of values (Literal) offers exactly those.
    hints = typing.get_type_hints(RankParams)
    for opt in rank_options():
        if opt.target[0] == "run" and typing.get_origin(hints[opt.target[1]]) is typing.Literal:
            assert opt.choices == typing.get_args(hints[opt.target[1]]), opt.flag


def test_options_reach_the_parameters(tmp_path):
    table = _two_cities(tmp_path / "t.csv")
    out = tmp_path / "out"
    result = runner.invoke(app, [
        "rank", str(table), "--out", str(out), "--eps-km", "10", "--eps-km-patent", "5",
        "--min-weight", "2", "--min-weight-publication", "3", "--patent-types", "all",
        "--publication-types", "article, preprint", "--years", "2019-2021",
        "--patent-years", "2020-", "--min-precision", "admin1", "--merge-eps-km", "20",
        "--weight-patent", "2", "--weight-publication", "0.5", "--economy-min-share-pct", "10",
        "--name-max-places", "2", "--name-min-share-pct", "20", "--name-min-population", "5000",
        "--top-n", "7", "--counting", "all", "--min-weight-share-pct-patent", "1"])
    assert result.exit_code == 0, result.output
    p = json.loads((out / "manifest.json").read_text())["parameters"]
    assert p["sources"]["patent"] == {"eps_km": 5.0, "min_weight": 2.0, "min_weight_share_pct": 1.0,
                                      "first_year": 2020, "last_year": None, "doc_types": None}
    assert p["sources"]["publication"] == {
        "eps_km": 10.0, "min_weight": 3.0, "min_weight_share_pct": 0.02, "first_year": 2019,
        "last_year": 2021, "doc_types": ["article", "preprint"]}
    assert (p["min_precision"], p["merge_eps_km"], p["counting"], p["top_n"]) == ("admin1", 20.0, "all", 7)
    assert p["source_weights"] == {"patent": 2.0, "publication": 0.5}
    assert (p["economy_min_share_pct"], p["name_max_places"], p["name_min_share_pct"],
            p["name_min_population"]) == (10.0, 2, 20.0, 5000)


def test_options_not_given_keep_the_defaults():
    assert params_from_options({}) == RankParams()


@pytest.mark.parametrize("text, window", [("2019-2023", (2019, 2023)), ("2019", (2019, 2019)),
                                          ("2019-", (2019, None)), ("-2023", (None, 2023)),
                                          ("all", (None, None))])
def test_year_windows(text, window):
    assert parse_years(text) == window


def test_every_bad_value_named_in_one_message():
    with pytest.raises(ParameterError) as exc:
        params_from_options({"eps_km_patent": 0.0, "top_n": 0, "counting": "some",
                             "patent_years": "2023-2019", "publication_types": ",",
                             "name_max_places": 9, "weight_patent": -1.0})
    msg = str(exc.value)
    for part in ("--eps-km-patent (patent.eps_km)", "--top-n", "--counting", "--patent-years",
                 "--publication-types", "--name-max-places", "--weight-patent"):
        assert part in msg, part
    assert "\n" not in msg


# ------------------------------------------------------------------ help, -h, --version

def test_short_help_and_top_level_version():
    assert _help("-h") == _help("--help")
    assert "Usage: stclusters rank" in _help("rank", "-h")
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"stclusters {stclusters.__version__}"


def test_help_shows_ranges_defaults_exit_codes_and_bare_flags():
    text = " ".join(_help("rank", "--help").split())
    assert "range 0 < x < 1000; default 13" in text            # --eps-km
    assert "default article,journal-article" in text            # --publication-types
    assert "range 1 <= x <= 5; default 3" in text               # --name-max-places
    assert "Exit codes: 0 ok; 1 internal error; 2 bad input or parameters; 3 nothing usable" in text
    assert "<bool>" not in text                                  # --force, --help take no value
    assert "<bool>" not in _help("demo", "--help")


def test_out_of_range_top_refused_in_one_line(tmp_path):
    table = _two_cities(tmp_path / "t.csv")
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o"), "--top", "-1"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[0].startswith("error:") and "--top must be >= 0, got -1" in lines[0], lines
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ outcomes and exit codes

def test_openalex_sample_nothing_used_then_all_types(tmp_path):
    result = runner.invoke(app, ["rank", str(OPENALEX_SAMPLE), "--out", str(tmp_path / "a")])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "nothing used" in text and "doc_type_excluded" in text
    assert "use --publication-types all to keep every type" in text
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["outcome"]["status"] == "nothing_used"
    result = runner.invoke(app, ["rank", str(OPENALEX_SAMPLE), "--out", str(tmp_path / "b"),
                                 "--publication-types", "all", "--min-weight-share-pct", "1"])
    assert result.exit_code == 0, result.output
    used = re.search(r"publication: read 410 documents = used ([\d,]+) \+", result.output)
    assert used and int(used.group(1).replace(",", "")) > 300, result.output


def test_no_cluster_exit_4_and_the_api_does_not_raise(tmp_path):
    table = _two_cities(tmp_path / "t.csv")
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o"),
                                 "--min-weight", "1000"])
    assert result.exit_code == 4, result.output
    assert "no cluster found" in result.output and "--min-weight" in result.output
    res = stclusters.rank([str(table)], params=RankParams().with_source("patent", min_weight=1000)
                          .with_source("publication", min_weight=1000))
    assert res.outcome["status"] == "no_cluster" and res.ranking.num_rows == 0


def test_mostly_filtered_warns_with_the_main_reason(tmp_path):
    rows = [(f"d{i}", "patent", 2010 if i < 8 else 2020, 48.85, 2.35, "FR", "Paris", "")
            for i in range(10)]
    table = _csv(tmp_path / "t.csv", rows)
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o"),
                                 "--patent-years", "2019-2023", "--min-weight", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: 8 of 10 patent rows not used: out_of_window (8 filtered)" in text
    assert "widen --patent-years" in text


# ------------------------------------------------------------------ accounting line

def test_accounting_line_spacing_and_plural():
    line = cli.accounting_line("patent", {"unit": "row", "read": 1, "used": 1, "filtered": {},
                                          "rejected": {}})
    assert line == "patent: read 1 row = used 1 + filtered 0 + rejected 0"
    line = cli.accounting_line("publication", {"unit": "document", "read": 3, "used": 1,
                                               "filtered": {"out_of_window": 2}, "rejected": {}})
    assert line == ("publication: read 3 documents = used 1 + filtered 2 (out_of_window 2) "
                    "+ rejected 0")


# ------------------------------------------------------------------ progress

def test_read_progress_is_a_bar_over_the_input_bytes(tmp_path):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_bytes(b"x" * 300)
    b.write_bytes(b"y" * 100)
    bar = Progress(console=Console(file=io.StringIO()))
    reading = cli._ReadProgress(bar, [a, b], "")
    task = bar.tasks[0]
    assert task.total == 400 and task.completed == 0
    reading.batch(str(a), 10)
    reading.batch(str(a), 5)
    assert task.completed == 0
    reading.batch(str(b), 7)  # a is done
    assert task.completed == 300
    assert re.match(r"22 records, [\d,]+/s", task.fields["records"])
    reading.finish()
    assert task.completed == 400


def test_progress_bar_columns_in_a_terminal_and_lines_outside(tmp_path):
    from rich.progress import BarColumn, TimeRemainingColumn

    f = tmp_path / "a.csv"
    f.write_bytes(b"x" * 10)
    term = Console(file=io.StringIO(), force_terminal=True)
    with cli._progress([f], out=term) as (stage, batch):
        stage("read")
        batch(str(f), 3)
        stage("geocode")
    plain = Console(file=io.StringIO(), force_terminal=False)
    with cli._progress([f], out=plain) as (stage, batch):
        stage("read")
    assert batch is None and "reading inputs…" in plain.file.getvalue()
    assert any(isinstance(c, BarColumn) for c in _columns_of(term, f))  # the bar for known sizes
    assert any(isinstance(c, TimeRemainingColumn) for c in _columns_of(term, f))


def _columns_of(console: Console, f) -> list:
    """The columns of the Progress that _progress starts (captured by patching)."""
    seen = []
    original = cli.Progress

    class Spy(original):
        def __init__(self, *columns, **kw):
            seen.extend(columns)
            super().__init__(*columns, **kw)

    cli.Progress = Spy
    try:
        with cli._progress([f], out=console):
            pass
    finally:
        cli.Progress = original
    return seen


# ------------------------------------------------------------------ found by using the CLI

def test_a_source_without_input_has_no_columns_and_the_title_counts(tmp_path):
    rows = [(f"d{i}", "publication", 2020, 48.85, 2.35 + i * 1e-4, "FR", "Paris", "")
            for i in range(5)]
    table = _csv(tmp_path / "t.csv", rows)
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o"),
                                 "--min-weight", "2"])
    assert result.exit_code == 0, result.output
    assert "S&T clusters (top 1 of 1)" in result.output
    assert "Pubs" in result.output and "Patents" not in result.output and "Pat %" not in result.output
    # Every data credit the results need is printed, as the manifest lists them.
    credits = json.loads((tmp_path / "o" / "manifest.json").read_text())["attribution"]
    text = " ".join(result.output.split())
    assert credits and all(" ".join(c.split()) in text for c in credits)


def test_threshold_below_one_document_warns(tmp_path):
    table = _two_cities(tmp_path / "t.csv")
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "patent: min_weight 0.0036 (0.02 % of 18.0) is below one document" in text
    assert "set --min-weight-patent" in text
    result = runner.invoke(app, ["rank", str(table), "--out", str(tmp_path / "o"),
                                 "--min-weight", "3"])
    assert "below one document" not in result.output


def test_unknown_source_and_missing_source_column_get_hints(tmp_path):
    bad = _csv(tmp_path / "bad.csv", [("d1", "patents", 2020, 1.0, 2.0, "", "", "")])
    result = runner.invoke(app, ["rank", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "nothing used: 1 record read, none counted" in text
    assert "source must be patent or publication (or pass --source)" in text
    nosrc = tmp_path / "nosrc.csv"
    nosrc.write_text("doc_id,year,lat,lon\nd1,2020,1,2\n")
    result = runner.invoke(app, ["rank", str(nosrc), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 2
    assert "hint: add a source column, or pass --source patent" in result.output


def test_no_bar_where_the_size_is_unknown():
    bar = Progress(console=Console(file=io.StringIO()))
    bar.add_task("geocoding", total=None)
    bar.add_task("reading", total=10, completed=5)
    unknown, known = bar.tasks
    column = cli._BarIfKnown()
    assert str(column.render(unknown)) == ""
    assert str(column.render(known)) != ""


def test_brackets_in_paths_and_reasons_are_printed_as_written(tmp_path):
    result = runner.invoke(app, ["rank", str(tmp_path / "data[bold].csv")])
    assert result.exit_code == 2
    assert "data[bold].csv: cannot read" in result.output
    rows = [(f"d{i}", "patent", 2020, 48.85, 2.35, "FR", "Paris", "") for i in range(3)]
    rows.append(("bad", "patent", 2020, 95, 2.35, "FR", "Paris", ""))
    result = runner.invoke(app, ["rank", str(_csv(tmp_path / "t.csv", rows)), "--out",
                                 str(tmp_path / "o"), "--min-weight", "2"])
    assert "rejected 1 (lat outside [-90, 90] 1)" in result.output


def test_inputs_without_records_say_so(tmp_path):
    header_only = tmp_path / "empty.csv"
    header_only.write_text("doc_id,source,year,lat,lon\n")
    result = runner.invoke(app, ["rank", str(header_only), "--out", str(tmp_path / "a")])
    assert result.exit_code == 3
    assert "nothing used: the inputs hold no patent or publication record" in result.output
    assert "a header only?" in result.output
    inst = tmp_path / "inst.jsonl"
    inst.write_text('{"id":"https://openalex.org/I1","geo":{"latitude":1,"longitude":2}}\n')
    result = runner.invoke(app, ["rank", str(inst), "--out", str(tmp_path / "b")])
    assert result.exit_code == 3
    text = " ".join(result.output.split())
    assert "(only a lookup: institution)" in text and "give the works too" in text


def test_title_counts_every_cluster_found_not_only_the_published(tmp_path):
    """'top 5 of N': N is every S&T cluster of the run, beyond the 100 published."""
    import pyarrow.parquet as pq

    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "--synthetic-only", "--n-per-source", "60000", "--top", "5",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    n_found = pq.read_table(out / "synthetic" / "clusters.parquet").num_rows
    assert n_found > pq.read_table(out / "synthetic" / "ranking.parquet").num_rows
    assert f"(top 5 of {n_found:,})" in " ".join(r.output.split())
