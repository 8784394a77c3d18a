"""A run's used contributions with the region member each falls in (table
``region_contributions``), the common ground of the computed indicators and integration."""

from __future__ import annotations

from typing import Any

import duckdb

from stclusters.regions.definitions import Region, assign_members
from stclusters.store import fetch_arrow

#: Columns of ``region_contributions``.
COLUMNS = ("doc_id", "source", "year", "contributor_seq", "country", "member", "weight",
           "weight_fx", "address_seq", "lat", "lon")


def add_region_contributions(con: duckdb.DuckDBPyConnection, region: Region, *,
                             geocoder: Any = None) -> None:
    """Create TEMP TABLE ``region_contributions`` from ``con``'s ``contributions``.

    One row per contribution the run used (``status = 'used'``: in its metric's window, at
    a precision that clusters), with ``member`` the region member it falls in (NULL
    outside every counted member) and the run's fractional ``weight`` (and its exact
    fixed-point ``weight_fx``, see :mod:`stclusters.contributions`), and its ``lat, lon``
    (to join ``points`` without re-joining ``contributions``). Each distinct location
    is placed once (:meth:`Region.assign`), not each row.
    """
    keys = fetch_arrow(con, """
        SELECT DISTINCT lat, lon, country, precision, geoname_id
        FROM contributions WHERE status = 'used' ORDER BY ALL""")
    members = assign_members(region, keys, geocoder=geocoder)
    placed = keys.append_column("member", members)
    con.register("_region_placed", placed)
    try:
        con.execute("""
        CREATE OR REPLACE TEMP TABLE region_contributions AS
        SELECT c.doc_id, c.source, c.year, c.contributor_seq, c.country, p.member,
               c.weight, c.weight_fx, c.address_seq, c.lat, c.lon
        FROM contributions c JOIN _region_placed p
          ON p.lat = c.lat AND p.lon = c.lon
         AND p.country IS NOT DISTINCT FROM c.country
         AND p.precision IS NOT DISTINCT FROM c.precision
         AND p.geoname_id IS NOT DISTINCT FROM c.geoname_id
        WHERE c.status = 'used'""")
    finally:
        con.unregister("_region_placed")
