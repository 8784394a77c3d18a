"""PATSTAT Global CSV exports: PCT applications and their inventors' addresses.

A PATSTAT "bundle" is several table files that together make documents and contributions
(``docs/inputs.md``, PATSTAT section; layouts in ``shared/spec/formats.md`` §3):

============================ ============ ==================================================
table (file)                 unit         becomes
============================ ============ ==================================================
``tls201_appln``             document     one document per PCT application (``appln_kind = 'W'``)
``tls207_pers_appln``        row          one contribution per inventor link (``invt_seq_nr > 0``)
``tls206_person``            person       the inventor's country and free-text address
``tls226_person_orig``       row          city / zip code / address when ``person_address`` is empty
``tls209_appln_ipc``         row          ``tech_field``: subclass of the first inventive IPC symbol
============================ ============ ==================================================

Each file is streamed into a typed staging table (:func:`stage`; prefix ``ps_``), whatever
the order the files come in; :func:`assemble` then joins everything staged, in SQL, into the
workspace's ``documents`` and ``raw_contributions``; :func:`status_counts` says what became
of every staged row. Addresses are split into postal code, city and state by
:func:`stclusters.geocode._address.parse_address`, once per distinct address.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from stclusters._sql import identifier, literal, literals
from stclusters.errors import InputFormatError
from stclusters.geocode._address import parse_address
from stclusters.schema import MAX_ADDRESS_CHARS, MAX_TEXT_CHARS, YEAR_RANGE, document_status_sql
from stclusters.sources._delimited import load_delimited
from stclusters.sources._quarantine import Quarantine

__all__ = ["IPR_DOC_TYPES", "KIND", "PCT_APPLN_KIND", "SOURCES_OF", "UNITS", "YEAR_COLUMN",
           "assemble", "edition_of", "other_table", "stage", "status_counts", "table_of"]

KIND = "patstat"

#: The GII counts PCT international applications: ``appln_kind = 'W'`` (formats.md §3.2,
#: de Rassenfosse et al. 2014 §2.2). It holds in every edition, whereas ``appln_auth = 'WO'``
#: only from 2018 Spring (before, ``appln_auth`` was the receiving office).
PCT_APPLN_KIND = "W"

#: The year of a PCT application for the windows: its first publication (the WO
#: publication), as the GII counts PCT applications by publication year (methodology §1:
#: "five publication years per metric"). PATSTAT writes ``9999`` for "not published yet":
#: such applications are left out (status ``not published``).
YEAR_COLUMN = "earliest_publn_year"
UNKNOWN_YEAR = 9999

#: ``doc_id`` of an application: ``patstat:<appln_id>``. ``appln_id`` is PATSTAT's key,
#: kept from edition to edition; the prefix keeps it apart from USPTO patent numbers of the
#: same run (``10000000`` is both a patent and an ``appln_id``).
DOC_ID_PREFIX = "patstat:"

#: ``appln_id`` 0 is a dummy; ids above this are artificial ("replenished") applications
#: without person data (formats.md §3.2 [R]).
MAX_REAL_APPLN_ID = 900_000_000

#: ``doc_type`` from ``ipr_type``: a patent of invention is what the default patent
#: ``doc_types`` (``utility``, ``plant``) keep, as for USPTO utility grants; utility models
#: and designs are left out by that default. Other values are kept lower-cased.
IPR_DOC_TYPES: dict[str, str] = {"PI": "utility", "UM": "utility-model", "DE": "design"}

#: Staging table, accounting unit and accounting source of each PATSTAT table.
_TABLES: dict[str, tuple[str, str, str]] = {
    "tls201": ("ps_appln", "document", "patent"),
    "tls206": ("ps_person", "person", "person"),
    "tls207": ("ps_pers_appln", "row", "patent"),
    "tls209": ("ps_appln_ipc", "row", "classification"),
    "tls226": ("ps_person_orig", "row", "person_orig"),
}
UNITS: dict[str, str] = {t: unit for t, (_, unit, _) in _TABLES.items()}
SOURCES_OF: dict[str, str] = {t: src for t, (_, _, src) in _TABLES.items()}

# tls201_part01.zip, tls201_part01.csv, tls201_appln_part01.csv, tls207_pers_appln.csv.gz …
_NAME = re.compile(r"^(tls(?:201|206|207|209|226))(?:_[a-z_]+?)?(?:_part\d+)?"
                   r"\.(?:zip|csv|txt)(?:\.gz)?$", re.IGNORECASE)

#: Columns read from each table: output name → header names (current first, then older).
_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "tls201": {"appln_id": ("appln_id",), "appln_kind": ("appln_kind",),
               "publn_year": (YEAR_COLUMN,), "ipr_type": ("ipr_type",)},
    "tls206": {"person_id": ("person_id",), "person_name": ("person_name",),
               "address": ("person_address",), "ctry": ("person_ctry_code",)},
    "tls207": {"person_id": ("person_id",), "appln_id": ("appln_id",),
               "applt_seq_nr": ("applt_seq_nr",), "invt_seq_nr": ("invt_seq_nr",)},
    "tls209": {"appln_id": ("appln_id",), "symbol": ("ipc_class_symbol",),
               "ipc_value": ("ipc_value",), "ipc_position": ("ipc_position",)},
    "tls226": {"person_id": ("person_id",), "address_freeform": ("address_freeform",),
               **{f"address_{i}": (f"address_{i}",) for i in range(1, 6)},
               "street": ("street",), "city": ("city",), "zip_code": ("zip_code",),
               "ctry": ("person_ctry_code",), "residence_ctry": ("residence_ctry_code",)},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "tls201": ("appln_id", "appln_kind", "publn_year"),
    "tls206": ("person_id", "address", "ctry"),
    "tls207": ("person_id", "appln_id", "invt_seq_nr"),
    "tls209": ("appln_id", "symbol", "ipc_value"),
    "tls226": ("person_id", "city"),
}

#: Typed staging tables (after :func:`stage`'s checks).
_DDL: dict[str, str] = {
    "ps_appln": "appln_id BIGINT, appln_kind VARCHAR, publn_year INTEGER, ipr_type VARCHAR",
    "ps_person": "person_id BIGINT, person_name VARCHAR, address VARCHAR, ctry VARCHAR",
    "ps_pers_appln": "person_id BIGINT, appln_id BIGINT, applt_seq_nr INTEGER, "
                     "invt_seq_nr INTEGER",
    "ps_appln_ipc": "appln_id BIGINT, symbol VARCHAR, ipc_value VARCHAR, ipc_position VARCHAR",
    "ps_person_orig": "person_id BIGINT, address VARCHAR, city VARCHAR, zip_code VARCHAR, "
                      "ctry VARCHAR",
}
_FILES_DDL = "input_id INTEGER, file VARCHAR, tbl VARCHAR, edition VARCHAR"

# "data_PATSTAT_Global_2020_Autumn_01.zip", ".../PATSTAT 2021 Spring/...", "patstat2020b":
# the edition a file belongs to, when its path says (Spring = "a", Autumn = "b", [N2]).
_EDITION = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})[ _-]?(spring|autumn|a|b)(?![a-z])",
                      re.IGNORECASE)
#: Order of the versions of one key, newest first: the later edition named in the path,
#: else the file ingested later in path order (the higher ``input_id``), then the first row.
_NEWEST_FIRST = "f.edition DESC NULLS LAST, x.input_id DESC, x._row"

_EXPECTED = "a PATSTAT Global CSV table"
# Integer columns of PATSTAT are at most int(11); 18 digits always fit a BIGINT.
_MAX_ID_DIGITS = 18

#: Reasons :func:`assemble` quarantines with (removed and redone by a second assemble).
_ASSEMBLE_REASONS = ("duplicate appln_id", "duplicate person_id", "duplicate row")

#: Leave-out statuses of staged rows (counted by :func:`status_counts`, never inserted).
NOT_PCT = "not a PCT application"
NOT_INVENTOR = "applicant, not inventor"
SAME_INVENTOR = "inventor listed twice on the application"
#: Reasons that only say a row lies outside what the reader is for (most of tls201 is not
#: PCT; most of tls207 links applicants): accounted, never warned about.
SELECTION_REASONS = (NOT_PCT, NOT_INVENTOR)


def edition_of(path: Path) -> str | None:
    """The PATSTAT edition a path names (``2020b`` for ``…_2020_Autumn_…``), or None."""
    found = _EDITION.findall(str(Path(path).resolve()))
    if not found:
        return None
    year, season = found[-1]
    return year + ("a" if season.lower() in ("a", "spring") else "b")


# Any PATSTAT table file (tls211_part01.zip, tls904_nuts.csv …), read here or not.
_ANY_TABLE = re.compile(r"^(tls[0-9]{3})(?:_[a-z_]+?)?(?:_part[0-9]+)?\.(?:zip|csv|txt)(?:\.gz)?$",
                        re.IGNORECASE)


def other_table(path: Path) -> str | None:
    """A PATSTAT table this reader does not use (``tls211_part01.zip`` → ``"tls211"``), so
    that a whole PATSTAT download can be given as a folder and those files skipped; None
    for the tables of :func:`table_of` and for any other name."""
    m = _ANY_TABLE.match(Path(path).name)
    return m.group(1).lower() if m and table_of(path) is None else None


def table_of(path: Path) -> str | None:
    """The PATSTAT table a file holds, from its name only (``tls207_part01.zip`` →
    ``"tls207"``), or None when the name is not one of the tables this reader uses."""
    m = _NAME.match(Path(path).name)
    return m.group(1).lower() if m else None


# ---------------------------------------------------------------------------------- staging
def _id_check(col: str) -> list[tuple[str, str, str]]:
    """(condition, field, reason) of an identifier column: present, no control character,
    digits only."""
    c = identifier(col)
    return [(f"{c} IS NULL", col, f"missing {col}"),
            (f"regexp_matches({c}, '[\\x00-\\x1f\\x7f]')", col,
             "control character in an identifier"),
            (f"NOT regexp_full_match({c}, '[0-9]{{1,{_MAX_ID_DIGITS}}}')", col,
             f"{col} not a non-negative integer")]


def _int_check(col: str, *, required: bool) -> list[tuple[str, str, str]]:
    c = identifier(col)
    out = [(f"{c} IS NULL", col, f"missing {col}")] if required else []
    return out + [(f"{c} IS NOT NULL AND NOT regexp_full_match({c}, '[0-9]{{1,9}}')", col,
                   f"{col} not a non-negative integer")]


def _text_check(col: str, limit: int) -> list[tuple[str, str, str]]:
    c = identifier(col)
    return [(f"strpos({c}, chr(0)) > 0", col, "NUL character in text"),
            (f"length({c}) > {int(limit)}", col, f"longer than {int(limit)} characters")]


def _checks(table: str) -> list[tuple[str, str, str]]:
    """Every value check of a table, in the order they are tried (the first failing one is
    the row's reason)."""
    lo, hi = YEAR_RANGE
    if table == "tls201":
        year = identifier("publn_year")
        return [*_id_check("appln_id"),
                (f"{year} IS NOT NULL AND NOT regexp_full_match({year}, '[0-9]{{1,4}}')",
                 YEAR_COLUMN, f"{YEAR_COLUMN} not an integer"),
                (f"{year} IS NOT NULL AND CAST({year} AS INTEGER) NOT IN ({UNKNOWN_YEAR}) AND "
                 f"CAST({year} AS INTEGER) NOT BETWEEN {lo} AND {hi}", YEAR_COLUMN,
                 f"year outside [{lo}, {hi}]"),
                *_text_check("appln_kind", MAX_TEXT_CHARS), *_text_check("ipr_type", MAX_TEXT_CHARS)]
    if table == "tls206":
        return [*_id_check("person_id"), *_text_check("address", MAX_ADDRESS_CHARS),
                *_text_check("person_name", MAX_TEXT_CHARS), *_text_check("ctry", MAX_TEXT_CHARS)]
    if table == "tls207":
        return [*_id_check("person_id"), *_id_check("appln_id"),
                *_int_check("invt_seq_nr", required=True),
                *_int_check("applt_seq_nr", required=False)]
    if table == "tls209":
        return [*_id_check("appln_id"), *_text_check("symbol", MAX_TEXT_CHARS),
                *_text_check("ipc_value", MAX_TEXT_CHARS)]
    return [*_id_check("person_id"),
            *[x for col in ("address_freeform", *(f"address_{i}" for i in range(1, 6)), "street")
              for x in _text_check(col, MAX_ADDRESS_CHARS)],
            *_text_check("city", MAX_TEXT_CHARS), *_text_check("zip_code", MAX_TEXT_CHARS)]


def _typed_select(table: str) -> str:
    """The accepted rows of the raw load ``_ps_raw``, typed as the staging table wants."""
    if table == "tls201":
        return (f"CAST(appln_id AS BIGINT), upper(appln_kind), "
                f"coalesce(CAST(publn_year AS INTEGER), {UNKNOWN_YEAR}), upper(ipr_type)")
    if table == "tls206":
        return "CAST(person_id AS BIGINT), person_name, address, upper(ctry)"
    if table == "tls207":
        return ("CAST(person_id AS BIGINT), CAST(appln_id AS BIGINT), "
                "CAST(coalesce(applt_seq_nr, '0') AS INTEGER), CAST(invt_seq_nr AS INTEGER)")
    if table == "tls209":
        # "A61K  31/437" (padded so that "/" is the 9th character) → "A61K 31/437".
        return ("CAST(appln_id AS BIGINT), regexp_replace(trim(symbol), '\\s+', ' ', 'g'), "
                "upper(ipc_value), upper(ipc_position)")
    # tls226: the free-form address, else its lines joined.
    lines = ", ".join(["street", *(f"address_{i}" for i in range(1, 6))])
    return (f"CAST(person_id AS BIGINT), coalesce(address_freeform, "
            f"NULLIF(concat_ws(', ', {lines}), '')), city, zip_code, "
            f"upper(coalesce(ctry, residence_ctry))")


def stage(con: duckdb.DuckDBPyConnection, path: Path, *, input_id: int,
          quarantine: Quarantine) -> int:
    """Stream one PATSTAT table file into its staging table (``ps_*``), rows tagged with
    ``input_id`` and their 1-based data row ``_row``.

    Rows whose identifiers or numbers cannot be used (missing, control characters, not an
    integer, a year outside :data:`stclusters.schema.YEAR_RANGE` other than PATSTAT's
    ``9999``, text over the length limits) go to the quarantine (``row N``), as do the
    malformed lines the CSV reader refuses (``line N``). Staging the same ``input_id``
    again replaces its rows (an interrupted ingest is redone whole).

    Returns
    -------
    int
        Data rows read: staged + quarantined.

    Raises
    ------
    InputFormatError
        Not a PATSTAT table name, unreadable file, or a required column missing.
    """
    path = Path(path)
    table = table_of(path)
    if table is None:
        raise InputFormatError(path, _EXPECTED, "the file name is not that of a PATSTAT "
                               "table read here (tls201, tls206, tls207, tls209, tls226)")
    staging, _, source = _TABLES[table]
    _create_staging(con)
    for name in (staging, "ps_files"):
        con.execute(f"DELETE FROM {identifier(name)} WHERE input_id = ?", [int(input_id)])
    con.execute("DROP TABLE IF EXISTS _ps_raw")
    try:
        n_read = load_delimited(con, path, "_ps_raw", input_id=input_id,
                                columns=_COLUMNS[table], required=_REQUIRED[table],
                                expected=f"{_EXPECTED} ({table})", quarantine=quarantine,
                                source=source)
        checks = _checks(table)
        reason = "CASE " + " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in
                                    enumerate(checks)) + " END"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ps_checked AS "
                    f"SELECT *, {reason} AS _check FROM _ps_raw")
        cols = list(_COLUMNS[table])
        bad = con.execute(f"SELECT _row, _check, {', '.join(identifier(c) for c in cols)} "
                          "FROM _ps_checked WHERE _check IS NOT NULL ORDER BY _row").fetchall()
        for row_no, check, *values in bad:
            _, field, why = checks[check]
            excerpt = ", ".join(f"{c}={v}" for c, v in zip(cols, values) if v is not None)
            quarantine.add(path.name, f"row {row_no}", why, field=field, excerpt=excerpt,
                           source=source)
        con.execute(f"INSERT INTO {identifier(staging)} SELECT input_id, _row, "
                    f"{_typed_select(table)} FROM _ps_checked WHERE _check IS NULL")
        con.execute("INSERT INTO ps_files VALUES (?, ?, ?, ?)",
                    [int(input_id), path.name, table, edition_of(path)])
    finally:
        con.execute("DROP TABLE IF EXISTS _ps_checked")
        con.execute("DROP TABLE IF EXISTS _ps_raw")
    return n_read


