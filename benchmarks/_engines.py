"""Section ``engines`` (issue 12): the DuckDB engine vs Spark ``local[2]`` vs a standalone
Spark cluster of 2 workers × 1 core, side by side on the same inputs.

``python -m benchmarks.run --only engines [--quick] [--engine-sizes N ...]
[--engine-contenders duckdb spark_local spark_standalone]``

Inputs
    N contributions (both sources together) of the SYNTHETIC world
    (:func:`stclusters.synthetic.synthetic_world`) as a folder of Parquet part files of
    ``rows_per_part`` rows (1M at full scale, 50k for the quick sizes), like a real snapshot:
    Spark reads one file per task. Part ``i`` is its own seeded world (seed
    ``seed * 1_000_003 + i``) with ``doc_id`` ``SYN-P-<i>-<n>`` / ``SYN-W-<i>-<n>`` and
    ``record_ref`` ``synthetic:<seed>:<i>:<row>``, so no document is shared by two parts
    (a document read twice counts once). The parts are generated once into
    ``<data-dir>/engines-parts-p<rows>-s<seed>/`` and each size is a folder of hard links to
    its first parts, so 1M, 10M and 50M share their files and a rerun generates nothing.
Contenders (each one process tree of its own, started afresh for every run)
    ``duckdb``: ``python -m stclusters rank <folder> --out <dir>``;
    ``spark_local``: the same with ``--engine spark --master local[2]``;
    ``spark_standalone``: the same with ``--master spark://…`` of a cluster started once for
    the section by :func:`stclusters.engines.standalone.start_cluster` (2 workers × 1 core)
    and stopped at its end. The driver runs on this machine in client mode, as with
    ``spark-submit --deploy-mode client``.
Measured (outside the child, so JVM start-up and imports count: what a user waits for)
    wall time from start to exit; CPU time of each tree; peak memory of the driver's process
    tree (the Python driver, its JVM and the Python workers they spawn) and, for the cluster,
    of the workers' trees (worker JVMs, executor JVMs, their Python workers: not children of
    the driver, so sampled by pid), each the peak of the tree's summed PSS (shared pages
    split between their processes, so PySpark's forked workers are not counted twice),
    sampled every 0.2 s; the summed RSS (an upper bound) is kept in the facts as ``*_rss``;
    records/s and s per million records; the stage timings of the run folder's
    ``workspace.duckdb`` ``runs`` table (or the manifest's ``timings_s``) where present.
Checked
    ``ranking.csv`` byte-equal to DuckDB's at the same size, and which other output files
    (``manifest.json`` and ``workspace.duckdb`` aside) differ.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The three contenders, in the order they run at each size.
CONTENDERS = ("duckdb", "spark_local", "spark_standalone")
#: Sizes of the quick and full scales (contributions, both sources together).
SIZES = {"quick": (100_000, 300_000), "full": (1_000_000, 10_000_000, 50_000_000)}
#: Rows per Parquet part file: a real snapshot's part holds about 1M rows.
FULL_PART_ROWS = 1_000_000
QUICK_PART_ROWS = 50_000
#: Standalone cluster shape (the issue's: 2 workers × 1 core) and memory. A worker offers
#: ``WORKER_MEMORY``; its one executor takes ``EXECUTOR_MEMORY`` of it (heap), the executor's
#: Python workers come on top. The driver collects the weighted points: ``DRIVER_MEMORY``.
WORKERS, CORES_PER_WORKER = 2, 1
WORKER_MEMORY, EXECUTOR_MEMORY, DRIVER_MEMORY = "3g", "2g", "4g"
#: Time limit of one run: the scale's, or this many seconds per million records if longer.
TIMEOUT_S_PER_M = 120.0
SAMPLE_S = 0.2
#: Output files not expected to be byte-equal across engines.
NOT_COMPARED = frozenset({"manifest.json", "workspace.duckdb"})

#: Set by ``benchmarks.run.main`` from ``--engine-sizes`` / ``--engine-contenders``.
OPTIONS: dict[str, Any] = {"sizes": None, "contenders": None}


# --------------------------------------------------------------------------- data

def _part_table(rows: int, seed: int, part: int) -> Any:
    """Part ``part`` of the world: its own seeded synthetic world with ids made unique."""
    import pyarrow.compute as pc  # noqa: PLC0415

    from stclusters.synthetic import ATTRIBUTION, SYNTHETIC_LABEL, synthetic_world  # noqa: PLC0415

    t = synthetic_world(n_per_source=rows // 2, seed=seed * 1_000_003 + part)
    doc = t.column("doc_id")
    for src in ("P", "W"):  # SYN-P-<n> → SYN-P-<part>-<n>
        doc = pc.replace_substring(doc, f"SYN-{src}-", f"SYN-{src}-{part:05d}-",
                                   max_replacements=1)
    ref = pc.replace_substring(t.column("record_ref"), f"synthetic:{seed * 1_000_003 + part}:",
                               f"synthetic:{seed}:{part}:", max_replacements=1)
    t = t.set_column(t.schema.get_field_index("doc_id"), t.schema.field("doc_id"), doc)
    t = t.set_column(t.schema.get_field_index("record_ref"), t.schema.field("record_ref"), ref)
    meta = {"stclusters.data": SYNTHETIC_LABEL, "stclusters.attribution": ATTRIBUTION,
            "stclusters.synthetic": repr({"rows": rows, "seed": seed, "part": part})}
    return t.replace_schema_metadata(meta)


def part_files(data_dir: Path, n_contributions: int, *, rows_per_part: int,
               seed: int = 0) -> Path:
    """Folder of ``n_contributions`` rows in Parquet parts of ``rows_per_part`` (the last
    one smaller if it does not divide), made once and cached.

    Parameters
    ----------
    data_dir : Path
        The benchmark data folder (parts in ``engines-parts-p<rows>-s<seed>/``).
    n_contributions : int
        Rows in total, both sources together (even).
    rows_per_part : int
        Rows of each part file (even).
    seed : int
        Seed of the world; part ``i`` uses ``seed * 1_000_003 + i``.

    Returns
    -------
    Path
        ``<data_dir>/engines-<n>-p<rows>-s<seed>/``: hard links to the cached parts.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    if n_contributions % 2 or rows_per_part % 2:
        raise ValueError(f"sizes must be even (two sources): {n_contributions}, {rows_per_part}")
    cache = Path(data_dir) / f"engines-parts-p{rows_per_part}-s{seed}"
    folder = Path(data_dir) / f"engines-{n_contributions}-p{rows_per_part}-s{seed}"
    done = folder.with_name(folder.name + ".complete")  # beside it: the folder holds inputs only
    if done.exists() and folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    tmp_folder = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp_folder, ignore_errors=True)
    tmp_folder.mkdir(parents=True)
    n_parts = math.ceil(n_contributions / rows_per_part)
    for i in range(n_parts):
        rows = min(rows_per_part, n_contributions - i * rows_per_part)
        part = cache / f"part-{i:05d}-{rows}.parquet"
        if not part.exists():
            t0 = time.monotonic()
            table = _part_table(rows, seed, i)
            tmp = part.with_suffix(".tmp")
            pq.write_table(table, tmp, compression="zstd")
            tmp.replace(part)  # atomic: a killed generation leaves no half part behind
            print(f"  engines data: {part.name} ({time.monotonic() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
        link = tmp_folder / f"part-{i:05d}.parquet"
        try:
            os.link(part, link)
        except OSError:  # another file system: copy
            shutil.copyfile(part, link)
    shutil.rmtree(folder, ignore_errors=True)
    tmp_folder.rename(folder)
    done.touch()
    return folder


def _input_files(folder: Path) -> list[str]:
    """The part files of a :func:`part_files` folder, in order."""
    return sorted(str(p) for p in folder.glob("part-*.parquet"))


# --------------------------------------------------------------------------- process trees

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _procs() -> dict[int, tuple[int, int, int]]:
    """``pid → (ppid, rss_kb, cpu_ticks)`` of every process now (``/proc/<pid>/stat``;
    ``cpu_ticks`` = utime + stime of the process itself)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = s[s.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ...
        out[int(d)] = (int(fields[1]), int(fields[21]) * _PAGE_KB,
                       int(fields[11]) + int(fields[12]))
    return out


def _tree(roots: Iterable[int], procs: dict[int, tuple[int, int, int]]) -> set[int]:
    """``roots`` (those alive) and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), [r for r in roots if r in procs]
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(children.get(p, ()))
    return seen


