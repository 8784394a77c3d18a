"""Score, rank, economies, names and S&T intensity of S&T clusters (methodology §6).

Input: table ``points`` with ``stc`` (from :mod:`stclusters.clusters.st`) and table
``contributions``. Output: tables ``clusters`` (every S&T cluster) and ``ranking`` (top N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stclusters import _naming as _names
from stclusters import _settlements
from stclusters._population import footprint_population
from stclusters._sql import literals
from stclusters.contributions import CLUSTERED_BY_COUNTRY, fx_to_weight
from stclusters.store import fetch_arrow, scalar
from stclusters.params import RankParams

def score(shares_pct: dict[str, np.ndarray], source_weights: dict[str, float]) -> np.ndarray:
    """``score = Σ_s weight_s · share_s`` over the sources in use (methodology §6).

    Parameters
    ----------
    shares_pct : dict of str to ndarray
        Per source, each cluster's share of the world total, %, shape (n_clusters,).
    source_weights : dict of str to float
        Weight of each source (1 when missing).

    Returns
    -------
    ndarray
        Score in %, shape (n_clusters,).
    """
    total = None
    for s, share in shares_pct.items():
        term = source_weights.get(s, 1.0) * np.asarray(share, dtype=np.float64)
        total = term if total is None else total + term
    return total if total is not None else np.zeros(0)


def rank_order(score_pct: np.ndarray, patent_share_pct: np.ndarray, names: list[str]) -> np.ndarray:
    """Indices in rank order: score desc, then patent share desc, then name (methodology §6).

    Shapes: three arrays of (n_clusters,) → (n_clusters,) int indices.
    """
    return np.lexsort((np.asarray(names, dtype=object), -np.asarray(patent_share_pct),
                       -np.asarray(score_pct)))


def _centroids(cores: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core-point count and weighted centre (degrees) per S&T cluster.

    The mean is taken of 3-D unit vectors (right across the antimeridian) with
    ``np.bincount`` over rows in a fixed order: a float sum in SQL would change its last
    bits with the thread schedule, and outputs must be byte-identical.
    """
    stc = cores.column("stc").to_numpy()
    lat = np.radians(cores.column("lat").to_numpy())
    lon = np.radians(cores.column("lon").to_numpy())
    w = cores.column("weight").to_numpy()
    k = int(stc.max()) + 1 if len(stc) else 0
    x = np.bincount(stc, weights=w * np.cos(lat) * np.cos(lon), minlength=k)
    y = np.bincount(stc, weights=w * np.cos(lat) * np.sin(lon), minlength=k)
    z = np.bincount(stc, weights=w * np.sin(lat), minlength=k)
    c_lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    c_lon = np.degrees(np.arctan2(y, x))
    return np.bincount(stc, minlength=k), np.round(c_lat, 6), np.round(c_lon, 6)


def economy_labels(con: duckdb.DuckDBPyConnection, *, min_share_pct: float,
                   sources: Sequence[str] | None = None) -> dict[int, str]:
    """ISO codes of each cluster's contributions by weight, joined with '/' (``CN/HK``).

    Parameters
    ----------
    min_share_pct : float
        A code below this share (%) of the cluster's weight is left out, except the
        heaviest known code, which is always kept. Unknown countries count in the
        denominator but never appear (``??`` when no code is known at all).
    sources : sequence of str, optional
        Metrics whose weight labels the economies (the scored ones: a metric of weight 0
        labels nothing); all when not given.

    Returns
    -------
    dict of int to str
        S&T cluster number → label.
    """
    keep = "" if sources is None else f"WHERE source IN ({literals(sources) or 'NULL'})"
    rows = con.execute(f"""
        WITH w AS (
          SELECT stc, country, sum(weight_fx) AS fx FROM ({CLUSTERED_BY_COUNTRY}) {keep}
          GROUP BY 1, 2),
        t AS (SELECT stc, sum(fx) AS total FROM w GROUP BY stc)
        SELECT w.stc, w.country, {fx_to_weight('w.fx')} / {fx_to_weight('t.total')} * 100 AS pct
        FROM w JOIN t USING (stc)
        ORDER BY w.stc, w.fx DESC, w.country""").fetchall()
    labels: dict[int, list[str]] = {}
    for stc, country, pct in rows:
        codes = labels.setdefault(int(stc), [])
        # The heaviest known economy always; others only above the threshold.
        if country != "??" and (not codes or pct >= min_share_pct):
            codes.append(country)
    return {k: "/".join(v) if v else "??" for k, v in labels.items()}


