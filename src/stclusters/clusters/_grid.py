"""Numba kernels behind :mod:`stclusters.clusters.dbscan`: a uniform 3-D grid on unit vectors.

Geometry
--------
Points (latitude, longitude in radians) are mapped to 3-D unit vectors. Two points are within
``eps`` (radians of arc) iff their chord is ``<= c = 2 sin(eps / 2)``. The grid has cell side
``h = (c - tol) / sqrt(3)`` so every cell's diameter is below ``c - tol``: all points in one cell
are within ``eps`` of each other ("clique cells"). Candidates of a point lie in the
``(2R + 1)^3`` cells around its own (``R = ceil((c + tol) / h)``, i.e. 2), enumerated as 25
columns ``(kx, ky)`` (hash table) times a ``kz`` range (binary search in the column).

Exact boundary
--------------
scikit-learn's ``BallTree(metric="haversine").query_radius`` (the DBSCAN oracle) decides leaf
points with the *reduced* distance, in this float order::

    sin_0 = sin(0.5 * (lat1 - lat2)); sin_1 = sin(0.5 * (lon1 - lon2))
    rdist = sin_0 * sin_0 + cos(lat1) * cos(lat2) * sin_1 * sin_1
    within  <=>  rdist <= t * t,   t = sin(0.5 * eps)

(``sklearn/metrics/_dist_metrics.pyx.tp`` ``HaversineDistance.rdist`` / ``_dist_to_rdist``,
``sklearn/neighbors/_binary_tree.pxi.tp`` ``_query_radius_single`` case 3). :func:`rdist`
repeats exactly these operations (glibc ``sin``/``cos``, no FMA contraction: checked) on
``np.radians`` of the inputs, like the oracle's caller does. The 3-D chord is only a filter:
chord^2 ``<= (c - tol)^2`` is certainly inside, ``> (c + tol)^2`` certainly outside, anything
in between is decided by :func:`rdist`. ``tol = 1e-13 + 1e-9 c`` (unit-sphere units) is ~100x
the worst rounding of either form (coordinates near the dateline/poles included).

Weights
-------
Neighbourhood weights are sums of int64 fixed-point weights (:func:`fixed_point`): exact in
any order, so :func:`neighbour_weights` (one point at a time, with early exits: the core test
of one run) and :func:`all_neighbour_weights` (every pair once, for both points: the sweeps)
give the same integers, and the order of points inside a cell is free (dense cells keep theirs
grouped by sub-box; sweeps keep theirs heaviest first).

Memory is O(n): sorted copies of the point arrays plus per-cell / per-column tables; no
neighbour lists are stored.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

TOL_ABS = 1e-13
TOL_REL = 1e-9
_FIXED_BITS = 62  # a sum of all fixed-point weights stays below 2**62: no int64 overflow


#: Relative tolerance of the core test: a neighbourhood weight within this share of
#: ``min_weight`` below it counts as reaching it. Weights such as 1/3 (one of three inventors)
#: are not exact in binary: three of them sum to just below 1 in any finite arithmetic,
#: while their real sum is 1 (scikit-learn's float sum happens to round to 1.0). 2**-36 is
#: ~1.5e-11: far above the rounding of any realistic sum (0.5 unit of 2**-b per term, see
#: :func:`fixed_point`), far below any real difference of weights made of documents.
TIE_REL = 2.0 ** -36


def fixed_point(w: np.ndarray) -> tuple[np.ndarray, int]:
    """Weights as int64 fixed point ``round(w * 2**scale_bits)``, and ``scale_bits``.

    ``scale_bits`` is the largest power of two for which the total stays below ``2**61``;
    rounding adds at most half a unit per point, so every sum of these integers stays below
    ``2**62`` and is exact, whatever its order. Integers and dyadic fractions down to
    ``2**-scale_bits`` are represented exactly.

    Raises
    ------
    ValueError
        The total weight is 2**61 or more (no fixed point keeps it exact in int64).
    """
    total = float(w.sum())
    if not total < 2.0 ** (_FIXED_BITS - 1):
        raise ValueError(f"total weight {total!r} is too large for exact sums (< 2**61)")
    scale_bits = _FIXED_BITS - 1 - math.frexp(total)[1] if total > 0 else 0
    return np.rint(np.ldexp(w, scale_bits)).astype(np.int64), scale_bits


def fixed_threshold(min_weight: float, scale_bits: int) -> int:
    """Smallest fixed-point sum that reaches ``min_weight`` (> 0):
    ``ceil(min_weight * 2**scale_bits * (1 - TIE_REL))`` (see :data:`TIE_REL`), at least 1 (a
    weightless neighbourhood never reaches a positive threshold), capped at ``2**62`` (which
    no sum reaches)."""
    if math.frexp(min_weight)[1] + scale_bits > _FIXED_BITS:  # ldexp would overflow
        return 2 ** _FIXED_BITS
    v = math.ldexp(min_weight, scale_bits) * (1.0 - TIE_REL)
    return max(1, int(math.ceil(v))) if v < 2.0 ** _FIXED_BITS else 2 ** _FIXED_BITS


def grid_geometry(eps_rad: float) -> tuple[float, float, float, float, float, int]:
    """Grid constants for an eps in radians of arc.

    Returns
    -------
    (h, inv_h, c_lo2, c_hi2, s2, R): cell side, its inverse, squared chord bounds of the
    certain-inside / certain-outside filters, the oracle threshold ``sin(eps/2)^2`` and the
    neighbour reach in cells.
    """
    c = 2.0 * math.sin(0.5 * eps_rad)
    tol = TOL_ABS + TOL_REL * c
    h = (c - tol) / math.sqrt(3.0)
    t = math.sin(0.5 * eps_rad)  # sklearn HaversineDistance._dist_to_rdist
    s2 = t * t
    reach = int(math.ceil((c + tol) / h))
    return h, 1.0 / h, (c - tol) ** 2, (c + tol) ** 2, s2, reach


# --------------------------------------------------------------------------- point kernels

@njit(cache=True, parallel=True)
def unit_vectors(latr, lonr):
    """3-D unit vectors (n, 3) and cos(lat) (n,) of radian coordinates."""
    n = latr.shape[0]
    xyz = np.empty((n, 3))
    coslat = np.empty(n)
    for i in prange(n):
        cl = math.cos(latr[i])
        coslat[i] = cl
        xyz[i, 0] = cl * math.cos(lonr[i])
        xyz[i, 1] = cl * math.sin(lonr[i])
        xyz[i, 2] = math.sin(latr[i])
    return xyz, coslat


@njit(cache=True)
def rdist(lat1, lon1, cl1, lat2, lon2, cl2):
    """scikit-learn's haversine reduced distance, same float operations (see module doc)."""
    s0 = math.sin(0.5 * (lat1 - lat2))
    s1 = math.sin(0.5 * (lon1 - lon2))
    return s0 * s0 + cl1 * cl2 * s1 * s1


