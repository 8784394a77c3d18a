"""Nothing injected (issue 7): no path or user string becomes SQL, no input text becomes a
spreadsheet formula in a CSV we write."""

from __future__ import annotations

import ast
import csv
import os
import re
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stclusters
from stclusters import _sql, store
from stclusters.params import RankParams
from stclusters.reports.csv_writer import PLAIN_NUMBER, write_csv

SRC = Path(__file__).resolve().parents[1] / "src" / "stclusters"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

HEADER = "doc_id,source,year,lat,lon,country,city"


def _table(path: Path, *, extra: str = "") -> Path:
    rows = [f"p{i},patent,2020,48.85,{2.35 + i * 1e-4},FR,Paris" for i in range(6)]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n" + extra)
    return path


def _params() -> RankParams:
    return RankParams().with_source("patent", min_weight=2.0)


# ------------------------------------------------------------------ SQL: paths and strings

@pytest.mark.parametrize("folder", ["it's", "x'; COPY (SELECT 1) TO 'pwned.csv'; --",
                                    'q"; DROP TABLE ranking; --'])
def test_an_output_folder_name_is_data_not_sql(tmp_path, monkeypatch, folder):
    monkeypatch.chdir(tmp_path)
    res = stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params())
    out = tmp_path / folder
    res.write(out)
    assert not (tmp_path / "pwned.csv").exists()
    ws = duckdb.connect(str(out / "workspace.duckdb"), read_only=True)
    assert ws.execute("SELECT count(*) FROM ranking").fetchall()[0][0] == 1
    ws.close()


def test_a_temp_folder_with_a_quote_is_data_not_sql(tmp_path, monkeypatch):
    """The spill folder comes from $TMPDIR: it was pasted into ``SET temp_directory``."""
    odd = tmp_path / "tmp'; COPY (SELECT 1) TO 'pwned.csv'; --"
    odd.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(odd))
    store._spill_dir.cache_clear()
    try:
        con = store.connect()
        spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert spill.startswith(str(odd)) and not (tmp_path / "pwned.csv").exists()
    finally:
        store._spill_dir.cache_clear()


@pytest.mark.parametrize("name", ["b[1].parquet", "c*.parquet", "d?.parquet"])
def test_a_parquet_name_with_glob_characters_reads_that_file_only(tmp_path, name):
    """DuckDB expands globs even in a bound file name: ``b[1].parquet`` read ``b1.parquet``
    and ``c*.parquet`` every ``c…`` file, while the manifest hashed the named one."""
    def rows(n: int) -> pa.Table:
        return pa.table({"doc_id": [f"a{i}" for i in range(n)], "source": ["patent"] * n,
                         "year": [2020] * n, "lat": [48.85] * n, "lon": [2.35] * n,
                         "country": ["FR"] * n, "city": ["Paris"] * n})
    pq.write_table(rows(1), tmp_path / name)
    for decoy in ("b1.parquet", "cX.parquet", "dY.parquet"):
        pq.write_table(rows(5), tmp_path / decoy)
    res = stclusters.rank([str(tmp_path / name)], params=_params())
    assert res.manifest["inputs"][0]["records"]["read"] == 1


def test_a_table_name_is_never_pasted_into_sql(tmp_path):
    res = stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params())
    with pytest.raises(ValueError, match="no workspace table"):
        res.table("ranking; DROP TABLE points")
    assert res.table("points").num_rows > 0


_CON = duckdb.connect()


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00",
                                      blacklist_categories=("Cs",))))
def test_a_literal_is_one_string_token_whatever_it_holds(value):
    con = _CON
    assert con.execute(f"SELECT {_sql.literal(value)}").fetchall()[0][0] == value
    if value:
        assert con.execute(f"SELECT 1 AS {_sql.identifier(value)}").description[0][0] == value
    else:
        with pytest.raises(ValueError, match="empty"):
            _sql.identifier(value)


def test_a_string_sql_cannot_hold_is_refused_or_spelt_out():
    with pytest.raises(ValueError):  # NUL: DuckDB would cut the string there
        _sql.literal("a\x00b")
    # A file name's non-UTF-8 byte (a surrogate escape in Python): spelt \xe9, not an error.
    spelt = _sql.literal("caf\udce9.csv")
    assert _CON.execute(f"SELECT {spelt}").fetchall()[0][0] == "caf\\xe9.csv"


def test_a_parquet_name_that_is_not_utf8_is_read(tmp_path):
    """A file name's undecodable bytes reach Python as surrogate escapes, which DuckDB
    cannot take in SQL text: the file is read through a link with a plain name. (The table
    reader's ``pq.read_schema`` still fails on such a name: reported to the readers' side.)"""
    name = "caf\udce9.parquet"  # b"caf\xe9.parquet" on disk
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"doc_id": ["a"], "source": ["patent"], "year": [2020],
                             "lat": [48.85], "lon": [2.35], "country": ["FR"],
                             "city": ["Paris"]}), sink)
    (tmp_path / name).write_bytes(sink.getvalue().to_pybytes())
    con = duckdb.connect()
    rel = con.read_parquet(_sql.file_path(tmp_path / name))
    assert rel.aggregate("count(*)").fetchall()[0][0] == 1


