"""The seeded SYNTHETIC world: schema, determinism, shape of the distributions."""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.spatial import cKDTree

from stclusters import synthetic
from stclusters.schema import RAW_CONTRIBUTION
from stclusters.synthetic import ATTRIBUTION, load_places, synthetic_world, write_synthetic_world

N = 200_000


@pytest.fixture(scope="module")
def world() -> pa.Table:
    return synthetic_world(n_per_source=N, seed=3)


def unit(lat, lon) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def test_says_synthetic_and_credits_geonames() -> None:
    assert "SYNTHETIC" in synthetic.__doc__ and "SYNTHETIC" in synthetic_world.__doc__
    assert ATTRIBUTION == "GeoNames (geonames.org), CC BY 4.0"
    assert "CC BY 4.0" in synthetic_world.__doc__


def test_schema_and_non_null_fields(world: pa.Table) -> None:
    assert world.schema.equals(RAW_CONTRIBUTION)
    for f in RAW_CONTRIBUTION:
        if not f.nullable:
            assert world.column(f.name).null_count == 0, f.name
    for name in ("postcode", "address_raw", "org", "institution_id", "applicant", "tech_field"):
        assert world.column(name).null_count == world.num_rows


def test_both_sources_exact_row_counts(world: pa.Table) -> None:
    counts = dict(zip(*[c.to_pylist() for c in pc.value_counts(world["source"]).flatten()],
                      strict=True))
    assert counts == {"patent": N, "publication": N}
    doc = world["doc_id"].to_numpy(zero_copy_only=False)
    src = world["source"].to_numpy(zero_copy_only=False)
    assert all(d.startswith("SYN-P-") for d in doc[src == "patent"][:1000])
    assert all(d.startswith("SYN-W-") for d in doc[src == "publication"][:1000])
    refs = world["record_ref"].to_pylist()
    assert refs[0] == "synthetic:3:0" and refs[-1] == f"synthetic:3:{2 * N - 1}"


def test_documents_teams_and_years(world: pa.Table) -> None:
    doc = world["doc_id"].to_numpy(zero_copy_only=False)
    seq = world["contributor_seq"].to_numpy()
    # documents are contiguous, contributors numbered 0..k-1
    start = np.r_[True, doc[1:] != doc[:-1]]
    assert (seq[start] == 0).all()
    assert (seq[~start] == seq[np.flatnonzero(~start) - 1] + 1).all()
    assert len(np.unique(doc)) == start.sum()
    src = world["source"].to_numpy(zero_copy_only=False)
    sizes = np.diff(np.r_[np.flatnonzero(start), len(doc)])
    first_src = src[start]
    assert sizes[first_src == "patent"].max() <= 8
    assert sizes[first_src == "publication"].max() <= 15
    assert 2.3 < sizes[first_src == "patent"].mean() < 3.3
    assert 4.5 < sizes[first_src == "publication"].mean() < 6.0
    year = world["year"].to_numpy()
    assert year.min() == 2018 and year.max() == 2022
    # one year per document
    assert (year[~start] == year[np.flatnonzero(~start) - 1]).all()
    assert (world["address_seq"].to_numpy() == 0).all()


def test_determinism_byte_identical(tmp_path) -> None:
    a = synthetic_world(n_per_source=20_000, seed=5)
    b = synthetic_world(n_per_source=20_000, seed=5)
    c = synthetic_world(n_per_source=20_000, seed=6)
    assert a.equals(b)
    assert not a.equals(c)
    write_synthetic_world(tmp_path / "a.parquet", n_per_source=20_000, seed=5)
    write_synthetic_world(tmp_path / "b.parquet", n_per_source=20_000, seed=5)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    back = pq.read_table(tmp_path / "a.parquet")
    assert back.equals(a)
    meta = back.schema.metadata
    assert b"SYNTHETIC" in meta[b"stclusters.data"]
    assert meta[b"stclusters.attribution"] == ATTRIBUTION.encode()


def test_precision_shares(world: pa.Table) -> None:
    prec = world["precision"].to_numpy(zero_copy_only=False)
    n = world.num_rows
    share = {k: float(np.mean(prec == k)) for k in ("point", "admin1", "country")}
    unlocated = world["lat"].null_count / n
    assert 0.01 < unlocated < 0.04
    assert world["lon"].null_count == world["lat"].null_count
    assert 0.005 < share["admin1"] < 0.02
    assert 0.003 < share["country"] < 0.015
    assert share["point"] > 0.9
    city = world["city"].to_numpy(zero_copy_only=False)
    admin1 = world["admin1"].to_numpy(zero_copy_only=False)
    country = world["country"].to_numpy(zero_copy_only=False)
    # unlocated: nothing to locate with
    un = prec == None  # noqa: E711
    assert (city[un] == None).all() and (country[un] == None).all()  # noqa: E711
    # coarse rows: no city; country rows: no admin1
    assert (city[prec == "admin1"] == None).all()  # noqa: E711
    assert (admin1[prec == "country"] == None).all()  # noqa: E711
    assert (city[prec == "point"] != None).all()  # noqa: E711


