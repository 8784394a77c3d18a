"""Delimited text (CSV, TSV) streamed into DuckDB: the one CSV reading path of every reader.

The generic contributions table, the PatentsView TSVs and the PATSTAT CSV exports all come
through here. The file (plain, gzip, or a zip holding one member) is parsed by pyarrow's
streaming CSV reader, one block at a time, so memory stays bounded whatever the file size;
rows the parser cannot use (malformed, invalid UTF-8, longer than
:data:`MAX_CSV_LINE_BYTES`) go to the quarantine with their line, and the rest of the file
is read. Values arrive as strings: typing and checks are the caller's SQL.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from stclusters import _sql
from stclusters.errors import InputFormatError, ParameterError
from stclusters.sources._batch import (
    check_file,
    open_binary,
    quarantine_skipped,
    stream_damage,
)
from stclusters.sources._quarantine import Quarantine

#: Delimiters sniffed from the header line (the most frequent wins).
DELIMITERS = (",", "\t", ";")
#: pyarrow's CSV read block, MiB (``$STCLUSTERS_CSV_BLOCK_MB`` overrides): one CSV row (with
#: quoted line breaks) must fit in it, else the file is refused with a message saying so.
CSV_BLOCK_MB_DEFAULT = 16
#: A physical line longer than this, bytes, is no usable row (every field has a length limit
#: far below it): it is replaced by a marker line that the parser rejects, so the row is
#: quarantined and the rest of the file read (pyarrow would refuse the whole file).
MAX_CSV_LINE_BYTES = 1 << 20
LONG_LINE_MARKER = b"#stclusters: line longer than the limit, dropped"
BAD_UTF8_MARKER = b"#stclusters: line not UTF-8, dropped"

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


def sniff_header(head: bytes, path: Path, *, expected: str) -> tuple[str, list[str]]:
    """Delimiter (the most frequent of ``, TAB ;`` on the header line) and header names."""
    # Names as pyarrow will read them: only a byte-order mark and empty lines go; blanks
    # around a name stay (` doc_id`), so that the name matches the CSV reader's column.
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    first = next((line for line in text.splitlines() if line), "")
    delim = max(DELIMITERS, key=first.count)
    if not first or first.count(delim) == 0 and len(first) > 200:
        raise InputFormatError(path, expected, "no header line found")
    names = next(csv.reader(io.StringIO(first), delimiter=delim))
    return delim, names


def csv_block_bytes() -> int:
    """pyarrow's read block, bytes (:data:`CSV_BLOCK_MB_DEFAULT` or the environment's)."""
    raw = os.environ.get("STCLUSTERS_CSV_BLOCK_MB", "")
    try:
        mb = int(raw) if raw.strip() else CSV_BLOCK_MB_DEFAULT
    except ValueError:
        raise ParameterError(f"STCLUSTERS_CSV_BLOCK_MB must be an integer (MiB), got {raw!r}") from None
    if mb < 1:
        raise ParameterError(f"STCLUSTERS_CSV_BLOCK_MB must be >= 1 (MiB), got {mb}")
    return mb << 20


class LongLines(io.RawIOBase):
    """A byte stream in which every line longer than ``limit`` bytes is replaced by
    :data:`LONG_LINE_MARKER` (one line, so line numbers stay true).

    At most ``limit`` bytes of a line are held back; lines end at LF or CR.
    """

    def __init__(self, f: IO[bytes], *, limit: int) -> None:
        super().__init__()
        self._f, self._limit = f, limit
        self._partial = bytearray()  # the current line so far (no line end seen yet)
        self._skipping = False  # inside a line already known to be too long
        self._out = bytearray()
        self._eof = False
        self.saw_nul = False  # a NUL byte anywhere (then every row is checked for one)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out and not self._eof:
            self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        del self._out[:n]
        return n

    def _end_line(self, tail: bytes) -> None:
        """The current line ends with ``tail`` (up to and including its line end)."""
        if self._skipping or len(self._partial) + len(tail) > self._limit:
            self._out += LONG_LINE_MARKER + (tail[-1:] or b"\n")  # keeps CR or LF
        else:
            self._emit(bytes(self._partial) + tail)
        self._partial.clear()
        self._skipping = False

    def _fill(self) -> None:
        chunk = self._f.read(self._limit)
        self.saw_nul = self.saw_nul or b"\x00" in chunk
        if not chunk:
            if self._partial or self._skipping:
                self._end_line(b"")
            self._eof = True
            return
        first = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=-1)
        if first < 0:
            if not self._skipping:
                self._partial += chunk
                if len(self._partial) > self._limit:
                    self._skipping = True
                    self._partial.clear()
            return
        self._end_line(chunk[:first + 1])
        # Lines wholly inside one chunk are shorter than the chunk, so within the limit.
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        self._emit(chunk[first + 1:last + 1])
        self._partial += chunk[last + 1:]

    def _emit(self, lines: bytes) -> None:
        """Pass whole lines on; a line that is not UTF-8 becomes :data:`BAD_UTF8_MARKER`
        (pyarrow would refuse the whole file). Checked per chunk, line by line only when the
        chunk fails, so valid input costs one decode per MiB."""
        try:
            lines.decode("utf-8")
        except UnicodeDecodeError:
            for line in lines.splitlines(keepends=True):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    end = len(line.rstrip(b"\r\n"))
                    line = BAD_UTF8_MARKER + line[end:]
                self._out += line
            return
        self._out += lines


class _ZipMember(io.RawIOBase):
    """The member stream of a zip archive that ends cleanly at damage (a truncated download
    or a bad CRC): what was decoded before it is delivered, ``damage`` says where it broke."""

    def __init__(self, f: IO[bytes], *, name: str) -> None:
        super().__init__()
        self._f, self._name = f, name
        self.decoded_bytes = 0
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.damage is not None:
            return 0
        try:
            # Whole buffers (1 MiB): deflate notices damage some bytes after it, so what was
            # decoded since the last good buffer may be garbage; it is dropped with the
            # buffer rather than read as rows.
            data = self._f.read(len(buffer))
        except _ZIP_ERRORS as exc:
            self.damage = f"{type(exc).__name__}: {exc}"
            return 0
        buffer[:len(data)] = data
        self.decoded_bytes += len(data)
        return len(data)


def _zip_member(z: zipfile.ZipFile, path: Path, *, expected: str) -> zipfile.ZipInfo:
    """The one data member of a zip: the only file in it (folders and ``__MACOSX`` /
    hidden entries aside), or the one named like the archive without ``.zip``."""
    members = [m for m in z.infolist() if not m.is_dir()
               and not m.filename.startswith(("__MACOSX/", ".")) and "/." not in m.filename]
    if not members:
        raise InputFormatError(path, expected, "the zip archive holds no file")
    if len(members) == 1:
        return members[0]
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    named = [m for m in members if Path(m.filename).name == stem]
    if len(named) == 1:
        return named[0]
    names = ", ".join(m.filename for m in members[:5])
    raise InputFormatError(path, expected, f"the zip archive holds {len(members)} files "
                                           f"({names}); expected one")


@contextmanager
def open_text_bytes(path: Path, *, expected: str) -> Iterator[IO[bytes]]:
    """Open a delimited file for reading bytes: a zip archive's one member, a gzip stream
    (:func:`stclusters.sources._batch.open_binary`) or the plain file.

    Raises
    ------
    InputFormatError
        Missing file, not a readable zip/gzip, a zip without exactly one data file.
    """
    p = check_file(path, expected=expected)
    with open(p, "rb") as probe:
        is_zip = probe.read(4) == b"PK\x03\x04"
    if not is_zip:
        if p.name.lower().endswith(".zip") and p.stat().st_size > 0:
            raise InputFormatError(p, expected, "named .zip but not a zip archive")
        with open_binary(p, expected=expected, whole_lines=True) as f:
            yield f
        return
    try:
        z = zipfile.ZipFile(p)
    except _ZIP_ERRORS as exc:
        raise InputFormatError(p, expected, f"not a readable zip archive ({exc})") from exc
    with z:
        info = _zip_member(z, p, expected=expected)
        try:
            member = z.open(info)
        except (*_ZIP_ERRORS, NotImplementedError, RuntimeError) as exc:
            raise InputFormatError(p, expected, f"cannot open {info.filename} in the zip "
                                                f"archive ({exc})") from exc
        with member:
            yield io.BufferedReader(_ZipMember(member, name=info.filename), buffer_size=1 << 20)


def zip_damage(stream: IO[bytes]) -> str | None:
    """How the zip member behind ``stream`` broke (``None`` if intact or not a zip)."""
    raw = getattr(stream, "raw", None)
    return raw.damage if isinstance(raw, _ZipMember) else None


def invalid_row_handler(quarantine: Quarantine, file_name: str, source: str | None,
                        bad_records: list[int]) -> Callable[[object], str]:
    """A pyarrow ``invalid_row_handler`` that quarantines the row (``line N``) and keeps its
    record number in ``bad_records`` (0-based, header excluded) for :func:`row_numbers`."""
    def on_invalid(row) -> str:
        # pyarrow numbers records from 1 with the header; equals the line number unless an
        # earlier quoted value held a line break.
        number = row.number
        where = f"line {number}" if number is not None else "line ?"
        if row.text.startswith(LONG_LINE_MARKER.decode()):
            quarantine.add(file_name, where, f"line longer than {MAX_CSV_LINE_BYTES} bytes",
                           source=source)
        elif row.text.startswith(BAD_UTF8_MARKER.decode()):
            quarantine.add(file_name, where, "invalid UTF-8", source=source)
        else:
            quarantine.add(file_name, where, f"malformed CSV row (expected "
                           f"{row.expected_columns} fields, got {row.actual_columns})",
                           excerpt=row.text, source=source)
        if number is not None:
            bad_records.append(number - 1)
        return "skip"
    return on_invalid


def row_numbers(first_good: int, n: int, bad_records: Sequence[int]) -> np.ndarray:
    """1-based data row numbers of the good rows ``first_good … first_good + n - 1``.

    Malformed rows were skipped by the parser, so each one shifts the rows after it by one:
    ``row = k + 1 + #{bad j : adj_j <= k}`` with ``adj_j = bad_j - 1 - j`` (sorted), the
    number of good rows before bad row ``j``. Bad rows after ``k`` never count, so the
    list may hold rows beyond this batch.
    """
    k = np.arange(first_good, first_good + n, dtype=np.int64)
    if not bad_records:
        return k + 1
    bad = np.sort(np.asarray(bad_records, dtype=np.int64))
    adj = bad - 1 - np.arange(len(bad), dtype=np.int64)
    return k + 1 + np.searchsorted(adj, k, side="right")


def _swallowed(batch: pa.Table, *, delim: str, n_columns: int) -> bool:
    """Does the file's last row hold whole rows in a quoted value (an unterminated quote,
    which the CSV parser reads to the end of the file)? Only the last row can: a value that
    is still open at the end of the file. A line of it with a full row's delimiters is taken
    for a swallowed row; a real multi-line address has fewer."""
    if batch.num_rows == 0:
        return False
    for name in batch.column_names:
        value = batch.column(name)[batch.num_rows - 1].as_py()
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            if any(line.count(delim) >= n_columns - 1 for line in value.splitlines()[1:]):
                return True
    return False


def match_columns(names: Sequence[str], columns: Mapping[str, Sequence[str]], path: Path, *,
                  required: Collection[str], expected: str) -> dict[str, str]:
    """Output column → the file's header name for it (first alias found, case and blanks
    ignored). A header name given twice is refused (which one is meant?), as is a missing
    ``required`` column; every problem in one message."""
    by_key: dict[str, list[str]] = {}
    for actual in names:
        by_key.setdefault(actual.strip().lower(), []).append(actual)
    found: dict[str, str] = {}
    problems = []
    for out, aliases in columns.items():
        for alias in aliases:
            hits = by_key.get(alias.lower(), [])
            if len(hits) > 1:
                problems.append(f"column {alias!r} appears {len(hits)} times")
            if hits:
                found[out] = hits[0]
                break
        else:
            if out in required:
                problems.append(f"missing column {'/'.join(aliases)!r}")
    if problems:
        raise InputFormatError(path, expected, "; ".join(problems) + f" (header: "
                               f"{', '.join(names[:20])})")
    return found


def scan(path: Path, *, match: Callable[[list[str]], dict[str, str]], expected: str,
         quarantine: Quarantine, source: str | None,
         on_batch: Callable[[pa.Table], None]) -> tuple[dict[str, str], bool, int]:
    """Stream a delimited file as Arrow tables of its wanted columns plus ``_row``.

    Parameters
    ----------
    path : Path
        CSV/TSV: plain, gzip, or a zip holding one file. Delimiter sniffed from the header.
    match : callable
        Header names → {output column: header name}; raises
        :class:`~stclusters.errors.InputFormatError` for a header it refuses (see
        :func:`match_columns`).
    expected : str
        Human name of the format, for messages.
    quarantine : Quarantine
        Receives unusable lines (``line N``) and stream damage.
    source : str, optional
        The accounting source of quarantined lines.
    on_batch : callable
        Called with each batch: one string column per found output column (``''`` for an
        empty value) and ``_row`` (int64, 1-based data row).

    Returns
    -------
    found : dict
        Output column → header name.
    saw_nul : bool
        Whether the file has a NUL byte anywhere.
    n_seen : int
        Data rows seen: delivered + quarantined by the parser.
    """
    block_bytes = csv_block_bytes()
    bad_records: list[int] = []
    n_good = 0
    with open_text_bytes(path, expected=expected) as f:
        head = f.peek(65536)[:65536] if hasattr(f, "peek") else b""
        if not head.strip():
            broken = zip_damage(f)
            raise InputFormatError(path, expected, "file is empty" if broken is None else
                                   f"the zip member is corrupt from its start ({broken})")
        delim, names = sniff_header(head, path, expected=expected)
        found = match(names)
        read_opts = pacsv.ReadOptions(use_threads=False, block_size=block_bytes)
        parse_opts = pacsv.ParseOptions(
            delimiter=delim,
            invalid_row_handler=invalid_row_handler(quarantine, path.name, source, bad_records))
        # Every column is read as text, even unwanted ones, only to count fields per row;
        # only the wanted ones are converted.
        convert_opts = pacsv.ConvertOptions(
            column_types={actual: pa.string() for actual in found.values()},
            include_columns=list(dict.fromkeys(found.values())), strings_can_be_null=False)
        filtered = LongLines(f, limit=MAX_CSV_LINE_BYTES)
        lines = io.BufferedReader(filtered, buffer_size=MAX_CSV_LINE_BYTES)
        pending: pa.Table | None = None
        try:
            reader = pacsv.open_csv(lines, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=convert_opts)
            for rb in reader:
                if rb.num_rows == 0:
                    continue
                rows = row_numbers(n_good, rb.num_rows, bad_records)
                n_good += rb.num_rows
                batch = pa.table({**{out: rb.column(actual) for out, actual in found.items()},
                                  "_row": pa.array(rows)})
                if pending is not None:
                    on_batch(pending)
                pending = batch
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if "straddl" in str(exc):
                raise InputFormatError(path, expected, (
                    f"a CSV row (a quoted value with line breaks) is longer than the "
                    f"{block_bytes >> 20} MiB read block; set STCLUSTERS_CSV_BLOCK_MB higher "
                    f"to read it")) from exc
            raise InputFormatError(path, expected, f"unreadable CSV ({exc})") from exc
        n_seen = n_good + len(bad_records)
        if pending is not None:
            if _swallowed(pending, delim=delim, n_columns=len(names)):
                # The last row's quote never closed: it holds the rest of the file.
                quarantine.add(path.name, f"row {int(pending['_row'][-1].as_py())} to end of file",
                               "unterminated quote: the value runs to the end of the file",
                               source=source)
                pending = pending.slice(0, pending.num_rows - 1)
            on_batch(pending)
        quarantine_skipped(quarantine, path.name, f, source=source)
        damage = stream_damage(f)
        if damage is not None:  # every row before the break is read; one entry for it
            quarantine.add(path.name, f"after row {n_seen}", damage.reason,
                           field="gzip", excerpt=damage.describe(), source=source)
        broken = zip_damage(f)
        if broken is not None:
            quarantine.add(path.name, f"after row {n_seen}", "corrupt or truncated zip member",
                           field="zip", excerpt=broken, source=source)
    return found, filtered.saw_nul, n_seen


def load_delimited(con: duckdb.DuckDBPyConnection, path: Path, table: str, *, input_id: int,
                   columns: Mapping[str, Sequence[str]], required: Collection[str] = (),
                   expected: str, quarantine: Quarantine, source: str | None = None) -> int:
    """Stream a delimited file into DuckDB table ``table`` (created if missing).

    The table has ``input_id INTEGER``, ``_row BIGINT`` (1-based data row) and one VARCHAR
    column per key of ``columns``, in that order; a column the file lacks is NULL, and an
    empty (or blank) value is NULL too. Malformed rows, invalid UTF-8 and overlong lines go
    to the quarantine (``line N``) and the rest of the file is read; a damaged gzip or zip
    stream ends the file with one quarantine entry.

    Returns
    -------
    int
        Data rows seen: staged + quarantined by the parser (the caller's own quarantine of
        bad values comes on top of what it stages, so its accounting still balances).

    Raises
    ------
    InputFormatError
        Unreadable file, no header, a ``required`` column missing or a column given twice.
    """
    cols = list(columns)
    ddl = ", ".join(f"{_sql.identifier(c)} VARCHAR" for c in cols)
    con.execute(f"CREATE TABLE IF NOT EXISTS {_sql.identifier(table)} "
                f"(input_id INTEGER, _row BIGINT, {ddl})")
    view = "_delimited_batch"

    def insert(batch: pa.Table) -> None:
        exprs = ", ".join(f"NULLIF(trim({_sql.identifier(c)}), '')" if c in batch.column_names
                          else "NULL::VARCHAR" for c in cols)
        con.register(view, batch)
        try:
            con.execute(f"INSERT INTO {_sql.identifier(table)} SELECT ?, _row, {exprs} "
                        f"FROM {view}", [int(input_id)])
        finally:
            con.unregister(view)

    def match(names: list[str]) -> dict[str, str]:
        return match_columns(names, columns, path, required=required, expected=expected)

    _, _, n_seen = scan(path, match=match, expected=expected, quarantine=quarantine,
                        source=source, on_batch=insert)
    return n_seen
