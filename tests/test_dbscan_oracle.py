"""Exact weighted spherical DBSCAN against scikit-learn (the methodology's oracle).

Weights and thresholds are multiples of 1/4, so every partial sum is exact and the oracle's
summation order cannot matter; the oracle is fed ``4 * w`` and ``min_samples = 4 * min_weight``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.cluster import DBSCAN

from stclusters.clusters.dbscan import (
    EARTH_RADIUS_KM,
    dbscan_sphere,
    link_clusters,
    nearest_core,
)
from stclusters.errors import ParameterError

R = EARTH_RADIUS_KM
SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- helpers

def rdist_matrix(lat_a, lon_a, lat_b, lon_b) -> np.ndarray:
    """scikit-learn's haversine reduced distance, (n_a, n_b), from degrees."""
    la = np.radians(np.asarray(lat_a, float))[:, None]
    lo = np.radians(np.asarray(lon_a, float))[:, None]
    lb = np.radians(np.asarray(lat_b, float))[None, :]
    ob = np.radians(np.asarray(lon_b, float))[None, :]
    s0 = np.sin(0.5 * (la - lb))
    s1 = np.sin(0.5 * (lo - ob))
    return s0 * s0 + np.cos(la) * np.cos(lb) * s1 * s1


def threshold(eps_km: float) -> float:
    t = math.sin(0.5 * (eps_km / R))
    return t * t


def wrap_lon(lon):
    return ((np.asarray(lon) + 180.0) % 360.0) - 180.0


def oracle(lat, lon, w, eps_km, min_weight):
    if not np.any(np.asarray(w) > 0):  # sklearn refuses all-zero weights; nothing is core
        return np.full(len(lat), -1), np.zeros(len(lat), bool)
    X = np.radians(np.c_[lat, lon])
    est = DBSCAN(eps=eps_km / R, min_samples=int(round(4 * min_weight)), metric="haversine",
                 algorithm="ball_tree").fit(X, sample_weight=4.0 * np.asarray(w))
    core = np.zeros(len(lat), bool)
    core[est.core_sample_indices_] = True
    return est.labels_, core


def assert_matches_oracle(lat, lon, w, eps_km, min_weight):
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    w = np.asarray(w, float)
    res = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=min_weight)
    sk_lab, sk_core = oracle(lat, lon, w, eps_km, min_weight)
    assert res.labels.dtype == np.int64 and res.is_core.dtype == bool
    np.testing.assert_array_equal(res.is_core, sk_core, err_msg="core sets differ")
    np.testing.assert_array_equal(res.labels == -1, sk_lab == -1, err_msg="noise sets differ")
    # same partition of core points: a bijection between label sets
    pairs = set(zip(sk_lab[sk_core].tolist(), res.labels[sk_core].tolist()))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    assert res.n_clusters == len(pairs)
    if res.n_clusters:
        assert set(res.labels[res.is_core].tolist()) == set(range(res.n_clusters))
    # border points: the cluster of their nearest core point (ties: smaller label)
    border = np.flatnonzero(~res.is_core & (res.labels >= 0))
    if len(border):
        core_idx = np.flatnonzero(res.is_core)
        rd = rdist_matrix(lat[border], lon[border], lat[core_idx], lon[core_idx])
        rd = np.where(rd <= threshold(eps_km), rd, np.inf)
        best = rd.min(axis=1)
        for k, i in enumerate(border):
            assert np.isfinite(best[k])
            near = rd[k] <= best[k] * (1 + 1e-12)
            candidates = set(res.labels[core_idx[near]].tolist())
            exact = set(res.labels[core_idx[rd[k] == best[k]]].tolist())
            assert res.labels[i] in candidates
            if len(candidates) == 1 or exact == candidates:
                assert res.labels[i] == min(exact)
    return res


# --------------------------------------------------------------------------- strategies

QUARTER = st.integers(0, 12).map(lambda k: k / 4)  # weights 0 .. 3 in steps of 1/4

