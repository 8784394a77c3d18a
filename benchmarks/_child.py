"""One contender, one run, in its own process: ``python -m benchmarks._child '<json task>'``.

The task names a contender and its data file. The child loads the data, warms up (numba JIT on
a tiny input: compile time is excluded), times the work only with ``perf_counter``, optionally
saves labels, and prints one line ``RESULT {json}`` with ``seconds``, ``peak_mb`` (this
process's ``VmHWM``: imports, data and work included) and contender-specific facts.
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

R_KM = 6371.0088


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")  # pragma: no cover


def _load(task: dict[str, Any]):
    from benchmarks._data import load_points  # noqa: PLC0415

    return load_points(task["data"])


def _warm_ours() -> None:
    """Compile (or load from numba's cache) every kernel the pipeline calls, on tiny data."""
    from stclusters.clusters.dbscan import dbscan_sphere, link_clusters, nearest_core  # noqa: PLC0415

    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(40, 41, 200), rng.uniform(0, 1, 200)
    res = dbscan_sphere(lat, lon, rng.random(200), eps_km=13.0, min_weight=2.0)
    dbscan_sphere(lat, lon, None, eps_km=13.0, min_weight=2.0)
    lab = res.labels
    nearest_core(lat, lon, lat[:50], lon[:50], lab[:50], eps_km=13.0)
    link_clusters(lat[:50], lon[:50], lab[:50], lat[50:], lon[50:], lab[50:], eps_km=13.0)


def _ours(task: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[Any], dict]]:
    from stclusters.clusters.dbscan import dbscan_sphere  # noqa: PLC0415

    lat, lon, w = _load(task)
    if not task.get("weighted", True):
        w = None
    _warm_ours()
    mw, thr = float(task["min_weight"]), task.get("threads")

    def work():
        return dbscan_sphere(lat, lon, w, eps_km=task["eps_km"], min_weight=mw, n_threads=thr)

    def facts(res) -> dict:
        return {"n_clusters": int(res.n_clusters), "core_share": float(res.is_core.mean()),
                "_labels": res.labels, "_core": res.is_core}
    return work, facts


def _warm_sweep() -> None:
    """Compile (or load) the sweep kernels on tiny data."""
    from stclusters.clusters.sweep import sweep_grid, sweep_min_weight  # noqa: PLC0415

    rng = np.random.default_rng(0)
    lat, lon, w = rng.uniform(40, 41, 200), rng.uniform(0, 1, 200), rng.random(200)
    sweep_min_weight(lat, lon, w, eps_km=13.0, min_weights=[1.0, 2.0]).result(1.5)
    sweep_grid(lat, lon, w, eps_kms=[13.0], min_weights=[1.0]).core_labels(13.0, 1.0)


def _identity(lat, lon, w, settings: list[tuple[float, float]], result_at, thr) -> dict:
    """Compare the sweep's clustering with ``dbscan_sphere`` at each (eps_km, min_weight)."""
    from stclusters.clusters.dbscan import dbscan_sphere  # noqa: PLC0415

    same = 0
    for eps_km, mw in settings:
        a = result_at(eps_km, mw)
        b = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=mw, n_threads=thr)
        same += (a.n_clusters == b.n_clusters and a.labels.tobytes() == b.labels.tobytes()
                 and a.is_core.tobytes() == b.is_core.tobytes()
                 and a.representative.tobytes() == b.representative.tobytes())
    return {"identity_checked": len(settings), "identity_equal": int(same)}


def _check_settings(eps_kms: list[float], min_weights: list[float], k: int) -> list:
    """``k`` settings spread over the plane (first, last and evenly between), deterministic."""
    grid = [(e, m) for e in eps_kms for m in min_weights]
    idx = np.unique(np.linspace(0, len(grid) - 1, k).round().astype(int))
    return [grid[i] for i in idx]