def _hand_quoting(tree: ast.AST) -> list[tuple[int, str]]:
    """Places that quote for SQL by hand: ``'{x}'`` in an f-string, ``"'" + x``, ``%``
    formatting after a quote, ``.replace("'", "''")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for a, b in zip(node.values, node.values[1:]):
                if (isinstance(a, ast.Constant) and isinstance(b, ast.FormattedValue)
                        and a.value.endswith(("'", '"')) and b.conversion == -1):
                    found.append((node.lineno, ast.unparse(node)[:80]))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            if any(isinstance(s, ast.Constant) and isinstance(s.value, str)
                   and (s.value.startswith("'") or s.value.endswith("'"))
                   for s in (node.left, node.right)):
                found.append((node.lineno, ast.unparse(node)[:80]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("replace", "format") and (
                  node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
                  and "'{" in str(node.func.value.value)
                  or node.func.attr == "replace" and node.args
                  and isinstance(node.args[0], ast.Constant) and node.args[0].value in ("'", '"'))):
            found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_no_sql_is_quoted_by_hand_outside_the_one_helper():
    """Architecture rule: a single place (``stclusters._sql``) turns a path or a user string
    into SQL; everything else binds parameters or calls it."""
    offenders = []
    files = [*SRC.rglob("*.py"), *BENCHMARKS.rglob("*.py")]
    assert len(files) > 20
    for f in files:
        if f == SRC / "_sql.py":
            continue
        offenders += [f"{f.relative_to(SRC.parent)}:{line}: {text}"
                      for line, text in _hand_quoting(ast.parse(f.read_text()))]
    assert not offenders, "\n".join(offenders)


def test_the_scan_finds_what_it_looks_for():
    """The scan above is not vacuous: each pattern it bans is found in a sample."""
    sample = '''
con.execute(f"SET temp_directory = '{path}'")
q = "'" + value + "'"
v = value.replace("'", "''")
s = "WHERE x = '{}'".format(value)
'''
    assert {line for line, _ in _hand_quoting(ast.parse(sample))} == {2, 3, 4, 5}
    assert not _hand_quoting(ast.parse('con.execute("SELECT ?", [value])'))


# ------------------------------------------------------------------ CSV: formulas

#: The oracle, written apart from the writer's regexes: OWASP's triggers (and their
#: full-width forms) after blanks, or a leading TAB/CR/LF; a plain number is safe.
_TRIGGERS = tuple("=+-@\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


_cells = st.one_of(
    st.text(max_size=20),
    st.builds(lambda lead, body: lead + body,
              st.sampled_from(["=", "+", "-", "@", "\t", "\r", " =", "\u3000@", "\uff1d", "-1+"]),
              st.text(max_size=15)),
    st.from_regex(PLAIN_NUMBER, fullmatch=True))


def _spreadsheet_would_run(cell: str) -> bool:
    if _NUMBER.fullmatch(cell):
        return False
    return cell[:1] in ("\t", "\r", "\n") or cell.lstrip(" \x0b\x0c\u00a0\u3000").startswith(_TRIGGERS)


@settings(max_examples=300)
@given(st.lists(st.one_of(st.none(), _cells), min_size=1, max_size=8),
       st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_no_csv_cell_starts_a_formula(tmp_path_factory, cells, numbers):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    n = min(len(cells), len(numbers))
    cells = [c.replace("\x00", "") if c else c for c in cells[:n]]
    write_csv(pa.table({"text": pa.array(cells, pa.string()),
                        "value": pa.array(numbers[:n], pa.float64())}), path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == n
    for (text, value), original, number in zip(rows, cells, numbers):
        assert not _spreadsheet_would_run(text), text
        if original is None:
            assert text == ""
        elif _spreadsheet_would_run(original):
            assert text == "'" + original
        else:
            assert text == original
        assert float(value) == number  # numbers stay numbers, -3.5 included


def test_csv_outputs_neutralise_input_text(tmp_path):
    """The two CSVs a run writes, end to end: a file name, an excerpt and an economy that a
    spreadsheet would run."""
    evil = "=cmd|' /C calc'!A0"
    table = _table(tmp_path / "=1+1.csv", extra="=HYPERLINK(\"x\"),patent,2020,95,10,FR,Paris\n")
    res = stclusters.rank([str(table)], params=_params())
    res.con.execute("UPDATE ranking SET economy = ?", [evil])
    res.write(tmp_path / "out")
    with open(tmp_path / "out" / "ranking.csv", newline="") as f:
        ranking = list(csv.DictReader(f))
    assert ranking[0]["economy"] == "'" + evil
    assert float(ranking[0]["patent_weight"]) == 6.0
    with open(tmp_path / "out" / "quarantine.csv", newline="") as f:
        quarantine = list(csv.DictReader(f))
    assert quarantine and quarantine[0]["file"] == "'=1+1.csv"
    assert all(not _spreadsheet_would_run(v) for r in quarantine for v in r.values()), quarantine
    # The Parquet file keeps the value as it was.
    assert pq.read_table(tmp_path / "out" / "ranking.parquet")["economy"][0].as_py() == evil


def test_a_file_name_that_is_not_utf8_is_spelt_out_not_an_internal_error(tmp_path):
    """Found attacking: a CSV named ``caf\\xe9.csv`` (Latin-1 bytes) ended in "internal
    error": its name reached DuckDB and the manifest as a lone surrogate."""
    import json

    from typer.testing import CliRunner

    from stclusters.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.csv")
    _table(folder / name, extra="bad,patent,2020,95,10,FR,Paris\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["rank", str(folder), "--out", str(out),
                                      "--min-weight-patent", "2"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["name"] == "caf\\xe9.csv"
    with open(out / "quarantine.csv", newline="", encoding="utf-8") as f:
        file = next(csv.DictReader(f))["file"]  # spelt by the reader's quarantine
    assert file.startswith("caf") and file.endswith(".csv"), file
