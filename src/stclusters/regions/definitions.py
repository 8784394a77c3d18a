"""Regions as data: a named set of places in a small YAML file, and which member each located
contribution falls in.

A region file names its members (cities, districts, economies) and how a location is
recognised as one of them. Rules, most specific first (the first that applies wins):

1. ``geoname_ids``: the contribution was geocoded to one of these GeoNames places.
2. ``countries``: its economy (ISO-2) is one of these, e.g. ``HK``, ``MO``. Any precision.
3. ``polygons``: its coordinate lies inside one of these rings (``[[lon, lat], …]``, degrees).
4. ``anchors``: nearest anchor wins. Anchors are GeoNames places (seats of the city and of its
   districts or towns), listed per member and, as ``outside_anchors``, for the neighbours that
   are not members. A located point inside the region's ``anchor_domain`` (a country and its
   GeoNames admin1 codes, read from the nearest gazetteer place) belongs to the member of its
   nearest anchor, or to nobody when that anchor is an outside one. Only points placed at city
   precision or finer take part: a row placed at a province's centre has no city.

Rule 4 stands in for city boundaries, which no offline, openly licensed source ships at
prefecture level: it is exact away from the borders and may misplace a town within a few km
of a prefecture border. Add ``geoname_ids`` to a member to pin such a place.

Groups name sets of members (``PRD-9`` of the Greater Bay Area); a group is a region of its
own for :func:`load_region` (``load_region("PRD-9")``), and keeps the whole file's anchors,
so a Dongguan point does not snap to Shenzhen when Dongguan is left out.

Shipped: ``GBA`` (Guangdong–Hong Kong–Macao Greater Bay Area, 11 cities) and its group
``PRD-9``. GeoNames (geonames.org), CC BY 4.0, for the anchors' coordinates.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from stclusters.errors import ParameterError

__all__ = ["Member", "Region", "load_region", "shipped_regions", "assign_members"]

_DATA = Path(__file__).parent / "data"
#: Precisions at which anchors (rule 4) decide a city; coarser rows have no city.
CITY_PRECISIONS: tuple[str, ...] = ("point", "postcode", "city", "admin2")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,63}$")
# Integration sides name economies by ISO-2 code: a member or group cannot look like one.
_ECONOMY_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Member:
    """One member of a region (a city, an economy).

    ``anchors`` and ``outside`` anchors are ``(geoname_id, name)`` pairs; ``polygons`` are
    tuples of ``(lon, lat)`` rings in degrees.
    """

    name: str
    economy: str | None = None
    geoname_ids: tuple[int, ...] = ()
    countries: tuple[str, ...] = ()
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    anchors: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Region:
    """A region: members, groups, the rules that place a location in a member.

    ``include`` is the members this region counts (all of them unless it is a group); the
    assignment still uses every member's rules, so a point of a left-out member is nobody's.
    """

    id: str
    name: str
    members: tuple[Member, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    anchor_domain: tuple[str, tuple[str, ...]] | None = None
    outside_anchors: tuple[tuple[int, str], ...] = ()
    include: tuple[str, ...] = ()
    note: str = ""
    source: str = ""

    @property
    def member_names(self) -> tuple[str, ...]:
        """The members this region counts, in file order."""
        return self.include or tuple(m.name for m in self.members)

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise ParameterError(f"region {self.id}: no member {name!r}",
                             hint="members: " + ", ".join(self.member_names))

    def economy_of(self, name: str) -> str | None:
        return self.member(name).economy

    def group(self, name: str) -> Region:
        """The region restricted to group ``name`` (same rules, fewer members counted)."""
        if name not in self.groups:
            raise ParameterError(f"region {self.id}: no group {name!r}",
                                 hint="groups: " + ", ".join(self.groups) if self.groups
                                 else "this region defines no groups")
        return replace(self, id=name, name=f"{name} ({self.name})", include=self.groups[name])

    def assign(self, lat, lon, *, country=None, precision=None, geoname_id=None,  # noqa: ANN001
               geocoder=None) -> np.ndarray:  # noqa: ANN001
        """The member each location falls in (``None`` outside the counted members).

        Parameters
        ----------
        lat, lon : array_like, shape (n,)
            Degrees (NaN where unlocated: such rows are nobody's).
        country : array_like of str or None, shape (n,), keyword-only
            The contribution's economy (ISO-2) where known; else the nearest place's.
        precision : array_like of str or None, shape (n,), keyword-only
            Location precision (:data:`stclusters.schema.PRECISIONS`); None means a point.
        geoname_id : array_like of int or None, shape (n,), keyword-only
            The GeoNames place the geocoder chose, where it chose one.
        geocoder : stclusters.geocode.Geocoder, optional, keyword-only
            For the nearest places (loaded when needed and not given).

        Returns
        -------
        numpy.ndarray of object, shape (n,)
        """
        from stclusters.regions._assign import assign  # noqa: PLC0415

        return assign(self, lat, lon, country=country, precision=precision,
                      geoname_id=geoname_id, geocoder=geocoder)


def shipped_regions() -> dict[str, str]:
    """Region and group ids shipped with stclusters → the file that defines them."""
    out: dict[str, str] = {}
    for path in sorted(_DATA.glob("*.yaml")):
        data = _read_yaml(path)
        if not isinstance(data, dict) or "members" not in data:
            continue  # claim files live beside the regions
        out[str(data.get("id"))] = path.name
        for g in data.get("groups") or {}:
            out[str(g)] = path.name
    return out


def load_region(region: str | Path) -> Region:
    """A region by shipped id or group (``"GBA"``, ``"PRD-9"``, case-insensitive) or by the
    path of a region YAML file (``file.yaml`` or ``file.yaml#GROUP``).

    Raises
    ------
    ParameterError
        Unknown id, unreadable file, or a file with problems (all of them in one message).
    """
    text = str(region)
    path_text, _, group = text.partition("#")
    path = Path(path_text)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ParameterError(f"{path}: no such region file",
                                 hint="give a shipped region id (" +
                                 ", ".join(shipped_regions()) + ") or a YAML file")
        reg = _parse(_read_yaml(path), str(path))
        return reg.group(group) if group else reg
    shipped = {k.casefold(): (k, v) for k, v in shipped_regions().items()}
    if text.casefold() not in shipped:
        raise ParameterError(f"unknown region {text!r}",
                             hint="shipped: " + ", ".join(shipped_regions())
                             + "; or give a region YAML file (docs/regions.md)")
    key, file_name = shipped[text.casefold()]
    reg = _parse(_read_yaml(_DATA / file_name), file_name)
    return reg if key == reg.id else reg.group(key)


def assign_members(region: Region, located: pa.Table, *, geocoder=None) -> pa.Array:  # noqa: ANN001
    """:meth:`Region.assign` over a located table's columns ``lat``, ``lon`` and, where present,
    ``country``, ``precision``, ``geoname_id``. Returns a string array, shape ``(n,)``."""
    def col(name: str) -> np.ndarray | None:
        if name not in located.column_names:
            return None
        return np.asarray(located.column(name).to_pylist(), dtype=object)

    lat = np.asarray(located.column("lat").to_numpy(zero_copy_only=False), dtype=np.float64)
    lon = np.asarray(located.column("lon").to_numpy(zero_copy_only=False), dtype=np.float64)
    names = region.assign(lat, lon, country=col("country"), precision=col("precision"),
                          geoname_id=col("geoname_id"), geocoder=geocoder)
    return pa.array(names.tolist(), pa.string())


def _read_yaml(path: Path) -> Any:
    import yaml  # noqa: PLC0415

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParameterError(f"{path}: cannot read the region file: {yaml_problem(exc)}",
                             hint="a region file is UTF-8 YAML (docs/regions.md)") from exc


def yaml_problem(exc: BaseException) -> str:
    """One line for a YAML (or I/O) error, with the line and column where the parser
    stopped (PyYAML's marks count from 0)."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return what
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}"


def _anchor_list(value: Any, where: str, problems: list[str]) -> tuple[tuple[int, str], ...]:
    if value is not None and not isinstance(value, list):
        problems.append(f"{where}: expected a list of [geonameid, name]")
        return ()
    out = []
    for i, item in enumerate(value or []):
        if (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], int)
                and not isinstance(item[0], bool) and isinstance(item[1], str)):
            out.append((int(item[0]), item[1]))
        else:
            problems.append(f"{where}[{i}]: expected [geonameid, name], got {item!r:.60}")
    return tuple(out)


