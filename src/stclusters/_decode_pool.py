"""Decoding document files (USPTO XML, OpenAlex JSON) in worker processes.

These readers parse in Python, so one process decodes at about one core's speed. With several
files (an OpenAlex snapshot's parts, a year of weekly USPTO files), worker processes decode
files side by side, each into Arrow IPC stream files in a private temporary folder (bounded
memory: batch by batch), and the main process appends them to the workspace, one transaction
per file, in path order. What lands in the workspace is the same, row for row, as reading the
files one after the other.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stclusters.errors import InputFormatError, ParameterError

#: Input kinds decoded in Python (worth a worker process each).
DECODED_KINDS = ("uspto-xml", "openalex", "openalex-institutions")

#: Below this many bytes of such files in one ingest, workers are not worth their start
#: (about half a second each: a fresh interpreter imports the readers).
PARALLEL_MIN_BYTES = 32 << 20

#: ``$STCLUSTERS_WORKERS``: decoding processes (``1``: decode in the main process).
WORKERS_ENV = "STCLUSTERS_WORKERS"

_TMP_PREFIX = "stclusters-decode-"


@dataclass(frozen=True)
class Decoded:
    """One file decoded by a worker: Arrow IPC stream files per workspace table, the
    quarantine, the records read; or the error that refused the whole file."""

    n_read: int = 0
    tables: tuple[tuple[str, str], ...] = ()  # (workspace table, IPC stream file)
    quarantine: pa.Table | None = None
    batches: tuple[int, ...] = ()  # records per batch, for progress
    error: tuple[str, str, str, str | None] | None = None  # InputFormatError's fields


def worker_count(n_files: int, n_bytes: int) -> int:
    """Decoding processes for ``n_files`` files of ``n_bytes`` together: one per core (at
    most one per file), or ``$STCLUSTERS_WORKERS``; 1 means no worker process at all."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise ParameterError(f"{WORKERS_ENV} must be an integer >= 1, got {raw!r}")
        return max(1, min(wanted, n_files))
    if n_files < 2 or n_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), n_files))


def decode_file(path: str, kind: str, source: str | None, batch_rows: int, tmp: str) -> Decoded:
    """Worker: decode one document file into IPC stream files below ``tmp``."""
    from stclusters.sources import read_source  # noqa: PLC0415 - in the worker
    from stclusters.sources._quarantine import Quarantine  # noqa: PLC0415
    from stclusters.sources.openalex import read_openalex_institutions  # noqa: PLC0415
    from stclusters.store import with_doc_type  # noqa: PLC0415

    q = Quarantine()
    stem = os.path.join(tmp, f"{os.getpid()}-{abs(hash(path))}")
    try:
        if kind == "openalex-institutions":
            table = read_openalex_institutions(Path(path), quarantine=q)
            out = f"{stem}-institutions.arrow"
            with pa.ipc.new_stream(out, table.schema) as w:
                w.write_table(table)
            return Decoded(table.num_rows + q.count, (("institutions", out),), q.to_table(),
                           (table.num_rows,))
        docs_out, rows_out = f"{stem}-documents.arrow", f"{stem}-contributions.arrow"
        n_docs, sizes = 0, []
        writers: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
        try:
            for batch in read_source(Path(path), kind=kind, quarantine=q, source=source,
                                     batch_size=batch_rows):
                rows = with_doc_type(batch.contributions, batch.documents)
                for name, out, data in (("documents", docs_out, batch.documents),
                                        ("raw_contributions", rows_out, rows)):
                    if name not in writers:
                        writers[name] = pa.ipc.new_stream(out, data.schema)
                    writers[name].write_table(data)
                n_docs += batch.documents.num_rows
                sizes.append(batch.documents.num_rows)
        finally:
            for w in writers.values():
                w.close()
        tables = tuple((name, out) for name, out in (("documents", docs_out),
                                                     ("raw_contributions", rows_out))
                       if name in writers)
        return Decoded(n_docs + q.count, tables, q.to_table(), tuple(sizes))
    except InputFormatError as exc:  # its fields cross the process boundary, not the object
        return Decoded(error=(exc.path, exc.expected, exc.detail, exc.hint))


def raise_if_refused(decoded: Decoded) -> None:
    """Raise the worker's :class:`InputFormatError` in the main process."""
    if decoded.error is not None:
        path, expected, detail, hint = decoded.error
        raise InputFormatError(path, expected, detail, hint=hint)


def ipc_batches(path: str) -> Iterator[pa.Table]:
    """The tables of an IPC stream file, one batch at a time (memory: one batch)."""
    with pa.OSFile(path, "rb") as f, pa.ipc.open_stream(f) as reader:
        for batch in reader:
            yield pa.Table.from_batches([batch])


class DecodePool:
    """Worker processes decoding the document files of an ingest ahead of the main process,
    at most ``2 × workers`` files ahead (bounded temporary disk use)."""

    def __init__(self, jobs: Sequence[tuple[str, str, str | None]], *, workers: int,
                 batch_rows: int) -> None:
        from stclusters._tempdirs import private_dir  # noqa: PLC0415

        self._jobs = list(jobs)  # (path, kind, source) in the order the main process takes them
        self._tmp = private_dir(_TMP_PREFIX)
        self._batch_rows = batch_rows
        # spawn: the main process holds DuckDB's threads, which a fork must not copy.
        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"))
        self._ahead = 2 * workers
        self._futures: dict[str, Future] = {}
        self._next = 0
        self._top_up()

    def _top_up(self) -> None:
        while self._next < len(self._jobs) and len(self._futures) < self._ahead:
            path, kind, source = self._jobs[self._next]
            self._futures[path] = self._pool.submit(decode_file, path, kind, source,
                                                    self._batch_rows, self._tmp)
            self._next += 1

    def result(self, path: str) -> Decoded:
        """The decoded file ``path`` (the next job in order), waiting for it if needed."""
        future = self._futures.pop(path)
        try:
            return future.result()
        finally:
            self._top_up()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
