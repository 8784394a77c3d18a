"""Faults (issue 7): real processes killed, interrupted or raced at named points, and a full
disk. A run that does not finish leaves no manifest, and the next run cleans what it left;
two runs never write into one folder; Ctrl-C, SIGTERM and a full disk say what happened and
exit with their documented codes.

The processes stop at :func:`stclusters._faults.checkpoint` points (``$STCLUSTERS_PAUSE_AT``),
so each case hits the same moment every time instead of racing a timer.
"""

from __future__ import annotations

import errno
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
from stclusters import _tempdirs
from stclusters.cli import EXIT_BUSY, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_WRITE, app
from stclusters.errors import OutputBusyError, OutputWriteError
from stclusters.params import RankParams
from stclusters.reports import outputs
from stclusters.reports._atomic import atomic_path
from stclusters.reports._lock import LOCK_NAME, out_dir_lock
from stclusters.store import SPILL_PREFIX, file_sha256

runner = CliRunner()

OUTPUTS = sorted(outputs.OUTPUT_NAMES)
OPTIONS = ["--min-weight-patent", "3", "--min-weight-publication", "3"]


def _table(path: Path, *, n: int = 12) -> Path:
    rows = [f"{s}{i},{s},2020,48.85,{2.35 + i * 1e-4},FR,Paris"
            for s in ("patent", "publication") for i in range(n)]
    path.write_text("doc_id,source,year,lat,lon,country,city\n" + "\n".join(rows) + "\n")
    return path


class _Run:
    """``stclusters rank`` in a process of its own, paused at ``pause_at`` (if given)."""

    def __init__(self, tmp: Path, table: Path, out: Path, *, pause_at: str | None = None,
                 tag: str = "a") -> None:
        self.ready = tmp / f"ready-{tag}"
        env = dict(os.environ, TMPDIR=str(tmp / "tmp"), COLUMNS="200")
        (tmp / "tmp").mkdir(exist_ok=True)
        if pause_at:
            env.update(STCLUSTERS_PAUSE_AT=pause_at, STCLUSTERS_PAUSE_READY=str(self.ready))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from stclusters.cli import app; app()", "rank", str(table),
             "--out", str(out), *OPTIONS],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_paused(self, timeout_s: float = 90.0) -> None:
        t0 = time.monotonic()
        while not (self.ready.exists() and self.ready.read_text()):
            if self.proc.poll() is not None:
                raise AssertionError(f"ended before the pause: {self.proc.communicate()}")
            if time.monotonic() - t0 > timeout_s:
                self.proc.kill()
                raise AssertionError("never reached the pause")
            time.sleep(0.05)

    def resume(self) -> None:
        self.ready.unlink()

    def finish(self, sig: int | None = None) -> tuple[int, str, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err


def _assert_complete(out: Path, table: Path) -> dict:
    """Exactly our outputs, no temporary, no lock; the manifest names this input and hashes
    the files as they are."""
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["sha256"] for i in manifest["inputs"]] == [file_sha256(table)]
    for name, entry in manifest["outputs"].items():
        if "sha256" in entry:
            assert entry["sha256"] == file_sha256(out / name), name
    return manifest


# ------------------------------------------------------------------ kill -9, then rerun

@pytest.mark.parametrize("stop", ["write:ranking.parquet", "attach:workspace.duckdb",
                                  "write:manifest.json"])
