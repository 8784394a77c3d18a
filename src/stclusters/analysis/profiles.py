"""Cluster profiles: who and what makes each ranked S&T cluster (issue 9 §4).

For every ranked cluster (the ``ranking`` table, top N), from its used contributions
(``contributions`` joined to ``points`` on ``(source, lat, lon)``, which carries the S&T
cluster ``stc``), per source:

============== ==========================================================================
facet          rows
============== ==========================================================================
applicant      top applicants (``applicant``: a patent's first assignee), fractional counts
institution    top institutions (``institution_id``, else ``org``; label: the name)
tech_field     WIPO's 35 technology fields of the IPC/CPC code (``tech_field``), every
               source but ``publication``; codes in no field are counted as ``(unmapped)``
sci_field      ``publication`` only: the OpenAlex field of the primary topic, or for works
               without one (the 2022 shape) the top level-0 concept, as the reader kept it
sci_domain     ``publication`` only: the OpenAlex topic domain (``documents.domain``)
economy        the cluster's weight by economy (``country``); also over all sources
               (source ``all``), as the economy label is made
collaboration  documents with a used contribution outside the cluster, and abroad
growth         the cluster's rows of an ``editions`` table, when editions were ranked
============== ==========================================================================

Counting. ``weight`` is a fractional count: the sum of the cluster's contributions' weights
(exact: fixed-point ``weight_fx`` sums), so an applicant's weight is the cluster's share in
that applicant's documents; ``share_pct`` divides it by the cluster's weight of that source.
``n_docs`` is a whole count (distinct documents of the cluster with that key) and
``doc_share_pct`` divides it by the cluster's documents of that source. Every facet but
``collaboration`` and ``growth`` partitions the cluster's weight: its top ``top_k`` keys, then
``(other)`` (the rest, aggregated), ``(unmapped)`` (codes in no WIPO field) and ``(none)``
(no value), so its weights sum to the cluster's weight of that source. A facet whose column
the source does not carry at all (no value in any used record) gets one row ``(not in
source)`` instead.

Collaboration rule. A document *of the cluster* has at least one used contribution in it. It
has a co-contributor **outside the cluster** when another of its used contributions lies in
no cluster or in another one, and **abroad** when such an outside contribution is in an
economy that none of its in-cluster contributions is in (Shenzhen with Hong Kong inside one
cluster is not abroad; an unknown economy is never abroad). Contributions that were not used
(unlocated, coarse, out of window) are not seen. Both counts are given: whole (documents) and
fractional (the cluster's weight in those documents).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from stclusters._run_folder import open_run
from stclusters._sql import identifier, literal
from stclusters.analysis._wipo_fields import is_symbol, wipo_field
from stclusters.contributions import fx_to_weight
from stclusters.errors import ParameterError, StclustersError
from stclusters.store import fetch_arrow, visible_tables

if TYPE_CHECKING:  # pragma: no cover
    from stclusters.pipeline import RankResult

#: Facets in the order a profile lists them.
FACETS: tuple[str, ...] = ("economy", "applicant", "institution", "tech_field", "sci_field",
                           "sci_domain", "collaboration", "growth")

#: Keys of the rows that are not a value of the facet's column.
OTHER, NONE, UNMAPPED, NOT_IN_SOURCE = "(other)", "(none)", "(unmapped)", "(not in source)"
NO_EDITIONS, NOT_MATCHED = "(no editions)", "(not matched)"

#: Default number of keys listed per facet and source before ``(other)``.
DEFAULT_TOP_K = 10

#: The publication source: its ``tech_field`` is a scientific field (OpenAlex), not a code.
PUBLICATION = "publication"

#: ``source`` of the economy rows taken over every source of the cluster.
ALL_SOURCES = "all"

#: Columns of table ``profiles`` (and of ``profiles.csv`` / ``profiles.parquet``).
PROFILE_SCHEMA = pa.schema([
    pa.field("rank", pa.int64()),
    pa.field("cluster_id", pa.string()),
    pa.field("name", pa.string()),
    pa.field("facet", pa.string()),
    pa.field("source", pa.string()),
    pa.field("item", pa.int64()),          # 1-based order within (cluster, facet, source)
    pa.field("key", pa.string()),
    pa.field("label", pa.string()),
    pa.field("weight", pa.float64()),      # fractional count
    pa.field("share_pct", pa.float64()),   # % of the cluster's weight of that source
    pa.field("n_docs", pa.int64()),        # whole count: documents
    pa.field("doc_share_pct", pa.float64()),  # % of the cluster's documents of that source
    pa.field("growth_pct", pa.float64()),  # facet growth only: % change since the last edition
    pa.field("note", pa.string()),
])

#: Per facet: the column it reads, the noun of its keys, and what a missing value means.
_CATEGORICAL = {
    "applicant": ("applicant", "applicant", "no applicant given"),
    "institution": ("institution", "institution", "no institution given"),
    "tech_field": ("tech_field", "technology field", "no classification given"),
    "sci_field": ("tech_field", "scientific field", "no field given"),
    "sci_domain": ("domain", "domain", "no primary topic (OpenAlex 2022 shape)"),
    "economy": ("country", "economy", "economy unknown"),
}

_ROWS = "_profile_rows"
_PARTS = "_profile_parts"


def build_profiles(res: RankResult, *, top_k: int = DEFAULT_TOP_K,
                   editions: pa.Table | None = None) -> pa.Table:
    """Profiles of every ranked cluster of ``res``; also table ``profiles`` on ``res.con``.

    Parameters
    ----------
    res : RankResult
        A ranking (its ``contributions``, ``points``, ``clusters`` and ``ranking`` tables).
    top_k : int
        Keys listed per facet and source (applicants, institutions, fields, economies)
        before the rest is aggregated as ``(other)``; default 10.
    editions : pyarrow.Table, optional
        Editions table (``edition``, ``cluster_id``, ``prev_rank``, ``move``,
        ``<source>_growth_pct``); default: table ``editions`` of ``res.con`` if there is one.

    Returns
    -------
    pyarrow.Table
        Schema :data:`PROFILE_SCHEMA`, ordered by rank, facet (:data:`FACETS`), source, item.
    """
    return build_profiles_on(res.con, top_k=top_k, editions=editions)


def build_edition_profiles(editions: Any, *, top_k: int = DEFAULT_TOP_K) -> dict[str, pa.Table]:
    """Profiles of every edition of an :class:`stclusters.analysis.editions.Editions`, with
    growth: each edition's result gets the rows of its own edition in ``editions.table``
    (call before ``editions.write``, whose run folders then carry them).

    Returns
    -------
    dict of str to pyarrow.Table
        Edition name → its profiles (:data:`PROFILE_SCHEMA`).
    """
    import pyarrow.compute as pc  # noqa: PLC0415

    table = editions.table
    return {name: build_profiles(res, top_k=top_k, editions=table.filter(
                pc.equal(table.column("edition"), pa.scalar(str(name), table.schema.field(
                    "edition").type))))
            for name, res in editions.results.items()}


def build_profiles_on(con: duckdb.DuckDBPyConnection, *, top_k: int = DEFAULT_TOP_K,
                      editions: pa.Table | None = None) -> pa.Table:
    """:func:`build_profiles` on a connection holding a run's tables (creates ``profiles``)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ParameterError(f"top_k must be an integer >= 1, got {top_k!r}")
    tables = set(visible_tables(con))
    if editions is None and "editions" in tables:
        editions = fetch_arrow(con, "SELECT * FROM editions")
    try:
        _cluster_rows(con, with_domain="documents" in tables)
        _create_parts(con)
        carried = _carried(con)
        for facet in _CATEGORICAL:
            _add_categorical(con, facet, top_k=top_k, carried=carried)
        _add_collaboration(con)
        _add_growth(con, editions)
        con.execute(f"CREATE OR REPLACE TABLE profiles AS {_FINAL_SQL}")
    finally:
        con.execute("; ".join(f"DROP TABLE IF EXISTS {identifier(name)}"
                              for name in (_ROWS, _PARTS)))
        for name in ("_profile_codes", "_profile_editions"):
            try:
                con.unregister(name)
            except duckdb.Error:  # never registered: an earlier step failed first
                pass
    return fetch_arrow(con, f"SELECT * FROM profiles ORDER BY {ORDER_BY}").cast(PROFILE_SCHEMA)


