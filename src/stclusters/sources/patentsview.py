"""PatentsView bulk tables (``g_*`` granted, ``pg_*`` pre-grant, and the legacy pre-2022
granted chain ``patent``/``rawinventor``/``rawlocation``/``location``): a *bundle* of TSV files.

Layouts: ``shared/spec/formats.md`` §1 (PatentsView-DB ``create_export_views.sql`` [B], the
getting-started notebook [A]). Each file is one table, published as ``<table>.tsv.zip``
holding ``<table>.tsv``; unzipped ``.tsv`` and re-gzipped ``.tsv.gz`` are read as well.

Two steps, both in DuckDB:

* :func:`stage` streams one file into its staging table (``pv_document``, ``pv_inventor``,
  ``pv_location``, ``pv_rawlocation``, ``pv_cpc``, ``pv_ipc``, ``pv_assignee``; columns by
  header name, older names accepted; ``pv_files`` says which file is which table), every
  row tagged with its ``input_id`` and 1-based ``_row``. Values that make a row unusable
  (no id, a date or number that does not parse, coordinates out of range, an unknown
  country code) are quarantined there, naming the row and field.
* :func:`assemble` joins what was staged, from any number of files and releases, into the
  workspace's ``documents`` and ``raw_contributions``: one document per patent (or
  pre-grant publication), one contribution per inventor row, located by the inventor's
  ``location_id`` (coordinates as published, precision ``city``: PatentsView places a
  location at its city's centroid), technology field from the first inventional CPC
  subclass (else the IPC at issue), applicant from the first assignee organisation.

The same patent staged twice (two releases) keeps its *newest* copy: the one from the file
staged with the higher ``input_id`` (inputs are numbered in path order), a current-layout
copy before a legacy one; a patent's inventor rows (and its CPC, IPC and assignee rows)
all come from the newest file that has the patent. The other copies are quarantined
(documents and inventor rows) or counted as
``superseded`` (lookup rows). :func:`status_counts` says what became of every staged row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from stclusters import _sql
from stclusters.errors import InputFormatError
from stclusters.schema import DOCUMENT_STATUS_SQL, MAX_TEXT_CHARS, YEAR_RANGE
from stclusters.sources._delimited import load_delimited, open_text_bytes, sniff_header
from stclusters.sources._quarantine import Quarantine

KIND = "patentsview"
_EXPECTED = "PatentsView bulk table (TSV)"

#: Staged columns per role, in table order; every table of a role stages these.
_ROLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "document": ("doc_key", "doc_type", "date", "withdrawn"),
    "inventor": ("doc_key", "seq", "location_key"),
    "location": ("location_key", "city", "state", "country", "lat", "lon"),
    "cpc": ("doc_key", "seq", "subclass", "cpc_type"),
    "ipc": ("doc_key", "seq", "section", "ipc_class", "subclass"),
    "assignee": ("doc_key", "seq", "org"),
    # legacy (pre-2022) only: the address as printed, and its link to ``location``
    "rawlocation": ("rawlocation_key", "location_key", "city", "state", "country", "latlong"),
}


@dataclass(frozen=True)
class _Table:
    """One published table: its role, series (``g`` granted, ``pg`` pre-grant, ``legacy``
    the pre-2022 granted files) and the header names (current first, then older ones,
    formats.md §1.3) of each staged column."""

    role: str
    series: str
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...] = field(default=())


def _location(series: str, key: str = "location_id") -> _Table:
    # Before 2022-10-06 the location columns had no ``disambig_`` prefix (formats.md §1.2).
    return _Table("location", series, {
        "location_key": (key,), "city": ("disambig_city", "city"),
        "state": ("disambig_state", "state"), "country": ("disambig_country", "country"),
        "lat": ("latitude",), "lon": ("longitude",)},
        ("location_key", "lat", "lon", "country"))


def _per_doc(series: str) -> dict[str, _Table]:
    key = ("patent_id",) if series == "g" else ("pgpub_id",)
    return {
        f"{series}_inventor_disambiguated": _Table("inventor", series, {
            "doc_key": key, "seq": ("inventor_sequence",), "location_key": ("location_id",)},
            ("doc_key", "seq", "location_key")),
        f"{series}_location_disambiguated": _location(series),
        f"{series}_cpc_current": _Table("cpc", series, {
            "doc_key": key, "seq": ("cpc_sequence",), "subclass": ("cpc_subclass",),
            "cpc_type": ("cpc_type",)}, ("doc_key", "subclass")),
        f"{series}_ipc_at_issue": _Table("ipc", series, {
            "doc_key": key, "seq": ("ipc_sequence",), "section": ("section",),
            "ipc_class": ("ipc_class",), "subclass": ("subclass",)},
            ("doc_key", "section", "ipc_class", "subclass")),
        f"{series}_assignee_disambiguated": _Table("assignee", series, {
            "doc_key": key, "seq": ("assignee_sequence",),
            # ``assignee_organization`` before 2022-10-06
            "org": ("disambig_assignee_organization", "assignee_organization")},
            ("doc_key", "org")),
    }


#: The tables read, by published name (formats.md §1.2).
TABLES: dict[str, _Table] = {
    "g_patent": _Table("document", "g", {
        "doc_key": ("patent_id",), "doc_type": ("patent_type",), "date": ("patent_date",),
        "withdrawn": ("withdrawn",)}, ("doc_key", "doc_type", "date")),
    "pg_published_application": _Table("document", "pg", {
        "doc_key": ("pgpub_id",), "doc_type": ("patent_type",), "date": ("published_date",)},
        ("doc_key", "date")),
    **_per_doc("g"),
    **_per_doc("pg"),
    # Legacy granted chain (formats.md §1.3, [E]): rawinventor.rawlocation_id → rawlocation.id;
    # rawlocation.location_id → location.id (coordinates), else rawlocation.latlong "lat|lon".
    "patent": _Table("document", "legacy", {
        "doc_key": ("id",), "doc_type": ("type",), "date": ("date",),
        "withdrawn": ("withdrawn",)}, ("doc_key", "doc_type", "date")),
    "rawinventor": _Table("inventor", "legacy", {
        "doc_key": ("patent_id",), "seq": ("sequence",), "location_key": ("rawlocation_id",)},
        ("doc_key", "seq", "location_key")),
    "rawlocation": _Table("rawlocation", "legacy", {
        "rawlocation_key": ("id",), "location_key": ("location_id",), "city": ("city",),
        "state": ("state",), "country": ("country",), "latlong": ("latlong",)},
        ("rawlocation_key", "location_key")),
    "location": _location("legacy", key="id"),
}

_UNIT_OF_ROLE = {"document": "document", "inventor": "row", "location": "location",
                 "rawlocation": "location", "cpc": "row", "ipc": "row", "assignee": "row"}
_SOURCE_OF_ROLE = {"document": "patent", "inventor": "patent", "location": "location",
                   "rawlocation": "location", "cpc": "classification",
                   "ipc": "classification", "assignee": "applicant"}

#: Accounting unit of each table's records.
UNITS: dict[str, str] = {t: _UNIT_OF_ROLE[s.role] for t, s in TABLES.items()}
#: Accounting source of each table: ``patent`` for documents and inventors; the lookups
#: (``location``, ``classification``, ``applicant``) feed no counts of their own.
SOURCES_OF: dict[str, str] = {t: _SOURCE_OF_ROLE[s.role] for t, s in TABLES.items()}

#: Suffixes of a table file: as published, unzipped, re-gzipped.
_SUFFIXES = (".tsv.zip", ".tsv.gz", ".tsv")

#: Reasons of the quarantine entries :func:`assemble` writes (it removes its own earlier
#: ones first, so that it can run again on the same workspace).
DUPLICATE_DOCUMENT = "duplicate document"
SUPERSEDED = "superseded by a newer release"
_ASSEMBLE_REASONS = (DUPLICATE_DOCUMENT, SUPERSEDED)

#: Filter reasons of staged rows that make no contribution (see :func:`status_counts`).
NO_SUCH_PATENT = "no such patent"
WITHDRAWN = "withdrawn"
NOT_REFERENCED = "not referenced"
NOT_FIRST = "not the first of its patent"
LOOKUP_SUPERSEDED = "superseded"

#: Precision of PatentsView coordinates: the centroid of the location's city.
PRECISION = "city"


def table_of(path: Path) -> str | None:
    """The published table a file holds, from its name only.

    ``g_inventor_disambiguated.tsv.zip`` (as published), ``….tsv`` (unzipped) and
    ``….tsv.gz`` (re-gzipped) → ``"g_inventor_disambiguated"``; ``None`` for any other name.
    """
    name = Path(path).name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            if stem not in TABLES:
                return None
            # The legacy names (patent, location…) are common words: a generic table named
            # patent.tsv is no PatentsView file unless its header says so.
            if TABLES[stem].series == "legacy" and not _header_fits(Path(path), TABLES[stem]):
                return None
            return stem
    return None


def _header_fits(path: Path, spec: _Table) -> bool:
    """Does the file's header hold every required column of ``spec``? (A file that cannot
    be read is taken as fitting: its reader then says what is wrong with it.)"""
    try:
        with open_text_bytes(path, expected=_EXPECTED) as f:
            head = f.peek(65536)[:65536] if hasattr(f, "peek") else f.read(65536)
        _, names = sniff_header(head, path, expected=_EXPECTED)
    except (InputFormatError, OSError):
        return True
    have = {n.strip().lower() for n in names}
    return all(any(a.lower() in have for a in spec.columns[c]) for c in spec.required)


# ----------------------------------------------------------------------------- staging

def _staging(role: str) -> str:
    return f"pv_{role}"


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every staging table (empty if nothing of its role is staged) and ``pv_files``."""
    con.execute("CREATE TABLE IF NOT EXISTS pv_files (input_id INTEGER, tbl VARCHAR, "
                "role VARCHAR, series VARCHAR, file_name VARCHAR)")
    for role, cols in _ROLE_COLUMNS.items():
        ddl = ", ".join(f"{_sql.identifier(c)} VARCHAR" for c in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {_sql.identifier(_staging(role))} "
                    f"(input_id INTEGER, _row BIGINT, {ddl})")