def test_kill_9_leaves_no_manifest_and_a_rerun_cleans_up(tmp_path, stop):
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    run = _Run(tmp_path, table, out, pause_at=stop)
    run.wait_paused()
    left = sorted(p.name for p in out.iterdir())
    code, _, _ = run.finish(signal.SIGKILL)
    assert code == -signal.SIGKILL
    # What a killed run leaves: never a manifest, so nothing vouches for its files.
    assert "manifest.json" not in left and not (out / "manifest.json").exists()
    if stop == "attach:workspace.duckdb":  # the 60 MB case of the issue
        assert any(n.startswith(".workspace.duckdb.") and n.endswith(".partial") for n in left)
    assert (out / LOCK_NAME).exists()  # a dead holder's lock: free, taken over below
    assert list((tmp_path / "tmp").glob(SPILL_PREFIX + "*"))  # atexit never ran
    rerun = _Run(tmp_path, table, out, tag="b")
    code, stdout, stderr = rerun.finish()
    assert code == 0, stderr
    _assert_complete(out, table)
    # The rerun removed the dead run's spill folder, and its own at exit.
    assert not list((tmp_path / "tmp").glob("stclusters-*"))


def test_a_spill_folder_of_a_living_process_is_kept(tmp_path):
    mine = Path(_tempdirs.private_dir("stclusters-test-"))
    try:
        assert mine.is_dir()
        assert _tempdirs.sweep("stclusters-test-", base=str(mine.parent)) == []
        assert mine.is_dir()
    finally:
        import shutil

        shutil.rmtree(mine, ignore_errors=True)


# ------------------------------------------------------------------ two runs, one folder

def test_a_second_run_into_a_busy_folder_is_refused_and_the_first_stays_whole(tmp_path):
    table_a = _table(tmp_path / "a.csv", n=12)
    table_b = _table(tmp_path / "b.csv", n=15)
    out = tmp_path / "out"
    first = _Run(tmp_path, table_a, out, pause_at="write:ranking.csv")
    first.wait_paused()
    second = _Run(tmp_path, table_b, out, tag="b")
    code, _, err = second.finish()
    err = " ".join(err.split())
    assert code == EXIT_BUSY, err
    assert "another stclusters run is writing into this output folder" in err
    assert f"pid {first.proc.pid}" in err
    # The API is refused too while the first one writes.
    res = stclusters.rank([str(table_b)], params=RankParams().with_source("patent", min_weight=3)
                          .with_source("publication", min_weight=3))
    with pytest.raises(OutputBusyError):
        res.write(out)
    first.resume()
    code, _, err = first.finish()
    assert code == 0, err
    manifest = _assert_complete(out, table_a)
    assert manifest["accounting"]["patent"]["records"]["read"] == 12
    # Once the first is done, the folder is free again.
    res.write(out)
    _assert_complete(out, table_b)


def test_the_lock_is_reentrant_in_a_process_and_removed_after(tmp_path):
    out = tmp_path / "new"
    with out_dir_lock(out) as lock:
        assert lock.exists() and str(os.getpid()) in lock.read_text()
        with out_dir_lock(out):
            pass
        assert lock.exists()
    assert not out.exists()  # made for the run and left empty: removed


# ------------------------------------------------------------------ Ctrl-C and SIGTERM

@pytest.mark.parametrize(("stop", "sig", "code", "word"), [
    ("stage:cluster", signal.SIGINT, EXIT_INTERRUPTED, "interrupted"),
    ("write:points.parquet", signal.SIGINT, EXIT_INTERRUPTED, "interrupted"),
    ("attach:workspace.duckdb", signal.SIGTERM, EXIT_TERMINATED, "terminated"),
])
def test_interrupt_says_so_and_leaves_nothing(tmp_path, stop, sig, code, word):
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    run = _Run(tmp_path, table, out, pause_at=stop)
    run.wait_paused()
    got, _, err = run.finish(sig)
    assert got == code, err
    assert f"{word}" in err and "internal error" not in err and "Traceback" not in err
    # Nothing of the run is left: the folder it made is gone again.
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []
    assert not list((tmp_path / "tmp").glob("stclusters-*"))