def _cluster_rows(con: duckdb.DuckDBPyConnection, *, with_domain: bool) -> None:
    """Temp table of the ranked clusters' used contributions (the one join to ``points``)."""
    domain, join = (("d.domain", f"LEFT JOIN ({_DOMAINS}) d ON d.source = c.source "
                                 "AND d.doc_id = c.doc_id") if with_domain
                    else ("NULL::VARCHAR", ""))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_ROWS} AS
        SELECT k.stc, c.source, c.doc_id, c.weight_fx, c.applicant,
               coalesce(c.institution_id, c.org) AS institution, c.org, c.tech_field,
               c.country, {domain} AS domain
        FROM contributions c
        JOIN points p ON p.source = c.source AND p.lat = c.lat AND p.lon = c.lon
        JOIN clusters k ON k.stc = p.stc {join}
        WHERE c.status = 'used' AND k.cluster_id IN (SELECT cluster_id FROM ranking)""")


#: One topic domain per document (a document read twice is one row of ``documents`` already;
#: grouped anyway, so that no contribution is ever counted twice by this join).
_DOMAINS = "SELECT source, doc_id, min(domain) AS domain FROM documents GROUP BY source, doc_id"


def _create_parts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_PARTS} (
        stc BIGINT, facet VARCHAR, source VARCHAR, bucket INTEGER, sort_fx HUGEINT,
        key VARCHAR, label VARCHAR, fx HUGEINT, n_docs BIGINT, growth_pct DOUBLE,
        note VARCHAR)""")


