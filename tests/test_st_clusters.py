"""S&T clusters (methodology §5–6) on hand-made points: merge across sources, footprints
counting noise points, the nearer core point winning, economies and US names."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from stclusters import store
from stclusters._naming import _format_name
from stclusters.clusters.st import cluster_points
from stclusters.contributions import WEIGHT_SCALE
from stclusters.params import EARTH_RADIUS_KM, RankParams
from stclusters.ranking import economy_labels

KM_LAT = math.pi * EARTH_RADIUS_KM / 180  # km per degree of latitude


def _points(rows):
    """rows: (source, lat, lon, weight) → a workspace with table ``points``."""
    con = store.connect(None)
    t = pa.table({
        "source": [r[0] for r in rows], "lat": [float(r[1]) for r in rows],
        "lon": [float(r[2]) for r in rows], "weight": [float(r[3]) for r in rows],
        "weight_fx": [int(round(r[3] * WEIGHT_SCALE)) for r in rows],
        "n_contributions": [1] * len(rows)})
    con.register("_p", t)
    con.execute("CREATE TABLE points AS SELECT * FROM _p ORDER BY source, lat, lon")
    return con


def _params(min_weight=3.0, eps_km=10.0):
    p = RankParams()
    for s in ("patent", "publication"):
        p = p.with_source(s, eps_km=eps_km, min_weight=min_weight)
    return p


def _stc(con):
    return {(s, la, lo): (st, core) for s, la, lo, st, core in con.execute(
        "SELECT source, lat, lon, stc, is_core FROM points").fetchall()}


def test_patent_and_publication_clusters_merge_when_cores_are_within_eps():
    rows = [("patent", 0.0, 0.0, 5), ("patent", 0.0, 0.01, 1)]            # core at 0,0
    rows += [("publication", 8 / KM_LAT, 0.0, 4)]                           # core 8 km north
    rows += [("publication", 60 / KM_LAT, 0.0, 9)]                          # far away, heavier
    con = _points(rows)
    report = cluster_points(con, _params(), {"patent": 6, "publication": 13})
    assert {r.source: r.n_clusters for r in report} == {"patent": 1, "publication": 2}
    st = _stc(con)
    assert st[("patent", 0.0, 0.0)][0] == st[("publication", 8 / KM_LAT, 0.0)][0]
    far = st[("publication", 60 / KM_LAT, 0.0)][0]
    assert far != st[("patent", 0.0, 0.0)][0]
    # Numbered by the heaviest core point: the far cluster (weight 9) comes first.
    assert far == 0 and st[("patent", 0.0, 0.0)][0] == 1


def test_noise_point_of_another_source_inside_a_footprint_counts():
    rows = [("patent", 0.0, 0.0, 5)]                          # a patent core point
    rows += [("publication", 5 / KM_LAT, 0.0, 1)]             # publication noise, 5 km away
    rows += [("publication", 30 / KM_LAT, 0.0, 1)]            # publication noise, outside
    con = _points(rows)
    cluster_points(con, _params(), {"patent": 5, "publication": 2})
    st = _stc(con)
    inside, core = st[("publication", 5 / KM_LAT, 0.0)]
    assert not core and inside == st[("patent", 0.0, 0.0)][0] >= 0
    assert st[("publication", 30 / KM_LAT, 0.0)][0] == -1


def test_point_in_two_footprints_goes_to_the_nearer_core():
    a, b = 0.0, 16 / KM_LAT                                    # two cores 16 km apart
    rows = [("patent", a, 0.0, 5), ("patent", b, 0.0, 6)]
    rows += [("publication", 7 / KM_LAT, 0.0, 1),              # 7 km from a, 9 km from b
             ("publication", 9 / KM_LAT, 0.0, 1)]              # 9 km from a, 7 km from b
    con = _points(rows)
    cluster_points(con, _params(), {"patent": 11, "publication": 2})
    st = _stc(con)
    assert st[("patent", a, 0.0)][0] != st[("patent", b, 0.0)][0]
    assert st[("publication", 7 / KM_LAT, 0.0)][0] == st[("patent", a, 0.0)][0]
    assert st[("publication", 9 / KM_LAT, 0.0)][0] == st[("patent", b, 0.0)][0]


def test_economy_label_keeps_codes_above_the_threshold():
    con = store.connect(None)
    # country NULL: the point's weight is split across economies (see aggregate_points)
    con.execute("CREATE TABLE points AS SELECT 'patent' AS source, 1.0 AS lat, 1.0 AS lon, "
                "0 AS stc, NULL::VARCHAR AS country, 0::HUGEINT AS weight_fx")
    rows = [("CN", 0.60), ("HK", 0.37), ("US", 0.03), ("??", 0.0)]
    con.execute("CREATE TABLE point_countries (source VARCHAR, lat DOUBLE, lon DOUBLE, "
                "country VARCHAR, weight_fx BIGINT)")
    for country, w in rows:
        con.execute("INSERT INTO point_countries VALUES ('patent', 1.0, 1.0, ?, ?)",
                    [country, int(w * WEIGHT_SCALE)])
    assert economy_labels(con, min_share_pct=5.0) == {0: "CN/HK"}
    assert economy_labels(con, min_share_pct=2.0) == {0: "CN/HK/US"}
    assert economy_labels(con, min_share_pct=50.0) == {0: "CN"}


@pytest.mark.parametrize("rows, expected", [
    ([0, 1], "San Jose–San Francisco, CA"),
    ([2, 3], "Washington, DC–Baltimore, MD"),
    ([4, 5], "Shenzhen–Hong Kong"),
    ([4, 0], "Shenzhen–San Jose, CA"),
])
def test_names_carry_us_state_codes(rows, expected):
    names = ["San Jose", "San Francisco", "Washington", "Baltimore", "Shenzhen", "Hong Kong"]
    countries = ["US", "US", "US", "US", "CN", "HK"]
    admin1 = ["CA", "CA", "DC", "MD", "30", "HCW"]
    assert _format_name(rows, names, countries, admin1) == expected


def test_cluster_ids_do_not_depend_on_point_order():
    rng = np.random.default_rng(0)
    rows = [("patent", float(la), float(lo), float(w)) for la, lo, w in zip(
        rng.normal(45, 0.05, 60).round(4), rng.normal(7, 0.05, 60).round(4), rng.uniform(0, 2, 60))]
    a, b = _points(rows), _points(list(reversed(rows)))
    for con in (a, b):
        cluster_points(con, _params(min_weight=4, eps_km=5), {"patent": 60})
    q = "SELECT source, lat, lon, src_label, is_core, stc FROM points ORDER BY source, lat, lon"
    assert a.execute(q).fetchall() == b.execute(q).fetchall()


def test_later_clusters_with_a_taken_name_get_their_own():
    from stclusters._naming import _later_duplicates

    names = ["A", "B", "A", "A", "C"]
    assert _later_duplicates(names, np.arange(5)).tolist() == [False, False, True, True, False]
    # The heaviest carrier keeps the name, whatever its number.
    assert _later_duplicates(names, np.array([3, 1, 0, 2, 4])).tolist() == [True, False, True, False, False]
