"""What every reader yields, and the small helpers the readers share.

Readers stream: they hold at most one batch of rows (plus one document being parsed) in
memory, so a weekly USPTO file or an OpenAlex snapshot part is never loaded whole.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

import pyarrow as pa

from stclusters.errors import InputFormatError
from stclusters.schema import DOCUMENT, ID_FIELDS, RAW_CONTRIBUTION, YEAR_RANGE, max_chars

GZIP_MAGIC = b"\x1f\x8b"

#: Errors a gzip stream raises when it is corrupt or cut short (possibly mid-way).
GZIP_STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error)

_BUFFER_BYTES = 1 << 20

T = TypeVar("T")


class RecordError(ValueError):
    """One record cannot be used: ``field`` holds a value the schema cannot take.

    Readers quarantine the record with ``reason`` and ``field`` and read on.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_INT32 = (-(2**31), 2**31 - 1)


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", dict: "object",
            list: "list"}.get(type(value), type(value).__name__)


def check_value(name: str, value: Any, type_: pa.DataType) -> None:
    """Raise :class:`RecordError` if ``value`` cannot go into a column ``name`` of ``type_``.

    Text must be a string without NUL, of at most :func:`stclusters.schema.max_chars`
    characters, and without any control character in an identifier (:data:`ID_FIELDS`);
    integers must be integers (not booleans) within int32, a ``year`` within
    :data:`stclusters.schema.YEAR_RANGE`; floats finite numbers.
    """
    if value is None:
        return
    if pa.types.is_string(type_):
        if not isinstance(value, str):
            raise RecordError(name, f"not a string ({_json_type(value)})")
        if len(value) > max_chars(name):
            raise RecordError(name, f"longer than {max_chars(name)} characters")
        if name in ID_FIELDS and _CONTROL.search(value):
            raise RecordError(name, "control character in an identifier")
        if "\x00" in value:
            raise RecordError(name, "NUL character in text")
    elif pa.types.is_integer(type_):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(name, f"not an integer ({_json_type(value)})")
        low, high = YEAR_RANGE if name == "year" else _INT32
        if not low <= value <= high:
            raise RecordError(name, f"outside [{low}, {high}]")
    elif pa.types.is_floating(type_):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecordError(name, "not a finite number")


def check_row(row: dict[str, Any], schema: pa.Schema) -> None:
    """:func:`check_value` for every field of ``row`` that ``schema`` has (``record_ref`` is
    ours, not the record's, and is not checked)."""
    for name, value in row.items():
        if name != "record_ref" and value is not None:
            check_value(name, value, schema.field(name).type)


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


@dataclass(frozen=True)
class StreamDamage:
    """Where and how a gzip stream stopped being decodable.

    Attributes
    ----------
    offset_bytes : int
        Byte offset in the (compressed) file where decoding stopped.
    size_bytes : int
        Size of the file, bytes.
    decoded_bytes : int
        Decompressed bytes delivered before the break (the withheld tail excluded).
    withheld_bytes : int
        Decoded bytes after the last line break that were held back because the stream broke
        inside that line (line-based readers only: a line cut short is no record).
    what : str
        What went wrong (zlib's message, or ``junk after the end of the gzip stream``).
    """

    offset_bytes: int
    size_bytes: int
    decoded_bytes: int
    withheld_bytes: int
    what: str

    @property
    def reason(self) -> str:
        """Short, stable quarantine reason."""
        if self.what.startswith("junk"):
            return "junk after the gzip stream"
        return "corrupt or truncated gzip stream"

    def describe(self) -> str:
        """One line for the quarantine excerpt."""
        tail = (f"; {self.withheld_bytes} decoded bytes of a line cut short dropped"
                if self.withheld_bytes else "")
        return (f"stream breaks at byte {self.offset_bytes} of {self.size_bytes} "
                f"({self.what}); {self.decoded_bytes} bytes decoded before it{tail}")


_ZLIB_CHUNK_BYTES = 1 << 16
_MEMBER_START = GZIP_MAGIC + b"\x08"  # magic and the deflate method: a member's header
_HOLD_MAX_BYTES = 4 << 20