def _rss_mb(pids: Iterable[int], procs: dict[int, tuple[int, int, int]]) -> float:
    return sum(procs[p][1] for p in pids) / 1024.0


def _pss_mb(pids: Iterable[int]) -> float:
    """Sum of PSS (``/proc/<pid>/smaps_rollup``) over ``pids``, MiB: pages shared by
    several processes (PySpark's forked workers, the JVMs' class data) counted once in all."""
    kb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                kb += next((int(ln.split()[1]) for ln in f if ln.startswith("Pss:")), 0)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return kb / 1024.0


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_tree(cmd: Sequence[str], *, env: dict[str, str], log: Path, timeout_s: float,
             mem_limit_mb: float, cluster_pids: Sequence[int] = ()) -> dict[str, Any]:
    """Run ``cmd`` as a new session and sample its process tree (and the cluster's) until it
    exits; kill the session past ``timeout_s`` or when driver + cluster exceed
    ``mem_limit_mb``.

    Returns
    -------
    dict
        ``status``, ``wall_s``, ``cpu_s`` / ``cluster_cpu_s`` (CPU time of the driver's and
        the workers' trees during the run, sampled), ``driver_peak_mb``,
        ``cluster_peak_mb`` / ``master_peak_mb`` (0 without a cluster), ``total_peak_mb``
        (peak of the simultaneous sum), all PSS, the same as ``*_rss_peak_mb`` (RSS),
        ``returncode``.
    """
    workers = [p for p in cluster_pids if "deploy.worker.Worker" in _cmdline(p)]
    masters = [p for p in cluster_pids if p not in workers]
    # CPU: the last value seen of every process of a tree, less what the cluster's
    # long-lived processes had used before the run (the driver's JVM is not reaped by its
    # Python, so wait4's rusage would miss it; a process's last <SAMPLE_S is missed)
    before = _procs()
    cpu0 = {p: before[p][2] for p in _tree(cluster_pids, before)}
    cpu: dict[str, dict[int, int]] = {"driver": {}, "cluster": {}}
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    peak = dict.fromkeys(("driver", "cluster", "master", "total", "driver_rss", "cluster_rss",
                          "master_rss", "total_rss"), 0.0)
    killed, status = "", None
    while True:
        procs = _procs()
        trees = {"driver": _tree([proc.pid], procs), "cluster": _tree(workers, procs),
                 "master": _tree(masters, procs)}
        rss = {k: _rss_mb(v, procs) for k, v in trees.items()}
        rss["total"] = sum(rss.values())
        pss = {k: _pss_mb(v) for k, v in trees.items()}
        pss["total"] = sum(pss.values())
        for k in rss:
            peak[k] = max(peak[k], pss[k])
            peak[f"{k}_rss"] = max(peak[f"{k}_rss"], rss[k])
        for k in ("driver", "cluster"):
            for p in trees[k]:
                cpu[k][p] = procs[p][2] - cpu0.get(p, 0)
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.monotonic() - t0
            break
        if time.monotonic() - t0 > timeout_s:
            killed = f"killed after {timeout_s:.0f} s"
        elif pss["total"] > mem_limit_mb:
            killed = f"killed above {mem_limit_mb / 1024:.0f} GiB"
        if killed:
            # our own session, and every process of the driver's tree by pid: PySpark's
            # worker daemons run in process groups of their own
            os.killpg(proc.pid, signal.SIGKILL)
            for p in trees["driver"] - {proc.pid}:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
            os.waitpid(proc.pid, 0)
            return {"status": killed, **{f"{k}_peak_mb": v for k, v in peak.items()}}
        time.sleep(SAMPLE_S)
    code = os.waitstatus_to_exitcode(status)
    res: dict[str, Any] = {f"{k}_peak_mb": round(v, 1) for k, v in peak.items()}
    res.update(wall_s=round(wall, 3), returncode=code,
               cpu_s=round(sum(cpu["driver"].values()) * _TICK_S, 1),
               cluster_cpu_s=round(sum(cpu["cluster"].values()) * _TICK_S, 1))
    if code != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        res["status"] = f"exit {code}: {(tail or ['no output'])[0][:120]}"
    else:
        res["status"] = "ok"
    return res