def _ring(value: Any, where: str, problems: list[str]) -> tuple[tuple[float, float], ...]:
    ring = []
    try:
        for lon, lat in value:
            lon, lat = float(lon), float(lat)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError
            ring.append((lon, lat))
    except (TypeError, ValueError):
        problems.append(f"{where}: a polygon is a list of [lon, lat] pairs in degrees")
        return ()
    if len(ring) < 3:
        problems.append(f"{where}: a polygon needs at least 3 points")
    return tuple(ring)


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        problems.append(f"{where}: expected a list of strings")
        return ()
    return tuple(str(v) for v in value)


def _listed(item: dict, key: str, where: str, problems: list[str]) -> list:
    """``item[key]`` as a list (absent: empty); anything else is a problem."""
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where}.{key}: expected a list, got {type(value).__name__}")
        return []
    return value


def _parse_member(item: Any, i: int, problems: list[str]) -> Member | None:
    where = f"members[{i}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        problems.append(f"{where}: a member is a mapping with a 'name'")
        return None
    if _ECONOMY_CODE.match(item["name"].strip()):
        problems.append(f"{where}: the name {item['name']!r} reads as an economy's ISO-2 "
                        "code (CN, HK…): give the member a longer name")
    unknown = set(item) - {"name", "economy", "geoname_ids", "countries", "polygons", "anchors"}
    if unknown:
        problems.append(f"{where} ({item['name']}): unknown keys {sorted(unknown)}")
    ids = _listed(item, "geoname_ids", where, problems)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
        problems.append(f"{where} ({item['name']}): geoname_ids must be integers")
        ids = []
    member = Member(
        name=item["name"].strip(), economy=item.get("economy"),
        geoname_ids=tuple(int(v) for v in ids),
        countries=tuple(c.upper() for c in _strings(item.get("countries"), where, problems)),
        polygons=tuple(_ring(p, f"{where}.polygons[{j}]", problems)
                       for j, p in enumerate(_listed(item, "polygons", where, problems))),
        anchors=_anchor_list(_listed(item, "anchors", where, problems), f"{where}.anchors",
                             problems))
    if not (member.geoname_ids or member.countries or member.polygons or member.anchors):
        problems.append(f"{where} ({member.name}): no rule (geoname_ids, countries, polygons "
                        "or anchors)")
    return member


