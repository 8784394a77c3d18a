"""Located contributions and fractional counting (methodology §1–3), in SQL on DuckDB.

The SQL sticks to what Spark SQL also speaks (GROUP BY + joins, no DISTINCT window
aggregates), so the same plan can run on a cluster later.

Weights are summed exactly: every weight is also kept as a fixed-point integer
``weight_fx = round(weight · 2^52)`` and sums are taken over those integers. Integer sums do
not depend on the order of the rows, so totals are byte-identical whatever the input order or
the number of threads (a float sum is not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from stclusters import quality
from stclusters._sql import literal, literals
from stclusters.params import RankParams
from stclusters.store import fetch_arrow, scalar
from stclusters.schema import GEOCODE_FIELDS, PRECISIONS, RAW_CONTRIBUTION

#: Fixed-point scale of ``weight_fx``; weights are ≤ 1, so ``weight_fx`` fits in a BIGINT and
#: sums of up to 2^75 contributions fit DuckDB's HUGEINT.
WEIGHT_SCALE = float(2**52)

#: Why a contribution does not take part in clustering (in the order they are tested).
FILTER_REASONS = ("metric_not_configured", "source_excluded", "out_of_window", "merged_away", "doc_type_excluded", "domain_excluded",
                  "unlocated", "coarse_precision",
                  "country_mismatch")

_ADDRESS_KEY = ("city", "admin1", "country", "postcode", "address_raw", "org")


def _key_expr(field: str, alias: str) -> str:
    """SQL of one address-key field of row ``alias``. The organisation's name only helps to
    place a free-text address (no ``city``): elsewhere it is left out of the key, so that a
    patent's assignee does not multiply its inventors' distinct addresses."""
    if field == "org":
        return f"CASE WHEN {alias}.city IS NULL THEN {alias}.org END"
    return f"{alias}.{field}"


def _lambda(param: str, body: str) -> str:
    """SQL of a list lambda in the installed DuckDB's syntax: ``lambda x: …`` (1.3 and
    later; DuckDB 2 refuses the older ``x -> …``, which is all that 1.1 and 1.2 read)."""
    major_minor = tuple(int(p) for p in duckdb.__version__.split(".")[:2])
    return f"lambda {param}: {body}" if major_minor >= (1, 3) else f"{param} -> {body}"


def fx_to_weight(expr: str) -> str:
    """SQL turning a fixed-point sum back into a weight (DOUBLE)."""
    return f"(CAST({expr} AS DOUBLE) / {WEIGHT_SCALE!r})"


#: SQL: the distinct address keys that need the geocoder (rows without a coordinate, and
#: not located through their OpenAlex institution).
ADDRESS_KEYS_SQL = f"""
    SELECT DISTINCT {", ".join(f"{_key_expr(k, 'r')} AS {k}" for k in _ADDRESS_KEY)}
    FROM raw_contributions r
    WHERE r.lat IS NULL AND NOT EXISTS (
        SELECT 1 FROM institutions i
        WHERE i.id = r.institution_id AND i.lat IS NOT NULL AND i.lon IS NOT NULL)"""

#: SQL: table ``geocodes`` from the geocoded keys ``_geocodes`` and the gazetteer's
#: ``_places (geoname_id, country)``. The economy of a contribution is where it was placed:
#: a raw affiliation string naming Hamburg puts its row in DE even if the institution
#: record said IN.
GEOCODES_SQL = """
    SELECT g.*, p.country AS place_country
    FROM _geocodes g LEFT JOIN _places p ON p.geoname_id = g.geoname_id"""


def geocode_keys(keys: pa.Table, geocoder: Any) -> pa.Table:
    """Geocode distinct address keys (the columns of :data:`ADDRESS_KEYS_SQL`).

    Returns the key columns, :data:`stclusters.schema.GEOCODE_FIELDS` and ``text_country``
    (the country the affiliation text names; it may disagree with the stated one), one row
    per key, in the order given.
    """
    n = keys.num_rows
    # The geocoder takes raw-contribution rows; give the key columns and blank the rest.
    cols = {}
    for f in RAW_CONTRIBUTION:
        if f.name in _ADDRESS_KEY:
            cols[f.name] = keys.column(f.name)
        elif not f.nullable:
            fill = 0 if pa.types.is_integer(f.type) else "key"
            cols[f.name] = pa.array([fill] * n, type=f.type)
        else:
            cols[f.name] = pa.nulls(n, type=f.type)
    located = geocoder.geocode_table(pa.table(cols, schema=RAW_CONTRIBUTION)) if n else None
    return pa.table(
        {**{k: keys.column(k) for k in _ADDRESS_KEY},
         **{f.name: (located.column(f.name) if located is not None else pa.array([], f.type))
            for f in GEOCODE_FIELDS},
         "text_country": (located.column("text_country") if located is not None
                          else pa.array([], pa.string()))})


def place_countries(geocoder: Any | None) -> pa.Table:
    """``(geoname_id, country)`` of every gazetteer place (empty without a geocoder)."""
    if geocoder is None:
        return pa.table({"geoname_id": pa.array([], pa.int64()),
                         "country": pa.array([], pa.string())})
    return geocoder.places().select(["geoname_id", "country"])


def locate(con: duckdb.DuckDBPyConnection, get_geocoder: Callable[[], Any]) -> dict[str, int]:
    """Geocode every distinct address that has no coordinate, into table ``geocodes``.

    Parameters
    ----------
    get_geocoder : callable
        Returns a :class:`stclusters.geocode.Geocoder`; called only if some address needs
        geocoding (loading the gazetteer costs a second), and then once per distinct key.

    Also builds the lookups of :func:`stclusters.quality.prepare` (reverse geocoding of
    coordinates without a country, the outside-its-country test of given coordinates).

    Returns
    -------
    dict
        ``{"distinct_addresses": n, "matched": m, "points_without_country": k,
        "cells_checked": c}``.
    """
    distinct = fetch_arrow(con, f"SELECT * FROM ({ADDRESS_KEYS_SQL}) ORDER BY ALL")
    n = distinct.num_rows
    geocoder = get_geocoder() if n else None
    con.register("_geocodes", geocode_keys(distinct, geocoder))
    con.register("_places", place_countries(geocoder))
    con.execute(f"CREATE OR REPLACE TABLE geocodes AS {GEOCODES_SQL}")
    con.unregister("_geocodes")
    con.unregister("_places")
    matched = scalar(con, "SELECT count(*) FROM geocodes WHERE lat IS NOT NULL")
    return {"distinct_addresses": n, "matched": int(matched),
            **quality.prepare(con, get_geocoder)}


def source_params_table(params: RankParams, sources: list[str]) -> pa.Table:
    """Table ``_source_params`` (source, first_year, last_year, doc_types, left_out, domains):
    the user's windows and document types reach the SQL as data, never as text."""
    sps = [params.source(s) for s in sources]
    return pa.table({
        "source": pa.array(sources, pa.string()),
        "first_year": pa.array([sp.first_year for sp in sps], pa.int32()),
        "last_year": pa.array([sp.last_year for sp in sps], pa.int32()),
        "doc_types": pa.array([None if sp.doc_types is None else list(sp.doc_types) for sp in sps],
                              pa.list_(pa.string())),
        # A metric left out of the run (RankParams.excluded_sources), or named nowhere (a
        # typo of a table's source): read and accounted, not counted.
        "left_out": pa.array([None if s in params.metrics else
                              "source_excluded" if s in params.excluded_sources else
                              "metric_not_configured" for s in sources], pa.string()),
        # OpenAlex topic domains counted: a publications-only filter (RankParams).
        "domains": pa.array([list(params.publication_domains)
                             if s == "publication" and params.publication_domains is not None
                             else None for s in sources], pa.list_(pa.string())),
    })


