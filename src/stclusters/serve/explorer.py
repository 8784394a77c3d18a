"""The explorer's model: one finished run, re-clustered under other clustering parameters.

The run folder is opened read-only (:func:`stclusters._run_folder.open_run`); its weighted
``points`` are loaded once into an :class:`stclusters.analysis._evaluate.Evaluator`, which
redoes only the per-metric DBSCAN, the merge into S&T clusters, the exact fixed-point sums,
the score and the rank order (the pipeline's own code): counting, windows and points do not
depend on the radius, the thresholds or the metric weights. What changed against the run's
own ranking is told by the editions' footprint matching (:func:`stclusters.analysis._match.
match`): merged, split, entered (or new), and the run's top-N clusters that left the top N.

See ``docs/serve.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from stclusters._run_folder import open_run
from stclusters.analysis._evaluate import Evaluation, Evaluator
from stclusters.analysis._match import Side, match, side_of_run_folder
from stclusters.clusters.dbscan import _Threads, nearest_core
from stclusters.clusters.st import StLabels, not_clustered, st_clusters
from stclusters.errors import ParameterError, StclustersError
from stclusters.params import RankParams, SourceParams
from stclusters.reports.geojson import footprint_geometry
# Footprints are encoded as in the offline report's payload (one function for both pages).
from stclusters.reports.html import COORD_SCALE, encode_geometry
from stclusters.store import fetch_arrow

__all__ = ["Explorer", "params_from_manifest", "COORD_SCALE", "EPS_KM_RANGE", "WEIGHT_RANGE"]

#: Accepted radius, km (the sliders' range is narrower, see :meth:`Explorer.sliders`).
EPS_KM_RANGE = (0.5, 200.0)
#: Accepted metric weight in the score.
WEIGHT_RANGE = (0.0, 100.0)
#: The core-threshold sliders run from the run's threshold / SLIDER_SPAN to × SLIDER_SPAN.
SLIDER_SPAN = 20.0
#: Vertices per footprint disc (the outputs use 64; 24 is plenty at screen scale and a
#: footprint of many cores costs less).
FOOTPRINT_VERTICES = 24
#: The drawn footprints' discs are centred on core points snapped to a grid of
#: ``eps_km / FOOTPRINT_SNAP`` (a disc moves by at most 9 % of its radius).
FOOTPRINT_SNAP = 8
#: Kilometres per degree of latitude (the snapping grid's unit; 6371.0088·π/180).
KM_PER_DEGREE = 111.195
#: Footprints kept for reuse (oldest dropped first), a few KB each.
FOOTPRINT_CACHE = 5000

_HINT = "e.g. eps_km_patent=13&min_weight_patent=5&weight_publication=1"


def params_from_manifest(parameters: Mapping[str, Any]) -> RankParams:
    """The :class:`RankParams` a run was made with, from its manifest's ``parameters``
    (:meth:`RankParams.to_dict`; the derived ``footprint_eps_km`` and
    ``resolved_population_year`` are dropped)."""
    fields = {f.name for f in dataclasses.fields(RankParams)}
    src_fields = {f.name for f in dataclasses.fields(SourceParams)}
    kw = {k: v for k, v in parameters.items() if k in fields and k != "sources"}
    sources = {}
    for name, sp in (parameters.get("sources") or {}).items():
        sp = {k: v for k, v in sp.items() if k in src_fields}
        if sp.get("doc_types") is not None:
            sp["doc_types"] = tuple(sp["doc_types"])
        sources[name] = SourceParams(**sp)
    for key in ("excluded_sources", "publication_domains"):
        if kw.get(key) is not None:
            kw[key] = tuple(kw[key])
    return RankParams(sources=sources, **kw)


class _SliderEvaluator(Evaluator):
    """An :class:`Evaluator` that keeps what a slider move leaves as it was.

    * The S&T labels of the last few (radius, thresholds, scored metrics) settings: a metric
      weight that stays above 0 changes the score and the order, never the clusters.
    * The exact per-cluster sums of those labels.
    * Threshold sweeps (:mod:`stclusters.clusters.sweep`, exact like ``dbscan_sphere``) over
      the slider's whole range, for a metric whose threshold is being moved: the first move
      at a radius pays for the sweep, every later one for the border pass of one run.
    """

    #: Settings whose labels are kept.
    KEEP = 4

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._labels: dict[tuple, StLabels] = {}
        self._sums: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        self.sweep_range: dict[str, tuple[float, float]] = {}

    def _evaluate(self, params: RankParams) -> Evaluation:
        min_weight = self.resolved_min_weight(params)
        eps = tuple(float(params.source(s).eps_km) for s in self.names)
        self._keep_cache_for(eps)
        self._plan_sweeps(params, min_weight)
        scored = tuple(params.is_scored(s) for s in self.names)
        key = (eps, tuple(min_weight[s] for s in self.names), scored,
               float(params.footprint_eps_km))
        labels = self._labels.get(key)
        if labels is None:
            results = [self._source_result(k, eps[k], min_weight[s]) if scored[k] else
                       not_clustered(int((self.source == k).sum()), eps_km=eps[k],
                                     min_weight=min_weight[s])
                       for k, s in enumerate(self.names)]
            labels = st_clusters(self.source, self.lat, self.lon, self.weight, results,
                                 merge_eps_km=params.footprint_eps_km)
            if len(self._labels) >= self.KEEP:
                self._labels.pop(next(iter(self._labels)))
            self._labels[key] = labels
        return self._ranked(params, min_weight, labels)

    def _plan_sweeps(self, params: RankParams, min_weight: dict[str, float]) -> None:
        """Sweep a metric's thresholds over its slider range once it moves off the run's
        own threshold (a radius change alone runs one DBSCAN per metric, cheaper than a
        sweep)."""
        plan = {}
        for k, s in enumerate(self.names):
            lo_hi = self.sweep_range.get(s)
            if lo_hi and params.is_scored(s) and min_weight[s] != self.default_min_weight[s] \
                    and lo_hi[0] <= min_weight[s] <= lo_hi[1]:
                plan[(k, float(params.source(s).eps_km))] = list(lo_hi)
        self._plan = plan

    def _cluster_weights(self, stc: np.ndarray, n_stc: int) -> dict[str, np.ndarray]:
        hit = self._sums.get(id(stc))
        if hit is None or hit[0] is not stc:
            if len(self._sums) >= self.KEEP:
                self._sums.pop(next(iter(self._sums)))
            hit = (stc, super()._cluster_weights(stc, n_stc))
            self._sums[id(stc)] = hit
        return {s: w.copy() for s, w in hit[1].items()}


def _step(offset: float, step: float) -> float | str:
    """A slider's step: ``step`` when ``offset`` (value − slider minimum) is a whole number
    of steps, else ``"any"`` (the HTML range input would snap the run's own value away)."""
    n = offset / step
    return step if math.isclose(n, round(n), abs_tol=1e-9) else "any"


def _finite(value: Any, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), digits)


