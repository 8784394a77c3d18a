"""The units of a collaboration matrix and each document's weight in them: temp table
``_integration_units(source, doc_id, year, unit, fx)`` (one row per document and unit it
touches, ``fx`` the exact fixed-point sum of its used contributions there) and the units'
order, for :func:`stclusters.regions.integration.collaboration_matrix`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from stclusters.errors import ParameterError
from stclusters.regions._located import add_region_contributions
from stclusters.regions.definitions import Region

#: The table every unit builder fills.
UNITS_TABLE = "_integration_units"
#: A copy of ``region_contributions`` for the last region placed on the connection.
PLACED_TABLE = "_integration_rc"


def placed_contributions(con: duckdb.DuckDBPyConnection, region: Region, *,
                         geocoder: Any = None) -> str:
    """Name of a temp table holding ``region``'s ``region_contributions`` (see
    :func:`stclusters.regions.add_region_contributions`), made once per region and run.

    Placing every distinct location is the costly step; shares, matrix and figure of one
    region on one run share it. The key is the region's full definition, the schema the
    run's tables are in, and the count and exact weight of its used contributions, so a
    changed region or run is placed again.
    """
    stamp = con.execute("SELECT current_schema(), count(*), sum(weight_fx) FROM contributions "
                        "WHERE status = 'used'").fetchall()[0]
    key = hashlib.sha256(repr((region, stamp)).encode("utf-8")).hexdigest()
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _integration_placed (key VARCHAR)")
    if con.execute("SELECT count(*) FROM _integration_placed WHERE key = ?",
                   [key]).fetchall()[0][0]:
        return PLACED_TABLE
    add_region_contributions(con, region, geocoder=geocoder)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PLACED_TABLE} AS "
                "SELECT * FROM region_contributions")
    con.execute("DELETE FROM _integration_placed")
    con.execute("INSERT INTO _integration_placed VALUES (?)", [key])
    return PLACED_TABLE

#: Units spec: one region (its members), several (their members, labelled ``ID:member``),
#: a mapping label → region (each region one unit), or ``"clusters"`` (the ranked clusters).
Units = Region | Sequence[Region] | Mapping[str, Region] | str


def build_units(con: duckdb.DuckDBPyConnection, units: Units, *, top: int | None = None,
                geocoder: Any = None) -> tuple[str, ...]:
    """Fill :data:`UNITS_TABLE` for ``units``; return the unit labels in display order.

    Raises
    ------
    ParameterError
        Units that overlap (one location in two units), the same region twice, an empty
        list, an unknown keyword, ``top`` without ``"clusters"``.
    """
    is_clusters = isinstance(units, str) and units.casefold() == "clusters"
    if top is not None and not is_clusters:
        raise ParameterError(f"top={top}: the first N ranked clusters, only with the units "
                             "'clusters'", hint="add --matrix clusters, or drop --top")
    if isinstance(units, str):
        if not is_clusters:
            raise ParameterError(f"unknown units {units!r}",
                                 hint="give a region, regions, a mapping label → region, "
                                      "or 'clusters'")
        return _cluster_units(con, top=top)
    if isinstance(units, Region):
        return _region_units(con, [("", units, False)], geocoder=geocoder)
    if isinstance(units, Mapping):
        items = [(str(label), reg, True) for label, reg in units.items()]
    else:
        regs = list(units)
        if len(regs) == 1:
            return _region_units(con, [("", regs[0], False)], geocoder=geocoder)
        items = [(f"{reg.id}:", reg, False) for reg in regs]
    _check_distinct_ids([reg for _, reg, _ in items])
    if not items:
        raise ParameterError("no units: give at least one region",
                             hint="e.g. collaboration_matrix(con, load_region('GBA'))")
    return _region_units(con, items, geocoder=geocoder)


def _check_distinct_ids(regions: Sequence[Region]) -> None:
    """The same region twice (or two files with one ``id``) would fill its units twice and
    its labels would not clash: refuse, naming the id.

    Raises
    ------
    ParameterError
        Two of ``regions`` share an ``id``.
    """
    seen: set[str] = set()
    for reg in regions:
        if reg.id in seen:
            raise ParameterError(f"matrix units: region {reg.id!r} given twice (the same "
                                 "region, or two region files with that id)",
                                 hint="give each region once (--matrix GBA --matrix OTHER); "
                                      "give two files different ids")
        seen.add(reg.id)


def _labels(region: Region, prefix: str, whole: bool) -> dict[str, str]:
    """member → unit label."""
    return {m: (prefix if whole else f"{prefix}{m}") for m in region.member_names}


#: Each placed location of a multi-region matrix and the unit it is in (overlap check).
_OWNERS_TABLE = "_integration_owners"


def _record_owners(con: duckdb.DuckDBPyConnection, placed: str) -> None:
    """Add the placed locations' units (from ``_integration_labels``) to the owners."""
    con.execute(f"""
        INSERT INTO {_OWNERS_TABLE}
        SELECT DISTINCT r.lat, r.lon, l.unit
        FROM {placed} r JOIN _integration_labels l ON l.member = r.member""")