class GzipStream(io.RawIOBase):
    """A gzip decoder that delivers every decodable byte and then says where it broke.

    Python's :class:`gzip.GzipFile` raises on damage (a cut, a corrupt block, junk after
    the last member) and the bytes it had decoded in that read are lost with the exception.
    This stream instead ends cleanly at the damage and keeps a :class:`StreamDamage` in
    :attr:`damage`, so a reader uses every record before the break and files one quarantine
    entry for it. Concatenated members (legal gzip) are read one after the other; trailing
    NUL padding (tape blocks) is ignored, as ``gzip -d`` does.

    Parameters
    ----------
    raw : IO[bytes]
        The compressed file, positioned at its start (closed with this stream).
    size_bytes : int
        The file's size, for messages.
    whole_lines : bool
        On damage, hold back the decoded bytes after the last ``\\n`` (a record cut short).
    """

    def __init__(self, raw: IO[bytes], *, size_bytes: int, whole_lines: bool = False) -> None:
        super().__init__()
        self._raw = raw
        self._size = size_bytes
        self._whole_lines = whole_lines
        self._dec = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes read but not yet consumed by the decoder
        self._pos = 0  # file offset of ``_pending``'s first byte
        self._out = bytearray()  # decoded, not yet delivered
        self._delivered = 0
        self._done = False
        self.damage: StreamDamage | None = None
        #: Junk between members that was stepped over (records after it are read).
        self.skipped: list[StreamDamage] = []

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not (ready := self._deliverable()) and not self._done:
            self._step()
        n = min(len(buffer), ready)
        buffer[:n] = self._out[:n]
        del self._out[:n]
        self._delivered += n
        return n

    def _deliverable(self) -> int:
        """Decoded bytes that may go out now: with ``whole_lines``, only up to the last line
        end until the stream is done (a break may yet cut that line), unless the line has
        grown past :data:`_HOLD_MAX_BYTES` (then it is no record anyway)."""
        if self._done or not self._whole_lines:
            return len(self._out)
        cut = self._out.rfind(b"\n") + 1
        return cut if cut or len(self._out) < _HOLD_MAX_BYTES else len(self._out)

    def _step(self) -> None:
        """Decode one compressed chunk into ``_out`` (or finish, possibly with damage)."""
        if not self._pending:
            self._pending = self._raw.read(_ZLIB_CHUNK_BYTES)
            if not self._pending:
                self._end_of_file()
                return
        if self._dec.eof:
            self._next_member()
            return
        data, before = self._pending, self._dec.copy()
        try:
            self._out += self._dec.decompress(data, _ZLIB_CHUNK_BYTES * 8)
        except zlib.error as exc:
            self._salvage(before, data, exc)
            return
        # At a member's end the rest is in unused_data (unconsumed_tail may repeat it).
        left = self._dec.unused_data if self._dec.eof else self._dec.unconsumed_tail
        consumed = len(data) - len(left)
        self._pending = data[consumed:]
        self._pos += consumed

    def _end_of_file(self) -> None:
        if not self._dec.eof:
            self._out += self._dec.flush()
            self._break(self._size, "cut short: the file ends inside a gzip member")
        self._done = True

    def _salvage(self, dec, data: bytes, exc: zlib.error) -> None:
        """``data`` holds the damage: feed it again byte by byte from the state before it,
        to keep every byte decodable up to the damage and find its offset."""
        for i in range(len(data)):
            try:
                self._out += dec.decompress(data[i:i + 1])
            except zlib.error:
                self._break(self._pos + i, f"corrupt gzip data: {exc}")
                return
        self._break(self._pos + len(data), f"corrupt gzip data: {exc}")

    def _next_member(self) -> None:
        """After a member's end: start the next member, skipping junk before it (kept in
        :attr:`skipped`), or finish (NUL padding, or junk up to the end)."""
        start = self._pos
        found, junk = self._seek_member()
        n_bytes = self._pos - start if found else self._size - start
        if found:
            if junk:
                self.skipped.append(StreamDamage(
                    offset_bytes=start, size_bytes=self._size,
                    decoded_bytes=self._delivered + len(self._out), withheld_bytes=0,
                    what=f"junk between gzip members ({n_bytes} bytes)"))
            self._dec = zlib.decompressobj(wbits=31)
        elif junk:
            self._break(start, f"junk after the end of the gzip stream ({n_bytes} bytes)")
        else:
            self._done = True

    def _seek_member(self) -> tuple[bool, bool]:
        """Move to the next gzip member header: ``(found, skipped anything but NULs)``."""
        junk = False
        while True:
            i = self._pending.find(_MEMBER_START)
            if i >= 0:
                junk = junk or bool(self._pending[:i].strip(b"\x00"))
                self._pos += i
                self._pending = self._pending[i:]
                return True, junk
            keep = len(self._pending) - min(len(self._pending), len(_MEMBER_START) - 1)
            junk = junk or bool(self._pending[:keep].strip(b"\x00"))
            self._pos += keep
            self._pending = self._pending[keep:]
            more = self._raw.read(_ZLIB_CHUNK_BYTES)
            if not more:
                junk = junk or bool(self._pending.strip(b"\x00"))
                self._pos += len(self._pending)
                self._pending = b""
                return False, junk
            self._pending += more

    def _break(self, offset: int, what: str) -> None:
        withheld = 0
        if self._whole_lines and self._out and not self._out.endswith(b"\n"):
            cut = self._out.rfind(b"\n") + 1
            withheld = len(self._out) - cut
            del self._out[cut:]
        self.damage = StreamDamage(offset_bytes=offset, size_bytes=self._size,
                                   decoded_bytes=self._delivered + len(self._out),
                                   withheld_bytes=withheld, what=what)
        self._done = True


