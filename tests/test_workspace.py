"""Workspaces (issue 8): an ingest killed in the middle and rerun finishes without
duplicates or losses; files already ingested are skipped by content; ``rank`` runs on a
workspace without reading again and gives the ranking that reading the files gives,
whatever order they were ingested in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import stclusters
from conftest import SHARED_DATA as SHARED
from stclusters.cli import app
from stclusters.errors import InputFormatError, ParameterError

runner = CliRunner()

CITIES = [("Paris", 48.85, 2.35, "FR"), ("Lyon", 45.76, 4.84, "FR"), ("Tokyo", 35.68, 139.69, "JP")]


def _table(path: Path, k: int, *, n: int = 40) -> Path:
    rows = []
    for i in range(n):
        city, lat, lon, cc = CITIES[(i + k) % len(CITIES)]
        rows.append(f"D{k}-{i},patent,2020,{lat + (i % 7) * 1e-3},{lon},{cc},{city}")
    rows.append(f"D{k}-bad,patent,20x0,1,1,FR,Paris")  # one rejected row per file
    path.write_text("doc_id,source,year,lat,lon,country,city\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture()
def tables(tmp_path) -> list[Path]:
    return [_table(tmp_path / f"t{k}.csv", k) for k in range(3)]


def _counts(ws: Path) -> dict[str, int]:
    con = duckdb.connect(str(ws), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("inputs", "documents", "raw_contributions", "quarantine")}
    finally:
        con.close()


def _balanced(manifest: dict) -> None:
    for entry in manifest["inputs"]:
        assert entry["records"]["balanced"], entry


def test_rank_from_a_workspace_equals_rank_from_the_files(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    report = stclusters.ingest([str(t) for t in tables], workspace=ws)
    assert [f.status for f in report.files] == ["read"] * 3
    assert [f.records_read for f in report.files] == [41] * 3
    assert [f.rejected for f in report.files] == [1] * 3
    direct = stclusters.rank([str(t) for t in tables])
    again = stclusters.rank([], workspace=ws)
    assert again.ranking.equals(direct.ranking)
    assert again.manifest["accounting"] == direct.manifest["accounting"]
    _balanced(again.manifest)
    # Ranking did not change the workspace: it can be ranked again.
    assert _counts(ws) == {"inputs": 3, "documents": 120, "raw_contributions": 120,
                           "quarantine": 3}


def test_ingest_order_does_not_change_the_outputs(tmp_path, tables):
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    stclusters.ingest([str(tables[2])], workspace=a)
    stclusters.ingest([str(tables[0]), str(tables[1])], workspace=a)
    stclusters.ingest([str(t) for t in tables], workspace=b)
    ra, rb = stclusters.rank([], workspace=a), stclusters.rank([], workspace=b)
    assert ra.ranking.equals(rb.ranking)
    assert [i["name"] for i in ra.manifest["inputs"]] == ["t0.csv", "t1.csv", "t2.csv"]
    assert ra.manifest["inputs"] == rb.manifest["inputs"]


def test_files_already_in_the_workspace_are_skipped_by_content(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    stclusters.ingest([str(tables[0])], workspace=ws)
    copy = tmp_path / "copy-of-t0.csv"
    copy.write_bytes(tables[0].read_bytes())
    report = stclusters.ingest([str(tables[0]), str(copy), str(tables[1])], workspace=ws)
    statuses = {Path(f.path).name: (f.status, f.same_as and Path(f.same_as).name)
                for f in report.files}
    assert statuses == {"t0.csv": ("skipped", "t0.csv"), "copy-of-t0.csv": ("skipped", "t0.csv"),
                        "t1.csv": ("read", None)}
    assert _counts(ws)["raw_contributions"] == 80


def _ingest_process(tmp: Path, ws: Path, files: list[Path], *, pause_at: str) -> tuple[subprocess.Popen, Path]:
    ready = tmp / "ready"
    env = dict(os.environ, STCLUSTERS_PAUSE_AT=pause_at, STCLUSTERS_PAUSE_READY=str(ready))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stclusters.cli import app; app()", "ingest",
         *map(str, files), "--workspace", str(ws)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (ready.exists() and ready.read_text()):
        if proc.poll() is not None:
            raise AssertionError(f"ended before the pause: {proc.communicate()}")
        if time.monotonic() - t0 > 90:
            proc.kill()
            raise AssertionError("never reached the pause")
        time.sleep(0.05)
    return proc, ready


def test_an_ingest_killed_mid_file_resumes_without_duplicates_or_losses(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    # Killed with the second file read but not committed.
    proc, _ = _ingest_process(tmp_path, ws, tables, pause_at="ingest:before-commit:t1.csv")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _counts(ws) == {"inputs": 1, "documents": 40, "raw_contributions": 40, "quarantine": 1}
    result = runner.invoke(app, ["ingest", *map(str, tables), "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "skipped t0.csv" in result.output and "read t1.csv" in result.output
    assert _counts(ws) == {"inputs": 3, "documents": 120, "raw_contributions": 120,
                           "quarantine": 3}
    resumed = stclusters.rank([], workspace=ws)
    direct = stclusters.rank([str(t) for t in tables])
    assert resumed.ranking.equals(direct.ranking)
    _balanced(resumed.manifest)


def test_rank_cli_on_a_workspace_writes_the_same_files(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    assert runner.invoke(app, ["ingest", *map(str, tables), "--workspace", str(ws)]).exit_code == 0
    one = runner.invoke(app, ["rank", "--workspace", str(ws), "--out", str(tmp_path / "a")])
    two = runner.invoke(app, ["rank", *map(str, tables), "--out", str(tmp_path / "b")])
    assert one.exit_code == two.exit_code == 0, one.output + two.output
    assert (tmp_path / "a" / "ranking.csv").read_bytes() == (tmp_path / "b" / "ranking.csv").read_bytes()
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert ma["inputs"] == mb["inputs"] and ma["accounting"] == mb["accounting"]


def test_rank_inputs_with_a_workspace_adds_them_first(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    stclusters.ingest([str(tables[0])], workspace=ws)
    res = stclusters.rank([str(tables[1]), str(tables[2])], workspace=ws)
    assert [i["name"] for i in res.manifest["inputs"]] == ["t0.csv", "t1.csv", "t2.csv"]
    assert _counts(ws)["inputs"] == 3


def test_workspace_errors_are_one_clear_line(tmp_path, tables):
    missing = runner.invoke(app, ["rank", "--workspace", str(tmp_path / "nope.duckdb"),
                                  "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "nope.duckdb" in missing.output
    assert "stclusters ingest" in missing.output  # the hint says how to make one
    nothing = runner.invoke(app, ["rank", "--out", str(tmp_path / "o")])
    assert nothing.exit_code == 2 and "no input given" in nothing.output
    not_ws = tmp_path / "plain.duckdb"
    duckdb.connect(str(not_ws)).execute("CREATE TABLE x (a INTEGER)").close()
    with pytest.raises(InputFormatError, match="not a workspace"):
        stclusters.rank([], workspace=not_ws)
    text = tmp_path / "text.duckdb"
    text.write_text("hello")
    with pytest.raises(InputFormatError, match="text.duckdb"):
        stclusters.ingest([str(tables[0])], workspace=text)
    with pytest.raises(ParameterError, match="no input given"):
        stclusters.rank([])


def test_a_workspace_in_use_by_another_ingest_is_refused(tmp_path, tables):
    ws = tmp_path / "ws.duckdb"
    proc, ready = _ingest_process(tmp_path, ws, tables[:1], pause_at="ingest:before-commit:t0.csv")
    try:
        result = runner.invoke(app, ["ingest", str(tables[1]), "--workspace", str(ws)])
        assert result.exit_code == 2
        assert "in use by another process" in " ".join(result.output.split())
    finally:
        ready.unlink()
        proc.communicate(timeout=60)
    assert proc.returncode == 0


# ------------------------------------------------------------ decoding in worker processes

def _workspace_rows(con) -> dict[str, list]:
    return {t: con.execute(f"SELECT * EXCLUDE (input_id), input_id FROM {t} ORDER BY ALL").fetchall()
            for t in ("documents", "raw_contributions", "quarantine", "institutions")}


def test_worker_processes_decode_to_the_same_workspace(tmp_path, monkeypatch):
    from stclusters import store
    from stclusters.workspace import as_inputs, expand_inputs, ingest_into

    files = sorted((SHARED / "samples" / "uspto").glob("uspto_ipg*.xml.gz"))
    files += sorted((SHARED / "samples" / "openalex").glob("*.json.gz"))
    assert len(files) >= 3
    broken = tmp_path / "broken.xml.gz"  # one damaged part among them: read up to the break
    broken.write_bytes(files[0].read_bytes()[:3000])
    files.append(broken)
    results = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("STCLUSTERS_WORKERS", workers)
        con = store.connect(None)
        report = ingest_into(con, expand_inputs(as_inputs([str(f) for f in files])))
        results[workers] = (_workspace_rows(con),
                            [(Path(f.path).name, f.records_read, f.rejected) for f in report.files])
    assert results["1"] == results["2"]
    read = {name: (n, rejected) for name, n, rejected in results["1"][1]}
    assert read["broken.xml.gz"][1] >= 1  # the break is in the quarantine, in both


def test_a_file_refused_in_a_worker_is_refused_with_its_name(tmp_path, monkeypatch):
    import gzip

    from stclusters.workspace import Input

    files = sorted((SHARED / "samples" / "uspto").glob("uspto_ipg*.xml.gz"))[:2]
    bad = tmp_path / "zz-bad.xml.gz"  # gzip, but no XML in it: the reader refuses it whole
    bad.write_bytes(gzip.compress(b"hello, this is no patent\n" * 100))
    monkeypatch.setenv("STCLUSTERS_WORKERS", "2")
    ws = tmp_path / "ws.duckdb"
    inputs = [Input(str(f)) for f in files] + [Input(str(bad), kind="uspto-xml")]
    with pytest.raises(InputFormatError, match="zz-bad.xml.gz.*XML declaration"):
        stclusters.ingest(inputs, workspace=ws)
    # The file is refused whole: nothing of it is in the workspace.
    con = duckdb.connect(str(ws), read_only=True)
    try:
        names = [Path(r[0]).name for r in con.execute("SELECT path FROM inputs").fetchall()]
    finally:
        con.close()
    assert "zz-bad.xml.gz" not in names


# ------------------------------------------------------------ an OpenAlex snapshot, resumed

SNAPSHOT = Path(__file__).parent / "fixtures" / "openalex_snapshot"


def test_a_snapshot_ingest_killed_between_parts_resumes_part_by_part(tmp_path):
    ws = tmp_path / "ws.duckdb"
    proc, _ = _ingest_process(tmp_path, ws, [SNAPSHOT], pause_at="ingest:before-commit:part_001.gz")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done_before = _counts(ws)["inputs"]
    assert done_before >= 1
    report = stclusters.ingest([str(SNAPSHOT)], workspace=ws)
    assert sum(f.status == "skipped" for f in report.files) == done_before
    resumed = stclusters.rank([], workspace=ws)
    direct = stclusters.rank([str(SNAPSHOT)])
    assert resumed.ranking.equals(direct.ranking)
    assert resumed.manifest["accounting"] == direct.manifest["accounting"]
    assert resumed.manifest["snapshot_checks"] == direct.manifest["snapshot_checks"] == []
    _balanced(resumed.manifest)


def test_snapshot_manifest_findings_reach_the_run_manifest(tmp_path):
    import shutil

    snap = tmp_path / "snap"
    shutil.copytree(SNAPSHOT, snap)
    part = sorted((snap / "data" / "works").rglob("part_000.gz"))[0]
    part.write_bytes(part.read_bytes()[:2000])  # an interrupted download
    res = stclusters.rank([str(snap)])
    problems = {(Path(f["entity_dir"]).name, f["part"], f["problem"])
                for f in res.manifest["snapshot_checks"]}
    rel = part.relative_to(snap / "data" / "works").as_posix()
    assert problems == {("works", rel, "incomplete part"), ("works", rel, "record count differs")}
    result = runner.invoke(app, ["rank", str(snap), "--out", str(tmp_path / "out")])
    assert "incomplete part" in result.output and "record count differs" in result.output


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_bad_worker_count_is_refused_naming_the_variable(monkeypatch, raw):
    from stclusters._decode_pool import worker_count

    monkeypatch.setenv("STCLUSTERS_WORKERS", raw)
    with pytest.raises(ParameterError, match="STCLUSTERS_WORKERS"):
        worker_count(3, 1 << 30)
    monkeypatch.setenv("STCLUSTERS_WORKERS", "8")
    assert worker_count(3, 1 << 30) == 3  # never more workers than files
