"""Integration shares and collaboration matrices (``stclusters.regions.integration``), checked
against an independent plain-Python count: exact fractions over documents written by the
test, where every true share is known by construction (a ranked generic table, and random
documents from hypothesis); then the real USPTO samples; the generated run (labelled
SYNTHETIC) end to end through the ``integration`` command."""

from __future__ import annotations

import csv
import json
import re
import random
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import stclusters
from conftest import SHARED_DATA
from stclusters import demo
from stclusters.cli import app
from stclusters.errors import ParameterError
from stclusters.params import RankParams
from stclusters.regions import load_region
from stclusters.regions.integration import (OTHER, YearFilter, collaboration_matrix,
                                            default_sides, integration_figure,
                                            integration_shares, year_filter)

GBA = load_region("GBA")
#: name → (lat, lon, economy, GBA member or None): exact coordinates, stated economies.
PLACES = {
    "HK-Central": (22.2783, 114.1747, "HK", "Hong Kong"),
    "HK-Shatin": (22.3833, 114.1880, "HK", "Hong Kong"),
    "Macao": (22.1987, 113.5439, "MO", "Macao"),
    "Shenzhen": (22.5431, 114.0579, "CN", "Shenzhen"),
    "Guangzhou": (23.1291, 113.2644, "CN", "Guangzhou"),
    "Dongguan": (23.0207, 113.7518, "CN", "Dongguan"),
    "Zhuhai": (22.2710, 113.5767, "CN", "Zhuhai"),
    "Beijing": (39.9042, 116.4074, "CN", None),
    "Shanghai": (31.2304, 121.4737, "CN", None),
    "London": (51.5074, -0.1278, "GB", None),
}
GROUPS = {"PRD-9": set(GBA.groups["PRD-9"]), "HK-MO": {"Hong Kong", "Macao"}}
#: A region of two cities far from the GBA (polygons, degrees), for two-region matrices.
NORTH_YAML = """id: NORTH
name: Beijing and Shanghai
members:
  - name: Beijing
    economy: CN
    polygons: [[[116.0, 39.6], [116.8, 39.6], [116.8, 40.2], [116.0, 40.2]]]
  - name: Shanghai
    economy: CN
    polygons: [[[121.0, 30.9], [121.9, 30.9], [121.9, 31.5], [121.0, 31.5]]]
"""
NORTH_OF = {"Beijing": "Beijing", "Shanghai": "Shanghai"}


# ----------------------------------------------------------------------------- plain count

def _in_side(place: str, side: str, places: dict) -> bool:
    """The test's own reading of a side name (member, group, economy)."""
    member, economy = places[place][3], places[place][2]
    if side in GROUPS:
        return member in GROUPS[side]
    if len(side) == 2 and side.isupper():
        return economy == side
    return member == side


def _weights(doc: dict) -> list[tuple[str, Fraction]]:
    """(place, weight) of each used row: 1 / contributors with a used row / its used rows."""
    used = [r for r in doc["rows"] if r["used"]]
    n = len({r["seq"] for r in used})
    per = Counter(r["seq"] for r in used)
    return [(r["place"], Fraction(1, n * per[r["seq"]])) for r in used]


def plain_shares(docs: list[dict], focal: str, partner: str, places: dict = PLACES) -> dict:
    """(source, year) → (n_docs, n_with, weight, weight_with) of ``focal`` with ``partner``."""
    out: dict = defaultdict(lambda: [0, 0, Fraction(0), Fraction(0)])
    for d in docs:
        rows = _weights(d)
        w_focal = sum((w for p, w in rows if _in_side(p, focal, places)), Fraction(0))
        if not any(_in_side(p, focal, places) for p, _ in rows):
            continue
        with_p = any(_in_side(p, partner, places) and not _in_side(p, focal, places)
                     for p, _ in rows)
        acc = out[(d["source"], d["year"])]
        acc[0] += 1
        acc[1] += with_p
        acc[2] += w_focal
        acc[3] += w_focal if with_p else 0
    return dict(out)


def plain_matrix(docs: list[dict], unit_of, units: list[str]) -> dict:  # noqa: ANN001
    """(source, a, b) → (n_docs, weight) under the documented rules; ``unit_of(place)``."""
    out: dict = defaultdict(lambda: [0, Fraction(0)])
    for d in docs:
        rows = _weights(d)
        w: dict = defaultdict(Fraction)
        for p, x in rows:
            w[unit_of(p) or OTHER] += x
        if not any(u != OTHER for u in w):
            continue
        total = sum(w.values(), Fraction(0))
        for a in w:
            for b in w:
                if a == OTHER and b == OTHER:
                    continue
                cell = out[(d["source"], a, b)]
                cell[0] += 1 if (a != b or len(w) == 1) else 0
                cell[1] += w[a] * w[b] / total
    return dict(out)


