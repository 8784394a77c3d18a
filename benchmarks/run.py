"""Run every stclusters benchmark and print one table (``--quick``: about a minute).

``python -m benchmarks.run [--quick] [--data-dir DIR] [--json PATH]``

Sections (each contender run in its own subprocess, see :mod:`benchmarks._child`):

1. ``weighted``: ours vs scikit-learn (haversine ball tree, ``sample_weight``) on world-realistic
   weighted points; labels checked (core sets, core partitions, noise sets, borders non-noise).
2. ``unweighted``: ours vs the ``dbscan`` package (3-D unit vectors, chord eps), 1 and 2
   threads (``NUMBA_NUM_THREADS`` + ``n_threads=`` / ``PARLAY_NUM_THREADS``).
3. ``scaling``: ours from 100k to 10M points, time per point.
4. ``min_weight``: ours at one size, threshold from tiny (everything core) to huge (nothing).
5. ``end_to_end``: contributions Parquet → ranking, ``stclusters.rank`` vs
   ``benchmarks/baseline_pandas_sklearn.py``.

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

from benchmarks import _data  # noqa: E402

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


SCALES = {
    "quick": Scale(cmp_n=30_000, scaling=(10_000, 30_000, 100_000), e2e=(20_000,), repeats=1,
                   timeout_s=120, mem_limit_mb=8000),
    "full": Scale(cmp_n=1_000_000, scaling=(100_000, 300_000, 1_000_000, 3_000_000, 10_000_000),
                  e2e=(1_000_000, 10_000_000), repeats=3, timeout_s=600, mem_limit_mb=16000),
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
            repeats: int | None = None) -> Row:
    """Fill ``row`` with ``repeats`` runs of ``task`` (stops at the first failure)."""
    peaks = []
    for i in range(repeats or scale.repeats):
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


# --------------------------------------------------------------------------- sections

def _ratio(slow: Row, fast: Row) -> str:
    if fast.median_s > 0 and slow.times_s:
        return f"{slow.median_s / fast.median_s:.1f}x"
    if fast.median_s > 0 and slow.status.startswith("killed after"):
        return f">{SCALES_TIMEOUT[0] / fast.median_s:.0f}x (bound)"
    return "n/a"


SCALES_TIMEOUT = [600.0]  # set by main: the time limit, for lower bounds on ratios


def realistic_min_weight(path: Path) -> float:
    """The pipeline's default threshold (0.02 % of total weight) for these points, rounded
    to an integer (scikit-learn 1.9 only accepts an integer ``min_samples``)."""
    _, _, w = _data.load_points(path)
    return float(max(2, round(w.sum() * MIN_SHARE)))


def section_weighted(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    path = _data.points_file(data_dir, scale.cmp_n)
    mw = realistic_min_weight(path)
    base = {"data": str(path), "eps_km": EPS_KM, "min_weight": mw}
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
        check = compare_labels(work / "ours_w1.npz", work / "sk_w.npz")
    for r in rows[:2]:
        r.ratio = _ratio(sk, r) + " vs sklearn"
    return rows, {"min_weight": mw, "labels_vs_sklearn": check}


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
        checks[str(n)] = compare_labels(work / f"ours_{n}.npz", work / f"sk_{n}.npz")
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
            checks[f"threads={thr}"] = compare_labels(work / f"ours_u{thr}.npz",
                                                      work / f"pkg_u{thr}.npz")
        rows += [o, p]
    return rows, {"min_samples": ms, "labels_vs_dbscan_pkg": checks}


def section_scaling(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    rows = []
    for n in scale.scaling:
        path = _data.points_file(data_dir, n)
        mw = realistic_min_weight(path)
        r = measure(Row("scaling", n, "ours", f"mw={mw:.1f} threads=2"),
                    {"data": str(path), "eps_km": EPS_KM, "min_weight": mw, "contender": "ours",
                     "threads": 2}, _threads_env(2), scale)
        if r.times_s:
            r.ratio = f"{r.median_s / n * 1e6:.2f} us/point"
        rows.append(r)
    return rows, {}


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


def section_e2e(scale: Scale, data_dir: Path, work: Path) -> tuple[list[Row], dict]:
    rows, baseline_dead = [], False
    for n in scale.e2e:
        path = _data.contributions_file(data_dir, n)
        # one run above 1M contributions: a full run must fit the session's time budget
        reps = scale.repeats if n <= 1_000_000 else 1
        o = measure(Row("end_to_end", n, "stclusters", "rank(), threads=2"),
                    {"data": str(path), "contender": "e2e_ours"}, _threads_env(2), scale,
                    repeats=reps)
        rows.append(o)
        b = Row("end_to_end", n, "pandas+skl", "baseline_pandas_sklearn.py")
        if baseline_dead:
            b.status = "skipped (a smaller size did not finish)"
        else:
            # one run when a run is long: the baseline is the slow side of the ratio
            measure(b, {"data": str(path), "contender": "e2e_baseline"}, _threads_env(1),
                    scale, repeats=reps)
            baseline_dead = b.status != "ok"
        o.ratio = "" if b.status.startswith("skipped") else _ratio(b, o) + " vs baseline"
        rows.append(b)
    return rows, {}


SECTIONS = {"weighted": section_weighted, "skl_sizes": section_sklearn_sizes,
            "unweighted": section_unweighted,
            "scaling": section_scaling, "min_weight": section_min_weight,
            "end_to_end": section_e2e}


# --------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, versions."""
    import dbscan  # noqa: PLC0415
    import numba  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo")
                if ln.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "sklearn": sklearn.__version__,
            "dbscan": getattr(dbscan, "__version__", "1.0.0 (pip metadata)"),
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
    big = get("scaling", "ours", n=max(scale.scaling))
    if big and big.times_s:
        out.append(f"scaling {big.n:,}: {big.median_s:.1f} s, {big.peak_mb:.0f} MiB "
                   f"(target 10M <= 20 s and <= 4096 MiB: "
                   f"{'met' if big.median_s <= 20 and big.peak_mb <= 4096 else 'MISSED'})")
    e = get("end_to_end", "stclusters", n=max(scale.e2e))
    b = get("end_to_end", "pandas+skl", n=max(scale.e2e))
    if e and e.times_s:
        ok = e.median_s <= 60 and e.peak_mb <= 4096
        out.append(f"end to end {e.n:,}: {e.median_s:.1f} s, {e.peak_mb:.0f} MiB (target <= 60 s "
                   f"and <= 4096 MiB: {'met' if ok else 'MISSED'}); vs baseline: {e.ratio} "
                   f"(baseline: {b.status if b else 'n/a'}; target >= 20x)")
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
    args = ap.parse_args(argv)
    scale = SCALES["quick" if args.quick else "full"]
    if args.repeats or args.timeout:
        scale = Scale(**{**asdict(scale), **({"repeats": args.repeats} if args.repeats else {}),
                         **({"timeout_s": args.timeout} if args.timeout else {})})
    SCALES_TIMEOUT[0] = scale.timeout_s
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
