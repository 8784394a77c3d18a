"""The Spark engine's rough edges: an unreachable master, the JVM's start-up noise, a
DuckDB file given as the Spark workspace, glob characters in store paths, and the
temporary folders that killed reading tasks leave in a store.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest

import stclusters
from stclusters.engines import engine
from stclusters.engines import spark as sp
from stclusters.engines._spark_store import sweep_stale
from stclusters.errors import ParameterError

from conftest import SHARED_DATA

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (java)")

#: The smallest shared sample: the JVM's start, not the reading, is what these runs show.
SMALL = SHARED_DATA / "samples" / "uspto" / "uspto_ipg120327.196.xml.gz"

CLI = [sys.executable, "-m", "stclusters", "rank"]


def _run(args: list[str], tmp_path: Path, *, python: str | None = None
         ) -> subprocess.CompletedProcess:
    """The CLI (or ``python -c``) in a fresh process (a JVM of its own), in ``tmp_path``."""
    cmd = [sys.executable, "-c", python] if python is not None else CLI + args
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_GATEWAY_PORT",
                                                            "PYSPARK_GATEWAY_SECRET")}
    env["COLUMNS"] = "400"  # one error line stays one line
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


# ----------------------------------------------------------------------------- 1. master


def _refused_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_master_says_why_per_host():
    port = _refused_port()
    why = sp._unreachable_master(f"spark://127.0.0.1:{port}")
    assert why == f"127.0.0.1:{port}: connection refused (nothing listens on that port)"


def test_one_live_master_of_a_high_availability_list_is_enough():
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        port = live.getsockname()[1]
        dead = _refused_port()
        assert sp._unreachable_master(f"spark://127.0.0.1:{dead},127.0.0.1:{port}") is None
    both = sp._unreachable_master(f"spark://127.0.0.1:{dead},127.0.0.1:{port}")
    assert both is not None
    assert both.count("connection refused") == 2 and f"127.0.0.1:{dead}:" in both


@pytest.mark.parametrize("error, cause", [
    (socket.gaierror(-2, "Name or service not known"), "unknown host"),
    (TimeoutError("timed out"), "no answer within 3 s"),
    (OSError(113, "No route to host"), "no route to host")])
def test_unreachable_master_causes(monkeypatch, error, cause):
    def connect(address, timeout):
        raise error

    monkeypatch.setattr(socket, "create_connection", connect)
    assert sp._unreachable_master("spark://head.example:7077") == f"head.example:7077: {cause}"


@pytest.mark.parametrize("master", ["local[2]", "local[*]", "yarn", "k8s://https://h:6443",
                                    "spark://no-port", "spark://h:77x"])
def test_other_masters_are_not_checked(monkeypatch, master):
    def connect(address, timeout):
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket, "create_connection", connect)
    assert sp._unreachable_master(master) is None


@needs_java
def test_cli_with_an_unreachable_master_fails_in_one_line(tmp_path):
    port = _refused_port()
    done = _run([str(SMALL), "--out", "out", "--engine", "spark", "--master",
                 f"spark://127.0.0.1:{port}"], tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot reach the Spark master spark://127.0.0.1:{port}: "
                      f"127.0.0.1:{port}: connection refused (nothing listens on that port)"]
    assert "hint: start the master" in out
    # The JVM was not started: no Java output at all.
    for java in ("Exception", "at org.apache", "py4j", "log4j", "WARN"):
        assert java not in out
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 2. noise


@needs_java
def test_cli_on_local_spark_prints_no_jvm_noise(tmp_path):
    done = _run([str(SMALL), "--out", "out", "--engine", "spark", "--master", "local[2]",
                 "--patent-types", "all"],
                tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "ranking.csv").is_file()
    # Spark's "26/12/01 … WARN Utils: …", the JVM's "WARNING: Using incubator modules",
    # log4j's banners (stclusters' own advice is "warning: …", lower case).
    noisy = [line for line in done.stderr.splitlines()
             if "WARN" in line or "log4j" in line.lower() or "Setting default log level" in line]
    assert noisy == []
    assert "warning: " in done.stderr  # stclusters' own stderr is not swallowed
    assert "WARN " not in done.stdout


@needs_java
def test_jvm_errors_still_reach_stderr(tmp_path):
    """Quiet is errors only: a JVM logger's ERROR is printed, its WARN is not."""
    script = (
        "from stclusters.engines import engine\n"
        "from stclusters.engines.spark import session\n"
        "s = session(engine('spark', master='local[1]'))\n"
        "log = s._jvm.org.apache.logging.log4j.LogManager.getLogger('stclusters.check')\n"
        "log.warn('a warning to hide')\n"
        "log.error('an error to show')\n"
        "s.stop()\n")
    done = _run([], tmp_path, python=script)
    assert done.returncode == 0, done.stderr
    assert "ERROR check: an error to show" in done.stderr
    assert "a warning to hide" not in done.stderr


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir(exist_ok=True)
    return {"SPARK_CONF_DIR": str(conf_dir), **extra}