# --------------------------------------------------------------------------- run folders

def stage_timings(out_dir: Path) -> dict[str, float]:
    """Stage timings of a run folder: the manifest's ``timings_s`` if it has one, else the
    last row of the ``runs`` table of its ``workspace.duckdb``; ``{}`` if neither."""
    man = out_dir / "manifest.json"
    if man.exists():
        m = json.loads(man.read_text())
        for key in ("timings_s", "timings"):
            if isinstance(m.get(key), dict):
                return m[key]
    ws = out_dir / "workspace.duckdb"
    if ws.exists():
        import duckdb  # noqa: PLC0415

        try:
            con = duckdb.connect(str(ws), read_only=True)
            rows = con.execute("SELECT timings_s FROM runs").fetchall()
            con.close()
            if rows:
                return json.loads(rows[-1][0])
        except duckdb.Error:
            pass
    return {}


def engine_of(out_dir: Path) -> dict[str, Any]:
    """``manifest["engine"]`` of a run folder (``{}`` before the engine landed)."""
    man = out_dir / "manifest.json"
    return json.loads(man.read_text()).get("engine", {}) if man.exists() else {}


def agreement(out_dir: Path, ref_dir: Path) -> dict[str, Any]:
    """Byte comparison of two run folders: ``ranking_equal`` and the files that differ (or
    exist in one only), :data:`NOT_COMPARED` aside."""
    names = {p.name for d in (out_dir, ref_dir) for p in d.iterdir() if p.is_file()}
    differ = []
    for name in sorted(names - NOT_COMPARED):
        a, b = out_dir / name, ref_dir / name
        if not (a.exists() and b.exists()) or a.read_bytes() != b.read_bytes():
            differ.append(name)
    return {"ranking_equal": (out_dir / "ranking.csv").exists()
            and "ranking.csv" not in differ, "files_differ": differ}


