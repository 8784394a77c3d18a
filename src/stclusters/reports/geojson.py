"""Cluster footprints as GeoJSON (RFC 7946), ready for QGIS and web maps.

A cluster's footprint (methodology §5) is the union of the ``eps_km`` discs, great-circle on a
sphere of radius :data:`~stclusters.params.EARTH_RADIUS_KM`, around its core points. This
module draws it as a GeoJSON ``Polygon`` or ``MultiPolygon``:

* every disc is a geodesic circle: ``n_vertices`` points at great-circle distance ``eps_km``
  from the centre (destination-point formula), joined by straight edges in lon/lat (the way a
  GeoJSON reader draws them);
* discs are unioned with shapely in a *lon-unwrapped* frame (longitudes continuous around the
  cluster, so a cluster on the antimeridian is one shape there), then cut at ±180° and the
  pieces shifted back into [-180, 180]: a footprint across the antimeridian becomes a
  ``MultiPolygon`` with parts on each side, never a ring spanning the globe;
* a disc that contains a pole becomes a cap: its rim as a function of longitude from -180 to
  180, closed along latitude ±90 (the usual lon/lat picture of a polar cap);
* output is RFC 7946: [lon, lat] positions, closed rings, exteriors counter-clockwise, holes
  clockwise, valid (OGC) geometry, coordinates snapped to a 1e-6° grid (~0.11 m) and written
  with 6 decimals.

Approximations (stated, bounded)
--------------------------------
* **Polygon for circle.** A regular ``n``-gon inscribed in a circle of radius ``eps`` misses
  at most the sagitta ``eps·(1 - cos(π/n))`` of it (on the sphere, with angular radius
  ``δ = eps/R``: ``R·(δ - atan(tan δ·cos(π/n))) ≈ eps·(1 - cos(π/n))``). With the default
  ``n = 64`` that is 0.12 % of ``eps`` (16 m for 13 km) and 0.16 % of the disc's area:
  footprints *under*-approximate the true union by at most that much, never over.
  Straight lon/lat edges add a deviation of order ``eps·(eps/R)·tan|lat|`` more, negligible
  below high latitudes.
* **Pruning, for speed.** For clusters with thousands of core points, a disc that cannot
  reach the footprint's outline is skipped: in an azimuthal-equidistant frame around the
  cluster, a point whose Voronoi cell lies well inside its own disc (every cell vertex within
  ``0.95·eps·cos(π/n)``; certified by a grid test in dense areas, by the Voronoi diagram
  elsewhere) contributes no boundary. The union of the remaining discs has the
  same outline; the holes that dropping interior discs opens (if any) are told from true
  holes by their distance to the nearest core point and filled. The argument is exact in the
  plane; on the sphere it holds while the frame's distortion stays well under the 5 % margin,
  which is checked per cluster (pruning is skipped otherwise, e.g. near a pole). Tests
  compare pruned and unpruned footprints.
* Snapping to the 1e-6° output grid moves vertices by at most ~0.08 m.

GeoNames or any other data are not used here: only the coordinates given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from scipy.spatial import Voronoi, cKDTree
from shapely.geometry import MultiPolygon, Polygon, box

from stclusters.params import EARTH_RADIUS_KM
from stclusters.reports._atomic import write_bytes

__all__ = [
    "COORDINATE_DECIMALS",
    "footprint_geometry",
    "footprint_shape",
    "footprints_feature_collection",
    "geojson_bytes",
    "shape_to_geojson",
    "write_geojson",
]

#: Decimals of written coordinates (1e-6° ≈ 0.11 m); geometry is snapped to this grid.
COORDINATE_DECIMALS = 6
_GRID = 10.0 ** -COORDINATE_DECIMALS
_MIN_EPS_KM = 0.05

#: Pruning margin: a point is dropped only if its Voronoi cell lies within (1 - margin) of the
#: inscribed radius of its disc polygon. Must exceed twice the lon/lat frame's distortion.
_PRUNE_MARGIN = 0.05
#: Below this many distinct core points, the plain union is cheap: no pruning.
_PRUNE_MIN_POINTS = 64
#: Pruning pays only if it drops a fair share of the discs.
_PRUNE_WORTH = 0.7


# --------------------------------------------------------------------------------------------
# discs
# --------------------------------------------------------------------------------------------
def _destination(lat_rad: np.ndarray, lon_rad: np.ndarray, delta: float,
                 azimuth_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Destination points at angular distance ``delta`` (rad), broadcasting centre × azimuth.

    Returns latitudes (rad) and longitude *offsets* from the centre (rad, in (-π, π]): the
    offsets, not wrapped longitudes, keep each disc continuous in an unwrapped frame.
    """
    sin_lat, cos_lat = np.sin(lat_rad)[:, None], np.cos(lat_rad)[:, None]
    sin_d, cos_d = math.sin(delta), math.cos(delta)
    sin_lat2 = np.clip(sin_lat * cos_d + cos_lat * sin_d * np.cos(azimuth_rad), -1.0, 1.0)
    lat2 = np.arcsin(sin_lat2)
    # the usual atan2(sin θ·sin δ·cos φ1, cos δ - sin φ1·sin φ2) divided through by cos φ1:
    # the same angle, without cancellation near a pole and defined at it
    dlon = np.arctan2(np.sin(azimuth_rad) * sin_d,
                      cos_d * cos_lat - sin_lat * sin_d * np.cos(azimuth_rad))
    return lat2, dlon


