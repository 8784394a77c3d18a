"""The embedded store: one DuckDB workspace file per run.

Tables (created by the stages that own them):

============== ================================================ =======================
table          one row per                                      written by
============== ================================================ =======================
inputs         input file (path, kind, size, sha256)            :mod:`stclusters.store`
documents      input document                                   :mod:`stclusters.store`
raw_contributions  (document, contributor, address) as read     :mod:`stclusters.store`
quarantine     rejected record (file, position, reason)         :mod:`stclusters.store`
institutions   OpenAlex institution with coordinates (optional) :mod:`stclusters.store`
contributions  located contribution with fractional ``weight``  :mod:`stclusters.contributions`
points         (source, lat, lon) with summed weight, labels    :mod:`stclusters.contributions`, :mod:`stclusters.clusters.st`
clusters       S&T cluster (all, ranked or not)                 :mod:`stclusters.ranking`
ranking        published cluster (top N)                        :mod:`stclusters.ranking`
runs           run (parameters, version, timings)               :mod:`stclusters.pipeline`
============== ================================================ =======================
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from stclusters._sql import identifier, literals, utf8_text
from stclusters._tempdirs import private_dir
from stclusters.schema import DOCUMENT, QUARANTINE, RAW_CONTRIBUTION
from stclusters.sources import BUNDLE_KINDS
from stclusters.sources.openalex import INSTITUTION_GEO, MERGED_IDS

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def _ddl(name: str, schema: pa.Schema, extra: str = "") -> str:
    cols = ", ".join(f"{identifier(f.name)} {_DUCK_TYPES[f.type]}" for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {identifier(name)} ({extra}{cols})"


@dataclass(frozen=True)
class InputFile:
    """One input of a run, as recorded in the manifest."""

    input_id: int
    path: str
    kind: str
    size_bytes: int
    sha256: str


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


#: DuckDB's memory budget for a run, MB (``$STCLUSTERS_MEMORY_MB`` overrides). DuckDB's own
#: default is 80 % of RAM, which it then uses; a firm budget with a spill folder keeps a
#: 10M-contribution run near 3.4 GB resident, and was faster too (less memory to touch).
DEFAULT_MEMORY_MB = 2000


#: Prefix of the spill folders in the temporary folder.
SPILL_PREFIX = "stclusters-spill-"


def spill_dir() -> str:
    """This process's spill folder (for DuckDB connections besides the workspace's)."""
    return _spill_dir()


@functools.cache
def _spill_dir() -> str:
    """One spill folder per process, removed when the process ends, or by the next process
    if this one is killed (:mod:`stclusters._tempdirs`)."""
    return private_dir(SPILL_PREFIX)


def connect(path: str | Path | None = None, *, memory_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and initialise) a workspace; ``None`` keeps it in memory.

    Parameters
    ----------
    path : str or Path, optional
        DuckDB file; ``None`` = in memory (spilling to a temporary folder beyond the budget).
    memory_mb : int, optional
        DuckDB's memory budget, MB; default ``$STCLUSTERS_MEMORY_MB`` or
        :data:`DEFAULT_MEMORY_MB`.
    """
    memory_mb = memory_mb or int(os.environ.get("STCLUSTERS_MEMORY_MB", DEFAULT_MEMORY_MB))
    # Settings as connection config, never as SQL text: the spill folder's path comes from
    # $TMPDIR and may hold any character (a quote in it broke the old ``SET ... = '...'``).
    con = duckdb.connect(str(path) if path is not None else ":memory:",
                         config={"memory_limit": f"{int(memory_mb)}MB",
                                 "temp_directory": _spill_dir()})
    con.execute("SET enable_progress_bar = false")
    # Deterministic results: DuckDB keeps insertion order unless told otherwise; every
    # output query also sorts explicitly.
    con.execute("SET preserve_insertion_order = true")
    # records_read is tallied while reading, apart from the tables it must agree with.
    con.execute(
        "CREATE TABLE IF NOT EXISTS inputs (input_id INTEGER, path VARCHAR, kind VARCHAR, "
        "size_bytes BIGINT, sha256 VARCHAR, records_read BIGINT)"
    )
    con.execute(_ddl("documents", DOCUMENT, "input_id INTEGER, "))
    # doc_type rides along with each contribution so that counting needs no join back to
    # the documents (10M rows × 3M documents at world scale).
    # ``_row`` is the row number in a table input (null for documents), so the documents of
    # a table can be derived from these rows without a second copy.
    con.execute(_ddl("raw_contributions", RAW_CONTRIBUTION.append(pa.field("doc_type", pa.string()))
                     .append(pa.field("_row", pa.int64()))
                     .append(pa.field("domain", pa.string())), "input_id INTEGER, "))
    con.execute(_ddl("quarantine", QUARANTINE, "input_id INTEGER, "))
    # OpenAlex institutions with coordinates (optional lookup, see pipeline ``institutions``).
    con.execute(_ddl("institutions", INSTITUTION_GEO, "input_id INTEGER, "))
    # OpenAlex works merged into others (a snapshot's data/merged_ids/works): not counted.
    con.execute(_ddl("merged_ids", MERGED_IDS, "input_id INTEGER, "))
    # What an OpenAlex snapshot's manifests say of its parts (missing, incomplete, record
    # counts that differ from what was read): see stclusters.workspace.
    con.execute("CREATE TABLE IF NOT EXISTS snapshot_checks (entity_dir VARCHAR, part VARCHAR, "
                "problem VARCHAR, expected VARCHAR, found VARCHAR)")
    return con


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None
                ) -> pa.Table:
    """Run a query (with bound ``params``, if any) and return the whole result as an Arrow
    table (DuckDB 1.x and 2.x)."""
    rel = con.sql(sql) if params is None else con.sql(sql, params=params)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def visible_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the tables an unqualified name reaches from ``con``: those of its current
    schema (a ranking's own ``runN``, see :class:`stclusters.pipeline.Located`) and of
    ``main`` (the tables read once and shared), sorted."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() "
        "AND table_schema IN (current_schema(), 'main') ORDER BY 1").fetchall()]


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    """The single value of a one-row, one-column query (the result is fully consumed)."""
    return con.execute(sql).fetchall()[0][0]