def test_quiet_logging_is_a_log4j2_file_given_to_the_driver(tmp_path):
    got = sp._quiet_driver_conf({"spark.driver.extraJavaOptions": "-Dmine=1"}, _env(tmp_path))
    opts = got["spark.driver.extraJavaOptions"]
    assert opts.startswith("-Dmine=1 -Dlog4j2.configurationFile=file:")
    path = Path(unquote(urlsplit(opts.split("-Dlog4j2.configurationFile=", 1)[1]).path))
    text = path.read_text()
    assert "rootLogger.level = error" in text and "target = SYSTEM_ERR" in text


@pytest.mark.parametrize("setting", [
    ("conf", {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=/etc/mine.xml"}),
    ("env", {"SPARK_SUBMIT_OPTS": "-Dlog4j.configurationFile=x"}),
    ("env", {"PYSPARK_SUBMIT_ARGS": "--driver-java-options -Dlog4j2.debug pyspark-shell"}),
    ("env", {"LOG4J_CONFIGURATION_FILE": "/etc/mine.xml"}),
    ("file", "log4j2.properties"),
    ("file", "log4j2.xml"),
    ("defaults", "spark.driver.extraJavaOptions -XX:+UseG1GC\n")])
def test_the_users_own_log_config_is_left_alone(tmp_path, setting):
    how, value = setting
    env = _env(tmp_path, **(value if how == "env" else {}))
    if how == "file":
        (tmp_path / "conf" / value).write_text("rootLogger.level = info\n")
    if how == "defaults":
        (tmp_path / "conf" / "spark-defaults.conf").write_text(value)
    assert sp._quiet_driver_conf(value if how == "conf" else {}, env) == {}


def test_jvm_stderr_is_forwarded_without_the_incubator_line(tmp_path):
    sink = tmp_path / "stderr"
    stream = io.BytesIO(b"WARNING: Using incubator modules: jdk.incubator.vector\n"
                        b"Error: JAVA_HOME is not set\n"
                        b"26/12/01 11:18:40 ERROR Executor: task failed\n")
    fd = os.open(sink, os.O_WRONLY | os.O_CREAT)
    try:
        sp._forward_stderr(stream, fd=fd)
    finally:
        os.close(fd)
    assert sink.read_bytes() == (b"Error: JAVA_HOME is not set\n"
                                 b"26/12/01 11:18:40 ERROR Executor: task failed\n")


# ----------------------------------------------------------------------------- 3. workspace


def test_a_duckdb_workspace_file_is_refused_with_the_other_problems(tmp_path):
    ws = tmp_path / "pv.duckdb"
    duckdb.connect(str(ws)).close()
    with pytest.raises(ParameterError) as err:
        engine("spark", workspace=str(ws), conf={"executor.memory": "1g"})
    text = str(err.value)
    assert f"Spark workspace {ws} is a DuckDB workspace file" in text
    assert "executor.memory" in text  # gathered with the other problems
    assert "--workspace" in err.value.hint


def test_a_duckdb_file_under_another_name_is_named_so(tmp_path):
    ws = tmp_path / "store"
    duckdb.connect(str(ws)).close()
    with pytest.raises(ParameterError, match="is a DuckDB workspace file"):
        engine("spark", workspace=str(ws))


def test_other_non_folder_workspaces_are_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(ParameterError, match=f"Spark workspace {notes} is not a folder"):
        engine("spark", workspace=str(notes))
    below = notes / "ws"
    with pytest.raises(ParameterError, match=f"{notes} is a file"):
        engine("spark", workspace=str(below))


def test_folders_new_paths_uris_and_duckdb_engine_pass(tmp_path):
    (tmp_path / "ws").mkdir()
    for ws in (tmp_path / "ws", tmp_path / "new" / "ws.duckdb", "s3a://bucket/ws"):
        assert engine("spark", workspace=str(ws)).workspace == str(ws)
    db = tmp_path / "pv.duckdb"
    duckdb.connect(str(db)).close()
    assert engine("duckdb", workspace=str(db)).workspace == str(db)


def test_rank_refuses_a_duckdb_workspace_before_spark_starts(tmp_path):
    ws = tmp_path / "pv.duckdb"
    duckdb.connect(str(ws)).close()
    with pytest.raises(ParameterError, match="DuckDB workspace file"):
        stclusters.rank([SMALL], engine="spark", workspace=ws)


# ----------------------------------------------------------------------------- 4. globs


def test_hadoop_literal_escapes_glob_characters():
    assert sp._hadoop_literal("/data/a [b] {c}/x*?.parquet") == \
        r"/data/a \[b\] \{c\}/x\*\?.parquet"
    assert sp._hadoop_literal(r"/odd\name") == r"/odd\\name"
    assert sp._hadoop_literal("s3a://bucket/part_000.gz") == "s3a://bucket/part_000.gz"


@pytest.fixture(scope="module")
def spark():
    from test_spark_engine import SPARK

    return sp.session(SPARK)


@needs_java
def test_spark_writes_and_reads_folders_with_glob_characters(spark, tmp_path):
    """Spark's writer takes the folder literally; its reader needs the escaped path, and
    without it reads another folder (``d[ab]`` matches ``da``)."""
    odd, decoy = tmp_path / "d[ab] {c,e} *?", tmp_path / "da {c,e} *?"
    spark.range(3).coalesce(1).write.parquet(str(odd))
    spark.range(10, 12).coalesce(1).write.parquet(str(decoy))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([odd.name, decoy.name])
    part = str(next(odd.glob("*.parquet")))
    got = spark.read.parquet(sp._hadoop_literal(part)).collect()
    assert sorted(r.id for r in got) == [0, 1, 2]
    folder = spark.read.parquet(sp._hadoop_literal(str(odd))).collect()
    assert sorted(r.id for r in folder) == [0, 1, 2]
    # Unescaped, the same path is a pattern: it misses the folder itself.
    try:
        wrong = sorted(r.id for r in spark.read.parquet(str(odd)).collect())
    except Exception:  # noqa: BLE001 - Spark: path does not exist
        wrong = None
    assert wrong != [0, 1, 2]


@needs_java
def test_rank_in_a_workspace_with_glob_characters_agrees_with_duckdb(spark, tmp_path):
    from test_spark_engine import SAMPLES, SPARK, _assert_same_outputs

    ws = tmp_path / "a [b] {c}"
    duck = stclusters.rank(SAMPLES[:2])
    spark_res = stclusters.rank(SAMPLES[:2], engine=SPARK, workspace=ws)
    duck.write(tmp_path / "duckdb")
    spark_res.write(tmp_path / "spark")
    _assert_same_outputs(tmp_path)
    assert spark_res.ranking.num_rows > 0
    assert len([p for p in (ws / "files").iterdir() if not p.name.startswith(".")]) == 2


# ----------------------------------------------------------------------------- 5. sweep


def _tmp_folder(files: Path, *, age_s: float, inner_age_s: float | None = None) -> Path:
    d = files / f".tmp-{'ab' * 32}-{uuid.uuid4().hex}"
    d.mkdir(parents=True)
    (d / "documents.parquet").write_bytes(b"partial")
    now = time.time()
    os.utime(d / "documents.parquet", (now, now - (age_s if inner_age_s is None
                                                   else inner_age_s)))
    os.utime(d, (now, now - age_s))
    return d


def test_sweep_stale_removes_old_temporaries_only(tmp_path):
    files = tmp_path / "store" / "files"
    old = _tmp_folder(files, age_s=7 * 3600)
    young = _tmp_folder(files, age_s=60)
    busy = _tmp_folder(files, age_s=7 * 3600, inner_age_s=60)  # written into a minute ago
    done = files / ("cd" * 32)
    done.mkdir()
    (done / "meta.json").write_text("{}")
    os.utime(done, (0, 0))
    other = files / ".tmp-notours"
    other.mkdir()
    os.utime(other, (0, 0))
    link = files / f".tmp-{'ef' * 32}-{uuid.uuid4().hex}"
    link.symlink_to(done, target_is_directory=True)

    assert sweep_stale(str(tmp_path / "store")) == [str(old)]
    assert not old.exists()
    assert young.is_dir() and busy.is_dir() and other.is_dir()
    assert (done / "meta.json").is_file() and link.is_symlink()
    # A lower threshold takes the young ones too.
    assert sorted(sweep_stale(str(tmp_path / "store"), older_than_s=1)) == sorted(
        [str(young), str(busy)])


def test_sweep_stale_of_a_store_without_files(tmp_path):
    assert sweep_stale(str(tmp_path / "none")) == []