def _gzip_stream(stream: Any) -> GzipStream | None:
    for _ in range(4):
        if isinstance(stream, GzipStream):
            return stream
        stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
        if stream is None:
            return None
    return None


def stream_damage(stream: Any) -> StreamDamage | None:
    """The :class:`StreamDamage` of a stream from :func:`open_binary` (through any text or
    buffer wrappers), ``None`` if it is intact or not gzip."""
    gz = _gzip_stream(stream)
    return gz.damage if gz is not None else None


def quarantine_skipped(quarantine: Any, file_name: str, stream: Any, *,
                       source: str | None) -> None:
    """One quarantine entry per run of junk stepped over between gzip members (the records
    on both sides are read; a record cut by the junk is quarantined by its reader)."""
    gz = _gzip_stream(stream)
    for skip in gz.skipped if gz is not None else ():
        quarantine.add(file_name, f"gzip member at byte {skip.offset_bytes}",
                       "junk between gzip members", field="gzip", excerpt=skip.describe(),
                       source=source)


def open_binary(path: str | Path, *, expected: str, buffered: bool = True,
                whole_lines: bool = False) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing gzip if its magic bytes say so.

    The decision is made on the content (``1f 8b``), not the name, except that a file
    *named* ``.gz`` that is not gzip is refused: a mislabelled file is more likely a broken
    download than a plain file. A gzip stream is decoded by :class:`GzipStream`: damage
    after the first decoded bytes ends the stream cleanly (see :func:`stream_damage`).

    Parameters
    ----------
    path : str or Path
        File to open.
    expected : str
        Human name of the expected format, used in error messages.
    buffered : bool
        Wrap the stream in a 1 MiB buffer (fast line reading). Off for sniffing, so
        that reading a few bytes decompresses only a little.
    whole_lines : bool
        For line-based readers: on damage, hold back a last line cut short.

    Returns
    -------
    IO[bytes]
        A binary stream (the caller closes it).

    Raises
    ------
    InputFormatError
        Missing file, a ``.gz`` name that is not gzip, or a gzip stream of which not one
        byte can be decoded.
    """
    p = check_file(path, expected=expected)
    raw = open(p, "rb")  # noqa: SIM115 - returned to the caller
    try:
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if magic == GZIP_MAGIC:
            gz = GzipStream(raw, size_bytes=p.stat().st_size, whole_lines=whole_lines)
            reader = io.BufferedReader(gz, buffer_size=_BUFFER_BYTES if buffered else 8192)
            reader.peek(1)  # decodes a first block: a gzip without one good byte fails here
            if gz.damage is not None and gz.damage.decoded_bytes == 0:
                raise InputFormatError(p, expected, f"not a readable gzip file "
                                                    f"({gz.damage.describe()})")
            return reader  # type: ignore[return-value]
        if p.name.lower().endswith(".gz") and p.stat().st_size > 0:  # empty: no records
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


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """``(item, is_last)`` for each item: lets a reader know which record the input ended
    on (the one a broken stream may have cut)."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def looks_binary(head: bytes) -> bool:
    """Is ``head`` (a file's first bytes) binary rather than text with a stray NUL?

    A NUL in the first line, or more NULs than 1 % of the bytes (and 8): binary. A NUL
    further down a text file is one bad record, which its reader quarantines (whatever its
    offset).
    """
    first_line = first_significant(head).split(b"\n", 1)[0]
    return b"\x00" in first_line or head.count(b"\x00") > max(8, len(head) // 100)


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

    def add_record(self, document: dict[str, Any], contributions: list[dict[str, Any]]) -> None:
        """Add one document and its contributions, all or nothing.

        Raises
        ------
        RecordError
            A value the schema cannot take (see :func:`check_value`); nothing is added, so
            the reader can quarantine the record and read on.
        """
        check_row(document, DOCUMENT)
        for row in contributions:
            check_row(row, RAW_CONTRIBUTION)
        self.add_document(**document)
        for row in contributions:
            self.add_contribution(**row)

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
