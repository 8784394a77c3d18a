"""Cluster footprints as GeoJSON: geometry on the sphere, RFC 7946 form, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from stclusters.reports.geojson import (
    footprint_geometry,
    footprint_shape,
    footprints_feature_collection,
    geojson_bytes,
    write_geojson,
)

R = 6371.0088


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def ring_area_km2(coords) -> float:
    """Signed area on the sphere (km²) of a ring whose edges are straight in lon/lat.

    Green's theorem in (λ, φ): area = -R² ∮ sin φ dλ (counter-clockwise positive), exact for
    φ linear in λ along each edge: ∫ sin φ dλ = Δλ·(cos φ1 - cos φ2)/(φ2 - φ1).
    """
    xy = np.radians(np.asarray(coords, dtype=float))
    lam1, phi1 = xy[:-1, 0], xy[:-1, 1]
    lam2, phi2 = xy[1:, 0], xy[1:, 1]
    dlam, dphi = lam2 - lam1, phi2 - phi1
    flat = np.abs(dphi) < 1e-12
    integral = np.where(flat, dlam * np.sin(phi1),
                        dlam * (np.cos(phi1) - np.cos(phi2)) / np.where(flat, 1.0, dphi))
    return float(-R * R * integral.sum())


def geometry_area_km2(geom: dict) -> float:
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return sum(ring_area_km2(p[0]) + sum(ring_area_km2(h) for h in p[1:]) for p in polys)


def rings(geom: dict):
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    for p in polys:
        yield "exterior", p[0]
        for h in p[1:]:
            yield "hole", h


def planar_signed_area(ring) -> float:
    a = np.asarray(ring, dtype=float)
    return 0.5 * float(np.sum(a[:-1, 0] * a[1:, 1] - a[1:, 0] * a[:-1, 1]))


def assert_rfc7946(geom: dict) -> None:
    """Closed rings, CCW exteriors, CW holes, lon/lat in range, valid, no globe-wide rings."""
    assert geom["type"] in ("Polygon", "MultiPolygon")
    for kind, ring in rings(geom):
        assert len(ring) >= 4
        assert ring[0] == ring[-1], "ring not closed"
        a = np.asarray(ring)
        assert (a[:, 0] >= -180).all() and (a[:, 0] <= 180).all()
        assert (a[:, 1] >= -90).all() and (a[:, 1] <= 90).all()
        s = planar_signed_area(ring)
        assert (s > 0) if kind == "exterior" else (s < 0), f"{kind} ring wrongly oriented"
    g = shape(geom)
    assert g.is_valid, shapely.is_valid_reason(g)


def parts(geom: dict) -> list[shapely.Polygon]:
    g = shape(geom)
    return list(getattr(g, "geoms", [g]))


def gc_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


# --------------------------------------------------------------------------------------------
# single discs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lat", [0.0, 35.7, -45.0, 64.1])
@pytest.mark.parametrize("eps_km", [5.0, 13.0, 50.0])
def test_single_disc_area_is_pi_eps_squared(lat: float, eps_km: float) -> None:
    g = footprint_geometry([lat], [139.7], eps_km=eps_km)
    assert g["type"] == "Polygon"
    assert_rfc7946(g)
    exact = 2 * math.pi * R * R * (1 - math.cos(eps_km / R))  # spherical cap
    area = geometry_area_km2(g)
    assert area == pytest.approx(math.pi * eps_km**2, rel=0.01)
    # the 64-gon under-approximates: polygon/circle = (n/2π)·sin(2π/n) = 0.9984 at n = 64
    assert 0.995 * exact < area < exact


def test_disc_vertices_lie_at_eps() -> None:
    g = footprint_geometry([48.8566], [2.3522], eps_km=13.0)
    ring = np.asarray(g["coordinates"][0])
    d = gc_km(48.8566, 2.3522, ring[:, 1], ring[:, 0])
    assert np.allclose(d, 13.0, atol=1e-3)  # 1e-6° rounding ≈ 0.1 m
    assert len(ring) == 65


def test_sagitta_bound_is_respected() -> None:
    # every edge midpoint is within eps·(1 - cos(π/n)) (+ rounding) of the circle
    n, eps = 16, 20.0
    ring = np.asarray(footprint_geometry([10.0], [20.0], eps_km=eps, n_vertices=n)["coordinates"][0])
    mid = (ring[:-1] + ring[1:]) / 2
    d = gc_km(10.0, 20.0, mid[:, 1], mid[:, 0])
    assert (eps - d).max() <= eps * (1 - math.cos(math.pi / n)) * 1.01 + 1e-3
    assert (d <= eps + 1e-3).all()


# --------------------------------------------------------------------------------------------
# antimeridian and poles
# --------------------------------------------------------------------------------------------
def test_fiji_splits_at_the_antimeridian() -> None:
    lat = [-17.7, -17.75, -17.8, -17.72]
    lon = [179.95, -179.95, 179.9, -179.99]
    g = footprint_geometry(lat, lon, eps_km=13.0)
    assert g["type"] == "MultiPolygon"
    assert_rfc7946(g)
    ps = parts(g)
    east = [p for p in ps if p.bounds[2] == 180.0]
    west = [p for p in ps if p.bounds[0] == -180.0]
    assert east and west
    for p in ps:
        minx, _, maxx, _ = p.bounds
        assert maxx - minx < 180.0
    fp = shape(g)
    for la, lo in zip(lat, lon, strict=True):
        assert fp.covers(Point(lo, la))
    # one disc's worth of area, about: all four overlap heavily
    assert math.pi * 13**2 < geometry_area_km2(g) < 3 * math.pi * 13**2


def test_single_disc_on_the_antimeridian_has_full_area() -> None:
    g = footprint_geometry([0.0], [180.0], eps_km=13.0)
    assert g["type"] == "MultiPolygon" and len(g["coordinates"]) == 2
    assert_rfc7946(g)
    assert geometry_area_km2(g) == pytest.approx(math.pi * 13**2, rel=0.01)


@pytest.mark.parametrize("lat", [89.99, -89.99, 89.95, 90.0, -90.0])
def test_disc_containing_a_pole_is_a_cap(lat: float) -> None:
    g = footprint_geometry([lat], [10.0], eps_km=13.0)
    assert_rfc7946(g)
    assert g["type"] == "Polygon"
    minx, miny, maxx, maxy = shape(g).bounds
    assert (minx, maxx) == (-180.0, 180.0)
    assert (maxy == 90.0) if lat > 0 else (miny == -90.0)
    assert shape(g).covers(Point(10.0, lat))
    assert geometry_area_km2(g) == pytest.approx(math.pi * 13**2, rel=0.01)


def test_cluster_around_a_pole_with_many_points() -> None:
    rng = np.random.default_rng(3)
    lat = 89.7 + rng.uniform(0, 0.3, 200)
    lon = rng.uniform(-180, 180, 200)
    g = footprint_geometry(lat, lon, eps_km=13.0)
    assert_rfc7946(g)
    fp = shape(g)
    assert all(fp.covers(Point(lo, la)) for la, lo in zip(lat, lon, strict=True))
    # at least the cap of radius 13 km around the pole, at most the cap of (0.3° + 13 km)
    a = geometry_area_km2(g)
    r_out = 0.3 * math.pi / 180 * R + 13
    assert math.pi * 13**2 < a < math.pi * r_out**2


def test_disc_near_but_not_containing_a_pole() -> None:
    g = footprint_geometry([89.8], [45.0], eps_km=13.0)  # 22 km from the pole
    assert_rfc7946(g)
    assert shape(g).bounds[3] < 90.0
    assert geometry_area_km2(g) == pytest.approx(math.pi * 13**2, rel=0.02)


# --------------------------------------------------------------------------------------------
# unions, holes, pruning
# --------------------------------------------------------------------------------------------
def test_ring_of_points_leaves_a_clockwise_hole() -> None:
    a = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    lat, lon = 40 + 0.5 * np.sin(a), 10 + 0.65 * np.cos(a)
    g = footprint_geometry(lat, lon, eps_km=10.0)
    assert g["type"] == "Polygon" and len(g["coordinates"]) == 2
    assert_rfc7946(g)
    assert not shape(g).covers(Point(10.0, 40.0))


def test_every_core_point_inside_its_footprint() -> None:
    rng = np.random.default_rng(7)
    for lat0, lon0 in [(35.7, 139.7), (-33.9, 151.2), (64.1, -21.9), (-17.7, 180.0), (1.3, 103.8)]:
        n = 300
        lat = lat0 + rng.normal(0, 0.3, n)
        lon = (lon0 + rng.normal(0, 0.3, n) + 180) % 360 - 180
        fp = shape(footprint_geometry(lat, lon, eps_km=8.0))
        assert fp.is_valid
        assert all(fp.covers(Point(lo, la)) for la, lo in zip(lat, lon, strict=True))


def blob(seed: int, n: int, lat0: float, lon0: float, r_deg: float):
    rng = np.random.default_rng(seed)
    r, a = np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
    return lat0 + r_deg * r * np.sin(a), lon0 + 1.4 * r_deg * r * np.cos(a)


@pytest.mark.parametrize("case", ["blob", "blob_and_ring", "two_blobs_antimeridian", "metro"])
def test_pruning_gives_the_same_footprint(case: str) -> None:
    eps_km = 5.0
    if case == "metro":
        # dense core (grid certificate), clumpy periphery (neighbour sectors), sparse edge
        rng = np.random.default_rng(8)
        lat = np.r_[37.5 + rng.normal(0, 0.15, 20000), 37.5 + rng.normal(0, 0.6, 3000)]
        lon = np.r_[127.0 + rng.normal(0, 0.2, 20000), 127.0 + rng.normal(0, 0.8, 3000)]
        eps_km = 13.0
    elif case == "blob":
        lat, lon = blob(1, 4000, 50.0, 8.0, 1.0)
    elif case == "blob_and_ring":
        lat, lon = blob(2, 3000, 50.0, 8.0, 0.8)
        a = np.random.default_rng(3).uniform(0, 2 * np.pi, 2000)
        lat = np.r_[lat, 52 + 0.5 * np.sin(a)]
        lon = np.r_[lon, 12 + 0.8 * np.cos(a)]
    else:
        la1, lo1 = blob(4, 2000, -17.0, 179.5, 0.6)
        la2, lo2 = blob(5, 2000, -18.0, -179.0, 0.4)
        lat, lon = np.r_[la1, la2], (np.r_[lo1, lo2] + 180) % 360 - 180
    fast = footprint_shape(lat, lon, eps_km=eps_km)
    slow = footprint_shape(lat, lon, eps_km=eps_km, prune=False)
    assert fast.is_valid and slow.is_valid
    # same outline up to the 1e-6° snapping grid
    assert shapely.symmetric_difference(fast, slow).area < 1e-9 * max(slow.area, 1.0) + 1e-8
    n_holes = lambda g: sum(len(p.interiors) for p in getattr(g, "geoms", [g]))  # noqa: E731
    assert n_holes(fast) == n_holes(slow)


def test_five_thousand_core_points() -> None:
    # Its speed is a benchmark's business; here the big case must stay valid RFC 7946.
    lat, lon = blob(11, 5000, 31.2, 121.5, 0.6)
    assert_rfc7946(footprint_geometry(lat, lon, eps_km=13.0))


# --------------------------------------------------------------------------------------------
# FeatureCollection, files, determinism
# --------------------------------------------------------------------------------------------
def three_clusters():
    rng = np.random.default_rng(0)
    lat = np.r_[35.7 + rng.normal(0, 0.1, 50), 48.85 + rng.normal(0, 0.05, 30), -17.7, -17.75]
    lon = np.r_[139.7 + rng.normal(0, 0.1, 50), 2.35 + rng.normal(0, 0.05, 30), 179.95, -179.95]
    ids = np.r_[np.full(50, 7), np.full(30, 2), [11, 11]]
    props = {7: {"name": "Tokyo–Yokohama", "score": np.float64(3.25), "rank": np.int64(1)},
             2: {"name": "Paris", "score": float("nan"), "rank": 2},
             11: {"name": "Suva", "economy": "FJ"}}
    return lat, lon, ids, props


def test_feature_collection_sorted_with_properties() -> None:
    lat, lon, ids, props = three_clusters()
    fc = footprints_feature_collection(lat, lon, ids, eps_km=13.0, properties=props)
    assert fc["type"] == "FeatureCollection"
    assert [f["id"] for f in fc["features"]] == [2, 7, 11]
    f2, f7, f11 = fc["features"]
    assert f2["properties"]["score"] is None  # NaN → null
    assert f7["properties"] == {"name": "Tokyo–Yokohama", "score": 3.25, "rank": 1, "cluster_id": 7}
    assert f11["geometry"]["type"] == "MultiPolygon"
    for f in fc["features"]:
        assert_rfc7946(f["geometry"])
    json.dumps(fc, allow_nan=False)  # plain JSON values only


def test_file_round_trip_and_byte_identical_for_permuted_input(tmp_path) -> None:
    lat, lon, ids, props = three_clusters()
    p1, p2 = tmp_path / "a.geojson", tmp_path / "b.geojson"
    write_geojson(p1, footprints_feature_collection(lat, lon, ids, eps_km=13.0, properties=props))
    perm = np.random.default_rng(1).permutation(len(lat))
    props_rev = dict(reversed(list(props.items())))
    write_geojson(p2, footprints_feature_collection(lat[perm], lon[perm], ids[perm], eps_km=13.0,
                                                    properties=props_rev))
    assert p1.read_bytes() == p2.read_bytes()
    raw = p1.read_bytes()
    assert "Tokyo–Yokohama".encode() in raw  # ensure_ascii=False, UTF-8
    assert b": " not in raw and b", " not in raw  # compact
    fc = json.loads(raw.decode("utf-8"))
    for f in fc["features"]:
        g = shape(f["geometry"])
        assert g.is_valid
        # 6 decimals at most
        for _, ring in rings(f["geometry"]):
            for x, y in ring:
                assert round(x, 6) == x and round(y, 6) == y
    assert not list(tmp_path.glob("*.partial"))


def test_geometry_does_not_depend_on_order_or_duplicates() -> None:
    lat, lon = blob(9, 500, 37.5, 127.0, 0.3)
    a = geojson_bytes(footprint_geometry(lat, lon, eps_km=13.0))
    perm = np.random.default_rng(2).permutation(500)
    b = geojson_bytes(footprint_geometry(np.r_[lat[perm], lat[:50]], np.r_[lon[perm], lon[:50]],
                                         eps_km=13.0))
    assert a == b


def test_empty_collection_and_bad_input() -> None:
    assert footprints_feature_collection([], [], [], eps_km=13.0)["features"] == []
    with pytest.raises(ValueError):
        footprint_geometry([], [], eps_km=13.0)
    with pytest.raises(ValueError):
        footprint_geometry([91.0], [0.0], eps_km=13.0)
    with pytest.raises(ValueError):
        footprint_geometry([0.0], [0.0], eps_km=0.0)
    with pytest.raises(ValueError):
        footprint_geometry([0.0], [0.0], eps_km=13.0, n_vertices=4)


# --------------------------------------------------------------------------------------------
# property: anywhere on Earth
# --------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(lat0=st.floats(-89.999, 89.999), lon0=st.floats(-180, 180), spread=st.floats(0.0, 0.5),
       n=st.integers(1, 40), eps_km=st.floats(1.0, 60.0), seed=st.integers(0, 2**16))
def test_valid_everywhere(lat0, lon0, spread, n, eps_km, seed) -> None:
    rng = np.random.default_rng(seed)
    lat = np.clip(lat0 + rng.normal(0, spread, n), -90, 90)
    lon = (lon0 + rng.normal(0, spread, n) + 180) % 360 - 180
    g = footprint_geometry(lat, lon, eps_km=eps_km)
    assert_rfc7946(g)
    fp = shape(g)
    polar = fp.bounds[1] == -90.0 or fp.bounds[3] == 90.0
    for p in parts(g):
        if not polar:
            assert p.bounds[2] - p.bounds[0] < 180.0
    assert all(fp.covers(Point(lo, la)) for la, lo in zip(lat, lon, strict=True))
