"""Whole parameter sweeps of weighted DBSCAN at about the cost of one run (issue 9 §2).

For a fixed ``eps_km`` the clusterings of all thresholds are nested: a point is core at
``min_weight`` iff its *neighbourhood weight* ``nw`` (the weight within eps, itself included)
is >= ``min_weight``, and lowering the threshold only adds core points and links. So ``nw`` is
computed once, and the core components of every threshold follow from one Kruskal pass over the
grid (:mod:`stclusters.clusters._sweep`): every grid cell is a clique, two neighbouring cells
are linked down from ``L = max over pairs within eps of min(nw_p, nw_q)``, and the merges in
decreasing ``L`` give the whole threshold dendrogram. A plane of ``eps_km`` values repeats this
per radius.

Exactness
---------
Results are *identical* to :func:`stclusters.clusters.dbscan.dbscan_sphere` at every setting
(labels including border points, core flags, cluster count, representatives and their order):
both use one definition of the neighbourhood weight that does not depend on the order of the
sum. Weights are converted to int64 fixed point, ``round(w * 2**b)`` with ``b`` the largest
power of two that keeps the total below 2**61 (``_grid.fixed_point``), and summed exactly; a
point is core iff that sum is >= ``ceil(min_weight * 2**b * (1 - 2**-36))`` (a relative
tie tolerance, ``_grid.TIE_REL``: three weights of 1/3 reach 1). For integer weights and
dyadic fractions this is the exact real comparison, as scikit-learn's float sum is then;
otherwise the two can differ only when the neighbourhood weight is within a relative 1.5e-11
of the threshold.

Range
-----
A sweep answers every threshold inside ``[min(min_weights), max(min_weights)]``, listed or not
(:meth:`MinWeightSweep.result`); neighbourhood weights outside that interval are clamped
(below: never core; above: core at every swept threshold).

Cost
----
The sweep computes every point's exact ``nw`` (``_grid.all_neighbour_weights``: each pair of
points tested once for both points, where the one-setting core test stops each point early),
then one pass over the cell pairs for the link values; each clustering asked for costs a
union-find replay of the merges, O(n) for the labels and, for :meth:`MinWeightSweep.result`,
the border pass of one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stclusters.clusters import _grid, _sweep
from stclusters.clusters.dbscan import (
    DbscanResult,
    _as_1d,
    _check_eps,
    _check_min_weight,
    _check_points,
    _check_threads,
    _check_weight,
    _empty_result,
    _Prepared,
    _raise,
    _Threads,
)
from stclusters.errors import ParameterError

__all__ = ["MinWeightSweep", "ParameterSweep", "sweep_grid", "sweep_min_weight"]


# --------------------------------------------------------------------------- state

@dataclass(eq=False)
class _Dendrogram:
    """Everything needed to answer any threshold of one radius (sorted grid order)."""

    prepared: _Prepared | None  # None when there are no points
    nw: np.ndarray  # (n,) int64 clamped fixed-point neighbourhood weight
    cell_max: np.ndarray  # (ncell,) int64 max nw per cell
    merge_a: np.ndarray  # (k,) cells joined by each merge, link value descending
    merge_b: np.ndarray
    merge_l: np.ndarray  # (k,) int64 link value of each merge, descending
    lo_fixed: int
    hi_fixed: int
    n_threads: int | None

    def fixed(self, min_weight: float) -> int:
        return 0 if self.prepared is None else _grid.fixed_threshold(
            min_weight, self.prepared.scale_bits)

    def n_merges(self, m_fixed: int) -> int:
        """Leading merges with link value >= m."""
        return int(np.searchsorted(-self.merge_l, -m_fixed, side="right"))

    def core_and_root(self, m_fixed: int) -> tuple[np.ndarray, np.ndarray]:
        core = _sweep.at_least(self.nw, np.int64(m_fixed))
        root = _sweep.cut(self.merge_a, self.merge_b, self.n_merges(m_fixed), self.cell_max,
                          np.int64(m_fixed))
        return core, root


def _dendrogram(la: np.ndarray, lo: np.ndarray, w: np.ndarray, eps_km: float,
                lo_weight: float, hi_weight: float, n_threads: int | None) -> _Dendrogram:
    """Grid, clamped neighbourhood weights and merges of one radius."""
    empty = np.empty(0, np.int64)
    if la.shape[0] == 0:
        return _Dendrogram(None, empty, empty, empty, empty, empty, 1, 1, n_threads)
    p = _Prepared(la, lo, w, eps_km)
    lo_f = _grid.fixed_threshold(lo_weight, p.scale_bits)
    hi_f = _grid.fixed_threshold(hi_weight, p.scale_bits)
    g = p.g
    nw = _clamp(p.all_neighbour_weights(), lo_f, hi_f)
    pos, cell_max = _sweep.by_weight(nw, g.cell_start)
    p.reorder(pos)  # heaviest first inside each cell: the link search stops early
    nw = _grid.gather(nw, pos)
    del pos
    ea, eb, el = _sweep.cell_links(nw, cell_max, g.xyz, p.soa, g.latr, g.lonr, g.cl,
                                   g.cell_start, g.cell_k, g.col_start, g.col_k, g.table,
                                   p.h, p.reach, p.c_lo2, p.c_hi2, p.s2, np.int64(lo_f))
    keep = el >= lo_f
    ea, eb, el = ea[keep], eb[keep], el[keep]
    order = np.argsort(-el, kind="stable")  # ties: (c, d) order, so merges are deterministic
    ma, mb, ml = _sweep.kruskal(ea, eb, el, order, p.ncell)
    return _Dendrogram(p, nw, cell_max, ma, mb, ml, lo_f, hi_f, n_threads)


def _clamp(nw: np.ndarray, lo_fixed: int, hi_fixed: int) -> np.ndarray:
    """-1 below the swept range, the top of the range above it: only the range is answered."""
    out = np.minimum(nw, np.int64(hi_fixed))
    out[nw < lo_fixed] = -1
    return out


# --------------------------------------------------------------------------- results

@dataclass(frozen=True, eq=False)
class MinWeightSweep:
    """Every ``min_weight`` of one ``eps_km``: per-threshold figures and exact clusterings.

    Attributes
    ----------
    eps_km : float
        Radius, km.
    min_weight : ndarray of float64, shape (k,)
        The thresholds asked for, ascending, duplicates removed (weight units).
    n_clusters : ndarray of int64, shape (k,)
        Clusters at each threshold.
    n_core : ndarray of int64, shape (k,)
        Core points at each threshold.
    core_weight : ndarray of float64, shape (k,)
        Total weight of the core points at each threshold (the fixed-point sum, exact to
        ``2**-b`` per point; weight units).
    """

    eps_km: float
    min_weight: np.ndarray
    n_clusters: np.ndarray
    n_core: np.ndarray
    core_weight: np.ndarray
    _d: _Dendrogram = field(repr=False)

    def _checked(self, min_weight) -> int:
        problems: list[str] = []
        _check_min_weight("min_weight", min_weight, problems)
        _raise(problems, "MinWeightSweep")
        d = self._d
        m = d.fixed(float(min_weight))
        if d.prepared is not None and not d.lo_fixed <= m <= d.hi_fixed:
            raise ParameterError(
                f"MinWeightSweep: min_weight {min_weight!r} is outside the swept range "
                f"[{self.min_weight[0]!r}, {self.min_weight[-1]!r}]",
                hint="sweep a range that includes it (min_weights=...)")
        return m

    def result(self, min_weight: float) -> DbscanResult:
        """The clustering at ``min_weight`` (any value in the swept range), identical to
        ``dbscan_sphere(..., eps_km=self.eps_km, min_weight=min_weight)``.

        Costs the border-point pass of one run (plus O(n) for labels), not a new core test.
        """
        m = self._checked(min_weight)
        d = self._d
        if d.prepared is None:
            return _empty_result(self.eps_km, float(min_weight))
        with _Threads(d.n_threads):
            core, root = d.core_and_root(m)
            return d.prepared.result(core, root, self.eps_km, float(min_weight))

    def core_labels(self, min_weight: float) -> np.ndarray:
        """Cluster id of every core point at ``min_weight``, -1 for all other points.

        Same ids as :meth:`result` (``labels`` where ``is_core``), without the border pass.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        m = self._checked(min_weight)
        d = self._d
        if d.prepared is None:
            return np.empty(0, np.int64)
        with _Threads(d.n_threads):
            core, root = d.core_and_root(m)
            lab, _ = d.prepared.core_labels(core, root)
            return _grid.scatter(lab, d.prepared.g.order, np.int64(-1))


