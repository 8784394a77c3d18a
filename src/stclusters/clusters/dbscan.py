"""Exact weighted DBSCAN on the sphere, and footprint look-ups (methodology §4–5).

Semantics are those of scikit-learn's
``DBSCAN(eps=eps_km / R, min_samples=min_weight, metric="haversine", algorithm="ball_tree")
.fit(np.radians(latlon), sample_weight=w)``:

- a point is *core* iff the summed weight of all points within ``eps_km`` (itself included,
  distance <= eps) is >= ``min_weight``;
- core points within ``eps_km`` of each other form one cluster (connected components);
- a non-core point within ``eps_km`` of a core point is a *border* point and takes the label of
  its nearest core point (ties: the smaller cluster id); all others are noise (-1).

"Within eps" is decided with the oracle's own float formula (haversine reduced distance
``sin²(Δlat/2) + cos lat1 cos lat2 sin²(Δlon/2) <= sin²(eps/2)``, eps in radians
``eps_km / 6371.0088``), so points at exactly eps agree with scikit-learn; see
:mod:`stclusters.clusters._grid` for the grid that prunes candidates and the error margins.

Neighbourhood weight: weights are converted once to int64 fixed point
(``round(w * 2**b)``, ``b`` the largest power that keeps the total below 2**61, see
:func:`stclusters.clusters._grid.fixed_point`) and summed exactly, so the core test does not
depend on the order of the sum, on early exits, or on which engine computes it
(:mod:`stclusters.clusters.sweep` uses the same definition); a point is core iff that integer
sum is >= ``ceil(min_weight * 2**b * (1 - 2**-36))``: a sum within a relative 1.5e-11 below
``min_weight`` reaches it (:data:`stclusters.clusters._grid.TIE_REL`), so that three
contributions of 1/3 reach a threshold of 1, as their real sum does.

Known, documented differences from the oracle (both at the level of float rounding only):

- scikit-learn sums neighbour weights with ``np.sum`` in tree order and compares the float
  sum with ``min_weight``. With weights whose partial sums are exact (integers, dyadic
  fractions) the core sets are identical; otherwise a neighbourhood weight within a relative
  1.5e-11 of ``min_weight`` may be decided differently (we count it as reaching it; the
  float sum goes either way).
- the ball tree accepts or prunes whole nodes with ``dist(pt, centroid) ± radius`` (full
  arcsine distances) without the per-point test; at an exact-eps tie this can, rarely, disagree
  with its own per-point test. We always apply the per-point test.

Cluster ids are 0..k-1 ordered by each cluster's heaviest core point (weight descending, then
latitude, then longitude ascending): they depend on the content only, never on input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from stclusters.clusters import _grid
from stclusters.errors import ParameterError

EARTH_RADIUS_KM = 6371.0088
MIN_EPS_KM = 1e-6  # 1 mm: below this float64 coordinates cannot resolve the radius
_CHUNK = 16  # prange chunk size: clumpy data makes per-cell work very uneven
_DENSE_CELL = 256  # cells with this many points get sub-boxes for the core test

__all__ = ["DbscanResult", "EARTH_RADIUS_KM", "dbscan_sphere", "link_clusters", "nearest_core"]


@dataclass(frozen=True, eq=False)
class DbscanResult:
    """Outcome of :func:`dbscan_sphere`.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Cluster id per input point, -1 for noise. Ids are 0..n_clusters-1, ordered by
        each cluster's representative (see ``representative``).
    is_core : ndarray of bool, shape (n,)
        Whether each input point is a core point.
    n_clusters : int
        Number of clusters.
    representative : ndarray of int64, shape (n_clusters,)
        Input index of each cluster's heaviest core point (ties: smaller latitude, then
        smaller longitude, then smaller index); this point defines the cluster order.
    eps_km : float
        Radius used, kilometres.
    min_weight : float
        Core threshold used, in weight units.
    """

    labels: np.ndarray
    is_core: np.ndarray
    n_clusters: int
    representative: np.ndarray
    eps_km: float
    min_weight: float


# --------------------------------------------------------------------------- validation

def _as_1d(name: str, value, problems: list[str]) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        problems.append(f"{name} must be numeric ({exc})")
        return None
    if arr.ndim != 1:
        problems.append(f"{name} must be 1-D, got shape {arr.shape}")
        return None
    return np.ascontiguousarray(arr)


def _check_points(prefix: str, lat, lon, problems: list[str]) -> tuple[np.ndarray | None, ...]:
    la = _as_1d(f"{prefix}lat_deg", lat, problems)
    lo = _as_1d(f"{prefix}lon_deg", lon, problems)
    if la is not None and lo is not None and la.shape != lo.shape:
        problems.append(f"{prefix}lat_deg and {prefix}lon_deg differ in length "
                        f"({la.shape[0]} != {lo.shape[0]})")
    for name, arr, bound in ((f"{prefix}lat_deg", la, 90.0), (f"{prefix}lon_deg", lo, 180.0)):
        if arr is None:
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            problems.append(f"{name} has {int(bad.sum())} non-finite value(s) "
                            f"(first at index {int(np.flatnonzero(bad)[0])})")
        out = np.isfinite(arr) & (np.abs(arr) > bound)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            problems.append(f"{name} has {int(out.sum())} value(s) outside [-{bound:g}, {bound:g}] "
                            f"(first at index {i}: {arr[i]!r})")
    return la, lo


def _check_eps(eps_km, problems: list[str]) -> None:
    if not isinstance(eps_km, (int, float, np.integer, np.floating)) or isinstance(eps_km, bool):
        problems.append(f"eps_km must be a number, got {type(eps_km).__name__}")
    elif not (math.isfinite(eps_km) and MIN_EPS_KM <= eps_km < math.pi * EARTH_RADIUS_KM):
        problems.append(f"eps_km must be finite and in [{MIN_EPS_KM:g}, π·R = "
                        f"{math.pi * EARTH_RADIUS_KM:.4f}) km, got {eps_km!r}")


def _check_threads(n_threads, problems: list[str]) -> None:
    if n_threads is None:
        return
    if (not isinstance(n_threads, (int, np.integer)) or isinstance(n_threads, bool)
            or n_threads < 1):
        problems.append(f"n_threads must be None or an integer >= 1, got {n_threads!r}")


def _checked_sets(what: str, sets, eps_km, n_threads) -> list[tuple]:
    """Validate point sets ``(prefix, lat, lon, label_name or None, labels)``, eps and threads.

    Returns ``(lat, lon, labels or None)`` per set; raises listing every problem.
    """
    problems: list[str] = []
    out = []
    for prefix, lat, lon, label_name, labels in sets:
        la, lo = _check_points(prefix, lat, lon, problems)
        lab = None if label_name is None else _check_labels(label_name, labels, la, problems)
        out.append((la, lo, lab))
    _check_eps(eps_km, problems)
    _check_threads(n_threads, problems)
    _raise(problems, what)
    return out


def _raise(problems: Sequence[str], what: str) -> None:
    if problems:
        raise ParameterError(f"{what}: " + "; ".join(problems),
                             hint="fix every listed parameter and run again")


class _Threads:
    """Temporarily set numba's thread count (None: leave it) and the prange chunk size."""

    def __init__(self, n_threads: int | None) -> None:
        self.n = None if n_threads is None else min(int(n_threads), numba.config.NUMBA_NUM_THREADS)
        self.old: int | None = None
        self.chunk = numba.parallel_chunksize(_CHUNK)

    def __enter__(self) -> None:
        if self.n is not None:
            self.old = numba.get_num_threads()
            numba.set_num_threads(self.n)
        self.chunk.__enter__()

    def __exit__(self, *exc) -> None:
        self.chunk.__exit__(*exc)
        if self.old is not None:
            numba.set_num_threads(self.old)