#: SQL: the metrics present in the raw rows (the counting plan takes their parameters).
SOURCES_SQL = "SELECT DISTINCT source FROM raw_contributions ORDER BY 1"


@dataclass(frozen=True)
class CountingPlan:
    """The fractional counting as SQL, written once in DuckDB's dialect; each engine runs it
    (DuckDB as it is, Spark after :func:`stclusters.engines.transpile.to_spark`).

    Attributes
    ----------
    weights_sql : str
        SELECT of ``_rid, weight, weight_fx`` for every used row (materialised as ``_weights``).
    contributions_sql : str
        SELECT of the table ``contributions`` (joins ``_weights``).
    source_params : pa.Table
        Registered as ``_source_params`` before either runs.

    Both read ``raw_contributions`` (its ``rowid``: a unique row key), ``institutions``,
    ``geocodes``, ``reverse_countries``, ``outside_cells`` and ``merged_ids``. They share the
    located rows and their statuses (CTE ``st``), which DuckDB streams through both
    (materialising the wide rows once spilled at 10M rows); an engine that would rather
    compute them once runs the *staged* form: ``statuses_sql`` materialised as
    ``_statuses``, then ``staged_weights_sql`` and ``staged_contributions_sql`` over it
    (the same text after ``st``).
    """

    weights_sql: str
    contributions_sql: str
    source_params: pa.Table
    statuses_sql: str = ""
    staged_weights_sql: str = ""
    staged_contributions_sql: str = ""