class Explorer:
    """A finished run, ready to be re-clustered.

    Parameters
    ----------
    run_dir : path
        The run folder (``stclusters rank --out``); read-only.

    Raises
    ------
    StclustersError
        Not a finished run folder (no workspace, manifest or points).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        con, manifest, label = open_run(self.run_dir, need=("ranking", "clusters", "points"))
        try:
            if not manifest or "parameters" not in manifest or "world_totals" not in manifest:
                raise StclustersError(f"{self.run_dir}: no manifest with the run's parameters",
                                      hint="give the --out folder of a finished "
                                           "`stclusters rank` run")
            points = fetch_arrow(con, "SELECT source, lat, lon, weight, weight_fx FROM points")
            named = fetch_arrow(con, "SELECT cluster_id, name, economy FROM clusters")
        finally:
            con.close()
        self.manifest = manifest
        self.label = label or manifest.get("data_label")
        self.params = params_from_manifest(manifest["parameters"])
        ids = named.column("cluster_id").to_pylist()
        self.economy_by_id = dict(zip(ids, named.column("economy").to_pylist()))
        self.evaluator = _SliderEvaluator(points, manifest["world_totals"],
                                          names=dict(zip(ids, named.column("name").to_pylist())))
        self.metrics = list(self.evaluator.names)
        default = self.evaluator.resolved_min_weight(self.params)
        self.evaluator.default_min_weight = default
        self.evaluator.sweep_range = {m: (default[m] / SLIDER_SPAN, default[m] * SLIDER_SPAN)
                                      for m in self.metrics}
        self.top_n = int(self.params.top_n)
        self.side: Side = side_of_run_folder(self.run_dir)
        self._old_b = self._old_footprints()
        self._con = duckdb.connect()
        run_clusters = self.side.clusters
        weights = {m: run_clusters.column(f"{m}_weight").to_pylist() for m in self.metrics
                   if f"{m}_weight" in run_clusters.column_names}
        self._run_weights = {
            cid: {m: w[i] for m, w in weights.items()}
            for i, cid in enumerate(run_clusters.column("cluster_id").to_pylist())}
        # Footprints by (cluster_id, radius, digest of its core points): a slider moved on
        # one metric leaves most of the top N as they were.
        self._footprints: dict[tuple[str, float, bytes], list[list[list[int]]]] = {}

    def _old_footprints(self) -> np.ndarray:
        """The run's S&T cluster whose footprint holds each point (-1 none), in the
        evaluator's point order: the matching's first step (:mod:`stclusters.analysis.
        _match`), done once since the run's footprints never change."""
        ev, old = self.evaluator, self.side.points
        is_core = old.column("is_core").to_numpy(zero_copy_only=False)
        with _Threads(ev.n_threads):
            b, _ = nearest_core(ev.lat, ev.lon, old.column("lat").to_numpy()[is_core],
                                old.column("lon").to_numpy()[is_core],
                                old.column("stc").to_numpy()[is_core],
                                eps_km=self.side.footprint_eps_km)
        return b

    def _pair_sums(self, ev: Evaluation) -> list[tuple[int, int, str, Decimal]]:
        """``(a, b, source, Σ weight_fx)``: the new clusters' points by (new cluster, run's
        footprint, source), summed exactly in DuckDB, sorted (as the matching sums them)."""
        inside = np.flatnonzero(ev.labels.stc >= 0)
        mapped = pa.table({"a": ev.labels.stc[inside], "b": self._old_b[inside],
                           "source": self.evaluator.source[inside].astype(np.int64),
                           "weight_fx": self.evaluator._fx.column("weight_fx").take(
                               pa.array(inside))})
        self._con.register("_mapped", mapped)
        try:
            rows = self._con.execute("SELECT a, b, source, sum(weight_fx) FROM _mapped "
                                     "GROUP BY a, b, source").fetchall()
        finally:
            self._con.unregister("_mapped")
        names = self.evaluator.names
        return sorted((int(a), int(b), names[k], Decimal(fx)) for a, b, k, fx in rows)

    # ---------------------------------------------------------------- parameters

    def accepted_ranges(self) -> dict[str, tuple[float, float]]:
        """The accepted radius (km) and metric weight ranges, widened to hold the run's own
        values."""
        eps = [float(self.params.source(m).eps_km) for m in self.metrics]
        weights = [float(self.params.weight_of(m)) for m in self.metrics]
        return {"eps_km": (min(EPS_KM_RANGE[0], *eps), max(EPS_KM_RANGE[1], *eps)),
                "weight": (WEIGHT_RANGE[0], max(WEIGHT_RANGE[1], *weights))}

    def sliders(self) -> dict[str, Any]:
        """The run's setting and the sliders' ranges: radius per metric (km), absolute core
        threshold per metric (weight units; log scale from 1/SLIDER_SPAN to SLIDER_SPAN
        times the run's) and metric weights. Every range lies in the accepted one
        (:meth:`accepted_ranges`) and holds the run's value on a step."""
        mw = self.evaluator.resolved_min_weight(self.params)
        ranges = self.accepted_ranges()
        eps_lo, eps_hi = ranges["eps_km"]
        w_hi = ranges["weight"][1]
        eps_km = {}
        for m in self.metrics:
            eps = float(self.params.source(m).eps_km)
            eps_km[m] = {"value": eps, "min": eps_lo,
                         "max": min(eps_hi, max(50.0, 4 * eps)),
                         "step": _step(eps - eps_lo, 0.5)}
        weight = {}
        for m in self.metrics:
            w = float(self.params.weight_of(m))
            weight[m] = {"value": w, "min": WEIGHT_RANGE[0], "max": min(w_hi, max(3.0, w)),
                         "step": _step(w - WEIGHT_RANGE[0], 0.1)}
        return {
            "eps_km": eps_km,
            "min_weight": {m: {"value": mw[m], "min": mw[m] / SLIDER_SPAN,
                               "max": mw[m] * SLIDER_SPAN, "log": True} for m in self.metrics},
            "weight": weight,
            "world_totals": {m: self.evaluator.world_totals[m] for m in self.metrics},
            "merge_eps_km": self.params.merge_eps_km,
            "top_n": self.top_n,
        }

    def params_for(self, query: Mapping[str, str]) -> RankParams:
        """The run's parameters with ``query``'s changes: ``eps_km_<metric>`` (that metric's
        radius, km), ``eps_km`` (every metric's radius, km; a metric's own key wins),
        ``min_weight_<metric>`` (absolute core threshold, weight units),
        ``weight_<metric>`` (weight in the score). An empty query is the run's setting.
        Every problem is reported at once.

        Raises
        ------
        ParameterError
            An unknown key, a value that is not a finite number, or one out of range.
        """
        problems: list[str] = []
        values: dict[str, float] = {}
        ranges = self.accepted_ranges()
        eps_range, weight_range = ranges["eps_km"], ranges["weight"]
        for key, text in sorted(query.items()):
            known = key == "eps_km" or any(
                key in (f"eps_km_{m}", f"min_weight_{m}", f"weight_{m}") for m in self.metrics)
            if not known:
                problems.append(f"{key}: unknown parameter")
                continue
            try:
                value = float(text)
            except (TypeError, ValueError):
                problems.append(f"{key}={str(text)[:40]!r}: not a number")
                continue
            if not math.isfinite(value):
                problems.append(f"{key}={text}: not a finite number")
            elif key.startswith("eps_km") and not eps_range[0] <= value <= eps_range[1]:
                problems.append(f"{key}={value:g}: must be in [{eps_range[0]:g}, "
                                f"{eps_range[1]:g}] km")
            elif key.startswith("min_weight_") and not value > 0:
                problems.append(f"{key}={value:g}: must be > 0")
            elif key.startswith("weight_") and not weight_range[0] <= value <= weight_range[1]:
                problems.append(f"{key}={value:g}: must be in [{weight_range[0]:g}, "
                                f"{weight_range[1]:g}]")
            else:
                values[key] = value
        params = self.params
        weights = dict(params.source_weights)
        for m in self.metrics:
            changes: dict[str, float] = {}
            eps = values.get(f"eps_km_{m}", values.get("eps_km"))
            if eps is not None:
                changes["eps_km"] = eps
            if f"min_weight_{m}" in values:
                changes["min_weight"] = values[f"min_weight_{m}"]
            if changes:
                params = params.with_source(m, **changes)
            if f"weight_{m}" in values:
                weights[m] = values[f"weight_{m}"]
        params = params.replace(source_weights=weights)
        if not problems and not any(params.is_scored(m) for m in self.metrics):
            problems.append("every metric weight is 0: nothing to cluster")
        if problems:
            raise ParameterError("; ".join(problems), hint=_HINT)
        return params

    # ---------------------------------------------------------------- the run as it is

    def run_summary(self) -> dict[str, Any]:
        """What ``GET /api/run`` adds to the report payload: the run's setting, the sliders,
        and the size of the points the explorer re-clusters."""
        return {"sliders": self.sliders(), "n_points": self.evaluator.n_points,
                "metrics": self.metrics,
                "n_clusters": int(self.side.clusters.num_rows)}

    # ---------------------------------------------------------------- re-clustering

    def recluster(self, params: RankParams) -> dict[str, Any]:
        """Re-cluster and rank the run's points under ``params``; the new top N with
        footprints, and what changed against the run's ranking.

        Returns
        -------
        dict
            ``clusters`` (top N in rank order, the report's row format, with ``status``:
            continued, split, merged, new or entered), ``left`` (the run's top-N clusters
            no longer in it, with the reason), ``counts`` (merged, split, entered, left),
            ``n_clusters`` (every S&T cluster found), ``min_weight`` (absolute thresholds
            used), ``timing_ms`` (cluster, match, footprints).
        """
        t0 = time.perf_counter()
        ev = self.evaluator.evaluate(params)
        t1 = time.perf_counter()
        side = self._side(ev, params)
        matched = match(self.side, side, top_n=self.top_n, pair_sums=self._pair_sums(ev))
        t2 = time.perf_counter()
        moves = matched.moves.to_pylist()
        clusters = [self._row(ev, r, params) for r in moves]
        self._attach_footprints(ev, clusters, params)
        t3 = time.perf_counter()
        left = [{"prev_rank": r["prev_rank"], "prev_cluster_id": r["prev_cluster_id"],
                 "prev_name": r["prev_name"], "reason": r["reason"],
                 "successor_rank": r["successor_rank"]} for r in matched.exits.to_pylist()]
        counts = {"merged": sum(c["status"] == "merged" for c in clusters),
                  "split": sum(c["status"] == "split" for c in clusters),
                  "entered": sum(c["status"] in ("entered", "new") for c in clusters),
                  "left": len(left)}
        return {"clusters": clusters, "left": left, "counts": counts,
                "n_clusters": int(ev.n_clusters), "top_n": self.top_n,
                "min_weight": ev.min_weight,
                "eps_km": {m: float(params.source(m).eps_km) for m in self.metrics},
                "weights": {m: params.weight_of(m) for m in self.metrics},
                "timing_ms": {"cluster": round((t1 - t0) * 1000, 1),
                              "match": round((t2 - t1) * 1000, 1),
                              "footprints": round((t3 - t2) * 1000, 1)}}

    def _side(self, ev: Evaluation, params: RankParams) -> Side:
        """The evaluation as the matching reads a ranking: every cluster with its rank,
        weights and shares."""
        ev_ = self.evaluator
        # The points are not read: the matching gets their sums (:meth:`_pair_sums`).
        points = pa.table({"source": pa.array([], pa.string()), "lat": pa.array([], pa.float64()),
                           "lon": pa.array([], pa.float64()), "weight_fx": pa.array([], pa.int64()),
                           "is_core": pa.array([], pa.bool_()), "stc": pa.array([], pa.int64())})
        n = ev.n_clusters
        cols: dict[str, Any] = {
            "stc": np.arange(n, dtype=np.int64), "rank": ev.rank,
            "cluster_id": pa.array(ev.cluster_id, pa.string()),
            "name": pa.array([ev_.names_by_id.get(i, "") for i in ev.cluster_id], pa.string()),
            "economy": pa.array([self.economy_by_id.get(i) for i in ev.cluster_id],
                                pa.string())}
        for m in sorted(ev.weights):
            cols[f"{m}_weight"] = ev.weights[m]
        for m in sorted(ev.shares_pct):
            cols[f"{m}_share_pct"] = ev.shares_pct[m]
        cols["score_pct"] = ev.score_pct
        return Side(points, pa.table(cols), dict(ev_.world_totals),
                    float(params.footprint_eps_km), self.top_n, self.label)

    def _row(self, ev: Evaluation, move: dict[str, Any], params: RankParams) -> dict[str, Any]:
        """One cluster of the new top N in the report's row format, with its move."""
        cid = move["cluster_id"]
        # Names are not computed again (naming costs more than the clustering): a cluster
        # with the run's weights, metric by metric, is the run's cluster and keeps its name
        # and economy; any other is named "~ <its predecessor's name>".
        run = self._run_weights.get(cid)
        same = run is not None and all(
            math.isclose(run.get(m) or 0.0, move.get(f"{m}_weight") or 0.0, rel_tol=1e-12,
                         abs_tol=1e-9) for m in self.metrics)
        return {
            "rank": int(move["rank"]), "cluster_id": cid,
            "name": move["name"] if same else (
                f"~ {move['prev_name']}" if move["prev_name"] else cid),
            "economy": move["economy"] if same else None,
            "same_as_run": same,
            "score_pct": _finite(move["score_pct"]),
            "weight": {m: _finite(move.get(f"{m}_weight")) for m in self.metrics},
            "share_pct": {m: _finite(move.get(f"{m}_share_pct")) for m in self.metrics},
            "per_million_pop": {}, "population": None,
            "prev_rank": move["prev_rank"], "move": move["move"], "status": move["status"],
            "prev_cluster_id": move["prev_cluster_id"],
        }

    def _attach_footprints(self, ev: Evaluation, clusters: list[dict[str, Any]],
                           params: RankParams) -> None:
        """Each shown cluster's footprint (union of discs of the footprint radius around
        its core points), its weighted centre and its core count."""
        ev_ = self.evaluator
        stc_of = {cid: k for k, cid in enumerate(ev.cluster_id)}
        wanted = np.array([stc_of[c["cluster_id"]] for c in clusters], dtype=np.int64)
        core = ev.labels.is_core & np.isin(ev.labels.stc, wanted)
        idx = np.flatnonzero(core)
        by = idx[np.argsort(ev.labels.stc[idx], kind="stable")]
        stcs = ev.labels.stc[by]
        starts = np.searchsorted(stcs, wanted, side="left")
        ends = np.searchsorted(stcs, wanted, side="right")
        eps_km = float(params.footprint_eps_km)
        keys, todo = [], {}
        for c, k, a, b in zip(clusters, wanted, starts, ends):
            sel = by[a:b]
            c["lat"], c["lon"] = _finite(ev.lat[k], 5), _finite(ev.lon[k], 5)
            c["n_core_points"] = int(b - a)
            # ``sel`` is in point order: its bytes name the core set.
            key = (c["cluster_id"], eps_km,
                   hashlib.blake2b(sel.tobytes(), digest_size=16).digest())
            keys.append(key)
            if key not in self._footprints:
                todo[key] = sel
        # shapely's unions release the GIL: the footprints are drawn on every core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            done = pool.map(lambda sel: self._footprint(sel, eps_km), todo.values())
            for key, encoded in zip(todo, done):
                if len(self._footprints) >= FOOTPRINT_CACHE:
                    self._footprints.pop(next(iter(self._footprints)))
                self._footprints[key] = encoded
        for c, key in zip(clusters, keys):
            c["footprint"] = self._footprints[key]

    def _footprint(self, sel: np.ndarray, eps_km: float) -> list[list[list[int]]]:
        """The drawn footprint of the core points ``sel``, encoded. Drawn, not published:
        the core points are snapped to a grid of eps/FOOTPRINT_SNAP (a disc moves by at
        most 0.71 cell), which cuts the discs to union by 5-15 times on a dense cluster."""
        cell_deg = eps_km / FOOTPRINT_SNAP / KM_PER_DEGREE
        ev_ = self.evaluator
        # One int64 per cell (row·2^32 + column, both offset to be positive): a 1-D unique
        # is several times faster than a unique of rows.
        row = np.round(ev_.lat[sel] / cell_deg).astype(np.int64) + (1 << 30)
        col = np.round(ev_.lon[sel] / cell_deg).astype(np.int64) + (1 << 30)
        cells = np.unique((row << 32) | col)
        lat = ((cells >> 32) - (1 << 30)) * cell_deg
        lon = ((cells & 0xFFFFFFFF) - (1 << 30)) * cell_deg
        geom = footprint_geometry(np.clip(lat, -90, 90), lon, eps_km=eps_km,
                                  n_vertices=FOOTPRINT_VERTICES)
        return encode_geometry(geom, COORD_SCALE)
