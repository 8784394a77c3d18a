"""What every reader yields, and the small helpers the readers share.

Readers stream: they hold at most one batch of rows (plus one document being parsed) in
memory, so a weekly USPTO file or an OpenAlex snapshot part is never loaded whole.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import IO, Any

import pyarrow as pa

from stclusters.errors import InputFormatError
from stclusters.schema import DOCUMENT, RAW_CONTRIBUTION

GZIP_MAGIC = b"\x1f\x8b"

#: Errors a gzip stream raises when it is corrupt or cut short (possibly mid-way).
GZIP_STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error)

_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class ReadBatch:
    """One chunk of a reader's output.

    Attributes
    ----------
    documents : pa.Table
        ``DOCUMENT`` schema, one row per input document of this batch.
    contributions : pa.Table
        ``RAW_CONTRIBUTION`` schema, one row per (document, contributor, address). All rows of
        a document are in the same batch as the document's row.
    """

    documents: pa.Table
    contributions: pa.Table


def check_file(path: str | Path, *, expected: str) -> Path:
    """Return ``path`` as a :class:`Path`, or raise :class:`InputFormatError` if it is no file."""
    p = Path(path)
    if not p.exists():
        raise InputFormatError(p, expected, "file not found")
    if not p.is_file():
        raise InputFormatError(p, expected, "not a regular file")
    return p


def open_binary(path: str | Path, *, expected: str, buffered: bool = True) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing gzip if its magic bytes say so.

    The decision is made on the content (``1f 8b``), not the name, except that a file
    *named* ``.gz`` that is not gzip is refused: a mislabelled file is more likely a broken
    download than a plain file.

    Parameters
    ----------
    path : str or Path
        File to open.
    expected : str
        Human name of the expected format, used in error messages.
    buffered : bool
        Wrap a gzip stream in a 1 MiB buffer (fast line reading). Off for sniffing, so
        that reading a few bytes decompresses only a little.

    Returns
    -------
    IO[bytes]
        A buffered binary stream (the caller closes it).

    Raises
    ------
    InputFormatError
        Missing file, or a ``.gz`` name that is not gzip, or a gzip header that is broken.
    """
    p = check_file(path, expected=expected)
    raw = open(p, "rb")  # noqa: SIM115 - returned to the caller
    try:
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if magic == GZIP_MAGIC:
            gz = gzip.GzipFile(fileobj=raw, mode="rb")
            try:
                gz.peek(1)  # reads the header and a first block: a bad gzip fails here
            except (*GZIP_STREAM_ERRORS, OSError) as exc:
                raise InputFormatError(p, expected, f"not a readable gzip file ({exc})") from exc
            if not buffered:
                return gz
            return io.BufferedReader(gz, buffer_size=_BUFFER_BYTES)  # type: ignore[arg-type]
        if p.name.lower().endswith(".gz"):
            raise InputFormatError(p, expected, "named .gz but not gzip-compressed")
        return raw
    except BaseException:
        raw.close()
        raise


def sniff(path: str | Path, *, expected: str, n: int = 4096) -> bytes:
    """The first ``n`` (decompressed) bytes of ``path``; fewer if the file is shorter."""
    with open_binary(path, expected=expected, buffered=False) as f:
        try:
            return f.read(n)
        except GZIP_STREAM_ERRORS as exc:
            raise InputFormatError(path, expected, f"not a readable gzip file ({exc})") from exc


def first_significant(head: bytes) -> bytes:
    """``head`` without a UTF-8 byte-order mark and leading whitespace."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.lstrip()


class BatchBuilder:
    """Row buffer that turns per-document Python rows into :class:`ReadBatch` tables.

    Columns are kept as lists (one per schema field) so building the Arrow table is one
    call per column. The caller adds a document and its contributions together, then asks
    :meth:`full` whether to :meth:`take` a batch: a document is never split over batches.

    Parameters
    ----------
    batch_size : int
        Number of documents per emitted batch (>= 1).
    """

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._doc_cols: dict[str, list[Any]] = {n: [] for n in DOCUMENT.names}
        self._con_cols: dict[str, list[Any]] = {n: [] for n in RAW_CONTRIBUTION.names}

    @property
    def n_documents(self) -> int:
        return len(self._doc_cols["doc_id"])

    @property
    def full(self) -> bool:
        return self.n_documents >= self.batch_size

    def add_document(self, **row: Any) -> None:
        """Append one ``DOCUMENT`` row (missing fields are null)."""
        for name, col in self._doc_cols.items():
            col.append(row.get(name))

    def add_contribution(self, **row: Any) -> None:
        """Append one ``RAW_CONTRIBUTION`` row (missing fields are null)."""
        for name, col in self._con_cols.items():
            col.append(row.get(name))

    def stream(self, records: Iterable[object]) -> Iterator[ReadBatch]:
        """Drive a reader: consume ``records`` and yield a batch whenever the buffer is full,
        then the rest.

        ``records`` is the reader's own loop, written as a generator that adds one record's
        rows to this builder (or quarantines the record) per step; what it yields is ignored.
        A document is never split, since the check happens between records.
        """
        for _ in records:
            if self.full:
                batch = self.take()
                if batch is not None:
                    yield batch
        batch = self.take()
        if batch is not None:
            yield batch

    def take(self) -> ReadBatch | None:
        """Return the buffered rows as a batch and empty the buffer; ``None`` if empty."""
        if self.n_documents == 0 and not self._con_cols["doc_id"]:
            return None
        batch = ReadBatch(
            documents=pa.Table.from_pydict(self._doc_cols, schema=DOCUMENT),
            contributions=pa.Table.from_pydict(self._con_cols, schema=RAW_CONTRIBUTION),
        )
        for col in (*self._doc_cols.values(), *self._con_cols.values()):
            col.clear()
        return batch