def _sweep_ours(task: dict[str, Any]):
    """One threshold sweep (``eps_kms`` of length 1) or a plane (``sweep_grid``)."""
    from stclusters.clusters.sweep import sweep_grid, sweep_min_weight  # noqa: PLC0415

    lat, lon, w = _load(task)
    _warm_ours()
    _warm_sweep()
    eps_kms, mws, thr = task["eps_kms"], task["min_weights"], task.get("threads")

    def work():
        if len(eps_kms) == 1:
            return sweep_min_weight(lat, lon, w, eps_km=eps_kms[0], min_weights=mws,
                                    n_threads=thr)
        return sweep_grid(lat, lon, w, eps_kms=eps_kms, min_weights=mws, n_threads=thr)

    def facts(res) -> dict:
        if len(eps_kms) == 1:
            def at(e, m):
                return res.result(m)
        else:
            at = res.result
        out = {"settings": len(eps_kms) * len(mws),
               "n_clusters_range": [int(res.n_clusters.min()), int(res.n_clusters.max())],
               "core_share_range": [float(res.n_core.min() / lat.shape[0]),
                                    float(res.n_core.max() / lat.shape[0])]}
        out.update(_identity(lat, lon, w, _check_settings(eps_kms, mws, task["check"]), at,
                             thr))
        return out
    return work, facts


def _settings_ours(task: dict[str, Any]):
    """The one-setting engine once per setting of a sample of the plane; facts give the mean
    time per setting (the caller extrapolates to the whole plane)."""
    from stclusters.clusters.dbscan import dbscan_sphere  # noqa: PLC0415

    lat, lon, w = _load(task)
    _warm_ours()
    settings = _check_settings(task["eps_kms"], task["min_weights"], task["sample"])
    times: list[float] = []

    def work():
        for eps_km, mw in settings:
            t0 = time.perf_counter()
            dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=mw,
                          n_threads=task.get("threads"))
            times.append(time.perf_counter() - t0)
        return times

    def facts(ts) -> dict:
        return {"sampled_settings": len(ts), "mean_s_per_setting": sum(ts) / len(ts),
                "max_s_per_setting": max(ts)}
    return work, facts


def _sklearn(task: dict[str, Any]):
    from sklearn.cluster import DBSCAN  # noqa: PLC0415

    lat, lon, w = _load(task)
    X = np.radians(np.column_stack([lat, lon]))
    mw = float(task["min_weight"])
    ms = int(mw) if mw.is_integer() else mw  # scikit-learn 1.9 takes an integer only

    def work():
        return DBSCAN(eps=task["eps_km"] / R_KM, min_samples=ms,
                      metric="haversine", algorithm="ball_tree").fit(X, sample_weight=w)

    def facts(db) -> dict:
        core = np.zeros(lat.shape[0], bool)
        core[db.core_sample_indices_] = True
        return {"n_clusters": int(db.labels_.max() + 1), "core_share": float(core.mean()),
                "_labels": db.labels_, "_core": core}
    return work, facts


def _dbscan_pkg(task: dict[str, Any]):
    from dbscan import DBSCAN  # noqa: PLC0415

    lat, lon, _ = _load(task)
    la, lo = np.radians(lat), np.radians(lon)
    X = np.ascontiguousarray(np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo),
                                              np.sin(la)]))
    chord = 2.0 * math.sin(task["eps_km"] / (2.0 * R_KM))
    DBSCAN(X[:200], chord, min_samples=2)  # start its thread pool outside the timing

    def work():
        return DBSCAN(X, chord, min_samples=int(task["min_weight"]))

    def facts(res) -> dict:
        labels, core = res
        return {"n_clusters": int(labels.max() + 1), "core_share": float(core.mean()),
                "_labels": np.asarray(labels), "_core": np.asarray(core, bool)}
    return work, facts


