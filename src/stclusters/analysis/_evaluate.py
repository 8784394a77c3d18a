"""Fast re-ranking of one run's weighted points under other clustering parameters.

Counting, windows and aggregation into points do not depend on ``eps_km``, ``min_weight``
or ``merge_eps_km``, so the sensitivity and calibration grids never recount: they load the
run's ``points`` once and, per setting, redo only the per-source DBSCAN (cached per
``(source, eps_km, min_weight)``: a patent clustering is shared by every publication
threshold), the merge into S&T clusters and the footprint assignment
(:func:`stclusters.clusters.st.st_clusters`, the same code as the pipeline), then sum the
weights exactly (DuckDB over the fixed-point ``weight_fx``, as :mod:`stclusters.ranking`),
score and rank (:func:`stclusters.ranking.score`, :func:`stclusters.ranking.rank_order`).

Names are not computed here (they cost more than the clustering); rank ties that the
pipeline breaks by name are broken by the run's name of the same ``cluster_id`` (so the run's
own setting gives the run's own ranks), or by the ``cluster_id`` of a cluster the run does not
have. A metric of weight 0 is not clustered, as in the pipeline
(:func:`stclusters.clusters.st.not_clustered`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from stclusters.clusters.dbscan import DbscanResult, _Threads, dbscan_sphere
from stclusters.clusters.st import StLabels, not_clustered, source_codes, st_clusters
from stclusters.clusters.sweep import MinWeightSweep, sweep_min_weight
from stclusters.contributions import fx_to_weight
from stclusters.params import RankParams
from stclusters.ranking import _centroids, _cluster_ids, rank_order, score
from stclusters.store import fetch_arrow

__all__ = ["Evaluation", "Evaluator"]

#: Point count below which the evaluator runs the clustering kernels on one thread.
SERIAL_BELOW = 500_000


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One setting's S&T clusters, scored and ranked (arrays indexed by ``stc``, 0..n-1).

    Attributes
    ----------
    params : RankParams
        The setting.
    min_weight : dict of str to float
        Absolute core threshold used per source (weight units).
    labels : StLabels
        Per point (in the evaluator's point order): source cluster, core flag, S&T cluster.
    weights : dict of str to ndarray
        Fractional count per source and cluster.
    shares_pct : dict of str to ndarray
        Share of the source's world total, %.
    score_pct : ndarray
        Score, %.
    rank : ndarray of int64
        Rank (1 = first) of each cluster.
    cluster_id : list of str
        Content key of each cluster (``stc<lat><lon>`` of its heaviest core point), as in
        the pipeline's ``cluster_id``.
    lat, lon : ndarray
        Weighted centre of each cluster's core points, degrees.
    """

    params: RankParams
    min_weight: dict[str, float]
    labels: StLabels
    weights: dict[str, np.ndarray]
    shares_pct: dict[str, np.ndarray]
    score_pct: np.ndarray
    rank: np.ndarray
    cluster_id: list[str]
    lat: np.ndarray
    lon: np.ndarray

    @property
    def n_clusters(self) -> int:
        return self.labels.n_stc

    def order(self) -> np.ndarray:
        """Cluster numbers (``stc``) in rank order."""
        return np.argsort(self.rank, kind="stable")


