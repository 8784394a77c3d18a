"""Free-text postal addresses → postal code, city, state (stclusters.geocode._address).

The addresses are written in each country's postal style (street, postal code, town) as
patent offices print them in PATSTAT ``person_address``; streets and numbers are made up.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stclusters.geocode._address import (
    POSTCODE_PATTERNS,
    ParsedAddress,
    parse_address,
    unescape_address,
)

# (address, stated country, expected postcode, expected city, expected admin1)
CASES = [
    # United States: "street, town, ST ZIP" (ZIP+4 kept whole), state names spelled out
    ("123 Main St, Springfield, IL 62701", "US", "62701", "Springfield", "IL"),
    ("1600 Amphitheatre Pkwy, Mountain View, CA 94043-1351", "US", "94043-1351",
     "Mountain View", "CA"),
    ("One Microsoft Way \\n Redmond, WA 98052", "US", "98052", "Redmond", "WA"),
    ("500 Oracle Pkwy, Redwood Shores, California 94065", "US", "94065", "Redwood Shores",
     None),
    ("77 Massachusetts Ave, Cambridge, MA 02139, USA", "US", "02139", "Cambridge", "MA"),
    ("Austin, TX", "US", None, "Austin", "TX"),
    ("12345 Research Blvd, Austin TX 78759", "US", "78759", "Austin", "TX"),
    # Germany: "street no, [D-]PLZ Town"
    ("Hauptstr. 5, 80333 München", "DE", "80333", "München", None),
    ("Werner-von-Siemens-Str. 1 \\n D-91052 Erlangen", "DE", "91052", "Erlangen", None),
    ("Carl-Zeiss-Straße 22, 73447 Oberkochen, Germany", "DE", "73447", "Oberkochen", None),
    ("Robert-Bosch-Platz 1, 70839 Gerlingen-Schillerhöhe", "DE", "70839",
     "Gerlingen-Schillerhöhe", None),
    # France: CEDEX is not a town
    ("12 rue de la Paix, 75002 Paris", "FR", "75002", "Paris", None),
    ("5 avenue du Général de Gaulle, F-92130 Issy-les-Moulineaux Cedex", "FR", "92130",
     "Issy-les-Moulineaux", None),
    ("38 rue Saint-Laurent, 38000 Grenoble CEDEX 1", "FR", "38000", "Grenoble", None),
    # Italy (province code after the town), Spain
    ("Via Roma 1, I-20100 Milano MI", "IT", "20100", "Milano", None),
    ("Piazza Castello 2, 10122 Torino (TO)", "IT", "10122", "Torino", None),
    ("Calle Mayor 3, 28013 Madrid", "ES", "28013", "Madrid", None),
    # Japan: ward before the city; prefecture before the postal code
    ("c/o Sony Corporation, 1-7-1 Konan, Minato-ku, Tokyo 108-0075", "JP", "108-0075",
     "Tokyo", None),
    ("1-1, Shibaura 1-chome, Minato-ku, Tokyo 105-8001, Japan", "JP", "105-8001", "Tokyo",
     None),
    ("1-1, Kamikodanaka 4-chome, Nakahara-ku, Kawasaki-shi, Kanagawa 211-8588", "JP",
     "211-8588", "Kawasaki-shi", None),
    ("2-1-1 Oaza Toyota, Toyota-shi, Aichi-ken 471-8571", "JP", "471-8571", "Toyota-shi",
     None),
    ("1006 Oaza Kadoma, Kadoma-shi, Osaka 571-8501", "JP", "571-8501", "Kadoma-shi", None),
    # China: district, city, province, postcode
    ("No. 5 Yiheyuan Road, Haidian District, Beijing 100871", "CN", "100871", "Beijing",
     None),
    ("Huawei Administration Building, Bantian, Longgang District, Shenzhen, Guangdong 518129",
     "CN", "518129", "Shenzhen", None),
    ("No. 800 Dongchuan Road, Minhang District, Shanghai 200240, P.R. China", "CN", "200240",
     "Shanghai", None),
    ("Hangzhou, Zhejiang Province", "CN", None, "Hangzhou", None),
    # Korea: city (-si), province (-do), five digits
    ("129, Samsung-ro, Yeongtong-gu, Suwon-si, Gyeonggi-do 16677", "KR", "16677",
     "Suwon-si", None),
    ("128, Yeoui-daero, Yeongdeungpo-gu, Seoul 07336", "KR", "07336", "Seoul", None),
    # United Kingdom: full postcode, or the outward code alone
    ("10 Downing Street, London SW1A 2AA", "GB", "SW1A 2AA", "London", None),
    ("Cambridge Science Park, Milton Road, Cambridge CB4 0WS, GB", "GB", "CB4 0WS",
     "Cambridge", None),
    ("Harwell Campus, Didcot, Oxfordshire OX11 0QX", "GB", "OX11 0QX", "Didcot", None),
    ("1 Canada Square, London E14", "GB", "E14", "London", None),
    # Netherlands: four digits and two letters
    ("High Tech Campus 5, 5656 AE Eindhoven", "NL", "5656 AE", "Eindhoven", None),
    ("Prins Bernhardplein 200, 1097JB Amsterdam", "NL", "1097JB", "Amsterdam", None),
    # Switzerland, Austria, Denmark, Belgium, Norway: four digits
    ("Bahnhofstrasse 1, CH-8001 Zürich", "CH", "8001", "Zürich", None),
    ("Lichtstrasse 35, 4056 Basel", "CH", "4056", "Basel", None),
    ("Schwarzenbergplatz 1, A-1010 Wien", "AT", "1010", "Wien", None),
    ("Novo Allé, DK-2880 Bagsværd", "DK", "2880", "Bagsværd", None),
    ("Nørregade 10, 1165 København K", "DK", "1165", "København", None),
    ("Kapeldreef 75, B-3001 Leuven", "BE", "3001", "Leuven", None),
    # Sweden, Finland
    ("Lindholmspiren 11, SE-417 56 Göteborg", "SE", "417 56", "Göteborg", None),
    ("Torshamnsgatan 21, 164 83 Stockholm", "SE", "164 83", "Stockholm", None),
    ("Karakaari 7, FI-02610 Espoo", "FI", "02610", "Espoo", None),
    # Canada, Australia: province / state code before the postal code
    ("100 King St W, Toronto, ON M5X 1A9", "CA", "M5X 1A9", "Toronto", "ON"),
    ("1250 René-Lévesque Blvd W, Montréal, QC H3B 4W8, Canada", "CA", "H3B 4W8", "Montréal",
     "QC"),
    ("Level 5, 1 Martin Place, Sydney NSW 2000", "AU", "2000", "Sydney", "NSW"),
    # India (six digits, often split), Singapore, Israel
    ("Electronics City, Hosur Road, Bangalore 560 100, Karnataka", "IN", "560 100",
     "Bangalore", None),
    ("Plot 12, Sector 18, Gurgaon, Haryana 122015", "IN", "122015", "Gurgaon", None),
    ("1 Fusionopolis Way, Singapore 138632", "SG", "138632", "Singapore", None),
    ("P.O. Box 123, Haifa 3100001", "IL", "3100001", "Haifa", None),
    # Brazil, Poland, Portugal
    ("Av. Paulista 1000, São Paulo 01310-100", "BR", "01310-100", "São Paulo", None),
    ("ul. Marszałkowska 1, 00-624 Warszawa", "PL", "00-624", "Warszawa", None),
    ("Rua Augusta 10, 1100-053 Lisboa", "PT", "1100-053", "Lisboa", None),
    # No postal code, or a country without a pattern
    ("Wien", "AT", None, "Wien", None),
    ("c/o Siemens AG, Munich", "DE", None, "Munich", None),
    ("Tokyo, JP", "JP", None, "Tokyo", None),
    ("Calle 100 No 8A-55, Bogotá", "CO", None, "Bogotá", None),
]


@pytest.mark.parametrize("text, country, postcode, city, admin1", CASES)
def test_realistic_addresses(text, country, postcode, city, admin1):
    got = parse_address(text, country)
    assert (got.postcode, got.city, got.admin1) == (postcode, city, admin1)


def test_every_country_of_the_cases_has_its_pattern_tried():
    """The cases cover the big PCT filers named in the brief, each with a postal code."""
    with_code = {c for _, c, p, _, _ in CASES if p is not None}
    assert {"US", "DE", "FR", "IT", "ES", "JP", "KR", "CN", "GB", "NL", "CH", "AT", "DK",
            "SE", "CA", "IN"} <= with_code <= set(POSTCODE_PATTERNS)


@pytest.mark.parametrize("text, country, named", [
    ("Munich, Germany", None, "DE"),
    ("Hauptstr. 5, 80333 München, Deutschland", None, "DE"),
    ("1-1 Shibaura, Minato-ku, Tokyo 105-8001, Japan", None, "JP"),
    ("123 Main St, Springfield, IL 62701, USA", None, "US"),
    ("Lichtstrasse 35, 4056 Basel, CH", "CH", "CH"),
    # A bare code that is also a US state or Canadian province is not a country.
    ("Mountain View, CA", "US", None),
    ("St. John's, NL", "CA", None),
])
def test_country_named_at_the_end(text, country, named):
    got = parse_address(text, country)
    assert got.country == named
    if country is None and named is not None and any(c.isdigit() for c in text):
        assert got.postcode is not None  # the named country picks the pattern


def test_patstat_line_breaks():
    assert unescape_address("Hauptstr. 5 \\n 80333 München") == "Hauptstr. 5, 80333 München"
    assert unescape_address("a\r\nb") == "a, b"
    assert unescape_address(" \\n ") is None
    assert unescape_address(None) is None


@pytest.mark.parametrize("text", [None, "", "   ", ",,,", "\\n", "12345", "x" * 5000,
                                  "\x00\x01", "😀, 😀 12345"])
def test_nothing_to_parse(text):
    got = parse_address(text, "DE")
    assert isinstance(got, ParsedAddress)
    if got.postcode is not None:
        assert got.postcode in text


_address_text = st.one_of(
    st.text(max_size=120),
    st.lists(st.one_of(st.text(max_size=20), st.from_regex(r"[A-Z]{0,3}-?\d{3,6}( [A-Z]{2})?",
                                                          fullmatch=True),
                       st.sampled_from(["Tokyo", "München", "CA", "Germany", "Minato-ku",
                                        " \\n ", "Cedex", "c/o X", "NSW", "Gyeonggi-do"])),
             max_size=8).map(", ".join),
)


@settings(max_examples=400, deadline=None)
@given(text=_address_text,
       country=st.one_of(st.none(), st.sampled_from(sorted(POSTCODE_PATTERNS) + ["XX", "", "co"])))
def test_never_raises_and_postcode_is_a_substring(text, country):
    got = parse_address(text, country)
    assert isinstance(got, ParsedAddress)
    if got.postcode is not None:
        assert got.postcode in text
        assert any(ch.isdigit() for ch in got.postcode)
    if got.city is not None:
        assert got.city.strip() == got.city and got.city
        assert not any(ch.isdigit() for ch in got.city)
        assert "," not in got.city
    if got.country is not None:
        assert len(got.country) == 2 and got.country.isupper()
