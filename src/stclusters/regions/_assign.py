"""Which member of a region each location falls in (the rules of
:mod:`stclusters.regions.definitions`), vectorised over numpy arrays."""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from stclusters.errors import ParameterError
from stclusters.regions.definitions import CITY_PRECISIONS

if TYPE_CHECKING:
    from stclusters.regions.definitions import Region


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _same_name(listed: str, gazetteer: str) -> bool:
    """A listed anchor name agrees with the gazetteer's (apostrophes and a trailing
    'District' aside): guards a region file against a mistyped id."""
    def norm(s: str) -> str:
        s = s.replace("’", "'").casefold().strip()
        return s.removesuffix(" district").strip()
    return norm(listed) == norm(gazetteer)


@lru_cache(maxsize=1)
def _default_geocoder() -> Any:
    from stclusters.geocode import Geocoder  # noqa: PLC0415 - loads the gazetteer

    return Geocoder.load()


def _anchors(region: Region, geocoder: Any) -> tuple[cKDTree, np.ndarray]:
    """KD-tree of the anchors (unit vectors) and each anchor's member (None for outside
    anchors), made once per geocoder and anchor list: every call of :func:`assign` (one
    per region placement, many in the tests) would otherwise filter the whole gazetteer."""
    listed = tuple((gid, name, m.name) for m in region.members for gid, name in m.anchors)
    listed += tuple((gid, name, None) for gid, name in region.outside_anchors)
    cache = _ANCHOR_TREES.setdefault(geocoder, {})
    if listed not in cache:
        lat, lon, owner = _anchor_places(region, listed, geocoder)
        cache[listed] = (cKDTree(_unit(lat, lon)), owner)
    return cache[listed]


def _anchor_places(region: Region, listed: tuple, geocoder: Any
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor coordinates (degrees) and their member, each checked against the gazetteer."""
    places = geocoder.places()
    ids = places.column("geoname_id").to_numpy()
    order = np.argsort(ids)
    problems = []
    lat, lon, owner = [], [], []
    for gid, name, member in listed:
        i = int(np.searchsorted(ids, gid, sorter=order))
        row = int(order[min(i, len(order) - 1)])
        if ids[row] != gid:
            problems.append(f"{gid} ({name}): not in the gazetteer")
            continue
        found = places.column("name")[row].as_py()
        if not _same_name(name, found):
            problems.append(f"{gid}: listed as {name!r}, the gazetteer says {found!r}")
            continue
        lat.append(places.column("lat")[row].as_py())
        lon.append(places.column("lon")[row].as_py())
        owner.append(member)
    if problems:
        raise ParameterError(f"region {region.id} ({region.source}): {len(problems)} anchor "
                             "problem(s): " + "; ".join(problems),
                             hint="anchors are [GeoNames id, name] of places in the gazetteer")
    return np.asarray(lat, float), np.asarray(lon, float), np.asarray(owner, dtype=object)


# Per geocoder: the KD-tree of each economy's places and their admin1 codes (building one
# costs ~0.1 s; a run places its locations in one call, tests and integration in many).
_ECONOMY_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ANCHOR_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _economy_tree(geocoder: Any, country: str) -> tuple[cKDTree, np.ndarray] | None:
    trees = _ECONOMY_TREES.setdefault(geocoder, {})
    if country not in trees:
        places = geocoder.places()
        mask = np.asarray(places.column("country").to_pylist(), dtype=object) == country
        admin1 = np.asarray(places.column("admin1").to_pylist(), dtype=object)[mask]
        trees[country] = None if admin1.size == 0 else (cKDTree(_unit(
            places.column("lat").to_numpy()[mask], places.column("lon").to_numpy()[mask])),
            admin1)
    return trees[country]


def _admin1_in(geocoder: Any, country: str, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """GeoNames admin1 code of the nearest gazetteer place of ``country`` to each point."""
    found = _economy_tree(geocoder, country)
    if found is None:
        return np.full(lat.size, None, dtype=object)
    tree, admin1 = found
    _, idx = tree.query(_unit(lat, lon), k=1)
    return admin1[idx]


def _texts(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, None, dtype=object)
    out = np.asarray(values, dtype=object).reshape(-1)
    # NaN and '' are "unknown" as much as None is.
    return np.where([v is None or v != v or v == "" for v in out], None, out)


def assign(region: Region, lat: Any, lon: Any, *, country: Any = None, precision: Any = None,
           geoname_id: Any = None, geocoder: Any = None) -> np.ndarray:
    """See :meth:`stclusters.regions.definitions.Region.assign`."""
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    n = lat.size
    if lon.size != n:
        raise ParameterError(f"lat and lon differ in length ({n} vs {lon.size})")
    out = np.full(n, None, dtype=object)
    located = np.isfinite(lat) & np.isfinite(lon)
    if not located.any():
        return out
    geocoder = geocoder or _default_geocoder()
    country = _texts(country, n)
    precision = _texts(precision, n)
    gids = _texts(geoname_id, n)
    near = geocoder.nearest_place(np.where(located, lat, 0.0), np.where(located, lon, 0.0))
    economy = np.where(country == None, near.country, country)  # noqa: E711 - elementwise
    open_ = located.copy()

    def take(mask: np.ndarray, name: str) -> None:
        hit = open_ & mask
        out[hit] = name
        open_[hit] = False

    for m in region.members:  # rule 1
        if m.geoname_ids:
            take(np.isin(gids, np.asarray(m.geoname_ids, dtype=object)), m.name)
    for m in region.members:  # rule 2
        if m.countries:
            take(np.isin(economy, np.asarray(m.countries, dtype=object)), m.name)
    for m in region.members:  # rule 3
        for ring in m.polygons:
            import shapely  # noqa: PLC0415

            take(shapely.contains_xy(shapely.Polygon(ring), lon, lat), m.name)
    if region.anchor_domain is not None:  # rule 4
        dom_country, dom_admin1 = region.anchor_domain
        fine = np.array([p is None or p in CITY_PRECISIONS for p in precision])
        in_domain = economy == dom_country
        if dom_admin1 and in_domain.any():
            # The province of the nearest place *of that economy*: by the Shenzhen River or
            # on Hengqin the nearest place overall may be across the border.
            rows = np.nonzero(in_domain & located)[0]
            in_domain[rows] = np.isin(_admin1_in(geocoder, dom_country, lat[rows], lon[rows]),
                                      np.asarray(dom_admin1, dtype=object))
        rows = np.nonzero(open_ & fine & in_domain)[0]
        if rows.size:
            tree, owner = _anchors(region, geocoder)
            _, idx = tree.query(_unit(lat[rows], lon[rows]), k=1)
            out[rows] = owner[idx]
    if region.include:
        out[~np.isin(out, np.asarray(region.include, dtype=object))] = None
    return out