def _forget(con: duckdb.DuckDBPyConnection, input_id: int) -> None:
    """Drop what an earlier, interrupted staging of ``input_id`` left (a rerun restages)."""
    con.execute("DELETE FROM pv_files WHERE input_id = ?", [input_id])
    for role in _ROLE_COLUMNS:
        con.execute(f"DELETE FROM {_sql.identifier(_staging(role))} WHERE input_id = ?",
                    [input_id])


def stage(con: duckdb.DuckDBPyConnection, path: Path, *, input_id: int,
          quarantine: Quarantine) -> int:
    """Stream one PatentsView table file into its staging table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace.
    path : Path
        ``<table>.tsv.zip``, ``.tsv`` or ``.tsv.gz`` of one of :data:`TABLES`.
    input_id : int
        The file's input id (the later of two releases must have the higher id).
    quarantine : Quarantine
        Receives malformed lines (``line N``) and rows with unusable values (``row N``).

    Returns
    -------
    int
        Data rows read: staged + quarantined.

    Raises
    ------
    InputFormatError
        Not a PatentsView table name, unreadable file, a required column missing.
    """
    path = Path(path)
    table = table_of(path)
    if table is None:
        raise InputFormatError(path, _EXPECTED, "the name is none of the PatentsView tables "
                                                f"read ({', '.join(sorted(TABLES))})")
    spec = TABLES[table]
    _ensure_tables(con)
    _forget(con, input_id)
    staging = _staging(spec.role)
    columns = {c: spec.columns.get(c, ()) for c in _ROLE_COLUMNS[spec.role]}
    n_before = quarantine.count
    load_delimited(con, path, staging, input_id=input_id, columns=columns,
                   required=spec.required, expected=_EXPECTED, quarantine=quarantine,
                   source=SOURCES_OF[table])
    if spec.series == "legacy":
        _legacy_nulls(con, staging, spec, input_id=input_id)
    file_name = _sql.utf8_text(path.name)
    con.execute("INSERT INTO pv_files VALUES (?, ?, ?, ?, ?)",
                [input_id, table, spec.role, spec.series, file_name])
    _reject_values(con, spec, input_id=input_id, file_name=file_name, quarantine=quarantine,
                   source=SOURCES_OF[table])
    # Read = staged + every quarantine entry of this file: a damaged stream's one entry
    # counts as a record too, as in the other readers.
    n_staged = con.execute(f"SELECT count(*) FROM {_sql.identifier(staging)} "
                           "WHERE input_id = ?", [input_id]).fetchall()[0][0]
    return int(n_staged) + quarantine.count - n_before