def _member(place: str) -> str | None:
    return PLACES[place][3]


# ----------------------------------------------------------------------------- generated data

def _generate(seed: int, n_docs: int) -> list[dict]:
    """Documents with 1–6 contributors, a few with two addresses, some rows too coarse to
    be used (admin1) and some documents outside the windows (2016)."""
    rng = random.Random(seed)
    names = list(PLACES)
    weights = [6, 3, 2, 6, 4, 2, 1, 3, 2, 2]
    docs = []
    for i in range(n_docs):
        source = rng.choice(("patent", "publication"))
        year = rng.choice((2016, 2018, 2019, 2020, 2021))
        rows = []
        for seq in range(rng.randint(1, 6)):
            coarse = rng.random() < 0.08
            for addr in range(2 if rng.random() < 0.1 else 1):
                rows.append({"seq": seq, "addr": addr, "place": rng.choices(names, weights)[0],
                             "coarse": coarse, "used": year != 2016 and not coarse})
        docs.append({"source": source, "doc_id": f"D{i}", "year": year, "rows": rows})
    return docs


def _write_csv(docs: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["doc_id", "source", "year", "contributor_seq", "address_seq", "lat", "lon",
                    "country", "precision"])
        for d in docs:
            for r in d["rows"]:
                lat, lon, country, _ = PLACES[r["place"]]
                w.writerow([d["doc_id"], d["source"], d["year"], r["seq"], r["addr"], lat, lon,
                            country, "admin1" if r["coarse"] else "point"])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The one generated run of the module (labelled SYNTHETIC: the data are made up),
    live and written to ``<folder>/run`` for the command."""
    docs = _generate(seed=10, n_docs=400)
    folder = tmp_path_factory.mktemp("integ")
    _write_csv(docs, folder / "coauthors.csv")
    params = (RankParams().with_source("patent", first_year=2017, last_year=2021, min_weight=3)
              .with_source("publication", first_year=2017, last_year=2021, min_weight=3))
    res = stclusters.rank([str(folder / "coauthors.csv")], params=params, label="SYNTHETIC")
    res.write(folder / "run")
    return docs, res, folder / "run"


def test_places_fall_where_the_test_says():
    """Precondition of every plain count: the region puts each test place in its member."""
    lat, lon, country, member = (np.array(v, dtype=object) for v in zip(*PLACES.values()))
    got = GBA.assign(lat.astype(float), lon.astype(float), country=country,
                     precision=np.array(["point"] * len(PLACES), dtype=object))
    assert list(got) == list(member)


def test_shares_match_the_plain_count_both_rules_both_directions(generated):
    docs, res, _ = generated
    used = res.con.execute("SELECT count(*) FROM contributions WHERE status = 'used'").fetchall()
    assert used[0][0] == sum(r["used"] for d in docs for r in d["rows"])
    got = integration_shares(res.con, GBA)
    rows = {(r["focal"], r["partner"], r["source"], r["year"], r["counting"]): r
            for r in got.to_pylist()}
    pairs = default_sides(GBA)
    assert ("Hong Kong", "CN") in pairs and ("Macao", "PRD-9") in pairs
    assert ("Shenzhen", "HK-MO") in pairs and ("PRD-9", "Hong Kong") in pairs
    expected_rows = 0
    for focal, partner in pairs:
        for (source, year), (n, n_with, w, w_with) in plain_shares(docs, focal, partner).items():
            expected_rows += 2
            whole = rows[(focal, partner, source, year, "whole")]
            frac = rows[(focal, partner, source, year, "fractional")]
            assert (whole["n_docs"], whole["n_docs_with_partner"]) == (n, n_with)
            assert whole["share_pct"] == pytest.approx(100 * n_with / n)
            assert frac["weight"] == pytest.approx(float(w), abs=1e-12)
            assert frac["weight_with_partner"] == pytest.approx(float(w_with), abs=1e-12)
            assert frac["share_pct"] == pytest.approx(float(100 * w_with / w), abs=1e-9)
    assert got.num_rows == expected_rows  # no row the plain count does not have
    # Hong Kong does work with the mainland here, and fractional < whole when it does.
    hk = [r for r in got.to_pylist() if r["focal"] == "Hong Kong" and r["partner"] == "CN"]
    assert any(r["n_docs_with_partner"] > 0 for r in hk)


def test_matrix_matches_the_plain_count(generated):
    docs, res, _ = generated
    units = list(GBA.member_names) + [OTHER]
    expected = plain_matrix(docs, _member, units)
    for counting, col in (("whole", "n_docs"), ("fractional", "weight")):
        m = collaboration_matrix(res.con, GBA, counting=counting)
        assert m.num_rows == 2 * (len(units) ** 2 - 1)  # two metrics, (other, other) left out
        cells = {(r["source"], r["a"], r["b"]): r[col] for r in m.to_pylist()}
        for (source, a, b), value in cells.items():
            want = expected.get((source, a, b), [0, Fraction(0)])
            if counting == "whole":
                assert value == want[0], (source, a, b)
            else:
                assert value == pytest.approx(float(want[1]), abs=1e-12), (source, a, b)
            assert value == cells[(source, b, a)]  # symmetric
    # Fractional rows sum (over every unit and (other)) to the member's fractional count.
    m = collaboration_matrix(res.con, GBA, counting="fractional")
    rows = defaultdict(float)
    for r in m.to_pylist():
        rows[(r["source"], r["a"])] += r["weight"]
    for d_source in ("patent", "publication"):
        for member in ("Hong Kong", "Shenzhen"):
            own = sum(float(w) for d in docs if d["source"] == d_source
                      for p, w in _weights(d) if _member(p) == member)
            assert rows[(d_source, member)] == pytest.approx(own, abs=1e-9)
    # A year filter keeps that year's documents only; a list keeps those years only.
    hk_years = {d["year"] for d in docs
                if any(r["used"] and _member(r["place"]) == "Hong Kong" for r in d["rows"])}
    for years, kept in ((2021, {2021}), ("2019-2020", {2019, 2020}), ([2018, 2021], {2018, 2021}),
                        (["2018", "2020-2021"], {2018, 2020, 2021})):
        m_y = collaboration_matrix(res.con, GBA, counting="whole", years=years)
        exp_y = plain_matrix([d for d in docs if d["year"] in kept], _member, units)
        for r in m_y.to_pylist():
            assert r["n_docs"] == exp_y.get((r["source"], r["a"], r["b"]), [0])[0], years
        s_y = integration_shares(res.con, GBA, sides=[("Hong Kong", "CN")], years=years)
        assert set(s_y.column("year").to_pylist()) == kept & hk_years, years


def test_years_have_one_reading():
    """API and --year: a year, FIRST-LAST text, a (first, last) pair, or listed years."""
    assert year_filter(None) == YearFilter()
    assert year_filter(2021) == YearFilter(2021, 2021)
    assert year_filter("2019-2021") == year_filter((2019, 2021)) == YearFilter(2019, 2021)
    assert year_filter(["2019-2021"]) == YearFilter(2019, 2021)
    assert year_filter((2019, None)) == YearFilter(2019, None)
    assert year_filter([2021, 2019]) == YearFilter(2019, 2021, (2019, 2021))
    listed = year_filter(["2018", "2020-2021"])
    assert listed == YearFilter(2018, 2021, (2018, 2020, 2021))
    assert listed.label() == "2018, 2020–2021" and YearFilter(2019, 2021).label() == "2019–2021"
    assert listed.as_json() == {"first": 2018, "last": 2021, "only": [2018, 2020, 2021]}
    for bad, match in (("20x", "expected YEAR or FIRST-LAST"),
                       ((2021, 2019), "first year is after"),
                       ("2021-2019", "first year is after"), (["2019-", "2021"], "open range"),
                       (True, "not a year")):
        with pytest.raises(ParameterError, match=match):
            year_filter(bad)


def test_two_regions_and_whole_regions_as_units(generated, tmp_path):
    docs, res, _ = generated
    north_file = tmp_path / "north.yaml"
    north_file.write_text(NORTH_YAML, encoding="utf-8")
    north = load_region(north_file)

    def both(p: str) -> str | None:
        if _member(p):
            return f"GBA:{_member(p)}"
        return f"NORTH:{NORTH_OF[p]}" if p in NORTH_OF else None

    m = collaboration_matrix(res.con, [GBA, north], counting="whole")
    exp = plain_matrix(docs, both, [])
    assert {r["a"] for r in m.to_pylist()} >= {"GBA:Hong Kong", "NORTH:Beijing", OTHER}
    for r in m.to_pylist():
        assert r["n_docs"] == exp.get((r["source"], r["a"], r["b"]), [0])[0]
    whole = collaboration_matrix(res.con, {"GBA": GBA, "North": north}, counting="fractional")
    exp = plain_matrix(docs, lambda p: "GBA" if _member(p) else
                       ("North" if p in NORTH_OF else None), [])
    assert sorted({r["a"] for r in whole.to_pylist()}) == sorted(["GBA", "North", OTHER])
    for r in whole.to_pylist():
        assert r["weight"] == pytest.approx(
            float(exp.get((r["source"], r["a"], r["b"]), [0, 0])[1]), abs=1e-12)
    with pytest.raises(ParameterError, match=r"units overlap: a location \(.*\) is in "
                                             r"'GBA:\w+' and 'PRD-9:\w+'"):
        collaboration_matrix(res.con, [GBA, load_region("PRD-9")])


def test_overlap_check_reuses_each_regions_placement(tmp_path, monkeypatch):
    """Two regions: each is placed once (the overlap check reads those placements)."""
    from stclusters.regions import _integration_units, _located

    calls = []

    def counting(region, keys, **kw):  # noqa: ANN001, ANN003
        calls.append(region.id)
        return assign(region, keys, **kw)

    assign = _located.assign_members
    monkeypatch.setattr(_located, "assign_members", counting)
    monkeypatch.setattr(_integration_units, "assign_members", counting, raising=False)
    north_file = tmp_path / "north.yaml"
    north_file.write_text(NORTH_YAML, encoding="utf-8")
    con = _contributions_con(_generate(seed=3, n_docs=40))
    collaboration_matrix(con, [GBA, load_region(north_file)])
    assert sorted(calls) == ["GBA", "NORTH"]
    con.close()


# ----------------------------------------------------------------------------- hypothesis

def _contributions_table(docs: list[dict]) -> pa.Table:
    """The columns of a run's ``contributions`` that integration reads, weights by the
    test's own rule (fixed point as the engine keeps them)."""
    cols: dict[str, list] = defaultdict(list)
    for d in docs:
        weights = iter(_weights(d))
        for r in d["rows"]:
            lat, lon, country, _ = PLACES[r["place"]]
            w = float(next(weights)[1]) if r["used"] else 0.0
            for k, v in (("doc_id", d["doc_id"]), ("source", d["source"]), ("year", d["year"]),
                         ("contributor_seq", r["seq"]), ("address_seq", r["addr"]),
                         ("lat", lat), ("lon", lon),
                         ("country", country), ("precision", "point"), ("geoname_id", None),
                         ("status", "used" if r["used"] else "coarse_precision"),
                         ("weight", w), ("weight_fx", round(w * 2**52))):
                cols[k].append(v)
    return pa.table({k: pa.array(v, pa.int64() if k in ("geoname_id", "weight_fx") else None)
                     for k, v in cols.items()})