def _summary(d: _Dendrogram, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    """n_clusters, n_core, core_weight at each threshold (vectorised over thresholds)."""
    k = thresholds.shape[0]
    if d.prepared is None:
        return np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(k)
    m = np.array([d.fixed(float(t)) for t in thresholds], np.int64)
    n_core, core_fixed = _sweep.threshold_counts(d.nw, d.prepared.ws, m)
    # exact integer sums of the fixed-point weights, converted once (order-free result)
    core_weight = np.ldexp(core_fixed.astype(np.float64), -d.prepared.scale_bits)
    cmax = np.sort(d.cell_max)[::-1]
    active = np.searchsorted(-cmax, -m, side="right")
    merges = np.searchsorted(-d.merge_l, -m, side="right")
    return (active - merges).astype(np.int64), n_core, core_weight


def _min_weights(value, problems: list[str]) -> np.ndarray | None:
    arr = _as_1d("min_weights", value, problems)
    if arr is None:
        return None
    if arr.shape[0] == 0:
        problems.append("min_weights must not be empty")
        return None
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problems.append(f"min_weights has {int(bad.sum())} value(s) that are not finite "
                        f"numbers > 0 (first at index {i}: {arr[i]!r})")
        return None
    return np.unique(arr)


def _eps_list(value, problems: list[str]) -> np.ndarray | None:
    arr = _as_1d("eps_kms", value, problems)
    if arr is None:
        return None
    if arr.shape[0] == 0:
        problems.append("eps_kms must not be empty")
        return None
    for i, e in enumerate(arr.tolist()):
        sub: list[str] = []
        _check_eps(e, sub)
        problems += [f"eps_kms[{i}]: {s}" for s in sub]
    return np.unique(arr)


def _validated(what: str, lat_deg, lon_deg, weight, min_weights, n_threads,
               eps_check) -> tuple:
    problems: list[str] = []
    la, lo = _check_points("", lat_deg, lon_deg, problems)
    w = _check_weight(weight, la, problems)
    eps = eps_check(problems)
    mws = _min_weights(min_weights, problems)
    _check_threads(n_threads, problems)
    _raise(problems, what)
    if w is None:
        w = np.ones(la.shape[0])
    return la, lo, w, eps, mws


def _one_radius(la, lo, w, eps_km: float, mws: np.ndarray,
                n_threads: int | None) -> MinWeightSweep:
    with _Threads(n_threads):
        d = _dendrogram(la, lo, w, eps_km, float(mws[0]), float(mws[-1]), n_threads)
        n_clusters, n_core, core_weight = _summary(d, mws)
    return MinWeightSweep(eps_km, mws, n_clusters, n_core, core_weight, d)


def sweep_min_weight(lat_deg, lon_deg, weight=None, *, eps_km: float, min_weights,
                     n_threads: int | None = None) -> MinWeightSweep:
    """Weighted DBSCAN at every threshold of ``min_weights`` for one radius, in one pass.

    Parameters
    ----------
    lat_deg, lon_deg : array-like of float, shape (n,)
        Latitude in [-90, 90] and longitude in [-180, 180], degrees.
    weight : array-like of float, shape (n,), optional
        Non-negative finite weight per point (default 1).
    eps_km : float
        Neighbourhood radius, km of great-circle distance, in [1e-6, π·R).
    min_weights : array-like of float, shape (k,)
        Core thresholds (weight units, each > 0). Any threshold between the smallest and the
        largest can later be asked for, listed or not.
    n_threads : int, optional
        Numba threads to use (default: numba's current setting).

    Returns
    -------
    MinWeightSweep
        Per-threshold ``n_clusters``, ``n_core``, ``core_weight``; ``.result(m)`` and
        ``.core_labels(m)`` give the clustering at any swept threshold, identical to
        :func:`~stclusters.clusters.dbscan.dbscan_sphere`.

    Raises
    ------
    ParameterError
        Listing every invalid parameter.
    """
    def eps_check(problems):
        _check_eps(eps_km, problems)
        return eps_km
    la, lo, w, eps, mws = _validated("sweep_min_weight", lat_deg, lon_deg, weight, min_weights,
                                     n_threads, eps_check)
    return _one_radius(la, lo, w, float(eps), mws, n_threads)


@dataclass(frozen=True, eq=False)
class ParameterSweep:
    """A plane of settings: every ``eps_km`` × every ``min_weight``.

    Attributes
    ----------
    eps_km : ndarray of float64, shape (n_eps,)
        Radii, km, ascending, duplicates removed.
    min_weight : ndarray of float64, shape (k,)
        Thresholds, ascending, duplicates removed (weight units).
    n_clusters, n_core : ndarray of int64, shape (n_eps, k)
        Clusters and core points at each setting.
    core_weight : ndarray of float64, shape (n_eps, k)
        Total weight of the core points at each setting (weight units).
    """

    eps_km: np.ndarray
    min_weight: np.ndarray
    n_clusters: np.ndarray
    n_core: np.ndarray
    core_weight: np.ndarray
    _inputs: tuple = field(repr=False)
    _cache: dict = field(repr=False, default_factory=dict)

    def sweep(self, eps_km: float) -> MinWeightSweep:
        """The :class:`MinWeightSweep` of one radius of the plane (rebuilt on demand: the
        plane keeps only its figures; the last radius asked for is kept)."""
        hit = np.flatnonzero(self.eps_km == eps_km)
        if hit.shape[0] == 0:
            raise ParameterError(f"ParameterSweep: eps_km {eps_km!r} is not one of the swept "
                                 f"radii {self.eps_km.tolist()}",
                                 hint="ask for one of the listed radii")
        e = float(self.eps_km[hit[0]])
        if e not in self._cache:
            la, lo, w, n_threads = self._inputs
            self._cache.clear()
            self._cache[e] = _one_radius(la, lo, w, e, self.min_weight, n_threads)
        return self._cache[e]

    def result(self, eps_km: float, min_weight: float) -> DbscanResult:
        """The clustering at one setting, identical to :func:`dbscan_sphere` there."""
        return self.sweep(eps_km).result(min_weight)

    def core_labels(self, eps_km: float, min_weight: float) -> np.ndarray:
        """Core points' cluster ids at one setting, -1 elsewhere (see
        :meth:`MinWeightSweep.core_labels`)."""
        return self.sweep(eps_km).core_labels(min_weight)


def sweep_grid(lat_deg, lon_deg, weight=None, *, eps_kms, min_weights,
               n_threads: int | None = None) -> ParameterSweep:
    """Weighted DBSCAN over a plane of settings: one threshold sweep per radius.

    Parameters
    ----------
    lat_deg, lon_deg, weight
        As for :func:`sweep_min_weight`.
    eps_kms : array-like of float, shape (n_eps,)
        Radii, km (each in [1e-6, π·R)).
    min_weights : array-like of float, shape (k,)
        Core thresholds, weight units (each > 0).
    n_threads : int, optional
        Numba threads to use.

    Returns
    -------
    ParameterSweep
        ``(n_eps, k)`` arrays of ``n_clusters``, ``n_core``, ``core_weight``, and
        ``.result(eps_km, min_weight)`` identical to :func:`dbscan_sphere` there.

    Raises
    ------
    ParameterError
        Listing every invalid parameter.
    """
    la, lo, w, eps, mws = _validated("sweep_grid", lat_deg, lon_deg, weight, min_weights,
                                     n_threads, lambda problems: _eps_list(eps_kms, problems))
    shape = (eps.shape[0], mws.shape[0])
    n_clusters = np.zeros(shape, np.int64)
    n_core = np.zeros(shape, np.int64)
    core_weight = np.zeros(shape)
    out = ParameterSweep(eps, mws, n_clusters, n_core, core_weight, (la, lo, w, n_threads))
    for i, e in enumerate(eps.tolist()):
        s = _one_radius(la, lo, w, e, mws, n_threads)
        n_clusters[i], n_core[i], core_weight[i] = s.n_clusters, s.n_core, s.core_weight
        del s  # one radius's grid at a time: memory stays that of one run
    return out