def _legacy_nulls(con: duckdb.DuckDBPyConnection, staging: str, spec: _Table, *,
                  input_id: int) -> None:
    """The legacy files write a missing value as the string ``NULL`` (formats.md §1.3)."""
    sets = ", ".join(f"{_sql.identifier(c)} = NULLIF({_sql.identifier(c)}, 'NULL')"
                     for c in _ROLE_COLUMNS[spec.role])
    con.execute(f"UPDATE {_sql.identifier(staging)} SET {sets} WHERE input_id = ?", [input_id])


def _header_name(spec: _Table, column: str) -> str:
    """The current header name of a staged column (for messages)."""
    return spec.columns[column][0] if spec.columns.get(column) else column


def _checks(spec: _Table) -> list[tuple[str, str, str]]:
    """``(staged column, SQL condition, reason)`` of the row checks of ``spec``'s role, in
    the order they are tested (the first that holds is the row's reason)."""
    cols = _ROLE_COLUMNS[spec.role]
    out: list[tuple[str, str, str]] = []
    key = {"location": "location_key", "rawlocation": "rawlocation_key"}.get(spec.role, "doc_key")
    out.append((key, f"{key} IS NULL", f"missing {_header_name(spec, key)}"))
    for c in cols:  # text bounds first: a 50 MB value is nothing else
        out.append((c, f"strpos({c}, chr(0)) > 0", "NUL character in text"))
        out.append((c, f"strlen({c}) > {MAX_TEXT_CHARS} AND length({c}) > {MAX_TEXT_CHARS}",
                    f"longer than {MAX_TEXT_CHARS} characters"))
    if spec.role == "document":
        # The document id becomes ``doc_id`` (no control characters, schema.ID_FIELDS). In
        # the other tables an id only joins to a document or location (one with a control
        # character joins nothing), and the regular expression is the costliest check.
        out.append(("doc_key", "regexp_matches(doc_key, '[\\x00-\\x1f\\x7f]')",
                    "control character in an identifier"))
    if "seq" in cols:
        out.append(("seq", "seq IS NOT NULL AND (TRY_CAST(seq AS BIGINT) IS NULL "
                           "OR TRY_CAST(seq AS BIGINT) < 0)", "not a non-negative integer"))
    if spec.role == "document":
        low, high = YEAR_RANGE
        out += [
            ("date", "date IS NULL", f"missing {_header_name(spec, 'date')}"),
            ("date", "TRY_CAST(date AS DATE) IS NULL", "not a date (YYYY-MM-DD)"),
            ("date", f"NOT year(TRY_CAST(date AS DATE)) BETWEEN {low} AND {high}",
             f"year outside [{low}, {high}]"),
            ("withdrawn", "withdrawn IS NOT NULL AND TRY_CAST(withdrawn AS INTEGER) IS NULL",
             "not an integer"),
        ]
    if spec.role == "location":
        out += [
            ("lat", "lat IS NOT NULL AND TRY_CAST(lat AS DOUBLE) IS NULL", "not a number"),
            ("lon", "lon IS NOT NULL AND TRY_CAST(lon AS DOUBLE) IS NULL", "not a number"),
            ("lat", "(lat IS NULL) <> (lon IS NULL)", "only one of latitude/longitude given"),
            ("lat", "NOT TRY_CAST(lat AS DOUBLE) BETWEEN -90 AND 90", "latitude outside [-90, 90]"),
            ("lon", "NOT TRY_CAST(lon AS DOUBLE) BETWEEN -180 AND 180",
             "longitude outside [-180, 180]"),
        ]
    if spec.role == "rawlocation":
        lat, lon = "TRY_CAST(split_part(latlong, '|', 1) AS DOUBLE)", \
            "TRY_CAST(split_part(latlong, '|', 2) AS DOUBLE)"
        out.append(("latlong", f"latlong IS NOT NULL AND NOT (latlong LIKE '%|%' AND "
                               f"coalesce({lat} BETWEEN -90 AND 90 AND {lon} BETWEEN -180 AND 180,"
                               f" false))", 'not "lat|lon" in range'))
    if "country" in cols:
        out.append(("country", "country IS NOT NULL AND upper(country) NOT IN "
                               "(SELECT code FROM _pv_iso)", "not an ISO 3166-1 alpha-2 code"))
    return out