def _azimuths(n_vertices: int) -> np.ndarray:
    return np.arange(n_vertices, dtype=np.float64) * (2.0 * math.pi / n_vertices)


def _cap_ring(lat_deg: np.ndarray, dlon_deg: np.ndarray, lon0: float,
              pole: float) -> np.ndarray:
    """Ring of a disc containing a pole: the rim as a function of longitude, closed at ±90.

    A spherical cap that contains a pole meets every meridian once, so its rim is a function
    of the longitude offset; sorted by it, the rim runs from ``lon0 - 180`` to ``lon0 + 180``
    and the ring closes along latitude ``pole`` (±90).
    """
    order = np.argsort(dlon_deg, kind="stable")
    dl, la = dlon_deg[order], lat_deg[order]
    # latitude where the rim crosses the seam (offset ±180), interpolated across the gap
    gap = (dl[0] + 360.0) - dl[-1]
    seam = la[-1] if gap <= 0 else la[-1] + (la[0] - la[-1]) * (180.0 - dl[-1]) / gap
    xs = np.concatenate([[lon0 - 180.0], lon0 + dl, [lon0 + 180.0, lon0 + 180.0, lon0 - 180.0]])
    ys = np.concatenate([[seam], la, [seam, pole, pole]])
    return np.column_stack([xs, ys])


def _disc_polygons(lat_deg: np.ndarray, lon_unwrapped_deg: np.ndarray, delta: float,
                   n_vertices: int) -> np.ndarray:
    """Shapely polygons of the geodesic discs, in the unwrapped lon/lat frame (degrees)."""
    az = _azimuths(n_vertices)
    lat2, dlon = _destination(np.radians(lat_deg), np.radians(lon_unwrapped_deg), delta, az)
    lat2, dlon = np.degrees(lat2), np.degrees(dlon)
    # a disc holds the north (south) pole iff its centre is closer than delta to it
    colat = np.radians(90.0 - np.abs(lat_deg))
    has_pole = colat < delta
    out = np.empty(len(lat_deg), dtype=object)
    plain = ~has_pole
    if plain.any():
        xy = np.stack([lon_unwrapped_deg[plain, None] + dlon[plain], lat2[plain]], axis=-1)
        out[plain] = shapely.polygons(xy)
    for i in np.flatnonzero(has_pole):
        pole = 90.0 if lat_deg[i] > 0 else -90.0
        out[i] = Polygon(_cap_ring(lat2[i], dlon[i], float(lon_unwrapped_deg[i]), pole))
    return out


# --------------------------------------------------------------------------------------------
# local frame and pruning
# --------------------------------------------------------------------------------------------
def _unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