def _carried(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, bool]]:
    """Per source, whether any of its used contributions (world-wide) carries each column."""
    with_domain = "documents" in set(visible_tables(con))
    domain = "count(d.domain) > 0" if with_domain else "FALSE"
    join = (f"LEFT JOIN ({_DOMAINS}) d ON d.source = c.source AND d.doc_id = c.doc_id"
            if with_domain else "")
    rows = con.execute(f"""
        SELECT c.source, count(c.applicant) > 0, count(coalesce(c.institution_id, c.org)) > 0,
               count(c.tech_field) > 0, {domain}
        FROM contributions c {join} WHERE c.status = 'used' GROUP BY c.source""").fetchall()
    return {s: {"applicant": a, "institution": i, "tech_field": t, "domain": d, "country": True}
            for s, a, i, t, d in rows}


def _applies(facet: str, source: str) -> bool:
    """Scientific facets are the publication source's; technology fields every other's."""
    if facet in ("sci_field", "sci_domain"):
        return source == PUBLICATION
    if facet == "tech_field":
        return source != PUBLICATION
    return True


def _add_categorical(con: duckdb.DuckDBPyConnection, facet: str, *, top_k: int,
                     carried: dict[str, dict[str, bool]]) -> None:
    """Rows of one categorical facet: top ``top_k`` keys, ``(other)``, ``(unmapped)``,
    ``(none)`` per cluster and source; ``(not in source)`` where the source has no value."""
    column, noun, none_label = _CATEGORICAL[facet]
    sources = [s for s in sorted(carried) if _applies(facet, s)]
    have = [s for s in sources if carried[s][column]]
    lacking = [s for s in sources if not carried[s][column]]
    if have:
        values_sql, values_params = _values(con, facet, column, have)
        _bucket(con, facet, values_sql, values_params, top_k=top_k, noun=noun,
                none_label=none_label)
    if lacking:
        what = {"domain": "topic domain"}.get(column, noun)  # the facet's word, not the column's
        con.execute(f"""
            INSERT INTO {_PARTS}
            SELECT DISTINCT stc, ?, source, 4, 0, ?, 'not in this source', NULL, NULL, NULL,
                   'the ' || source || ' records carry no ' || ?
            FROM {_ROWS} WHERE list_contains(?, source)""",
                    [facet, NOT_IN_SOURCE, what, lacking])