@njit(cache=True)
def _chord2(xyz, i, xyz2, q):
    dx = xyz[i, 0] - xyz2[q, 0]
    dy = xyz[i, 1] - xyz2[q, 1]
    dz = xyz[i, 2] - xyz2[q, 2]
    return dx * dx + dy * dy + dz * dz


@njit(cache=True)
def _within(xyz, latr, lonr, cl, i, xyz2, latr2, lonr2, cl2, q, c_lo2, c_hi2, s2):
    """Oracle "distance <= eps" between point i of set 1 and point q of set 2."""
    d2 = _chord2(xyz, i, xyz2, q)
    if d2 <= c_lo2:
        return True
    if d2 > c_hi2:
        return False
    return rdist(latr[i], lonr[i], cl[i], latr2[q], lonr2[q], cl2[q]) <= s2


@njit(cache=True, parallel=True)
def cell_coords(xyz, inv_h):
    """Integer cell coordinates (n, 3) int64; origin at (-1, -1, -1) so all are >= 0."""
    n = xyz.shape[0]
    k = np.empty((n, 3), np.int64)
    for i in prange(n):
        for d in range(3):
            k[i, d] = np.int64(math.floor((xyz[i, d] + 1.0) * inv_h))
    return k


@njit(cache=True, parallel=True)
def pack_keys(k, kmin, b1, b2):
    """One int64 key per point, lexicographic in (kx, ky, kz); caller checks the bit budget."""
    n = k.shape[0]
    key = np.empty(n, np.int64)
    for i in prange(n):
        key[i] = (((k[i, 0] - kmin[0]) << (b1 + b2)) | ((k[i, 1] - kmin[1]) << b2)
                  | (k[i, 2] - kmin[2]))
    return key


@njit(cache=True, parallel=True)
def unpack_keys(key, kmin, b1, b2):
    """Cell coordinates (n, 3) of keys made by :func:`pack_keys` (inverse, row by row)."""
    n = key.shape[0]
    k = np.empty((n, 3), np.int64)
    m1 = (np.int64(1) << b1) - 1
    m2 = (np.int64(1) << b2) - 1
    for i in prange(n):
        k[i, 0] = (key[i] >> (b1 + b2)) + kmin[0]
        k[i, 1] = ((key[i] >> b2) & m1) + kmin[1]
        k[i, 2] = (key[i] & m2) + kmin[2]
    return k


@njit(cache=True, parallel=True)
def gather_points(order, xyz, latr, lonr, cl):
    """Rows ``order`` of the point arrays, in one pass."""
    n = order.shape[0]
    oxyz = np.empty((n, 3))
    olat = np.empty(n)
    olon = np.empty(n)
    ocl = np.empty(n)
    for i in prange(n):
        o = order[i]
        oxyz[i, 0] = xyz[o, 0]
        oxyz[i, 1] = xyz[o, 1]
        oxyz[i, 2] = xyz[o, 2]
        olat[i] = latr[o]
        olon[i] = lonr[o]
        ocl[i] = cl[o]
    return oxyz, olat, olon, ocl


@njit(cache=True, parallel=True)
def gather_rows(a, order):
    n = order.shape[0]
    out = np.empty((n, a.shape[1]), a.dtype)
    for i in prange(n):
        for d in range(a.shape[1]):
            out[i, d] = a[order[i], d]
    return out


@njit(cache=True, parallel=True)
def gather(a, order):
    n = order.shape[0]
    out = np.empty(n, a.dtype)
    for i in prange(n):
        out[i] = a[order[i]]
    return out


@njit(cache=True)
def cell_tables(ks):
    """Cells and columns of sorted cell coordinates ``ks`` (n, 3).

    Returns cell_start (ncell + 1,), cell_k (ncell, 3), col_start (ncol + 1,) into cells,
    col_k (ncol, 2), and an open-addressing hash table (power-of-two size) of column ids.
    """
    n = ks.shape[0]
    ncell = 0
    for i in range(n):
        if i == 0 or ks[i, 0] != ks[i - 1, 0] or ks[i, 1] != ks[i - 1, 1] or ks[i, 2] != ks[i - 1, 2]:
            ncell += 1
    cell_start = np.empty(ncell + 1, np.int64)
    cell_k = np.empty((ncell, 3), np.int64)
    c = 0
    for i in range(n):
        if i == 0 or ks[i, 0] != ks[i - 1, 0] or ks[i, 1] != ks[i - 1, 1] or ks[i, 2] != ks[i - 1, 2]:
            cell_start[c] = i
            cell_k[c, 0] = ks[i, 0]
            cell_k[c, 1] = ks[i, 1]
            cell_k[c, 2] = ks[i, 2]
            c += 1
    cell_start[ncell] = n
    ncol = 0
    for c in range(ncell):
        if c == 0 or cell_k[c, 0] != cell_k[c - 1, 0] or cell_k[c, 1] != cell_k[c - 1, 1]:
            ncol += 1
    col_start = np.empty(ncol + 1, np.int64)
    col_k = np.empty((ncol, 2), np.int64)
    j = 0
    for c in range(ncell):
        if c == 0 or cell_k[c, 0] != cell_k[c - 1, 0] or cell_k[c, 1] != cell_k[c - 1, 1]:
            col_start[j] = c
            col_k[j, 0] = cell_k[c, 0]
            col_k[j, 1] = cell_k[c, 1]
            j += 1
    col_start[ncol] = ncell
    size = 16
    while size < 2 * ncol:
        size *= 2
    table = np.full(size, -1, np.int64)
    mask = size - 1
    for j in range(ncol):
        s = _hash(col_k[j, 0], col_k[j, 1], mask)
        while table[s] != -1:
            s = (s + 1) & mask
        table[s] = j
    return cell_start, cell_k, col_start, col_k, table


@njit(cache=True)
def _hash(kx, ky, mask):
    hv = (np.uint64(kx) * np.uint64(0x9E3779B97F4A7C15)) ^ (np.uint64(ky) * np.uint64(0xC2B2AE3D27D4EB4F))
    hv ^= hv >> np.uint64(29)
    return np.int64(hv & np.uint64(mask))


@njit(cache=True)
def _column(kx, ky, col_k, table):
    if kx < 0 or ky < 0:
        return -1
    mask = table.shape[0] - 1
    s = _hash(kx, ky, mask)
    while True:
        j = table[s]
        if j == -1:
            return -1
        if col_k[j, 0] == kx and col_k[j, 1] == ky:
            return j
        s = (s + 1) & mask