def _source_weights(con: duckdb.DuckDBPyConnection, sources: list[str], n_stc: int
                    ) -> dict[str, np.ndarray]:
    """Fractional count per source and S&T cluster (exact fixed-point sums), shape (n_stc,)."""
    w = fetch_arrow(con, f"""
        SELECT stc, source, {fx_to_weight('sum(weight_fx)')} AS weight
        FROM points WHERE stc >= 0 GROUP BY stc, source ORDER BY stc, source""")
    weights = {s: np.zeros(n_stc) for s in sources}
    for stc, s, val in zip(w.column("stc").to_pylist(), w.column("source").to_pylist(),
                           w.column("weight").to_pylist()):
        weights[s][stc] = val
    return weights


def _cluster_ids(cores: pa.Table) -> list[str]:
    """``stc<lat><lon>`` of each cluster's heaviest core point (weight desc, then lat, lon,
    source): content, not input order. ``cores``: the core points' ``stc, source, lat, lon,
    weight``, any order (a window over ``points`` in SQL took seconds at 10M)."""
    if cores.num_rows == 0:
        return []
    names = sorted(pc.unique(cores.column("source")).to_pylist())
    source = pc.index_in(cores.column("source"), value_set=pa.array(names, pa.string())
                         ).to_numpy(zero_copy_only=False)
    stc, lat, lon = (cores.column(c).to_numpy() for c in ("stc", "lat", "lon"))
    # lexsort's last key is the primary one: per cluster, the heaviest first.
    order = np.lexsort((source, lon, lat, -cores.column("weight").to_numpy(), stc))
    first = order[np.flatnonzero(np.diff(stc[order], prepend=-1))]
    return [f"stc{la:+.4f}{lo:+.4f}" for la, lo in zip(lat[first].tolist(), lon[first].tolist())]