def _reject_values(con: duckdb.DuckDBPyConnection, spec: _Table, *, input_id: int,
                   file_name: str, quarantine: Quarantine, source: str) -> None:
    """Quarantine (``row N``, field, reason, the row's values) and unstage the rows of
    ``input_id`` that a check of :func:`_checks` refuses. One scan of the file's rows."""
    from stclusters.sources.table import iso_country_codes  # noqa: PLC0415

    checks = _checks(spec)
    cols = _ROLE_COLUMNS[spec.role]
    which = " ".join(f"WHEN {cond} THEN {k}" for k, (_, cond, _) in enumerate(checks, start=1))
    fields = ", ".join(_sql.literal(_header_name(spec, c)) for c, _, _ in checks)
    reasons = ", ".join(_sql.literal(r) for _, _, r in checks)
    staging = _sql.identifier(_staging(spec.role))
    con.register("_pv_iso", pa.table({"code": sorted(iso_country_codes())}))
    try:
        bad = con.execute(f"""
            SELECT _row, [{fields}][_check], [{reasons}][_check], {', '.join(cols)}
            FROM (SELECT *, CASE {which} END AS _check FROM {staging} WHERE input_id = ?)
            WHERE _check IS NOT NULL ORDER BY _row""", [input_id]).fetchall()
    finally:
        con.unregister("_pv_iso")
    if not bad:
        return
    names = [_header_name(spec, c) for c in cols]
    for row, field_name, reason, *values in bad:
        excerpt = ", ".join(f"{n}={v[:80]}" for n, v in zip(names, values, strict=True)
                            if v is not None)
        quarantine.add(file_name, f"row {row}", reason, field=field_name, excerpt=excerpt,
                       source=source)
    con.register("_pv_bad", pa.table({"_row": pa.array([b[0] for b in bad], pa.int64())}))
    try:
        con.execute(f"DELETE FROM {staging} WHERE input_id = ? AND _row IN "
                    f"(SELECT _row FROM _pv_bad)", [input_id])
    finally:
        con.unregister("_pv_bad")


# ----------------------------------------------------------------------------- assembling

#: ``pg``: a pre-grant publication (``pgpub_id``), not a granted patent: the two are
#: different documents, with ids of their own.
_PG = "f.series = 'pg'"

#: Bits of the packed ordering key (:func:`_order_key`): input ids below 2**24, sequence
#: numbers capped at 2**40 - 1, rows below 2**55.
_INPUT_BITS, _SEQ_CAP, _ROW_BITS = 24, (1 << 40) - 1, 55


def _order_key(*, legacy: str, flag: str, seq: str, alias: str) -> str:
    """SQL of one HUGEINT that sorts rows as (``legacy`` last, newest input first, ``flag``
    false first, sequence, row): one integer compares faster than a tuple, and its minimum
    over a group also names the winning row (:func:`_key_input`, :func:`_key_row`)."""
    top = (1 << _INPUT_BITS) - 1
    return (f"((({legacy})::HUGEINT << 120) + (({top} - {alias}.input_id)::HUGEINT << 96) "
            f"+ (({flag})::HUGEINT << 95) "
            f"+ (least(coalesce(CAST({seq} AS BIGINT), {_SEQ_CAP}), {_SEQ_CAP})::HUGEINT "
            f"<< {_ROW_BITS}) "
            f"+ {alias}._row)")


def _key_input(key: str) -> str:
    top = (1 << _INPUT_BITS) - 1
    return f"CAST({top} - (({key} >> 96) & {top}) AS INTEGER)"


def _key_row(key: str) -> str:
    return f"CAST({key} & {(1 << _ROW_BITS) - 1} AS BIGINT)"