def _create_staging(con: duckdb.DuckDBPyConnection) -> None:
    for name, ddl in _DDL.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {identifier(name)} "
                    f"(input_id INTEGER, _row BIGINT, {ddl})")
    con.execute(f"CREATE TABLE IF NOT EXISTS ps_files ({_FILES_DDL})")


# --------------------------------------------------------------------------------- assembly
def _quarantine_duplicates(con: duckdb.DuckDBPyConnection, staging: str, key: str,
                           reason: str, field: str, source: str) -> None:
    """Keep the newest row of each ``key`` (see :func:`assemble`) in view ``<staging>_kept``;
    quarantine the others (listed in table ``<staging>_dups``)."""
    s, dups = identifier(staging), identifier(staging + "_dups")
    con.execute(f"""
        CREATE OR REPLACE TABLE {dups} AS
        WITH multi AS (  -- only keys staged twice are sorted (one pass over the rest)
            SELECT {key} FROM {s} GROUP BY {key} HAVING count(*) > 1)
        SELECT input_id, _row, k_input, k_row FROM (
            SELECT x.input_id, x._row,
                   first_value(x.input_id) OVER w AS k_input, first_value(x._row) OVER w AS k_row,
                   row_number() OVER w AS k
            FROM {s} x JOIN multi USING ({key}) JOIN ps_files f USING (input_id)
            WINDOW w AS (PARTITION BY {key} ORDER BY {_NEWEST_FIRST}))
        WHERE k > 1""")
    con.execute(f"""
        INSERT INTO quarantine (input_id, file, position, source, field, reason, excerpt)
        SELECT d.input_id, f.file, 'row ' || d._row, ?, ?, ?,
               'kept ' || kf.file || ':row ' || d.k_row
        FROM {dups} d JOIN ps_files f ON f.input_id = d.input_id
        JOIN ps_files kf ON kf.input_id = d.k_input""", [source, field, reason])
    # A view, not a copy: the kept rows are read once or twice, by joins.
    con.execute(f"""
        CREATE OR REPLACE VIEW {identifier(staging + '_kept')} AS
        SELECT * FROM {s} x WHERE NOT EXISTS (
            SELECT 1 FROM {dups} d WHERE d.input_id = x.input_id AND d._row = x._row)""")


