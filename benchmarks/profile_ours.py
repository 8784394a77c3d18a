"""Where the time goes: pyinstrument profile of ``dbscan_sphere`` on world-realistic points.

``python -m benchmarks.profile_ours [--n 1000000] [--threads 1] [--world dense]`` (data from the
run.py cache; numba compilation excluded by a warm-up call), or of the whole pipeline:
``python -m benchmarks.profile_ours --e2e 10000000`` (``stclusters.rank`` on the cached
synthetic-world Parquet of that many contributions).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import time
from collections import defaultdict

from pyinstrument import Profiler

from benchmarks import _data
from benchmarks._child import _warm_ours


def _time_kernels() -> dict[str, float]:
    """Wrap every function of ``_grid`` (numba kernels, invisible to pyinstrument) in a timer."""
    from stclusters.clusters import _grid  # noqa: PLC0415

    spent: dict[str, float] = defaultdict(float)
    for name in dir(_grid):
        fn = getattr(_grid, name)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type):
            continue

        def timed(*a, _fn=fn, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                spent[_name] += time.perf_counter() - t0
        setattr(_grid, name, timed)
    return spent


def _profile_e2e(args) -> None:
    import stclusters  # noqa: PLC0415

    path = _data.contributions_file(args.data_dir, args.e2e)
    _warm_ours()
    spent = _time_kernels()
    # The default call, as the benchmark times it (in-memory workspace with its budget).
    prof = Profiler(interval=0.01)
    prof.start()
    t0 = time.perf_counter()
    res = stclusters.rank([str(path)])
    total = time.perf_counter() - t0
    prof.stop()
    _report(prof, spent, total, f"stages {res.timings_s}; ")


def _report(prof, spent: dict[str, float], total: float, extra: str = "") -> None:
    """Print the call tree and the wall time of each numba kernel with its share."""
    print(prof.output_text(unicode=False, color=False))
    print(f"total {total:.3f} s; {extra}numba kernels of _grid (wall s, share):")
    for name, sec in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28s} {sec:7.3f}  {100 * sec / total:5.1f} %")


def main(argv: list[str] | None = None) -> None:
    """Profile one call and print the call tree."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--world", choices=list(_data.WORLDS), default="realistic")
    ap.add_argument("--e2e", type=int, default=0, help="profile rank() on this many contributions")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "stclusters-bench-data")
    args = ap.parse_args(argv)
    from stclusters.clusters.dbscan import dbscan_sphere  # noqa: PLC0415

    if args.e2e:
        _profile_e2e(args)
        return
    lat, lon, w = _data.load_points(_data.points_file(args.data_dir, args.n, world=args.world))
    mw = float(max(2, round(w.sum() * 0.0002)))
    _warm_ours()
    spent = _time_kernels()
    prof = Profiler(interval=0.001)
    prof.start()
    t0 = time.perf_counter()
    dbscan_sphere(lat, lon, w, eps_km=13.0, min_weight=mw, n_threads=args.threads)
    total = time.perf_counter() - t0
    prof.stop()
    _report(prof, spent, total)


if __name__ == "__main__":
    main()