# --------------------------------------------------------------------------- section

def _command(contender: str, folder: Path, out: Path, master: str | None) -> list[str]:
    if contender == "duckdb":
        return [sys.executable, "-m", "stclusters", "rank", str(folder), "--out", str(out)]
    conf = [f"spark.driver.memory={DRIVER_MEMORY}", "spark.ui.enabled=false"]
    if contender == "spark_standalone":
        conf += [f"spark.executor.memory={EXECUTOR_MEMORY}"]
    return [sys.executable, "-m", "stclusters", "rank", str(folder), "--out", str(out),
            "--engine", "spark", "--master", str(master),
            *(a for kv in conf for a in ("--spark-conf", kv))]


def _params(contender: str, n_parts: int) -> str:
    what = {"duckdb": "DuckDB engine",
            "spark_local": "local[2]",
            "spark_standalone": f"standalone {WORKERS} workers x {CORES_PER_WORKER} core"}
    return f"{what[contender]}, {n_parts} parts"


def _start_cluster(work: Path):
    """The standalone cluster, or ``(None, reason)`` when it cannot be started."""
    from stclusters.engines.standalone import start_cluster  # noqa: PLC0415

    try:
        return start_cluster(workers=WORKERS, cores_per_worker=CORES_PER_WORKER,
                             memory_per_worker=WORKER_MEMORY, work_dir=work / "cluster",
                             python=sys.executable), ""
    except Exception as exc:  # noqa: BLE001 - any failure: the other contenders still run
        return None, f"failed to start the cluster: {str(exc).splitlines()[0][:100]}"


def _pids(cluster: Any) -> list[int]:
    """The cluster's master and worker pids (``.pids``: a sequence or a name → pid map)."""
    pids = cluster.pids
    return [int(p) for p in (pids.values() if isinstance(pids, dict) else pids)]