def _register_parser(con: duckdb.DuckDBPyConnection) -> None:
    """SQL function ``ps_parse_address(address, country)`` → struct of
    :func:`~stclusters.geocode._address.parse_address` (vectorised over Arrow batches)."""
    out_type = pa.struct([("postcode", pa.string()), ("city", pa.string()),
                          ("admin1", pa.string()), ("country", pa.string())])

    def parse(address: pa.Array, country: pa.Array) -> pa.Array:
        parsed = [parse_address(a, c) for a, c in
                  zip(address.to_pylist(), country.to_pylist())]
        fields = [pa.array([p[i] for p in parsed], pa.string()) for i in range(4)]
        return pa.StructArray.from_arrays(fields, fields=list(out_type))

    try:
        con.remove_function("ps_parse_address")
    except (duckdb.Error, KeyError, ValueError):
        pass  # not registered yet on this connection
    con.create_function(
        "ps_parse_address", parse, ["VARCHAR", "VARCHAR"],
        "STRUCT(postcode VARCHAR, city VARCHAR, admin1 VARCHAR, country VARCHAR)",
        type="arrow", null_handling="special", side_effects=False)


def _mine(con: duckdb.DuckDBPyConnection) -> str:
    """SQL list of the input ids staged by this reader."""
    ids = [r[0] for r in con.execute("SELECT DISTINCT input_id FROM ps_files "
                                     "ORDER BY 1").fetchall()]
    return ", ".join(str(int(i)) for i in ids) or "NULL"