def _check_disjoint(con: duckdb.DuckDBPyConnection) -> None:
    """One location in two units would count its weight twice: refuse, naming both.

    Reads the owners recorded from each region's placement (:func:`placed_contributions`),
    so no region is placed a second time for the check.
    """
    clash = con.execute(f"""
        SELECT lat, lon, min(unit), max(unit) FROM {_OWNERS_TABLE}
        GROUP BY lat, lon HAVING count(DISTINCT unit) > 1
        ORDER BY lat, lon LIMIT 1""").fetchall()
    if clash:
        lat, lon, first, second = clash[0]
        raise ParameterError(
            f"units overlap: a location ({lat}, {lon}) is in {first!r} and {second!r}",
            hint="give regions that share no place (e.g. GBA and a region elsewhere)")


def _region_units(con: duckdb.DuckDBPyConnection, items: list[tuple[str, Region, bool]], *,
                  geocoder: Any) -> tuple[str, ...]:
    several = len(items) > 1
    if several:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_OWNERS_TABLE} (lat DOUBLE, lon DOUBLE, "
                    "unit VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {UNITS_TABLE} (source VARCHAR, doc_id VARCHAR, "
                "year INTEGER, unit VARCHAR, fx HUGEINT)")
    order: list[str] = []
    for prefix, region, whole in items:
        labels = _labels(region, prefix, whole)
        order += [u for u in dict.fromkeys(labels.values()) if u not in order]
        placed = placed_contributions(con, region, geocoder=geocoder)
        con.register("_integration_labels", pa.table({
            "member": pa.array(list(labels), pa.string()),
            "unit": pa.array(list(labels.values()), pa.string())}))
        try:
            con.execute(f"""
                INSERT INTO {UNITS_TABLE}
                SELECT r.source, r.doc_id, min(r.year), l.unit, sum(r.weight_fx)
                FROM {placed} r JOIN _integration_labels l ON l.member = r.member
                GROUP BY r.source, r.doc_id, l.unit""")
            if several:
                _record_owners(con, placed)
        finally:
            con.unregister("_integration_labels")
    if several:
        _check_disjoint(con)
    return tuple(order)


def _cluster_units(con: duckdb.DuckDBPyConnection, *, top: int | None) -> tuple[str, ...]:
    """The ranked clusters (``#rank name``), through ``points.stc`` (the join of
    :mod:`stclusters.analysis.profiles`: contributions meet points on source and
    coordinate)."""
    ranked = con.execute(
        "SELECT k.stc, '#' || k.rank || ' ' || k.name AS unit FROM clusters k "
        "WHERE k.cluster_id IN (SELECT cluster_id FROM ranking) ORDER BY k.rank").fetchall()
    if top is not None:
        ranked = ranked[:top]
    con.register("_integration_ranked", pa.table({
        "stc": pa.array([r[0] for r in ranked], pa.int64()),
        "unit": pa.array([r[1] for r in ranked], pa.string())}))
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {UNITS_TABLE} AS
            SELECT c.source, c.doc_id, min(c.year) AS year, k.unit,
                   CAST(sum(c.weight_fx) AS HUGEINT) AS fx
            FROM contributions c
            JOIN points p ON p.source = c.source AND p.lat = c.lat AND p.lon = c.lon
            JOIN _integration_ranked k ON k.stc = p.stc
            WHERE c.status = 'used'
            GROUP BY c.source, c.doc_id, k.unit""")
    finally:
        con.unregister("_integration_ranked")
    return tuple(r[1] for r in ranked)
