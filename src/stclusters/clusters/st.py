"""S&T clusters (methodology §4–5): per-source DBSCAN, merged across sources, footprints.

Reads table ``points`` and writes back, per point, its source cluster (``src_label``), whether
it is core, and the S&T cluster of the footprint it falls in (``stc``, -1 outside every
footprint). S&T cluster numbers are canonical: ordered by content (the heaviest core point),
never by input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stclusters.clusters.dbscan import DbscanResult, dbscan_sphere, link_clusters, nearest_core
from stclusters.store import fetch_arrow
from stclusters.params import RankParams


@dataclass(frozen=True)
class SourceClustering:
    """What DBSCAN found in one source."""

    source: str
    eps_km: float
    min_weight: float
    n_points: int
    n_core: int
    n_clusters: int


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _components(n_nodes: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Connected components (root per node) of a small graph: union-find."""
    parent = np.arange(n_nodes)
    for a, b in edges:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([_find(parent, i) for i in range(n_nodes)], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class StLabels:
    """S&T clusters of a set of weighted points, per point (arrays of shape ``(n,)``).

    Attributes
    ----------
    src_label : ndarray of int64
        Cluster of the point in its own source (-1 noise).
    is_core : ndarray of bool
        Core point of its source's DBSCAN.
    stc : ndarray of int64
        S&T cluster whose footprint holds the point (-1 none); numbered 0..k-1 by content
        (each cluster's heaviest core point).
    stc_dist_km : ndarray of float64
        Great-circle distance to the nearest core point of that S&T cluster, km (inf: none).
    n_stc : int
        Number of S&T clusters.
    """

    src_label: np.ndarray
    is_core: np.ndarray
    stc: np.ndarray
    stc_dist_km: np.ndarray
    n_stc: int


def st_clusters(source: np.ndarray, lat: np.ndarray, lon: np.ndarray, weight: np.ndarray,
                per_source: Sequence[DbscanResult], *, merge_eps_km: float) -> StLabels:
    """S&T clusters from each source's DBSCAN: merge across sources, then footprints.

    The array-level core of :func:`cluster_points`, also called by the sensitivity and
    calibration evaluators (:mod:`stclusters.analysis`), which cache the DBSCAN of each
    (source, eps_km, min_weight) and rebuild only this step per setting.

    Parameters
    ----------
    source : ndarray of int64, shape (n,)
        Index of each point's source into the (name-sorted) source list, 0..len(per_source)-1.
    lat, lon : ndarray of float64, shape (n,)
        Degrees.
    weight : ndarray of float64, shape (n,)
        Fractional weight of each point.
    per_source : sequence of DbscanResult
        ``per_source[k]`` is the DBSCAN of the points with ``source == k``, in their order.
    merge_eps_km : float
        Radius linking source clusters and of the footprint discs, km.

    Returns
    -------
    StLabels
    """
    n = len(lat)
    src_label = np.full(n, -1, dtype=np.int64)
    is_core = np.zeros(n, dtype=bool)
    n_clusters = []
    for k, res in enumerate(per_source):
        idx = np.flatnonzero(source == k)
        src_label[idx] = res.labels
        is_core[idx] = res.is_core
        n_clusters.append(int(res.n_clusters))
    node = _node_ids(source, src_label, n_clusters)
    stc_of_node = _merge_sources(len(per_source), source, lat, lon, weight, node, is_core,
                                 src_label=src_label, eps_km=merge_eps_km)
    core_idx = np.flatnonzero(is_core)
    core_stc = stc_of_node[node[core_idx]]
    # A core point's nearest core point is itself (distance 0; any other core point at the
    # same spot is within eps, hence in the same S&T cluster): only the others are queried.
    stc = np.full(n, -1, dtype=np.int64)
    dist_km = np.full(n, np.inf)
    stc[core_idx], dist_km[core_idx] = core_stc, 0.0
    rest = np.flatnonzero(~is_core)
    if len(core_idx) and len(rest):
        stc[rest], dist_km[rest] = nearest_core(lat[rest], lon[rest], lat[core_idx], lon[core_idx],
                                                core_stc, eps_km=merge_eps_km)
    n_stc = int(core_stc.max()) + 1 if len(core_stc) else 0
    return StLabels(src_label, is_core, stc, dist_km, n_stc)


def not_clustered(n_points: int, *, eps_km: float, min_weight: float) -> DbscanResult:
    """The clustering of a metric of weight 0: measured, not clustered. Its ``n_points``
    points are counted in the footprints the scored metrics draw (docs/metrics.md); none is
    core, so it neither merges nor names clusters."""
    return DbscanResult(np.full(n_points, -1, dtype=np.int64), np.zeros(n_points, bool), 0,
                        np.zeros(0, dtype=np.int64), eps_km, min_weight)


def cluster_points(con: duckdb.DuckDBPyConnection, params: RankParams,
                   world_totals: dict[str, float]) -> list[SourceClustering]:
    """Run DBSCAN per source and build S&T clusters and footprints into ``points``.

    Adds columns ``src_label`` (int, -1 noise), ``is_core`` (bool), ``stc`` (int, -1 none)
    and ``stc_dist_km`` (distance to the nearest core point of that S&T cluster, km).
    """
    pts = fetch_arrow(con, "SELECT * FROM points ORDER BY source, lat, lon")
    names, source = source_codes(pts.column("source"))
    lat = pts.column("lat").to_numpy()
    lon = pts.column("lon").to_numpy()
    weight = pts.column("weight").to_numpy()
    results = []
    report: list[SourceClustering] = []
    for k, name in enumerate(names):
        idx = np.flatnonzero(source == k)
        sp = params.source(name)
        min_weight = sp.resolved_min_weight(world_totals.get(name, 0.0))
        if params.is_scored(name):
            res = dbscan_sphere(lat[idx], lon[idx], weight[idx], eps_km=sp.eps_km,
                                min_weight=min_weight)
        else:
            res = not_clustered(len(idx), eps_km=sp.eps_km, min_weight=min_weight)
        results.append(res)
        report.append(SourceClustering(name, sp.eps_km, min_weight, len(idx),
                                       int(res.is_core.sum()), int(res.n_clusters)))
    lab = st_clusters(source, lat, lon, weight, results, merge_eps_km=params.footprint_eps_km)
    # The labels go back beside the rows they were computed from (same order): no join.
    for name, values in (("src_label", lab.src_label), ("is_core", lab.is_core),
                         ("stc", lab.stc), ("stc_dist_km", lab.stc_dist_km)):
        pts = pts.append_column(name, pa.array(values))
    con.register("_labelled", pts)
    con.execute("CREATE OR REPLACE TABLE points AS SELECT * FROM _labelled")
    con.unregister("_labelled")
    return report


def source_codes(column: pa.ChunkedArray | pa.Array) -> tuple[list[str], np.ndarray]:
    """Sorted source names and each row's index into them (int64).

    Sources as small integers, numbered in name order (so they sort as the names do):
    millions of Python strings cost seconds to make and to compare.
    """
    names = sorted(pc.unique(column).to_pylist())
    codes = pc.index_in(column, value_set=pa.array(names, pa.string())
                        ).to_numpy(zero_copy_only=False).astype(np.int64)
    return names, codes


def _node_ids(source, src_label, n_clusters: Sequence[int]) -> np.ndarray:
    """One graph node per (source, cluster): source offset + label; -1 for noise.

    ``source`` holds each point's source index; ``n_clusters[k]`` the clusters of source k.
    """
    node = np.full(len(source), -1, dtype=np.int64)
    offset = 0
    for k, count in enumerate(n_clusters):
        sel = (source == k) & (src_label >= 0)
        node[sel] = offset + src_label[sel]
        offset += count
    return node


def _merge_sources(n_sources: int, source, lat, lon, weight, node, is_core, *, src_label, eps_km):
    """Link source clusters whose core points come within ``eps_km``; number components.

    Returns the S&T number of every node. S&T numbers are 0..k-1 ordered by each
    component's heaviest core point (weight desc, then lat, lon, source), so they depend on
    content only. ``source`` holds each point's index (0..n_sources-1) into the sorted names.
    """
    n_nodes = int(node.max()) + 1 if len(node) else 0
    edges: list[tuple[int, int]] = []
    for a in range(n_sources):
        for b in range(a + 1, n_sources):
            ca = np.flatnonzero((source == a) & is_core)
            cb = np.flatnonzero((source == b) & is_core)
            if len(ca) == 0 or len(cb) == 0:
                continue
            pairs = link_clusters(lat[ca], lon[ca], src_label[ca], lat[cb], lon[cb], src_label[cb],
                                  eps_km=eps_km)
            first_a = node[ca].min() - src_label[ca].min()
            first_b = node[cb].min() - src_label[cb].min()
            edges += [(int(first_a + la), int(first_b + lb)) for la, lb in pairs]
    root = _components(n_nodes, edges)
    core_idx = np.flatnonzero(is_core)
    # Heaviest core point first: lexsort's last key is the primary one.
    order = np.lexsort((source[core_idx], lon[core_idx], lat[core_idx], -weight[core_idx]))
    comp = root[node[core_idx[order]]]
    _, first = np.unique(comp, return_index=True)
    ranked_roots = comp[np.sort(first)]
    stc_of_root = np.full(n_nodes, -1, dtype=np.int64)
    stc_of_root[ranked_roots] = np.arange(len(ranked_roots))
    return stc_of_root[root]