class _LocalFrame:
    """Azimuthal-equidistant frame (km) around the mean direction of a set of points.

    Planar distances in it are never shorter than great-circle ones (its scale factor is
    ≥ 1 everywhere), which is what the pruning argument needs.
    """

    def __init__(self, xyz: np.ndarray) -> None:
        m = xyz.sum(axis=0)
        norm = float(np.linalg.norm(m))
        self.ok = norm > 1e-9 * len(xyz)
        u = m / norm if self.ok else np.array([0.0, 0.0, 1.0])
        # east and north at u (any orthonormal pair works if u is a pole)
        east = np.array([-u[1], u[0], 0.0])
        if np.linalg.norm(east) < 1e-12:
            east = np.array([1.0, 0.0, 0.0])
        east /= np.linalg.norm(east)
        self.u, self.east, self.north = u, east, np.cross(u, east)

    def angle(self, xyz: np.ndarray) -> np.ndarray:
        """Angular distance from the frame's centre, rad."""
        return np.arctan2(np.linalg.norm(np.cross(xyz, self.u), axis=1), xyz @ self.u)

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """Planar coordinates (km), shape (n, 2)."""
        c = self.angle(xyz)
        e, n = xyz @ self.east, xyz @ self.north
        s = np.hypot(e, n)
        k = np.divide(EARTH_RADIUS_KM * c, s, out=np.zeros_like(s), where=s > 0)
        return np.column_stack([e * k, n * k])


def _lonlat_distortion(lat_deg: float, delta: float, n_vertices: int) -> float:
    """Relative shortfall of a straight-edged lon/lat disc polygon vs its ideal inradius.

    Measured on the disc at ``lat_deg`` (the highest |latitude| of a cluster, where straight
    lon/lat edges deviate most from the geodesic circle): the smallest great-circle distance
    from the centre to points along the edges, against ``delta·cos(π/n)``.
    """
    az = _azimuths(n_vertices)
    lat2, dlon = _destination(np.array([math.radians(lat_deg)]), np.zeros(1), delta, az)
    lat2, dlon = lat2[0], dlon[0]
    t = np.linspace(0.0, 1.0, 9)[:, None]
    la = lat2 + t * (np.roll(lat2, -1) - lat2)
    lo = dlon + t * (np.roll(dlon, -1) - dlon)
    c0 = math.radians(lat_deg)
    cosd = math.sin(c0) * np.sin(la) + math.cos(c0) * np.cos(la) * np.cos(lo)
    d_min = float(np.arccos(np.clip(cosd, -1.0, 1.0)).min())
    ideal = math.atan(math.tan(delta) * math.cos(math.pi / n_vertices))
    return max(0.0, 1.0 - d_min / ideal)


def _grid_interior(frame_xy: np.ndarray, radius_km: float) -> np.ndarray:
    """Mask of points whose Voronoi cell is certainly within ``radius_km``, from a grid alone.

    Cells of side ``s = radius_km / 2``. If all 24 cells around a point's cell (its 5×5
    block) hold a point, then for any ``x`` farther than ``1.5·s`` from ``p``, the point
    ``z`` at ``1.5·s`` from ``p`` towards ``x`` lies in another cell of the block, whose
    point ``q`` is within ``s·√2 < 1.5·s`` of ``z``, hence nearer to ``x`` than ``p``: the
    cell of ``p`` lies within ``1.5·s = 0.75·radius_km``. Linear time, where the Voronoi
    diagram of tens of thousands of points takes seconds.
    """
    s = radius_km / 2.0
    ij = np.floor(frame_xy / s).astype(np.int64)
    ij -= ij.min(axis=0) - 2  # 2 cells of padding: neighbours never wrap between rows
    width = int(ij[:, 1].max()) + 3
    keys = ij[:, 0] * width + ij[:, 1]
    cells, inverse = np.unique(keys, return_inverse=True)
    ok = np.ones(len(cells), dtype=bool)
    for di in range(-2, 3):
        for dj in range(-2, 3):
            if di or dj:
                nb = cells + (di * width + dj)
                pos = np.minimum(np.searchsorted(cells, nb), len(cells) - 1)
                ok &= cells[pos] == nb
    return ok[inverse.ravel()]