SPECIAL_CENTRES = [
    (0.0, 179.99), (10.0, -179.995), (-33.0, 180.0), (45.0, -180.0),  # dateline
    (89.99, 0.0), (-89.99, 120.0), (90.0, 0.0), (-90.0, -45.0),       # poles
    (51.5, -0.1), (0.0, 0.0),
]


@st.composite
def scenes(draw):
    eps_km = draw(st.sampled_from([0.001, 0.05, 1.0, 5.0, 13.0, 40.0, 300.0, 2500.0])
                  | st.floats(0.01, 1000.0))
    spread_km = eps_km * draw(st.sampled_from([0.2, 0.7, 1.5, 4.0]))
    n_centres = draw(st.integers(1, 4))
    lat_parts, lon_parts = [], []
    for _ in range(n_centres):
        if draw(st.booleans()):
            c_lat, c_lon = draw(st.sampled_from(SPECIAL_CENTRES))
        else:
            c_lat = draw(st.floats(-89.0, 89.0))
            c_lon = draw(st.floats(-180.0, 180.0))
        m = draw(st.integers(1, 40))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        dlat = rng.normal(0, spread_km, m) / R * 180 / math.pi
        lat = np.clip(c_lat + dlat, -90, 90)
        coslat = max(math.cos(math.radians(c_lat)), 1e-3)
        dlon = rng.normal(0, spread_km, m) / (R * coslat) * 180 / math.pi
        lon = wrap_lon(c_lon + dlon)
        if draw(st.booleans()):  # aggregated data: rounded coordinates collide
            digits = draw(st.integers(1, 4))
            lat = np.clip(np.round(lat, digits), -90, 90)
            lon = np.clip(np.round(lon, digits), -180, 180)
        lat_parts.append(lat)
        lon_parts.append(lon)
    lat = np.concatenate(lat_parts)
    lon = np.concatenate(lon_parts)
    # exact-eps pairs on one meridian: Δlat = eps in radians
    n_pairs = draw(st.integers(0, 4))
    eps_rad = eps_km / R
    for _ in range(n_pairs):
        a = draw(st.floats(-80.0, 80.0))
        b = draw(st.floats(-180.0, 180.0))
        a2 = math.degrees(math.radians(a) + eps_rad)
        if a2 <= 90.0:
            lat = np.r_[lat, a, a2]
            lon = np.r_[lon, b, b]
    # exact duplicates
    n_dup = draw(st.integers(0, 5))
    if n_dup and len(lat):
        pick = np.asarray(draw(st.lists(st.integers(0, len(lat) - 1), min_size=n_dup,
                                        max_size=n_dup)))
        lat = np.r_[lat, lat[pick]]
        lon = np.r_[lon, lon[pick]]
    n = len(lat)
    w = np.asarray(draw(st.lists(QUARTER, min_size=n, max_size=n)), float)
    min_weight = draw(st.integers(1, 40)) / 4
    return lat, lon, w, eps_km, min_weight


@settings(max_examples=160, **SETTINGS)
@given(scenes())
def test_matches_sklearn(scene):
    lat, lon, w, eps_km, min_weight = scene
    assert_matches_oracle(lat, lon, w, eps_km, min_weight)


@st.composite
def exact_eps_scenes(draw):
    """Chains of points spaced exactly eps apart on meridians, thresholds around the sums."""
    eps_km = draw(st.sampled_from([0.001, 0.3, 1.0, 13.0, 50.0, 777.0]) | st.floats(0.01, 500.0))
    eps_rad = eps_km / R
    lat, lon = [], []
    for _ in range(draw(st.integers(1, 6))):
        a = draw(st.floats(-85.0, 85.0) | st.sampled_from([0.0, 45.0, -60.0, 89.9]))
        b = draw(st.floats(-180.0, 180.0) | st.sampled_from([180.0, -180.0, 0.0]))
        steps = draw(st.integers(1, 5))
        r0 = math.radians(a)
        for k in range(steps + 1):
            v = math.degrees(r0 + k * eps_rad)
            if v <= 90.0:
                lat.append(v)
                lon.append(b)
    n = len(lat)
    w = np.asarray(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.25, 2.0]), min_size=n,
                                 max_size=n)), float)
    min_weight = draw(st.sampled_from([0.25, 1.0, 1.5, 2.0, 2.25, 3.0, 4.0, 6.0]))
    return np.asarray(lat), np.asarray(lon), w, eps_km, min_weight