class Evaluator:
    """A run's weighted points, ready to be clustered and ranked under other parameters.

    Parameters
    ----------
    points : pyarrow.Table
        Columns ``source, lat, lon, weight, weight_fx`` (a run's ``points`` table).
    world_totals : dict of str to float
        Sum of used weight per source (the run's manifest ``world_totals``).
    source_weights : dict of str to float, optional
        Weight of each source in the score (default: taken from each setting's params).

    Examples
    --------
    >>> ev = Evaluator.from_result(res)                                     # doctest: +SKIP
    >>> e = ev.evaluate(res.params.with_source("patent", eps_km=10))        # doctest: +SKIP
    >>> e.rank[:5], e.score_pct[:5]                                         # doctest: +SKIP
    """

    def __init__(self, points: pa.Table, world_totals: dict[str, float], *,
                 names: dict[str, str] | None = None) -> None:
        pts = points.select(["source", "lat", "lon", "weight", "weight_fx"])
        # cluster_id → name of the run the points come from: the last key of the rank order
        # (methodology §6), so that the run's own setting gives the run's own ranks, ties
        # included. A cluster the run does not have is keyed by its id.
        self.names_by_id = dict(names or {})
        self.names, self.source = source_codes(pts.column("source"))
        # The pipeline clusters its points in (source, lat, lon) order: so do we, so that
        # every tie inside DBSCAN and the numbering goes the same way.
        order = np.lexsort((pts.column("lon").to_numpy(), pts.column("lat").to_numpy(),
                            self.source))
        pts = pts.take(pa.array(order, pa.int64()))
        self.source = self.source[order]
        self.lat = pts.column("lat").to_numpy()
        self.lon = pts.column("lon").to_numpy()
        self.weight = pts.column("weight").to_numpy()
        self.world_totals = {s: float(world_totals.get(s, 0.0)) for s in self.names}
        self._fx = pts.select(["source", "weight_fx"])
        self._con = duckdb.connect()
        self._cache: dict[tuple[int, float, float], DbscanResult] = {}
        self._cache_eps: tuple[float, ...] = ()
        self.dbscan: Callable[..., DbscanResult] = dbscan_sphere
        self.n_dbscan_runs = 0
        self.n_sweeps = 0
        self._plan: dict[tuple[int, float], list[float]] = {}
        self._sweeps: dict[tuple[int, float], MinWeightSweep] = {}
        # Below SERIAL_BELOW points the kernels' threads cost more than they save: one
        # setting of 67k points took 1.8 s on two threads, 0.44 s on one (2 busy cores).
        self.n_threads: int | None = 1 if self.n_points < SERIAL_BELOW else None

    @classmethod
    def from_result(cls, result) -> Evaluator:  # noqa: ANN001 - RankResult (no import cycle)
        """The evaluator of a :class:`stclusters.pipeline.RankResult`'s points."""
        points = fetch_arrow(result.con, "SELECT source, lat, lon, weight, weight_fx FROM points")
        named = fetch_arrow(result.con, "SELECT cluster_id, name FROM clusters")
        return cls(points, result.manifest["world_totals"],
                   names=dict(zip(named.column("cluster_id").to_pylist(),
                                  named.column("name").to_pylist())))

    @property
    def n_points(self) -> int:
        return len(self.lat)

    def resolved_min_weight(self, params: RankParams) -> dict[str, float]:
        """Absolute core threshold per source of ``params`` (weight units)."""
        return {s: params.source(s).resolved_min_weight(self.world_totals[s]) for s in self.names}

    def plan(self, settings: Sequence[RankParams]) -> None:
        """Say which settings will be evaluated: every (source, radius) asked for several
        thresholds is then clustered by one sweep (:mod:`stclusters.clusters.sweep`, exact
        like :func:`dbscan_sphere`) instead of one DBSCAN per threshold."""
        wanted: dict[tuple[int, float], set[float]] = {}
        for p in settings:
            mw = self.resolved_min_weight(p)
            for k, s in enumerate(self.names):
                if p.is_scored(s):
                    wanted.setdefault((k, float(p.source(s).eps_km)), set()).add(mw[s])
        self._plan = {key: sorted(v) for key, v in wanted.items() if len(v) >= 2}

    def _source_result(self, k: int, eps_km: float, min_weight: float) -> DbscanResult:
        key = (k, float(eps_km), float(min_weight))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cluster_source(k, float(eps_km), float(min_weight))
            self._cache[key] = hit
        return hit

    def _cluster_source(self, k: int, eps_km: float, min_weight: float) -> DbscanResult:
        idx = np.flatnonzero(self.source == k)
        thresholds = self._plan.get((k, eps_km))
        if thresholds and thresholds[0] <= min_weight <= thresholds[-1]:
            sweep = self._sweeps.get((k, eps_km))
            if sweep is None:
                sweep = sweep_min_weight(self.lat[idx], self.lon[idx], self.weight[idx],
                                         eps_km=eps_km, min_weights=thresholds)
                self._sweeps[(k, eps_km)] = sweep
                self.n_sweeps += 1
            return sweep.result(min_weight)
        self.n_dbscan_runs += 1
        return self.dbscan(self.lat[idx], self.lon[idx], self.weight[idx], eps_km=eps_km,
                           min_weight=min_weight)

    def _keep_cache_for(self, eps_values: tuple[float, ...]) -> None:
        """Drop cached clusterings and sweeps of other radii (an entry costs ~9 bytes per
        point, a sweep a few times that)."""
        if eps_values != self._cache_eps:
            self._cache = {k: v for k, v in self._cache.items() if k[1] in eps_values}
            self._sweeps = {k: v for k, v in self._sweeps.items() if k[1] in eps_values}
            self._cache_eps = eps_values

    def evaluate(self, params: RankParams) -> Evaluation:
        """Cluster, score and rank the points with ``params`` (only its clustering
        parameters, source weights and top N matter; windows and counting are the run's)."""
        with _Threads(self.n_threads):  # the kernels' own thread setting
            return self._evaluate(params)

    def _evaluate(self, params: RankParams) -> Evaluation:
        min_weight = self.resolved_min_weight(params)
        eps = tuple(float(params.source(s).eps_km) for s in self.names)
        self._keep_cache_for(eps)
        results = [self._source_result(k, eps[k], min_weight[s]) if params.is_scored(s) else
                   not_clustered(int((self.source == k).sum()), eps_km=eps[k],
                                 min_weight=min_weight[s])
                   for k, s in enumerate(self.names)]
        labels = st_clusters(self.source, self.lat, self.lon, self.weight, results,
                             merge_eps_km=params.footprint_eps_km)
        return self._ranked(params, min_weight, labels)

    def _ranked(self, params: RankParams, min_weight: dict[str, float], labels: StLabels
                ) -> Evaluation:
        n = labels.n_stc
        weights = self._cluster_weights(labels.stc, n)
        sources = sorted(set(self.names) | set(params.sources))
        totals = {s: self.world_totals.get(s, 0.0) for s in sources}
        weights = {s: weights.get(s, np.zeros(n)) for s in sources}
        shares = {s: weights[s] / totals[s] * 100 if totals[s] > 0 else weights[s] * 0
                  for s in sources}
        sc = score(shares, {s: params.weight_of(s) for s in sources})
        core = np.flatnonzero(labels.is_core)
        cores = pa.table({"stc": labels.stc[core],
                          "source": pa.array(np.asarray(self.names, dtype=object)[self.source[core]],
                                             pa.string()),
                          "lat": self.lat[core], "lon": self.lon[core],
                          "weight": self.weight[core]})
        ids = _cluster_ids(cores)
        _, c_lat, c_lon = _centroids(cores)
        order = rank_order(sc, shares.get("patent", np.zeros(n)),
                           [self.names_by_id.get(i, i) for i in ids])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        return Evaluation(params, min_weight, labels, weights, shares, sc, rank, ids, c_lat, c_lon)

    def _cluster_weights(self, stc: np.ndarray, n_stc: int) -> dict[str, np.ndarray]:
        """Exact fractional count per source and cluster: the same fixed-point sum in DuckDB
        as the pipeline's ranking, so that the shares agree to the last bit."""
        table = self._fx.append_column("stc", pa.array(stc))
        self._con.register("_labelled_fx", table)
        try:
            rows = self._con.execute(f"""
                SELECT stc, source, {fx_to_weight('sum(weight_fx)')} AS weight
                FROM _labelled_fx WHERE stc >= 0 GROUP BY stc, source""").fetchall()
        finally:
            self._con.unregister("_labelled_fx")
        out = {s: np.zeros(n_stc) for s in self.names}
        for stc_k, s, w in rows:
            out[s][stc_k] = w
        return out


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation of two rankings (average ranks for ties), shape (n,);
    None below 3 pairs or when either side is constant (no correlation is defined)."""
    from scipy.stats import spearmanr  # noqa: PLC0415

    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(spearmanr(x, y).statistic)