def _values(con: duckdb.DuckDBPyConnection, facet: str, column: str, sources: list[str]
            ) -> tuple[str, list[Any]]:
    """SQL (and its parameters) of a facet's rows ``(stc, source, doc_id, weight_fx, key,
    label, kind, code)``; ``kind``: ``value``, ``unmapped`` or ``none``. Economies also go in
    once as source ``all``."""
    col = identifier(column)
    if facet == "tech_field":
        _register_codes(con, sources)
        template = f"""
            SELECT r.stc, {{source}} AS source, r.doc_id, r.weight_fx,
                   m.key, m.label, CASE WHEN r.tech_field IS NULL THEN 'none'
                                        ELSE m.kind END AS kind, r.tech_field AS code
            FROM {_ROWS} r LEFT JOIN _profile_codes m ON m.code = r.tech_field
            WHERE list_contains(?, r.source)"""
    elif facet == "institution":
        # An institution id names one institution: its label is the name it was given
        # (the smallest, if the records spell it differently).
        template = f"""
            SELECT r.stc, {{source}} AS source, r.doc_id, r.weight_fx, r.institution AS key,
                   coalesce(min(r.org) OVER (PARTITION BY r.institution), r.institution)
                       AS label,
                   CASE WHEN r.institution IS NULL THEN 'none' ELSE 'value' END AS kind,
                   NULL AS code
            FROM {_ROWS} r WHERE list_contains(?, r.source)"""
    else:
        template = f"""
            SELECT r.stc, {{source}} AS source, r.doc_id, r.weight_fx, r.{col} AS key,
                   r.{col} AS label,
                   CASE WHEN r.{col} IS NULL THEN 'none' ELSE 'value' END AS kind,
                   NULL AS code
            FROM {_ROWS} r WHERE list_contains(?, r.source)"""
    select, params = template.format(source="r.source"), [sources]
    if facet == "economy":
        # A cluster's economy label is made over the weight of all its sources: so is this.
        select += " UNION ALL " + template.format(source=literal(ALL_SOURCES))
        params.append(sources)
    return select, params


def _register_codes(con: duckdb.DuckDBPyConnection, sources: list[str]) -> None:
    """View ``_profile_codes (code, key, label, kind)``: each distinct ``tech_field`` value
    mapped to its WIPO field (key ``06`` …); a symbol in no field is ``unmapped``; text that
    is no symbol and no field name is kept as it was given (a user's own categories)."""
    codes = [r[0] for r in con.execute(
        f"SELECT DISTINCT tech_field FROM {_ROWS} WHERE tech_field IS NOT NULL "
        "AND list_contains(?, source) ORDER BY 1", [sources]).fetchall()]
    keys, labels, kinds = [], [], []
    for code in codes:
        hit = wipo_field(code)
        if hit is not None:
            keys.append(f"{hit.field_no:02d}")
            labels.append(hit.field)
            kinds.append("value")
        elif is_symbol(code):
            keys.append(None)
            labels.append(None)
            kinds.append("unmapped")
        else:
            keys.append(code)
            labels.append(code)
            kinds.append("value")
    con.register("_profile_codes", pa.table({
        "code": pa.array(codes, pa.string()), "key": pa.array(keys, pa.string()),
        "label": pa.array(labels, pa.string()), "kind": pa.array(kinds, pa.string())}))