def _resolve_documents(con: duckdb.DuckDBPyConnection) -> None:
    """``pv_res_document``: every staged document row, typed, with ``kept`` (the copy kept
    of its id: a current-layout file before a legacy one, then the newest file, then the
    first row) and, for an id staged twice, ``kept_input``/``kept_row``. Duplicates are
    rare: a count finds them, and the kept copy is picked among them only."""
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_res_document AS
        WITH d AS (
            SELECT d.input_id, d._row, f.series, {_PG} AS pg, d.doc_key, d.date, d.doc_type,
                   d.withdrawn
            FROM pv_document d JOIN pv_files f USING (input_id)),
        dup_keys AS (SELECT pg, doc_key FROM d GROUP BY pg, doc_key HAVING count(*) > 1),
        dup AS (
            SELECT pg, doc_key,
                   arg_max(struct_pack(i := input_id, r := _row),
                           struct_pack(c := series <> 'legacy', i := input_id,
                                       r := -_row)) AS kept
            FROM d WHERE (pg, doc_key) IN (SELECT (pg, doc_key) FROM dup_keys)
            GROUP BY pg, doc_key)
        SELECT d.input_id, d._row, d.series, d.pg, d.doc_key,
               CAST(year(CAST(d.date AS DATE)) AS INTEGER) AS year,
               CASE WHEN d.pg THEN coalesce('application-' || lower(d.doc_type), 'application')
                    ELSE lower(d.doc_type) END AS doc_type,
               coalesce(CAST(d.withdrawn AS INTEGER), 0) = 1 AS withdrawn,
               dup.kept IS NULL OR (struct_extract(dup.kept, 'i') = d.input_id
                                    AND struct_extract(dup.kept, 'r') = d._row) AS kept,
               struct_extract(dup.kept, 'i') AS kept_input,
               struct_extract(dup.kept, 'r') AS kept_row
        FROM d LEFT JOIN dup USING (pg, doc_key)""")


def _resolve_lookups(con: duckdb.DuckDBPyConnection) -> None:
    """``pv_res_lookup(role, pg, doc_key, value, input_id, _row)``: per patent and role the
    row that gives its value: newest file first, then the first inventional CPC / the first
    IPC / the first assignee with an organisation, by sequence then row. ``pv_res_location``:
    per series (``for_series``) and ``location_id``, the location row an inventor of that
    series takes: the newest copy in a file of its own series, else of the other one (``g_``
    and ``pg_`` locations share one id space, formats.md §1.2)."""
    # IPC subclass: the pieces as printed in the XML (H, 01, L), or a whole symbol (✘ in
    # formats.md §1.2, so both are taken).
    ipc_value = ("CASE WHEN length(x.subclass) = 4 THEN upper(x.subclass) "
                 "ELSE upper(x.section || lpad(x.ipc_class, 2, '0') || x.subclass) END")
    parts = [
        ("cpc", "pv_cpc", "upper(x.subclass)", "x.cpc_type IS DISTINCT FROM 'inventional'"),
        ("ipc", "pv_ipc", ipc_value, "false"),
        ("assignee", "pv_assignee", "x.org", "x.org IS NULL"),
    ]
    selects = []
    for role, table, value, later in parts:
        key = _order_key(legacy="f.series = 'legacy'", flag=later, seq="x.seq", alias="x")
        selects.append(f"""
            SELECT {_sql.literal(role)} AS role, {_PG} AS pg, x.doc_key,
                   arg_min({value}, {key}) AS value, min({key}) AS k
            FROM {table} x JOIN pv_files f USING (input_id) GROUP BY ALL""")
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_res_lookup AS
        SELECT role, pg, doc_key, value, {_key_input('k')} AS input_id, {_key_row('k')} AS _row
        FROM ({' UNION ALL '.join(selects)})""")
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_res_location AS
        WITH pick AS (
            SELECT s.series AS for_series, l.location_key,
                   arg_min(struct_pack(i := l.input_id, r := l._row, city := l.city,
                                       state := l.state, country := upper(l.country),
                                       lat := CAST(l.lat AS DOUBLE),
                                       lon := CAST(l.lon AS DOUBLE)),
                           struct_pack(a := f.series <> s.series, b := -l.input_id,
                                       c := l._row)) AS p
            FROM pv_location l JOIN pv_files f USING (input_id)
            CROSS JOIN (VALUES ('g'), ('pg')) s(series)
            WHERE f.series <> 'legacy'
            GROUP BY ALL),
        {_LEGACY_LOCATION_SQL}
        SELECT for_series, location_key, struct_extract(p, 'i') AS input_id,
               struct_extract(p, 'r') AS _row, NULL::INTEGER AS raw_input,
               NULL::BIGINT AS raw_row, struct_extract(p, 'city') AS city,
               struct_extract(p, 'state') AS state, struct_extract(p, 'country') AS country,
               struct_extract(p, 'lat') AS lat, struct_extract(p, 'lon') AS lon
        FROM pick
        UNION ALL SELECT * FROM legacy""")


#: Legacy inventors' places, keyed by ``rawlocation.id``: the newest copy of the raw
#: location; its ``location`` row (newest copy) gives the disambiguated place and
#: coordinates, else the raw ``latlong`` and address.
_LEGACY_LOCATION_SQL = """
        raw AS (
            SELECT r.*, row_number() OVER (PARTITION BY r.rawlocation_key
                                           ORDER BY r.input_id DESC, r._row) AS k
            FROM pv_rawlocation r),
        loc AS (
            SELECT l.location_key,
                   arg_min(struct_pack(i := l.input_id, r := l._row, city := l.city,
                                       state := l.state, country := upper(l.country),
                                       lat := CAST(l.lat AS DOUBLE),
                                       lon := CAST(l.lon AS DOUBLE)),
                           struct_pack(b := -l.input_id, c := l._row)) AS p
            FROM pv_location l JOIN pv_files f USING (input_id)
            WHERE f.series = 'legacy' GROUP BY l.location_key),
        legacy AS (
            SELECT 'legacy' AS for_series, raw.rawlocation_key AS location_key,
                   struct_extract(loc.p, 'i') AS input_id, struct_extract(loc.p, 'r') AS _row,
                   raw.input_id AS raw_input, raw._row AS raw_row,
                   CASE WHEN loc.p IS NULL THEN raw.city
                        ELSE struct_extract(loc.p, 'city') END AS city,
                   CASE WHEN loc.p IS NULL THEN raw.state
                        ELSE struct_extract(loc.p, 'state') END AS state,
                   CASE WHEN loc.p IS NULL THEN upper(raw.country)
                        ELSE struct_extract(loc.p, 'country') END AS country,
                   CASE WHEN struct_extract(loc.p, 'lat') IS NOT NULL
                        THEN struct_extract(loc.p, 'lat')
                        ELSE CAST(split_part(raw.latlong, '|', 1) AS DOUBLE) END AS lat,
                   CASE WHEN struct_extract(loc.p, 'lat') IS NOT NULL
                        THEN struct_extract(loc.p, 'lon')
                        ELSE CAST(split_part(raw.latlong, '|', 2) AS DOUBLE) END AS lon
            FROM raw LEFT JOIN loc ON loc.location_key = raw.location_key
            WHERE raw.k = 1)"""


def _resolve_inventors(con: duckdb.DuckDBPyConnection) -> None:
    """``pv_res_inventor``: every staged inventor row with ``src_input``, the file its
    patent's inventors are taken from (a current-layout file before a legacy one, then the
    newest), ``rank0``, its 0-based rank on the patent (that file first, then
    ``inventor_sequence`` whatever its base, then row: for the rows of ``src_input``, the
    contributor's rank), and, on the patent's first row, ``n_src``: the patent's inventor
    rows in ``src_input``. One sort of the inventor rows does it all."""
    key = _order_key(legacy="f.series = 'legacy'", flag="false", seq="i.seq", alias="i")
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_res_inventor AS
        SELECT input_id, _row, series, pg, doc_key, location_key, src_input, rank0,
               CASE WHEN rank0 = 0 AND src_input = last_input THEN n_all END AS n_src,
               src_input <> last_input AS several_files
        FROM (
            SELECT i.input_id, i._row, f.series, {_PG} AS pg, i.doc_key, i.location_key,
                   first_value(i.input_id) OVER w AS src_input,
                   last_value(i.input_id) OVER whole AS last_input,
                   count(*) OVER whole AS n_all,
                   row_number() OVER w - 1 AS rank0
            FROM pv_inventor i JOIN pv_files f USING (input_id)
            WINDOW w AS (PARTITION BY {_PG}, i.doc_key ORDER BY {key}),
                   whole AS (PARTITION BY {_PG}, i.doc_key ORDER BY {key}
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))""")


