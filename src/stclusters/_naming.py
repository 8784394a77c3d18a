"""Names and population of S&T clusters from GeoNames places (CC BY 4.0, geonames.org)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from scipy.spatial import cKDTree

from stclusters.clusters.dbscan import nearest_core
from stclusters.store import fetch_arrow
from stclusters.params import EARTH_RADIUS_KM

#: A point is named after the place with the largest pull ``population / (d + d0)²``
#: among places within this radius: a big city next door beats the small town underfoot,
#: but not a bigger city an hour away.
_NAME_RADIUS_KM = 60.0
_NAME_D0_KM = 5.0
_NAME_CANDIDATES = 12


def _xyz(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def _chord(km: float) -> float:
    return 2.0 * np.sin(km / (2.0 * EARTH_RADIUS_KM))


def best_place(lat: np.ndarray, lon: np.ndarray, places: pa.Table, *, min_population: int) -> np.ndarray:
    """Row index into ``places`` of the place naming each point (-1 if none within 60 km).

    Shapes: ``lat``, ``lon`` (n,) degrees → (n,) int64.
    """
    out = np.full(len(lat), -1, dtype=np.int64)
    if len(lat) == 0 or places.num_rows == 0:
        return out
    pop = places.column("population").to_numpy()
    plat, plon = places.column("lat").to_numpy(), places.column("lon").to_numpy()
    q = _xyz(lat, lon)
    for threshold in (min_population, 0):  # big places first, any place as a fallback
        cand = np.flatnonzero(pop >= threshold)
        todo = np.flatnonzero(out < 0)
        if len(cand) == 0 or len(todo) == 0:
            continue
        tree = cKDTree(_xyz(plat[cand], plon[cand]))
        k = min(_NAME_CANDIDATES, len(cand))
        dist, idx = tree.query(q[todo], k=k, distance_upper_bound=_chord(_NAME_RADIUS_KM))
        dist, idx = dist.reshape(len(todo), k), idx.reshape(len(todo), k)
        valid = np.isfinite(dist)
        safe = np.where(valid, idx, 0)
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.where(valid, dist, 0) / 2, 0, 1))
        pull = np.where(valid, pop[cand][safe] / (km + _NAME_D0_KM) ** 2, -1.0)
        # argmax takes the first maximum in the tree's (distance, index) order: deterministic.
        best = np.argmax(pull, axis=1)
        has = valid.any(axis=1)
        out[todo[has]] = cand[safe[has, best[has]]]
    return out


def _pool(stc: np.ndarray, lat: np.ndarray, lon: np.ndarray, share: np.ndarray,
          *, step_deg: float = 0.01) -> tuple[np.ndarray, ...]:
    """Sum ``share`` per (cluster, grid cell); each cell at its cells' share-weighted centre.

    Shapes: (n,) arrays → (m,) arrays, m ≤ n, ordered by (cluster, cell).
    """
    n_i, n_j = int(round(180 / step_deg)) + 1, int(round(360 / step_deg)) + 1
    i = np.round((lat + 90) / step_deg).astype(np.int64)
    j = np.round((lon + 180) / step_deg).astype(np.int64)
    # One int64 key per (cluster, cell): a 1-D unique is ~10x faster than a 3-row one.
    _, first, inv = np.unique((stc * n_i + i) * n_j + j, return_index=True, return_inverse=True)
    w = np.bincount(inv, weights=share)
    safe = np.where(w > 0, w, 1.0)
    lat_c = np.where(w > 0, np.bincount(inv, weights=share * lat) / safe, lat[first])
    lon_c = np.where(w > 0, np.bincount(inv, weights=share * lon) / safe, lon[first])
    return stc[first], lat_c, lon_c, w


def _format_name(place_rows: list[int], names: list, countries: list, admin1: list) -> str:
    us = [countries[i] == "US" for i in place_rows]
    if not any(us):
        return "–".join(names[i] for i in place_rows)
    states = [admin1[i] for i in place_rows]
    if all(us) and len(set(states)) == 1:  # 'San Jose–San Francisco, CA'
        return "–".join(names[i] for i in place_rows) + f", {states[0]}"
    return "–".join(f"{names[i]}, {admin1[i]}" if countries[i] == "US" else names[i]
                    for i in place_rows)


def cluster_names(con: duckdb.DuckDBPyConnection, places: pa.Table, world_totals: dict[str, float],
                  *, max_places: int, min_share_pct: float, min_population: int,
                  n_clusters: int) -> list[str]:
    """Name every S&T cluster after the 1–3 places carrying most of its weight.

    Each source's weight counts by its share of the world total, so patents and
    publications pull equally, as in the score.
    """
    if n_clusters == 0 or places is None or places.num_rows == 0:
        return [f"Cluster {i}" for i in range(n_clusters)]
    pts = fetch_arrow(con, "SELECT source, lat, lon, weight, stc FROM points WHERE stc >= 0 "
                           "ORDER BY source, lat, lon")
    src = pts.column("source").to_numpy(zero_copy_only=False)
    denom = np.ones(len(src))
    for s, total in world_totals.items():
        denom[src == s] = total or 1.0
    # Naming needs no metre precision: points are pooled per cluster on a 0.01° grid
    # (~1 km, against a 60 km pull radius) before the place look-up, 10x fewer queries.
    stc, lat, lon, share = _pool(pts.column("stc").to_numpy(), pts.column("lat").to_numpy(),
                                 pts.column("lon").to_numpy(),
                                 pts.column("weight").to_numpy() / denom)
    out = _names_by_weight(stc, share, best_place(lat, lon, places, min_population=min_population),
                           places, n_clusters=n_clusters, max_places=max_places,
                           min_share_pct=min_share_pct)
    # Two clusters near one big city would both be called after it: all but the heaviest
    # (largest share of the world, then lowest number) are named after their own places.
    heaviest_first = np.lexsort((np.arange(n_clusters),
                                 -np.bincount(stc, weights=share, minlength=n_clusters)))
    dup = _later_duplicates(out, heaviest_first)
    if dup.any():
        local = _names_by_weight(stc, share, best_place(lat, lon, places, min_population=0),
                                 places, n_clusters=n_clusters, max_places=max_places,
                                 min_share_pct=min_share_pct)
        out = [local[c] if dup[c] else out[c] for c in range(n_clusters)]
        # Still equal: number them, in cluster order.
        again = _later_duplicates(out, heaviest_first)
        taken: dict[str, int] = {}
        for c in heaviest_first:
            if again[c]:
                taken[out[c]] = taken.get(out[c], 1) + 1
                out[c] = f"{out[c]} ({taken[out[c]]})"
    return out


def _later_duplicates(names: list[str], order: np.ndarray) -> np.ndarray:
    """True for every name that a cluster earlier in ``order`` already carries."""
    seen: set[str] = set()
    dup = np.zeros(len(names), dtype=bool)
    for c in order:
        dup[c] = names[c] in seen
        seen.add(names[c])
    return dup


def _names_by_weight(stc, share, place, places, *, n_clusters, max_places, min_share_pct):
    """Per cluster, the 1–``max_places`` places with most weight, formatted."""
    named = place >= 0
    # Weight per (cluster, place), then per cluster: heaviest first, ties → smaller place row.
    n_places = places.num_rows
    uniq, inv = np.unique(stc[named] * n_places + place[named], return_inverse=True)
    sums = np.bincount(inv, weights=share[named])
    u_stc, u_place = uniq // n_places, uniq % n_places
    order = np.lexsort((u_place, -sums, u_stc))
    totals = np.bincount(stc, weights=share, minlength=n_clusters)
    starts = np.searchsorted(u_stc[order], np.arange(n_clusters + 1))
    names_col = places.column("name").to_pylist()
    countries = places.column("country").to_pylist()
    admin1 = places.column("admin1").to_pylist()
    out = [f"Cluster {i}" for i in range(n_clusters)]
    for c in range(n_clusters):
        group = order[starts[c]:starts[c + 1]][:max_places]
        if len(group) == 0:
            continue
        chosen = [int(u_place[group[0]])] + [
            int(u_place[j]) for j in group[1:]
            if totals[c] > 0 and sums[j] / totals[c] * 100 >= min_share_pct]
        out[c] = _format_name(chosen, names_col, countries, admin1)
    return out


def footprint_population(con: duckdb.DuckDBPyConnection, places: pa.Table, *, eps_km: float,
                         n_clusters: int) -> np.ndarray:
    """Population (inhabitants) of GeoNames places inside each footprint, shape (n_clusters,)."""
    out = np.zeros(n_clusters)
    if n_clusters == 0 or places is None or places.num_rows == 0:
        return out
    cores = fetch_arrow(con, "SELECT lat, lon, stc FROM points WHERE is_core AND stc >= 0 ORDER BY lat, lon, stc")
    label, _ = nearest_core(places.column("lat").to_numpy(), places.column("lon").to_numpy(),
                            cores.column("lat").to_numpy(), cores.column("lon").to_numpy(),
                            cores.column("stc").to_numpy(), eps_km=eps_km)
    inside = label >= 0
    out += np.bincount(label[inside], weights=places.column("population").to_numpy()[inside],
                       minlength=n_clusters)[:n_clusters]
    return out