def test_interrupting_a_rerun_keeps_no_half_of_either_run(tmp_path):
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    stclusters.rank([str(table)], params=RankParams().with_source("patent", min_weight=3)
                    .with_source("publication", min_weight=3)).write(out)
    _assert_complete(out, table)
    run = _Run(tmp_path, table, out, pause_at="write:footprints.geojson")
    run.wait_paused()
    assert not (out / "manifest.json").exists()  # the earlier manifest goes first
    got, _, err = run.finish(signal.SIGINT)
    assert got == EXIT_INTERRUPTED, err
    assert sorted(p.name for p in out.iterdir()) == []


# ------------------------------------------------------------------ a full disk

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["write_parquet", "write_csv", "write_text", "workspace",
                                    "workspace-commit"])
def test_a_full_disk_names_the_file_and_exits_6(tmp_path, monkeypatch, target):
    """Measured on a real 4 kB-1.2 MB tmpfs too (ranking.csv, clusters.parquet,
    footprints.geojson, workspace.duckdb): the same line, exit 6, nothing left."""
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    if target.startswith("workspace"):  # DuckDB's own errors: IO, or at commit
        error = (duckdb.IOException("IO Error: Could not write file: No space left on device")
                 if target == "workspace" else duckdb.TransactionException(
                     'TransactionContext Error: Failed to commit: Could not write file "x.wal": '
                     'No space left on device'))

        def fail(*args, **kwargs):
            raise error
        monkeypatch.setattr(outputs, "_save_workspace", fail)
        victim = "workspace.duckdb"
    else:
        def half_then_fail(*args, **kwargs):  # the disk fills half-way through the file
            with atomic_path(args[1] if target != "write_text" else args[0]) as tmp:
                tmp.write_bytes(b"half")
                _no_space()
        monkeypatch.setattr(outputs, target, half_then_fail)
        victim = {"write_parquet": "ranking.parquet", "write_csv": "ranking.csv",
                  "write_text": "manifest.json"}[target]
    result = runner.invoke(app, ["rank", str(table), "--out", str(out), *OPTIONS])
    assert result.exit_code == EXIT_WRITE, result.output
    text = " ".join(result.output.split())
    assert f"no space left on the device while writing {out / victim}" in text, text
    assert "internal error" not in text
    # The half-written file and every file this run had already put in place are gone.
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []


def test_a_write_error_from_the_api_is_one_error_naming_the_file(tmp_path, monkeypatch):
    res = stclusters.rank([str(_table(tmp_path / "t.csv"))], params=RankParams()
                          .with_source("patent", min_weight=3))
    monkeypatch.setattr(outputs, "write_csv", lambda *a, **k: _no_space())
    with pytest.raises(OutputWriteError, match="no space left on the device while writing"):
        res.write(tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("wrapped", [RuntimeError("Query interrupted"),
                                     SystemError("returned a result with an exception set")])
def test_an_interrupt_that_a_library_wraps_is_still_an_interrupt(tmp_path, monkeypatch, wrapped):
    """DuckDB turns Ctrl-C into ``RuntimeError: Query interrupted`` and numba into a
    ``SystemError``: they were reported as "internal error … report it" with exit 1."""
    import stclusters.pipeline

    def interrupted_in_a_library(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise wrapped from None
    monkeypatch.setattr(stclusters.pipeline, "rank", interrupted_in_a_library)
    result = runner.invoke(app, ["rank", str(_table(tmp_path / "t.csv")), "--out",
                                 str(tmp_path / "out"), *OPTIONS])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "interrupted" in result.output and "internal error" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_full_disk_while_spilling_says_so(tmp_path, monkeypatch):
    import stclusters.pipeline

    def spill_fails(*args, **kwargs):
        raise duckdb.IOException("IO Error: Could not write to temp file: No space left on device")
    monkeypatch.setattr(stclusters.pipeline, "rank", spill_fails)
    result = runner.invoke(app, ["rank", str(_table(tmp_path / "t.csv")), "--out",
                                 str(tmp_path / "out"), *OPTIONS])
    assert result.exit_code == EXIT_WRITE, result.output
    assert "no space left on the device" in result.output and "TMPDIR" in result.output