def section(scale: Any, data_dir: Path, work: Path,
            row_cls: Callable[..., Any]) -> tuple[list[Any], dict]:
    """Run the section: every size, every contender, one process tree each.

    Parameters
    ----------
    scale : benchmarks.run.Scale
        ``repeats`` (runs per contender below 10M records; one at 10M and above),
        ``timeout_s`` and ``mem_limit_mb``.
    data_dir, work : Path
        Benchmark data folder (inputs cached there) and a scratch folder.
    row_cls : type
        ``benchmarks.run.Row``.
    """
    quick = scale.cmp_n < 1_000_000
    sizes = OPTIONS["sizes"] or SIZES["quick" if quick else "full"]
    contenders = OPTIONS["contenders"] or CONTENDERS
    rows_per_part = QUICK_PART_ROWS if max(sizes) < FULL_PART_ROWS else FULL_PART_ROWS
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    folders = {n: part_files(data_dir, n, rows_per_part=rows_per_part) for n in sizes}
    # Warm-up, not timed: numba's kernels and the GeoNames index are compiled / built once
    # per machine and cached; no contender should pay for that.
    warm = work / "engines-warm"
    run_tree([sys.executable, "-m", "stclusters", "rank", _input_files(folders[min(sizes)])[0],
              "--out", str(warm)], env=env, log=work / "engines-warm.log",
             timeout_s=scale.timeout_s, mem_limit_mb=scale.mem_limit_mb)
    shutil.rmtree(warm, ignore_errors=True)

    cluster, cluster_note = None, ""
    if "spark_standalone" in contenders:
        cluster, cluster_note = _start_cluster(work)
    rows: list[Any] = []
    try:
        for n in sizes:
            folder = folders[n]
            n_parts = len(_input_files(folder))
            repeats = scale.repeats if n < 10_000_000 else 1
            timeout = max(scale.timeout_s, TIMEOUT_S_PER_M * n / 1e6)
            ref = work / f"engines-{n}-duckdb"
            for c in contenders:
                r = row_cls("engines", n, c, _params(c, n_parts))
                rows.append(r)
                master = {"spark_local": "local[2]",
                          "spark_standalone": cluster.master_url if cluster else None}.get(c)
                if c == "spark_standalone" and cluster is None:
                    r.status = cluster_note
                    print(f"  engines    n={n:>10,} {c:16s} {r.status}", file=sys.stderr)
                    continue
                _measure(r, c, folder, work, ref, n, repeats, timeout, scale.mem_limit_mb,
                         env, master,
                         _pids(cluster) if c == "spark_standalone" else ())
            for c in contenders:
                if c != "duckdb":
                    shutil.rmtree(work / f"engines-{n}-{c}", ignore_errors=True)
            shutil.rmtree(ref, ignore_errors=True)  # outputs at 50M take GBs
    finally:
        if cluster is not None:
            cluster.stop()
    _ratios(rows)
    return rows, {"rows_per_part": rows_per_part,
                  "driver_memory": DRIVER_MEMORY, "worker_memory": WORKER_MEMORY,
                  "executor_memory": EXECUTOR_MEMORY,
                  "cluster": ("not run" if "spark_standalone" not in contenders
                              else cluster_note or "started once, before the first size"),
                  "inputs": {str(n): str(f) for n, f in folders.items()}}


def _measure(r: Any, contender: str, folder: Path, work: Path, ref: Path, n: int,
             repeats: int, timeout_s: float, mem_limit_mb: float, env: dict[str, str],
             master: str | None, cluster_pids: Sequence[int]) -> None:
    """``repeats`` runs of one contender at one size into row ``r`` (stops at a failure);
    the last run's folder is kept for the comparison with DuckDB's."""
    out = work / f"engines-{n}-{contender}"
    peaks: dict[str, list[float]] = {}
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        res = run_tree(_command(contender, folder, out, master), env=env,
                       log=work / f"engines-{n}-{contender}.log", timeout_s=timeout_s,
                       mem_limit_mb=mem_limit_mb, cluster_pids=cluster_pids)
        for k in ("driver", "cluster", "master", "total", "driver_rss", "cluster_rss",
                  "total_rss"):
            peaks.setdefault(k, []).append(res.get(f"{k}_peak_mb", float("nan")))
        if res["status"] != "ok":
            r.status = res["status"]
            break
        r.times_s.append(res["wall_s"])
        r.facts.setdefault("cpu_s", []).append(res["cpu_s"])
        r.facts.setdefault("cluster_cpu_s", []).append(res["cluster_cpu_s"])
    r.peak_mb = max(peaks["driver"])
    r.facts.update(cluster_peak_mb=max(peaks["cluster"]), master_peak_mb=max(peaks["master"]),
                   total_peak_mb=max(peaks["total"]),
                   rss_peak_mb={k: max(peaks[f"{k}_rss"]) for k in ("driver", "cluster",
                                                                     "total")})
    if r.times_s:
        r.facts["records_per_s"] = round(n / r.median_s)
        r.facts["s_per_m_records"] = round(r.median_s / (n / 1e6), 3)
        r.facts["stages_s"] = st = stage_timings(out)
        if st:  # start-up (imports, JVM, Spark session), writing the folder, exit
            r.facts["outside_stages_s"] = round(r.times_s[-1] - sum(st.values()), 2)
        r.facts["engine"] = engine_of(out)
        if contender != "duckdb" and ref.exists():
            r.facts.update(agreement(out, ref))
    print(f"  engines    n={n:>10,} {contender:16s} {r.median_s:9.1f} s driver "
          f"{r.peak_mb:7.0f} MiB cluster {r.facts['cluster_peak_mb']:7.0f} MiB {r.status} "
          f"{'ranking equal' if r.facts.get('ranking_equal') else ''}", file=sys.stderr,
          flush=True)


