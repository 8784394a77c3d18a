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
points         (source, lat, lon) with summed weight, labels    :mod:`stclusters.points`
clusters       S&T cluster (all, ranked or not)                 :mod:`stclusters.ranking`
ranking        published cluster (top N)                        :mod:`stclusters.ranking`
runs           run (parameters, version, timings)               :mod:`stclusters.pipeline`
============== ================================================ =======================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from stclusters.schema import DOCUMENT, QUARANTINE, RAW_CONTRIBUTION
from stclusters.sources.openalex import INSTITUTION_GEO

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def _ddl(name: str, schema: pa.Schema, extra: str = "") -> str:
    cols = ", ".join(f'"{f.name}" {_DUCK_TYPES[f.type]}' for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {name} ({extra}{cols})"


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


def connect(path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and initialise) a workspace; ``None`` keeps it in memory."""
    con = duckdb.connect(str(path) if path is not None else ":memory:")
    # Deterministic results: DuckDB keeps insertion order unless told otherwise; every
    # output query also sorts explicitly.
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        "CREATE TABLE IF NOT EXISTS inputs (input_id INTEGER, path VARCHAR, kind VARCHAR, "
        "size_bytes BIGINT, sha256 VARCHAR)"
    )
    con.execute(_ddl("documents", DOCUMENT, "input_id INTEGER, "))
    con.execute(_ddl("raw_contributions", RAW_CONTRIBUTION, "input_id INTEGER, "))
    con.execute(_ddl("quarantine", QUARANTINE, "input_id INTEGER, "))
    # OpenAlex institutions with coordinates (optional lookup, see pipeline ``institutions``).
    con.execute(_ddl("institutions", INSTITUTION_GEO, "input_id INTEGER, "))
    return con


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a query and return the whole result as an Arrow table (DuckDB 1.x and 2.x)."""
    rel = con.sql(sql)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    """The single value of a one-row, one-column query (the result is fully consumed)."""
    return con.execute(sql).fetchall()[0][0]


def add_input(con: duckdb.DuckDBPyConnection, item: InputFile) -> None:
    con.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?)",
                [item.input_id, item.path, item.kind, item.size_bytes, item.sha256])


def append(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, *, input_id: int) -> None:
    """Append an Arrow table to ``table`` (whose first column is ``input_id``)."""
    if data.num_rows == 0:
        return
    con.register("_append_view", data)
    try:
        cols = ", ".join(f'"{n}"' for n in data.column_names)
        con.execute(f"INSERT INTO {table} (input_id, {cols}) SELECT {input_id}, {cols} FROM _append_view")
    finally:
        con.unregister("_append_view")
