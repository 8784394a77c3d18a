"""A real standalone Spark cluster on one machine: one master and N workers on 127.0.0.1.

Started with pyspark's own launcher (``bin/spark-class org.apache.spark.deploy.master.Master``
and ``…deploy.worker.Worker``; the pip package has no ``sbin/start-*.sh`` for them), each
process a JVM of its own on free loopback ports, each worker with its own work dir, every log
in a file under the cluster's work dir. Jobs go to it with pyspark's ``bin/spark-submit``.
This is how the test suite and the benchmarks prove that the Spark engine gives the same
answer on a multi-process cluster as on DuckDB, without a mock and without the network.

From Python::

    from stclusters.engines.standalone import start_cluster

    with start_cluster(workers=2) as cluster:
        done = cluster.submit(["job.py", "--rows", "100"])
        print(cluster.master_url, done.returncode)

From a shell (the state file in the work dir lets ``stop`` find the processes)::

    python -m stclusters.engines.standalone start --workers 2 --work-dir /tmp/spark-2w
    spark-submit --master spark://127.0.0.1:PORT job.py
    python -m stclusters.engines.standalone stop --work-dir /tmp/spark-2w
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stclusters.errors import StclustersError

#: JVM main classes of the two daemons (what ``/proc/PID/cmdline`` must name for ``stop`` to
#: signal a PID read from a state file: a PID reused by another program is left alone).
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Name of the state file ``start`` writes into the work dir and ``stop`` reads.
STATE_FILE = "cluster.json"
#: Seconds to wait for the master to list every worker ALIVE: a cold JVM start is 3–8 s here
#: (2 cores, other Spark jobs running), so 90 s only trips when something is wrong.
DEFAULT_START_TIMEOUT_S = 90.0
#: JVM options of the master and worker daemons: they only pass messages, so the C1 compiler
#: alone and the serial collector are enough, and halve their start-up CPU (measured here on
#: 2 busy cores: 5.2 → 2.9 CPU s per daemon, 20 → 11 s until 2 workers are ALIVE).
#: Executors and the driver are not affected (they are sized by the application).
DAEMON_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Seconds between SIGTERM and SIGKILL when stopping a daemon (the worker's shutdown hook
#: kills its executors first, which takes a second or two).
DEFAULT_STOP_GRACE_S = 15.0


class ClusterError(StclustersError):
    """The cluster could not be started, reached or stopped; the message names the logs."""


def spark_home() -> Path:
    """The Spark installation that pyspark brings: the ``pyspark`` package directory.

    Returns
    -------
    Path
        The directory holding ``bin/spark-class``, ``bin/spark-submit`` and ``jars/``.

    Raises
    ------
    ClusterError
        pyspark is not installed, or its package has no ``bin/spark-class``.
    """
    try:
        import pyspark  # noqa: PLC0415 (an optional dependency: imported only when used)
    except ImportError as exc:
        raise ClusterError("pyspark is not installed", hint="pip install pyspark") from exc
    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").is_file():
        raise ClusterError(f"{home}: pyspark has no bin/spark-class",
                           hint="reinstall pyspark from PyPI (pip install --force pyspark)")
    return home


def _free_ports(count: int, host: str) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` now.

    All sockets stay bound until every port is chosen, so no port is handed out twice; the
    window between closing them and the JVMs binding is short, and a lost race shows as a
    daemon that exits at once, reported with its log.
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _last_error(path: Path) -> str:
    """The last ERROR or exception line of a daemon's log (else its last line), for a
    one-line error message; '' if the log cannot be read."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()
                 if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln or "Error:" in ln]
    return (errors or lines or [""])[-1][:300]


