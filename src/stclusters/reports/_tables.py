"""Small pieces every writer of output tables shares: a labelled table, a Parquet file with
the same bytes on every run, and one line naming the file when the system refuses a write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters.errors import OutputWriteError
from stclusters.reports._atomic import atomic_path


def labelled(table: pa.Table, label: str | None) -> pa.Table:
    """``table`` with a leading ``data_label`` column (e.g. SYNTHETIC) when the run is
    labelled, so that no row can be taken for real data."""
    if not label:
        return table
    return table.add_column(0, "data_label", pa.array([label] * table.num_rows, pa.string()))


def write_parquet(table: pa.Table, path: Path) -> None:
    """``table`` to ``path`` atomically; fixed compression and no timestamps in Parquet, so
    the same table gives the same bytes."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def put_file(path: Path, write: Callable[[], None], written: list[Path] | None = None) -> Path:
    """Run ``write`` (which makes ``path`` atomically) and note the file in ``written``; the
    system's refusals (full disk, read-only) become one line naming the file."""
    try:
        write()
    except (OSError, duckdb.Error) as exc:
        # DuckDB reports a full disk as an IOException, or at commit as a
        # TransactionException whose text says so.
        if isinstance(exc, (OSError, duckdb.IOException)) or "No space left" in str(exc):
            raise OutputWriteError(path, exc) from exc
        raise
    if written is not None:
        written.append(path)
    return path