# --------------------------------------------------------------------------- grid assembly

class _Grid:
    """Points sorted by grid cell, with cell and column tables (see ``_grid``).

    The sort by cell is stable, and ``within`` (up to three key arrays indexed like the input,
    of one dtype, most significant first) then orders the points inside each cell; with
    ``axis_h`` (the cell side) they are ordered by ``_grid.axis_keys`` instead.
    """

    def __init__(self, lat_deg: np.ndarray, lon_deg: np.ndarray, inv_h: float, *,
                 within: tuple[np.ndarray, ...] = (), axis_h: float | None = None) -> None:
        latr = np.radians(lat_deg)  # the oracle's own conversion
        lonr = np.radians(lon_deg)
        xyz, cl = _grid.unit_vectors(latr, lonr)
        k = _grid.cell_coords(xyz, inv_h)
        kmin = k.min(axis=0)
        span = k.max(axis=0) - kmin
        bits = [int(s).bit_length() for s in span]
        if axis_h is not None:
            within = (_grid.axis_keys(xyz, k, axis_h),)
        order = np.arange(k.shape[0], dtype=np.int64)
        if sum(bits) <= 62:
            key = _grid.pack_keys(k, kmin, bits[1], bits[2])
            del k
            skey, order = _grid.radix_sort(key, order, sum(bits))
            del key
            ks = _grid.unpack_keys(skey, kmin, bits[1], bits[2])
            del skey
        else:  # only for very small eps over a wide area: LSD by kz, then ky, then kx
            for d in (2, 1, 0):
                col = _grid.gather(np.ascontiguousarray(k[:, d] - kmin[d]), order)
                _, order = _grid.radix_sort(col, order, bits[d])
                del col
            ks = _grid.gather_rows(k, order)
            del k
        self.cell_start, self.cell_k, self.col_start, self.col_k, self.table = _grid.cell_tables(ks)
        del ks
        if within:
            keys = tuple(within) + (within[0],) * (3 - len(within))
            _grid.sort_within_cells(order, self.cell_start, *keys, len(within))
        self.order = order
        self.xyz, self.latr, self.lonr, self.cl = _grid.gather_points(order, xyz, latr, lonr, cl)