def _group_alive(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid`` (zombies count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's group now: not ours to wait for
        return False
    # killpg(…, 0) also succeeds for a group whose only member is an unreaped zombie: look.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the ")" closing the command name: state ppid pgrp …
        rest = stat[stat.rfind(")") + 2:].split()
        if int(rest[2]) == pgid and rest[0] != "Z":
            return True
    return False


def _cmdline(pid: int) -> str:
    """``/proc/PID/cmdline`` with spaces, or '' if there is no such process."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


@dataclass
class StandaloneCluster:
    """A running standalone cluster: its master URL, daemon PIDs, logs; submit and stop.

    Each daemon leads a process group of its own (its executor JVMs join it), so :meth:`stop`
    signals the whole group; what runs in an executor's dir is looked for too, so that
    :meth:`stop` can verify that nothing of the cluster is left.

    Attributes
    ----------
    master_url : str
        ``spark://127.0.0.1:PORT``, what ``--master`` takes.
    webui_url : str
        The master's web UI (``/json/`` lists the workers and applications).
    work_dir : Path
        Root of the cluster's files: ``logs/``, ``worker-K/`` (executors' dirs), ``conf/``,
        and the state file when started from the command line.
    python : str
        The Python the executors and the submitted driver run.
    pids : list of int
        Master first, then the workers.
    """

    master_url: str
    webui_url: str
    work_dir: Path
    python: str
    pids: list[int]
    env: dict[str, str] = field(repr=False)
    _procs: list[subprocess.Popen | None] = field(default_factory=list, repr=False)
    stopped: bool = False

    @property
    def log_dir(self) -> Path:
        """The folder of the daemons' logs (``master.log``, ``worker-K.log``); an executor's
        log is ``<work dir>/worker-K/<app id>/<executor id>/stderr``."""
        return self.work_dir / "logs"

    @property
    def host(self) -> str:
        """The address the daemons bind to (the driver binds to it too)."""
        return self.master_url.removeprefix("spark://").rsplit(":", 1)[0]

    def __enter__(self) -> StandaloneCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status(self, *, timeout_s: float = 5.0) -> dict:
        """The master's JSON status (workers with their state, applications, cores, memory).

        Raises
        ------
        ClusterError
            The master's web UI does not answer.
        """
        return _master_json(self.webui_url, timeout_s=timeout_s)

    def alive_workers(self) -> list[dict]:
        """The workers the master lists as ALIVE (id, host, port, cores, memory)."""
        return [w for w in self.status().get("workers", []) if w.get("state") == "ALIVE"]

    def submit(self, args: Sequence[str | os.PathLike], *, conf: Mapping[str, str] | None = None,
               env: Mapping[str, str] | None = None, timeout_s: float = 600.0,
               ) -> subprocess.CompletedProcess:
        """Run ``spark-submit --master <this cluster> [--conf K=V]… <args>`` (client mode).

        Parameters
        ----------
        args
            The application file and its arguments (spark-submit options such as
            ``--py-files`` may come first).
        conf
            Spark settings for this application (``--conf KEY=VALUE``). Unless set here, the
            driver binds to the cluster's host, runs the cluster's Python, and has no web UI.
        env
            Extra environment variables for spark-submit (and so the driver).
        timeout_s
            Seconds before the submit (driver and all) is killed and ``TimeoutExpired``
            raised.

        Returns
        -------
        subprocess.CompletedProcess
            ``returncode``, ``stdout`` and ``stderr`` as text; a failed application is a
            non-zero ``returncode``, not an exception.
        """
        if self.stopped:
            raise ClusterError(f"{self.master_url}: the cluster is stopped",
                               hint="start a new one with start_cluster()")
        settings = {"spark.driver.host": self.host, "spark.driver.bindAddress": self.host,
                    # Others run Spark on this machine: no driver UI to fight over port 4040.
                    "spark.ui.enabled": "false",
                    "spark.pyspark.python": self.python,
                    "spark.pyspark.driver.python": self.python}
        settings.update(conf or {})
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", self.master_url]
        for key, value in settings.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [os.fspath(a) for a in args]
        run_env = {**self.env, **(env or {})}
        # spark-submit starts a JVM that starts the Python driver: a group of their own lets a
        # timeout kill all of them, not only the launcher.
        # The caller's working dir: relative paths in ``args`` mean what the caller meant.
        proc = subprocess.Popen(cmd, env=run_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout_s, output=out, stderr=err) from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def stop(self, *, grace_s: float = DEFAULT_STOP_GRACE_S) -> list[int]:
        """Stop the workers, then the master: SIGTERM, wait ``grace_s``, then SIGKILL.

        Each daemon's whole process group is signalled (its executors with it). For a
        cluster attached with :meth:`from_state`, a PID is signalled only while its command
        line still names a Spark master or worker, so a PID the system has since given to
        another program is left alone.

        Returns
        -------
        list of int
            The daemon PIDs that were stopped.

        Raises
        ------
        ClusterError
            A process of the cluster is still there after SIGKILL (names its PID).
        """
        if self.stopped:
            return []
        # Workers first, so that the master does not log them as lost and their shutdown
        # hooks can end their executors while the master still answers.
        stopped = []
        for i in list(range(1, len(self.pids))) + [0]:
            pid = self.pids[i]
            proc = self._procs[i] if i < len(self._procs) else None
            if proc is None and not any(c in _cmdline(pid) for c in (MASTER_CLASS,
                                                                      WORKER_CLASS)):
                continue  # attached, and this PID is no longer one of our daemons
            _stop_group(pid, proc, grace_s=grace_s)
            stopped.append(pid)
        # PySpark's Python daemons put themselves in process groups of their own; they end
        # when their executor does, but look: anything still running in an executor's dir
        # (<work dir>/worker-K/<app id>/<executor id>) is this cluster's, and is stopped.
        _stop_stragglers(self.work_dir, grace_s=grace_s)
        left = [pid for pid in stopped if _group_alive(pid)] + _executor_processes(
            self.work_dir)
        if left:
            raise ClusterError(f"{self.master_url}: processes still running after SIGKILL: "
                               f"{left}", hint=f"see {self.log_dir}; kill them by PID")
        self.stopped = True
        with contextlib.suppress(FileNotFoundError):
            (self.work_dir / STATE_FILE).unlink()
        return stopped

    def state(self) -> dict:
        """What ``stop`` needs to find the cluster again from another process."""
        return {"master_url": self.master_url, "webui_url": self.webui_url,
                "work_dir": str(self.work_dir), "python": self.python, "pids": self.pids,
                "log_dir": str(self.log_dir)}

    @classmethod
    def from_state(cls, work_dir: str | os.PathLike) -> StandaloneCluster:
        """Attach to a cluster that ``start`` (another process) left running in ``work_dir``:
        submit to it, read its status, stop it.

        Raises
        ------
        ClusterError
            No state file in ``work_dir``.
        """
        root = Path(work_dir).resolve()
        state = _read_state(root)
        host = str(state["master_url"]).removeprefix("spark://").rsplit(":", 1)[0]
        env = _cluster_env(conf_dir=root / "conf", host=host, python=state["python"],
                           daemon_memory="512m")  # only the daemons read it
        return cls(master_url=state["master_url"], webui_url=state["webui_url"],
                   work_dir=root, python=state["python"], pids=[int(p) for p in state["pids"]],
                   env=env)

    def write_state(self) -> Path:
        """Write :meth:`state` as ``cluster.json`` in the work dir; returns its path."""
        path = self.work_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2) + "\n")
        tmp.replace(path)
        return path


def _stop_group(pgid: int, proc: subprocess.Popen | None, *, grace_s: float) -> None:
    """SIGTERM process group ``pgid``, wait up to ``grace_s``, then SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()  # reap our own child, or it stays a zombie in the group
            if not _group_alive(pgid):
                return
            time.sleep(0.1)


def _executor_processes(work_dir: Path) -> list[int]:
    """PIDs of live processes whose working dir is an executor's dir of this cluster."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        rel = cwd.parts[len(work_dir.parts):] if cwd.is_relative_to(work_dir) else ()
        if len(rel) >= 2 and rel[0].startswith("worker-") and rel[1].startswith("app-") \
                and state != "Z":
            found.append(int(entry.name))
    return found


def _stop_stragglers(work_dir: Path, *, grace_s: float) -> None:
    """Give executor processes left after their worker a moment to exit, then SIGTERM and
    SIGKILL them (by PID: each was checked to run in one of this cluster's executor dirs)."""
    for sig, wait_s in ((None, 3.0), (signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        pids = _executor_processes(work_dir)
        for pid in pids if sig is not None else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = _executor_processes(work_dir)
        if not pids:
            return


def _master_json(webui_url: str, *, timeout_s: float) -> dict:
    """GET ``<webui>/json/`` on loopback, bypassing any proxy set in the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{webui_url}/json/", timeout=timeout_s) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ClusterError(f"{webui_url}: the master's web UI does not answer ({exc})",
                           hint="is the cluster running? see its logs/master.log") from exc


def _launch(cls: str, args: list[str], *, env: dict[str, str], log: Path,
            cwd: Path) -> subprocess.Popen:
    """Start one daemon through ``spark-class`` in a process group of its own, logging to
    ``log`` (stdout and stderr: Spark's default log4j setup writes to stderr)."""
    with open(log, "ab") as fh:
        return subprocess.Popen([str(spark_home() / "bin" / "spark-class"), cls, *args],
                                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _cluster_env(*, conf_dir: Path, host: str, python: str, daemon_memory: str,
                 ) -> dict[str, str]:
    """The environment of the daemons and of ``spark-submit``: this process's, plus ours."""
    env = {**os.environ,
           "SPARK_HOME": str(spark_home()),
           # A conf dir of our own: a spark-env.sh or spark-defaults.conf the user keeps
           # elsewhere must not change the cluster the tests rely on.
           "SPARK_CONF_DIR": str(conf_dir),
           "SPARK_LOCAL_IP": host,
           "SPARK_LOCAL_HOSTNAME": host,
           "SPARK_DAEMON_MEMORY": daemon_memory,
           # The user's own daemon options come last, so they win over ours.
           "SPARK_DAEMON_JAVA_OPTS": " ".join(filter(None, (
               DAEMON_JAVA_OPTS, os.environ.get("SPARK_DAEMON_JAVA_OPTS")))),
           "PYSPARK_PYTHON": python,
           "PYSPARK_DRIVER_PYTHON": python}
    # A SPARK_MASTER_* / SPARK_WORKER_* variable the user has set would override our flags.
    for key in list(env):
        if key.startswith(("SPARK_MASTER_", "SPARK_WORKER_")):
            del env[key]
    return env


def start_cluster(*, workers: int = 2, cores_per_worker: int = 1,
                  memory_per_worker: str = "1g", host: str = "127.0.0.1",
                  work_dir: str | os.PathLike | None = None, python: str = sys.executable,
                  timeout_s: float = DEFAULT_START_TIMEOUT_S,
                  daemon_memory: str = "512m") -> StandaloneCluster:
    """Start a standalone master and ``workers`` workers on ``host``; wait until all are ALIVE.

    Parameters
    ----------
    workers
        Number of worker JVMs (each hosts one executor per application by default).
    cores_per_worker
        Cores each worker offers (``--cores``).
    memory_per_worker
        Memory each worker offers to executors (``--memory``, e.g. ``1g``, ``1536m``); an
        application's ``spark.executor.memory`` (default 1g) must fit in it.
    host
        Address every daemon binds to; loopback by default, so nothing is reachable from
        outside the machine.
    work_dir
        Folder for logs, worker dirs and the Spark conf dir; a new temporary folder when
        None (it is left in place after :meth:`StandaloneCluster.stop`, with the logs).
    python
        The Python that executors and the driver run (``PYSPARK_PYTHON``): the one where
        stclusters is installed.
    timeout_s
        Seconds to wait for the master to list every worker ALIVE.
    daemon_memory
        JVM heap of the master and of each worker daemon (``SPARK_DAEMON_MEMORY``; executors
        are separate JVMs sized by the application).

    Returns
    -------
    StandaloneCluster
        Running; use it as a context manager or call ``stop()``.

    Raises
    ------
    ClusterError
        A daemon exited, or the workers were not ALIVE in time: the message says which and
        points to its log; every process started is stopped before raising.
    """
    if workers < 1 or cores_per_worker < 1:
        raise ClusterError(f"workers={workers}, cores_per_worker={cores_per_worker}: "
                           "both must be at least 1", hint="e.g. --workers 2 --cores 1")
    if not _java_available():
        raise ClusterError("java is not on PATH (Spark needs a JVM)",
                           hint="install Java 17, e.g. apt-get install default-jre-headless")
    spark_home()  # fail here, with the hint, if pyspark is missing
    root = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(
        prefix="stclusters-spark-"))
    root = root.resolve()
    logs = root / "logs"
    conf_dir = root / "conf"
    for d in (root, logs, conf_dir):
        d.mkdir(parents=True, exist_ok=True)
    # The master's REST submission server listens on the fixed port 6066 by default: off,
    # so that two clusters (or another Spark user here) do not collide on it.
    (conf_dir / "spark-defaults.conf").write_text("spark.master.rest.enabled false\n")
    if (root / STATE_FILE).exists():
        raise ClusterError(f"{root}: holds the state file of a running cluster ({STATE_FILE})",
                           hint=f"stop it first: python -m stclusters.engines.standalone "
                                f"stop --work-dir {root}")
    env = _cluster_env(conf_dir=conf_dir, host=host, python=python,
                       daemon_memory=daemon_memory)
    # Workers take port 0 (any free port; the master learns it when they register), which
    # leaves no window for another program to take a port chosen here.
    master_port, webui_port = _free_ports(2, host)
    master_url = f"spark://{host}:{master_port}"
    webui_url = f"http://{host}:{webui_port}"
    procs: list[subprocess.Popen] = []
    logs_of: list[Path] = []
    cluster = StandaloneCluster(master_url=master_url, webui_url=webui_url, work_dir=root,
                                python=python, pids=[], env=env, _procs=procs)
    deadline = time.monotonic() + timeout_s
    try:
        logs_of.append(logs / "master.log")
        procs.append(_launch(MASTER_CLASS, ["--host", host, "--port", str(master_port),
                                            "--webui-port", str(webui_port)],
                             env=env, log=logs_of[0], cwd=root))
        cluster.pids.append(procs[0].pid)
        # Workers start once the master is ALIVE: one that registers while the master is
        # still recovering is ignored and retries only 5-15 s later.
        _wait_alive(cluster, procs, logs_of, workers=0, deadline=deadline, timeout_s=timeout_s)
        for k in range(workers):
            wdir = root / f"worker-{k + 1}"
            wdir.mkdir(exist_ok=True)
            logs_of.append(logs / f"worker-{k + 1}.log")
            procs.append(_launch(
                WORKER_CLASS,
                ["--host", host, "--port", "0", "--webui-port", "0",
                 "--cores", str(cores_per_worker), "--memory", memory_per_worker,
                 "--work-dir", str(wdir), master_url],
                env=env, log=logs_of[-1], cwd=wdir))
            cluster.pids.append(procs[-1].pid)
        _wait_alive(cluster, procs, logs_of, workers=workers, deadline=deadline,
                    timeout_s=timeout_s)
    except BaseException:
        # Never leave half a cluster behind (Ctrl-C included).
        with contextlib.suppress(ClusterError):
            cluster.stop(grace_s=5.0)
        raise
    return cluster


def _wait_alive(cluster: StandaloneCluster, procs: list[subprocess.Popen], logs: list[Path],
                *, workers: int, deadline: float, timeout_s: float) -> None:
    """Poll the master's JSON until it and ``workers`` workers are ALIVE; fail fast if a
    daemon exits, and at ``deadline`` (monotonic; ``timeout_s`` after the start) with the
    logs to read."""
    alive: list[dict] = []
    while True:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                raise ClusterError(
                    f"{log.stem} exited with code {proc.returncode} while starting: "
                    f"{_last_error(log)}",
                    hint=f"see {log} (a port taken meanwhile, too little memory?)")
        with contextlib.suppress(ClusterError):
            status = _master_json(cluster.webui_url, timeout_s=2.0)
            alive = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
            if status.get("status") == "ALIVE" and len(alive) >= workers:
                return
        if time.monotonic() > deadline:
            what = (f"{len(alive)} of {workers} workers ALIVE" if workers
                    else "the master is not ALIVE")
            raise ClusterError(f"{cluster.master_url}: {what} after {timeout_s:.0f} s",
                               hint=f"see the logs in {cluster.log_dir}")
        time.sleep(0.25)


def _java_available() -> bool:
    """Whether a JVM can be found the way spark-class looks for one."""
    import shutil  # noqa: PLC0415

    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return True
    return shutil.which("java") is not None


def _read_state(root: Path) -> dict:
    """The state file ``start`` wrote into ``root``."""
    try:
        return json.loads((root / STATE_FILE).read_text())
    except FileNotFoundError as exc:
        raise ClusterError(f"{root}: no {STATE_FILE}: no cluster was started here, or it is "
                           "stopped", hint="give the --work-dir that `start` printed") from exc
    except (OSError, ValueError) as exc:
        raise ClusterError(f"{root / STATE_FILE}: unreadable ({exc})",
                           hint="stop the processes by PID (see logs/), then remove it") from exc


def stop_from_state(work_dir: str | os.PathLike, *, grace_s: float = DEFAULT_STOP_GRACE_S,
                    ) -> list[int]:
    """Stop the cluster whose state file is in ``work_dir`` (started by another process);
    see :meth:`StandaloneCluster.stop`. Returns the daemon PIDs stopped.

    Raises
    ------
    ClusterError
        No state file, or a process is still there after SIGKILL.
    """
    return StandaloneCluster.from_state(work_dir).stop(grace_s=grace_s)


_EXAMPLE = """\
example:
  python -m stclusters.engines.standalone start --workers 2 --work-dir /tmp/spark-2w
  spark-submit --master spark://127.0.0.1:PORT src/stclusters/engines/submit.py \\
      rank grants/*.xml.gz --out out --engine spark
  python -m stclusters.engines.standalone stop --work-dir /tmp/spark-2w
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``start`` a cluster that outlives this command (prints its URL), or ``stop`` it."""
    parser = argparse.ArgumentParser(
        prog="python -m stclusters.engines.standalone",
        description="A standalone Spark cluster (one master, N workers) on this machine, "
                    "started with pyspark's own spark-class; for tests and benchmarks.",
        epilog=_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a master and workers; print the master URL",
                           epilog=_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    start.add_argument("--workers", type=int, default=2, help="worker JVMs (default 2)")
    start.add_argument("--cores", type=int, default=1, dest="cores_per_worker",
                       help="cores offered by each worker (default 1)")
    start.add_argument("--memory", default="1g", dest="memory_per_worker",
                       help="executor memory offered by each worker (default 1g)")
    start.add_argument("--work-dir", type=Path, default=None,
                       help="logs, worker dirs and the state file (default: a new temp dir)")
    start.add_argument("--python", default=sys.executable,
                       help="Python of the executors and driver (default: this one)")
    start.add_argument("--timeout-s", type=float, default=DEFAULT_START_TIMEOUT_S,
                       help="seconds to wait for the workers to be ALIVE")
    stop = sub.add_parser("stop", help="stop the cluster started in --work-dir",
                          epilog=_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    stop.add_argument("--work-dir", type=Path, required=True,
                      help="the work dir `start` printed")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cluster = start_cluster(workers=args.workers, cores_per_worker=args.cores_per_worker,
                                    memory_per_worker=args.memory_per_worker,
                                    work_dir=args.work_dir, python=args.python,
                                    timeout_s=args.timeout_s)
            cluster.write_state()
            # stdout: the URL alone, so that `URL=$(… start)` works; the rest on stderr.
            print(cluster.master_url)
            print(f"work dir {cluster.work_dir} (logs in {cluster.log_dir}); pids "
                  f"{cluster.pids}; stop with: python -m stclusters.engines.standalone stop "
                  f"--work-dir {cluster.work_dir}", file=sys.stderr)
        else:
            pids = stop_from_state(args.work_dir)
            print(f"stopped {len(pids)} processes: {pids}", file=sys.stderr)
    except ClusterError as exc:
        print(f"error: {exc}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