def _resolve_kept_documents(con: duckdb.DuckDBPyConnection) -> None:
    """``pv_res_doc``: the documents that count (kept copy, not withdrawn) with their
    technology field (CPC, else IPC), applicant and number of inventors."""
    # One join per role (measured: faster than pivoting the lookups first).
    role = "(SELECT pg, doc_key, value FROM pv_res_lookup WHERE role = {})"
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_res_doc AS
        WITH n AS (
            SELECT pg, doc_key, n_src AS n FROM pv_res_inventor WHERE n_src IS NOT NULL
            UNION ALL  -- patents listed by several inventor files (rare): count the kept one
            SELECT pg, doc_key, count(*) FROM pv_res_inventor
            WHERE several_files AND input_id = src_input GROUP BY pg, doc_key)
        SELECT d.input_id, d._row, d.series, d.pg, d.doc_key, d.year, d.doc_type,
               coalesce(c.value, i.value) AS tech_field, a.value AS applicant,
               CAST(coalesce(n.n, 0) AS INTEGER) AS n_contributors
        FROM pv_res_document d
        LEFT JOIN {role.format(_sql.literal('cpc'))} c USING (pg, doc_key)
        LEFT JOIN {role.format(_sql.literal('ipc'))} i USING (pg, doc_key)
        LEFT JOIN {role.format(_sql.literal('assignee'))} a USING (pg, doc_key)
        LEFT JOIN n USING (pg, doc_key)
        WHERE d.kept AND NOT d.withdrawn""")


def _clear_assembled(con: duckdb.DuckDBPyConnection) -> None:
    """Remove what an earlier :func:`assemble` wrote for these files (it may run again)."""
    mine = "SELECT input_id FROM pv_files"
    con.execute(f"DELETE FROM documents WHERE input_id IN ({mine})")
    con.execute(f"DELETE FROM raw_contributions WHERE input_id IN ({mine})")
    con.execute(f"DELETE FROM quarantine WHERE input_id IN ({mine}) AND reason IN "
                f"({_sql.literals(_ASSEMBLE_REASONS)})")


def _quarantine_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    """Quarantine the document copies not kept, and the inventor rows of a patent that a
    newer file also lists (the newest file's inventors are the patent's inventors)."""
    con.execute(f"""
        INSERT INTO quarantine (input_id, file, position, source, field, reason, excerpt)
        SELECT d.input_id, f.file_name, 'row ' || d._row, 'patent',
               CASE WHEN d.pg THEN 'pgpub_id' ELSE 'patent_id' END,
               CASE WHEN d.input_id = d.kept_input THEN {_sql.literal(DUPLICATE_DOCUMENT)}
                    ELSE {_sql.literal(SUPERSEDED)} END,
               d.doc_key || ' kept at ' || k.file_name || ':row ' || d.kept_row
        FROM pv_res_document d JOIN pv_files f ON f.input_id = d.input_id
        JOIN pv_files k ON k.input_id = d.kept_input
        WHERE NOT d.kept""")
    con.execute(f"""
        INSERT INTO quarantine (input_id, file, position, source, field, reason, excerpt)
        SELECT i.input_id, f.file_name, 'row ' || i._row, 'patent',
               CASE WHEN i.pg THEN 'pgpub_id' ELSE 'patent_id' END,
               {_sql.literal(SUPERSEDED)},
               i.doc_key || ': inventors kept from ' || k.file_name
        FROM pv_res_inventor i JOIN pv_files f ON f.input_id = i.input_id
        JOIN pv_files k ON k.input_id = i.src_input
        WHERE i.several_files AND i.input_id <> i.src_input""")


def _insert_documents(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        INSERT INTO documents (input_id, doc_id, source, year, doc_type, n_contributors,
                               record_ref, updated_date)
        SELECT d.input_id, d.doc_key, 'patent', d.year, d.doc_type, d.n_contributors,
               f.file_name || ':row ' || d._row, NULL
        FROM pv_res_doc d JOIN pv_files f USING (input_id)""")