# --------------------------------------------------------------------------- public API

def dbscan_sphere(lat_deg, lon_deg, weight=None, *, eps_km: float, min_weight: float,
                  n_threads: int | None = None) -> DbscanResult:
    """Exact weighted DBSCAN of points on the sphere (great-circle distance).

    Parameters
    ----------
    lat_deg, lon_deg : array-like of float, shape (n,)
        Latitude in [-90, 90] and longitude in [-180, 180], degrees.
    weight : array-like of float, shape (n,), optional
        Non-negative finite weight per point (default 1). Duplicates and zeros are fine.
    eps_km : float
        Neighbourhood radius, km of great-circle distance on R = 6371.0088 km,
        in [1e-6, π·R).
    min_weight : float
        A point is core iff the weight within ``eps_km`` (itself included) is >= this (> 0).
    n_threads : int, optional
        Numba threads to use (default: numba's current setting).

    Returns
    -------
    DbscanResult
        Labels (-1 noise), core flags, number of clusters, cluster representatives.

    Raises
    ------
    ParameterError
        Listing every invalid parameter.
    """
    problems: list[str] = []
    la, lo = _check_points("", lat_deg, lon_deg, problems)
    w = _check_weight(weight, la, problems)
    _check_eps(eps_km, problems)
    _check_min_weight("min_weight", min_weight, problems)
    _check_threads(n_threads, problems)
    _raise(problems, "dbscan_sphere")
    assert la is not None and lo is not None
    if w is None:
        w = np.ones(la.shape[0])
    eps_km = float(eps_km)
    min_weight = float(min_weight)
    if la.shape[0] == 0:
        return _empty_result(eps_km, min_weight)
    with _Threads(n_threads):
        p = _Prepared(la, lo, w, eps_km)
        m_fixed = _grid.fixed_threshold(min_weight, p.scale_bits)
        core = p.neighbour_weights(m_fixed, m_fixed) >= m_fixed
        root = p.components(core)
        return p.result(core, root, eps_km, min_weight)