@settings(max_examples=60, **SETTINGS)
@given(exact_eps_scenes())
def test_exact_eps_boundary_matches_sklearn(scene):
    lat, lon, w, eps_km, min_weight = scene
    assert_matches_oracle(lat, lon, w, eps_km, min_weight)


def test_exact_eps_pairs_both_sides():
    """Pairs built Δlat = eps apart: our "within" equals sklearn's, on whichever side it falls."""
    rng = np.random.default_rng(7)
    inside = outside = 0
    for eps_km in (0.01, 1.0, 13.0, 100.0, 1234.5):
        eps_rad = eps_km / R
        a = rng.uniform(-80, 80 - math.degrees(eps_rad), 300)
        lat = np.r_[a, np.degrees(np.radians(a) + eps_rad)]
        b = rng.uniform(-180, 180, 300)
        lon = np.r_[b, b]  # each pair shares a meridian
        res = dbscan_sphere(lat, lon, eps_km=eps_km, min_weight=2)
        sk_lab, sk_core = oracle(lat, lon, np.ones(600), eps_km, 2)
        np.testing.assert_array_equal(res.is_core, sk_core)
        np.testing.assert_array_equal(res.labels == -1, sk_lab == -1)
        pair_within = rdist_matrix(lat[:300], lon[:300], lat[300:], lon[300:]).diagonal() \
            <= threshold(eps_km)
        inside += int(pair_within.sum())
        outside += int((~pair_within).sum())
        # a pair inside eps makes both core; pair partners share a cluster
        assert res.is_core[:300][pair_within].all()
        assert (res.labels[:300][pair_within] == res.labels[300:][pair_within]).all()
    assert inside > 0 and outside > 0  # both sides of the float boundary were exercised


# --------------------------------------------------------------------------- order, ids

@settings(max_examples=30, **SETTINGS)
@given(scenes(), st.integers(0, 2**32 - 1))
def test_permutation_invariance(scene, seed):
    lat, lon, w, eps_km, min_weight = scene
    # non-dyadic weights too: the canonical summation order must make them order-free
    w = w * 0.1 + 0.013
    base = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=min_weight * 0.1)
    perm = np.random.default_rng(seed).permutation(len(lat))
    other = dbscan_sphere(lat[perm], lon[perm], w[perm], eps_km=eps_km,
                          min_weight=min_weight * 0.1)
    assert base.labels[perm].tobytes() == other.labels.tobytes()
    assert base.is_core[perm].tobytes() == other.is_core.tobytes()
    assert base.n_clusters == other.n_clusters
    for r1, r2 in zip(base.representative, other.representative):
        assert (lat[r1], lon[r1], w[r1]) == (lat[perm][r2], lon[perm][r2], w[perm][r2])


@settings(max_examples=20, **SETTINGS)
@given(scenes())
def test_stable_ids_from_content(scene):
    lat, lon, w, eps_km, min_weight = scene
    res = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=min_weight)
    keys = []
    for k in range(res.n_clusters):
        idx = np.flatnonzero(res.is_core & (res.labels == k))
        best = min(idx, key=lambda i: (-w[i], lat[i], lon[i]))
        keys.append((-w[best], lat[best], lon[best]))
        r = res.representative[k]
        assert res.is_core[r] and res.labels[r] == k
        assert (-w[r], lat[r], lon[r]) == keys[-1]
    assert keys == sorted(keys)
    again = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=min_weight, n_threads=1)
    assert again.labels.tobytes() == res.labels.tobytes()