_row = st.fixed_dictionaries({"place": st.sampled_from(list(PLACES)),
                              "used": st.sampled_from([True, True, True, False]),
                              "addresses": st.integers(1, 2)})
_doc = st.fixed_dictionaries({"source": st.sampled_from(["patent", "publication"]),
                              "year": st.integers(2019, 2021),
                              "contributors": st.lists(_row, min_size=1, max_size=5)})


def _contributions_con(docs: list[dict]) -> duckdb.DuckDBPyConnection:
    """A fresh connection whose ``contributions`` are ``docs`` (every row at point level)."""
    con = duckdb.connect()
    con.register("_t", _contributions_table(docs))
    con.execute("CREATE TABLE contributions AS SELECT * FROM _t")
    con.unregister("_t")
    return con


def _docs_from(drawn: list[dict]) -> list[dict]:
    docs = []
    for i, d in enumerate(drawn):
        rows = []
        for seq, c in enumerate(d["contributors"]):
            for addr in range(c["addresses"]):  # a second address: the next place in the list
                place = list(PLACES)[(list(PLACES).index(c["place"]) + addr) % len(PLACES)]
                rows.append({"seq": seq, "addr": addr, "place": place, "used": c["used"]})
        docs.append({"source": d["source"], "doc_id": f"H{i}", "year": d["year"], "rows": rows})
    return docs


