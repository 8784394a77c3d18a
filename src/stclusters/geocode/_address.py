"""Free-text postal addresses → postal code, city, state and country hints.

PATSTAT's ``tls206_person.person_address`` is one free-text line per person, as the patent
office printed it (``Hauptstr. 5, 80333 München``, ``1-7-1 Konan, Minato-ku, Tokyo
108-0075``, ``123 Main St, Springfield, IL 62701``), with line breaks written as ``\\n``.
The geocoder matches cities and postcodes of structured fields; this module turns the line
into those fields, so the geocoder's city matching does the rest (and still sees the whole
text as ``address_raw`` when the city it is given matches nothing).

Rules (documented in ``docs/inputs.md``, PATSTAT section):

* **Postal code**: the pattern of the address's country (:data:`POSTCODE_PATTERNS`: US ZIP,
  five digits in DE/FR/IT/ES/KR/…, ``123-4567`` in JP, six digits in CN/IN/RU/SG, the UK
  postcode or its outward code, ``1234 AB`` in NL, four digits in CH/AT/DK/BE/…,
  ``123 45`` in SE, ``A1A 1A1`` in CA …), searched in the comma parts from the right (an
  address ends with its town), the last match of a part winning. A country prefix glued to
  it (``D-80333``, ``CH-8001``, ``SE-412 96``) is not part of the code. Countries without a
  pattern get no postal code.
* **City**: the words next to the postal code in its part (``80333 München``, ``Tokyo
  108-0075``); when those are only a state (``IL 62701``, ``NSW 2000``), the part before
  it; without a postal code, the last part that is not a country, a state or a number.
  Words holding digits (street numbers, ``1-chome``) are left out of the city.
* **State** (``admin1``): a US state, Canadian province or Australian state code printed
  before the postal code or as a part of its own (the geocoder uses US codes as a filter).
* **Country**: a country name written as the last part (``Germany``, ``Deutschland``,
  ``Japan``, ``USA``); a bare two-letter code only when it is the stated country (``…,
  DE``) and not a US state or Canadian province code.

The parser never raises on any text and every postal code it returns is a substring of the
text it was given.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from stclusters.geocode._normalize import country_to_iso2

__all__ = ["POSTCODE_PATTERNS", "ParsedAddress", "parse_address", "unescape_address"]


class ParsedAddress(NamedTuple):
    """What :func:`parse_address` found in one address (``None`` where nothing was)."""

    postcode: str | None
    city: str | None
    admin1: str | None
    country: str | None  # ISO 3166-1 alpha-2 of a country named at the end of the text


# Digits not glued to other digits; letters not glued to other letters (a code is a token).
_D = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"

#: Postal code pattern per country (ISO-2) of the big PCT filers. Group 1 is the code.
#: The shapes are the national formats as commonly published (the UPU's "Postal addressing
#: systems" pages describe each); only the shape is checked, never a list of real codes.
POSTCODE_PATTERNS: dict[str, str] = {
    # ZIP or ZIP+4: the ZIP+4 is kept whole (it is what was printed).
    "US": _D + r"(\d{5}(?:-\d{4})?)" + _E,
    **{cc: _D + r"(\d{5})" + _E for cc in
       ("DE", "FR", "IT", "ES", "FI", "KR", "MY", "MX", "TR", "TH", "ID", "UA", "HR", "EE",
        "LT", "MA", "SA", "EG", "DZ", "TW")},
    "JP": _D + r"(\d{3}-\d{4})" + _E,
    **{cc: _D + r"(\d{6})" + _E for cc in ("CN", "RU", "SG", "BY", "KZ", "VN", "RO")},
    # India: six digits, often printed "560 001".
    "IN": _D + r"(\d{3} ?\d{3})" + _E,
    # UK: the full postcode (outward + inward code); the outward code alone is tried after.
    "GB": r"(?<![0-9A-Za-z])([A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})" + _E,
    "IE": _D + r"([AC-FHKNPRTV-Y][0-9]{2}[0-9W] ?[0-9AC-FHKNPRTV-Y]{4})" + _E,
    "NL": _D + r"([1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2})" + _E,
    **{cc: _D + r"(\d{4})" + _E for cc in
       ("CH", "AT", "DK", "BE", "NO", "AU", "NZ", "HU", "ZA", "LU", "SI", "BG", "PH", "CY",
        "LI", "AR", "GE", "AM", "TN")},
    **{cc: _D + r"(\d{3} ?\d{2})" + _E for cc in ("SE", "CZ", "SK", "GR")},
    "CA": r"(?<![0-9A-Za-z])([ABCEGHJ-NPRSTVXY][0-9][A-Z] ?[0-9][A-Z][0-9])" + _E,
    "BR": _D + r"(\d{5}-?\d{3})" + _E,
    "PL": _D + r"(\d{2}-\d{3})" + _E,
    "PT": _D + r"(\d{4}-\d{3})" + _E,
    "IL": _D + r"(\d{7}|\d{5})" + _E,
    "CL": _D + r"(\d{7})" + _E,
}

# The UK outward code alone (``London SW1``, ``Cambridge CB4``): only as the last word of a
# part that has other words (alone it could be anything: ``M1`` is also a motorway).
_GB_OUTWARD = re.compile(r"(?<=[A-Za-z] )([A-Z]{1,2}[0-9][A-Z0-9]?)$")

# A country prefix glued to a postal code: "D-80333", "CH-8001", "SE-412 96", "F 75001".
_PREFIX_BEFORE = re.compile(r"(?:^|\s)([A-Z]{1,3})[- ]?$")

# State / province codes printed before a postal code or as a part of their own.
_US_STATES = frozenset("""AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI
MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI
AS MP""".split())
_CA_PROVINCES = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split())
_AU_STATES = frozenset("NSW VIC QLD WA SA TAS ACT NT".split())
_STATE_CODES = {"US": _US_STATES, "CA": _CA_PROVINCES, "AU": _AU_STATES}

# First-level regions printed next to the postal code in the big Asian filers' addresses
# ("Kawasaki-shi, Kanagawa 212-8582", "Shenzhen, Guangdong 518129", "Suwon-si, Gyeonggi-do
# 16677"): the town is the part before. Romanised as the offices print them.
_REGIONS = {
    "JP": frozenset("""hokkaido aomori iwate miyagi akita yamagata fukushima ibaraki tochigi