def _sector_interior(frame_xy: np.ndarray, cand: np.ndarray, radius_km: float,
                     *, k: int = 32, n_sectors: int = 6) -> np.ndarray:
    """For points ``cand``: is the Voronoi cell certainly within ``radius_km``? (neighbours)

    If each of ``n_sectors`` fixed angular sectors (width ``w``) around ``p`` holds a point
    ``q`` with ``|q - p| < 2·cos(w)·radius_km``, then any ``x`` in direction ``u`` from ``p``
    and farther than ``|q - p| / (2·cos∠(q - p, u))`` (``q`` in the sector of ``u``, so the
    angle is at most ``w``) is nearer to ``q`` than to ``p``: the cell lies within
    ``radius_km``. Only the ``k`` nearest neighbours are looked at (fewer only certify less).
    """
    tree = cKDTree(frame_xy)
    w = 2.0 * math.pi / n_sectors
    reach = 2.0 * math.cos(w) * radius_km
    kk = min(k + 1, len(frame_xy))
    dist, idx = tree.query(frame_xy[cand], k=kk, distance_upper_bound=reach)
    dist, idx = dist.reshape(len(cand), kk), idx.reshape(len(cand), kk)
    ok = (idx < len(frame_xy)) & (dist > 0.0) & (dist < reach)
    vec = frame_xy[np.minimum(idx, len(frame_xy) - 1)] - frame_xy[cand][:, None, :]
    sector = np.floor((np.arctan2(vec[..., 1], vec[..., 0]) + math.pi) / w).astype(np.int64)
    sector = np.clip(sector, 0, n_sectors - 1)
    occ = np.zeros((len(cand), n_sectors), dtype=bool)
    rows = np.broadcast_to(np.arange(len(cand))[:, None], ok.shape)
    occ[rows[ok], sector[ok]] = True
    return occ.all(axis=1)


def _prune(frame_xy: np.ndarray, radius_km: float) -> np.ndarray:
    """Mask of points to keep: those whose planar Voronoi cell is not well inside their disc.

    ``radius_km`` is the disc polygon's inscribed radius scaled by ``1 - margin``. A dropped
    point's cell lies inside its own disc, so it carries none of the union's outline.

    Points in densely filled areas are certified by a grid (:func:`_grid_interior`), then by
    their nearest neighbours (:func:`_sector_interior`); the rest by the Voronoi diagram of
    themselves plus one certified point per grid cell. A Voronoi cell computed among a subset
    of the points contains the true one, so a point certified on the subset is certified for
    the whole set.
    """
    keep = ~_grid_interior(frame_xy, radius_km)
    cand = np.flatnonzero(keep)
    if cand.size == 0:
        return keep
    keep[cand] = ~_sector_interior(frame_xy, cand, radius_km)
    cand = np.flatnonzero(keep)
    if cand.size == 0:
        return keep
    # helpers: one certified point per grid cell, so that candidates at the edge of a dense
    # area still have bounded cells on its side
    inner = np.flatnonzero(~keep)
    if inner.size:
        s = radius_km / 2.0
        cell = np.floor(frame_xy[inner] / s).astype(np.int64)
        _, first = np.unique(cell, axis=0, return_index=True)
        helpers = inner[np.sort(first)]
    else:
        helpers = inner
    sub = np.concatenate([cand, helpers])
    xy = frame_xy[sub]
    m = len(sub)
    try:
        vor = Voronoi(xy)
    except Exception:  # degenerate (collinear / near-duplicate) input: keep the candidates
        return keep
    rp = vor.ridge_points  # (r, 2) point pairs, indices into sub
    rv = np.array([v if len(v) == 2 else [-1, -1] for v in vor.ridge_vertices], dtype=np.int64)
    unbounded = (rv < 0).any(axis=1)
    verts = vor.vertices[np.where(rv < 0, 0, rv)]  # (r, 2, 2)
    far = np.zeros(m, dtype=bool)
    np.logical_or.at(far, rp[:, 0], unbounded)
    np.logical_or.at(far, rp[:, 1], unbounded)
    for side in (0, 1):
        p = xy[rp[:, side]]
        d = np.maximum(np.linalg.norm(verts[:, 0] - p, axis=1),
                       np.linalg.norm(verts[:, 1] - p, axis=1))
        np.logical_or.at(far, rp[:, side], d >= radius_km)
    # a point with no ridge at all (qhull dropped it as a near duplicate) is kept
    has_ridge = np.zeros(m, dtype=bool)
    has_ridge[rp.ravel()] = True
    keep_sub = far | ~has_ridge
    keep[cand] = keep_sub[: cand.size]
    return keep