@settings(max_examples=5)
@given(st.lists(_doc, min_size=1, max_size=30))
def test_random_documents_match_the_plain_count_in_any_order(drawn):
    docs = _docs_from(drawn)
    table = _contributions_table(docs)
    sides = [("Hong Kong", "CN"), ("HK-MO", "PRD-9"), ("Shenzhen", "HK-MO"), ("Shenzhen", "CN")]
    results = []
    for order in (table, table.take(np.arange(table.num_rows)[::-1])):
        con = duckdb.connect()
        con.register("_t", order)
        con.execute("CREATE TABLE contributions AS SELECT * FROM _t")
        results.append((integration_shares(con, GBA, sides=sides),
                         collaboration_matrix(con, GBA, counting="fractional"),
                         collaboration_matrix(con, GBA, counting="whole")
                         if not results else None))
        con.close()
    # Same numbers, to the last bit, whatever the order of the rows.
    assert results[0][0].equals(results[1][0]) and results[0][1].equals(results[1][1])
    shares, matrix, whole = results[0]
    got = {(r["focal"], r["partner"], r["source"], r["year"], r["counting"]): r
           for r in shares.to_pylist()}
    n_rows = 0
    for focal, partner in sides:
        for (source, year), (n, n_with, w, w_with) in plain_shares(docs, focal, partner).items():
            n_rows += 2
            r = got[(focal, partner, source, year, "whole")]
            assert (r["n_docs"], r["n_docs_with_partner"]) == (n, n_with)
            f = got[(focal, partner, source, year, "fractional")]
            assert f["weight_with_partner"] == pytest.approx(float(w_with), abs=1e-12)
            if w:
                assert f["share_pct"] == pytest.approx(float(100 * w_with / w), abs=1e-9)
    assert shares.num_rows == n_rows
    exp = plain_matrix(docs, _member, [])
    for r in whole.to_pylist():
        assert r["n_docs"] == exp.get((r["source"], r["a"], r["b"]), [0])[0]
    for r in matrix.to_pylist():
        assert r["weight"] == pytest.approx(
            float(exp.get((r["source"], r["a"], r["b"]), [0, 0])[1]), abs=1e-12)


