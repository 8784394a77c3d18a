"""Benchmark data: world-realistic weighted points and contribution files (SYNTHETIC).

Points come from the seeded synthetic world of :mod:`stclusters.synthetic` (patent source, the
one with the fewest repeated coordinates): contributions at ``point`` precision, fractional
weight ``1 / n_located(doc)``, summed per unique ``(lat, lon)`` like the pipeline's ``points``
table (methodology §2–3). To reach exactly ``n`` points, enough contributions are drawn and a
seeded random subset of ``n`` unique points is kept. Files are cached in ``data_dir``.
"""

from __future__ import annotations

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


def world_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly ``n`` world-realistic weighted points ``(lat_deg, lon_deg, weight)``.

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


def points_file(data_dir: Path, n: int, seed: int = 0) -> Path:
    """Path of a cached ``.npz`` of :func:`world_points` (created if missing)."""
    path = Path(data_dir) / f"points_{n}_s{seed}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lat, lon, w = world_points(n, seed)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, lat=lat, lon=lon, w=w)
        tmp.replace(path)
    return path


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