def counting_plan(params: RankParams, sources: list[str]) -> CountingPlan:
    """The counting plan of ``params`` for the metrics ``sources`` (see :class:`CountingPlan`).

    Builds ``contributions``: status and fractional weight of every contribution.

    ``status`` is ``used`` or one of :data:`FILTER_REASONS`. A used contribution of document
    ``d`` by contributor ``c`` at one of its ``k`` used addresses weighs
    ``1 / n(d) / k`` with ``n(d)`` the number of contributors of ``d`` that have a used
    address (``counting="located"``) or all its contributors (``counting="all"``).
    Rows of one document therefore sum to 1 (or to ``n_located/n_all``).
    """
    sources = list(sources) or ["patent"]
    min_rank = PRECISIONS.index(params.min_precision)
    prec_case = "CASE precision_ " + " ".join(
        f"WHEN {literal(p)} THEN {i}" for i, p in enumerate(PRECISIONS)) + " ELSE 99 END"
    n_denominator = "n_all" if params.counting == "all" else "n_located"
    key_match = " AND ".join(f"g.{k} IS NOT DISTINCT FROM {_key_expr(k, 'r')}"
                             for k in _ADDRESS_KEY)
    # The raw fields are kept beside the parsed ones: country_stated, postcode, address_raw.
    common = ("r.rowid AS _rid, r.input_id, r.doc_id, r.source, r.year, r.contributor_seq, r.address_seq, "
              "r.country, r.admin1, r.city, r.org, r.tech_field, r.applicant, r.institution_id, "
              "r.record_ref, r.doc_type, r.domain, r.country AS country_stated, r.postcode, r.address_raw")
    # A given coordinate without a country takes the country of where it is (reverse
    # geocoding, stclusters.quality); a stated country is kept, a disagreement flagged.
    common_given = common.replace("r.country,", "coalesce(r.country, rc.country) AS country,", 1)
    given_join, given_flag = quality.flag_sql("r.lat", "r.lon", "r.country", "oc")
    inst_join, inst_flag = quality.flag_sql("i.lat", "i.lon", "r.country", "oc")
    # A geocoded row takes the country of the place it was matched to (the stated one, or
    # for a text without one, the country the text names).
    common_geo = common.replace(
        "r.country,", "coalesce(g.place_country, r.country, g.text_country) AS country,", 1)
    text_flag = quality.text_flag_sql("g.text_country", "r.country")
    filter_flagged = "TRUE" if params.quality_action == "filter" else "FALSE"
    flagged = literals(quality.COUNTRY_CHECKS)
    ctes = f"""
    WITH sp AS (SELECT * FROM _source_params),
    inst AS (
        -- One coordinate per institution id (the last file read wins, as in a snapshot).
        SELECT id, arg_max(lat, input_id) AS lat, arg_max(lon, input_id) AS lon,
               arg_max(geonames_city_id, input_id) AS geonames_city_id
        FROM institutions WHERE lat IS NOT NULL AND lon IS NOT NULL GROUP BY id
    ),
    located AS NOT MATERIALIZED (
        -- Rows the source located keep their coordinate; only the others meet the geocodes.
        SELECT {common_given}, r.lat, r.lon, coalesce(r.precision, 'point') AS precision_,
               NULL::BIGINT AS geoname_id, 'given' AS geocode_status,
               NULL::VARCHAR AS text_country, {given_flag} AS quality_flag
        FROM raw_contributions r
        LEFT JOIN reverse_countries rc ON rc.lat = r.lat AND rc.lon = r.lon
        {given_join}
        WHERE r.lat IS NOT NULL
        UNION ALL
        -- OpenAlex institution coordinates (geo.latitude/longitude: the institution's city).
        SELECT {common_given}, i.lat, i.lon, 'city' AS precision_,
               TRY_CAST(i.geonames_city_id AS BIGINT) AS geoname_id,
               'institution' AS geocode_status,
               NULL::VARCHAR AS text_country, {inst_flag} AS quality_flag
        FROM raw_contributions r JOIN inst i ON i.id = r.institution_id
        LEFT JOIN reverse_countries rc ON rc.lat = i.lat AND rc.lon = i.lon
        {inst_join}
        WHERE r.lat IS NULL
        UNION ALL
        SELECT {common_geo}, g.lat, g.lon, g.precision AS precision_, g.geoname_id,
               coalesce(g.geocode_status, 'unmatched:not-geocoded') AS geocode_status,
               g.text_country, {text_flag} AS quality_flag
        FROM raw_contributions r LEFT JOIN geocodes g ON {key_match}
        WHERE r.lat IS NULL AND NOT EXISTS (SELECT 1 FROM inst i WHERE i.id = r.institution_id)
    ),
    st AS NOT MATERIALIZED (
        SELECT l.*,
          CASE
            WHEN sp.left_out IS NOT NULL THEN sp.left_out
            WHEN (sp.first_year IS NOT NULL OR sp.last_year IS NOT NULL) AND (l.year IS NULL
                  OR l.year < coalesce(sp.first_year, l.year)
                  OR l.year > coalesce(sp.last_year, l.year)) THEN 'out_of_window'
            -- An OpenAlex work merged into another (snapshot merged_ids) is that one now.
            WHEN l.source = 'publication' AND l.doc_id IN (SELECT id FROM merged_ids)
                  THEN 'merged_away'
            WHEN sp.doc_types IS NOT NULL AND l.doc_type IS NOT NULL
                  AND NOT list_contains(sp.doc_types, l.doc_type) THEN 'doc_type_excluded'
            WHEN sp.domains IS NOT NULL AND l.domain IS NOT NULL
                  AND NOT list_contains(sp.domains, l.domain) THEN 'domain_excluded'
            WHEN l.lat IS NULL OR l.lon IS NULL THEN 'unlocated'
            WHEN ({prec_case}) > {min_rank} THEN 'coarse_precision'
            WHEN {filter_flagged} AND l.quality_flag IN ({flagged}) THEN 'country_mismatch'
            ELSE 'used'
          END AS status
        FROM located l LEFT JOIN sp ON sp.source = l.source
    )"""
    # Two passes over the rows, neither materialising them: the weights from the keys and
    # statuses alone (a narrow table keyed by the raw row), then the one wide write. One
    # pass materialised the wide located rows and joined them to their shares (at 10M rows,
    # beyond DuckDB's memory budget: spilled to disk).
    weights_tail = f"""
    -- One grouping by document (not one by contributor, then one by document, and the rows
    -- joined to both: 10M rows hashed on strings four times). A document's used rows are
    -- few: their contributor numbers, as a list, give each used row its n_addr.
    per_doc AS MATERIALIZED (
        SELECT source, doc_id,
               array_length(list_distinct(list(contributor_seq))) AS n_all,
               array_length(list_distinct(list(contributor_seq) FILTER (WHERE status = 'used'))) AS n_located,
               count(*) FILTER (WHERE status = 'used') AS n_used,
               list(contributor_seq) FILTER (WHERE status = 'used') AS used_seqs
        FROM st GROUP BY source, doc_id
    ),
    shares AS (
        SELECT st._rid, d.{n_denominator} AS n_den,
               -- Every used contributor at one address (the common case): no list to scan.
               CASE WHEN d.n_used = d.n_located THEN 1 ELSE array_length(list_filter(
                   d.used_seqs, {_lambda('x', 'x = st.contributor_seq')})) END AS n_addr
        FROM st JOIN per_doc d ON d.source = st.source AND d.doc_id = st.doc_id
        WHERE st.status = 'used'
    )
    SELECT _rid, CAST(1 AS DOUBLE) / n_den / n_addr AS weight,
           CAST(round(CAST({int(WEIGHT_SCALE)} AS DOUBLE) / n_den / n_addr) AS BIGINT) AS weight_fx
    FROM shares
    """
    contributions_tail = """
    SELECT st.input_id, st.doc_id, st.source, st.year, st.contributor_seq, st.address_seq,
           -- + 0.0 turns -0.0 into 0.0: one point, one cluster id, on both engines (Spark's
           -- grouping folds -0.0 into 0.0, DuckDB's keeps them apart).
           st.lat + CAST(0 AS DOUBLE) AS lat, st.lon + CAST(0 AS DOUBLE) AS lon,
           st.precision_ AS precision, st.country, st.admin1, st.city, st.org,
           st.tech_field, st.applicant, st.institution_id, st.geoname_id, st.geocode_status,
           st.record_ref, st.doc_type, st.status, st.country_stated, st.postcode,
           st.address_raw, st.text_country, st.quality_flag,
           coalesce(w.weight, 0.0) AS weight, coalesce(w.weight_fx, 0) AS weight_fx
    FROM st LEFT JOIN _weights w ON w._rid = st._rid
    """
    staged = "WITH st AS (SELECT * FROM _statuses)"
    return CountingPlan(f"{ctes}, {weights_tail}", f"{ctes} {contributions_tail}",
                        source_params_table(params, sources),
                        statuses_sql=f"{ctes} SELECT * FROM st",
                        staged_weights_sql=f"{staged}, {weights_tail}",
                        staged_contributions_sql=f"{staged} {contributions_tail}")