def test_worked_example_of_the_docs():
    """docs/integration.md: one document, two Hong Kong and one Shenzhen contributor."""
    doc = {"source": "publication", "doc_id": "W1", "year": 2021, "rows": [
        {"seq": 0, "addr": 0, "place": "HK-Central", "used": True},
        {"seq": 1, "addr": 0, "place": "HK-Shatin", "used": True},
        {"seq": 2, "addr": 0, "place": "Shenzhen", "used": True}]}
    con = duckdb.connect()
    con.register("_t", _contributions_table([doc]))
    con.execute("CREATE TABLE contributions AS SELECT * FROM _t")
    s = {(r["focal"], r["partner"], r["counting"]): r
         for r in integration_shares(con, GBA).to_pylist()}
    hk = s[("Hong Kong", "CN", "fractional")]
    assert (hk["n_docs"], hk["n_docs_with_partner"]) == (1, 1)
    assert hk["weight"] == pytest.approx(2 / 3) and hk["share_pct"] == pytest.approx(100)
    sz = s[("Shenzhen", "HK-MO", "fractional")]
    assert sz["weight"] == pytest.approx(1 / 3) and sz["share_pct"] == pytest.approx(100)
    assert ("Guangzhou", "HK-MO", "whole") not in s  # no document of its own: no row
    frac = {(r["a"], r["b"]): r["weight"] for r in
            collaboration_matrix(con, GBA, counting="fractional").to_pylist()}
    assert frac[("Hong Kong", "Hong Kong")] == pytest.approx(4 / 9)
    assert frac[("Hong Kong", "Shenzhen")] == pytest.approx(2 / 9)
    assert frac[("Shenzhen", "Shenzhen")] == pytest.approx(1 / 9)
    whole = {(r["a"], r["b"]): r["n_docs"] for r in
             collaboration_matrix(con, GBA, counting="whole").to_pylist()}
    assert whole[("Hong Kong", "Shenzhen")] == 1 and whole[("Hong Kong", "Hong Kong")] == 0
    with pytest.raises(ParameterError, match="no member, group or economy"):
        integration_shares(con, GBA, sides=[("Hong Kong", "Narnia")])
    with pytest.raises(ParameterError, match="no default sides"):
        integration_shares(con, load_region("PRD-9"))
    con.close()


# ----------------------------------------------------------------------------- real samples

@pytest.fixture(scope="module")
def samples():
    files = [SHARED_DATA / "samples" / "uspto" / f"uspto_ipg{d}.xml.gz"
             for d in ("110104.small", "120103.small", "120327.196")]
    # Designs included: the samples' Hong Kong inventors are on design patents.
    params = demo.sample_params().with_source("patent", doc_types=None)
    return stclusters.rank([str(f) for f in files], params=params)


def _real_docs(con: duckdb.DuckDBPyConnection) -> tuple[list[dict], dict]:
    """The run's contributions as the test's documents; each row's member by
    :meth:`Region.assign` row by row; places keyed by row."""
    rows = con.execute("""SELECT source, doc_id, year, contributor_seq, lat, lon, country,
                                 precision, geoname_id, status, weight
                          FROM contributions ORDER BY source, doc_id, contributor_seq,
                                   address_seq""").fetchall()
    members = GBA.assign(np.array([r[4] if r[4] is not None else np.nan for r in rows], float),
                         np.array([r[5] if r[5] is not None else np.nan for r in rows], float),
                         country=np.array([r[6] for r in rows], dtype=object),
                         precision=np.array([r[7] for r in rows], dtype=object),
                         geoname_id=np.array([r[8] for r in rows], dtype=object))
    docs: dict = {}
    places = {}
    for i, (r, m) in enumerate(zip(rows, members)):
        key = f"row{i}"
        places[key] = (r[4], r[5], r[6], m)
        d = docs.setdefault((r[0], r[1]), {"source": r[0], "doc_id": r[1], "year": r[2],
                                           "rows": []})
        d["rows"].append({"seq": r[3], "place": key, "used": r[9] == "used", "w": r[10]})
    return list(docs.values()), places