def _e2e_ours(task: dict[str, Any]):
    import stclusters  # noqa: PLC0415

    _warm_ours()

    def work():
        # The default call, as `stclusters rank` makes it: in-memory workspace with DuckDB's
        # memory budget and spill folder (stclusters.store.DEFAULT_MEMORY_MB).
        return stclusters.rank([task["data"]])

    def facts(res) -> dict:
        return {"n_clusters": int(res.ranking.num_rows), "stages_s": res.timings_s}
    return work, facts


def _e2e_baseline(task: dict[str, Any]):
    from benchmarks.baseline_pandas_sklearn import rank  # noqa: PLC0415

    def work():
        return rank(task["data"])

    def facts(res) -> dict:
        return {"n_clusters": int(len(res))}
    return work, facts


def _duck_threads(con, task: dict[str, Any]) -> None:
    if task.get("threads"):
        con.execute(f"SET threads = {int(task['threads'])}")


def _read_ours(task: dict[str, Any]):
    """stclusters' read stage on a bundle or snapshot: every file staged with its checks,
    accounting and quarantine, then assembled into documents and contributions."""
    from stclusters import store  # noqa: PLC0415
    from stclusters.workspace import as_inputs, expand_inputs, ingest_into, prepare  # noqa: PLC0415

    def work():
        con = store.connect(None)
        _duck_threads(con, task)
        ingest_into(con, expand_inputs(as_inputs(task["paths"])))
        prepare(con)
        return con

    def facts(con) -> dict:
        n_rows, n_located = con.execute(
            "SELECT count(*), count(lat) FROM raw_contributions").fetchall()[0]
        return {"rows": int(n_rows), "rows_with_coordinates": int(n_located),
                "documents": int(con.execute("SELECT count(*) FROM documents").fetchall()[0][0]),
                "read": int(con.execute("SELECT sum(records_read) FROM inputs").fetchall()[0][0])}
    return work, facts


def _read_peer(task: dict[str, Any]):
    """What a user would write instead: DuckDB's read_csv / read_json with the same columns,
    filters and joins (``benchmarks/bulk/<format>.py`` ``peer_sql``), into a table."""
    import duckdb  # noqa: PLC0415

    from stclusters.store import DEFAULT_MEMORY_MB  # noqa: PLC0415

    module = __import__(f"benchmarks.bulk.{task['format']}", fromlist=["peer_sql"])
    sql, params = module.peer_sql(task["peer_arg"])

    def work():
        # The same budget as ours, spilling to a temporary folder (DuckDB's default is
        # `.tmp` in the working directory: the repository).
        spill = tempfile.mkdtemp(prefix="stc-peer-")
        atexit.register(shutil.rmtree, spill, ignore_errors=True)
        con = duckdb.connect(config={"memory_limit": f"{DEFAULT_MEMORY_MB}MB",
                                     "temp_directory": spill})
        con.execute("SET enable_progress_bar = false")
        _duck_threads(con, task)
        con.execute(f"CREATE TABLE peer AS {sql}", params)
        return con

    def facts(con) -> dict:
        return {"rows": int(con.execute("SELECT count(*) FROM peer").fetchall()[0][0])}
    return work, facts


CONTENDERS = {"ours": _ours, "sklearn": _sklearn, "dbscan_pkg": _dbscan_pkg,
               "sweep_ours": _sweep_ours, "settings_ours": _settings_ours,
              "e2e_ours": _e2e_ours, "e2e_baseline": _e2e_baseline,
              "read_ours": _read_ours, "read_peer": _read_peer}


def run(task: dict[str, Any]) -> dict[str, Any]:
    """Prepare, time and describe one run of ``task``."""
    work, facts = CONTENDERS[task["contender"]](task)
    t0 = time.perf_counter()
    res = work()
    seconds = time.perf_counter() - t0
    out = facts(res)
    if task.get("labels_out"):
        np.savez(task["labels_out"], labels=out["_labels"], core=out["_core"])
    out = {k: v for k, v in out.items() if not k.startswith("_")}
    out.update(seconds=seconds, peak_mb=_peak_mb())
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(run(json.loads(sys.argv[1]))), flush=True)