def add_input(con: duckdb.DuckDBPyConnection, item: InputFile, *, records_read: int) -> None:
    """Record one input and the number of records its reader saw (used or not)."""
    con.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?)",
                [item.input_id, utf8_text(item.path), item.kind, item.size_bytes, item.sha256,
                 records_read])


#: Inputs whose records are documents (the others are rows of a contributions table).
DOCUMENT_KINDS = ("uspto-xml", "openalex")


def quarantine_duplicate_documents(con: duckdb.DuckDBPyConnection) -> int:
    """Keep one version of each ``(source, doc_id)``; quarantine the others.

    The newest version is the truth: the one with the latest ``updated_date`` (OpenAlex)
    wins; among versions of the same date, or without dates (USPTO, tables), the first read
    (inputs in path order, then file order). A dated version wins over an undated one.
    Versions that lose to a newer date are quarantined as ``superseded by a newer version``,
    the others as ``duplicate document``; the excerpt says where the kept one is. A removed
    document leaves with all its contribution rows, so no document counts twice. For
    document inputs one quarantine row stands for the document; for tables, one per row.

    Returns
    -------
    int
        Duplicate documents removed.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _dup AS {DUPLICATES_SQL}")
    n = int(con.execute("SELECT count(*) FROM _dup").fetchall()[0][0])
    if n:
        con.execute(f"INSERT INTO quarantine (input_id, file, position, source, field, reason, "
                    f"excerpt) {DUPLICATES_QUARANTINE_SQL}")
        con.execute(f"DELETE FROM raw_contributions r USING _dup d WHERE {RAW_DUPLICATE_MATCH}")
        con.execute("DELETE FROM raw_contributions r USING _dup d, inputs i "
                    f"WHERE {RAW_BUNDLE_DUPLICATE_MATCH}")
        con.execute(f"DELETE FROM documents x USING _dup d WHERE {DOCUMENT_DUPLICATE_MATCH}")
    con.execute("DROP TABLE _dup")
    return n


#: SQL: the versions of a ``(source, doc_id)`` that lose (see
#: :func:`quarantine_duplicate_documents`); each engine keeps it as ``_dup``. ``rowid`` is
#: the row's place in reading order (DuckDB's own; a column on Spark).
DUPLICATES_SQL = f"""
    SELECT d.input_id, d.source, d.doc_id, d.record_ref, d.first_ref, i.kind,
           i.kind IN ({literals((*DOCUMENT_KINDS, *BUNDLE_KINDS))}) AS is_document_kind,
           i.kind IN ({literals(BUNDLE_KINDS)}) AS is_bundle,
           CASE WHEN d.kept_date IS NOT NULL
                     AND (d.updated_date IS NULL OR d.kept_date > d.updated_date)
                THEN 'superseded by a newer version' ELSE 'duplicate document' END AS reason,
           CASE WHEN d.kept_date IS NOT NULL
                     AND (d.updated_date IS NULL OR d.kept_date > d.updated_date)
                THEN 'newer version (updated_date ' || d.kept_date || ') at ' || d.first_ref
                ELSE 'first read at ' || d.first_ref END AS excerpt
    FROM (SELECT input_id, source, doc_id, record_ref, updated_date,
                 row_number() OVER w AS k, first_value(record_ref) OVER w AS first_ref,
                 first_value(updated_date) OVER w AS kept_date
          FROM documents
          WINDOW w AS (PARTITION BY source, doc_id
                       ORDER BY updated_date DESC NULLS LAST, input_id, rowid)) d
    JOIN inputs i ON i.input_id = d.input_id
    WHERE d.k > 1"""

#: SQL: the quarantine rows of ``_dup`` (``input_id, file, position, source, field, reason,
#: excerpt``): one per document of a document input, one per row of a table input.
DUPLICATES_QUARANTINE_SQL = """
    SELECT input_id, regexp_extract(record_ref, '^(.*):([^:]*)$', 1) AS file,
           regexp_extract(record_ref, '^(.*):([^:]*)$', 2) AS position, source,
           'doc_id' AS field, reason, excerpt
    FROM _dup WHERE is_document_kind
    UNION ALL
    SELECT r.input_id, regexp_extract(r.record_ref, '^(.*):([^:]*)$', 1),
           regexp_extract(r.record_ref, '^(.*):([^:]*)$', 2), r.source, 'doc_id', d.reason,
           d.excerpt
    FROM raw_contributions r JOIN _dup d
      ON NOT d.is_document_kind AND r.input_id = d.input_id AND r.source = d.source
     AND r.doc_id = d.doc_id"""

#: SQL predicate: raw row ``r`` belongs to a removed version ``d`` of ``_dup``.
RAW_DUPLICATE_MATCH = """r.input_id = d.input_id AND r.source = d.source AND r.doc_id = d.doc_id
    AND (NOT d.is_document_kind OR r.record_ref = d.record_ref)"""

#: SQL predicate: raw row ``r`` (of input ``i``) is a contribution of a removed bundle
#: document ``d``. A bundle's contributions come from another file than its documents
#: (inventors vs patents); a bundle assembles each doc_id once, so (kind, source, doc_id) is
#: the key.
RAW_BUNDLE_DUPLICATE_MATCH = """d.is_bundle AND i.input_id = r.input_id AND i.kind = d.kind
    AND r.source = d.source AND r.doc_id = d.doc_id"""

#: SQL predicate: document ``x`` is a removed version ``d``.
DOCUMENT_DUPLICATE_MATCH = """x.input_id = d.input_id AND x.source = d.source
    AND x.doc_id = d.doc_id AND x.record_ref = d.record_ref"""


def with_doc_type(batch_contributions: pa.Table, batch_documents: pa.Table) -> pa.Table:
    """Contributions of a reader batch with their document's ``doc_type`` and ``domain``
    (matched on ``record_ref``, which a document and its contributions share)."""
    idx = pa.compute.index_in(batch_contributions.column("record_ref"),
                              value_set=batch_documents.column("record_ref"))
    return batch_contributions.append_column(
        "doc_type", pa.compute.take(batch_documents.column("doc_type"), idx)).append_column(
        "domain", pa.compute.take(batch_documents.column("domain"), idx))


def append(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, *, input_id: int) -> None:
    """Append an Arrow table to ``table`` (whose first column is ``input_id``)."""
    if data.num_rows == 0:
        return
    con.register("_append_view", data)
    try:
        cols = ", ".join(identifier(n) for n in data.column_names)
        con.execute(f"INSERT INTO {identifier(table)} (input_id, {cols}) "
                    f"SELECT {int(input_id)}, {cols} FROM _append_view")
    finally:
        con.unregister("_append_view")