def test_edge_cases():
    empty = dbscan_sphere([], [], eps_km=1.0, min_weight=1.0)
    assert empty.n_clusters == 0 and empty.labels.shape == (0,)
    one = dbscan_sphere([10.0], [20.0], eps_km=1.0, min_weight=1.0)
    assert one.labels.tolist() == [0] and one.is_core.tolist() == [True]
    zero = dbscan_sphere([10.0, 10.0], [20.0, 20.0], [0.0, 0.0], eps_km=1.0, min_weight=0.5)
    assert zero.labels.tolist() == [-1, -1]
    # both sides of the dateline and every longitude at the pole are one place
    res = dbscan_sphere([0.0, 0.0, 90.0, 90.0, 90.0], [180.0, -180.0, 0.0, 77.0, -180.0],
                        eps_km=0.5, min_weight=2.0)
    # equal heaviest weights: the smaller latitude (equator) comes first
    assert res.labels.tolist() == [0, 0, 1, 1, 1]
    assert res.representative.tolist() == [1, 4]  # lon -180 < 180; pole: lon -180 < 0 < 77
    assert res.is_core.all()


# --------------------------------------------------------------------------- footprints

def _points_of(scene, seed):
    """Coordinates and eps of a scene (weights and threshold unused), a seeded generator, and
    a random half of the points."""
    lat, lon, _, eps_km, _ = scene
    rng = np.random.default_rng(seed)
    return lat, lon, eps_km, rng, rng.random(len(lat)) < 0.5


@settings(max_examples=25, **SETTINGS)
@given(scenes(), st.integers(0, 2**32 - 1))
def test_nearest_core_brute_force(scene, seed):
    lat, lon, eps_km, rng, is_core = _points_of(scene, seed)
    label = rng.integers(0, 4, len(lat))
    qlat = np.clip(lat + rng.normal(0, eps_km / R * 57.3, len(lat)), -90, 90)
    qlon = wrap_lon(lon + rng.normal(0, eps_km / R * 57.3, len(lat)))
    qlat = np.r_[qlat, lat]
    qlon = np.r_[qlon, lon]
    got, dist = nearest_core(qlat, qlon, lat[is_core], lon[is_core], label[is_core],
                             eps_km=eps_km)
    rd = rdist_matrix(qlat, qlon, lat[is_core], lon[is_core])
    rd = np.where(rd <= threshold(eps_km), rd, np.inf)
    for i in range(len(qlat)):
        if not is_core.any() or not np.isfinite(rd[i].min()):
            assert got[i] == -1 and dist[i] == np.inf
            continue
        best = rd[i].min()
        exact = set(label[is_core][rd[i] == best].tolist())
        near = set(label[is_core][rd[i] <= best * (1 + 1e-12)].tolist())
        assert got[i] in near
        if exact == near:
            assert got[i] == min(exact)
        assert dist[i] == pytest.approx(2 * math.asin(math.sqrt(best)) * R, rel=1e-9, abs=1e-12)


@settings(max_examples=25, **SETTINGS)
@given(scenes(), st.integers(0, 2**32 - 1))
def test_link_clusters_brute_force(scene, seed):
    lat, lon, eps_km, rng, in_a = _points_of(scene, seed)
    la = rng.integers(0, 5, len(lat))
    lb = rng.integers(0, 5, len(lat))
    pairs = link_clusters(lat[in_a], lon[in_a], la[in_a], lat[~in_a], lon[~in_a], lb[~in_a],
                          eps_km=eps_km)
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 2
    rd = rdist_matrix(lat[in_a], lon[in_a], lat[~in_a], lon[~in_a]) <= threshold(eps_km)
    ia, ib = np.nonzero(rd)
    expected = sorted(set(zip(la[in_a][ia].tolist(), lb[~in_a][ib].tolist())))
    assert [tuple(p) for p in pairs.tolist()] == expected


# --------------------------------------------------------------------------- validation