def test_real_samples_agree_with_the_plain_count(samples):
    docs, places = _real_docs(samples.con)
    in_gba = {places[r["place"]][3] for d in docs for r in d["rows"] if r["used"]}
    assert {"Shenzhen", "Hong Kong"} <= in_gba  # the samples' few GBA rows
    shares = integration_shares(samples.con, GBA)
    for r in shares.to_pylist():
        assert 0 <= r["share_pct"] <= 100
        assert r["n_docs_with_partner"] <= r["n_docs"]
        assert r["weight_with_partner"] <= r["weight"] + 1e-12
    got = {(r["focal"], r["partner"], r["source"], r["year"], r["counting"]): r
           for r in shares.to_pylist()}
    n = 0
    for focal, partner in default_sides(GBA):
        for (source, year), (nd, nw, w, ww) in plain_shares(docs, focal, partner,
                                                            places).items():
            n += 2
            r = got[(focal, partner, source, year, "whole")]
            assert (r["n_docs"], r["n_docs_with_partner"]) == (nd, nw)
            f = got[(focal, partner, source, year, "fractional")]
            assert f["weight"] == pytest.approx(float(w), abs=1e-12)
            assert f["weight_with_partner"] == pytest.approx(float(ww), abs=1e-12)
    assert n == shares.num_rows > 0
    m = collaboration_matrix(samples.con, GBA, counting="whole")
    exp = plain_matrix(docs, lambda p: places[p][3], [])
    cells = {(r["source"], r["a"], r["b"]): r["n_docs"] for r in m.to_pylist()}
    for (source, a, b), v in cells.items():
        assert v == cells[(source, b, a)] == exp.get((source, a, b), [0])[0]


def test_real_samples_cluster_matrix(samples):
    """Ranked clusters as units: contributions meet clusters through points.stc."""
    con = samples.con
    stc_unit = {stc: f"#{rank} {name}" for stc, rank, name in con.execute(
        "SELECT stc, rank, name FROM clusters WHERE cluster_id IN "
        "(SELECT cluster_id FROM ranking)").fetchall()}
    point = {(s, la, lo): stc for s, la, lo, stc in con.execute(
        "SELECT source, lat, lon, stc FROM points").fetchall()}
    docs, _ = _real_docs(con)
    rows = con.execute("SELECT source, lat, lon FROM contributions ORDER BY source, doc_id, "
                       "contributor_seq, address_seq").fetchall()
    unit_of_row = {f"row{i}": stc_unit.get(point.get((s, la, lo))) for i, (s, la, lo)
                   in enumerate(rows)}
    exp = plain_matrix(docs, unit_of_row.get, [])
    m = collaboration_matrix(con, "clusters", counting="fractional")
    assert len({r["a"] for r in m.to_pylist()}) == len(stc_unit) + 1
    off = 0.0
    for r in m.to_pylist():
        assert r["weight"] == pytest.approx(
            float(exp.get((r["source"], r["a"], r["b"]), [0, 0])[1]), abs=1e-12)
        off += r["weight"] if OTHER not in (r["a"], r["b"]) and r["a"] != r["b"] else 0
    assert off > 0  # the samples' clusters do work together
    top3 = collaboration_matrix(con, "clusters", counting="whole", top=3)
    assert len({r["a"] for r in top3.to_pylist()}) == 4


# ----------------------------------------------------------------------------- the command