@njit(cache=True)
def neighbour_cells(kx, ky, kz, reach, cell_k, col_start, col_k, table, out):
    """Write ids of existing cells within ``reach`` cells of (kx, ky, kz) to ``out``; count.

    Order is by cell key (deterministic, independent of input order).
    """
    cnt = 0
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            j = _column(kx + dx, ky + dy, col_k, table)
            if j < 0:
                continue
            lo = col_start[j]
            hi = col_start[j + 1]
            zlo = kz - reach
            while lo < hi:  # first cell of the column with kz >= zlo
                mid = (lo + hi) >> 1
                if cell_k[mid, 2] < zlo:
                    lo = mid + 1
                else:
                    hi = mid
            end = col_start[j + 1]
            while lo < end and cell_k[lo, 2] <= kz + reach:
                out[cnt] = lo
                cnt += 1
                lo += 1
    return cnt


@njit(cache=True)
def _own_neighbours(c, reach, cell_k, col_start, col_k, table, out):
    """:func:`neighbour_cells` of cell c of the same grid."""
    return neighbour_cells(cell_k[c, 0], cell_k[c, 1], cell_k[c, 2], reach, cell_k, col_start,
                           col_k, table, out)


@njit(cache=True)
def _box_d2(xyz, i, cell_k, d, h):
    """Squared min and max distance from point i to the box of cell d."""
    return _box_dist2(xyz, i, cell_k[d, 0] * h - 1.0, cell_k[d, 1] * h - 1.0,
                      cell_k[d, 2] * h - 1.0, h)


@njit(cache=True)
def _box_dist2(xyz, i, lo0, lo1, lo2, side):
    """Squared min and max distance from point i to the box [lo, lo + side] (3 axes)."""
    dmin = 0.0
    dmax = 0.0
    for a in range(3):
        lo = lo0 if a == 0 else (lo1 if a == 1 else lo2)
        hi = lo + side
        p = xyz[i, a]
        if p < lo:
            dmin += (lo - p) * (lo - p)
        elif p > hi:
            dmin += (p - hi) * (p - hi)
        far = max(abs(p - lo), abs(p - hi))
        dmax += far * far
    return dmin, dmax


# --------------------------------------------------------------------------- sorting

_RADIX_BITS = 11  # digit width of the radix sort: 2048 bins per pass


@njit(cache=True, parallel=True)
def _radix_pass(src_key, src_idx, dst_key, dst_idx, shift, mask, nchunk):
    """One stable counting-sort pass on digit ``(key >> shift) & mask``, chunks in parallel."""
    n = src_key.shape[0]
    nbin = mask + 1
    size = (n + nchunk - 1) // nchunk
    counts = np.zeros((nchunk, nbin), np.int64)
    for t in prange(nchunk):
        for i in range(t * size, min(n, (t + 1) * size)):
            counts[t, (src_key[i] >> shift) & mask] += 1
    acc = 0  # exclusive prefix, digit-major then chunk: keeps the pass stable
    for b in range(nbin):
        for t in range(nchunk):
            c = counts[t, b]
            counts[t, b] = acc
            acc += c
    for t in prange(nchunk):
        for i in range(t * size, min(n, (t + 1) * size)):
            b = (src_key[i] >> shift) & mask
            p = counts[t, b]
            counts[t, b] = p + 1
            dst_key[p] = src_key[i]
            dst_idx[p] = src_idx[i]