def test_validation_lists_every_problem():
    with pytest.raises(ParameterError) as err:
        dbscan_sphere([0.0, 91.0, np.nan], [0.0, 181.0], [1.0, -1.0, np.inf, 2.0], eps_km=-1.0,
                      min_weight=0.0, n_threads=0)
    msg = str(err.value)
    for part in ("lat_deg and lon_deg differ in length", "lat_deg has 1 non-finite",
                 "outside [-90, 90]", "outside [-180, 180]", "weight length 4",
                 "weight has 2 negative or non-finite", "eps_km must be", "min_weight must be",
                 "n_threads must be"):
        assert part in msg, (part, msg)
    with pytest.raises(ParameterError, match="eps_km"):
        dbscan_sphere([0.0], [0.0], eps_km=math.pi * R, min_weight=1.0)
    with pytest.raises(ParameterError) as err:
        nearest_core([[0.0]], [0.0], [0.0], [0.0], [0.5], eps_km=float("nan"))
    msg = str(err.value)
    assert "lat_deg must be 1-D" in msg and "core_label must be integers" in msg
    assert "eps_km" in msg
    with pytest.raises(ParameterError) as err:
        link_clusters([0.0], [0.0], [0, 1], [0.0], [200.0], [0], eps_km=1.0)
    msg = str(err.value)
    assert "label_a length 2" in msg and "outside [-180, 180]" in msg


# --------------------------------------------------------------------------- kernels, dense data