def _bucket(con: duckdb.DuckDBPyConnection, facet: str, values_sql: str,
            values_params: list[Any], *, top_k: int, noun: str, none_label: str) -> None:
    """Aggregate a facet's rows (``values_sql``) into its profile rows, exact integer sums.
    Bucket order within a facet: listed keys (0), the rest (1), unmapped (2), none (3),
    notes (4)."""
    con.execute(f"""
        INSERT INTO {_PARTS}
        WITH vals AS MATERIALIZED ({values_sql}),
        per_key AS (
            SELECT stc, source, key, min(label) AS label, sum(weight_fx) AS fx
            FROM vals WHERE kind = 'value' GROUP BY stc, source, key),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY stc, source ORDER BY fx DESC, key) AS pos
            FROM per_key),
        tagged AS (
            SELECT v.stc, v.source, v.doc_id, v.weight_fx, v.code, v.key AS value_key,
                   CASE WHEN v.kind <> 'value' THEN v.kind
                        WHEN r.pos <= ? THEN 'value' ELSE 'other' END AS bucket,
                   CASE WHEN v.kind = 'value' AND r.pos <= ? THEN v.key END AS key,
                   CASE WHEN v.kind = 'value' AND r.pos <= ? THEN r.label END AS label
            FROM vals v
            LEFT JOIN ranked r ON r.stc = v.stc AND r.source = v.source AND r.key = v.key),
        codes AS (
            -- The unmapped codes, most weight first, for the row's note.
            SELECT stc, source, string_agg(code || ' (' || n || ' docs)', ', '
                                           ORDER BY fx DESC, code) AS listed
            FROM (SELECT stc, source, code, count(DISTINCT doc_id) AS n, sum(weight_fx) AS fx,
                         row_number() OVER (PARTITION BY stc, source
                                            ORDER BY sum(weight_fx) DESC, code) AS pos
                  FROM tagged WHERE bucket = 'unmapped' GROUP BY stc, source, code)
            WHERE pos <= 5 GROUP BY stc, source)
        SELECT t.stc, ?, t.source,
               CASE t.bucket WHEN 'value' THEN 0 WHEN 'other' THEN 1 WHEN 'unmapped' THEN 2
                             ELSE 3 END AS bucket,
               sum(t.weight_fx) AS sort_fx,
               CASE t.bucket WHEN 'value' THEN t.key WHEN 'other' THEN ?
                             WHEN 'unmapped' THEN ? ELSE ? END AS key,
               CASE t.bucket WHEN 'value' THEN min(t.label)
                             WHEN 'other' THEN count(DISTINCT t.value_key) || ' other ' || ?
                             WHEN 'unmapped' THEN 'code in no WIPO field'
                             ELSE ? END AS label,
               sum(t.weight_fx) AS fx, count(DISTINCT t.doc_id) AS n_docs, NULL AS growth_pct,
               CASE WHEN t.bucket = 'unmapped' THEN 'codes: ' || min(c.listed) END AS note
        FROM tagged t LEFT JOIN codes c ON c.stc = t.stc AND c.source = t.source
        GROUP BY t.stc, t.source, t.bucket, t.key""",
                [*values_params, top_k, top_k, top_k, facet, OTHER, UNMAPPED, NONE, noun + "s",
                 none_label])
    if facet == "sci_field":
        _note_sci_basis(con)


def _note_sci_basis(con: duckdb.DuckDBPyConnection) -> None:
    """Say what a publication's field is: the OpenAlex primary topic's field, or (a work
    without primary topic, the 2022 shape) its top level-0 concept."""
    con.execute(f"""
        UPDATE {_PARTS} p SET note = b.note FROM (
            SELECT stc, source, tech_field AS key,
                   CASE WHEN bool_and(domain IS NOT NULL) THEN 'OpenAlex primary-topic field'
                        WHEN bool_and(domain IS NULL) THEN
                             'OpenAlex level-0 concept (work without primary topic)'
                        ELSE 'OpenAlex primary-topic field or level-0 concept' END AS note
            FROM {_ROWS} WHERE tech_field IS NOT NULL GROUP BY stc, source, tech_field) b
        WHERE p.facet = 'sci_field' AND p.bucket = 0 AND p.stc = b.stc
              AND p.source = b.source AND p.key = b.key""")


def _add_collaboration(con: duckdb.DuckDBPyConnection) -> None:
    """Rows ``documents``, ``outside_cluster`` and ``abroad`` per cluster and source (see
    the module's collaboration rule)."""
    con.execute(f"""
        INSERT INTO {_PARTS}
        WITH docs AS (
            SELECT stc, source, doc_id, sum(weight_fx) AS fx,
                   list_distinct(list(country)) AS inside_countries
            FROM {_ROWS} GROUP BY stc, source, doc_id),
        every AS (
            -- Every used contribution of those documents, wherever it is.
            SELECT c.source, c.doc_id, coalesce(p.stc, -1) AS stc, c.country
            FROM contributions c
            JOIN (SELECT DISTINCT source, doc_id FROM docs) d
                 ON d.source = c.source AND d.doc_id = c.doc_id
            LEFT JOIN points p ON p.source = c.source AND p.lat = c.lat AND p.lon = c.lon
            WHERE c.status = 'used'),
        flags AS (
            SELECT d.stc, d.source, d.doc_id, d.fx,
                   bool_or(e.stc <> d.stc) AS outside,
                   bool_or(e.stc <> d.stc AND e.country IS NOT NULL
                           AND NOT list_contains(d.inside_countries, e.country)) AS abroad
            FROM docs d JOIN every e ON e.source = d.source AND e.doc_id = d.doc_id
            GROUP BY d.stc, d.source, d.doc_id, d.fx),
        kinds AS (
            SELECT stc, source, doc_id, fx, 'documents' AS key, 0 AS pos FROM flags
            UNION ALL SELECT stc, source, doc_id, fx, 'outside_cluster', 1 FROM flags WHERE outside
            UNION ALL SELECT stc, source, doc_id, fx, 'abroad', 2 FROM flags WHERE abroad)
        SELECT stc, 'collaboration', source, 0, -pos, key,
               CASE key WHEN 'documents' THEN 'documents of the cluster'
                        WHEN 'outside_cluster' THEN 'with a co-contributor outside the cluster'
                        ELSE 'with a co-contributor abroad (outside the cluster, another economy)'
               END,
               sum(fx), count(*), NULL,
               CASE key WHEN 'documents' THEN
                   'whole count: documents with a used contribution in the cluster; '
                   || 'fractional: the cluster''s weight in them' END
        FROM kinds GROUP BY stc, source, key, pos""")
    # A cluster whose documents never leave it still says so (0 of its documents).
    con.execute(f"""
        INSERT INTO {_PARTS}
        SELECT p.stc, 'collaboration', p.source, 0, -k.pos, k.key, k.label, 0, 0, NULL, NULL
        FROM (SELECT DISTINCT stc, source FROM {_ROWS}) p
        CROSS JOIN (VALUES (1, 'outside_cluster', 'with a co-contributor outside the cluster'),
                           (2, 'abroad', 'with a co-contributor abroad (outside the cluster, '
                                         || 'another economy)')) k(pos, key, label)
        WHERE NOT EXISTS (SELECT 1 FROM {_PARTS} q WHERE q.facet = 'collaboration'
                          AND q.stc = p.stc AND q.source = p.source AND q.key = k.key)""")


