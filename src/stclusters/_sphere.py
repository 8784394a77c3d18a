"""Great-circle helpers for the look-ups around clusters (names, population).

The clustering kernel has its own exact "within eps" test (:mod:`stclusters.clusters.dbscan`);
these helpers serve the KD-tree look-ups on 3-D unit vectors, where a chord length stands for
a great-circle distance on the sphere of radius :data:`EARTH_RADIUS_KM`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from stclusters.params import EARTH_RADIUS_KM


def unit_xyz(lat_deg, lon_deg) -> np.ndarray:
    """3-D unit vectors of points given in degrees, shape (n,) → (n, 3)."""
    la, lo = np.radians(np.asarray(lat_deg, dtype=np.float64)), np.radians(
        np.asarray(lon_deg, dtype=np.float64))
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def chord_of_km(km) -> np.ndarray | float:
    """Chord length (unit sphere) of a great-circle distance in km."""
    return 2.0 * np.sin(np.asarray(km, dtype=np.float64) / (2.0 * EARTH_RADIUS_KM))


def km_of_chord(chord) -> np.ndarray | float:
    """Great-circle distance in km of a chord length on the unit sphere."""
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2, 0, 1))


def tree(lat_deg, lon_deg) -> cKDTree:
    """A KD-tree over the unit vectors of the points (degrees)."""
    return cKDTree(unit_xyz(lat_deg, lon_deg)) if len(lat_deg) else cKDTree(np.zeros((0, 3)))


def within_km(t: cKDTree, lat_deg, lon_deg, radius_km) -> list[list[int]]:
    """For each query point, the rows of ``t`` within ``radius_km`` (scalar or shape (n,)).

    Returns
    -------
    list of list of int
        Row indices into the points ``t`` was built on, in ascending order.
    """
    if len(lat_deg) == 0 or t.n == 0:
        return [[] for _ in range(len(lat_deg))]
    r = np.broadcast_to(chord_of_km(radius_km), (len(lat_deg),))
    return [sorted(ix) for ix in t.query_ball_point(unit_xyz(lat_deg, lon_deg), r)]