def test_generated_run_through_the_command(generated, tmp_path):
    """The command on the written run (labelled SYNTHETIC): files, label, same numbers as
    the API, same bytes twice, repeated --year, and one-line errors."""
    _, res, run = generated
    runner = CliRunner()
    out = tmp_path / "integ"
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--counting",
                            "fractional", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Hong Kong" in r.output and "GeoNames" in r.output and "SYNTHETIC" in r.output
    for name in ("integration_shares.csv", "integration_shares.parquet",
                 "collaboration_matrix.csv", "collaboration_matrix.parquet", "integration.png",
                 "integration.svg", "integration.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "integration.json").read_text(encoding="utf-8"))
    assert summary["data_label"] == "SYNTHETIC" and summary["matrix_counting"] == "fractional"
    assert summary["years"] is None
    svg = (out / "integration.svg").read_text(encoding="utf-8")
    assert "SYNTHETIC" in svg and "GeoNames" in svg and "fractional counting" in svg
    with open(out / "integration_shares.csv", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    assert first["data_label"] == "SYNTHETIC"
    # The command's numbers are the API's on the live run.
    api = integration_shares(res.con, GBA)
    assert summary["shares"] == json.loads(json.dumps(api.to_pylist()))
    hk = [x for x in api.to_pylist() if x["focal"] == "Hong Kong"]
    assert hk and all(0 <= x["share_pct"] <= 100 for x in hk)
    mat = collaboration_matrix(res.con, GBA, counting="fractional").to_pylist()
    assert summary["matrix"] == json.loads(json.dumps(mat))
    # The same run gives the same bytes (the folder of an earlier output is replaced).
    assert runner.invoke(app, ["integration", "GBA", "--run", str(run), "--counting",
                               "fractional", "--out", str(tmp_path / "again")]).exit_code == 0
    for name in ("integration_shares.csv", "collaboration_matrix.parquet", "integration.svg"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    # --year repeats (as in `region`), and a range mixes with single years.
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--year", "2018",
                            "--year", "2020-2021", "--matrix", "clusters", "--top", "3",
                            "--json"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.output)
    assert {x["year"] for x in printed["shares"]} == {2018, 2020, 2021}
    assert printed["years"] == {"first": 2018, "last": 2021, "only": [2018, 2020, 2021]}
    assert len({x["a"] for x in printed["matrix"]}) == 4  # 3 clusters and (other)
    assert printed["matrix"][0]["a"].startswith("#1 ")
    for bad in (["--counting", "both"], ["--year", "20x"], ["--top", "0"],
                ["--year", "2021-2019"]):
        r = runner.invoke(app, ["integration", "GBA", "--run", str(run), *bad])
        assert r.exit_code == 2, (bad, r.output)
    assert runner.invoke(app, ["integration", "Atlantis", "--run", str(run)]).exit_code == 2
    assert runner.invoke(app, ["integration", "GBA", "--run", str(tmp_path)]).exit_code == 2
    r = runner.invoke(app, ["integration", "--help"])
    assert "Example:" in r.output


def test_printed_figures_follow_the_shared_rule():
    """Tables on the terminal show numbers as `region` and `check` do (regions._format)."""
    from rich.console import Console

    from stclusters._cli_integration import _matrix_tables, _shares_table

    pairs = {"source": ["patent"] * 3, "a": ["Hong Kong", "Hong Kong", OTHER],
             "b": ["Hong Kong", OTHER, "Hong Kong"]}
    frac = pa.table({**pairs, "counting": ["fractional"] * 3, "weight": [1234.5, 0.2, 0.2]})
    whole = pa.table({**pairs, "counting": ["whole"] * 3, "n_docs": [12345, 0, 0]})
    shares = pa.table({"focal": ["Hong Kong"], "partner": ["CN"], "source": ["patent"],
                       "year": [2021], "counting": ["fractional"], "n_docs": [3],
                       "n_docs_with_partner": [0], "weight": [0.0], "weight_with_partner": [0.0],
                       "share_pct": pa.array([None], pa.float64())})
    console = Console(width=200, record=True)
    for t in [*_matrix_tables(frac), *_matrix_tables(whole),
              _shares_table(shares, counting="fractional")]:
        console.print(t)
    text = console.export_text()
    assert "1,234.5 " in text and "0.2 " in text and "12,345" in text
    assert "— (0/0)" in text  # no share of nothing


def test_labels_of_small_adjacent_arcs_do_not_overlap():
    """Zhaoqing, Hong Kong, Macao (and more) with tiny arcs side by side: labels nudged."""
    import itertools

    import matplotlib.pyplot as plt

    units = list(GBA.member_names)
    big = {"Guangzhou": 40, "Shenzhen": 50, "Foshan": 30, "Dongguan": 20}
    rows = []
    for a in [*units, OTHER]:
        for b in [*units, OTHER]:
            if OTHER in (a, b) or a == b or not (a in big or b in big):
                v = 0
            else:
                v = 10 if a in big and b in big else 1
            if (a, b) != (OTHER, OTHER):
                rows.append({"source": "patent", "counting": "whole", "a": a, "b": b,
                             "n_docs": v})
    fig = integration_figure(pa.Table.from_pylist(rows), title="GBA", data_label=None)
    try:
        renderer = fig.canvas.get_renderer()
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.axes[0].texts]
        assert len(boxes) == len(units)
        clashes = [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2)
                   if x.overlaps(y)]
        assert clashes == []
    finally:
        plt.close(fig)
    from stclusters.regions._integration_figure import label_positions

    heights = sorted(y for _, y in label_positions([100.0, 101.0, 102.0, 103.0]))
    assert all(b - a >= 0.2 - 1e-12 for a, b in zip(heights, heights[1:]))


def test_figure_of_the_clusters_matrix(generated, tmp_path):
    import matplotlib.pyplot as plt

    from stclusters.analysis._output import save_figure

    _, res, _ = generated
    m = collaboration_matrix(res.con, "clusters", counting="whole", top=6)
    fig = integration_figure(m, title="top clusters", data_label="SYNTHETIC")
    try:
        paths = save_figure(fig, tmp_path, "clusters")
    finally:
        plt.close(fig)
    assert all(p.stat().st_size > 1000 for p in paths)
    assert "#1 " in (tmp_path / "clusters.svg").read_text(encoding="utf-8")