def _add_growth(con: duckdb.DuckDBPyConnection, editions: pa.Table | None) -> None:
    """The cluster's rows of the editions table (growth of each source's weight), or one row
    saying that no editions were ranked."""
    if editions is None or editions.num_rows == 0:
        con.execute(f"""
            INSERT INTO {_PARTS}
            SELECT DISTINCT stc, 'growth', NULL, 4, 0, ?, 'no editions were ranked', NULL,
                   NULL, NULL, 'rank several editions (stclusters editions) to see growth'
            FROM {_ROWS}""", [NO_EDITIONS])
        return
    names = editions.column_names
    con.register("_profile_editions", editions)
    move = "e.move" if "move" in names else "NULL"
    prev = "e.prev_rank" if "prev_rank" in names else "NULL"
    status = "CAST(e.status AS VARCHAR)" if "status" in names else "NULL"
    order = "e.edition_order, e.edition" if "edition_order" in names else "e.edition"
    # Without growth columns the moves are still shown, once, for every source.
    growth_cols: list[str | None] = [c for c in names if c.endswith("_growth_pct")] or [None]
    for col in growth_cols:
        source = col[: -len("_growth_pct")] if col else None
        growth = f"CAST(e.{identifier(col)} AS DOUBLE)" if col else "NULL"
        con.execute(f"""
            INSERT INTO {_PARTS}
            SELECT k.stc, 'growth', ?, 0, -row_number() OVER (PARTITION BY k.stc
                                                               ORDER BY {order}),
                   CAST(e.edition AS VARCHAR),
                   nullif(concat_ws(', ', {status}, 'move ' || CAST({move} AS VARCHAR),
                                    'previous rank ' || CAST({prev} AS VARCHAR)), ''),
                   NULL, NULL, {growth}, NULL
            FROM _profile_editions e JOIN clusters k ON k.cluster_id = e.cluster_id
            WHERE k.stc IN (SELECT stc FROM {_ROWS})""", [source])
    con.execute(f"""
        INSERT INTO {_PARTS}
        SELECT DISTINCT r.stc, 'growth', NULL, 4, 0, ?, 'in no edition of the editions table',
               NULL, NULL, NULL, NULL
        FROM {_ROWS} r WHERE NOT EXISTS (
            SELECT 1 FROM {_PARTS} q WHERE q.facet = 'growth' AND q.stc = r.stc)""",
                [NOT_MATCHED])


_FACET_ORDER = "CASE facet " + " ".join(
    f"WHEN {literal(f)} THEN {i}" for i, f in enumerate(FACETS)) + " END"

#: The order of table ``profiles``: rank, facet (as in :data:`FACETS`), source, item.
ORDER_BY = f"rank, {_FACET_ORDER}, source NULLS FIRST, item"

