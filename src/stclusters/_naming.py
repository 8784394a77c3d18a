"""Names of S&T clusters (methodology §6): the settlements that carry most of their weight.

Settlements are UN urban agglomerations and GeoNames places that are no section of another
(:mod:`stclusters._settlements`); GeoNames (geonames.org) CC BY 4.0, UN WUP 2018 CC BY 3.0 IGO.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stclusters import _sphere
from stclusters._settlements import Settlements
from stclusters._sql import literals
from stclusters.contributions import CLUSTERED_BY_COUNTRY, fx_to_weight
from stclusters.store import fetch_arrow

#: A point is named after the settlement with the largest pull ``population / (d + d0)²``
#: among the settlements whose reach covers it: a big city next door beats the small town
#: underfoot, but not a bigger city an hour away.
_NAME_D0_KM = 5.0
_NAME_CANDIDATES = 16


def best_place(lat: np.ndarray, lon: np.ndarray, country: list[str] | np.ndarray,
               places: Settlements) -> np.ndarray:
    """Row index into ``places`` of the settlement naming each point (-1 if none within 60 km).

    A point is named after a settlement of its own economy when one is in reach (a Macao
    point after Macao, not Zhuhai next door); points of unknown economy (``??``) take any.

    Parameters
    ----------
    lat, lon : ndarray, shape (n,)
        Degrees.
    country : sequence of str, shape (n,)
        ISO 3166-1 alpha-2 code of each point's weight, ``??`` unknown.
    places : Settlements

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    out = np.full(len(lat), -1, dtype=np.int64)
    if len(lat) == 0 or len(places) == 0:
        return out
    k = min(_NAME_CANDIDATES, len(places))
    dist, idx = _sphere.tree(places.lat, places.lon).query(
        _sphere.unit_xyz(lat, lon), k=k,
        distance_upper_bound=_sphere.chord_of_km(float(places.reach_km.max())))
    dist, idx = dist.reshape(len(lat), k), idx.reshape(len(lat), k)
    safe = np.where(np.isfinite(dist), idx, 0)
    km = _sphere.km_of_chord(np.where(np.isfinite(dist), dist, 0))
    # A settlement names only the points within its own reach: where the weight is.
    valid = np.isfinite(dist) & (km <= places.reach_km[safe])
    # Economies as small integers: comparing (n, k) object arrays of strings is slow.
    _, code = np.unique(np.concatenate([np.asarray(places.country, dtype=str),
                                        np.asarray(country, dtype=str)]), return_inverse=True)
    place_code, point_code = code[:len(places)], code[len(places):]
    same = valid & (place_code[safe] == point_code[:, None])
    # Own economy first, where it has a settlement in reach; any economy otherwise.
    allowed = np.where(same.any(axis=1)[:, None], same, valid)
    pull = np.where(allowed, places.population[safe] / (km + _NAME_D0_KM) ** 2, -1.0)
    # argmax takes the first maximum in the tree's (distance, index) order: deterministic.
    best = np.argmax(pull, axis=1)
    has = allowed.any(axis=1)
    out[has] = safe[has, best[has]]
    return out


def _pool(stc: np.ndarray, lat: np.ndarray, lon: np.ndarray, share: np.ndarray, key: np.ndarray,
          *, step_deg: float = 0.01) -> tuple[np.ndarray, ...]:
    """Sum ``share`` per (cluster, grid cell, ``key``); each cell at its share-weighted centre.

    Shapes: (n,) arrays (``key`` small non-negative ints, here the economy) → (m,) arrays,
    m ≤ n, ordered by (cluster, cell, key).
    """
    n_i, n_j = int(round(180 / step_deg)) + 1, int(round(360 / step_deg)) + 1
    n_k = int(key.max()) + 1 if len(key) else 1
    i = np.round((lat + 90) / step_deg).astype(np.int64)
    j = np.round((lon + 180) / step_deg).astype(np.int64)
    # One int64 key per (cluster, cell, economy): a 1-D unique is ~10x faster than rows.
    _, first, inv = np.unique(((stc * n_i + i) * n_j + j) * n_k + key, return_index=True,
                              return_inverse=True)
    w = np.bincount(inv, weights=share)
    safe = np.where(w > 0, w, 1.0)
    lat_c = np.where(w > 0, np.bincount(inv, weights=share * lat) / safe, lat[first])
    lon_c = np.where(w > 0, np.bincount(inv, weights=share * lon) / safe, lon[first])
    return stc[first], lat_c, lon_c, w, key[first]