def assemble(con: duckdb.DuckDBPyConnection) -> None:
    """Documents and contributions of everything staged, into ``documents`` and
    ``raw_contributions`` (pure SQL over the staging tables; the address parser runs once
    per distinct address).

    Rules (``docs/inputs.md``, PATSTAT):

    * **Newest wins.** A key staged twice (the same ``appln_id`` in ``tls201``, ``person_id``
      in ``tls206``, the same four-column key in ``tls207``; e.g. two editions) keeps the row
      of the file staged last (the highest ``input_id``: the lead numbers inputs in path
      order, and a later ingest adds a later edition), and within a file its first row; the
      others are quarantined (``duplicate appln_id`` …, excerpt ``kept <file>:row N``).
      ``tls226`` and ``tls209`` rows are chosen per person / application the same way.
    * **Documents** are the PCT applications (:data:`PCT_APPLN_KIND`) with a real
      ``appln_id`` (not 0, not above :data:`MAX_REAL_APPLN_ID`) and a publication year;
      ``doc_id`` = :data:`DOC_ID_PREFIX` + ``appln_id``, ``year`` = :data:`YEAR_COLUMN`,
      ``doc_type`` from :data:`IPR_DOC_TYPES`.
    * **Contributions** are their inventor links (``invt_seq_nr > 0``), ``contributor_seq``
      = the link's rank by ``invt_seq_nr`` (then ``person_id``) within the application,
      0-based; address from ``tls206`` (``person_address``, `` \\n `` → ``, ``), else from
      ``tls226``; ``country`` = ``person_ctry_code`` (else tls226's, else the one the text
      names); ``postcode``/``city``/``admin1`` parsed from the address (tls226's ``city`` and
      ``zip_code`` win when given).

    Calling it again redoes it: this reader's earlier documents, contributions and
    assembly quarantine entries are removed first.
    """
    _create_staging(con)
    mine = _mine(con)
    con.execute(f"DELETE FROM documents WHERE input_id IN ({mine})")
    con.execute(f"DELETE FROM raw_contributions WHERE input_id IN ({mine})")
    con.execute(f"DELETE FROM quarantine WHERE input_id IN ({mine}) "
                f"AND reason IN ({literals(_ASSEMBLE_REASONS)})")
    _quarantine_duplicates(con, "ps_appln", "appln_id", "duplicate appln_id", "appln_id",
                           "patent")
    _quarantine_duplicates(con, "ps_person", "person_id", "duplicate person_id", "person_id",
                           "person")
    _quarantine_duplicates(con, "ps_pers_appln",
                           "person_id, appln_id, applt_seq_nr, invt_seq_nr", "duplicate row",
                           "person_id/appln_id/applt_seq_nr/invt_seq_nr", "patent")
    _applications(con)
    _links(con)
    _addresses(con)
    _insert(con)


