"""A real standalone Spark cluster on one machine (``stclusters.engines.standalone``): a master
and two worker JVMs on 127.0.0.1 started by the repository's script, jobs submitted to it with
``spark-submit``, then stopped with nothing left running. No mock: the executors are separate
processes under separate workers, and the test proves both ran tasks.

Skipped only when ``java`` is not on PATH (CI installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from stclusters.cli import app
from stclusters.demo import SAMPLE_MIN_WEIGHT_SHARE_PCT
from stclusters.engines import submit
from stclusters.engines.standalone import (STATE_FILE, ClusterError, StandaloneCluster,
                                           start_cluster, stop_from_state)

pytestmark = pytest.mark.spark_cluster

MODULE = "stclusters.engines.standalone"
USPTO = sorted((SHARED_DATA / "samples" / "uspto").glob("*.xml.gz"))
#: The samples are small: thresholds as the demo scales them.
RANK_ARGS = ["--min-weight-share-pct", str(SAMPLE_MIN_WEIGHT_SHARE_PCT)]
#: Small applications on a busy 2-core machine: wait for both executors before the first
#: task (else one executor may run every task before the other registers), and the C1
#: compiler only: these jobs are seconds long, and the C2 tier's compiling costs more than it
#: saves (the samples' rank on the cluster: 71 s with these options, 117 s without, load ~10).
QUICK_CONF = {"spark.scheduler.minRegisteredResourcesRatio": "1.0",
              "spark.scheduler.maxRegisteredResourcesWaitingTime": "60s",
              "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
              "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}

#: The stand-in application: count rows on 2 partitions, and say for each partition which
#: process ran it (its executor's working dir, under a worker's work dir; its ancestors, among
#: them the worker that launched the executor), with which Python, importing stclusters.
STAND_IN = '''
import json, os, sys
from pyspark.sql import SparkSession


def ancestors():
    pid, chain = os.getpid(), []
    while pid > 1:
        with open(f"/proc/{pid}/stat") as fh:
            pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def where(index, rows):
    import stclusters
    yield {"partition": index, "rows": sum(1 for _ in rows), "cwd": os.getcwd(),
           "ancestors": ancestors(), "python": sys.executable,
           "stclusters": os.path.dirname(stclusters.__file__)}


spark = SparkSession.builder.appName("stclusters-stand-in").getOrCreate()
parts = spark.sparkContext.parallelize(range(int(sys.argv[1])), 2) \\
    .mapPartitionsWithIndex(where).collect()
print("STAND-IN " + json.dumps({"master": spark.sparkContext.master, "partitions": parts}))
spark.stop()
'''


def _java_or_skip() -> None:
    if shutil.which("java") is None and not (
            os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").exists()):
        pytest.skip("java is not on PATH: a standalone Spark cluster needs a JVM "
                    "(apt-get install default-jre-headless)")


def _script(*args: str, timeout_s: float = 180.0) -> subprocess.CompletedProcess:
    """``python -m stclusters.engines.standalone ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", MODULE, *args], capture_output=True, text=True,
                          timeout=timeout_s)


def _processes_in(work_dir: Path) -> list[str]:
    """Processes whose working dir is inside ``work_dir`` (daemons, executors, their Python
    workers all run there), as 'PID cmdline'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            continue
        if cwd == work_dir or work_dir in cwd.parents:
            found.append(f"{entry.name} {cmd}")
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers started by the script (``start``), attached to by its state file."""
    _java_or_skip()
    work_dir = tmp_path_factory.mktemp("spark-2w")
    started = _script("start", "--workers", "2", "--cores", "1", "--memory", "1g",
                      "--work-dir", str(work_dir))
    assert started.returncode == 0, started.stderr
    # stdout is the master URL alone, so that `URL=$(… start)` works in a shell.
    assert re.fullmatch(r"spark://127\.0\.0\.1:\d+\n", started.stdout), started.stdout
    c = StandaloneCluster.from_state(work_dir)
    assert c.master_url == started.stdout.strip()
    yield c
    if (work_dir / STATE_FILE).exists():  # a test failed before stopping it
        stop_from_state(work_dir)


def test_two_workers_alive_on_loopback(cluster):
    workers = cluster.alive_workers()
    assert len(workers) == 2, cluster.status()
    assert {w["host"] for w in workers} == {"127.0.0.1"}
    assert [w["cores"] for w in workers] == [1, 1]
    assert [w["memory"] for w in workers] == [1024, 1024]
    assert len(cluster.pids) == 3 and all(Path(f"/proc/{p}").exists() for p in cluster.pids)
    assert (cluster.log_dir / "master.log").is_file()
    assert sorted(p.name for p in cluster.log_dir.glob("worker-*.log")) == \
        ["worker-1.log", "worker-2.log"]