def _format_name(place_rows: list[int], names: list, countries: list, admin1: list) -> str:
    us = [countries[i] == "US" for i in place_rows]
    if not any(us):
        return "–".join(names[i] for i in place_rows)
    states = [admin1[i] for i in place_rows]
    if all(us) and len(set(states)) == 1:  # 'San Jose–San Francisco, CA'
        return "–".join(names[i] for i in place_rows) + f", {states[0]}"
    return "–".join(f"{names[i]}, {admin1[i]}" if countries[i] == "US" else names[i]
                    for i in place_rows)


def _weighted_cells(con: duckdb.DuckDBPyConnection, world_totals: dict[str, float],
                    source_weights: Mapping[str, float] | None = None):
    """Clustered weight pooled per (cluster, 0.01° cell, economy), as shares of the world.

    Each source's weight counts by its share of the world total times its weight in the
    score (1 when not given), so the metrics pull on a name as they count in the score; a
    metric of weight 0 names nothing. Returns (stc, lat, lon, share, country) arrays,
    shape (m,).
    """
    factor = {s: (1.0 if source_weights is None else float(source_weights.get(s, 1.0)))
              for s in world_totals}
    scored = [s for s, f in factor.items() if f > 0]
    pts = fetch_arrow(con, f"""
        SELECT source, lat, lon, country, stc, {fx_to_weight('weight_fx')} AS weight
        FROM ({CLUSTERED_BY_COUNTRY}) WHERE source IN ({literals(scored) or 'NULL'})""")
    # Sources and economies numbered in sorted order (as np.unique would), in Arrow:
    # millions of Python strings cost seconds at 10M contributions.
    sources = sorted(pc.unique(pts.column("source")).to_pylist())
    src = _codes(pts.column("source"), sources)
    codes = np.array(sorted(pc.unique(pts.column("country")).to_pylist()), dtype=str)
    key = _codes(pts.column("country"), codes.tolist())
    lat, lon = pts.column("lat").to_numpy(), pts.column("lon").to_numpy()
    # Rows in (source, lat, lon, country) order, so that the float sums below do not depend
    # on the order DuckDB returned them in (a sort here, not in SQL: numbers, not strings).
    order = np.lexsort((key, lon, lat, src))
    denom = np.array([world_totals.get(s) or 1.0 for s in sources], dtype=float)[src[order]]
    pull = np.array([factor.get(s, 1.0) for s in sources], dtype=float)[src[order]]
    # Naming needs no metre precision: points are pooled per cluster on a 0.01° grid
    # (~1 km, against a 60 km pull radius) before the look-up, 10x fewer queries.
    stc, lat, lon, share, k = _pool(pts.column("stc").to_numpy()[order], lat[order], lon[order],
                                    pts.column("weight").to_numpy()[order] / denom * pull,
                                    key[order])
    return stc, lat, lon, share, codes[k]


