"""Inputs given as URIs (``s3a://``, ``hdfs://``, ``abfss://``, ``gs://``, ``file:``), read
through Spark's own file systems.

The driver lists them with Hadoop's ``FileSystem`` (globs, folders, OpenAlex snapshot
layouts); Spark's ``binaryFile`` source then brings each file's bytes to a Python task,
which keeps them in a private local folder under the file's name and runs the project's
reader on it (:func:`stclusters.engines._spark_store.read_task`), as for a local file. A
file is thus fetched to be hashed, but read only when its content is new to the store.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from stclusters.errors import InputFormatError

#: ``scheme://`` or ``scheme:/`` of two letters or more (``C:\`` is a Windows path).
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")

#: The snapshot entities read, by folder name (as :data:`~stclusters.sources.openalex.SNAPSHOT_KINDS`).
_ENTITY_KINDS = {"works": "openalex", "institutions": "openalex-institutions"}


def is_uri(path: str) -> bool:
    """Is ``path`` a URI for Spark's file systems rather than a local path?"""
    return bool(_URI.match(str(path)))


def _hidden(rel: PurePosixPath) -> bool:
    """Hadoop's convention (``_SUCCESS``, ``.crc``): such files are no data."""
    return any(part.startswith((".", "_")) for part in rel.parts)


def _snapshot_kind(rel: PurePosixPath) -> str | None:
    """The kind of a file below a folder that holds an OpenAlex snapshot, or None (a file
    the snapshot reader leaves out: manifests, other entities, the Parquet copy)."""
    from stclusters.workspace import MERGED_IDS_KIND  # noqa: PLC0415

    parts = rel.parts
    if len(parts) >= 3 and parts[-3:-1] == ("merged_ids", "works") \
            and rel.name.endswith((".csv.gz", ".csv")):
        return MERGED_IDS_KIND
    dated = [i for i, p in enumerate(parts[:-1]) if p.startswith("updated_date=")]
    if not dated or not rel.name.endswith(".gz"):
        return None
    if dated[0] == 0:  # the entity folder itself was given
        return "openalex"
    return _ENTITY_KINDS.get(parts[dated[0] - 1])


def folder_kinds(files: list[str], root: str, kind: str) -> list[tuple[str, str]]:
    """``(uri, kind)`` of the files listed below folder ``root``, in URI order: an OpenAlex
    snapshot (parts in ``updated_date=*`` folders) is its works and institutions parts and
    merged ids; any other folder is its files, each of ``kind`` (``auto``: told by its
    task), tables of a bulk bundle that no reader uses passed over."""
    from stclusters.workspace import _unused_bundle_table  # noqa: PLC0415

    rels = {f: PurePosixPath(f[len(root):].lstrip("/")) for f in files}
    rels = {f: r for f, r in rels.items() if not _hidden(r)}
    if any(p.startswith("updated_date=") for r in rels.values() for p in r.parts[:-1]):
        pairs = ((f, _snapshot_kind(r)) for f, r in rels.items())
        return sorted((f, k) for f, k in pairs if k is not None)
    return sorted((f, kind) for f, r in rels.items() if not _unused_bundle_table(Path(r.name)))