def _insert_contributions(con: duckdb.DuckDBPyConnection) -> None:
    """One contribution per inventor row of the newest file of a counted document."""
    con.execute(f"""
        INSERT INTO raw_contributions (input_id, doc_id, source, year, contributor_seq,
            address_seq, city, admin1, country, postcode, address_raw, org, institution_id,
            applicant, tech_field, lat, lon, precision, record_ref, doc_type, _row)
        SELECT i.input_id, i.doc_key, 'patent', d.year, CAST(i.rank0 AS INTEGER), 0,
               l.city, l.state, l.country, NULL, NULL, NULL, NULL, d.applicant, d.tech_field,
               l.lat, l.lon, CASE WHEN l.lat IS NOT NULL THEN {_sql.literal(PRECISION)} END,
               f.file_name || ':row ' || i._row, d.doc_type, i._row
        FROM pv_res_inventor i
        JOIN pv_res_doc d ON d.pg = i.pg AND d.doc_key = i.doc_key
        JOIN pv_files f ON f.input_id = i.input_id
        LEFT JOIN pv_res_location l
          ON l.for_series = i.series AND l.location_key = i.location_key
        WHERE i.input_id = i.src_input""")


def _record_left_out(con: duckdb.DuckDBPyConnection) -> None:
    """``pv_left_out(input_id, status, n)``: staged document and inventor rows that made no
    document / contribution and were not quarantined, counted per file with why. Inventor
    rows: those of a withdrawn patent (a small join), the rest of the file's rows that made
    no contribution have no patent (a count, not a join of every row)."""
    con.execute(f"""
        CREATE OR REPLACE TABLE pv_left_out AS
        WITH withdrawn_docs AS (
            SELECT pg, doc_key FROM pv_res_document WHERE kept AND withdrawn),
        inv_withdrawn AS (
            SELECT i.input_id, count(*) AS n FROM pv_res_inventor i
            JOIN withdrawn_docs w ON w.pg = i.pg AND w.doc_key = i.doc_key
            WHERE i.input_id = i.src_input GROUP BY i.input_id),
        inv_src AS (
            SELECT input_id, count(*) AS n FROM pv_res_inventor
            WHERE input_id = src_input GROUP BY input_id),
        inv_made AS (
            SELECT input_id, count(*) AS n FROM raw_contributions
            WHERE input_id IN (SELECT input_id FROM pv_files WHERE role = 'inventor')
            GROUP BY input_id)
        SELECT input_id, {_sql.literal(WITHDRAWN)} AS status, count(*) AS n
        FROM pv_res_document WHERE kept AND withdrawn GROUP BY input_id
        UNION ALL
        SELECT input_id, {_sql.literal(WITHDRAWN)}, n FROM inv_withdrawn
        UNION ALL
        SELECT s.input_id, {_sql.literal(NO_SUCH_PATENT)},
               s.n - coalesce(m.n, 0) - coalesce(w.n, 0)
        FROM inv_src s LEFT JOIN inv_made m USING (input_id)
        LEFT JOIN inv_withdrawn w USING (input_id)
        WHERE s.n - coalesce(m.n, 0) - coalesce(w.n, 0) > 0""")


def assemble(con: duckdb.DuckDBPyConnection) -> None:
    """Build ``documents`` and ``raw_contributions`` from everything staged (see the module
    docstring for the rules). Runs again cleanly: it first removes what it wrote before.

    Documents: ``doc_id`` = ``patent_id`` as printed (``D345393``, ``RE46030``: the form of
    :func:`stclusters.sources.uspto_xml.normalise_patent_id`) or ``pgpub_id``; ``year`` =
    grant (publication) year; ``doc_type`` = ``patent_type`` (``utility``, ``design``, …)
    or, for a pre-grant publication, ``application-<patent_type>``; withdrawn patents are
    left out (counted as ``withdrawn``). Contributions: one per inventor row, ``input_id``
    and ``_row`` of the inventor file, ``record_ref`` ``<file>:row N``.
    """
    _ensure_tables(con)
    _clear_assembled(con)
    _resolve_documents(con)
    _resolve_lookups(con)
    _resolve_inventors(con)
    _resolve_kept_documents(con)
    _quarantine_duplicates(con)
    _insert_documents(con)
    _insert_contributions(con)
    _record_left_out(con)


# ----------------------------------------------------------------------------- accounting



