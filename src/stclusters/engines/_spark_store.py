"""The Spark engine's store: every input file read once, in a Spark task, into Parquet.

Layout of a store folder::

    files/<sha256>/<table>.parquet   what the project's reader made of the file (tables of
                                     :data:`stclusters.workspace.WORKSPACE_TABLES` and the
                                     bundles' staging tables), ``input_id`` 0, with ``_row``
                                     (the row's place in reading order)
    files/<sha256>/meta.json         path, kind, size, sha256, records read

A task reads one file with exactly the reader of the single-machine engine (an in-memory
DuckDB inside the task), so both engines read the same records; it writes a temporary
folder and renames it into place, so a file is in the store whole or not at all, and a file
whose content is there already is not read again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

#: Tables of a file that the driver computes itself, not the task.
_DRIVER_TABLES = frozenset({"snapshot_checks"})


def files_dir(store: str) -> Path:
    return Path(store) / "files"


def stored_files(store: str) -> dict[str, dict[str, Any]]:
    """sha256 → meta of every file complete in the store."""
    out = {}
    folder = files_dir(store)
    if folder.is_dir():
        for d in sorted(folder.iterdir()):
            meta = d / "meta.json"
            if d.is_dir() and not d.name.startswith(".") and meta.is_file():
                out[d.name] = json.loads(meta.read_text(encoding="utf-8"))
    return out


def hash_task(path: str) -> tuple[str, int, str]:
    """``(path, size_bytes, sha256)`` of one input file (run inside a Spark task)."""
    from stclusters.workspace import size_and_sha256  # noqa: PLC0415 - in the executor

    size, sha = size_and_sha256(Path(path))
    return path, size, sha


def read_task(item: dict[str, Any]) -> dict[str, Any]:
    """Read one input file into ``<store>/files/<sha256>/`` (run inside a Spark task).

    ``item``: ``path, kind, source, size, sha256, store, batch_rows`` (and ``uri``, the
    name of a file fetched by Spark into ``path``). Returns the file's
    meta (``records_read``, ``rejected``, the tables written), or ``{"error": …}`` for a
    file that cannot be read as its kind.
    """
    from stclusters.errors import InputFormatError  # noqa: PLC0415

    try:
        return _read_into_store(item)
    except InputFormatError as exc:
        # Handed back to the driver, which raises it as the DuckDB engine would (Spark would
        # retry the task, then wrap the error in a Java stack trace).
        return {"error": {"path": exc.path, "expected": exc.expected, "detail": exc.detail,
                          "hint": exc.hint}}


def _read_into_store(item: dict[str, Any]) -> dict[str, Any]:
    from stclusters import store as st  # noqa: PLC0415 - in the executor
    from stclusters._sql import identifier  # noqa: PLC0415
    from stclusters.workspace import Input, _ingest_file  # noqa: PLC0415

    final = files_dir(item["store"]) / item["sha256"]
    if (final / "meta.json").is_file():
        return json.loads((final / "meta.json").read_text(encoding="utf-8"))
    tmp = files_dir(item["store"]) / f".tmp-{item['sha256']}-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        con = st.connect(None)
        con.execute("SET threads = 1")  # Spark runs one task per core
        done = _ingest_file(con, Input(item["path"], item["kind"], item["source"]),
                            item["kind"], size=item["size"], sha=item["sha256"],
                            batch_rows=item["batch_rows"], on_batch=None)
        shown = item.get("uri") or item["path"]  # a fetched file is named by its URI
        con.execute("UPDATE inputs SET path = ?", [shown])
        tables = []
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'main' ORDER BY 1").fetchall():
            if name in _DRIVER_TABLES:
                continue
            data = st.fetch_arrow(con, f"SELECT (rowid)::BIGINT AS _stc_row, * FROM {identifier(name)} "
                                       "ORDER BY rowid")
            if data.num_rows:
                pq.write_table(data, tmp / f"{name}.parquet")
                tables.append(name)
        con.close()
        meta = {"path": shown, "kind": item["kind"], "size_bytes": item["size"],
                "sha256": item["sha256"], "records_read": done.records_read,
                "rejected": done.rejected, "tables": tables}
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():  # not a concurrent twin: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sweep_stale(store: str, *, older_than_s: float = 6 * 3600) -> list[str]:
    """Remove the temporary folders (``files/.tmp-<sha256>-<uuid>``) that reading tasks
    killed midway left in ``store``, once nothing in them changed for ``older_than_s``
    seconds: a younger one may be another run's task, still writing. Returns the folders
    removed (those that could not be removed are left, and not returned)."""
    import re  # noqa: PLC0415
    import time  # noqa: PLC0415

    pattern = re.compile(r"\.tmp-[0-9a-f]{64}-[0-9a-f]{32}")
    folder = files_dir(store)
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for d in sorted(folder.iterdir()):
        if not pattern.fullmatch(d.name) or d.is_symlink() or not d.is_dir():
            continue
        try:
            # The newest change inside: a task writes its tables after a long read.
            newest = max([d.stat().st_mtime] + [p.stat().st_mtime for p in d.iterdir()])
        except OSError:  # gone meanwhile (its task finished or failed): nothing to do
            continue
        if newest < cutoff:
            shutil.rmtree(d, ignore_errors=True)
            if not d.exists():
                removed.append(str(d))
    return removed
