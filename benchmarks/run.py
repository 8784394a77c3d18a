"""Run every stclusters benchmark and print one table (``--quick``: about a minute).

``python -m benchmarks.run [--quick] [--data-dir DIR] [--json PATH]``

Sections (each contender run in its own subprocess, see :mod:`benchmarks._child`):

1. ``weighted``: ours vs scikit-learn (haversine ball tree, ``sample_weight``) on world-realistic
   weighted points (calibrated to the issue's scikit-learn reference, see :mod:`benchmarks._data`);
   labels checked (core sets, core partitions, noise sets, borders non-noise), every core-flag
   difference explained (exact weight tie at ``min_weight``, distance at eps, or not).
2. ``unweighted``: ours vs the ``dbscan`` package (3-D unit vectors, chord eps), 1 and 2
   threads (``NUMBA_NUM_THREADS`` + ``n_threads=`` / ``PARLAY_NUM_THREADS``).
3. ``scaling``: ours from 100k to 10M points, time per point.
4. ``min_weight``: ours at one size, threshold from tiny (everything core) to huge (nothing).
5. ``dense``: the previous, ~10x denser world (dense metros): ours, and scikit-learn at the
   largest size it finishes in 16 GiB.
6. ``end_to_end``: contributions Parquet → ranking, ``stclusters.rank`` vs
   ``benchmarks/baseline_pandas_sklearn.py``.
7. ``sweep`` (issue 9): ``sweep_min_weight`` over 100 thresholds (a realistic axis and the
   whole axis) and ``sweep_grid`` over 20 eps × 100 thresholds, against one
   ``dbscan_sphere`` run and against the one-setting engine run at a sample of the settings
   (extrapolated to all of them); each sweep is compared with ``dbscan_sphere`` at a sample
   of its settings inside the child (``identity_equal`` / ``identity_checked``).
8. ``per_core`` (issue 9): the single run on one thread, points per second per core, with
   scikit-learn (weighted) and the ``dbscan`` package (unweighted) on one thread each.
9. ``engines`` (issue 12): the DuckDB engine vs Spark ``local[2]`` vs a standalone cluster of
   2 workers, ``stclusters rank`` on a folder of Parquet parts (see :mod:`benchmarks._engines`,
   which runs and samples its own process trees).

Times are medians over ``repeats`` runs, measured inside the child around the work only
(imports, data loading and numba compilation excluded: one warm-up call on a tiny input);
peak memory is the child's VmHWM (imports and data included). A run that exceeds the time or
memory limit is killed and reported as such; larger sizes of that contender are skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _data, _engines  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EPS_KM = 13.0
MIN_SHARE = 0.0002  # 0.02 % of the points' total weight: the pipeline's default threshold


@dataclass(frozen=True)
class Scale:
    """Sizes and limits of one benchmark scale."""

    cmp_n: int  # points of the sklearn / dbscan-package comparisons and the threshold sweep
    scaling: tuple[int, ...]
    e2e: tuple[int, ...]  # contributions (both sources together)
    repeats: int
    timeout_s: float
    mem_limit_mb: float
    dense: tuple[int, ...] = ()  # sizes of the dense-world case (ours)
    dense_skl: int = 0  # the dense size where scikit-learn also runs (one run)
    readers: tuple[int, ...] = ()  # size of each bulk format: inventor / link rows; works × 10


SCALES = {
    "quick": Scale(cmp_n=30_000, scaling=(10_000, 30_000, 100_000), e2e=(20_000,), repeats=1,
                   timeout_s=120, mem_limit_mb=8000, dense=(10_000, 30_000), dense_skl=10_000,
                   readers=(100_000,)),
    "full": Scale(cmp_n=1_000_000, scaling=(100_000, 300_000, 1_000_000, 3_000_000, 10_000_000),
                  e2e=(1_000_000, 10_000_000), repeats=3, timeout_s=600, mem_limit_mb=16000,
                  dense=(300_000, 1_000_000, 10_000_000), dense_skl=300_000,
                  readers=(10_000_000,)),
}


@dataclass
class Row:
    """One contender at one size: median time, peak memory, facts."""

    section: str
    n: int
    contender: str
    params: str
    times_s: list[float] = field(default_factory=list)
    peak_mb: float = float("nan")
    status: str = "ok"
    facts: dict[str, Any] = field(default_factory=dict)
    ratio: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")


# --------------------------------------------------------------------------- subprocesses

def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_child(task: dict[str, Any], env: dict[str, str], scale: Scale) -> dict[str, Any]:
    """Run one task in a fresh subprocess under the scale's time and memory limits."""
    full_env = {**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks._child", json.dumps(task)],
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0, peak, killed = time.monotonic(), 0.0, ""
    while proc.poll() is None:
        peak = max(peak, _rss_mb(proc.pid))
        if time.monotonic() - t0 > scale.timeout_s:
            killed = f"killed after {scale.timeout_s:.0f} s"
        elif peak > scale.mem_limit_mb:
            killed = f"killed above {scale.mem_limit_mb / 1024:.0f} GiB"
        if killed:
            proc.kill()
            break
        time.sleep(0.1)
    out, err = proc.communicate()
    if killed:
        return {"status": killed, "peak_mb": peak}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {"status": "ok", **json.loads(line[7:])}
    tail = (err or out).strip().splitlines()[-1:] or ["no output"]
    return {"status": f"failed: {tail[0][:120]}", "peak_mb": peak}


def measure(row: Row, task: dict[str, Any], env: dict[str, str], scale: Scale,
            repeats: int | None = None, once_above_s: float | None = None) -> Row:
    """Fill ``row`` with ``repeats`` runs of ``task`` (stops at the first failure; stops after
    the first run if that one took longer than ``once_above_s``)."""
    peaks = []
    for i in range(repeats or scale.repeats):
        if i == 1 and once_above_s is not None and row.times_s[0] > once_above_s:
            row.facts["one_run"] = f"first run > {once_above_s:.0f} s"
            break
        t = dict(task)
        if i > 0:
            t.pop("labels_out", None)
        res = run_child(t, env, scale)
        peaks.append(res.pop("peak_mb", float("nan")))
        if res["status"] != "ok":
            row.status = res["status"]
            break
        row.times_s.append(res.pop("seconds"))
        res.pop("status")
        row.facts.update(res)
    row.peak_mb = max(peaks) if peaks else float("nan")
    _log(row)
    return row


def _log(row: Row) -> None:
    print(f"  {row.section:10s} n={row.n:>10,} {row.contender:12s} {row.params:28s} "
          f"{row.median_s:9.3f} s {row.peak_mb:8.0f} MiB {row.status}", file=sys.stderr,
          flush=True)


def _threads_env(threads: int) -> dict[str, str]:
    return {"NUMBA_NUM_THREADS": str(threads), "PARLAY_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}


# --------------------------------------------------------------------------- label checks

def compare_labels(ours: Path, other: Path) -> dict[str, Any]:
    """Methodology §4 agreement of two labelings of the same points.

    Core sets equal, core points partitioned the same way, noise sets equal, and every
    border point (non-core, non-noise) labelled non-noise by both.
    """
    with np.load(ours) as a, np.load(other) as b:
        la, ca, lb, cb = a["labels"], a["core"], b["labels"], b["core"]
    core_diff = int((ca != cb).sum())
    both = ca & cb
    pairs = np.unique(np.column_stack([la[both], lb[both]]), axis=0)
    same_partition = (np.unique(pairs[:, 0]).size == pairs.shape[0]
                      == np.unique(pairs[:, 1]).size)
    noise_diff = int(((la < 0) != (lb < 0)).sum())
    border = ~ca & (la >= 0)
    return {"core_diff": core_diff, "same_core_partition": bool(same_partition),
            "noise_diff": noise_diff, "border_points": int(border.sum()),
            "border_noise_in_other": int((border & (lb < 0)).sum()),
            "identical": core_diff == 0 and bool(same_partition) and noise_diff == 0}


def explain_core_diff(points: Path, ours: Path, other: Path, eps_km: float,
                      min_weight: float, weighted: bool = True, limit: int = 2000
                      ) -> dict[str, Any]:
    """Why the core flags of two labelings differ: exact neighbour weight per differing point.

    For each point whose core flag differs (up to ``limit``), its neighbours within eps are
    found by haversine (scikit-learn's formula; chord on unit vectors for the unweighted
    comparison, like the dbscan package) and their weights summed exactly (``math.fsum``).
    Causes: ``weight_tie`` (weighted only: the exact sum equals ``min_weight``, so each side's
    summation order decides), ``distance_at_eps`` (a neighbour within 1e-12 of eps), otherwise
    ``unexplained``, with who agrees with the exact count (for unweighted points an exact
    count equal to ``min_samples`` is core by definition, not a tie).
    """
    from scipy.spatial import cKDTree  # noqa: PLC0415

    lat, lon, w = _data.load_points(points)
    if not weighted:
        w = np.ones_like(lat)
    with np.load(ours) as a, np.load(other) as b:
        ca, cb, la, lb = a["core"], b["core"], a["labels"], b["labels"]
    diff = np.flatnonzero(ca != cb)
    out: dict[str, Any] = {"core_diff": int(diff.size), "weight_tie": 0, "distance_at_eps": 0,
                           "unexplained": 0, "ours_core_of_diff": int(ca[diff].sum()),
                           "exact_agrees_with_ours": 0, "exact_agrees_with_other": 0}
    if diff.size == 0:
        return out
    xyz = _data.unit_vectors(lat, lon)
    tree = cKDTree(xyz)
    eps = eps_km / _data.R_KM
    chord = 2.0 * math.sin(eps / 2.0)
    phi, lam = np.radians(lat), np.radians(lon)
    for i in diff[:limit]:
        nb = np.asarray(tree.query_ball_point(xyz[i], chord * (1 + 1e-6)), dtype=np.int64)
        if weighted:
            h = (np.sin((phi[nb] - phi[i]) / 2) ** 2
                 + np.cos(phi[i]) * np.cos(phi[nb]) * np.sin((lam[nb] - lam[i]) / 2) ** 2)
            d, lim = 2.0 * np.arcsin(np.sqrt(h)), eps
        else:
            d, lim = np.sqrt(((xyz[nb] - xyz[i]) ** 2).sum(axis=1)), chord
        s = math.fsum(w[nb[d <= lim]].tolist())
        if weighted and abs(s - min_weight) <= 1e-9 * max(1.0, min_weight):
            out["weight_tie"] += 1
        elif np.any(np.abs(d - lim) <= 1e-12):
            out["distance_at_eps"] += 1
        else:
            out["unexplained"] += 1
            exact = s >= min_weight
            out["exact_agrees_with_ours" if ca[i] == exact else "exact_agrees_with_other"] += 1
    # noise differences caused by those flips: a noise-diff point within eps of a core-diff one
    nd = np.flatnonzero((la < 0) != (lb < 0))
    if nd.size:
        near = cKDTree(xyz[diff]).query(xyz[nd], distance_upper_bound=chord * (1 + 1e-6))[0]
        out["noise_diff_next_to_core_diff"] = int(np.isfinite(near).sum())
        out["noise_diff"] = int(nd.size)
    return out


def check_labels(points: Path, ours: Path, other: Path, min_weight: float,
                 weighted: bool = True) -> dict[str, Any]:
    """:func:`compare_labels` plus, when core flags differ, :func:`explain_core_diff`."""
    chk = compare_labels(ours, other)
    if chk["core_diff"] or chk["noise_diff"]:
        chk["cause"] = explain_core_diff(points, ours, other, EPS_KM, min_weight, weighted)
    return chk


# --------------------------------------------------------------------------- sections

def _ratio(slow: Row, fast: Row) -> str:
    if fast.median_s > 0 and slow.times_s:
        return f"{slow.median_s / fast.median_s:.1f}x"
    if fast.median_s > 0 and slow.status.startswith("killed after"):
        return f">{SCALES_TIMEOUT[0] / fast.median_s:.0f}x (bound)"
    return "n/a"


SCALES_TIMEOUT = [600.0]  # set by main: the time limit, for lower bounds on ratios
BASELINE_MAX_N: list[int | None] = [None]  # set by main: largest end-to-end baseline size


def realistic_min_weight(path: Path) -> float:
    """The pipeline's default threshold (0.02 % of total weight) for these points, rounded
    to an integer (scikit-learn 1.9 only accepts an integer ``min_samples``)."""
    _, _, w = _data.load_points(path)
    return float(max(2, round(w.sum() * MIN_SHARE)))


def section_weighted(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    path = _data.points_file(data_dir, scale.cmp_n)
    mw = realistic_min_weight(path)
    base = {"data": str(path), "eps_km": EPS_KM, "min_weight": mw}
    stats = _data.point_stats(path)
    print(f"  world: {stats}", file=sys.stderr, flush=True)
    rows = []
    for thr in (1, 2):
        r = Row("weighted", scale.cmp_n, "ours", f"mw={mw:.1f} threads={thr}")
        rows.append(measure(r, {**base, "contender": "ours", "threads": thr,
                                "labels_out": str(work / f"ours_w{thr}.npz")},
                            _threads_env(thr), scale))
    sk = Row("weighted", scale.cmp_n, "sklearn", f"mw={mw:.1f} ball_tree n_jobs=1")
    rows.append(measure(sk, {**base, "contender": "sklearn",
                             "labels_out": str(work / "sk_w.npz")}, _threads_env(1), scale))
    check = {}
    if sk.status == "ok" and rows[0].status == "ok":
        check = check_labels(path, work / "ours_w1.npz", work / "sk_w.npz", mw)
    for r in rows[:2]:
        r.ratio = _ratio(sk, r) + " vs sklearn"
    return rows, {"min_weight": mw, "world": stats, "labels_vs_sklearn": check}


def section_sklearn_sizes(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """Ours vs scikit-learn at the sizes below ``cmp_n`` where scikit-learn may still fit."""
    rows, checks = [], {}
    for n in [m for m in scale.scaling if m < scale.cmp_n]:
        path = _data.points_file(data_dir, n)
        mw = realistic_min_weight(path)
        base = {"data": str(path), "eps_km": EPS_KM, "min_weight": mw}
        o = measure(Row("skl_sizes", n, "ours", f"mw={mw:.1f} threads=1"),
                    {**base, "contender": "ours", "threads": 1,
                     "labels_out": str(work / f"ours_{n}.npz")}, _threads_env(1), scale)
        sk = measure(Row("skl_sizes", n, "sklearn", f"mw={mw:.1f} ball_tree n_jobs=1"),
                     {**base, "contender": "sklearn", "labels_out": str(work / f"sk_{n}.npz")},
                     _threads_env(1), scale)
        o.ratio = _ratio(sk, o) + " vs sklearn"
        rows += [o, sk]
        if sk.status != "ok":
            break
        checks[str(n)] = check_labels(path, work / f"ours_{n}.npz", work / f"sk_{n}.npz", mw)
    return rows, {"labels_vs_sklearn": checks}


def section_unweighted(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    path = _data.points_file(data_dir, scale.cmp_n)
    _, _, w = _data.load_points(path)
    ms = max(2, int(round(w.sum() * MIN_SHARE / w.mean())))
    base = {"data": str(path), "eps_km": EPS_KM, "min_weight": ms, "weighted": False}
    rows, checks = [], {}
    for thr in (1, 2):
        o = measure(Row("unweighted", scale.cmp_n, "ours", f"min_samples={ms} threads={thr}"),
                    {**base, "contender": "ours", "threads": thr,
                     "labels_out": str(work / f"ours_u{thr}.npz")}, _threads_env(thr), scale)
        p = measure(Row("unweighted", scale.cmp_n, "dbscan_pkg", f"min_samples={ms} threads={thr}"),
                    {**base, "contender": "dbscan_pkg",
                     "labels_out": str(work / f"pkg_u{thr}.npz")}, _threads_env(thr), scale)
        if o.times_s and p.times_s:
            o.ratio = f"{o.median_s / p.median_s:.2f}x of dbscan_pkg time"
            checks[f"threads={thr}"] = check_labels(path, work / f"ours_u{thr}.npz",
                                                    work / f"pkg_u{thr}.npz", ms, weighted=False)
        rows += [o, p]
    return rows, {"min_samples": ms, "labels_vs_dbscan_pkg": checks}


def section_scaling(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    rows, worlds = [], {}
    for n in scale.scaling:
        path = _data.points_file(data_dir, n)
        worlds[str(n)] = _data.point_stats(path)
        mw = realistic_min_weight(path)
        r = measure(Row("scaling", n, "ours", f"mw={mw:.1f} threads=2"),
                    {"data": str(path), "eps_km": EPS_KM, "min_weight": mw, "contender": "ours",
                     "threads": 2}, _threads_env(2), scale)
        nb = worlds[str(n)]
        r.ratio = (f"{r.median_s / n * 1e6:.2f} us/point; " if r.times_s else "") + \
            f"nbrs mean {nb['nbr_mean']:.0f} median {nb['nbr_median']:.0f}"
        rows.append(r)
    return rows, {"worlds": worlds}


def section_min_weight(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    path = _data.points_file(data_dir, scale.cmp_n)
    total = float(_data.load_points(path)[2].sum())
    rows = []
    for mw in (1e-3, 1.0, 10.0, total * 2e-5, total * MIN_SHARE, total * 2e-3, total * 2e-2,
               total * 10):
        r = measure(Row("min_weight", scale.cmp_n, "ours", f"mw={mw:.4g} threads=2"),
                    {"data": str(path), "eps_km": EPS_KM, "min_weight": mw, "contender": "ours",
                     "threads": 2}, _threads_env(2), scale)
        rows.append(r)
    return rows, {"total_weight": total}


def section_dense(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """The previous (dense) world: ours at each size, scikit-learn once at ``dense_skl``."""
    rows, worlds, checks = [], {}, {}
    for n in scale.dense:
        path = _data.points_file(data_dir, n, world="dense")
        worlds[str(n)] = nb = _data.point_stats(path)
        mw = realistic_min_weight(path)
        base = {"data": str(path), "eps_km": EPS_KM, "min_weight": mw}
        thr = 1 if n == scale.dense_skl else 2
        o = measure(Row("dense", n, "ours", f"mw={mw:.1f} threads={thr}"),
                    {**base, "contender": "ours", "threads": thr,
                     "labels_out": str(work / f"ours_d{n}.npz")}, _threads_env(thr), scale)
        o.ratio = (f"{o.median_s / n * 1e6:.2f} us/point; " if o.times_s else "") + \
            f"nbrs mean {nb['nbr_mean']:.0f} median {nb['nbr_median']:.0f}"
        rows.append(o)
        if n == scale.dense_skl:
            sk = measure(Row("dense", n, "sklearn", f"mw={mw:.1f} ball_tree n_jobs=1"),
                         {**base, "contender": "sklearn",
                          "labels_out": str(work / f"sk_d{n}.npz")}, _threads_env(1), scale,
                         repeats=1)
            o.ratio = _ratio(sk, o) + " vs sklearn; " + o.ratio
            rows.append(sk)
            if sk.status == "ok" and o.status == "ok":
                checks[str(n)] = check_labels(path, work / f"ours_d{n}.npz",
                                              work / f"sk_d{n}.npz", mw)
    return rows, {"worlds": worlds, "labels_vs_sklearn": checks}


def section_e2e(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    rows, baseline_dead = [], False
    for n in scale.e2e:
        path = _data.contributions_file(data_dir, n)
        o = measure(Row("end_to_end", n, "stclusters", "rank(), threads=2"),
                    {"data": str(path), "contender": "e2e_ours"}, _threads_env(2), scale)
        rows.append(o)
        b = Row("end_to_end", n, "pandas+skl", "baseline_pandas_sklearn.py")
        if baseline_dead:
            b.status = "skipped (a smaller size did not finish)"
        elif BASELINE_MAX_N[0] is not None and n > BASELINE_MAX_N[0]:
            b.status = f"skipped (--baseline-max-n {BASELINE_MAX_N[0]:,})"
        else:
            # one run when the first takes > 60 s (a full run must fit in about 30 min): the
            # baseline is the slow side of the ratio, its spread is small next to its time
            measure(b, {"data": str(path), "contender": "e2e_baseline"}, _threads_env(1),
                    scale, once_above_s=60.0)
            baseline_dead = b.status != "ok"
        o.ratio = "" if b.status.startswith("skipped") else _ratio(b, o) + " vs baseline"
        rows.append(b)
    return rows, {}


def _bulk_data(data_dir: Path, fmt: str, n: int) -> tuple[list[str], Any]:
    """The generated files of one bulk format (made once, cached beside the other data):
    what stclusters reads (the published form) and what the DuckDB peer reads (DuckDB reads
    no zip: the unzipped members)."""
    import importlib  # noqa: PLC0415

    gen = importlib.import_module(f"benchmarks.bulk.{fmt}")
    root = data_dir / f"bulk-{fmt}-{n}"
    done = root / ".complete"
    if fmt == "patentsview":
        if not done.exists():
            gen.generate(root / "zip", n_rows=n)
            gen.generate(root / "tsv", n_rows=n, compress="none")
            done.touch()
        ours = sorted(str(p) for p in (root / "zip").iterdir())
        return ours, sorted(str(p) for p in (root / "tsv").iterdir())
    if fmt == "patstat":
        if not done.exists():
            zips = gen.generate(root / "zip", n_rows=n)
            gen.unzip(zips, root / "csv")
            done.touch()
        return sorted(str(p) for p in (root / "zip").iterdir()), \
            sorted(str(p) for p in (root / "csv").iterdir())
    if not done.exists():  # openalex: a snapshot of n / 10 works (about 6 rows per work)
        snapshot = gen.generate(root / "snapshot", n_works=max(n // 10, 1))
        done.write_text(str(Path(snapshot).relative_to(root)))
    snapshot = root / done.read_text()
    return [str(snapshot)], str(snapshot)


#: The bulk formats of the readers section, and what one record is.
_BULK_FORMATS = {"patentsview": "PatentsView zipped TSVs (g_*)",
                 "patstat": "PATSTAT CSV zips (tls201/206/207/209)",
                 "openalex": "OpenAlex snapshot (works + institutions)"}


def section_readers(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """Each bulk reader against its DuckDB peer (read_csv / read_json with the same columns,
    filters and joins), on the same generated files, 1 and 2 threads."""
    rows: list[Row] = []
    for fmt, what in _BULK_FORMATS.items():
        for n in scale.readers:
            ours_paths, peer_arg = _bulk_data(data_dir, fmt, n)
            n_rec = n // 10 if fmt == "openalex" else n  # works, or inventor / link rows
            for threads in (1, 2):
                o = measure(Row("readers", n_rec, f"{fmt}", f"stclusters, threads={threads}"),
                            {"contender": "read_ours", "paths": ours_paths, "threads": threads},
                            _threads_env(threads), scale)
                p = measure(Row("readers", n_rec, f"{fmt} peer",
                                f"DuckDB read_*, threads={threads}"),
                            {"contender": "read_peer", "format": fmt, "peer_arg": peer_arg,
                             "threads": threads}, _threads_env(threads), scale)
                if o.times_s and p.times_s:
                    o.ratio = f"{p.median_s / o.median_s:.2f}x the peer's speed"
                if o.times_s:
                    o.facts["records_per_s"] = round(o.facts.get("read", 0) / o.median_s)
                o.facts["format"] = what
                rows += [o, p]
    return rows, {}


SWEEP_N_THRESHOLDS = 100
SWEEP_EPS_KMS = tuple(float(e) for e in range(4, 24))  # 20 radii, 4..23 km around EPS_KM
SWEEP_CHECKS = 6  # settings of each sweep compared with dbscan_sphere inside the child
SWEEP_SAMPLE = 6  # settings run with the one-setting engine to extrapolate the plane


def sweep_axes(path: Path) -> dict[str, list[float]]:
    """Threshold axes of the sweep section (weight units, ascending, 100 values each).

    ``realistic``: geometric over 100x around the pipeline default, total weight × [2e-5,
    2e-3] (the range the ``min_weight`` section calls realistic). ``whole``: geometric from the
    smallest positive point weight to the total weight, i.e. from "every point is core" to
    "no point is core": nothing can be skipped.
    """
    _, _, w = _data.load_points(path)
    total = float(w.sum())
    return {"realistic": np.geomspace(total * 2e-5, total * 2e-3, SWEEP_N_THRESHOLDS).tolist(),
            "whole": np.geomspace(float(w[w > 0].min()), total,
                                  SWEEP_N_THRESHOLDS).tolist()}


def section_sweep(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """Issue 9 §2: the whole min_weight axis, and a 20 eps x 100 min_weight plane, against
    one run of the one-setting engine (and its extrapolated cost per setting)."""
    path = _data.points_file(data_dir, scale.cmp_n)
    mw = realistic_min_weight(path)
    axes = sweep_axes(path)
    rows: list[Row] = []
    base = {"data": str(path), "threads": 2}
    env = _threads_env(2)
    one = measure(Row("sweep", scale.cmp_n, "one run", f"dbscan_sphere eps={EPS_KM:g} mw={mw:g}"),
                  {**base, "contender": "ours", "eps_km": EPS_KM, "min_weight": mw}, env, scale)
    rows.append(one)
    for name, axis in axes.items():
        r = measure(Row("sweep", scale.cmp_n, "sweep", f"{name} axis: {len(axis)} min_weights "
                        f"{axis[0]:.3g}..{axis[-1]:.3g}"),
                    {**base, "contender": "sweep_ours", "eps_kms": [EPS_KM],
                     "min_weights": axis, "check": SWEEP_CHECKS}, env, scale)
        per = measure(Row("sweep", scale.cmp_n, "per setting", f"{name} axis: dbscan_sphere at "
                          f"{SWEEP_SAMPLE} of {len(axis)}, extrapolated"),
                      {**base, "contender": "settings_ours", "eps_kms": [EPS_KM],
                       "min_weights": axis, "sample": SWEEP_SAMPLE}, env, scale, repeats=1)
        _sweep_ratios(r, per, one, len(axis))
        rows += [r, per]
    axis = axes["realistic"]
    plane = measure(Row("sweep", scale.cmp_n, "plane", f"{len(SWEEP_EPS_KMS)} eps "
                        f"{SWEEP_EPS_KMS[0]:g}..{SWEEP_EPS_KMS[-1]:g} km x {len(axis)} mw"),
                    {**base, "contender": "sweep_ours", "eps_kms": list(SWEEP_EPS_KMS),
                     "min_weights": axis, "check": SWEEP_CHECKS}, env, scale, repeats=1)
    per = measure(Row("sweep", scale.cmp_n, "per setting", f"plane: dbscan_sphere at "
                      f"{SWEEP_SAMPLE} of {len(SWEEP_EPS_KMS) * len(axis)}, extrapolated"),
                  {**base, "contender": "settings_ours", "eps_kms": list(SWEEP_EPS_KMS),
                   "min_weights": axis, "sample": SWEEP_SAMPLE}, env, scale, repeats=1)
    _sweep_ratios(plane, per, one, len(SWEEP_EPS_KMS) * len(axis))
    rows += [plane, per]
    return rows, {"min_weight_one_run": mw, "axes": {k: [v[0], v[-1], len(v)]
                                                      for k, v in axes.items()}}


def _sweep_ratios(sweep: Row, per: Row, one: Row, n_settings: int) -> None:
    """Ratio notes: the sweep against one run, and the per-setting engine extrapolated to all
    settings of the sweep (mean time of the sampled settings × number of settings)."""
    if per.times_s:
        per.facts["extrapolated_s"] = per.facts["mean_s_per_setting"] * n_settings
        per.ratio = (f"~{per.facts['extrapolated_s']:.0f} s for {n_settings} settings "
                     f"({per.facts['mean_s_per_setting']:.2f} s each, sampled)")
    if sweep.times_s and one.times_s:
        sweep.ratio = f"{sweep.median_s / one.median_s:.2f}x one run"
        if per.times_s:
            sweep.ratio += f"; {per.facts['extrapolated_s'] / sweep.median_s:.0f}x faster " \
                           f"than per setting"
        sweep.ratio += (f"; identical at {sweep.facts.get('identity_equal')}/"
                        f"{sweep.facts.get('identity_checked')} checked settings")


def section_per_core(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """Issue 9 §2: the single run on one thread, points per second per core, beside
    scikit-learn (weighted, one thread) and the ``dbscan`` package (unweighted, one thread)."""
    path = _data.points_file(data_dir, scale.cmp_n)
    mw = realistic_min_weight(path)
    _, _, w = _data.load_points(path)
    ms = max(2, int(round(w.sum() * MIN_SHARE / w.mean())))
    env = _threads_env(1)
    base = {"data": str(path), "eps_km": EPS_KM, "threads": 1}
    ow = measure(Row("per_core", scale.cmp_n, "ours", f"weighted mw={mw:g}, 1 thread"),
                 {**base, "contender": "ours", "min_weight": mw,
                  "labels_out": str(work / "pc_ours_w.npz")}, env, scale)
    sk = measure(Row("per_core", scale.cmp_n, "sklearn", f"weighted mw={mw:g}, n_jobs=1"),
                 {**base, "contender": "sklearn", "min_weight": mw,
                  "labels_out": str(work / "pc_sk_w.npz")}, env, scale, repeats=1)
    ou = measure(Row("per_core", scale.cmp_n, "ours", f"unweighted min_samples={ms}, 1 thread"),
                 {**base, "contender": "ours", "min_weight": ms, "weighted": False,
                  "labels_out": str(work / "pc_ours_u.npz")}, env, scale)
    pk = measure(Row("per_core", scale.cmp_n, "dbscan_pkg", f"unweighted min_samples={ms}, "
                     f"1 thread"),
                 {**base, "contender": "dbscan_pkg", "min_weight": ms,
                  "labels_out": str(work / "pc_pkg_u.npz")}, env, scale)
    for r in (ow, sk, ou, pk):
        if r.times_s:
            r.facts["points_per_s_per_core"] = round(scale.cmp_n / r.median_s)
            r.ratio = f"{scale.cmp_n / r.median_s / 1e6:.2f} M points/s/core"
    checks = {}
    if ow.times_s and sk.times_s:
        ow.ratio += f"; {sk.median_s / ow.median_s:.1f}x sklearn"
        checks["weighted_vs_sklearn"] = check_labels(path, work / "pc_ours_w.npz",
                                                     work / "pc_sk_w.npz", mw)
    if ou.times_s and pk.times_s:
        ou.ratio += f"; {pk.median_s / ou.median_s:.2f}x dbscan_pkg speed"
        checks["unweighted_vs_dbscan_pkg"] = check_labels(path, work / "pc_ours_u.npz",
                                                          work / "pc_pkg_u.npz", ms,
                                                          weighted=False)
    return [ow, sk, ou, pk], {"labels": checks}


def section_engines(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    """Issue 12: DuckDB vs Spark local[2] vs standalone 2 workers (:mod:`benchmarks._engines`)."""
    return _engines.section(scale, data_dir, work, Row)


SECTIONS = {"weighted": section_weighted, "skl_sizes": section_sklearn_sizes,
            "unweighted": section_unweighted,
            "scaling": section_scaling, "min_weight": section_min_weight,
            "dense": section_dense, "end_to_end": section_e2e, "readers": section_readers,
            "sweep": section_sweep, "per_core": section_per_core, "engines": section_engines}


# --------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, versions."""
    import importlib.metadata  # noqa: PLC0415

    import numba  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    try:  # the `dbscan` contender is optional: a run of other sections must not need it
        dbscan_version = importlib.metadata.version("dbscan")
    except importlib.metadata.PackageNotFoundError:
        dbscan_version = "not installed"
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo")
                if ln.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "sklearn": sklearn.__version__,
            "dbscan": dbscan_version,
            "load_avg_1_5_15": os.getloadavg(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _fmt_mem(mb: float) -> str:
    return "-" if math.isnan(mb) else f"{mb:,.0f}"


def table(rows: list[Row]) -> str:
    """Plain (Markdown) table of all rows."""
    head = ("| section | n | contender | parameters | median s | runs | peak MiB | clusters | "
            "core % | ratio / note |")
    out = [head, "|" + "---|" * 10]
    for r in rows:
        med = f"{r.median_s:.3f}" if r.times_s else r.status
        cs = r.facts.get("core_share")
        out.append(f"| {r.section} | {r.n:,} | {r.contender} | {r.params} | {med} | "
                   f"{len(r.times_s)} | {_fmt_mem(r.peak_mb)} | {r.facts.get('n_clusters', '')} | "
                   f"{'' if cs is None else f'{100 * cs:.1f}'} | {r.ratio} |")
    return "\n".join(out)


def targets(rows: list[Row], extra: dict[str, Any], scale: Scale) -> list[str]:
    """The issue's targets, each met / missed with the figure."""
    def get(section, contender, n=None, pred=lambda r: True):
        return next((r for r in rows if r.section == section and r.contender == contender
                     and (n is None or r.n == n) and pred(r)), None)
    out = []
    o1 = get("weighted", "ours", pred=lambda r: "threads=1" in r.params)
    sk = get("weighted", "sklearn")
    if o1 and sk and sk.times_s:
        sp = sk.median_s / o1.median_s
        chk = extra["weighted"].get("labels_vs_sklearn", {})
        out.append(f"weighted {scale.cmp_n:,}: {sp:.1f}x faster than sklearn (1 thread each; "
                   f"target >= 50x: {'met' if sp >= 50 else 'MISSED'}); labels identical: "
                   f"{chk.get('identical')} ({chk}); peak {o1.peak_mb:.0f} MiB (target <= 1024: "
                   f"{'met' if o1.peak_mb <= 1024 else 'MISSED'})")
    for thr in (1, 2):
        o = get("unweighted", "ours", pred=lambda r, t=thr: f"threads={t}" in r.params)
        p = get("unweighted", "dbscan_pkg", pred=lambda r, t=thr: f"threads={t}" in r.params)
        if o and p and o.times_s and p.times_s:
            q = o.median_s / p.median_s
            out.append(f"unweighted {thr} thread(s): {q:.2f}x the dbscan package's time "
                       f"(target <= 1.5x: {'met' if q <= 1.5 else 'MISSED'})")
    for n, c in extra.get("skl_sizes", {}).get("labels_vs_sklearn", {}).items():
        o = get("skl_sizes", "ours", n=int(n))
        out.append(f"weighted {int(n):,}: {o.ratio if o else ''}; labels identical: "
                   f"{c.get('identical')} (core diff {c['core_diff']}, noise diff "
                   f"{c['noise_diff']}, causes {c.get('cause', {})})")
    mws = [r for r in rows if r.section == "min_weight" and r.times_s]
    if mws:
        lo, hi = min(mws, key=lambda r: r.median_s), max(mws, key=lambda r: r.median_s)
        q = hi.median_s / lo.median_s
        out.append(f"min_weight sweep: {lo.median_s:.2f}-{hi.median_s:.2f} s, slowest "
                   f"{hi.params} = {q:.1f}x the fastest ({lo.params})")
    big = get("scaling", "ours", n=max(scale.scaling))
    if big and big.times_s:
        out.append(f"scaling {big.n:,}: {big.median_s:.1f} s, {big.peak_mb:.0f} MiB "
                   f"(target 10M <= 20 s and <= 4096 MiB: "
                   f"{'met' if big.median_s <= 20 and big.peak_mb <= 4096 else 'MISSED'})")
    for fmt in _BULK_FORMATS:
        for thr in (1, 2):
            o = get("readers", fmt, pred=lambda r, t=thr: f"threads={t}" in r.params)
            p = get("readers", f"{fmt} peer", pred=lambda r, t=thr: f"threads={t}" in r.params)
            if o and p and o.times_s and p.times_s:
                q = p.median_s / o.median_s
                unit = "works" if fmt == "openalex" else "rows"
                out.append(f"{fmt} {o.n:,} {unit}, {thr} thread(s): {o.median_s:.1f} s "
                           f"({o.facts.get('records_per_s', 0):,} records/s, "
                           f"{o.peak_mb:.0f} MiB) vs DuckDB peer {p.median_s:.1f} s: {q:.2f}x the "
                           f"peer's speed (target >= 1x: {'met' if q >= 1 else 'MISSED'})")
    out += _sweep_targets(rows, get)
    e = get("end_to_end", "stclusters", n=max(scale.e2e))
    b = get("end_to_end", "pandas+skl", n=max(scale.e2e))
    if e and e.times_s:
        ok = e.median_s <= 60 and e.peak_mb <= 4096
        out.append(f"end to end {e.n:,}: {e.median_s:.1f} s, {e.peak_mb:.0f} MiB (target <= 60 s "
                   f"and <= 4096 MiB: {'met' if ok else 'MISSED'}); vs baseline: {e.ratio} "
                   f"(baseline: {b.status if b else 'n/a'}; target >= 20x)")
    return out


def _sweep_targets(rows: list[Row], get) -> list[str]:
    """Issue 9 §2 targets: sweep <= 2x one run, plane <= 60 s, identity, >= 2M points/s/core."""
    out = []
    one = get("sweep", "one run")
    for r in (r for r in rows if r.section == "sweep" and r.contender == "sweep" and r.times_s):
        if one and one.times_s:
            q = r.median_s / one.median_s
            out.append(f"sweep {r.params}: {r.median_s:.2f} s = {q:.2f}x one run "
                       f"({one.median_s:.2f} s) (target <= 2x: {'met' if q <= 2 else 'MISSED'})")
    plane = get("sweep", "plane")
    if plane and plane.times_s:
        out.append(f"plane {plane.params}: {plane.median_s:.1f} s (target <= 60 s: "
                   f"{'met' if plane.median_s <= 60 else 'MISSED'})")
    checked = [r for r in rows if r.section == "sweep" and "identity_checked" in r.facts]
    if checked:
        eq = sum(r.facts["identity_equal"] for r in checked)
        tot = sum(r.facts["identity_checked"] for r in checked)
        out.append(f"sweep identity with dbscan_sphere: {eq}/{tot} checked settings identical "
                   f"(target: all: {'met' if eq == tot else 'MISSED'})")
    pc = get("per_core", "ours", pred=lambda r: r.params.startswith("weighted"))
    if pc and pc.times_s:
        rate = pc.n / pc.median_s
        out.append(f"single run, 1 thread, {pc.n:,} weighted points: {rate / 1e6:.2f} M points/s "
                   f"per core ({pc.ratio}) (target >= 2 M: {'met' if rate >= 2e6 else 'MISSED'})")
    pu = get("per_core", "ours", pred=lambda r: r.params.startswith("unweighted"))
    if pu and pu.times_s:
        out.append(f"single run, 1 thread, unweighted: {pu.ratio}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="stclusters benchmarks")
    ap.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "stclusters-bench-data")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    ap.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run these sections only")
    ap.add_argument("--repeats", type=int, help="override runs per contender")
    ap.add_argument("--timeout", type=float, help="override the per-run time limit, s")
    ap.add_argument("--baseline-max-n", type=int,
                    help="run the pandas baseline of the end-to-end section up to this size only")
    ap.add_argument("--engine-sizes", type=int, nargs="+",
                    help="engines section: these sizes (contributions) instead of the scale's")
    ap.add_argument("--engine-contenders", nargs="+", choices=list(_engines.CONTENDERS),
                    help="engines section: these contenders only")
    args = ap.parse_args(argv)
    _engines.OPTIONS.update(sizes=args.engine_sizes, contenders=args.engine_contenders)
    scale = SCALES["quick" if args.quick else "full"]
    if args.repeats or args.timeout:
        scale = Scale(**{**asdict(scale), **({"repeats": args.repeats} if args.repeats else {}),
                         **({"timeout_s": args.timeout} if args.timeout else {})})
    SCALES_TIMEOUT[0] = scale.timeout_s
    BASELINE_MAX_N[0] = args.baseline_max_n
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stc-bench-labels-") as tmp:
        for name in args.only or list(SECTIONS):
            print(f"[{name}]", file=sys.stderr, flush=True)
            r, e = SECTIONS[name](scale, args.data_dir, Path(tmp))
            rows += r
            extra[name] = e
    info = machine()
    tg = targets(rows, extra, scale)
    print(f"\nstclusters benchmarks ({'quick' if args.quick else 'full'}), {info}\n")
    print(table(rows))
    if any(r.section == "engines" for r in rows):
        print("\nengines:\n" + _engines.table([r for r in rows if r.section == "engines"]))
    print("\nchecks:", json.dumps({k: v for k, v in extra.items() if v}, indent=1))
    print("\ntargets:\n- " + "\n- ".join(tg))
    print(f"\nwall time {time.monotonic() - t0:.0f} s; numba compile time excluded (warm-up "
          f"call in each child); eps = {EPS_KM} km")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"scale": asdict(scale), "machine": info, "targets": tg,
                                     "checks": extra,
                                     "rows": [{**asdict(r), "median_s": r.median_s}
                                              for r in rows]}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