def status_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, int]]:
    """``(input_id, source, status, n)`` for every staged row of every PatentsView file
    (not the rows quarantined while staging or assembling: those are in ``quarantine``).

    * inventor rows: their contribution's status (``used``, ``unlocated (<geocoder's
      reason>)``, …), else ``no such patent`` / ``withdrawn``;
    * document rows: ``used`` if one of their contributions is, else as
      :mod:`stclusters.accounting` words it (``no_contributors``, ``out_of_window``, …),
      or ``withdrawn``;
    * location rows: ``used`` if a used contribution took it, ``superseded`` for an older
      copy of a ``location_id`` (in its series), else ``not referenced``;
    * CPC, IPC and assignee rows: ``used`` if it gave a used patent its technology field or
      applicant, ``not referenced`` if its patent has no used contribution, else ``not the
      first of its patent``.

    Needs table ``contributions`` (:func:`stclusters.contributions.count_fractional`).
    """
    _ensure_tables(con)
    return [tuple(r) for r in con.execute(f"""
        WITH inv_files AS (SELECT input_id FROM pv_files WHERE role = 'inventor'),
        contrib AS (
            SELECT c.input_id, c.doc_id, c.status, c.geocode_status,
                   CAST(regexp_extract(c.record_ref, ':row ([0-9]+)$', 1) AS BIGINT) AS _row
            FROM contributions c WHERE c.input_id IN (SELECT input_id FROM inv_files)),
        inventors AS (
            SELECT input_id, 'patent' AS source,
                   CASE WHEN status = 'unlocated'
                        THEN 'unlocated (' || coalesce(geocode_status, 'no address') || ')'
                        ELSE status END AS status
            FROM contrib),
        left_out AS (SELECT input_id, 'patent' AS source, status, n FROM pv_left_out),
        docs AS (
            SELECT d.input_id, 'patent' AS source, {DOCUMENT_STATUS_SQL} AS status
            FROM documents d JOIN pv_files f ON f.input_id = d.input_id AND f.role = 'document'
            LEFT JOIN contrib c ON c.doc_id = d.doc_id
            GROUP BY d.input_id, d.doc_id, d.record_ref),
        used_docs AS (SELECT DISTINCT doc_id FROM contrib WHERE status = 'used'),
        taken AS (
            SELECT l.input_id, l._row, l.raw_input, l.raw_row FROM contrib c
            JOIN pv_res_inventor i ON i.input_id = c.input_id AND i._row = c._row
            JOIN pv_res_location l
              ON l.for_series = i.series AND l.location_key = i.location_key
            WHERE c.status = 'used'),
        used_locations AS (
            SELECT DISTINCT input_id, _row FROM taken WHERE _row IS NOT NULL
            UNION SELECT DISTINCT raw_input, raw_row FROM taken WHERE raw_row IS NOT NULL),
        location_rows AS (
            SELECT l.input_id, l._row, row_number() OVER (
                       PARTITION BY f.series, l.location_key ORDER BY l.input_id DESC, l._row) AS k
            FROM pv_location l JOIN pv_files f USING (input_id)
            UNION ALL
            SELECT input_id, _row, row_number() OVER (
                       PARTITION BY rawlocation_key ORDER BY input_id DESC, _row) AS k
            FROM pv_rawlocation),
        locations AS (
            SELECT r.input_id, 'location' AS source,
                   CASE WHEN u._row IS NOT NULL THEN 'used'
                        WHEN r.k > 1 THEN {_sql.literal(LOOKUP_SUPERSEDED)}
                        ELSE {_sql.literal(NOT_REFERENCED)} END AS status
            FROM location_rows r LEFT JOIN used_locations u USING (input_id, _row)),
        has_cpc AS (SELECT pg, doc_key FROM pv_res_lookup WHERE role = 'cpc' AND value IS NOT NULL),
        chosen AS (
            SELECT x.input_id, x._row FROM pv_res_lookup x
            WHERE x.value IS NOT NULL AND (x.role <> 'ipc' OR NOT EXISTS (
                SELECT 1 FROM has_cpc c WHERE c.pg = x.pg AND c.doc_key = x.doc_key))),
        lookup_rows AS (
            SELECT 'classification' AS source, input_id, _row, doc_key FROM pv_cpc
            UNION ALL SELECT 'classification', input_id, _row, doc_key FROM pv_ipc
            UNION ALL SELECT 'applicant', input_id, _row, doc_key FROM pv_assignee),
        lookups AS (
            SELECT r.input_id, r.source,
                   CASE WHEN u.doc_id IS NULL THEN {_sql.literal(NOT_REFERENCED)}
                        WHEN ch._row IS NOT NULL THEN 'used'
                        ELSE {_sql.literal(NOT_FIRST)} END AS status
            FROM lookup_rows r LEFT JOIN used_docs u ON u.doc_id = r.doc_key
            LEFT JOIN chosen ch ON ch.input_id = r.input_id AND ch._row = r._row)
        SELECT input_id, source, status, sum(n)::BIGINT AS n FROM (
            SELECT input_id, source, status, count(*) AS n FROM (
                SELECT * FROM inventors UNION ALL SELECT * FROM docs
                UNION ALL SELECT * FROM locations UNION ALL SELECT * FROM lookups)
            GROUP BY ALL
            UNION ALL SELECT * FROM left_out)
        GROUP BY ALL ORDER BY ALL""").fetchall()]
