"""Threshold and parameter sweeps against the one-setting engine (issue 9 §2).

Every setting of a sweep must equal :func:`dbscan_sphere` there, byte for byte (labels with
border points, core flags, cluster count, representatives in order); ``dbscan_sphere`` itself
is checked against scikit-learn in ``test_dbscan_oracle.py``. The core flags are also checked
against a brute-force evaluation of the shared neighbourhood-weight definition (exact integer
sums of the fixed-point weights), with weights whose float sums are not exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stclusters.clusters import _grid
from stclusters.clusters.dbscan import EARTH_RADIUS_KM, dbscan_sphere
from stclusters.clusters.sweep import sweep_grid, sweep_min_weight
from stclusters.errors import ParameterError

R = EARTH_RADIUS_KM
SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CENTRES = [(0.0, 179.995), (12.0, -179.99), (89.995, 30.0), (-90.0, 0.0), (48.85, 2.35),
           (-33.9, 151.2)]


# --------------------------------------------------------------------------- helpers

def fixed_nw(lat, lon, w, eps_km) -> tuple[np.ndarray, int]:
    """Brute-force fixed-point neighbourhood weight (all pairs, the oracle's haversine test)."""
    la = np.radians(lat)[:, None]
    lo = np.radians(lon)[:, None]
    s0 = np.sin(0.5 * (la - la.T))
    s1 = np.sin(0.5 * (lo - lo.T))
    rd = s0 * s0 + np.cos(la) * np.cos(la.T) * s1 * s1
    t = math.sin(0.5 * (eps_km / R))
    wq, bits = _grid.fixed_point(np.asarray(w, float))
    within = rd <= t * t
    return np.array([int(wq[row].sum()) for row in within], dtype=object), bits


def assert_same(a, b) -> None:
    assert a.n_clusters == b.n_clusters
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.is_core.tobytes() == b.is_core.tobytes()
    assert a.representative.tobytes() == b.representative.tobytes()


@st.composite
def weighted_scenes(draw):
    """Clumps (dateline, poles, anywhere), collisions from rounding, exact duplicates, and
    integer, dyadic or arbitrary fractional weights."""
    eps_km = draw(st.sampled_from([0.05, 1.0, 13.0, 60.0]) | st.floats(0.1, 200.0))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            c_lat, c_lon = draw(st.sampled_from(CENTRES))
        else:
            c_lat, c_lon = draw(st.floats(-89.0, 89.0)), draw(st.floats(-180.0, 180.0))
        m = draw(st.integers(1, 60))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        spread = eps_km * draw(st.sampled_from([0.3, 1.0, 3.0]))
        lat = np.clip(c_lat + np.degrees(rng.normal(0, spread, m) / R), -90, 90)
        coslat = max(math.cos(math.radians(c_lat)), 1e-3)
        lon = (c_lon + np.degrees(rng.normal(0, spread, m) / (R * coslat)) + 180) % 360 - 180
        if draw(st.booleans()):
            digits = draw(st.integers(1, 4))
            lat, lon = np.round(lat, digits), np.clip(np.round(lon, digits), -180, 180)
        parts.append((lat, lon))
    lat = np.concatenate([p[0] for p in parts])
    lon = np.concatenate([p[1] for p in parts])
    n_dup = draw(st.integers(0, 4))
    if n_dup:
        pick = np.asarray(draw(st.lists(st.integers(0, len(lat) - 1), min_size=n_dup,
                                        max_size=n_dup)))
        lat, lon = np.r_[lat, lat[pick]], np.r_[lon, lon[pick]]
    n = len(lat)
    kind = draw(st.sampled_from(["integer", "dyadic", "fraction", "float"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "integer":
        w = rng.integers(0, 4, n).astype(float)
    elif kind == "dyadic":
        w = rng.integers(0, 13, n) / 4
    elif kind == "fraction":  # 1 / team size, summed per place: float sums are not exact
        w = 1.0 / rng.integers(1, 8, n) + (rng.random(n) < 0.3) / rng.integers(1, 8, n)
    else:
        w = rng.random(n) * 3
    return lat, lon, w, eps_km


# --------------------------------------------------------------------------- the sweep

@settings(max_examples=120, **SETTINGS)
@given(weighted_scenes(), st.data())
def test_every_threshold_equals_dbscan_sphere(scene, data):
    lat, lon, w, eps_km = scene
    nw, bits = fixed_nw(lat, lon, w, eps_km)
    exact = sorted({math.ldexp(int(v), -bits) for v in nw if v > 0})
    assert exact, "every scene has a positive weight somewhere"
    # thresholds exactly at neighbourhood weights, between them, and around the extremes
    picks = data.draw(st.lists(st.sampled_from(exact), min_size=1, max_size=6))
    between = [0.5 * (a + b) for a, b in zip(exact, exact[1:])][:3]
    thresholds = sorted(set(picks + between + [exact[0], exact[-1], exact[-1] * 1.5]))
    # one thread: small inputs, where thread start-up would dominate on a loaded machine
    sw = sweep_min_weight(lat, lon, w, eps_km=eps_km, min_weights=thresholds, n_threads=1)
    assert sw.min_weight.tolist() == thresholds
    for k, m in enumerate(thresholds):
        one = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=m, n_threads=1)
        assert_same(sw.result(m), one)
        np.testing.assert_array_equal(sw.core_labels(m), np.where(one.is_core, one.labels, -1))
        assert sw.n_clusters[k] == one.n_clusters
        assert sw.n_core[k] == one.is_core.sum()
        assert sw.core_weight[k] == pytest.approx(w[one.is_core].sum(), rel=1e-12, abs=1e-12)
        # the shared definition: exact integer sum >= ceil(m * 2**bits)
        m_fixed = _grid.fixed_threshold(m, bits)
        np.testing.assert_array_equal(one.is_core, np.array([v >= m_fixed for v in nw]))
    # a threshold inside the range that was not listed
    mid = 0.5 * (thresholds[0] + thresholds[-1])
    assert_same(sw.result(mid), dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=mid,
                                              n_threads=1))


def test_nested_clusterings_and_a_dense_world():
    """Hundreds of points per cell (sub-boxes), non-dyadic weights, 60 thresholds."""
    rng = np.random.default_rng(3)
    n = 4000
    lat = np.r_[rng.normal(51.5, 0.03, n), rng.normal(51.0, 0.3, n // 2)]
    lon = np.r_[rng.normal(-0.1, 0.045, n), rng.normal(0.5, 0.4, n // 2)]
    lat, lon = np.round(lat, 3), np.round(lon, 3)
    w = 1.0 / rng.integers(1, 6, lat.shape[0])
    thresholds = np.geomspace(0.5, 1200.0, 60)
    sw = sweep_min_weight(lat, lon, w, eps_km=4.0, min_weights=thresholds)
    assert np.all(np.diff(sw.n_core) <= 0) and sw.n_core[0] > sw.n_core[-1]
    assert (sw.n_core > 0).sum() > 40
    assert sw.n_clusters.max() > 3
    prev = None
    for m in thresholds[::6]:
        res = sw.result(m)
        assert_same(res, dbscan_sphere(lat, lon, w, eps_km=4.0, min_weight=m))
        if prev is not None:  # nested: a higher threshold's core points never join
            both = res.is_core  # two clusters of the lower threshold
            pairs = set(zip(res.labels[both].tolist(), prev.labels[both].tolist()))
            assert len(pairs) == len({a for a, _ in pairs})
        prev = res


def test_grid_equals_per_setting_runs():
    rng = np.random.default_rng(5)
    lat = np.r_[rng.normal(35.7, 0.2, 700), rng.normal(-0.5, 0.05, 200)]
    lon = np.r_[rng.normal(139.7, 0.25, 700), (rng.normal(179.98, 0.05, 200) + 180) % 360 - 180]
    w = rng.random(lat.shape[0]) + 0.2
    eps = [13.0, 2.0, 5.5]
    mws = [40.0, 3.0, 12.5, 3.0]
    plane = sweep_grid(lat, lon, w, eps_kms=eps, min_weights=mws)
    assert plane.eps_km.tolist() == [2.0, 5.5, 13.0]
    assert plane.min_weight.tolist() == [3.0, 12.5, 40.0]
    assert plane.n_clusters.shape == (3, 3)
    for i, e in enumerate(plane.eps_km.tolist()):
        for k, m in enumerate(plane.min_weight.tolist()):
            one = dbscan_sphere(lat, lon, w, eps_km=e, min_weight=m)
            assert plane.n_clusters[i, k] == one.n_clusters
            assert plane.n_core[i, k] == one.is_core.sum()
            assert_same(plane.result(e, m), one)
    assert plane.n_clusters.max() > 1


def test_input_order_does_not_matter():
    rng = np.random.default_rng(8)
    lat, lon = np.round(rng.normal(40, 0.2, 1500), 3), np.round(rng.normal(-3.7, 0.2, 1500), 3)
    w = 1.0 / rng.integers(1, 9, 1500)
    mws = np.linspace(1, 60, 25)
    a = sweep_min_weight(lat, lon, w, eps_km=3.0, min_weights=mws)
    perm = rng.permutation(1500)
    b = sweep_min_weight(lat[perm], lon[perm], w[perm], eps_km=3.0, min_weights=mws[::-1])
    for name in ("n_clusters", "n_core", "core_weight"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    np.testing.assert_array_equal(a.result(20.0).labels[perm], b.result(20.0).labels)


def test_sub_boxes_everywhere_change_nothing(monkeypatch):
    from stclusters.clusters import dbscan as dbscan_mod

    rng = np.random.default_rng(11)
    lat, lon = rng.normal(-23.5, 0.05, 1200), rng.normal(-46.6, 0.05, 1200)
    w = rng.random(1200)
    mws = [2.0, 10.0, 30.0]
    plain = sweep_min_weight(lat, lon, w, eps_km=2.0, min_weights=mws)
    monkeypatch.setattr(dbscan_mod, "_DENSE_CELL", 2)
    boxed = sweep_min_weight(lat, lon, w, eps_km=2.0, min_weights=mws)
    assert boxed.n_core.tobytes() == plain.n_core.tobytes()
    for m in mws:
        assert_same(boxed.result(m), plain.result(m))


def test_edge_cases():
    empty = sweep_min_weight([], [], eps_km=1.0, min_weights=[1.0, 2.0])
    assert empty.n_clusters.tolist() == [0, 0] and empty.result(1.5).labels.shape == (0,)
    zero = sweep_min_weight([1.0, 1.0], [2.0, 2.0], [0.0, 0.0], eps_km=1.0, min_weights=[0.5])
    assert zero.n_core.tolist() == [0] and zero.result(0.5).labels.tolist() == [-1, -1]
    one = sweep_min_weight([10.0], [20.0], eps_km=1.0, min_weights=[1.0, 2.0])
    assert one.n_clusters.tolist() == [1, 0] and one.core_labels(1.0).tolist() == [0]


def test_validation_lists_every_problem():
    with pytest.raises(ParameterError) as exc:
        sweep_min_weight([1.0, 95.0], [2.0], [-1.0], eps_km=0.0, min_weights=[1.0, 0.0, np.nan],
                         n_threads=0)
    msg = str(exc.value)
    for part in ("lat_deg", "differ in length", "weight", "eps_km", "min_weights", "n_threads"):
        assert part in msg, part
    with pytest.raises(ParameterError) as exc:
        sweep_grid([1.0], [2.0], eps_kms=[1.0, -2.0, 1e9], min_weights=[])
    msg = str(exc.value)
    assert "eps_kms[1]" in msg and "eps_kms[2]" in msg and "min_weights must not be empty" in msg
    sw = sweep_min_weight([1.0, 1.0], [2.0, 2.0], eps_km=1.0, min_weights=[1.0, 2.0])
    with pytest.raises(ParameterError, match="outside the swept range"):
        sw.result(2.5)
    with pytest.raises(ParameterError, match="finite number > 0"):
        sw.core_labels(-1.0)
    plane = sweep_grid([1.0], [2.0], eps_kms=[1.0], min_weights=[1.0])
    with pytest.raises(ParameterError, match="not one of the swept radii"):
        plane.result(2.0, 1.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 12), st.sampled_from([3, 7, 11])), min_size=1,
                max_size=8),
       st.integers(1, 6), st.sampled_from([3, 7]))
def test_non_binary_fractions_reach_their_exact_threshold(clumps, num, den):
    """Weights such as 1/3 (one of three inventors) are not exact in binary; a neighbourhood
    whose *real* sum equals ``min_weight`` reaches it, in one run and in a sweep, as an exact
    rational count says (clumps of points 100 m apart, 500 km from each other: no distance
    is near eps)."""
    from fractions import Fraction

    lat, lon, w, real = [], [], [], []
    for c, (k, d) in enumerate(clumps):
        for j in range(k):
            lat.append(10.0 + 4.5 * c + 0.0009 * j)
            lon.append(20.0)
            w.append(1.0 / d)
        real.append(Fraction(k, d))
    m = num / den
    res = dbscan_sphere(lat, lon, w, eps_km=13.0, min_weight=m)
    expected = np.repeat([r >= Fraction(num, den) for r in real], [k for k, _ in clumps])
    assert np.array_equal(res.is_core, expected)
    sw = sweep_min_weight(lat, lon, w, eps_km=13.0, min_weights=[m / 2, m, 2 * m])
    got = sw.result(m)
    assert np.array_equal(got.labels, res.labels) and np.array_equal(got.is_core, res.is_core)