def _parse(data: Any, origin: str) -> Region:
    """A region from parsed YAML; every problem of the file in one message."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ParameterError(f"{origin}: a region file is a YAML mapping",
                             hint="see docs/regions.md for the layout")
    rid = data.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        problems.append("id: a short name (letters, digits, space, . _ ( ) -)")
        rid = str(rid)
    members = [m for i, item in enumerate(_listed(data, "members", "file", problems))
               if (m := _parse_member(item, i, problems)) is not None]
    if not members:
        problems.append("members: at least one member")
    names = [m.name for m in members]
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        problems.append(f"members: names given twice: {dup}")
    groups: dict[str, tuple[str, ...]] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        problems.append("groups: a mapping of group name → list of member names")
        raw_groups = {}
    for g, listed in raw_groups.items():
        listed = _strings(listed, f"groups.{g}", problems)
        missing = [n for n in listed if n not in names]
        if missing:
            problems.append(f"groups.{g}: not members: {missing}")
        if not listed:
            problems.append(f"groups.{g}: at least one member")
        if str(g) in names or _ECONOMY_CODE.match(str(g)):
            problems.append(f"groups.{g}: a group cannot take a member's name or an "
                            "economy's ISO-2 code")
        groups[str(g)] = listed
    domain = None
    if data.get("anchor_domain") is not None:
        d = data["anchor_domain"]
        if not isinstance(d, dict) or not isinstance(d.get("country"), str):
            problems.append("anchor_domain: {country: ISO-2, admin1: [GeoNames admin1 codes]}")
        else:
            domain = (d["country"].upper(), _strings(d.get("admin1"), "anchor_domain.admin1",
                                                     problems))
    outside = _anchor_list(data.get("outside_anchors"), "outside_anchors", problems)
    if any(m.anchors for m in members) and domain is None:
        problems.append("anchor_domain: required when members have anchors")
    if problems:
        raise ParameterError(f"{origin}: {len(problems)} problem(s) in the region file: "
                             + "; ".join(problems),
                             hint="see docs/regions.md for the layout")
    return Region(id=rid, name=str(data.get("name") or rid), members=tuple(members),
                  groups=groups, anchor_domain=domain, outside_anchors=outside,
                  note=str(data.get("note") or ""), source=origin)