def _fill_spurious_holes(union, frame: _LocalFrame, tree: cKDTree, threshold_km: float):
    """Fill the holes that dropping interior discs opened.

    Every bounded component of the complement of the pruned union is either inside the cells
    of dropped points (all of it nearer than ``threshold_km`` to a core point in the frame:
    a false hole) or outside every disc of the full set (a true hole): one representative
    point per component decides.
    """
    holes = [Polygon(r) for g in getattr(union, "geoms", [union]) for r in g.interiors]
    if not holes:
        return union
    holes = np.array(holes, dtype=object)
    # a hole with islands (parts of the union inside it) may hold several components of the
    # complement, e.g. a true hole inside an island: those holes go component by component
    parts = np.array(getattr(union, "geoms", [union]), dtype=object)
    hole_idx, _ = shapely.STRtree(parts).query(holes, predicate="contains")
    has_island = np.zeros(len(holes), dtype=bool)
    has_island[hole_idx] = True
    rep = shapely.point_on_surface(holes)
    fill = []
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    for i in np.flatnonzero(has_island):
        # the complement inside this hole, component by component
        gaps = shapely.difference(holes[i], union)
        for part in getattr(gaps, "geoms", [gaps]):
            if part.is_empty or part.geom_type != "Polygon":
                continue
            p = part.representative_point()
            if _planar_distance(frame, tree, np.array([p.y]), np.array([p.x]))[0] < threshold_km:
                fill.append(part)
    plain = np.flatnonzero(~has_island)
    if plain.size:
        d = _planar_distance(frame, tree, y[plain], x[plain])
        fill.extend(holes[plain[d < threshold_km]])
    return shapely.union_all([union, *fill]) if fill else union


def _planar_distance(frame: _LocalFrame, tree: cKDTree, lat_deg: np.ndarray,
                     lon_deg: np.ndarray) -> np.ndarray:
    """Distance (km, in the frame) from each (lat, lon) to the nearest core point."""
    # the frame was built from lon/lat; an unwrapped longitude projects the same
    d, _ = tree.query(frame.project(_unit_vectors(lat_deg, lon_deg)))
    return np.asarray(d)