gunma saitama chiba tokyo kanagawa niigata toyama ishikawa fukui yamanashi nagano gifu
shizuoka aichi mie shiga kyoto osaka hyogo nara wakayama tottori shimane okayama hiroshima
yamaguchi tokushima kagawa ehime kochi fukuoka saga nagasaki kumamoto oita miyazaki kagoshima
okinawa""".split()),
    "CN": frozenset("""anhui fujian gansu guangdong guangxi guizhou hainan hebei heilongjiang
henan hubei hunan jiangsu jiangxi jilin liaoning qinghai shaanxi shandong shanxi sichuan
yunnan zhejiang ningxia xinjiang tibet xizang""".split()) | {"inner mongolia"},
    "KR": frozenset("""gyeonggi gangwon chungcheongbuk chungcheongnam jeollabuk jeollanam
gyeongsangbuk gyeongsangnam jeju chungbuk chungnam jeonbuk jeonnam gyeongbuk
gyeongnam""".split()),
    "IN": frozenset("""karnataka maharashtra telangana gujarat kerala haryana punjab odisha
rajasthan""".split()) | {"tamil nadu", "uttar pradesh", "west bengal", "andhra pradesh",
                           "madhya pradesh"},
}
_REGION_SUFFIX = re.compile(
    r"(?:[- ](?:do|ken|fu|to|sheng)|\s+(?:province|prefecture|pref\.?|state)|\wshire)$",
    re.IGNORECASE)
# A ward or district part ("Minato-ku", "Haidian District", "Yeongtong-gu"): the town is
# the next larger unit, so a region-city such as Tokyo or Osaka after it stays the town.
_WARD = re.compile(r"(?:-ku|-gu|\s+ward|\s+district|\s+qu)$", re.IGNORECASE)
# A one- or two-capital token after a town: an Italian province code ("Milano MI") or a
# postal district letter ("København K").
_TRAILING_CODE = re.compile(r"\s+[A-Z]{1,2}$")

# PATSTAT writes a line break inside a value as " \n " (a backslash and an n); addresses
# from other exports may hold real line breaks or ";" between lines.
_LINE_BREAK = re.compile(r"\s*(?:\\n|\\r|[\r\n]+)\s*")
_WORD = re.compile(r"\S+")
_BRACKETS = re.compile(r"[(\[][^()\[\]]*[)\]]")
# Words that begin a part naming an organisation or a mailbox, never a town.
_NOT_TOWN = re.compile(r"^(?:c/o|p\.?\s?o\.?\s+box|po box|postfach|b\.?p\.?\s|cedex)\b",
                       re.IGNORECASE)
# Capitals only, at most three: a country code or prefix printed beside the postal code.
_CODE = re.compile(r"^[A-Z]{1,3}$")
_CEDEX = re.compile(r"\s+cedex(?:\s+\d+)?$", re.IGNORECASE)

#: Longest address parsed, characters (longer text is no postal address; bounds the work).
MAX_ADDRESS_CHARS = 2000


def unescape_address(text: str | None) -> str | None:
    """PATSTAT's `` \\n `` line breaks (and real ones) → ``", "``; blanks trimmed; ``''`` → None.

    Examples
    --------
    >>> unescape_address("Hauptstr. 5 \\\\n 80333 München")
    'Hauptstr. 5, 80333 München'
    """
    if text is None:
        return None
    out = _LINE_BREAK.sub(", ", text).strip(" ,")
    return out or None


@lru_cache(maxsize=None)
def _pattern(country: str) -> re.Pattern[str] | None:
    raw = POSTCODE_PATTERNS.get(country)
    return re.compile(raw) if raw is not None else None


@lru_cache(maxsize=4096)
def _country_name(part: str) -> str | None:
    """ISO-2 of a country name (``Germany``, ``P.R. China``; no bare codes), cached: the same
    few names end most addresses."""
    return country_to_iso2(part, allow_iso2=False, allow_iso3=False)


def _end_country(part: str, stated: str | None) -> str | None:
    """ISO-2 of a country written as the whole last part, else None."""
    if len(part) > 60 or _has_digit(part):
        return None
    code = _country_name(part)
    if code is not None:
        return code
    bare = part.strip(". ").upper()
    if (stated and bare == stated and stated not in ("US", "CA")
            and bare not in _US_STATES and bare not in _CA_PROVINCES):
        return stated
    return None


def _find_postcode(parts: list[str], country: str) -> tuple[int, re.Match[str]] | None:
    """(part index, match) of the postal code: parts from the right, last match in a part."""
    pattern = _pattern(country)
    if pattern is None:
        return None
    for i in range(len(parts) - 1, -1, -1):
        last = None
        for m in pattern.finditer(parts[i]):
            last = m
        if last is None and country == "GB":
            last = _GB_OUTWARD.search(parts[i])
        if last is not None:
            return i, last
    return None


_ASCII_DIGIT = re.compile(r"[0-9]")


def _has_digit(text: str) -> bool:
    """Any digit, "²" and other Unicode digits included (``str.isdigit``)."""
    if text.isascii():
        return _ASCII_DIGIT.search(text) is not None
    return any(ch.isdigit() for ch in text)


def _town_words(text: str) -> str | None:
    """The words of ``text`` that can name a town: no digits, no mailbox or CEDEX."""
    if "(" in text or "[" in text:
        text = _BRACKETS.sub(" ", text)  # "Torino (TO)": a province code in brackets
    if "edex" in text or "EDEX" in text:
        text = _CEDEX.sub("", text)
    words = text.split()
    if _has_digit(text):
        words = [w for w in words if not _has_digit(w)]
    town = " ".join(words).strip(" -–/.()[]")
    if not town or not any(ch.isalpha() for ch in town) or _NOT_TOWN.match(town):
        return None
    return town


def _is_region(town: str, country: str | None) -> bool:
    """Is ``town`` a first-level region (prefecture, province, state) rather than a town?"""
    key = town.strip(" .").lower()
    base = _REGION_SUFFIX.sub("", key)
    if base != key and base:
        return True
    return base in _REGIONS.get(country or "", ()) or (
        country == "US" and key in _us_state_names())


@lru_cache(maxsize=1)
def _us_state_names() -> frozenset[str]:
    from stclusters.geocode._normalize import us_states  # noqa: PLC0415

    return frozenset(k for k in us_states() if len(k) > 2)


def _tidy_town(town: str, country: str | None) -> str:
    """Drop a trailing province code or district letter (not in US/CA/AU, where it is the
    state and :func:`_split_state` keeps it)."""
    if country in _STATE_CODES or " " not in town:
        return town
    return _TRAILING_CODE.sub("", town)


def _state(part: str, country: str | None) -> str | None:
    codes = _STATE_CODES.get(country or "")
    word = part.strip(" .").upper()
    return word if codes is not None and word in codes else None


def _split_state(text: str, country: str | None) -> tuple[str, str | None]:
    """``"Springfield IL"`` → ``("Springfield", "IL")``: a state code ending a part."""
    codes = _STATE_CODES.get(country or "")
    if codes is None:
        return text, None
    words = text.split()
    if words and words[-1].strip(".").upper() in codes and words[-1].strip(".").isupper():
        return " ".join(words[:-1]), words[-1].strip(".").upper()
    return text, None


def _walk(parts: list[str], stop: int, country: str | None, *, region: str | None = None,
          state: str | None = None) -> tuple[str | None, str | None]:
    """Town and state among ``parts[:stop]``, right to left.

    Parts with digits (streets, ``1-chome``) and state codes are stepped over; a region
    (``Kanagawa``) is remembered and used only if no town comes before it, or if a ward
    does (``Minato-ku, Tokyo``: Tokyo is the town).
    """
    ward = None
    for j in range(stop - 1, -1, -1):
        part = parts[j]
        code = _state(part, country)
        if code is not None:
            state = state or code
            continue
        if _has_digit(part):
            continue
        town, extra = _split_state(_town_words(part) or "", country)
        state = state or extra
        if not town:
            continue
        town = _tidy_town(town, country)
        if _WARD.search(town):
            if region is not None:
                return region, state
            ward = ward or town
        elif _is_region(town, country):
            region = region or town
        else:
            return town, state
    return region or ward, state


def _city_near_postcode(parts: list[str], i: int, m: re.Match[str],
                        country: str | None) -> tuple[str | None, str | None]:
    """City and state from the part holding the postal code, else the parts before it."""
    part = parts[i]
    before, after = part[:m.start(1)], part[m.end(1):]
    before, state = _split_state(before.strip(" -"), country)
    if state is None:  # "D-80333", "CH-8001", "SE-412 96": the country prefix is no town
        prefix = _PREFIX_BEFORE.search(before)
        before = before[:prefix.start(1)] if prefix is not None else before
    state = state or _state(after, country)
    for text in (after, before):  # "80333 München" and "München 80333"
        town = _town_words(text)
        if town is None or _state(town, country) is not None or _CODE.match(town):
            continue
        town = _tidy_town(town, country)
        if _is_region(town, country):
            return _walk(parts, i, country, region=town, state=state)
        return town, state
    return _walk(parts, i, country, state=state)


def _city_without_postcode(parts: list[str], country: str | None
                           ) -> tuple[str | None, str | None]:
    """The last part that can name a town (a state part is kept as ``admin1``)."""
    return _walk(parts, len(parts), country)


def parse_address(text: str | None, country: str | None = None) -> ParsedAddress:
    """Postal code, city, state and country hint of a free-text postal address.

    Parameters
    ----------
    text : str or None
        The address as printed (PATSTAT ``person_address``; `` \\n `` line breaks allowed).
    country : str or None
        The stated country (ISO-2, e.g. PATSTAT ``person_ctry_code``): picks the postal
        code pattern. Without it, a country named at the end of the text is used.

    Returns
    -------
    ParsedAddress
        ``postcode`` (a substring of ``text``), ``city``, ``admin1``, ``country`` (the
        country the text names at its end, or None).

    Examples
    --------
    >>> parse_address("Hauptstr. 5, 80333 München", "DE")
    ParsedAddress(postcode='80333', city='München', admin1=None, country=None)
    >>> parse_address("123 Main St, Springfield, IL 62701, USA", "US")
    ParsedAddress(postcode='62701', city='Springfield', admin1='IL', country='US')
    """
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_ADDRESS_CHARS:
        return ParsedAddress(None, None, None, None)
    stated = country.strip().upper() if isinstance(country, str) and country.strip() else None
    if "\\" in text or "\n" in text or "\r" in text:
        text = _LINE_BREAK.sub(", ", text)
    parts = [q for q in (p.strip() for p in text.replace(";", ",").split(",")) if q]
    named = _end_country(parts[-1], stated) if parts else None
    if named is not None:
        parts = parts[:-1]
    code = stated or named
    hit = _find_postcode(parts, code) if code else None
    if hit is not None:
        city, state = _city_near_postcode(parts, hit[0], hit[1], code)
        return ParsedAddress(hit[1].group(1), city, state, named)
    city, state = _city_without_postcode(parts, code)
    return ParsedAddress(None, city, state, named)
