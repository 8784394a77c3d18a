"""Scratch timing of the DBSCAN kernels (not a test, not the harness).

``python benchmarks/_scratch_dbscan_timing.py N [--repeat 3] [--threads 2] [--impl new|old]``

Data: the harness's cached world-realistic points (``$TMPDIR/stclusters-bench-data/
points_<N>_s0.npz``; a larger cached file is subsampled when N has none), split at random into
two "sources" like the pipeline's patents and publications. Per repeat it times, like
``clusters.st.cluster_points``: ``dbscan_sphere`` per source (min_weight = 0.02 % of the
source's total weight), ``link_clusters`` between the two core sets, ``nearest_core`` of every
non-core point against all core points, and (``--impl new``) every ``_grid`` kernel inside.
Medians over repeats are printed; ``--impl old`` runs a frozen copy from ``/tmp/before``.
``--dbscan-pkg`` adds the ``dbscan`` package on all N points as 3-D unit vectors.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

DATA = Path(tempfile.gettempdir()) / "stclusters-bench-data"


def load(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = DATA / f"points_{n}_s0.npz"
    if not f.exists():
        sizes = sorted(int(p.name.split("_")[1]) for p in DATA.glob("points_*_s0.npz"))
        f = DATA / f"points_{min(s for s in sizes if s >= n)}_s0.npz"
    with np.load(f) as z:
        lat, lon, w = z["lat"], z["lon"], z["w"]
    if lat.shape[0] > n:
        pick = np.sort(np.random.default_rng(5).permutation(lat.shape[0])[:n])
        lat, lon, w = lat[pick], lon[pick], w[pick]
    return lat, lon, w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--eps", type=float, default=13.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--impl", choices=["new", "old"], default="new")
    ap.add_argument("--minw-pct", type=float, default=0.02)
    ap.add_argument("--dbscan-pkg", action="store_true")
    ap.add_argument("--check", action="store_true", help="compare outputs with --impl old")
    args = ap.parse_args()
    if args.impl == "old" or args.check:
        sys.path.insert(0, "/tmp/before")
    if args.impl == "old":
        import olddbscan as mod  # noqa: PLC0415
    else:
        from stclusters.clusters import dbscan as mod  # noqa: PLC0415
    lat, lon, w = load(args.n)
    n = lat.shape[0]
    src = np.random.default_rng(11).random(n) < 0.5
    parts = [np.flatnonzero(src), np.flatnonzero(~src)]
    # warm-up (compilation)
    m = 3000
    r = mod.dbscan_sphere(lat[:m], lon[:m], w[:m], eps_km=args.eps, min_weight=2.0)
    mod.nearest_core(lat[:m], lon[:m], lat[:m][r.is_core], lon[:m][r.is_core],
                     r.labels[r.is_core], eps_km=args.eps)
    mod.link_clusters(lat[:m:2], lon[:m:2], r.labels[:m:2], lat[1:m:2], lon[1:m:2],
                      r.labels[1:m:2], eps_km=args.eps)
    spent: dict[str, float] = defaultdict(float)
    if args.impl == "new":  # kernel timers (the frozen old copy is timed as a whole only)
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from benchmarks.profile_ours import _time_kernels  # noqa: PLC0415

        spent = _time_kernels()
    stages: dict[str, list[float]] = defaultdict(list)
    kern: dict[str, list[float]] = defaultdict(list)
    outs = None
    for _ in range(args.repeat):
        spent.clear()
        t_all = {}
        res = []
        t0 = time.perf_counter()
        for p in parts:
            tot = float(w[p].sum())
            res.append(mod.dbscan_sphere(lat[p], lon[p], w[p], eps_km=args.eps,
                                         min_weight=tot * args.minw_pct / 100,
                                         n_threads=args.threads))
        t_all["dbscan_sphere (2 sources)"] = time.perf_counter() - t0
        ca = parts[0][res[0].is_core]
        cb = parts[1][res[1].is_core]
        t0 = time.perf_counter()
        pairs = mod.link_clusters(lat[ca], lon[ca], res[0].labels[res[0].is_core],
                                  lat[cb], lon[cb], res[1].labels[res[1].is_core],
                                  eps_km=args.eps, n_threads=args.threads)
        t_all["link_clusters"] = time.perf_counter() - t0
        core = np.zeros(n, bool)
        core[ca] = True
        core[cb] = True
        lab = np.full(n, -1, np.int64)
        lab[parts[0]] = res[0].labels
        lab[parts[1]] = res[1].labels + res[0].n_clusters
        ci = np.flatnonzero(core)
        rest = np.flatnonzero(~core)
        t0 = time.perf_counter()
        nl, nd = mod.nearest_core(lat[rest], lon[rest], lat[ci], lon[ci], lab[ci],
                                  eps_km=args.eps, n_threads=args.threads)
        t_all["nearest_core"] = time.perf_counter() - t0
        for k, v in t_all.items():
            stages[k].append(v)
        for k, v in spent.items():
            kern[k].append(v)
        outs = (res, pairs, nl, nd)
    print(f"n={n} eps={args.eps} impl={args.impl} threads={args.threads} "
          f"cores a/b={len(ca)}/{len(cb)} queries={len(rest)} pairs={len(outs[1])} "
          f"load={os.getloadavg()}")
    for k, v in stages.items():
        print(f"  {k:28s} median {statistics.median(v):7.3f} s   {['%.3f' % x for x in v]}")
    for k, v in sorted(kern.items(), key=lambda kv: -statistics.median(kv[1])):
        if statistics.median(v) > 0.005:
            print(f"    kernel {k:24s} {statistics.median(v):7.3f} s")
    if args.check:
        import oldgrid  # noqa: F401, PLC0415
        import olddbscan as old  # noqa: PLC0415
        res, pairs, nl, nd = outs
        for p, r in zip(parts, res):
            tot = float(w[p].sum())
            o = old.dbscan_sphere(lat[p], lon[p], w[p], eps_km=args.eps,
                                  min_weight=tot * args.minw_pct / 100)
            assert o.labels.tobytes() == r.labels.tobytes(), "labels differ"
            assert o.is_core.tobytes() == r.is_core.tobytes(), "core differs"
            assert o.representative.tobytes() == r.representative.tobytes()
        opairs = old.link_clusters(lat[ca], lon[ca], res[0].labels[res[0].is_core],
                                   lat[cb], lon[cb], res[1].labels[res[1].is_core],
                                   eps_km=args.eps)
        assert opairs.tobytes() == pairs.tobytes(), "pairs differ"
        ol, od = old.nearest_core(lat[rest], lon[rest], lat[ci], lon[ci], lab[ci], eps_km=args.eps)
        assert ol.tobytes() == nl.tobytes(), "nearest labels differ"
        assert od.tobytes() == nd.tobytes(), "nearest distances differ"
        print("  check vs old: identical")
    if args.dbscan_pkg:
        import dbscan as wgs  # noqa: PLC0415

        la, lo = np.radians(lat), np.radians(lon)
        X = np.c_[np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]
        chord = 2 * math.sin(args.eps / 6371.0088 / 2)
        ms = 200
        tp, to = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            wgs.DBSCAN(X, eps=chord, min_samples=ms)
            tp.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            mod.dbscan_sphere(lat, lon, eps_km=args.eps, min_weight=ms, n_threads=args.threads)
            to.append(time.perf_counter() - t0)
        print(f"  unweighted n={n} min_samples={ms}: dbscan pkg median "
              f"{statistics.median(tp):.3f} s, ours {statistics.median(to):.3f} s")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
