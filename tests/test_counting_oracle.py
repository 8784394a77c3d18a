"""Fractional counting in SQL (methodology §2–3) against an independent plain-Python count."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stclusters import contributions as contrib
from stclusters import store
from stclusters.params import RankParams, SourceParams
from stclusters.schema import DOCUMENT, GEOCODE_FIELDS, RAW_CONTRIBUTION


class _NoMatchGeocoder:
    """Stands in for the gazetteer: these tests feed only pre-located or address-less rows."""

    def geocode_table(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        cols = {f.name: pa.nulls(n, f.type) for f in GEOCODE_FIELDS}
        cols["geocode_status"] = pa.array(["unmatched:no-city"] * n)
        cols["text_country"] = pa.nulls(n, pa.string())
        return pa.table(cols)

    def places(self) -> pa.Table:
        return pa.table({"geoname_id": pa.array([], pa.int64()), "country": pa.array([], pa.string())})

    def near_countries(self, lat, lon, *, k, max_km):
        """No place anywhere: coordinates keep their (missing) country."""
        shape = (len(lat), k)
        return np.full(shape, None, dtype=object), np.full(shape, np.inf), np.full(shape, -1)

    def distance_to_country(self, lat, lon, country):
        return np.zeros(len(lat))  # every point inside its stated country


PLACES = [(22.5, 114.0), (22.3, 114.2), (35.7, 139.7), (48.85, 2.35), (-33.9, 151.2)]

address = st.one_of(
    st.tuples(st.sampled_from(PLACES), st.sampled_from(["point", "city", "postcode"])),
    st.tuples(st.sampled_from(PLACES), st.sampled_from(["admin1", "country"])),  # coarse
    st.just(None),  # unlocated
)
contributor = st.lists(address, min_size=1, max_size=3)
document = st.tuples(st.sampled_from(["patent", "publication"]), st.integers(2015, 2024),
                     st.lists(contributor, min_size=1, max_size=5))


def _load(docs):
    con = store.connect(None)
    doc_rows, rows = [], []
    for i, (source, year, contributors) in enumerate(docs):
        doc_id = f"D{i}"
        doc_rows.append({"doc_id": doc_id, "source": source, "year": year, "doc_type": None,
                         "n_contributors": len(contributors), "record_ref": f"t:{i}"})
        for c, addrs in enumerate(contributors):
            for a, addr in enumerate(addrs):
                (lat, lon), prec = addr if addr else ((None, None), None)
                rows.append({"doc_id": doc_id, "source": source, "year": year,
                             "contributor_seq": c, "address_seq": a, "lat": lat, "lon": lon,
                             "precision": prec, "record_ref": f"t:{i}"})
    store.append(con, "documents", pa.Table.from_pylist(doc_rows, schema=DOCUMENT), input_id=0)
    store.append(con, "raw_contributions", pa.Table.from_pylist(rows, schema=RAW_CONTRIBUTION),
                 input_id=0)
    return con


def _oracle(docs, *, counting, window):
    """Plain Python with exact fractions: weight per (source, lat, lon)."""
    fine = {"point", "postcode", "city"}
    out = defaultdict(Fraction)
    for source, year, contributors in docs:
        if window and not (window[0] <= year <= window[1]):
            continue
        used = [[a for a in addrs if a is not None and a[1] in fine] for addrs in contributors]
        n_located = sum(1 for u in used if u)
        n = len(contributors) if counting == "all" else n_located
        for u in used:
            for (lat, lon), _ in u:
                out[(source, lat, lon)] += Fraction(1, n * len(u))
    return out


@settings(max_examples=120)
@given(docs=st.lists(document, min_size=1, max_size=25), counting=st.sampled_from(["located", "all"]),
       window=st.sampled_from([None, (2017, 2021)]))
def test_points_match_plain_python(docs, counting, window):
    sp = SourceParams(first_year=window[0], last_year=window[1]) if window else SourceParams()
    params = RankParams(sources={"patent": sp, "publication": sp}, counting=counting)
    con = _load(docs)
    contrib.locate(con, _NoMatchGeocoder)
    contrib.count_fractional(con, params)
    contrib.aggregate_points(con)
    got = {(s, la, lo): w for s, la, lo, w in con.execute(
        "SELECT source, lat, lon, weight FROM points").fetchall()}
    want = _oracle(docs, counting=counting, window=window)
    assert set(got) == set(want)
    for k, w in want.items():
        assert got[k] == pytest.approx(float(w), rel=1e-12, abs=1e-15)
    # Each document with a located contributor weighs exactly 1 under the default.
    totals = contrib.world_totals(con)
    if counting == "located":
        for s in ("patent", "publication"):
            n_docs = sum(1 for src, y, cs in docs if src == s
                         and (not window or window[0] <= y <= window[1])
                         and any(a and a[1] in {"point", "postcode", "city"} for c in cs for a in c))
            assert totals.get(s, 0.0) == pytest.approx(n_docs, abs=1e-9)


def test_weights_sum_exactly_whatever_the_row_order():
    docs = [("patent", 2020, [[(PLACES[0], "point")], [(PLACES[1], "city"), (PLACES[0], "city")],
                              [None]])] * 7
    a = _load(docs)
    b = _load(list(reversed(docs)))
    for con in (a, b):
        contrib.locate(con, _NoMatchGeocoder)
        contrib.count_fractional(con, RankParams())
        contrib.aggregate_points(con)
    q = "SELECT source, lat, lon, weight, weight_fx FROM points ORDER BY ALL"
    assert a.execute(q).fetchall() == b.execute(q).fetchall()