def test_stand_in_job_runs_on_both_workers(cluster, tmp_path):
    job = tmp_path / "stand_in.py"
    job.write_text(STAND_IN)
    done = cluster.submit([job, "1000"], conf=QUICK_CONF, timeout_s=240)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("STAND-IN "))
    report = json.loads(line.removeprefix("STAND-IN "))
    assert report["master"] == cluster.master_url
    parts = sorted(report["partitions"], key=lambda p: p["partition"])
    assert [p["rows"] for p in parts] == [500, 500]
    # Each partition ran in an executor of a different worker: its working dir is
    # <work dir>/worker-K/<app id>/<executor id>, and the worker's JVM is its ancestor.
    workers = [Path(p["cwd"]).relative_to(cluster.work_dir).parts[0] for p in parts]
    assert sorted(workers) == ["worker-1", "worker-2"], parts
    worker_pids = [[pid for pid in p["ancestors"] if pid in cluster.pids] for p in parts]
    assert sorted(worker_pids) == sorted([pid] for pid in cluster.pids[1:]), \
        (parts, cluster.pids)
    # The executors run the cluster's Python, where stclusters is importable.
    assert {p["python"] for p in parts} == {cluster.python}
    import stclusters
    assert {p["stclusters"] for p in parts} == {os.path.dirname(stclusters.__file__)}


def _tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of a DuckDB workspace file, rows in order (the file's bytes are not
    reproducible even between two DuckDB runs; its contents are)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.sql("SELECT table_name FROM information_schema.tables "
                                       "ORDER BY 1").fetchall()]
        # `runs` holds the manifest (which names the engine) and the stage timings.
        return {n: con.sql(f'SELECT * FROM "{n}" ORDER BY ALL').fetchall()
                for n in names if n != "runs"}
    finally:
        con.close()


def test_rank_submitted_to_the_cluster_matches_duckdb(cluster, tmp_path):
    """``spark-submit submit.py rank … --engine spark`` on the 2-worker cluster writes the
    DuckDB engine's outputs byte for byte; only the manifest's engine differs."""
    assert USPTO, f"no USPTO samples in {SHARED_DATA}"
    inputs = [str(p) for p in USPTO]
    spark_out, duck_out = tmp_path / "spark", tmp_path / "duckdb"
    done = cluster.submit([submit.__file__, "rank", *inputs, "--out", str(spark_out),
                           "--engine", "spark", *RANK_ARGS], conf=QUICK_CONF, timeout_s=300)
    assert done.returncode == 0, done.stderr[-3000:]
    duck = CliRunner().invoke(app, ["rank", *inputs, "--out", str(duck_out), *RANK_ARGS])
    assert duck.exit_code == 0, duck.output

    files = sorted(str(p.relative_to(duck_out)) for p in duck_out.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(spark_out)) for p in spark_out.rglob("*")
                  if p.is_file()) == files
    assert {"ranking.csv", "points.parquet", "clusters.parquet", "manifest.json"} <= set(files)
    for name in files:
        if name not in ("manifest.json", "workspace.duckdb"):
            assert (spark_out / name).read_bytes() == (duck_out / name).read_bytes(), name
    if "workspace.duckdb" in files:
        assert _tables(spark_out / "workspace.duckdb") == _tables(duck_out / "workspace.duckdb")
    spark_m = json.loads((spark_out / "manifest.json").read_text())
    duck_m = json.loads((duck_out / "manifest.json").read_text())
    assert spark_m["engine"]["name"] == "spark" and duck_m["engine"]["name"] == "duckdb"
    assert spark_m["engine"]["master"] == cluster.master_url
    assert {**spark_m, "engine": None} == {**duck_m, "engine": None}
    # Both workers' executors ran tasks of the rank: each executor's log is in
    # <work dir>/worker-K/<app id>/<executor id>/stderr.
    app_ids = [a["id"] for a in cluster.status()["completedapps"] if a["name"] == "stclusters"]
    assert len(app_ids) == 1, cluster.status()["completedapps"]
    for worker in ("worker-1", "worker-2"):
        logs = list((cluster.work_dir / worker / app_ids[0]).glob("*/stderr"))
        assert any("Finished task" in log.read_text(errors="replace") for log in logs), worker


def test_stop_leaves_no_process(cluster):
    assert _processes_in(cluster.work_dir), "the daemons should be running before stop"
    stopped = _script("stop", "--work-dir", str(cluster.work_dir), timeout_s=120)
    assert stopped.returncode == 0, stopped.stderr
    assert _processes_in(cluster.work_dir) == []
    assert not any(Path(f"/proc/{p}").exists() and "java" in Path(f"/proc/{p}/cmdline")
                   .read_bytes().decode(errors="replace") for p in cluster.pids)
    assert not (cluster.work_dir / STATE_FILE).exists()
    with pytest.raises(ClusterError, match="does not answer"):
        cluster.status(timeout_s=2.0)
    # Stopping again is refused in one line that says why, with exit code 2.
    again = _script("stop", "--work-dir", str(cluster.work_dir), timeout_s=60)
    assert again.returncode == 2
    assert again.stderr.startswith("error: ") and f"no {STATE_FILE}" in again.stderr


def test_a_worker_that_cannot_start_is_reported_and_nothing_is_left(tmp_path):
    """A bad worker setting: the error names the worker's log, and the master started for
    it is stopped too."""
    _java_or_skip()
    with pytest.raises(ClusterError, match=r"worker-1 exited .*") as info:
        start_cluster(workers=1, memory_per_worker="lots", work_dir=tmp_path, timeout_s=120)
    assert str(tmp_path / "logs" / "worker-1.log") in info.value.hint
    assert _processes_in(tmp_path) == []


def test_help_shows_an_example():
    shown = _script("start", "--help", timeout_s=60)
    assert shown.returncode == 0
    assert "example:" in shown.stdout and "stop --work-dir" in shown.stdout