def _applications(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``ps_app_status``: every kept tls201 row with its leave-out status (NULL for a
    document), doc_id, year and doc_type."""
    doc_types = " ".join(f"WHEN {literal(k)} THEN {literal(v)}"
                         for k, v in IPR_DOC_TYPES.items())
    con.execute(f"""
        CREATE OR REPLACE TABLE ps_app_status AS
        SELECT input_id, _row, appln_id,
               CASE WHEN appln_id = 0 THEN 'dummy application (appln_id 0)'
                    WHEN appln_id > {MAX_REAL_APPLN_ID} THEN 'artificial application'
                    WHEN appln_kind IS DISTINCT FROM {literal(PCT_APPLN_KIND)} THEN {literal(NOT_PCT)}
                    WHEN publn_year = {UNKNOWN_YEAR} THEN 'not published'
               END AS status,
               {literal(DOC_ID_PREFIX)} || appln_id AS doc_id, publn_year AS year,
               CASE ipr_type {doc_types} ELSE lower(ipr_type) END AS doc_type
        FROM ps_appln_kept""")


def _links(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``ps_link_status``: every kept tls207 row, its leave-out status (NULL for a
    contribution) and, for contributions, ``contributor_seq``."""
    con.execute(f"""
        CREATE OR REPLACE TABLE ps_link_status AS
        WITH l AS (
            SELECT l.input_id, l._row, l.person_id, l.appln_id, l.invt_seq_nr,
                   CASE WHEN l.invt_seq_nr = 0 THEN {literal(NOT_INVENTOR)}
                        WHEN a.appln_id IS NULL THEN 'no such application'
                        WHEN a.status IS NOT NULL THEN a.status
                        -- one person is one inventor of an application, whatever its links
                        WHEN row_number() OVER (
                            PARTITION BY l.appln_id, l.person_id, l.invt_seq_nr > 0
                            ORDER BY l.invt_seq_nr, l.input_id, l._row) > 1
                        THEN {literal(SAME_INVENTOR)}
                   END AS status
            FROM ps_pers_appln_kept l LEFT JOIN ps_app_status a USING (appln_id))
        SELECT l.input_id, l._row, l.person_id, l.appln_id, l.status,
               CASE WHEN l.status IS NULL THEN CAST(row_number() OVER (
                   PARTITION BY l.appln_id, l.status IS NULL
                   ORDER BY l.invt_seq_nr, l.person_id, l.input_id, l._row) - 1 AS INTEGER)
               END AS contributor_seq,
               -- the contribution's record_ref, written once: joins match on it
               f.file || ':row ' || l._row AS record_ref
        FROM l JOIN ps_files f USING (input_id)""")


def _addresses(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``ps_person_addr``: the address of every inventor person of a contribution,
    with its parsed fields and the tls226 row it came from (if any)."""
    con.execute(f"""
        CREATE OR REPLACE TABLE ps_orig_pick AS
        SELECT x.person_id, x.input_id, x._row, x.address, x.city, x.zip_code, x.ctry
        FROM ps_person_orig x JOIN ps_files f USING (input_id)
        WHERE x.person_id IN (SELECT person_id FROM ps_link_status WHERE status IS NULL)
        QUALIFY row_number() OVER (
            PARTITION BY x.person_id
            ORDER BY (x.city IS NOT NULL OR x.address IS NOT NULL) DESC, {_NEWEST_FIRST}) = 1""")
    _register_parser(con)
    con.execute(r"""
        CREATE OR REPLACE TABLE ps_person_addr AS
        WITH p AS (
            SELECT l.person_id, p.person_name,
                   NULLIF(trim(regexp_replace(p.address, '\s*\\n\s*', ', ', 'g'), ' ,'), '')
                       AS address_206,
                   NULLIF(p.ctry, '') AS ctry_206
            FROM (SELECT DISTINCT person_id FROM ps_link_status WHERE status IS NULL) l
            LEFT JOIN ps_person_kept p USING (person_id)),
        a AS (
            SELECT p.person_id,
                   CASE WHEN p.address_206 IS NULL THEN o.input_id END AS orig_input_id,
                   CASE WHEN p.address_206 IS NULL THEN o._row END AS orig_row,
                   coalesce(p.address_206,
                            NULLIF(trim(regexp_replace(o.address, '\s*\\n\s*', ', ', 'g'), ' ,'), ''))
                       AS address_raw,
                   CASE WHEN p.address_206 IS NULL THEN o.city END AS orig_city,
                   CASE WHEN p.address_206 IS NULL THEN o.zip_code END AS orig_zip,
                   coalesce(p.ctry_206, NULLIF(o.ctry, '')) AS ctry
            FROM p LEFT JOIN ps_orig_pick o USING (person_id)),
        parsed AS (
            SELECT address_raw, ctry, ps_parse_address(address_raw, ctry) AS x
            FROM (SELECT DISTINCT address_raw, ctry FROM a WHERE address_raw IS NOT NULL))
        SELECT a.person_id, a.orig_input_id, a.orig_row, a.address_raw,
               coalesce(a.orig_zip, x.x.postcode) AS postcode,
               coalesce(a.orig_city, x.x.city) AS city, x.x.admin1 AS admin1,
               coalesce(a.ctry, x.x.country) AS country
        FROM a LEFT JOIN parsed x
          ON x.address_raw = a.address_raw AND x.ctry IS NOT DISTINCT FROM a.ctry""")


def _insert(con: duckdb.DuckDBPyConnection) -> None:
    """Insert the documents and contributions (tech field and first applicant joined)."""
    con.execute("""
        CREATE OR REPLACE TABLE ps_ipc_pick AS
        SELECT x.appln_id, x.input_id, x._row, x.symbol
        FROM ps_appln_ipc x JOIN ps_files f USING (input_id)
        WHERE x.ipc_value = 'I' AND x.symbol IS NOT NULL
          AND x.appln_id IN (SELECT appln_id FROM ps_app_status WHERE status IS NULL)
        QUALIFY row_number() OVER (
            PARTITION BY x.appln_id
            ORDER BY f.edition DESC NULLS LAST, x.input_id DESC,
                     (x.ipc_position = 'F') DESC NULLS LAST, x._row) = 1""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _ps_docs AS
        SELECT a.input_id, a._row, a.appln_id, a.doc_id, a.year, a.doc_type,
               f.file || ':row ' || a._row AS record_ref,
               upper(left(replace(i.symbol, ' ', ''), 4)) AS tech_field,
               ap.applicant, coalesce(n.n, 0) AS n_contributors
        FROM ps_app_status a JOIN ps_files f ON f.input_id = a.input_id
        LEFT JOIN ps_ipc_pick i USING (appln_id)
        LEFT JOIN (SELECT appln_id, count(*) AS n FROM ps_link_status WHERE status IS NULL
                   GROUP BY appln_id) n USING (appln_id)
        LEFT JOIN (SELECT l.appln_id, arg_min(p.person_name, l.applt_seq_nr) AS applicant
                   FROM ps_pers_appln_kept l JOIN ps_person_kept p USING (person_id)
                   WHERE l.applt_seq_nr > 0 GROUP BY l.appln_id) ap USING (appln_id)
        WHERE a.status IS NULL""")
    con.execute("""
        INSERT INTO documents (input_id, doc_id, source, year, doc_type, n_contributors,
                               record_ref, updated_date)
        SELECT input_id, doc_id, 'patent', year, doc_type, n_contributors, record_ref, NULL
        FROM _ps_docs""")
    con.execute("""
        INSERT INTO raw_contributions (input_id, doc_id, source, year, contributor_seq,
            address_seq, city, admin1, country, postcode, address_raw, applicant, tech_field,
            record_ref, doc_type, _row)
        SELECT l.input_id, d.doc_id, 'patent', d.year, l.contributor_seq, 0, p.city,
               p.admin1, p.country, p.postcode, p.address_raw, d.applicant, d.tech_field,
               l.record_ref, d.doc_type, l._row
        FROM ps_link_status l JOIN _ps_docs d USING (appln_id)
        LEFT JOIN ps_person_addr p USING (person_id)
        WHERE l.status IS NULL""")
    con.execute("DROP TABLE _ps_docs")


# ------------------------------------------------------------------------------- accounting
def status_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, int]]:
    """(input_id, source, status, n) for every staged row that the quarantine does not hold.

    * ``tls201``: ``used`` when one of its contributions is; else its leave-out reason
      (:data:`NOT_PCT`, ``not published``, ``artificial application`` …), ``no_contributors``,
      or the contributions' main reason (``out_of_window``, ``doc_type_excluded``,
      ``country_mismatch``, ``no_located_contributor``), as for other document inputs.
    * ``tls207``: its contribution's status (``unlocated (<geocoder's reason>)`` for an
      unlocated one), else :data:`NOT_INVENTOR`, :data:`NOT_PCT`, ``no such application`` ….
    * lookups (``tls206``, ``tls226``, ``tls209``): ``used`` when a used contribution took
      its data, ``not used`` when it was taken by contributions that are not used (or, for
      tls226 and tls209, another row of the same person or application was taken), and
      ``not referenced`` when no contribution needs it.
    """
    _create_staging(con)
    return [tuple(r) for r in con.execute(f"""
        WITH c AS (
            SELECT c.input_id, c.record_ref, c.doc_id,
                   CASE WHEN c.status = 'unlocated'
                        THEN 'unlocated (' || coalesce(c.geocode_status, 'no address') || ')'
                        ELSE c.status END AS status,
                   c.status AS raw_status
            FROM contributions c
            WHERE c.source = 'patent' AND c.input_id IN (SELECT input_id FROM ps_files)),
        used_link AS (
            SELECT l.person_id, l.appln_id, bool_or(c.raw_status = 'used') AS used
            FROM ps_link_status l
            JOIN c ON c.input_id = l.input_id AND c.record_ref = l.record_ref
            GROUP BY l.person_id, l.appln_id),
        used_person AS (SELECT person_id, bool_or(used) AS used FROM used_link GROUP BY 1),
        used_app AS (SELECT appln_id, bool_or(used) AS used FROM used_link GROUP BY 1),
        docs AS (
            SELECT d.input_id, 'patent' AS source,
                   {document_status_sql('c.raw_status')} AS status
            FROM documents d LEFT JOIN c ON c.doc_id = d.doc_id
            WHERE d.input_id IN (SELECT input_id FROM ps_files WHERE tbl = 'tls201')
              AND d.source = 'patent'
            GROUP BY d.input_id, d.doc_id, d.record_ref),
        left_out AS (
            SELECT input_id, 'patent' AS source, status FROM ps_app_status
            WHERE status IS NOT NULL
            UNION ALL
            SELECT input_id, 'patent', status FROM ps_link_status WHERE status IS NOT NULL),
        links AS (
            SELECT c.input_id, 'patent' AS source, c.status FROM c
            WHERE c.input_id IN (SELECT input_id FROM ps_files WHERE tbl = 'tls207')),
        persons AS (
            SELECT p.input_id, 'person' AS source,
                   CASE WHEN u.used THEN 'used' WHEN u.used IS NOT NULL THEN 'not used'
                        ELSE 'not referenced' END AS status
            FROM ps_person_kept p LEFT JOIN used_person u USING (person_id)),
        origs AS (
            SELECT o.input_id, 'person_orig' AS source,
                   CASE WHEN u.person_id IS NULL THEN 'not referenced'
                        WHEN u.used AND a.orig_row IS NOT NULL THEN 'used'
                        ELSE 'not used' END AS status
            FROM ps_person_orig o LEFT JOIN used_person u USING (person_id)
            LEFT JOIN ps_person_addr a ON a.person_id = o.person_id
                 AND a.orig_input_id = o.input_id AND a.orig_row = o._row),
        ipcs AS (
            SELECT i.input_id, 'classification' AS source,
                   CASE WHEN u.appln_id IS NULL THEN 'not referenced'
                        WHEN u.used AND k.appln_id IS NOT NULL THEN 'used'
                        ELSE 'not used' END AS status
            FROM ps_appln_ipc i LEFT JOIN used_app u USING (appln_id)
            LEFT JOIN ps_ipc_pick k ON k.appln_id = i.appln_id AND k.input_id = i.input_id
                 AND k._row = i._row)
        SELECT input_id, source, status, count(*) FROM (
            SELECT * FROM docs UNION ALL SELECT * FROM left_out UNION ALL SELECT * FROM links
            UNION ALL SELECT * FROM persons UNION ALL SELECT * FROM origs
            UNION ALL SELECT * FROM ipcs)
        GROUP BY ALL ORDER BY ALL""").fetchall()]