def radix_sort(key, idx, nbits):
    """Stable LSD radix sort of non-negative int64 ``key`` (< 2**nbits), carrying ``idx``.

    Returns (sorted keys, idx permuted alike). Parallel over chunks; the result does not
    depend on the thread count (every pass is stable). Inputs are not modified.
    """
    n = key.shape[0]
    npass = -(-int(nbits) // _RADIX_BITS)
    if npass == 0 or n <= 1:
        return key.copy(), idx.copy()
    dbits = -(-int(nbits) // npass)
    nchunk = max(1, min(64, n // 32768))
    a_key, a_idx = key, idx
    b_key, b_idx = np.empty_like(key), np.empty_like(idx)
    for p in range(npass):
        _radix_pass(a_key, a_idx, b_key, b_idx, p * dbits, (1 << dbits) - 1, nchunk)
        if p == 0:  # never write into the caller's arrays
            a_key, a_idx = np.empty_like(key), np.empty_like(idx)
        a_key, b_key = b_key, a_key
        a_idx, b_idx = b_idx, a_idx
    return a_key, a_idx


@njit(cache=True)
def _less3(a, b, k1, k2, k3, nkeys):
    if k1[a] != k1[b] or nkeys == 1:
        return k1[a] < k1[b]
    if k2[a] != k2[b] or nkeys == 2:
        return k2[a] < k2[b]
    return k3[a] < k3[b]


@njit(cache=True, parallel=True)
def sort_within_cells(order, cell_start, k1, k2, k3, nkeys):
    """Stable sort of each cell's segment of ``order`` by (k1, k2, k3)[:nkeys] (in place).

    Keys are indexed like the input points (``k1[order[i]]``). Segments already in order
    (typical: input sorted by (lat, lon) and a stable sort by cell) are only checked.
    """
    ncell = cell_start.shape[0] - 1
    for c in prange(ncell):
        s = cell_start[c]
        e = cell_start[c + 1]
        if e - s <= 1:
            continue
        done = True
        for i in range(s + 1, e):
            if _less3(order[i], order[i - 1], k1, k2, k3, nkeys):
                done = False
                break
        if done:
            continue
        seg = order[s:e].copy()
        for kk in range(nkeys - 1, -1, -1):  # LSD: least significant key first, stable sorts
            src = k1 if kk == 0 else (k2 if kk == 1 else k3)
            v = np.empty(e - s, src.dtype)
            for j in range(e - s):
                v[j] = src[seg[j]]
            seg = seg[np.argsort(v, kind="mergesort")]
        order[s:e] = seg


@njit(cache=True, parallel=True)
def cell_sums(wq, cell_start):
    """Fixed-point weight per cell (int64; exact, see :func:`fixed_point`)."""
    ncell = cell_start.shape[0] - 1
    out = np.empty(ncell, np.int64)
    for c in prange(ncell):
        acc = np.int64(0)
        for i in range(cell_start[c], cell_start[c + 1]):
            acc += wq[i]
        out[c] = acc
    return out


# --------------------------------------------------------------------------- DBSCAN steps

@njit(cache=True)
def _range_weight(i, a, b, xyz, soa, latr, lonr, cl, wq, c_lo2, c_hi2, s2):
    """Fixed-point weight of the points at positions [a, b) within eps of point i (exact).

    A branch-free first pass over the coordinate rows ``soa`` (3, n) adds the certainly
    inside points and counts the ambiguous ones (the chord in the tolerance band); only if
    there are any, a second pass decides them with the oracle's formula. The chord is the
    same float expression as :func:`_chord2`.
    """
    xi = xyz[i, 0]
    yi = xyz[i, 1]
    zi = xyz[i, 2]
    # slices and a 0-based loop without branches: LLVM vectorises this pass (no FMA: the
    # products and sums are the same float operations as the scalar chord)
    xs = soa[0, a:b]
    ys = soa[1, a:b]
    zs = soa[2, a:b]
    ws = wq[a:b]
    acc = np.int64(0)
    amb = 0
    for k in range(b - a):
        dx = xi - xs[k]
        dy = yi - ys[k]
        dz = zi - zs[k]
        d2 = dx * dx + dy * dy + dz * dz
        acc += ws[k] * (d2 <= c_lo2)
        amb += (d2 > c_lo2) & (d2 <= c_hi2)
    if amb > 0:
        for k in range(b - a):
            dx = xi - xs[k]
            dy = yi - ys[k]
            dz = zi - zs[k]
            d2 = dx * dx + dy * dy + dz * dz
            if d2 > c_lo2 and d2 <= c_hi2:
                q = a + k
                if rdist(latr[i], lonr[i], cl[i], latr[q], lonr[q], cl[q]) <= s2:
                    acc += ws[k]
    return acc


@njit(cache=True)
def _partial_weight(i, d, xyz, soa, latr, lonr, cl, wq, cell_start, cell_k, h, c_lo2, c_hi2,
                    s2, dense_id, sub_start, sub_w):
    """Fixed-point weight of the points of cell d within eps of point i (exact).

    Dense cells are summed sub-box by sub-box (their points are stored grouped by sub-box,
    see :func:`sub_boxes`): whole sub-boxes inside the ball at once, points of straddling
    ones one by one.
    """
    di = dense_id[d]
    if di < 0:
        return _range_weight(i, cell_start[d], cell_start[d + 1], xyz, soa, latr, lonr, cl, wq,
                             c_lo2, c_hi2, s2)
    acc = np.int64(0)
    hs = h / _SUB
    for b in range(_NSUB):
        if sub_start[di, b] == sub_start[di, b + 1]:
            continue
        x0, y0, z0 = _sub_corner(cell_k, d, b, h)
        dmin2, dmax2 = _box_dist2(xyz, i, x0, y0, z0, hs)
        if dmin2 > c_hi2:
            continue
        if dmax2 <= c_lo2:
            acc += sub_w[di, b]
            continue
        acc += _range_weight(i, sub_start[di, b], sub_start[di, b + 1], xyz, soa, latr, lonr,
                             cl, wq, c_lo2, c_hi2, s2)
    return acc


@njit(cache=True, parallel=True)
def neighbour_weights(xyz, soa, latr, lonr, cl, wq, cell_start, cell_k, cell_w, col_start,
                      col_k, table, h, reach, c_lo2, c_hi2, s2, lo, hi, dense_id, sub_start,
                      sub_w):
    """Fixed-point weight within eps of every (sorted) point, itself included, clamped.

    Returns int64 ``nw`` (n,): the exact sum when it lies in ``[lo, hi]``, ``hi`` when the sum
    is >= hi, and -1 when it is < lo. So for every threshold ``m`` in ``[lo, hi]``,
    ``nw >= m`` is exactly "the neighbourhood weight reaches m" (``lo = hi = m``: the plain
    DBSCAN core test). Weights are int64 fixed point (:func:`fixed_point`), every partial sum
    is exact, and the early exits (a cell whose own total reaches hi; a cell whose whole
    neighbourhood stays below lo; per point, once hi is reached or lo is out of reach)
    cannot change a result.
    """
    n = xyz.shape[0]
    ncell = cell_start.shape[0] - 1
    out = np.full(n, -1, np.int64)
    side = 2 * reach + 1
    maxnb = side * side * side
    for c in prange(ncell):
        s = cell_start[c]
        e = cell_start[c + 1]
        if cell_w[c] >= hi:  # a clique cell: each point sees at least the cell's weight
            for i in range(s, e):
                out[i] = hi
            continue
        raw = np.empty(maxnb, np.int64)
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, raw)
        total = np.int64(0)
        for j in range(cnt):
            total += cell_w[raw[j]]
        if total < lo:
            continue
        nb = np.empty(maxnb, np.int64)
        _by_offset(cell_k[c, 0], cell_k[c, 1], cell_k[c, 2], raw, cnt, cell_k, reach, nb)
        part = np.empty(maxnb, np.int64)
        for i in range(s, e):
            acc = cell_w[c]
            rem = total - cell_w[c]  # not yet added, not yet ruled out
            npart = 0
            decided = False
            for j in range(1, cnt):  # nb[0] is c itself
                d = nb[j]
                dmin2, dmax2 = _box_d2(xyz, i, cell_k, d, h)
                if dmin2 > c_hi2:
                    rem -= cell_w[d]
                    if acc + rem < lo:
                        decided = True
                        break
                elif dmax2 <= c_lo2:
                    acc += cell_w[d]
                    rem -= cell_w[d]
                    if acc >= hi:
                        decided = True
                        break
                else:
                    part[npart] = d
                    npart += 1
            if not decided:
                for jj in range(npart):
                    d = part[jj]
                    acc += _partial_weight(i, d, xyz, soa, latr, lonr, cl, wq, cell_start,
                                           cell_k, h, c_lo2, c_hi2, s2, dense_id, sub_start,
                                           sub_w)
                    rem -= cell_w[d]
                    if acc >= hi or acc + rem < lo:
                        break
            if acc >= hi:
                out[i] = hi
            elif acc >= lo and rem == 0:  # every neighbour cell counted: acc is exact
                out[i] = acc
            # else: below lo, out stays -1
    return out


_SUB = 4  # sub-boxes per cell side in dense cells
_NSUB = _SUB * _SUB * _SUB


@njit(cache=True)
def _sub_corner(cell_k, c, b, h):
    """Lower corner of sub-box b of cell c (side h / _SUB)."""
    hs = h / _SUB
    bx = b // (_SUB * _SUB)
    by = (b // _SUB) % _SUB
    bz = b % _SUB
    return (cell_k[c, 0] * h - 1.0 + bx * hs, cell_k[c, 1] * h - 1.0 + by * hs,
            cell_k[c, 2] * h - 1.0 + bz * hs)


@njit(cache=True, parallel=True)
def sub_boxes(xyz, cell_start, cell_k, h, dense_min):
    """Sub-box tables of cells with >= dense_min points: _SUB^3 boxes per cell.

    Returns dense_id (ncell,) (-1: not dense), sub_start (ndense, _NSUB + 1) and perm (n,):
    the positions of the points in the order to store them in, grouped by sub-box inside each
    dense cell (ascending position within a sub-box; identity elsewhere). Once the point
    arrays are permuted by ``perm``, sub-box b of dense cell di holds the positions
    ``sub_start[di, b]`` to ``sub_start[di, b + 1]``. See :func:`sub_weights`.
    """
    ncell = cell_start.shape[0] - 1
    dense_id = np.full(ncell, -1, np.int64)
    nd = 0
    for c in range(ncell):
        if cell_start[c + 1] - cell_start[c] >= dense_min:
            dense_id[c] = nd
            nd += 1
    sub_start = np.zeros((nd, _NSUB + 1), np.int64)
    perm = np.arange(xyz.shape[0])
    inv = _SUB / h
    for c in prange(ncell):
        di = dense_id[c]
        if di < 0:
            continue
        s = cell_start[c]
        e = cell_start[c + 1]
        ids = np.empty(e - s, np.int64)
        cnt = np.zeros(_NSUB + 1, np.int64)
        for i in range(s, e):
            b = 0
            for a in range(3):
                f = int(math.floor((xyz[i, a] - (cell_k[c, a] * h - 1.0)) * inv))
                b = b * _SUB + min(max(f, 0), _SUB - 1)
            ids[i - s] = b
            cnt[b + 1] += 1
        for b in range(_NSUB):
            cnt[b + 1] += cnt[b]
        for b in range(_NSUB + 1):
            sub_start[di, b] = s + cnt[b]
        for i in range(s, e):
            b = ids[i - s]
            perm[s + cnt[b]] = i
            cnt[b] += 1
    return dense_id, sub_start, perm


@njit(cache=True, parallel=True)
def sub_weights(wq, sub_start):
    """Fixed-point weight per sub-box (ndense, _NSUB) int64, of points stored by sub-box."""
    nd = sub_start.shape[0]
    out = np.zeros((nd, _NSUB), np.int64)
    for di in prange(nd):
        for b in range(_NSUB):
            acc = np.int64(0)
            for q in range(sub_start[di, b], sub_start[di, b + 1]):
                acc += wq[q]
            out[di, b] = acc
    return out


@njit(cache=True)
def _by_offset(kx, ky, kz, raw, cnt, cell_k, reach, out):
    """Counting sort of neighbour cells by squared offset from cell key (kx, ky, kz).

    Nearer cells first makes the early exits fire sooner; ties keep cell-key order, so the
    order (and any float sum over it) is still content-derived.
    """
    nbucket = 3 * reach * reach + 1
    counts = np.zeros(nbucket + 1, np.int64)
    for j in range(cnt):
        d = raw[j]
        o = (cell_k[d, 0] - kx) ** 2 + (cell_k[d, 1] - ky) ** 2 + (cell_k[d, 2] - kz) ** 2
        counts[o + 1] += 1
    for b in range(nbucket):
        counts[b + 1] += counts[b]
    for j in range(cnt):
        d = raw[j]
        o = (cell_k[d, 0] - kx) ** 2 + (cell_k[d, 1] - ky) ** 2 + (cell_k[d, 2] - kz) ** 2
        out[counts[o]] = d
        counts[o] += 1


@njit(cache=True)
def _cells_linked(c, d, xyz, latr, lonr, cl, core, cell_start, cell_k, h, c_lo2, c_hi2, s2):
    """Whether some core point of cell c is within eps of some core point of cell d."""
    for p in range(cell_start[c], cell_start[c + 1]):
        if not core[p]:
            continue
        dmin2, _ = _box_d2(xyz, p, cell_k, d, h)
        if dmin2 > c_hi2:
            continue
        for q in range(cell_start[d], cell_start[d + 1]):
            if core[q] and _within(xyz, latr, lonr, cl, p, xyz, latr, lonr, cl, q,
                                   c_lo2, c_hi2, s2):
                return True
    return False


@njit(cache=True)
def _cells_linked_budget(c, d, xyz, latr, lonr, cl, core, cell_start, cell_k, h, c_lo2, c_hi2,
                         s2, budget):
    """Like :func:`_cells_linked` with at most ``budget`` point tests: 1, 0, or -1 (gave up)."""
    work = 0
    for p in range(cell_start[c], cell_start[c + 1]):
        if not core[p]:
            continue
        dmin2, _ = _box_d2(xyz, p, cell_k, d, h)
        work += 1
        if dmin2 > c_hi2:
            continue
        for q in range(cell_start[d], cell_start[d + 1]):
            if core[q]:
                if _within(xyz, latr, lonr, cl, p, xyz, latr, lonr, cl, q, c_lo2, c_hi2, s2):
                    return 1
                work += 1
        if work > budget:
            return -1
    return 0


_KEEP = 4  # linked neighbours remembered per cell by the parallel pass


@njit(cache=True, parallel=True)
def _cheap_links(xyz, latr, lonr, cl, core, ncore, cell_start, cell_k, col_start, col_k, table,
                 h, reach, c_lo2, c_hi2, s2, budget, max_off2):
    """Parallel pass: up to _KEEP linked neighbour cells (d > c) per cell, and a flag for cells
    with pairs left to decide (over budget, linked beyond _KEEP, or offset beyond max_off2).

    Only near pairs are tried here: they link cheaply and merge dense areas into few
    components, so the serial pass can skip most far pairs."""
    ncell = cell_start.shape[0] - 1
    side = 2 * reach + 1
    maxnb = side * side * side
    keep = np.full((ncell, _KEEP), -1, np.int64)
    more = np.zeros(ncell, np.bool_)
    for c in prange(ncell):
        if ncore[c] == 0:
            continue
        nb = np.empty(maxnb, np.int64)
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, nb)
        k = 0
        for j in range(cnt):
            d = nb[j]
            if d <= c or ncore[d] == 0:
                continue
            off2 = ((cell_k[d, 0] - cell_k[c, 0]) ** 2 + (cell_k[d, 1] - cell_k[c, 1]) ** 2
                    + (cell_k[d, 2] - cell_k[c, 2]) ** 2)
            if off2 > max_off2:
                more[c] = True
                continue
            r = _cells_linked_budget(c, d, xyz, latr, lonr, cl, core, cell_start, cell_k, h,
                                     c_lo2, c_hi2, s2, budget)
            if r == 1 and k < _KEEP:
                keep[c, k] = d
                k += 1
            elif r != 0:
                more[c] = True
    return keep, more


@njit(cache=True)
def _union(parent, a, b):
    a = _find(parent, a)
    b = _find(parent, b)
    if a != b:
        if a < b:
            parent[b] = a
        else:
            parent[a] = b


@njit(cache=True)
def _finish_links(keep, more, xyz, latr, lonr, cl, core, ncore, cell_start, cell_k, col_start,
                  col_k, table, h, reach, c_lo2, c_hi2, s2):
    """Serial pass: union remembered links, then test the remaining pairs only when their
    cells are not yet in one component (most are, in dense areas). Root per cell, -1 if no
    core point."""
    ncell = cell_start.shape[0] - 1
    side = 2 * reach + 1
    nb = np.empty(side * side * side, np.int64)
    parent = np.arange(ncell)
    for c in range(ncell):
        for k in range(keep.shape[1]):
            if keep[c, k] >= 0:
                _union(parent, c, keep[c, k])
    for c in range(ncell):
        if not more[c]:
            continue
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, nb)
        for j in range(cnt):
            d = nb[j]
            if d <= c or ncore[d] == 0:
                continue
            if _find(parent, c) == _find(parent, d):
                continue
            if _cells_linked(c, d, xyz, latr, lonr, cl, core, cell_start, cell_k, h,
                             c_lo2, c_hi2, s2):
                _union(parent, c, d)
    root = np.full(ncell, -1, np.int64)
    for c in range(ncell):
        if ncore[c] > 0:
            root[c] = _find(parent, c)
    return root


def core_components(xyz, latr, lonr, cl, core, ncore, cell_start, cell_k, col_start, col_k,
                    table, h, reach, c_lo2, c_hi2, s2, budget=16, max_off2=2):
    """Connected components of core cells (a cell's core points are one clique).

    Root cell id per cell (-1 without core points). Cheap pair tests run in parallel; the
    expensive leftovers run serially and are skipped once both cells share a component.
    """
    keep, more = _cheap_links(xyz, latr, lonr, cl, core, ncore, cell_start, cell_k, col_start,
                              col_k, table, h, reach, c_lo2, c_hi2, s2, budget, max_off2)
    return _finish_links(keep, more, xyz, latr, lonr, cl, core, ncore, cell_start, cell_k,
                         col_start, col_k, table, h, reach, c_lo2, c_hi2, s2)


@njit(cache=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def _better(a, b, w, lat, lon):
    """Heavier first, then smaller lat, then smaller lon, then smaller index (indices into the
    original arrays): a total order, so every engine names the same representative."""
    if w[a] != w[b]:
        return w[a] > w[b]
    if lat[a] != lat[b]:
        return lat[a] < lat[b]
    if lon[a] != lon[b]:
        return lon[a] < lon[b]
    return a < b


@njit(cache=True)
def representatives(root, core, cell_start, order, w, lat, lon):
    """Per component root: original index of its heaviest core point (ties: lat, lon)."""
    ncell = root.shape[0]
    rep = np.full(ncell, -1, np.int64)
    for c in range(ncell):
        r = root[c]
        if r < 0:
            continue
        for i in range(cell_start[c], cell_start[c + 1]):
            if core[i]:
                o = order[i]
                if rep[r] == -1 or _better(o, rep[r], w, lat, lon):
                    rep[r] = o
    return rep


@njit(cache=True, parallel=True)
def core_labels(root, rank, core, cell_start):
    """Label of every sorted point: cluster id for core points, -1 otherwise."""
    n = core.shape[0]
    ncell = root.shape[0]
    lab = np.full(n, -1, np.int64)
    cell_lab = np.full(ncell, -1, np.int64)
    for c in prange(ncell):
        if root[c] >= 0:
            cell_lab[c] = rank[root[c]]
            for i in range(cell_start[c], cell_start[c + 1]):
                if core[i]:
                    lab[i] = cell_lab[c]
    return lab, cell_lab


@njit(cache=True)
def cell_axis(kx, ky, kz, h):
    """Axis (0, 1, 2) most tangent to the sphere at the centre of cell (kx, ky, kz).

    Points of a cell spread most along it: :func:`nearest_queries` targets are sorted by this
    coordinate inside each cell so a query can skip those outside a slab around itself.
    """
    cx = abs((kx + 0.5) * h - 1.0)
    cy = abs((ky + 0.5) * h - 1.0)
    cz = abs((kz + 0.5) * h - 1.0)
    if cx <= cy and cx <= cz:
        return 0
    if cy <= cz:
        return 1
    return 2


@njit(cache=True, parallel=True)
def axis_keys(xyz, k, h):
    """Per point, its coordinate along :func:`cell_axis` of its cell (sort key for targets)."""
    n = xyz.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = xyz[i, cell_axis(k[i, 0], k[i, 1], k[i, 2], h)]
    return out


@njit(cache=True)
def _nearest_in_cells(i, qxyz, qlatr, qlonr, qcl, nb, cnt, xyz, latr, lonr, cl, lab, usable,
                      cell_start, cell_k, h, c_lo2, c_hi2, s2, slab):
    """Nearest usable point (rdist, ties: smaller label) within eps of query i; (label, rdist).

    The answer is the smallest (rdist, label) among all candidates, whatever the visiting order,
    because every skip below is conservative: a point is skipped only if its squared chord (or
    one of its three squared terms, which the float sum cannot undercut) exceeds the bound. With
    ``slab``, each cell's points are sorted by their coordinate along :func:`cell_axis`, and only
    the slab of points whose term on that axis is within the bound is scanned.
    """
    best_lab = -1
    best_r = s2
    bound2 = c_hi2
    for j in range(cnt):
        d = nb[j]
        dmin2, _ = _box_d2(qxyz, i, cell_k, d, h)
        if dmin2 > bound2:
            continue
        lo = cell_start[d]
        hi = cell_start[d + 1]
        ax = 0
        qa = 0.0
        if slab:
            ax = cell_axis(cell_k[d, 0], cell_k[d, 1], cell_k[d, 2], h)
            qa = qxyz[i, ax]
            e = hi
            while lo < e:  # first point not left of the slab
                mid = (lo + e) >> 1
                da = qa - xyz[mid, ax]
                if da > 0.0 and da * da > bound2:
                    lo = mid + 1
                else:
                    e = mid
        for q in range(lo, hi):
            if slab:
                da = qa - xyz[q, ax]
                if da < 0.0 and da * da > bound2:
                    break  # right of the slab, and so are all later points
            if not usable[q]:
                continue
            d2 = _chord2(qxyz, i, xyz, q)
            if d2 > bound2:
                continue
            r = rdist(qlatr[i], qlonr[i], qcl[i], latr[q], lonr[q], cl[q])
            if r > s2:
                continue
            if best_lab == -1 or r < best_r or (r == best_r and lab[q] < best_lab):
                best_lab = lab[q]
                best_r = r
                # chord = 2 sqrt(rdist); the margin keeps the pruning conservative
                b = 2.0 * math.sqrt(r) * (1.0 + TOL_REL) + TOL_ABS
                bound2 = min(c_hi2, b * b)
    return best_lab, best_r


@njit(cache=True, parallel=True)
def border_labels(xyz, latr, lonr, cl, core, lab, ncore, cell_start, cell_k, col_start, col_k,
                  table, h, reach, c_lo2, c_hi2, s2):
    """Give non-core points the label of their nearest core point within eps (in place)."""
    ncell = cell_start.shape[0] - 1
    side = 2 * reach + 1
    maxnb = side * side * side
    for c in prange(ncell):
        s = cell_start[c]
        e = cell_start[c + 1]
        if ncore[c] == e - s:
            continue
        raw = np.empty(maxnb, np.int64)
        cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, raw)
        k = 0
        for j in range(cnt):
            if ncore[raw[j]] > 0:
                raw[k] = raw[j]
                k += 1
        if k == 0:
            continue
        nb = np.empty(maxnb, np.int64)
        _by_offset(cell_k[c, 0], cell_k[c, 1], cell_k[c, 2], raw, k, cell_k, reach, nb)
        for i in range(s, e):
            if core[i]:
                continue
            bl, _ = _nearest_in_cells(i, xyz, latr, lonr, cl, nb, k, xyz, latr, lonr, cl, lab,
                                      core, cell_start, cell_k, h, c_lo2, c_hi2, s2, False)
            lab[i] = bl


@njit(cache=True, parallel=True)
def count_per_cell(flag, cell_start):
    ncell = cell_start.shape[0] - 1
    out = np.zeros(ncell, np.int64)
    for c in prange(ncell):
        k = 0
        for i in range(cell_start[c], cell_start[c + 1]):
            if flag[i]:
                k += 1
        out[c] = k
    return out


@njit(cache=True, parallel=True)
def scatter(values, order, fill):
    n = order.shape[0]
    out = np.full(n, fill, values.dtype)
    for i in prange(n):
        out[order[i]] = values[i]
    return out


# --------------------------------------------------------------------------- two point sets

@njit(cache=True, parallel=True)
def nearest_queries(qxyz, qlatr, qlonr, qcl, qcell_start, qcell_k,
                    xyz, latr, lonr, cl, lab, cell_start, cell_k, col_start, col_k, table,
                    h, reach, c_lo2, c_hi2, s2):
    """Per sorted query point: label and rdist of the nearest target within eps (-1, inf).

    Targets must be sorted inside each cell by their :func:`axis_keys`. Cells are visited
    nearest first (the query's own cell usually holds the answer, which shrinks the bound).
    """
    nq = qxyz.shape[0]
    nqc = qcell_start.shape[0] - 1
    side = 2 * reach + 1
    maxnb = side * side * side
    out_lab = np.full(nq, -1, np.int64)
    out_r = np.full(nq, np.inf)
    usable = np.ones(xyz.shape[0], np.bool_)
    for c in prange(nqc):
        raw = np.empty(maxnb, np.int64)
        kx, ky, kz = qcell_k[c, 0], qcell_k[c, 1], qcell_k[c, 2]
        cnt = neighbour_cells(kx, ky, kz, reach, cell_k, col_start, col_k, table, raw)
        if cnt == 0:
            continue
        nb = np.empty(maxnb, np.int64)
        _by_offset(kx, ky, kz, raw, cnt, cell_k, reach, nb)
        for i in range(qcell_start[c], qcell_start[c + 1]):
            bl, br = _nearest_in_cells(i, qxyz, qlatr, qlonr, qcl, nb, cnt, xyz, latr, lonr, cl,
                                       lab, usable, cell_start, cell_k, h, c_lo2, c_hi2, s2,
                                       True)
            if bl >= 0:
                out_lab[i] = bl
                out_r[i] = br
    return out_lab, out_r


@njit(cache=True)
def _runs_linked(p0, p1, q0, q1, d, axyz, alatr, alonr, acl, bxyz, blatr, blonr, bcl, bcell_k,
                 h, c_lo2, c_hi2, s2):
    """Whether a point of a[p0:p1] is within eps of a point of b[q0:q1] (all in b-cell d)."""
    for p in range(p0, p1):
        dmin2, dmax2 = _box_d2(axyz, p, bcell_k, d, h)
        if dmin2 > c_hi2:
            continue
        if dmax2 <= c_lo2:  # the whole cell d is certainly within eps of p
            return True
        for q in range(q0, q1):
            if _within(axyz, alatr, alonr, acl, p, bxyz, blatr, blonr, bcl, q, c_lo2, c_hi2, s2):
                return True
    return False


@njit(cache=True)
def _pairs_of_cell(c, nb, cnt, axyz, alatr, alonr, acl, alab, acell_start,
                   bxyz, blatr, blonr, bcl, blab, bcell_start, bcell_k, h, c_lo2, c_hi2, s2,
                   out):
    """Distinct (label_a, label_b) linked from a-cell c, written to ``out`` (cap, 2); count.

    Points of every cell must be sorted by label: each pair of label runs (one of c, one of
    a neighbour b-cell) is tested once, up to its first hit, and skipped if already found.
    Returns -1 if more than ``out.shape[0]`` pairs exist.
    """
    cap = out.shape[0]
    ps = acell_start[c]
    pe = acell_start[c + 1]
    runs = np.empty(pe - ps + 1, np.int64)  # run boundaries of c's labels
    nrun = 0
    for p in range(ps, pe):
        if p == ps or alab[p] != alab[p - 1]:
            runs[nrun] = p
            nrun += 1
    runs[nrun] = pe
    k = 0
    for j in range(cnt):
        d = nb[j]
        q0 = bcell_start[d]
        qe = bcell_start[d + 1]
        while q0 < qe:
            lb = blab[q0]
            q1 = q0 + 1
            while q1 < qe and blab[q1] == lb:
                q1 += 1
            for r in range(nrun):
                la = alab[runs[r]]
                seen = False
                for t in range(k):
                    if out[t, 0] == la and out[t, 1] == lb:
                        seen = True
                        break
                if seen:
                    continue
                if _runs_linked(runs[r], runs[r + 1], q0, q1, d, axyz, alatr, alonr, acl,
                                bxyz, blatr, blonr, bcl, bcell_k, h, c_lo2, c_hi2, s2):
                    if k == cap:
                        return -1
                    out[k, 0] = la
                    out[k, 1] = lb
                    k += 1
            q0 = q1
    return k


_SLOTS = 8  # pairs stored per a-cell by the parallel pass of link_pairs


@njit(cache=True, parallel=True)
def link_pairs(axyz, alatr, alonr, acl, alab, acell_start, acell_k,
               bxyz, blatr, blonr, bcl, blab, bcell_start, bcell_k, bcol_start, bcol_k, btable,
               h, reach, c_lo2, c_hi2, s2):
    """All distinct (label_a, label_b) with an a point within eps of a b point (unsorted).

    Points of both sets must be sorted by label inside their cells. One parallel pass stores up
    to _SLOTS pairs per a-cell; the rare cells with more are redone serially with a larger
    scratch.
    """
    nac = acell_start.shape[0] - 1
    side = 2 * reach + 1
    maxnb = side * side * side
    slots = np.empty((nac, _SLOTS, 2), np.int64)
    counts = np.zeros(nac, np.int64)
    for c in prange(nac):
        nb = np.empty(maxnb, np.int64)
        cnt = neighbour_cells(acell_k[c, 0], acell_k[c, 1], acell_k[c, 2], reach, bcell_k,
                              bcol_start, bcol_k, btable, nb)
        if cnt > 0:
            counts[c] = _pairs_of_cell(c, nb, cnt, axyz, alatr, alonr, acl, alab, acell_start,
                                       bxyz, blatr, blonr, bcl, blab, bcell_start, bcell_k, h,
                                       c_lo2, c_hi2, s2, slots[c])
    total = 0
    for c in range(nac):
        if counts[c] > 0:
            total += counts[c]
    out = np.empty((total, 2), np.int64)
    m = 0
    for c in range(nac):
        for t in range(max(counts[c], 0)):
            out[m, 0] = slots[c, t, 0]
            out[m, 1] = slots[c, t, 1]
            m += 1
    nb = np.empty(maxnb, np.int64)
    for c in range(nac):
        if counts[c] >= 0:
            continue
        cnt = neighbour_cells(acell_k[c, 0], acell_k[c, 1], acell_k[c, 2], reach, bcell_k,
                              bcol_start, bcol_k, btable, nb)
        cap = 4 * _SLOTS
        while True:
            scratch = np.empty((cap, 2), np.int64)
            k = _pairs_of_cell(c, nb, cnt, axyz, alatr, alonr, acl, alab, acell_start,
                               bxyz, blatr, blonr, bcl, blab, bcell_start, bcell_k, h,
                               c_lo2, c_hi2, s2, scratch)
            if k >= 0:
                break
            cap *= 4
        if m + k > out.shape[0]:  # grow by doubling
            grown = np.empty((max(2 * out.shape[0], m + k), 2), np.int64)
            grown[:m] = out[:m]
            out = grown
        out[m:m + k] = scratch[:k]
        m += k
    return out[:m]


# --------------------------------------------------------------------------- all pairs once

@njit(cache=True)
def _pair_range_weight(i, a, b, xyz, soa, latr, lonr, cl, wq, back, c_lo2, c_hi2, s2):
    """Both directions of point i against the points at positions [a, b): returns the weight
    of those within eps of i, and adds ``wq[i]`` to ``back[k]`` for each such point a + k.
    Same tests as :func:`_range_weight` (the haversine reduced distance is symmetric: glibc's
    ``sin`` is odd, so ``sin(-x)**2 == sin(x)**2``)."""
    xi = xyz[i, 0]
    yi = xyz[i, 1]
    zi = xyz[i, 2]
    wi = wq[i]
    xs = soa[0, a:b]
    ys = soa[1, a:b]
    zs = soa[2, a:b]
    ws = wq[a:b]
    acc = np.int64(0)
    amb = 0
    for k in range(b - a):
        dx = xi - xs[k]
        dy = yi - ys[k]
        dz = zi - zs[k]
        d2 = dx * dx + dy * dy + dz * dz
        inside = d2 <= c_lo2
        acc += ws[k] * inside
        back[k] += wi * inside
        amb += (d2 > c_lo2) & (d2 <= c_hi2)
    if amb > 0:
        for k in range(b - a):
            dx = xi - xs[k]
            dy = yi - ys[k]
            dz = zi - zs[k]
            d2 = dx * dx + dy * dy + dz * dz
            if d2 > c_lo2 and d2 <= c_hi2:
                q = a + k
                if rdist(latr[i], lonr[i], cl[i], latr[q], lonr[q], cl[q]) <= s2:
                    acc += ws[k]
                    back[k] += wi
    return acc


_BLOCK = 4  # cells per block side in all_neighbour_weights (>= 2 * reach)


def colour_blocks(cell_k: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells grouped into blocks of ``_BLOCK``^3 cells, blocks into 8 colours by parity.

    Two blocks of one colour are at least ``_BLOCK >= 2 * reach`` cells apart on some axis, so
    the cells within ``reach`` of one block and of the other never meet: blocks of one colour
    can be processed in parallel even when each writes to its neighbour cells.

    Returns ``by_block`` (ncell,) cell ids grouped by block, ``block_start`` (nblock + 1,) and
    ``colour_start`` (9,) bounds of each colour's blocks in ``block_start``.
    """
    assert _BLOCK >= 2 * reach
    b = cell_k // _BLOCK
    colour = (b[:, 0] & 1) * 4 + (b[:, 1] & 1) * 2 + (b[:, 2] & 1)
    by_block = np.lexsort((b[:, 2], b[:, 1], b[:, 0], colour))
    bs = b[by_block]
    new = np.ones(by_block.shape[0], bool)
    new[1:] = np.any(bs[1:] != bs[:-1], axis=1)
    block_start = np.r_[np.flatnonzero(new), by_block.shape[0]].astype(np.int64)
    block_colour = colour[by_block[block_start[:-1]]]
    colour_start = np.searchsorted(block_colour, np.arange(9)).astype(np.int64)
    return by_block.astype(np.int64), block_start, colour_start


@njit(cache=True, parallel=True)
def all_neighbour_weights(xyz, soa, latr, lonr, cl, wq, cell_start, cell_k, cell_w, col_start,
                          col_k, table, h, reach, c_lo2, c_hi2, s2, by_block, block_start,
                          colour_start):
    """Exact fixed-point weight within eps of every (sorted) point, itself included (int64).

    Every pair of points is tested once, for both of its points: cell c handles itself (a
    clique) and its neighbour cells d > c. Blocks of cells are processed colour by colour
    (:func:`colour_blocks`): blocks of one colour never write to the same cell, so the
    parallel writes never meet. Integer sums: the result does not depend on this order.
    """
    n = xyz.shape[0]
    nw = np.zeros(n, np.int64)
    side = 2 * reach + 1
    maxnb = side * side * side
    for col in range(colour_start.shape[0] - 1):
        for blk in prange(colour_start[col], colour_start[col + 1]):
            nb = np.empty(maxnb, np.int64)
            for t in range(block_start[blk], block_start[blk + 1]):
                c = by_block[t]
                _add_pairs_of_cell(c, nb, nw, xyz, soa, latr, lonr, cl, wq, cell_start,
                                   cell_k, cell_w, col_start, col_k, table, h, reach, c_lo2,
                                   c_hi2, s2)
    return nw


@njit(cache=True)
def _add_pairs_of_cell(c, nb, nw, xyz, soa, latr, lonr, cl, wq, cell_start, cell_k, cell_w,
                       col_start, col_k, table, h, reach, c_lo2, c_hi2, s2):
    """Add to ``nw`` the pairs of cell c with itself and with its neighbour cells d > c."""
    s = cell_start[c]
    e = cell_start[c + 1]
    for i in range(s, e):
        nw[i] += cell_w[c]
    cnt = _own_neighbours(c, reach, cell_k, col_start, col_k, table, nb)
    for j in range(cnt):
        d = nb[j]
        if d <= c:
            continue
        ds = cell_start[d]
        de = cell_start[d + 1]
        back = np.zeros(de - ds, np.int64)
        bonus = np.int64(0)  # weight of c's points that see all of d
        for i in range(s, e):
            dmin2, dmax2 = _box_d2(xyz, i, cell_k, d, h)
            if dmin2 > c_hi2:
                continue
            if dmax2 <= c_lo2:
                nw[i] += cell_w[d]
                bonus += wq[i]
                continue
            nw[i] += _pair_range_weight(i, ds, de, xyz, soa, latr, lonr, cl, wq, back,
                                        c_lo2, c_hi2, s2)
        for k in range(de - ds):
            nw[ds + k] += back[k] + bonus
