"""Data-quality findings of a run: where a record's own fields disagree, say so, never silently.

Three checks, each a row per finding in the workspace table ``quality`` and a count in the
manifest (``manifest["quality"]``):

* ``point_outside_country``: a coordinate given by the record (table ``lat``/``lon``, OpenAlex
  institution ``geo``) lies outside the country the record states: no GeoNames place of that
  country lies within :data:`OUTSIDE_COUNTRY_KM` of it (PatentsView once had 223,195 such
  coordinates: Taoyuan in Hungary, "CA" read as California). The test runs on 0.1° cells
  (:data:`OUTSIDE_CELL_DEG`; a cell's centre is at most ~8 km from its points, small against
  the 50 km radius), so its cost follows the number of distinct cells, not of rows.
* ``text_country_differs``: an affiliation text names another country than the one stated
  for it (OpenAlex: the institution's ``country_code``; Intel US with "Neubiberg, Germany").
  The stated country wins (see :meth:`stclusters.geocode.Geocoder.geocode_affiliation`).
* ``stacked_on_centroid``: at least :data:`STACK_MIN_CONTRIBUTIONS` contributions of one
  source on exactly one coordinate at ``admin1`` or ``country`` precision (a state's or
  country's centroid standing for addresses that could not be placed finer).

``RankParams.quality_action`` decides what happens to the rows of the first two checks:
``keep`` (default: counted, the finding reported) or ``filter`` (status ``country_mismatch``,
not counted; in the accounting under that filter reason).

Rows with a coordinate but no country get the country of the nearest GeoNames place within
:data:`REVERSE_MAX_KM` (offline reverse geocoding; none beyond it: economy ``??``).
GeoNames (geonames.org), CC BY 4.0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from stclusters._sql import literals
from stclusters.store import fetch_arrow

#: A given point is outside its stated country when no place of that country is among its
#: nearest GeoNames places within this radius (km). 50 km tolerates coordinates of a city
#: rather than an address, border towns and coasts, and still catches a point put in
#: another country (Taoyuan in Hungary: 8,000 km; Ontario read as California: > 300 km).
OUTSIDE_COUNTRY_KM = 50.0
#: Cell size (degrees) of the outside test.
OUTSIDE_CELL_DEG = 0.1
#: Reverse geocoding: a point takes the country of the nearest place within this radius (km).
REVERSE_MAX_KM = 50.0
#: A coarse centroid holding at least this many contributions of one source is reported.
STACK_MIN_CONTRIBUTIONS = 20

#: The checks whose rows ``quality_action="filter"`` removes from the count.
COUNTRY_CHECKS = ("point_outside_country", "text_country_differs")
CHECKS = (*COUNTRY_CHECKS, "stacked_on_centroid")
#: Stated China, placed in a SAR: the method's economy split, not a disagreement.
_CN_SARS = ("HK", "MO", "TW")

QUALITY = pa.schema([
    pa.field("check", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("doc_id", pa.string()),
    pa.field("position", pa.string()),  # record_ref ("<file>:<position>") or "lat, lon"
    pa.field("field", pa.string()),
    pa.field("value", pa.string()),  # as written in the input
    pa.field("detail", pa.string()),
])


def _cell(expr: str) -> str:
    """SQL: the 0.1° cell index of a coordinate (integer, so joins are exact)."""
    return f"CAST(floor({expr} / {OUTSIDE_CELL_DEG!r}) AS BIGINT)"


#: SQL: the distinct given coordinates of rows without a country (reverse geocoded).
NO_COUNTRY_SQL = """
    SELECT DISTINCT lat, lon FROM (
        SELECT lat, lon FROM raw_contributions
        WHERE lat IS NOT NULL AND lon IS NOT NULL AND country IS NULL
        UNION ALL
        SELECT i.lat, i.lon FROM raw_contributions r JOIN institutions i
            ON i.id = r.institution_id
        WHERE r.lat IS NULL AND r.country IS NULL AND i.lat IS NOT NULL
          AND i.lon IS NOT NULL) AS q"""

#: SQL: the distinct (0.1° cell, stated country) pairs of given coordinates.
CELLS_SQL = f"""
    WITH pts AS (
        SELECT r.lat, r.lon, upper(r.country) AS country FROM raw_contributions r
        WHERE r.lat IS NOT NULL AND r.lon IS NOT NULL AND r.country IS NOT NULL
        UNION ALL
        SELECT i.lat, i.lon, upper(r.country) AS country
        FROM raw_contributions r JOIN institutions i ON i.id = r.institution_id
        WHERE r.lat IS NULL AND r.country IS NOT NULL
          AND i.lat IS NOT NULL AND i.lon IS NOT NULL)
    SELECT DISTINCT {_cell('lat')} AS cell_lat, {_cell('lon')} AS cell_lon, country
    FROM pts"""


def prepare(con: duckdb.DuckDBPyConnection, get_geocoder: Callable[[], Any]) -> dict[str, int]:
    """Build the lookups that :func:`stclusters.contributions.count_fractional` joins.

    * ``reverse_countries(lat, lon, country, distance_km)``: each distinct given coordinate
      of a row without a country → the nearest place's country within :data:`REVERSE_MAX_KM`.
    * ``outside_cells(cell_lat, cell_lon, country, detail)``: the (cell, stated country)
      pairs of given coordinates (table rows, OpenAlex institutions) that fail the outside test.

    Needs tables ``raw_contributions`` and ``institutions``. Returns counts for the manifest.
    """
    no_country = fetch_arrow(con, f"SELECT * FROM ({NO_COUNTRY_SQL}) ORDER BY ALL")
    cells = fetch_arrow(con, f"SELECT * FROM ({CELLS_SQL}) ORDER BY ALL")
    reverse, outside = lookup_tables(get_geocoder, no_country, cells)
    for name, table in (("reverse_countries", reverse), ("outside_cells", outside)):
        con.register("_lookup", table)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _lookup")
        con.unregister("_lookup")
    return {"points_without_country": no_country.num_rows,
            "cells_checked": cells.num_rows}


def lookup_tables(get_geocoder: Callable[[], Any], no_country: pa.Table, cells: pa.Table
                  ) -> tuple[pa.Table, pa.Table]:
    """``reverse_countries`` and ``outside_cells`` (see :func:`prepare`) from the distinct
    rows of :data:`NO_COUNTRY_SQL` and :data:`CELLS_SQL`, sorted."""
    geo = get_geocoder() if no_country.num_rows or cells.num_rows else None
    return _reverse(geo, no_country), _outside(geo, cells)


def _reverse(geo: Any, pts: pa.Table) -> pa.Table:
    lat = pts.column("lat").to_numpy()
    lon = pts.column("lon").to_numpy()
    if geo is not None and lat.size:
        country, dist, _ = geo.near_countries(lat, lon, k=1, max_km=REVERSE_MAX_KM)
        country, dist = country[:, 0], dist[:, 0]
    else:
        country, dist = np.empty(0, dtype=object), np.empty(0)
    return pa.table({"lat": pa.array(lat, pa.float64()), "lon": pa.array(lon, pa.float64()),
                     "country": pa.array(list(country), pa.string()),
                     "distance_km": pa.array(dist, pa.float64())})


_OUTSIDE_SCHEMA = pa.schema([("cell_lat", pa.int64()), ("cell_lon", pa.int64()),
                             ("country", pa.string()), ("detail", pa.string())])


def _outside(geo: Any, cells: pa.Table) -> pa.Table:
    if geo is None or cells.num_rows == 0:
        return _OUTSIDE_SCHEMA.empty_table()
    clat = cells.column("cell_lat").to_numpy()
    clon = cells.column("cell_lon").to_numpy()
    stated = np.asarray(cells.column("country").to_pylist(), dtype=object)
    lat = (clat + 0.5) * OUTSIDE_CELL_DEG
    lon = (clon + 0.5) * OUTSIDE_CELL_DEG
    to_country = np.empty(lat.size)
    for cc in sorted(set(stated.tolist())):  # one k-d tree per stated country
        mine = stated == cc
        to_country[mine] = geo.distance_to_country(lat[mine], lon[mine], cc)
    bad = np.nonzero(to_country > OUTSIDE_COUNTRY_KM)[0]
    near, dist, rows = geo.near_countries(lat[bad], lon[bad], k=1, max_km=np.inf)
    details = []
    for j, i in enumerate(bad.tolist()):
        far = ("none in the gazetteer" if np.isinf(to_country[i])
               else f"nearest {to_country[i]:.0f} km away")
        details.append(f"stated country {stated[i]}: no {stated[i]} place within "
                       f"{OUTSIDE_COUNTRY_KM:.0f} km ({far}); nearest place "
                       f"{geo.place_name(rows[j, 0])} ({near[j, 0]}), {dist[j, 0]:.0f} km")
    return pa.table({
        "cell_lat": pa.array(clat[bad], pa.int64()), "cell_lon": pa.array(clon[bad], pa.int64()),
        "country": pa.array(stated[bad].tolist(), pa.string()),
        "detail": pa.array(details, pa.string())}, schema=_OUTSIDE_SCHEMA)


def flag_sql(lat: str, lon: str, country: str, alias: str) -> tuple[str, str]:
    """(JOIN clause, flag expression) marking a given coordinate outside its stated country.

    ``alias`` names the joined ``outside_cells`` row; the flag is ``'point_outside_country'``
    or NULL.
    """
    join = (f"LEFT JOIN outside_cells {alias} ON {alias}.cell_lat = {_cell(lat)} "
            f"AND {alias}.cell_lon = {_cell(lon)} AND {alias}.country = upper({country})")
    flag = f"CASE WHEN {alias}.country IS NOT NULL THEN 'point_outside_country' END"
    return join, flag


def text_flag_sql(text_country: str, stated: str) -> str:
    """SQL flag of a geocoded row whose affiliation text names another country."""
    sars = literals(_CN_SARS)
    return (f"CASE WHEN {text_country} IS NOT NULL AND {stated} IS NOT NULL "
            f"AND {text_country} <> upper({stated}) "
            f"AND NOT (upper({stated}) = 'CN' AND {text_country} IN ({sars})) "
            f"THEN 'text_country_differs' END")


def report(con: duckdb.DuckDBPyConnection, *, action: str) -> dict[str, Any]:
    """Build table ``quality`` (schema :data:`QUALITY`, one row per finding, sorted) from
    ``contributions`` and return the manifest summary.

    Returns
    -------
    dict
        ``{"action": action, "counts": {check: n}, "filtered_contributions": n,
        "thresholds": {...}}``; every check is listed, with 0 when nothing was found.
    """
    con.execute(f"""
    CREATE OR REPLACE TABLE quality AS
    SELECT * FROM (
        SELECT c.quality_flag AS "check", c.source, c.doc_id, c.record_ref AS position,
               'lat/lon' AS field,
               CAST(c.lat AS VARCHAR) || ', ' || CAST(c.lon AS VARCHAR) AS value,
               o.detail
        FROM contributions c
        JOIN outside_cells o ON o.cell_lat = {_cell('c.lat')} AND o.cell_lon = {_cell('c.lon')}
             AND o.country = upper(c.country_stated)
        WHERE c.quality_flag = 'point_outside_country'
        UNION ALL
        SELECT c.quality_flag, c.source, c.doc_id, c.record_ref, 'address_raw', c.address_raw,
               'stated country ' || upper(c.country_stated) || '; the text names '
               || c.text_country || '; placed in ' || coalesce(c.country, '??') || ' at '
               || coalesce(c.precision, 'no') || ' precision'
        FROM contributions c WHERE c.quality_flag = 'text_country_differs'
        UNION ALL
        SELECT 'stacked_on_centroid', source, NULL,
               CAST(lat AS VARCHAR) || ', ' || CAST(lon AS VARCHAR), 'lat/lon',
               CAST(lat AS VARCHAR) || ', ' || CAST(lon AS VARCHAR),
               CAST(count(*) AS VARCHAR) || ' contributions at ' || precision
               || ' precision on this one coordinate (country '
               || coalesce(min(country), '??') || ')'
        FROM contributions
        WHERE precision IN ('admin1', 'country') AND lat IS NOT NULL
        GROUP BY source, lat, lon, precision HAVING count(*) >= {STACK_MIN_CONTRIBUTIONS}
    ) ORDER BY ALL""")
    counts = dict(con.execute(
        'SELECT "check", count(*) FROM quality GROUP BY ALL ORDER BY ALL').fetchall())
    filtered = con.execute(
        "SELECT count(*) FROM contributions WHERE status = 'country_mismatch'").fetchone()[0]
    return {
        "action": action,
        "counts": {c: int(counts.get(c, 0)) for c in CHECKS},
        "filtered_contributions": int(filtered),
        "thresholds": {"outside_country_km": OUTSIDE_COUNTRY_KM,
                       "outside_cell_deg": OUTSIDE_CELL_DEG,
                       "reverse_max_km": REVERSE_MAX_KM,
                       "stack_min_contributions": STACK_MIN_CONTRIBUTIONS},
    }