def _codes(values: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """Index of each value in ``names`` (int64, shape (n,)); every value must be listed."""
    return pc.index_in(values, value_set=pa.array(names, pa.string())
                       ).to_numpy(zero_copy_only=False).astype(np.int64)


def cluster_names(con: duckdb.DuckDBPyConnection, settlements: Settlements, local: Settlements,
                  world_totals: dict[str, float], *, max_places: int, min_share_pct: float,
                  n_clusters: int, source_weights: Mapping[str, float] | None = None
                  ) -> list[str]:
    """Name every S&T cluster after the 1–``max_places`` settlements carrying most of its weight.

    Parameters
    ----------
    settlements : Settlements
        Places that name clusters (:func:`stclusters._settlements.naming_settlements`).
    local : Settlements
        Every GeoNames place: names a cluster that would otherwise carry the name of a
        heavier one (two clusters in one agglomeration).
    world_totals : dict of str to float
        Sum of used weight per source.
    max_places, min_share_pct : int, float
        At most this many names; the second and later need this share (%) of the weight.
    source_weights : mapping of str to float, optional
        Weight of each metric in the score (1 when not given): its pull on the names.

    Returns
    -------
    list of str, length n_clusters
    """
    if n_clusters == 0 or len(settlements) == 0:
        return [f"Cluster {i}" for i in range(n_clusters)]
    stc, lat, lon, share, country = _weighted_cells(con, world_totals, source_weights)

    def names_from(places: Settlements, clusters=None) -> list[str]:
        """Names from ``places``; only for ``clusters`` (others 'Cluster i') when given."""
        cells = slice(None) if clusters is None else np.isin(stc, clusters)
        return _names_by_weight(stc[cells], share[cells],
                                best_place(lat[cells], lon[cells], country[cells], places), places,
                                n_clusters=n_clusters, max_places=max_places,
                                min_share_pct=min_share_pct)

    out = names_from(settlements)
    # Far from every settlement (a research station, a rural campus): the local place.
    unnamed = [c for c in range(n_clusters) if out[c] == f"Cluster {c}"]
    if unnamed:
        own = names_from(local, unnamed)
        for c in unnamed:
            out[c] = own[c]
    # Two clusters near one big city would both be called after it: all but the heaviest
    # (largest share of the world, then lowest number) are named after their own places.
    heaviest_first = np.lexsort((np.arange(n_clusters),
                                 -np.bincount(stc, weights=share, minlength=n_clusters)))
    dup = _later_duplicates(out, heaviest_first)
    if dup.any():
        own = names_from(local, np.flatnonzero(dup))
        out = [own[c] if dup[c] else out[c] for c in range(n_clusters)]
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


def _names_by_weight(stc, share, place, places: Settlements, *, n_clusters, max_places,
                     min_share_pct) -> list[str]:
    """Per cluster, the 1–``max_places`` names with most weight, formatted.

    Settlements that read alike (two UN agglomerations both shown as 'Taipei') pool their
    weight under the one name.
    """
    named = place >= 0
    used = np.unique(place[named])  # label only the settlements in use: 'local' has 235k
    keys = np.array([f"{places.name[i]}\x1f{places.country[i]}\x1f{places.admin1[i]}" for i in used])
    _, first, label_of_used = np.unique(keys, return_index=True, return_inverse=True)
    first_row = used[first]
    lab = label_of_used[np.searchsorted(used, place[named])]
    # Weight per (cluster, name), then per cluster: heaviest first, ties → smaller label.
    n_lab = len(first_row)
    uniq, inv = np.unique(stc[named] * n_lab + lab, return_inverse=True)
    sums = np.bincount(inv, weights=share[named])
    u_stc, u_lab = uniq // n_lab, uniq % n_lab
    order = np.lexsort((u_lab, -sums, u_stc))
    totals = np.bincount(stc, weights=share, minlength=n_clusters)
    starts = np.searchsorted(u_stc[order], np.arange(n_clusters + 1))
    out = [f"Cluster {i}" for i in range(n_clusters)]
    for c in range(n_clusters):
        group = order[starts[c]:starts[c + 1]][:max_places]
        if len(group) == 0:
            continue
        chosen = [int(first_row[u_lab[group[0]]])] + [
            int(first_row[u_lab[j]]) for j in group[1:]
            if totals[c] > 0 and sums[j] / totals[c] * 100 >= min_share_pct]
        out[c] = _format_name(chosen, places.name, places.country, places.admin1)
    return out