def _check_weight(weight, la: np.ndarray | None, problems: list[str]) -> np.ndarray | None:
    """Validated weights (None: all 1), or None with the problems listed."""
    if weight is None:
        return None
    w = _as_1d("weight", weight, problems)
    if w is not None:
        if la is not None and w.shape != la.shape:
            problems.append(f"weight length {w.shape[0]} != number of points {la.shape[0]}")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            problems.append(f"weight has {int(bad.sum())} negative or non-finite value(s) "
                            f"(first at index {int(np.flatnonzero(bad)[0])})")
        elif not float(w.sum()) < 2.0 ** 61:  # exact int64 sums (_grid.fixed_point)
            problems.append(f"total weight must be < 2**61, got {float(w.sum())!r}")
    return w


def _check_min_weight(name: str, value, problems: list[str]) -> None:
    if (not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool)
            or not (math.isfinite(value) and value > 0)):
        problems.append(f"{name} must be a finite number > 0, got {value!r}")


def _empty_result(eps_km: float, min_weight: float) -> DbscanResult:
    return DbscanResult(np.empty(0, np.int64), np.empty(0, bool), 0, np.empty(0, np.int64),
                        eps_km, min_weight)


class _Prepared:
    """Points on their grid with fixed-point weights: everything a core test at any threshold
    needs, and the steps from core flags to a :class:`DbscanResult` (shared by
    :func:`dbscan_sphere` and :mod:`stclusters.clusters.sweep`, so both label alike).

    Call the methods inside :class:`_Threads`.
    """

    def __init__(self, la: np.ndarray, lo: np.ndarray, w: np.ndarray, eps_km: float) -> None:
        self.la, self.lo, self.w = la, lo, w
        eps_rad = eps_km / EARTH_RADIUS_KM  # same expression the oracle is given
        self.h, inv_h, self.c_lo2, self.c_hi2, self.s2, self.reach = \
            _grid.grid_geometry(eps_rad)
        wq, self.scale_bits = _grid.fixed_point(w)
        g = self.g = _Grid(la, lo, inv_h)
        # dense cells: points regrouped by sub-box (cells stay where they are; the order inside
        # a cell is free, every result depends on the content only)
        self.dense_id, self.sub_start, perm = _grid.sub_boxes(g.xyz, g.cell_start, g.cell_k,
                                                              self.h, _DENSE_CELL)
        if self.sub_start.shape[0]:
            g.order = _grid.gather(g.order, perm)
            g.xyz, g.latr, g.lonr, g.cl = _grid.gather_points(perm, g.xyz, g.latr, g.lonr, g.cl)
        del perm
        self.soa = np.ascontiguousarray(g.xyz.T)  # (3, n) coordinate rows for the inner loops
        self.ws = _grid.gather(wq, g.order)  # fixed-point weights, sorted like the grid
        del wq
        self.cell_w = _grid.cell_sums(self.ws, g.cell_start)
        self.sub_w = _grid.sub_weights(self.ws, self.sub_start)

    def reorder(self, perm: np.ndarray) -> None:
        """Store the points in the order ``perm`` (a permutation within each cell's segment).

        The sub-box tables are dropped (their grouping is lost): every cell is then summed
        point by point, with the same results.
        """
        g = self.g
        g.order = _grid.gather(g.order, perm)
        g.xyz, g.latr, g.lonr, g.cl = _grid.gather_points(perm, g.xyz, g.latr, g.lonr, g.cl)
        self.soa = np.ascontiguousarray(g.xyz.T)
        self.ws = _grid.gather(self.ws, perm)
        self.dense_id = np.full(self.ncell, -1, np.int64)
        self.sub_start = np.zeros((0, _grid._NSUB + 1), np.int64)
        self.sub_w = np.zeros((0, _grid._NSUB), np.int64)

    @property
    def ncell(self) -> int:
        return self.g.cell_start.shape[0] - 1

    def geometry(self) -> tuple:
        """``(h, reach, c_lo2, c_hi2, s2)`` in the order the kernels take them."""
        return self.h, self.reach, self.c_lo2, self.c_hi2, self.s2

    def neighbour_weights(self, lo_fixed: int, hi_fixed: int) -> np.ndarray:
        """Sorted points' fixed-point neighbourhood weight clamped to ``[lo, hi]`` (-1 below
        lo; see ``_grid.neighbour_weights``)."""
        g = self.g
        return _grid.neighbour_weights(g.xyz, self.soa, g.latr, g.lonr, g.cl, self.ws,
                                       g.cell_start, g.cell_k, self.cell_w, g.col_start,
                                       g.col_k, g.table, self.h, self.reach, self.c_lo2,
                                       self.c_hi2, self.s2, np.int64(lo_fixed),
                                       np.int64(hi_fixed), self.dense_id, self.sub_start,
                                       self.sub_w)

    def all_neighbour_weights(self) -> np.ndarray:
        """Sorted points' exact fixed-point neighbourhood weight (int64), every pair tested
        once for both of its points (see ``_grid.all_neighbour_weights``)."""
        g = self.g
        blocks = _grid.colour_blocks(g.cell_k, self.reach)
        return _grid.all_neighbour_weights(g.xyz, self.soa, g.latr, g.lonr, g.cl, self.ws,
                                           g.cell_start, g.cell_k, self.cell_w, g.col_start,
                                           g.col_k, g.table, self.h, self.reach, self.c_lo2,
                                           self.c_hi2, self.s2, *blocks)

    def components(self, core: np.ndarray) -> np.ndarray:
        """Root cell per cell of the core components (-1: no core point)."""
        g = self.g
        ncore = _grid.count_per_cell(core, g.cell_start)
        return _grid.core_components(g.xyz, g.latr, g.lonr, g.cl, core, ncore, g.cell_start,
                                     g.cell_k, g.col_start, g.col_k, g.table, self.h,
                                     self.reach, self.c_lo2, self.c_hi2, self.s2)

    def core_labels(self, core: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted points' labels of core points (-1 elsewhere), ids ordered by representative,
        and the representatives' input indices in id order."""
        g, w, la, lo = self.g, self.w, self.la, self.lo
        rep = _grid.representatives(root, core, g.cell_start, g.order, w, la, lo)
        roots = np.flatnonzero(rep >= 0)
        reps = rep[roots]
        # lexsort: last key is primary -> weight desc, then lat, then lon (distinct components
        # never share a location, so no further tie)
        rank_order = np.lexsort((lo[reps], la[reps], -w[reps]))
        rank = np.full(self.ncell, -1, np.int64)
        rank[roots[rank_order]] = np.arange(roots.shape[0])
        lab, _ = _grid.core_labels(root, rank, core, g.cell_start)
        return lab, reps[rank_order].astype(np.int64)

    def result(self, core: np.ndarray, root: np.ndarray, eps_km: float,
               min_weight: float) -> DbscanResult:
        """Labels with border points, in input order."""
        g = self.g
        lab, reps = self.core_labels(core, root)
        ncore = _grid.count_per_cell(core, g.cell_start)
        _grid.border_labels(g.xyz, g.latr, g.lonr, g.cl, core, lab, ncore, g.cell_start,
                            g.cell_k, g.col_start, g.col_k, g.table, self.h, self.reach,
                            self.c_lo2, self.c_hi2, self.s2)
        labels = _grid.scatter(lab, g.order, np.int64(-1))
        is_core = _grid.scatter(core, g.order, False)
        return DbscanResult(labels, is_core, int(reps.shape[0]), reps, eps_km, min_weight)


def nearest_core(lat_deg, lon_deg, core_lat_deg, core_lon_deg, core_label, *,
                 eps_km: float, n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest core point within ``eps_km`` of every query point.

    Parameters
    ----------
    lat_deg, lon_deg : array-like of float, shape (n,)
        Query points, degrees.
    core_lat_deg, core_lon_deg : array-like of float, shape (m,)
        Core points, degrees.
    core_label : array-like of int, shape (m,)
        Label of each core point.
    eps_km : float
        Radius, km (same "within" test as :func:`dbscan_sphere`).
    n_threads : int, optional
        Numba threads to use.

    Returns
    -------
    label : ndarray of int64, shape (n,)
        Label of the nearest core point within eps (ties: smaller label), -1 if none.
    distance_km : ndarray of float64, shape (n,)
        Great-circle distance to it, km (``inf`` if none).
    """
    (qla, qlo, _), (cla, clo, lab) = _checked_sets(
        "nearest_core", [("", lat_deg, lon_deg, None, None),
                         ("core_", core_lat_deg, core_lon_deg, "core_label", core_label)],
        eps_km, n_threads)
    n = qla.shape[0]
    out_lab = np.full(n, -1, np.int64)
    out_km = np.full(n, np.inf)
    if n == 0 or cla.shape[0] == 0:
        return out_lab, out_km
    h, inv_h, c_lo2, c_hi2, s2, reach = _grid.grid_geometry(float(eps_km) / EARTH_RADIUS_KM)
    with _Threads(n_threads):
        t = _Grid(cla, clo, inv_h, axis_h=h)
        q = _Grid(qla, qlo, inv_h)
        tlab = _grid.gather(lab, t.order)
        ql, qr = _grid.nearest_queries(q.xyz, q.latr, q.lonr, q.cl, q.cell_start, q.cell_k,
                                       t.xyz, t.latr, t.lonr, t.cl, tlab, t.cell_start, t.cell_k,
                                       t.col_start, t.col_k, t.table, h, reach,
                                       c_lo2, c_hi2, s2)
        out_lab = _grid.scatter(ql, q.order, np.int64(-1))
        rd = _grid.scatter(qr, q.order, np.inf)
    found = out_lab >= 0
    # sklearn's HaversineDistance._rdist_to_dist, scaled to km
    out_km[found] = 2.0 * np.arcsin(np.sqrt(rd[found])) * EARTH_RADIUS_KM
    return out_lab, out_km


def link_clusters(core_lat_a, core_lon_a, label_a, core_lat_b, core_lon_b, label_b, *,
                  eps_km: float, n_threads: int | None = None) -> np.ndarray:
    """Pairs of clusters of two point sets that come within ``eps_km`` of each other.

    Parameters
    ----------
    core_lat_a, core_lon_a : array-like of float, shape (n_a,)
        Core points of set a, degrees.
    label_a : array-like of int, shape (n_a,)
        Cluster label of each a point.
    core_lat_b, core_lon_b, label_b : array-like, shape (n_b,)
        Same for set b.
    eps_km, n_threads
        As for :func:`nearest_core`.

    Returns
    -------
    ndarray of int64, shape (k, 2)
        Distinct ``(label_a, label_b)`` rows, sorted, such that some a point of ``label_a``
        is within eps of some b point of ``label_b``.
    """
    (ala, alo, alab), (bla, blo, blab) = _checked_sets(
        "link_clusters", [("a: core_", core_lat_a, core_lon_a, "label_a", label_a),
                          ("b: core_", core_lat_b, core_lon_b, "label_b", label_b)],
        eps_km, n_threads)
    if ala.shape[0] == 0 or bla.shape[0] == 0:
        return np.empty((0, 2), np.int64)
    h, inv_h, c_lo2, c_hi2, s2, reach = _grid.grid_geometry(float(eps_km) / EARTH_RADIUS_KM)
    with _Threads(n_threads):
        a = _Grid(ala, alo, inv_h, within=(alab,))
        b = _Grid(bla, blo, inv_h, within=(blab,))
        pairs = _grid.link_pairs(a.xyz, a.latr, a.lonr, a.cl, _grid.gather(alab, a.order),
                                 a.cell_start, a.cell_k,
                                 b.xyz, b.latr, b.lonr, b.cl, _grid.gather(blab, b.order),
                                 b.cell_start, b.cell_k, b.col_start, b.col_k, b.table,
                                 h, reach, c_lo2, c_hi2, s2)
    if pairs.shape[0] == 0:
        return np.empty((0, 2), np.int64)
    return np.unique(pairs, axis=0)


def _check_labels(name: str, value, like: np.ndarray | None, problems: list[str]):
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - asarray rarely fails
        problems.append(f"{name} cannot be read as an array ({exc})")
        return None
    if arr.ndim != 1:
        problems.append(f"{name} must be 1-D, got shape {arr.shape}")
        return None
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        problems.append(f"{name} must be integers, got dtype {arr.dtype}")
        return None
    if like is not None and arr.shape != like.shape:
        problems.append(f"{name} length {arr.shape[0]} != number of points {like.shape[0]}")
    return np.ascontiguousarray(arr, dtype=np.int64)