# --------------------------------------------------------------------------------------------
# the footprint
# --------------------------------------------------------------------------------------------
def _wrap180(lon: np.ndarray) -> np.ndarray:
    """Longitudes into [-180, 180)."""
    return (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0


def _check_inputs(lat, lon, eps_km: float, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat and lon differ in length: {lat.size} != {lon.size}")
    if lat.size == 0:
        raise ValueError("a footprint needs at least one core point")
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise ValueError("core point coordinates must be finite")
    if (np.abs(lat) > 90.0).any():
        raise ValueError("latitudes must lie in [-90, 90]")
    # below 50 m a 64-gon's edges shrink towards the 1e-6° (0.11 m) output grid; from a
    # quarter great circle on, a disc could hold both poles
    if not (_MIN_EPS_KM <= eps_km < 0.5 * math.pi * EARTH_RADIUS_KM):
        raise ValueError(f"eps_km must be in [{_MIN_EPS_KM}, "
                         f"{0.5 * math.pi * EARTH_RADIUS_KM:.0f}) km: {eps_km}")
    if int(n_vertices) != n_vertices or n_vertices < 8:
        raise ValueError(f"n_vertices must be an integer >= 8: {n_vertices}")
    return lat, lon


def footprint_shape(core_lat_deg: Sequence[float] | np.ndarray,
                    core_lon_deg: Sequence[float] | np.ndarray, *, eps_km: float,
                    n_vertices: int = 64, prune: bool = True) -> Polygon | MultiPolygon:
    """The footprint as a shapely geometry in lon/lat (x = lon in [-180, 180], y = lat).

    Parameters
    ----------
    core_lat_deg, core_lon_deg : array_like, shape (n,)
        Core points, degrees (any longitude; wrapped). Duplicates and order do not matter.
    eps_km : float
        Disc radius, great-circle km, in [0.05, πR/2).
    n_vertices : int
        Vertices per disc (>= 8).
    prune : bool
        Skip discs that cannot reach the outline (faster, same outline; see module notes).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        Valid, snapped to a 1e-6° grid, exteriors counter-clockwise, holes clockwise.
    """
    lat, lon = _check_inputs(core_lat_deg, core_lon_deg, eps_km, n_vertices)
    n_vertices = int(n_vertices)
    lon = _wrap180(lon)
    # distinct points in a canonical order: the result cannot depend on input order
    pts = np.unique(np.column_stack([lat, lon]), axis=0)
    lat, lon = pts[:, 0], pts[:, 1]
    delta = eps_km / EARTH_RADIUS_KM

    # unwrapped frame: longitudes continuous around the cluster's mean direction
    xyz = _unit_vectors(lat, lon)
    frame = _LocalFrame(xyz)
    lon0 = math.degrees(math.atan2(frame.u[1], frame.u[0])) if frame.ok else 0.0
    lon_u = lon0 + _wrap180(lon - lon0)

    keep = np.ones(len(lat), dtype=bool)
    tree = None
    threshold_km = 0.0
    if prune and len(lat) >= _PRUNE_MIN_POINTS and frame.ok:
        reach = float(frame.angle(xyz).max()) + delta
        max_lat = float(np.abs(lat).max())
        near_pole = math.radians(90.0 - max_lat) <= 2.0 * delta
        if reach < 0.25 * math.pi and not near_pole:
            distortion = _lonlat_distortion(max_lat, delta, n_vertices)
            if distortion <= 0.5 * _PRUNE_MARGIN:
                inradius = eps_km * math.cos(math.pi / n_vertices)
                fxy = frame.project(xyz)
                keep = _prune(fxy, inradius * (1.0 - _PRUNE_MARGIN))
                if keep.mean() > _PRUNE_WORTH:
                    keep[:] = True  # sparse cluster: hole bookkeeping would cost more
                else:
                    tree = cKDTree(fxy)
                    # false holes are nearer than inradius·(1-margin), true ones farther than
                    # inradius·(1-distortion): split the difference
                    threshold_km = inradius * (1.0 - 0.5 * (_PRUNE_MARGIN + distortion))

    discs = _disc_polygons(lat[keep], lon_u[keep], delta, n_vertices)
    union = shapely.union_all(discs)
    if tree is not None:
        union = _fill_spurious_holes(union, frame, tree, threshold_km)

    # cut at ±180 (and ±540 for caps) and shift every piece back into [-180, 180]
    minx, _, maxx, _ = union.bounds
    pieces = []
    for k in range(math.floor((minx + 180.0) / 360.0), math.floor((maxx + 180.0) / 360.0) + 1):
        part = shapely.intersection(union, box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0))
        if not part.is_empty:
            pieces.append(shapely.transform(part, lambda c, s=360.0 * k: c - [s, 0.0]))
    # one snapped union: joins pieces that meet (a polar cap) and makes the grid exact
    geom = shapely.union_all(pieces, grid_size=_GRID)
    polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and not g.is_empty]
    geom = polys[0] if len(polys) == 1 else MultiPolygon(polys)
    geom = shapely.normalize(geom)
    return shapely.orient_polygons(geom, exterior_cw=False)


def _ring(coords) -> list[list[float]]:
    # + 0.0 turns -0.0 into 0.0: the same point is always written the same way
    return [[round(x, COORDINATE_DECIMALS) + 0.0, round(y, COORDINATE_DECIMALS) + 0.0]
            for x, y in coords]


def _polygon_coords(p: Polygon) -> list[list[list[float]]]:
    return [_ring(p.exterior.coords), *(_ring(r.coords) for r in p.interiors)]


def shape_to_geojson(geom: Polygon | MultiPolygon) -> dict[str, Any]:
    """GeoJSON geometry dict of a (Multi)Polygon, coordinates rounded to 6 decimals."""
    if geom.geom_type == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon_coords(geom)}
    if geom.geom_type == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [_polygon_coords(p) for p in geom.geoms]}
    raise TypeError(f"not a polygonal geometry: {geom.geom_type}")