def test_coordinates_repeat(world: pa.Table) -> None:
    pts = world.filter(pc.equal(world["precision"], "point"))
    xy = np.column_stack([pts["lat"].to_numpy(), pts["lon"].to_numpy()])
    assert np.array_equal(xy, np.round(xy, 4))
    n_unique = len(np.unique(xy, axis=0))
    print(f"{n_unique:,} distinct point coordinates for {len(xy):,} rows")
    assert n_unique < 0.8 * len(xy)


def test_every_located_point_near_a_geonames_place(world: pa.Table) -> None:
    pl = load_places()
    tree = cKDTree(unit(pl.lat, pl.lon))
    lat, lon = world["lat"].to_numpy(zero_copy_only=False), world["lon"].to_numpy(zero_copy_only=False)
    ok = ~np.isnan(lat.astype(float))
    d, _ = tree.query(unit(lat[ok].astype(float), lon[ok].astype(float)))
    km = 2 * 6371.0088 * np.arcsin(np.minimum(d / 2, 1))
    print(f"max distance to a GeoNames place: {km.max():.1f} km")
    assert km.max() < 100.0
    assert (np.abs(lon[ok].astype(float)) <= 180).all()


def _place_weights(world: pa.Table, source: str) -> np.ndarray:
    """Fractional weight (1/located contributors) per (country, admin1, city) place."""
    t = world.filter(pc.and_(pc.equal(world["source"], source),
                             pc.equal(world["precision"], "point")))
    n_loc = t.group_by("doc_id").aggregate([("doc_id", "count")])
    t = t.join(n_loc, "doc_id")
    t = t.append_column("w", pc.divide(1.0, pc.cast(t["doc_id_count"], pa.float64())))
    g = t.group_by(["country", "admin1", "city"]).aggregate([("w", "sum")])
    return np.sort(g["w_sum"].to_numpy())[::-1]


def test_heavy_tail(world: pa.Table) -> None:
    n_places = load_places().n
    top = n_places // 100
    pat = _place_weights(world, "patent")
    pub = _place_weights(world, "publication")
    share_pat = pat[:top].sum() / pat.sum()
    share_pub = pub[:top].sum() / pub.sum()
    print(f"top 1 % of places: {share_pat:.0%} of patent weight, {share_pub:.0%} of publications")
    assert share_pat > 0.20
    assert share_pat > share_pub  # patents are the more concentrated metric
    # about one patent document per weight unit (documents with a located contributor)
    assert pat.sum() == pytest.approx(pat.sum().round(), abs=1e-6)


def test_collaboration_crosses_borders(world: pa.Table) -> None:
    t = world.filter(pc.is_valid(world["country"]))
    g = t.group_by(["doc_id"]).aggregate([("country", "count_distinct"), ("city", "count_distinct")])
    multi_country = float(np.mean(g["country_count_distinct"].to_numpy() > 1))
    multi_city = float(np.mean(g["city_count_distinct"].to_numpy() > 1))
    print(f"documents spanning countries: {multi_country:.1%}, cities: {multi_city:.1%}")
    assert 0.01 < multi_country < 0.5
    assert multi_city > multi_country
    # Hong Kong with Shenzhen, the classic cross-border metro, happens
    docs_hk = set(t.filter(pc.equal(t["country"], "HK"))["doc_id"].to_pylist())
    cities_cn = t.filter(pc.and_(pc.equal(t["country"], "CN"),
                                 pc.is_in(t["doc_id"], pa.array(sorted(docs_hk)))))["city"]
    assert len(docs_hk) > 0 and len(cities_cn) > 0


def test_custom_places_and_small_sizes() -> None:
    places = [
        {"geonameid": 1, "name": "Alpha", "latitude": 10.0, "longitude": 20.0,
         "population": 2_000_000, "countrycode": "AA", "admin1code": "01"},
        {"geonameid": 2, "name": "Beta", "latitude": -5.0, "longitude": 179.99,
         "population": 50_000, "countrycode": "BB", "admin1code": "02"},
        {"geonameid": 3, "name": "Gamma", "latitude": 60.0, "longitude": -150.0,
         "population": 20_000, "countrycode": "BB", "admin1code": ""},
    ]
    t = synthetic_world(n_per_source=5_000, seed=1, places=places, years=(2020, 2020))
    assert t.num_rows == 10_000
    assert set(t["city"].drop_null().to_pylist()) <= {"Alpha", "Beta", "Gamma"}
    assert set(t["year"].to_pylist()) == {2020}
    for n in (0, 1, 7):
        assert synthetic_world(n_per_source=n, seed=0, places=places).num_rows == 2 * n
    with pytest.raises(ValueError):
        synthetic_world(n_per_source=-1)


def test_default_size() -> None:
    assert synthetic_world().num_rows == 2_000_000