def list_inputs(spark, inputs) -> list[tuple[Any, str]]:
    """Every file of the URI ``inputs`` (:class:`~stclusters.workspace.Input`) with its
    kind, as :func:`~stclusters.workspace.expand_inputs` does for local paths; the inputs
    are named by Hadoop's qualified URI (``file:/data/x.csv``, ``s3a://bucket/key``).

    Raises
    ------
    InputFormatError
        An input that does not exist (or a glob that matches nothing), or a folder holding
        no file.
    """
    from stclusters.workspace import Input  # noqa: PLC0415

    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    out: list[tuple[Any, str]] = []
    for item in sorted(inputs, key=lambda i: (i.path, i.kind)):
        try:
            path = jvm.org.apache.hadoop.fs.Path(item.path)
            fs = path.getFileSystem(conf)
            statuses = fs.globStatus(path)
        except Exception as exc:  # noqa: BLE001 - py4j wraps the Java exception
            message = _java_message(exc)
            connector = "ClassNotFound" in message or "No FileSystem for scheme" in message
            raise InputFormatError(
                item.path, "an input Spark can read", message,
                hint="Spark lacks this file system's connector: add it, e.g. --spark-conf "
                     "spark.jars.packages=org.apache.hadoop:hadoop-aws:<pyspark's Hadoop "
                     "version> for s3a:// (docs/spark.md)" if connector else
                     "check the URI and the file system's settings "
                     "(--spark-conf spark.hadoop.…)") from exc
        if not statuses:
            raise InputFormatError(item.path, "an input file",
                                   "no such file or directory (or the glob matches nothing)")
        for status in statuses:
            uri = status.getPath().toString()
            if not status.isDirectory():
                out.append((Input(uri, item.kind, item.source), item.kind))
                continue
            files, it = [], fs.listFiles(status.getPath(), True)
            while it.hasNext():
                files.append(it.next().getPath().toString())
            pairs = folder_kinds(files, uri, item.kind)
            if not pairs:
                raise InputFormatError(uri, "a supported input", "the folder holds no files")
            out.extend((Input(f, k, item.source), k) for f, k in pairs)
    return out


def _java_message(exc: Exception) -> str:
    """The Java exception's own message, not py4j's stack trace."""
    text = str(getattr(exc, "java_exception", exc) or exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first.split(": ", 1)[-1] if first.startswith(("java.", "org.")) else first


#: What a remote read task returns per file: its meta as JSON.
RESULT_SCHEMA = pa.schema([pa.field("meta", pa.string())])


def local_name(uri: str) -> PurePosixPath:
    """Where a fetched file is kept below its task's folder: its name, under its parent
    folder's name (an OpenAlex part's ``updated_date=…`` folder dates its records)."""
    p = PurePosixPath(urlsplit(uri).path)
    return PurePosixPath(p.parent.name or "_", p.name)


def read_batches(batches: Iterator[pa.RecordBatch], *, wanted: dict[str, tuple[str, str | None]],
                 store: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Spark's ``binaryFile`` rows (``path``, ``content``…) → one meta per file (run inside
    a task by ``mapInArrow``): the file hashed, and read into the store unless its content
    is there already; a file that cannot be read as its kind gives ``{"error": …}``."""
    from stclusters.engines._spark_store import read_task  # noqa: PLC0415

    for batch in batches:
        metas = []
        paths, contents = batch.column("path"), batch.column("content")
        for i in range(batch.num_rows):
            uri = paths[i].as_py()
            if uri not in wanted:
                continue
            kind, source = wanted[uri]
            metas.append(json.dumps(_read_one(uri, contents[i].as_py(), kind, source,
                                              store=store, batch_rows=batch_rows,
                                              read_task=read_task), sort_keys=True))
        if metas:
            yield pa.RecordBatch.from_arrays([pa.array(metas, pa.string())],
                                             schema=RESULT_SCHEMA)


def _read_one(uri: str, content: bytes, kind: str, source: str | None, *, store: str,
              batch_rows: int, read_task) -> dict[str, Any]:
    from stclusters.sources import detect_kind  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="stclusters-fetch-"))
    try:
        local = folder / local_name(uri)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(content)
        sha = hashlib.sha256(content).hexdigest()
        try:
            told = detect_kind(local) if kind == "auto" else kind
        except InputFormatError as exc:
            return {"error": {"path": uri, "expected": exc.expected, "detail": exc.detail,
                              "hint": exc.hint}}
        meta = read_task({"path": str(local), "uri": uri, "kind": told, "source": source,
                          "size": len(content), "sha256": sha, "store": store,
                          "batch_rows": batch_rows})
        if "error" in meta:
            meta["error"]["path"] = uri
            return meta
        return {**meta, "path": uri, "run_kind": told}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