def footprint_geometry(core_lat_deg: Sequence[float] | np.ndarray,
                       core_lon_deg: Sequence[float] | np.ndarray, *, eps_km: float,
                       n_vertices: int = 64) -> dict[str, Any]:
    """GeoJSON geometry of a cluster footprint: the union of ``eps_km`` discs around its cores.

    Parameters
    ----------
    core_lat_deg, core_lon_deg : array_like, shape (n,)
        The cluster's core points, degrees. Order and duplicates do not matter.
    eps_km : float
        Disc radius, great-circle km on the sphere of radius 6371.0088 km.
    n_vertices : int
        Vertices per disc; the polygon under-approximates each disc by at most
        ``eps_km·(1 - cos(π/n_vertices))`` km (0.12 % of ``eps_km`` at 64).

    Returns
    -------
    dict
        ``{"type": "Polygon" | "MultiPolygon", "coordinates": ...}``, RFC 7946: [lon, lat],
        closed rings, exteriors counter-clockwise, holes clockwise, split at the antimeridian.

    Examples
    --------
    >>> g = footprint_geometry([48.8566], [2.3522], eps_km=13.0)
    >>> g["type"], len(g["coordinates"][0])
    ('Polygon', 65)
    """
    return shape_to_geojson(footprint_shape(core_lat_deg, core_lon_deg, eps_km=eps_km,
                                            n_vertices=n_vertices))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, NaN/inf to null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def footprints_feature_collection(core_lat_deg: Sequence[float] | np.ndarray,
                                  core_lon_deg: Sequence[float] | np.ndarray,
                                  cluster_ids: Sequence[Any] | np.ndarray, *, eps_km: float,
                                  properties: Mapping[Any, Mapping[str, Any]] | None = None,
                                  n_vertices: int = 64, order: Sequence[Any] | None = None
                                  ) -> dict[str, Any]:
    """A FeatureCollection with one footprint Feature per cluster, in ``order`` (e.g. rank
    order) or sorted by cluster id.

    Parameters
    ----------
    core_lat_deg, core_lon_deg : array_like, shape (n,)
        Core points of all clusters, degrees.
    cluster_ids : array_like, shape (n,)
        Cluster of each core point (ints or strings, one kind).
    eps_km : float
        Disc radius, great-circle km.
    properties : mapping of cluster id to mapping, optional
        Feature properties per cluster (name, rank, score…); numpy scalars are converted and
        NaN becomes null. ``cluster_id`` is added when absent.
    n_vertices : int
        Vertices per disc.
    order : sequence of cluster ids, optional
        Order of the features (the ranking's, for the outputs); clusters not in it follow,
        sorted by id. Default: sorted by id.

    Returns
    -------
    dict
        GeoJSON FeatureCollection; each Feature has ``id`` = cluster id.
    """
    lat = np.asarray(core_lat_deg, dtype=np.float64).ravel()
    lon = np.asarray(core_lon_deg, dtype=np.float64).ravel()
    ids = np.asarray(cluster_ids).ravel()
    if not (lat.size == lon.size == ids.size):
        raise ValueError(f"lengths differ: lat {lat.size}, lon {lon.size}, ids {ids.size}")
    properties = properties or {}
    features = []
    if ids.size:
        by_id = np.argsort(ids, kind="stable")
        uniq, start = np.unique(ids[by_id], return_index=True)
        bounds = [*start[1:], ids.size]
        for cid, a, b in zip(uniq, start, bounds, strict=True):
            sel = by_id[a:b]
            key = cid.item() if isinstance(cid, np.generic) else cid
            props = dict(properties.get(key, {}))
            props.setdefault("cluster_id", key)
            features.append({
                "type": "Feature",
                "id": _jsonable(key),
                "properties": _jsonable(props),
                "geometry": footprint_geometry(lat[sel], lon[sel], eps_km=eps_km,
                                               n_vertices=n_vertices),
            })
    if order is not None:
        position = {key: i for i, key in enumerate(order)}
        # Stable sort: clusters missing from `order` keep their id order, after the others.
        features.sort(key=lambda f: position.get(f["id"], len(position)))
    return {"type": "FeatureCollection", "features": features}


def geojson_bytes(feature_collection: Mapping[str, Any]) -> bytes:
    """Compact, deterministic UTF-8 JSON (keys sorted, no spaces, non-ASCII kept)."""
    text = json.dumps(_jsonable(feature_collection), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), allow_nan=False)
    return (text + "\n").encode("utf-8")


def write_geojson(path: str | Path, feature_collection: Mapping[str, Any]) -> None:
    """Write a FeatureCollection to ``path`` atomically (compact deterministic UTF-8 JSON)."""
    write_bytes(path, geojson_bytes(feature_collection))
