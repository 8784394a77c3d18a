"""Numba kernels behind :mod:`stclusters.clusters.sweep`: the threshold dendrogram of a grid.

Inputs are the sorted points of :class:`stclusters.clusters.dbscan._Prepared` and their clamped
fixed-point neighbourhood weights ``nw`` (int64, -1 below the sweep's lowest threshold). At a
threshold ``m`` the core points are those with ``nw >= m``; every grid cell is a clique, so a
cell's core points are one group, present from ``m = max nw in the cell`` downwards. Two cells
are linked for every ``m <= L(c, d)``, the largest ``min(nw_p, nw_q)`` over pairs within eps.
Kruskal over the links in decreasing ``L`` records the merges; the merges with ``L >= m`` join
the cells into the core components at ``m``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from stclusters.clusters._grid import _box_d2, _find, _own_neighbours, _union, _within, rdist


@njit(cache=True, parallel=True)
def by_weight(nw, cell_start):
    """Positions of each cell's points by ``nw`` descending (ties: position), and cell maxima.

    Returns ``pos`` (n,) int64 (a permutation within every cell's segment) and ``cell_max``
    (ncell,) int64.
    """
    n = nw.shape[0]
    ncell = cell_start.shape[0] - 1
    pos = np.empty(n, np.int64)
    cell_max = np.empty(ncell, np.int64)
    for c in prange(ncell):
        s = cell_start[c]
        e = cell_start[c + 1]
        seg = np.argsort(-nw[s:e], kind="mergesort")  # stable: ties keep position order
        best = np.int64(-1)
        for k in range(e - s):
            pos[s + k] = s + seg[k]
            if nw[s + seg[k]] > best:
                best = nw[s + seg[k]]
        cell_max[c] = best
    return pos, cell_max


_SCAN = 8  # partners of a point tried one by one (heaviest first) before the vectorised pass


@njit(cache=True)
def _best_partner(p, a, b, nw, xyz, soa, latr, lonr, cl, c_lo2, c_hi2, s2, floor):
    """Largest ``nw[q]`` over q in positions [a, b) within eps of point p; ``floor`` if none is
    larger. Positions are ordered by ``nw`` descending within the range.

    The first ``_SCAN`` partners are tried one by one (the heaviest one within eps usually is
    among them); the rest in a branch-free pass that LLVM vectorises, then the few partners in
    the chord's tolerance band are decided with the oracle's formula.
    """
    xi = xyz[p, 0]
    yi = xyz[p, 1]
    zi = xyz[p, 2]
    head = min(b, a + _SCAN)
    for q in range(a, head):
        if nw[q] <= floor:
            return floor
        if _within(xyz, latr, lonr, cl, p, xyz, latr, lonr, cl, q, c_lo2, c_hi2, s2):
            return nw[q]
    if head == b or nw[head] <= floor:
        return floor
    xs = soa[0, head:b]
    ys = soa[1, head:b]
    zs = soa[2, head:b]
    vs = nw[head:b]
    best = floor
    amb = 0
    for k in range(b - head):
        dx = xi - xs[k]
        dy = yi - ys[k]
        dz = zi - zs[k]
        d2 = dx * dx + dy * dy + dz * dz
        v = vs[k] if d2 <= c_lo2 else floor
        best = max(best, v)
        amb += (d2 > c_lo2) & (d2 <= c_hi2)
    if amb > 0:
        for k in range(b - head):
            if vs[k] <= best:
                break  # descending: no later partner can beat best
            dx = xi - xs[k]
            dy = yi - ys[k]
            dz = zi - zs[k]
            d2 = dx * dx + dy * dy + dz * dz
            if d2 > c_lo2 and d2 <= c_hi2:
                q = head + k
                if rdist(latr[p], lonr[p], cl[p], latr[q], lonr[q], cl[q]) <= s2:
                    best = vs[k]
    return best


@njit(cache=True)
def _link_value(c, d, nw, cell_max, xyz, soa, latr, lonr, cl, cell_start, cell_k, h,
                c_lo2, c_hi2, s2, floor):
    """Largest ``min(nw_p, nw_q)`` over p in cell c, q in cell d within eps; ``floor`` if none
    exceeds it. Points of each cell are stored by ``nw`` descending, so the loop stops as soon
    as no remaining pair can beat the best so far."""
    best = floor
    top_d = cell_max[d]
    for p in range(cell_start[c], cell_start[c + 1]):
        vp = nw[p]
        if min(vp, top_d) <= best:
            break
        dmin2, dmax2 = _box_d2(xyz, p, cell_k, d, h)
        if dmin2 > c_hi2:
            continue
        if dmax2 <= c_lo2:  # all of d within eps of p: its heaviest point is the best partner
            best = min(vp, top_d)
            break  # no later p (lighter) and no other q (lighter than top_d) can beat this
        v = _best_partner(p, cell_start[d], cell_start[d + 1], nw, xyz, soa, latr, lonr, cl,
                          c_lo2, c_hi2, s2, best)
        best = max(best, min(vp, v))
    return best


@njit(cache=True, parallel=True)
def _count_pairs(cell_max, cell_k, col_start, col_k, table, reach, lo):
    """Per cell c (active: max nw >= lo), its active neighbour cells d > c."""
    ncell = cell_max.shape[0]
    side = 2 * reach + 1
    counts = np.zeros(ncell, np.int64)
    for c in prange(ncell):
        if cell_max[c] < lo:
            continue
        nb = np.empty(side * side * side, np.int64)
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, nb)
        k = 0
        for j in range(cnt):
            if nb[j] > c and cell_max[nb[j]] >= lo:
                k += 1
        counts[c] = k
    return counts


@njit(cache=True, parallel=True)
def cell_links(nw, cell_max, xyz, soa, latr, lonr, cl, cell_start, cell_k, col_start, col_k,
               table, h, reach, c_lo2, c_hi2, s2, lo):
    """Every pair of neighbouring active cells (c < d) with its link value ``L`` (int64).

    The point arrays must be stored by ``nw`` descending inside each cell (:func:`by_weight`).
    Returns ``(a, b, L)``; pairs with no core pair within eps at any threshold >= lo have
    ``L = lo - 1`` (the caller drops them).
    """
    ncell = cell_max.shape[0]
    counts = _count_pairs(cell_max, cell_k, col_start, col_k, table, reach, lo)
    start = np.zeros(ncell + 1, np.int64)
    for c in range(ncell):
        start[c + 1] = start[c] + counts[c]
    m = start[ncell]
    ea = np.empty(m, np.int64)
    eb = np.empty(m, np.int64)
    el = np.empty(m, np.int64)
    side = 2 * reach + 1
    for c in prange(ncell):
        if counts[c] == 0:
            continue
        nb = np.empty(side * side * side, np.int64)
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, nb)
        k = start[c]
        for j in range(cnt):
            d = nb[j]
            if d <= c or cell_max[d] < lo:
                continue
            ea[k] = c
            eb[k] = d
            el[k] = _link_value(c, d, nw, cell_max, xyz, soa, latr, lonr, cl, cell_start,
                                cell_k, h, c_lo2, c_hi2, s2, lo - 1)
            k += 1
    return ea, eb, el


@njit(cache=True)
def kruskal(ea, eb, el, order, ncell):
    """Merges of a maximum spanning forest: links taken in ``order`` (``L`` descending).

    Returns ``(ma, mb, ml)``: the cells and link value of each merge, ``ml`` descending.
    """
    parent = np.arange(ncell)
    ma = np.empty(ncell, np.int64)
    mb = np.empty(ncell, np.int64)
    ml = np.empty(ncell, np.int64)
    k = 0
    for t in order:
        a = _find(parent, ea[t])
        b = _find(parent, eb[t])
        if a != b:
            _union(parent, a, b)
            ma[k] = ea[t]
            mb[k] = eb[t]
            ml[k] = el[t]
            k += 1
    return ma[:k].copy(), mb[:k].copy(), ml[:k].copy()


@njit(cache=True)
def cut(ma, mb, n_merges, cell_max, m):
    """Root cell per cell of the core components at threshold m (-1: no core point).

    ``n_merges``: how many leading merges have ``L >= m``.
    """
    ncell = cell_max.shape[0]
    parent = np.arange(ncell)
    for j in range(n_merges):
        _union(parent, ma[j], mb[j])
    root = np.full(ncell, -1, np.int64)
    for c in range(ncell):
        if cell_max[c] >= m:
            root[c] = _find(parent, c)
    return root


@njit(cache=True, parallel=True)
def at_least(nw, m):
    """Core flags ``nw >= m`` (bool, n)."""
    n = nw.shape[0]
    out = np.empty(n, np.bool_)
    for i in prange(n):
        out[i] = nw[i] >= m
    return out


@njit(cache=True, parallel=True)
def threshold_counts(nw, ws, thresholds):
    """Core points and their fixed-point weight at every threshold (ascending, int64).

    Returns ``(n_core, core_weight)`` (k,) int64: points with ``nw >= thresholds[j]``, and
    the sum of their ``ws``. One binary search per point into per-chunk histograms.
    """
    n = nw.shape[0]
    k = thresholds.shape[0]
    nchunk = 64
    size = (n + nchunk - 1) // nchunk
    cnt = np.zeros((nchunk, k + 1), np.int64)
    wsum = np.zeros((nchunk, k + 1), np.int64)
    for t in prange(nchunk):
        for i in range(t * size, min(n, (t + 1) * size)):
            j = np.searchsorted(thresholds, nw[i], side="right")  # thresholds <= nw[i]
            cnt[t, j] += 1
            wsum[t, j] += ws[i]
    n_core = np.zeros(k, np.int64)
    core_w = np.zeros(k, np.int64)
    run_n = np.int64(0)
    run_w = np.int64(0)
    for j in range(k, 0, -1):  # bucket j: the first j thresholds are reached
        for t in range(nchunk):
            run_n += cnt[t, j]
            run_w += wsum[t, j]
        n_core[j - 1] = run_n
        core_w[j - 1] = run_w
    return n_core, core_w