def _per_million(weight: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Weight per million inhabitants; NaN where the footprint holds no settlement."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(population > 0, weight / population * 1e6, np.nan)


def build_ranking(con: duckdb.DuckDBPyConnection, params: RankParams, world_totals: dict[str, float],
                  *, places: pa.Table | None = None) -> pa.Table:
    """Build tables ``clusters`` and ``ranking``; return the ranking (top N) as Arrow.

    Parameters
    ----------
    world_totals : dict
        Sum of used weight per source (the denominators of the shares).
    places : pyarrow.Table, optional
        GeoNames places (geoname_id, name, lat, lon, country, admin1, population), which
        with the UN agglomerations name the clusters and count their inhabitants; needed only
        when some cluster was found.

    Returns
    -------
    pyarrow.Table
        One row per published cluster in rank order: ``rank``, ``cluster_id``, ``name``,
        ``economy``, ``<source>_weight`` (fractional count), ``<source>_share_pct`` (% of the
        world total), ``score_pct``, ``n_core_points``, ``lat``/``lon`` (weighted centre of
        the core points, degrees), ``population`` (inhabitants of the footprint,
        each counted once: UN agglomerations and GeoNames places, see
        :mod:`stclusters._population`), ``population_basis`` and ``<source>_per_million_pop``.
    """
    sources = ranked_sources(params, world_totals)
    world_totals = {s: world_totals.get(s, 0.0) for s in sources}
    n_stc = int(scalar(con, "SELECT coalesce(max(stc), -1) + 1 FROM points"))
    weights = _source_weights(con, sources, n_stc)
    shares = {s: weights[s] / world_totals[s] * 100 if world_totals[s] > 0 else weights[s] * 0
              for s in sources}
    sc = score(shares, {s: params.weight_of(s) for s in sources})
    cores = fetch_arrow(con, """
        SELECT stc, source, lat, lon, weight FROM points WHERE is_core AND stc >= 0
        ORDER BY stc, source, lat, lon""")
    n_core, core_lat, core_lon = _centroids(cores)
    economies = economy_labels(con, min_share_pct=params.economy_min_share_pct,
                               sources=[s for s in sources if params.is_scored(s)])
    naming, population, basis = _names_and_population(con, params, places, world_totals, n_stc)
    order = rank_order(sc, shares.get("patent", np.zeros(n_stc)), naming)
    rank = np.empty(n_stc, dtype=np.int64)
    rank[order] = np.arange(1, n_stc + 1)
    cols: dict[str, object] = {
        "rank": rank, "cluster_id": _cluster_ids(cores), "name": naming,
        "economy": [economies.get(i, "??") for i in range(n_stc)],
        **{f"{s}_weight": weights[s] for s in sources},
        **{f"{s}_share_pct": shares[s] for s in sources},
        "score_pct": sc, "n_core_points": n_core, "lat": core_lat, "lon": core_lon,
        "population": np.round(population).astype(np.int64), "population_basis": basis,
        **{f"{s}_per_million_pop": _per_million(weights[s], population) for s in sources},
        "stc": np.arange(n_stc),
    }
    clusters = pa.table(cols).take(pa.array(order, type=pa.int64()))
    con.register("_clusters", clusters)
    con.execute("CREATE OR REPLACE TABLE clusters AS SELECT * FROM _clusters ORDER BY rank")
    con.execute("CREATE OR REPLACE TABLE ranking AS SELECT * EXCLUDE (stc) FROM _clusters "
                "WHERE rank <= ? ORDER BY rank", [int(params.top_n)])
    con.unregister("_clusters")
    # ``stc`` is the workspace's join key to ``points``; users see ``cluster_id``.
    return clusters.drop_columns(["stc"]).slice(0, min(params.top_n, clusters.num_rows))


def ranked_sources(params: RankParams, world_totals: Mapping[str, float]) -> list[str]:
    """The metrics a ranking shows, in name order: every metric with used weight and every
    configured one, even without data (a stable output layout), less the excluded ones
    (their records are filtered, so they have no used weight).

    Parameters
    ----------
    world_totals : mapping of str to float
        Sum of used weight per metric.
    """
    return sorted((set(world_totals) | set(params.sources)) - set(params.excluded_sources))


def _names_and_population(con: duckdb.DuckDBPyConnection, params: RankParams,
                          places: pa.Table | None, world_totals: dict[str, float], n_stc: int
                          ) -> tuple[list[str], np.ndarray, list[str]]:
    """Cluster names, footprint populations and their basis (see :mod:`stclusters._population`)."""
    if n_stc == 0 or places is None or places.num_rows == 0:
        return [f"Cluster {i}" for i in range(n_stc)], np.zeros(n_stc), ["none"] * n_stc
    year = params.resolved_population_year
    naming = _names.cluster_names(
        con, _settlements.naming_settlements(places, year=year,
                                             min_population=params.name_min_population),
        _settlements.geonames_places(places), world_totals, max_places=params.name_max_places,
        min_share_pct=params.name_min_share_pct, n_clusters=n_stc,
        source_weights={s: params.weight_of(s) for s in world_totals})
    population, basis = footprint_population(
        con, _settlements.counting_settlements(places, year=year),
        eps_km=params.footprint_eps_km, n_clusters=n_stc)
    return naming, population, basis