#: The parts joined to their clusters, weights as fractions, shares of the cluster's own
#: weight and documents of that source (``all``: every source).
_FINAL_SQL = f"""
    WITH denom AS (
        SELECT stc, source, sum(weight_fx) AS fx, count(DISTINCT doc_id) AS n_docs
        FROM {_ROWS} GROUP BY stc, source
        UNION ALL
        SELECT stc, {literal(ALL_SOURCES)}, sum(weight_fx), count(DISTINCT (source, doc_id))
        FROM {_ROWS} GROUP BY stc)
    SELECT CAST(k.rank AS BIGINT) AS rank, k.cluster_id, k.name, p.facet,
           p.source,
           CAST(row_number() OVER (PARTITION BY k.rank, p.facet, p.source
                                   ORDER BY p.bucket, p.sort_fx DESC, p.key) AS BIGINT) AS item,
           p.key, p.label,
           {fx_to_weight('p.fx')} AS weight,
           CASE WHEN d.fx > 0 THEN {fx_to_weight('p.fx')} / {fx_to_weight('d.fx')} * 100 END
               AS share_pct,
           CAST(p.n_docs AS BIGINT) AS n_docs,
           CASE WHEN d.n_docs > 0 THEN p.n_docs / d.n_docs * 100 END AS doc_share_pct,
           p.growth_pct, p.note
    FROM {_PARTS} p JOIN clusters k ON k.stc = p.stc
    LEFT JOIN denom d ON d.stc = p.stc AND d.source = p.source
    ORDER BY {ORDER_BY}"""


# --------------------------------------------------------------------------- one cluster


@dataclass(frozen=True)
class ClusterProfile:
    """The profile of one ranked cluster: its rows of table ``profiles`` and a summary.

    ``str(profile)`` (or :meth:`render`) gives a text rendering; :meth:`to_dict` a
    JSON-ready dict (facet → source → rows).
    """

    rank: int
    cluster_id: str
    name: str
    economy: str
    weights: dict[str, float]
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    data_label: str | None = None

    def facet(self, name: str, source: str | None = None) -> list[dict[str, Any]]:
        """Rows of one facet (and source), in order."""
        if name not in FACETS:
            raise ValueError(f"no facet {name!r}; facets: {', '.join(FACETS)}")
        return [r for r in self.rows
                if r["facet"] == name and (source is None or r["source"] == source)]

    def to_dict(self) -> dict[str, Any]:
        """``{rank, cluster_id, name, economy, weights, data_label, facets}``; ``facets``
        maps facet → source (``all`` for rows of every source) → rows."""
        facets: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for r in self.rows:
            row = {k: _plain(v) for k, v in r.items()
                   if k not in ("rank", "cluster_id", "name", "facet", "source")}
            facets.setdefault(r["facet"], {}).setdefault(r["source"] or "all", []).append(row)
        return {"rank": self.rank, "cluster_id": self.cluster_id, "name": self.name,
                "economy": self.economy, "weights": dict(self.weights),
                "data_label": self.data_label, "facets": facets}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def render(self) -> str:
        """Plain-text profile: a header, then one block per facet and source."""
        head = f"#{self.rank} {self.name} ({self.economy}) [{self.cluster_id}]"
        if self.data_label:
            head = f"{self.data_label}: {head}"
        lines = [head, "  " + ", ".join(f"{s} {w:,.2f}" for s, w in sorted(self.weights.items()))]
        for facet_name in FACETS:
            for source, rows in _by_source(self.facet(facet_name)).items():
                lines.append(f"{facet_name} ({source or 'all sources'}):")
                lines += ["  " + format_row(r) for r in rows]
        return "\n".join(lines)

    __str__ = render


def format_row(row: dict[str, Any]) -> str:
    """One profile row as text: ``label  weight (share %)  docs (doc %)  [note]``."""
    parts = [str(row["label"] if row["label"] is not None else row["key"])]
    if row["weight"] is not None:
        parts.append(f"{row['weight']:,.2f}" + (f" ({row['share_pct']:.1f} %)"
                                                if row["share_pct"] is not None else ""))
    if row["n_docs"] is not None:
        parts.append(f"{row['n_docs']:,} docs" + (f" ({row['doc_share_pct']:.1f} %)"
                                                  if row["doc_share_pct"] is not None else ""))
    if row["growth_pct"] is not None:
        parts.append(f"growth {row['growth_pct']:+.1f} %")
    if row["note"]:
        parts.append(f"[{row['note']}]")
    return "  ".join(parts)