def _ratios(rows: list[Any]) -> None:
    """Each row's ratio note: time and peak against DuckDB at its size, and its s per
    million records against its own previous size."""
    duck = {r.n: r for r in rows if r.contender == "duckdb" and r.times_s}
    prev: dict[str, Any] = {}
    for r in rows:
        if not r.times_s:
            continue
        notes = []
        d = duck.get(r.n)
        if d is not None and r is not d:
            notes.append(f"{r.median_s / d.median_s:.2f}x DuckDB time, "
                         f"{r.facts['total_peak_mb'] / d.facts['total_peak_mb']:.2f}x its peak")
        notes.append(f"{r.facts['s_per_m_records']:.2f} s/M records")
        p = prev.get(r.contender)
        if p is not None:
            notes.append(f"{r.facts['s_per_m_records'] / p.facts['s_per_m_records']:.2f}x "
                         f"the s/M at {p.n:,}")
        if "ranking_equal" in r.facts:
            notes.append("ranking.csv " + ("equal" if r.facts["ranking_equal"] else "DIFFERS"))
        r.ratio = "; ".join(notes)
        prev[r.contender] = r


def _mb(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) or not x \
        else f"{x:,.0f}"


def _median(xs: Sequence[float]) -> float | None:
    return sorted(xs)[len(xs) // 2] if xs else None


def table(rows: list[Any]) -> str:
    """The section's own Markdown table: one row per size and contender."""
    head = ("| records | contender | wall s | records/s | s per M | vs DuckDB time | driver "
            "peak MiB (PSS) | cluster peak MiB | total peak MiB | CPU s driver / cluster | stages s "
            "(+ outside stages) | ranking.csv = DuckDB | s/M vs previous size |")
    out = [head, "|" + "---|" * 13]
    duck = {r.n: r for r in rows if r.contender == "duckdb" and r.times_s}
    prev: dict[str, Any] = {}
    for r in rows:
        if not r.times_s:
            out.append(f"| {r.n:,} | {r.contender} | {r.status} |" + " |" * 10)
            continue
        f = r.facts
        d = duck.get(r.n)
        vs = f"{r.median_s / d.median_s:.2f}x" if d is not None and r is not d else ""
        stages = ", ".join(f"{k} {v:.1f}" for k, v in f.get("stages_s", {}).items())
        if "outside_stages_s" in f:
            stages += f" (+{f['outside_stages_s']:.1f})"
        eq = {True: "yes", False: f"NO ({', '.join(f.get('files_differ', []))})"}.get(
            f.get("ranking_equal"), "")
        p = prev.get(r.contender)
        grow = f"{f['s_per_m_records'] / p.facts['s_per_m_records']:.2f}x" if p else ""
        prev[r.contender] = r
        cpu = _median(f.get("cpu_s") or [])
        ccpu = _median(f.get("cluster_cpu_s") or [])
        cpus = f"{cpu:.0f}" + (f" / {ccpu:.0f}" if ccpu else "") if cpu is not None else ""
        out.append(f"| {r.n:,} | {r.contender}"
                   f" | {r.median_s:.1f} | {f['records_per_s']:,} | {f['s_per_m_records']:.2f}"
                   f" | {vs} | {_mb(r.peak_mb)} | {_mb(f['cluster_peak_mb'])} | "
                   f"{_mb(f['total_peak_mb'])} | {cpus} | {stages} | {eq} | {grow} |")
    return "\n".join(out)