def count_fractional(con: duckdb.DuckDBPyConnection, params: RankParams) -> None:
    """Build table ``contributions`` on DuckDB: :func:`counting_plan` run as it is written."""
    sources = [r[0] for r in con.execute(SOURCES_SQL).fetchall()]
    plan = counting_plan(params, sources)
    con.register("_source_params", plan.source_params)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _weights AS {plan.weights_sql}")
        con.execute(f"CREATE OR REPLACE TABLE contributions AS {plan.contributions_sql}")
    finally:
        con.execute("DROP TABLE IF EXISTS _weights")
        con.unregister("_source_params")


#: SQL: the used weight split by point and economy (``??`` unknown); one pass over the
#: contributions serves the points and the economy labels (:data:`CLUSTERED_BY_COUNTRY`).
POINT_COUNTRIES_SQL = """
    SELECT source, lat, lon, coalesce(country, '??') AS country,
           sum(weight_fx) AS weight_fx, count(*) AS n_contributions
    FROM contributions WHERE status = 'used'
    GROUP BY source, lat, lon, coalesce(country, '??')"""

#: SQL: the exact sums of :data:`POINT_COUNTRIES_SQL` per point; the DOUBLE ``weight`` is
#: derived from ``weight_fx`` afterwards, by DuckDB for both engines (one conversion).
POINTS_FX_SQL = """
    SELECT source, lat, lon, sum(weight_fx) AS weight_fx,
           CAST(sum(n_contributions) AS BIGINT) AS n_contributions,
           CASE WHEN count(*) = 1 THEN min(country) END AS country
    FROM point_countries
    GROUP BY source, lat, lon"""