# ----------------------------------------------------------------- review round 3 (I3)

def test_the_same_region_twice_in_a_matrix_is_refused(generated, tmp_path):
    _, res, run = generated
    with pytest.raises(ParameterError, match="region 'GBA' given twice"):
        collaboration_matrix(res.con, [GBA, GBA], counting="fractional")
    other = tmp_path / "gba_copy.yaml"  # another file with the id GBA
    other.write_text(NORTH_YAML.replace("id: NORTH", "id: GBA"), encoding="utf-8")
    with pytest.raises(ParameterError, match="region 'GBA' given twice"):
        collaboration_matrix(res.con, [GBA, load_region(other)])
    runner = CliRunner()
    for extra in (["--matrix", "GBA", "--matrix", "GBA"],
                  ["--matrix", "GBA", "--matrix", str(other)]):
        r = runner.invoke(app, ["integration", "GBA", "--run", str(run), *extra])
        assert r.exit_code == 2 and "given twice" in r.output, r.output


def test_top_without_clusters_and_years_without_records(generated, tmp_path):
    _, res, run = generated
    with pytest.raises(ParameterError, match="only with the units 'clusters'"):
        collaboration_matrix(res.con, GBA, top=3)
    runner = CliRunner()
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--top", "3"])
    assert r.exit_code == 2 and "--matrix clusters" in r.output, r.output
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--year", "1800-1900",
                            "--json"])
    assert r.exit_code == 0, r.output
    note = "no document of the run touches the matrix's units in 1800–1900"
    assert note in r.stderr
    printed = json.loads(r.stdout)
    assert printed["matrix_years"] == [] and note in printed["notes"][0]
    from stclusters.regions.integration import matrix_years

    collaboration_matrix(res.con, GBA)
    have = matrix_years(res.con)
    assert have and f"are of {have[0]}–{have[-1]})" in printed["notes"][0]  # the run's years
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--json"])
    assert json.loads(r.stdout)["notes"] == [] and "Note:" not in r.stderr


def test_the_figure_names_its_years_and_keeps_quiet_about_cjk_glyphs(generated, tmp_path):
    import warnings

    _, _, run = generated
    cjk = tmp_path / "cjk.yaml"
    cjk.write_text(GBA_CJK_YAML, encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "fig"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, ["integration", str(cjk), "--run", str(run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert "Glyph" not in r.stderr
    svg = (out / "integration.svg").read_text(encoding="utf-8")
    assert re.search(r"港深: collaboration, 20\d\d–20\d\d<", svg)  # CJK; the years counted
    r = runner.invoke(app, ["integration", "GBA", "--run", str(run), "--year", "2018",
                            "--out", str(tmp_path / "y")])
    assert "collaboration, 2018" in (tmp_path / "y" / "integration.svg").read_text("utf-8")


def test_the_figure_font_list_falls_back_to_an_installed_cjk_font(monkeypatch):
    from matplotlib import font_manager

    from stclusters.regions import _integration_figure as fig

    fake = font_manager.FontEntry(name="Noto Sans CJK SC")
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [*font_manager.fontManager.ttflist, fake])
    families = fig.font_families()
    assert families[0] != "Noto Sans CJK SC" and "Noto Sans CJK SC" in families


def test_integration_json_does_not_depend_on_how_the_run_path_is_typed(generated, tmp_path,
                                                                       monkeypatch):
    _, _, run = generated
    monkeypatch.chdir(run.parent)
    runner = CliRunner()
    for arg, out in ((run.name, "a"), (str(run.resolve()) + "/", "b")):
        r = runner.invoke(app, ["integration", "GBA", "--run", arg, "--out",
                                str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    for name in ("integration.json", "integration_shares.csv", "integration.svg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert json.loads((tmp_path / "a" / "integration.json").read_text("utf-8"))["run"] == str(
        run.resolve())


def test_a_share_of_every_document_is_exactly_100(generated):
    _, res, _ = generated
    rows = integration_shares(res.con, GBA).to_pylist()
    full = [r for r in rows if r["n_docs"] == r["n_docs_with_partner"]
            and r["counting"] == "whole"]
    assert all(r["share_pct"] == 100.0 for r in full)
    assert all(r["share_pct"] is None or 0 <= r["share_pct"] <= 100 for r in rows)


#: The GBA's two outside members under their Chinese names, and Shenzhen (polygons).
GBA_CJK_YAML = """id: CJK
name: 港深
members:
  - name: 香港
    economy: HK
    polygons: [[[113.8, 22.15], [114.45, 22.15], [114.45, 22.56], [113.8, 22.56]]]
  - name: 深圳
    economy: CN
    polygons: [[[113.75, 22.57], [114.6, 22.57], [114.6, 22.9], [113.75, 22.9]]]
"""