def _by_source(rows: Iterable[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["source"], []).append(r)
    return out


def _plain(value: Any) -> Any:
    """JSON has no NaN: a float NaN becomes None."""
    return None if isinstance(value, float) and value != value else value


def profile(res: RankResult, cluster: int | str, *, top_k: int = DEFAULT_TOP_K) -> ClusterProfile:
    """The profile of one ranked cluster of ``res``: by rank, ``cluster_id`` or name.

    Table ``profiles`` is built first if ``res`` has none (:func:`build_profiles`).

    Raises
    ------
    ParameterError
        No ranked cluster, or several, answer to ``cluster`` (the message lists candidates).
    """
    if "profiles" not in set(visible_tables(res.con)):
        build_profiles(res, top_k=top_k)
    return profile_on(res.con, cluster, data_label=res.label)


def profile_on(con: duckdb.DuckDBPyConnection, cluster: int | str, *,
               data_label: str | None = None) -> ClusterProfile:
    """:func:`profile` on a connection whose tables include ``profiles`` and ``ranking``."""
    row = resolve_cluster(con, cluster)
    weights = {c[: -len("_weight")]: float(row[c]) for c in row
               if c.endswith("_weight") and row[c] is not None and row[c] == row[c]}
    rows = fetch_arrow(con, f"SELECT * FROM profiles WHERE cluster_id = ? ORDER BY {ORDER_BY}",
                  [row["cluster_id"]]).to_pylist()
    return ClusterProfile(int(row["rank"]), row["cluster_id"], row["name"], row["economy"],
                          {s: w for s, w in weights.items() if w > 0}, tuple(rows), data_label)


def run_profile(run_dir: str | Path, cluster: int | str) -> ClusterProfile:
    """The profile of one ranked cluster of a finished run folder (its ``workspace.duckdb``,
    opened read-only; a workspace without table ``profiles`` has it built in memory).

    Raises
    ------
    StclustersError
        ``run_dir`` is no run folder, or its workspace cannot be opened.
    ParameterError
        No ranked cluster, or several, answer to ``cluster``.
    """
    con, _, label = open_run(run_dir)
    try:
        present = set(visible_tables(con))
        if "profiles" not in present:
            build_profiles_on(con)
        return profile_on(con, cluster, data_label=label)
    finally:
        con.close()


def resolve_cluster(con: duckdb.DuckDBPyConnection, cluster: int | str) -> dict[str, Any]:
    """The ``ranking`` row named by a rank, a ``cluster_id`` or a name (case-insensitive:
    the whole name, else the one name containing it).

    Raises
    ------
    ParameterError
        Unknown or ambiguous; the message lists the candidates (rank and name).
    """
    ranking = fetch_arrow(con, "SELECT * FROM ranking ORDER BY rank").to_pylist()
    text = str(cluster).strip()
    if isinstance(cluster, int) or text.isdigit():
        hits = [r for r in ranking if r["rank"] == int(text)]
        if not hits:
            raise ParameterError(f"no ranked cluster has rank {text} (ranks 1-{len(ranking)})",
                                 hint="give a rank, a cluster_id or a name")
        return hits[0]
    hits = [r for r in ranking if r["cluster_id"] == text]
    if not hits:
        folded = text.casefold()
        hits = [r for r in ranking if (r["name"] or "").casefold() == folded]
        if not hits:
            hits = [r for r in ranking if folded and folded in (r["name"] or "").casefold()]
    if len(hits) == 1:
        return hits[0]
    listed = ", ".join(f"#{r['rank']} {r['name']}" for r in hits[:10])
    if hits:
        more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
        raise ParameterError(f"{text!r} names {len(hits)} ranked clusters: {listed}{more}",
                             hint="give the rank number or the cluster_id")
    sample = ", ".join(f"#{r['rank']} {r['name']}" for r in ranking[:5])
    raise ParameterError(f"no ranked cluster is named {text!r}"
                         + (f"; ranked: {sample}{' …' if len(ranking) > 5 else ''}"
                            if ranking else "; the run ranked no cluster"),
                         hint="give a rank, a cluster_id or a name")