#: SQL: table ``points`` from a relation ``_points_fx`` of :data:`POINTS_FX_SQL`'s columns.
POINTS_FROM_FX_SQL = f"""
    SELECT source, lat, lon, {fx_to_weight('weight_fx')} AS weight,
           CAST(weight_fx AS HUGEINT) AS weight_fx, n_contributions, country
    FROM _points_fx"""


def aggregate_points(con: duckdb.DuckDBPyConnection) -> None:
    """Build table ``points``: used weight summed per ``(source, lat, lon)`` (methodology §3).

    Columns: ``source, lat, lon, weight`` (DOUBLE), ``weight_fx`` (exact HUGEINT sum),
    ``n_contributions``, ``country`` (the economy of all its weight; NULL when the weight is
    split across economies). Unordered: the clustering reads it sorted by ``(source, lat,
    lon)`` and writes it back in that order (one sort of millions of points, not two). Also
    table ``point_countries`` (:data:`POINT_COUNTRIES_SQL`).
    """
    con.execute(f"CREATE OR REPLACE TABLE point_countries AS {POINT_COUNTRIES_SQL}")
    con.execute(f"CREATE OR REPLACE TABLE points AS WITH _points_fx AS ({POINTS_FX_SQL}) "
                f"{POINTS_FROM_FX_SQL}")


#: SQL: the clustered weight by point and economy (``source, lat, lon, country, stc,
#: weight_fx``), once clusters are labelled. A point of one economy (nearly all) is read from
#: ``points`` as it is; only the points split across economies meet ``point_countries``
#: (a join of the two whole tables took seconds at 10M contributions).
CLUSTERED_BY_COUNTRY = """
    SELECT source, lat, lon, country, stc, weight_fx FROM points
    WHERE stc >= 0 AND country IS NOT NULL
    UNION ALL
    SELECT c.source, c.lat, c.lon, c.country, p.stc, c.weight_fx
    FROM point_countries c JOIN points p USING (source, lat, lon)
    WHERE p.stc >= 0 AND p.country IS NULL"""


def world_totals(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Sum of used weight per source (= documents with a located contributor, by default)."""
    rows = con.execute(
        f"SELECT source, {fx_to_weight('sum(weight_fx)')} FROM contributions "
        "WHERE status = 'used' GROUP BY source ORDER BY source").fetchall()
    return {s: float(w) for s, w in rows}