def test_radix_sort_is_a_stable_argsort():
    from stclusters.clusters import _grid

    rng = np.random.default_rng(3)
    for n, nbits in ((0, 5), (1, 0), (7, 0), (1000, 1), (5000, 11), (70_000, 12), (200_000, 33),
                     (100_000, 62)):
        key = rng.integers(0, 2 ** nbits, n, dtype=np.int64) if nbits else np.zeros(n, np.int64)
        if n > 10:
            key[: n // 3] = key[0]  # many ties
        idx = rng.permutation(n).astype(np.int64)
        before = key.copy(), idx.copy()
        skey, sidx = _grid.radix_sort(key, idx, nbits)
        ref = np.argsort(key, kind="stable")
        np.testing.assert_array_equal(sidx, idx[ref])
        np.testing.assert_array_equal(skey, key[ref])
        np.testing.assert_array_equal(key, before[0])  # inputs untouched
        np.testing.assert_array_equal(idx, before[1])


def test_sort_within_cells_is_a_stable_lexsort_per_cell():
    from stclusters.clusters import _grid

    rng = np.random.default_rng(4)
    n = 20_000
    k1 = rng.integers(0, 5, n).astype(float)
    k2 = rng.integers(0, 3, n).astype(float)
    k3 = rng.random(n).round(1)
    cell_start = np.r_[0, np.sort(rng.choice(np.arange(1, n), 300, replace=False)), n]
    for nkeys in (1, 2, 3):
        order = rng.permutation(n).astype(np.int64)
        got = order.copy()
        keys = (k1, k2, k3)[:nkeys]
        _grid.sort_within_cells(got, cell_start, *(keys + (k1,) * (3 - nkeys)), nkeys)
        for s, e in zip(cell_start[:-1], cell_start[1:]):
            seg = order[s:e]
            ref = seg[np.lexsort(tuple(k[seg] for k in reversed(keys)))]  # lexsort is stable
            np.testing.assert_array_equal(got[s:e], ref)


def test_tiny_eps_over_the_world_uses_the_wide_grid():
    """eps 1 mm over the whole globe: > 62 key bits, cells sorted key by key."""
    rng = np.random.default_rng(5)
    lat = rng.uniform(-90, 90, 400)
    lon = rng.uniform(-180, 180, 400)
    lat = np.r_[lat, lat[:50], 0.0, math.degrees(1e-6 / R)]  # duplicates, one exact-eps pair
    lon = np.r_[lon, lon[:50], 10.0, 10.0]
    w = np.ones(lat.shape[0])
    assert_matches_oracle(lat, lon, w, 1e-6, 2.0)


def _dense_scene(rng, n_per, spread_km):
    centres = [(0.0, 0.0), (0.0, 90.0), (89.9, 10.0), (45.0, -120.0), (-30.0, 179.99)]
    lat, lon = [], []
    for c_lat, c_lon in centres:  # every cell_axis choice, dateline and pole included
        lat.append(np.clip(c_lat + rng.normal(0, spread_km / R * 57.3, n_per), -90, 90))
        coslat = max(math.cos(math.radians(c_lat)), 1e-3)
        lon.append(wrap_lon(c_lon + rng.normal(0, spread_km / (R * coslat) * 57.3, n_per)))
    return np.concatenate(lat), np.concatenate(lon)


def test_nearest_core_dense_cells_brute_force():
    """Hundreds of targets per cell: the slab skip must not change any answer."""
    rng = np.random.default_rng(6)
    eps_km = 13.0
    tlat, tlon = _dense_scene(rng, 2000, 15.0)
    tlat, tlon = np.round(tlat, 2), np.round(tlon, 2)  # ties in distance and duplicates
    label = rng.integers(0, 7, tlat.shape[0])
    qlat, qlon = _dense_scene(rng, 300, 25.0)
    qlat, qlon = np.r_[qlat, tlat[:200]], np.r_[qlon, tlon[:200]]
    got, dist = nearest_core(qlat, qlon, tlat, tlon, label, eps_km=eps_km)
    rd = rdist_matrix(qlat, qlon, tlat, tlon)
    rd = np.where(rd <= threshold(eps_km), rd, np.inf)
    best = rd.min(axis=1)
    found = np.isfinite(best)
    assert found.sum() > 1000 and (~found).sum() > 10
    np.testing.assert_array_equal(got[~found], -1)
    for i in np.flatnonzero(found):
        assert got[i] == label[rd[i] == best[i]].min()
        assert dist[i] == 2 * math.asin(math.sqrt(best[i])) * R


def test_link_clusters_many_labels_per_cell():
    """More distinct label pairs per cell than the parallel pass stores: the serial rest."""
    rng = np.random.default_rng(8)
    eps_km = 5.0
    lat, lon = _dense_scene(rng, 400, 6.0)
    in_a = rng.random(lat.shape[0]) < 0.5
    la = rng.integers(0, 30, lat.shape[0])
    lb = rng.integers(0, 30, lat.shape[0])
    pairs = link_clusters(lat[in_a], lon[in_a], la[in_a], lat[~in_a], lon[~in_a], lb[~in_a],
                          eps_km=eps_km)
    rd = rdist_matrix(lat[in_a], lon[in_a], lat[~in_a], lon[~in_a]) <= threshold(eps_km)
    ia, ib = np.nonzero(rd)
    expected = sorted(set(zip(la[in_a][ia].tolist(), lb[~in_a][ib].tolist())))
    assert len(expected) > 500
    assert [tuple(p) for p in pairs.tolist()] == expected


@settings(max_examples=60, **SETTINGS)
@given(scenes())
def test_matches_sklearn_with_sub_boxes_everywhere(scene):
    """Every cell with >= 2 points gets sub-boxes: the estimate path must decide like the oracle."""
    from stclusters.clusters import dbscan as dbscan_mod

    lat, lon, w, eps_km, min_weight = scene
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dbscan_mod, "_DENSE_CELL", 2)
        assert_matches_oracle(lat, lon, w, eps_km, min_weight)


def test_sub_box_estimate_changes_no_core_flag():
    """Dense cells, non-dyadic weights, thresholds from low to near the densest sums."""
    from stclusters.clusters import dbscan as dbscan_mod

    rng = np.random.default_rng(9)
    lat, lon = _dense_scene(rng, 6000, 10.0)  # dozens of cells with >= 256 points at 13 km
    lat, lon = np.round(lat, 3), np.round(lon, 3)
    w = rng.random(lat.shape[0]) * 0.3 + 0.01
    for eps_km, mw in ((13.0, 300.0), (13.0, 500.0), (13.0, 600.0), (4.0, 40.0), (4.0, 80.0)):
        fast = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=mw)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dbscan_mod, "_DENSE_CELL", 10**12)  # no sub-boxes
            plain = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=mw)
        assert 0 < fast.is_core.sum() < lat.shape[0]
        assert fast.is_core.tobytes() == plain.is_core.tobytes()
        assert fast.labels.tobytes() == plain.labels.tobytes()
