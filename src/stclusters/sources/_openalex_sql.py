"""The SQL fast path of OpenAlex works in JSON Lines (a snapshot part): lines → workspace.

The Python reader (:func:`stclusters.sources.openalex.read_openalex_works`) decodes every
work with ``json.loads`` and maps it field by field; it stays the definition of what a work
gives (the oracle, ``tests/test_openalex_fast_path.py``). Here the same mapping is done in
DuckDB over a chunk of lines at a time, and every line the SQL cannot map *exactly as the
Python reader does* goes to the Python reader's own functions
(:func:`~stclusters.sources.openalex.decode_line`, :func:`~stclusters.sources.openalex.map_work`):

* the lines are read in Python through the same gzip stream as the Python reader
  (:func:`~stclusters.sources._batch.open_binary`), so line numbers, the byte-order mark,
  invalid UTF-8 and a damaged gzip stream (records before the break kept, one quarantine
  entry) are the Python reader's, and DuckDB never sees a broken file: no ingest has to be
  rolled back and redone;
* a line is mapped in SQL only if it is *clean* (see :data:`_RISKY` and the ``clean``
  columns below): valid JSON that both decoders read alike, each field it uses of the type
  and size the workspace takes. Anything else (malformed JSON, a year as text, a country
  code that is not ISO, a 50 MB name, a NUL, a work without id …) is handed, whole line, to
  the Python reader, which quarantines or maps it as it always did.

So the fast path never decides a rejection itself, and the quarantine rows are the Python
reader's, entry for entry. Rows are inserted in line order, as the Python reader appends them.
"""

from __future__ import annotations

import contextlib

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from stclusters import store
from stclusters._sql import literal, literals
from stclusters.errors import InputFormatError
from stclusters.schema import DOCUMENT, MAX_ADDRESS_CHARS, MAX_TEXT_CHARS, RAW_CONTRIBUTION, YEAR_RANGE
from stclusters.sources._batch import BatchBuilder, open_binary
from stclusters.sources._quarantine import Quarantine
from stclusters.sources.openalex import (
    _BOM,
    _EXPECTED,
    DOMAIN_NAMES,
    SOURCE,
    _json_kind,
    decode_line,
    file_name,
    map_work,
    quarantine_line_stream_end,
    updated_date,
)
from stclusters.sources.table import iso_country_codes

#: Decompressed bytes of lines per chunk (one DuckDB query per chunk; memory ~ 3× this).
CHUNK_BYTES = 32 << 20

#: Python's ``str.isspace`` characters, as an RE2 class body: ``line.strip()`` and
#: ``s.strip()`` (blank line, blank affiliation string) are the Python reader's tests. All
#: lie below U+3001 (checked by tests/test_openalex_fast_path.py); the scan stops there to
#: keep the import fast.
_SPACE_BELOW = 0x3001
_PY_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(_SPACE_BELOW) if chr(c).isspace())
_NONBLANK = literal(f"[^{_PY_SPACE}]")

#: Python's JSON decoder gives up near 1,000 nesting levels (quarantined as too deep);
#: DuckDB's has no limit. A line with fewer ``[``/``{`` than this cannot be that deep.
_MAX_OPENERS = 900

#: The top-level keys the mapping uses: one repeated (``json.loads`` keeps the last value,
#: DuckDB the first) sends the line to Python.
_USED_KEYS = ("id", "publication_year", "type", "updated_date", "primary_topic", "concepts",
              "authorships")

#: Lines left to Python because DuckDB's JSON reader differs from ``json.loads`` on them
#: (or a container's type is wrong, which ``from_json`` would read as absent):
_RISKY = literal("|".join([
    r",[ \t\r\n]*[\]}]",  # a trailing comma (DuckDB accepts it)
    # NaN/Infinity spellings: DuckDB takes any case, json.loads only NaN, Infinity.
    r"[:,\[][ \t\r\n]*[-+]?(?i:nan|inf|infinity)[ \t\r\n]*[,\]}]",
    r"[0-9]{1000}",  # a huge number (json.loads refuses > 4,300 digits)
    r"\\u00[0-7]",  # an escaped ASCII character (a key spelt with escapes, a control char)
    # A used list that is not a list (json.loads iterates a string's characters, fails on a
    # number); from_json would read it as null.
    r'"(?:authorships|concepts|institutions|affiliations|institution_ids|countries|'
    r'raw_affiliation_strings)"[ \t\r\n]*:[ \t\r\n]*[^\[n \t\r\n]',
]))

#: What DuckDB extracts of a work; every leaf as JSON text (its type is checked).
_STRUCT = literal(json.dumps({
    "id": "JSON", "publication_year": "JSON", "type": "JSON", "updated_date": "JSON",
    "primary_topic": {"field": {"display_name": "JSON"},
                      "domain": {"display_name": "JSON", "id": "JSON"}},
    "concepts": [{"level": "JSON", "display_name": "JSON", "score": "JSON"}],
    "authorships": [{
        "institutions": [{"id": "JSON", "display_name": "JSON", "country_code": "JSON"}],
        "countries": ["JSON"], "raw_affiliation_strings": ["JSON"],
        "raw_affiliation_string": "JSON",
        "affiliations": [{"raw_affiliation_string": "JSON", "institution_ids": ["JSON"]}]}],
}))


def _is_str(leaf: str) -> str:
    return f"coalesce(left({leaf}, 1) = '\"', false)"


def _str(leaf: str) -> str:
    """The text of a JSON string leaf (NULL for any other leaf)."""
    return f"CASE WHEN {_is_str(leaf)} THEN json_extract_string({leaf}, '$') END"


def _short_id(text: str) -> str:
    """:func:`stclusters.sources.openalex.short_id` of a text."""
    return f"nullif(regexp_replace(rtrim({text}, '/'), '(?s)^.*/', ''), '')"


_CONTROL = literal(r"[\x00-\x1f\x7f]")


def _text_ok(text: str, *, max_chars: int = MAX_TEXT_CHARS, identifier: bool = False) -> str:
    """Would :func:`stclusters.sources._batch.check_value` take this text (NULL is fine)?"""
    # strlen (bytes, at hand) bounds length (characters): most texts skip the count.
    size = f"(strlen({text}) <= {int(max_chars)} OR length({text}) <= {int(max_chars)})"
    bad = (f"regexp_matches({text}, {_CONTROL})" if identifier
           else f"contains({text}, chr(0))")
    return f"coalesce({size} AND NOT {bad}, true)"


def _is_int(leaf: str) -> str:
    return f"regexp_full_match({leaf}, '-?[0-9]+')"


#: The ISO 3166-1 alpha-2 codes (:func:`stclusters.sources.openalex._iso2`), for ``IN``.
_ISO = literals(sorted(iso_country_codes()))


def _country(leaf: str) -> str:
    """An ISO alpha-2 code leaf, upper-cased, if clean (else NULL: the line goes to Python)."""
    return (f"CASE WHEN regexp_full_match({_str(leaf)}, '[A-Za-z]{{2}}') "
            f"AND upper({_str(leaf)}) IN ({_ISO}) THEN upper({_str(leaf)}) END")


def _country_ok(leaf: str) -> str:
    return (f"({leaf} IS NULL OR {leaf} = '\"\"' OR {_country(leaf)} IS NOT NULL)")


def _domain_name(did: str) -> str:
    whens = " ".join(f"WHEN {int(k)} THEN {literal(v)}" for k, v in sorted(DOMAIN_NAMES.items()))
    return f"CASE {did} {whens} END"


_LOW, _HIGH = YEAR_RANGE

#: A decimal number as JSON writes it, or as a string (2022 works give concept scores as
#: strings, "0.47713992"): ``float()`` of either is DuckDB's DOUBLE cast of the text.
_DECIMAL = literal(r'"?-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?"?')


def _score(leaf: str) -> str:
    """``float(c.get("score") or 0.0)`` of a concept's score leaf."""
    return (f"CASE WHEN {leaf} IS NULL OR {leaf} = '\"\"' OR {leaf} = '0' THEN 0::DOUBLE "
            f"ELSE TRY_CAST(trim({leaf}, '\"') AS DOUBLE) END")


def _score_ok(leaf: str) -> str:
    return f"({leaf} IS NULL OR {leaf} = '\"\"' OR regexp_full_match({leaf}, {_DECIMAL}))"


def _works_sql() -> str:
    """Per non-blank line: ``quick`` (clean JSON), the work's fields, ``clean``."""
    dom = "w.primary_topic.domain"
    did = f"{dom}.id"
    seg = _short_id(_str(did))
    fdn = "w.primary_topic.field.display_name"
    lvl0 = "coalesce(TRY_CAST(c.level AS BIGINT) = 0, false)"
    cands = (f"list_filter(w.concepts, lambda c: {lvl0} AND {_is_str('c.display_name')} "
             f"AND c.display_name <> '\"\"')")
    scored = (f"list_transform({cands}, lambda c: {{'s': {_score('c.score')}, "
              f"'n': json_extract_string(c.display_name, '$')}})")
    best = (f"list_reduce({scored}, lambda acc, c: CASE WHEN c.s > acc.s THEN c ELSE acc END, "
            f"{{'s': '-inf'::DOUBLE, 'n': NULL::VARCHAR}}).n")
    concepts_ok = ("coalesce(list_bool_and(list_transform(w.concepts, lambda c: "
                   f"(c.level IS NULL OR {_is_int('c.level')}) "
                   f"AND (c.display_name IS NULL OR {_is_str('c.display_name')}) "
                   f"AND {_score_ok('c.score')})), true)")
    return f"""
    CREATE OR REPLACE TEMP TABLE _oa_w AS
    WITH l AS (
        SELECT line_no, line FROM _oa_lines WHERE regexp_matches(line, {_NONBLANK})
    ), q AS (
        SELECT line_no, line, try(json_keys(line)) AS keys,
               regexp_matches(line, '^[ \\t\\r]*[{{]')
               AND NOT regexp_matches(line, {_RISKY})
               AND strlen(line) - strlen(replace(replace(line, '[', ''), '{{', ''))
                   < {_MAX_OPENERS} AS quick0
        FROM l
    ), q1 AS (
        SELECT line_no, line, quick0 AND keys IS NOT NULL AND len(list_filter(keys, lambda k: k IN ({literals(_USED_KEYS)})))
               = len(list_distinct(list_filter(keys, lambda k: k IN ({literals(_USED_KEYS)})))) AS quick
        FROM q
    ), p AS (
        SELECT line_no, quick, CASE WHEN quick THEN from_json(line, {_STRUCT}) END AS w FROM q1
    ), f AS (
        SELECT line_no, quick, w,
               {_short_id(_str('w.id'))} AS doc_id,
               TRY_CAST(w.publication_year AS BIGINT) AS year,
               {_str('w.type')} AS doc_type,
               coalesce({_str('w.updated_date')}, $partition_date) AS updated_date,
               CASE WHEN {dom} IS NULL THEN NULL
                    WHEN {dom}.display_name IS NOT NULL THEN {_str(f'{dom}.display_name')}
                    WHEN {_is_int(did)} THEN {_domain_name(f'TRY_CAST({did} AS BIGINT)')}
                    WHEN regexp_full_match({seg}, '[0-9]+')
                         THEN {_domain_name(f'TRY_CAST({seg} AS BIGINT)')}
               END AS domain,
               CASE WHEN {_is_str(fdn)} AND {fdn} <> '\"\"' THEN {_str(fdn)} ELSE {best} END
                   AS tech_field,
               coalesce(len(w.authorships), 0) AS n_contributors,
               {concepts_ok} AS concepts_ok
        FROM p
    )
    SELECT line_no, quick, doc_id, TRY_CAST(year AS INTEGER) AS year, doc_type, updated_date, domain,
           tech_field, n_contributors::INTEGER AS n_contributors, w.authorships AS auths,
           quick AND coalesce(
               {_is_str('w.id')} AND doc_id IS NOT NULL AND {_text_ok('doc_id', identifier=True)}
               AND (w.publication_year IS NULL OR ({_is_int('w.publication_year')}
                    AND year BETWEEN {_LOW} AND {_HIGH}))
               AND (w.type IS NULL OR {_is_str('w.type')}) AND {_text_ok('doc_type')}
               AND (w.updated_date IS NULL OR regexp_full_match({_str('w.updated_date')},
                    '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([T ][0-9:.]+Z?)?'))
               AND {_text_ok('updated_date')}
               AND ({dom} IS NULL OR {dom}.display_name IS NOT NULL AND {_is_str(f'{dom}.display_name')}
                    OR {dom}.display_name IS NULL AND ({did} IS NULL OR {_is_int(did)}
                        OR {_is_str(did)} AND regexp_full_match({_str(did)}, '[\\x01-\\x7f]*')))
               AND {_text_ok('domain')}
               AND ({fdn} IS NULL OR {_is_str(fdn)}) AND concepts_ok AND {_text_ok('tech_field')},
               false) AS clean
    FROM f
    """


def _authorships_sql() -> str:
    """Per authorship of a clean work (``_oa_a``): its raw strings joined, institutions,
    affiliations (their strings and institution ids), countries, and whether they are
    clean."""
    raws = f"""CASE
        WHEN len(a.raw_affiliation_strings) > 0 THEN list_transform(list_filter(
            a.raw_affiliation_strings, lambda x: {_is_str('x')}
            AND regexp_matches(json_extract_string(x, '$'), {_NONBLANK})),
            lambda x: json_extract_string(x, '$'))
        WHEN {_is_str('a.raw_affiliation_string')}
             AND regexp_matches({_str('a.raw_affiliation_string')}, {_NONBLANK})
            THEN [{_str('a.raw_affiliation_string')}]
        ELSE list_transform(list_filter(a.affiliations, lambda f: {_is_str('f.raw_affiliation_string')}
            AND f.raw_affiliation_string <> '\"\"'),
            lambda f: json_extract_string(f.raw_affiliation_string, '$'))
        END"""
    affs_ok = f"""coalesce(list_bool_and(list_transform(a.affiliations, lambda f:
        (f.raw_affiliation_string IS NULL OR {_is_str('f.raw_affiliation_string')})
        AND coalesce(list_bool_and(list_transform(f.institution_ids,
            lambda x: x IS NULL OR {_is_str('x')})), true))), true)"""
    # An institution element with none of the three keys is {}, a non-object or an object
    # of other keys: json.loads tells them apart (the last one is an institution), from_json
    # does not; such an authorship goes to Python.
    insts_ok = ("coalesce(NOT list_bool_or(list_transform(a.institutions, lambda i: i IS NULL OR "
                "(i.id IS NULL AND i.display_name IS NULL AND i.country_code IS NULL))), true)")
    affs = f"""list_transform(list_filter(a.affiliations, lambda f: {_is_str('f.raw_affiliation_string')}
        AND f.raw_affiliation_string <> '\"\"' AND len(f.institution_ids) > 0), lambda f: {{
            'raw': json_extract_string(f.raw_affiliation_string, '$'),
            'keys': list_transform(f.institution_ids, lambda x: {_short_id(_str('x'))})}})"""
    countries = (f"list_distinct(list_filter(list_transform(a.countries, lambda c: {_str('c')}), "
                 "lambda c: c <> ''))")
    return f"""
    CREATE OR REPLACE TEMP TABLE _oa_a AS
    SELECT line_no, seq, coalesce(a.institutions, []) AS insts,
           nullif(array_to_string({raws}, '; '), '') AS raw_join,
           {affs} AS affs, {countries} AS countries,
           {affs_ok} AND {insts_ok} AS a_ok
    FROM (SELECT line_no, generate_subscripts(auths, 1) - 1 AS seq, unnest(auths) AS a
          FROM _oa_w WHERE clean)
    """


def _rows_sql() -> str:
    """Address rows (``_oa_r``): one per institution of an authorship, or one fallback row,
    with ``ok``: would the Python reader take the row as is. An institution's address is
    the strings of the affiliations that name it (2024+), else all the authorship's."""
    matched = ("array_to_string(flatten(list_transform(affs, lambda f: list_transform("
               "list_filter(f.keys, lambda x: x = institution_id), lambda x: f.raw))), '; ')")
    one_country = _country("to_json(countries[1])")
    return f"""
    CREATE OR REPLACE TEMP TABLE _oa_r AS
    WITH i AS (
        SELECT line_no, seq, affs, raw_join, a_ok, generate_subscripts(insts, 1) - 1 AS k,
               unnest(insts) AS v
        FROM _oa_a WHERE len(insts) > 0
    ), ir AS (
        SELECT line_no, seq, k, affs, raw_join, a_ok, {_short_id(_str('v.id'))} AS institution_id,
               {_str('v.display_name')} AS org, {_country('v.country_code')} AS country,
               (v.display_name IS NULL OR {_is_str('v.display_name')})
               AND {_country_ok('v.country_code')} AS ok
        FROM i
    )
    SELECT line_no, seq, k AS address_seq, org, institution_id, country,
           coalesce(CASE WHEN len(affs) > 0 AND institution_id IS NOT NULL
                         THEN nullif({matched}, '') END, raw_join) AS address_raw,
           a_ok, ok AND {_text_ok('org')} AND {_text_ok('institution_id', identifier=True)} AS ok
    FROM ir
    UNION ALL
    SELECT line_no, seq, 0, NULL, NULL,
           CASE WHEN len(countries) = 1 THEN {one_country} END, raw_join, a_ok,
           len(countries) <> 1 OR {one_country} IS NOT NULL
    FROM _oa_a WHERE len(insts) = 0
    """


_ROUTED_SQL = """
    SELECT line_no FROM _oa_w WHERE NOT clean
    UNION SELECT line_no FROM _oa_r WHERE NOT (a_ok AND ok AND {ok})
"""


def _routed_sql() -> str:
    return _ROUTED_SQL.format(ok=_text_ok("address_raw", max_chars=MAX_ADDRESS_CHARS))


def _line_offsets(block: bytes) -> np.ndarray:
    """Start of each line of ``block`` and its end: a line keeps its ``\\n`` (as the Python
    reader's lines do, and its excerpts show)."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 0x0A) + 1
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    return np.concatenate([np.zeros(1, np.int64), ends.astype(np.int64)])


def _lines_table(block: bytes, offsets: np.ndarray, first_line: int) -> pa.Table | None:
    """``(line_no, line)`` of a chunk of whole lines, without copying them; None if the
    chunk is not all UTF-8."""
    n = len(offsets) - 1
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(block))
    try:
        lines.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return None
    return pa.table({"line_no": np.arange(first_line, first_line + n, dtype=np.int64),
                     "line": lines})


def _python_rows(raws: list[tuple[int, bytes]], name: str, quarantine: Quarantine
                 ) -> tuple[pa.Table, pa.Table]:
    """The Python reader's documents and contributions of the lines ``raws`` (line number,
    bytes), in order; its quarantine entries go to ``quarantine``. Each table gets
    ``line_no`` (from ``record_ref``, ``<name>:line N``) for ordering."""
    builder = BatchBuilder(max(1, len(raws)))
    for n, raw in raws:
        obj = decode_line(raw, n, name, quarantine, SOURCE)
        if obj is not None:
            map_work(obj, builder, quarantine, name, f"line {n}")
    batch = builder.take()
    docs = batch.documents if batch else DOCUMENT.empty_table()
    rows = batch.contributions if batch else RAW_CONTRIBUTION.empty_table()
    rows = store.with_doc_type(rows, docs)
    prefix = len(f"{name}:line ")

    def line_no(table: pa.Table) -> pa.Array:
        ref = table.column("record_ref")
        return pa.compute.utf8_slice_codeunits(ref, prefix).cast(pa.int64())

    return docs.append_column("line_no", line_no(docs)), rows.append_column("line_no", line_no(rows))


_DOC_COLS = ", ".join(DOCUMENT.names)
_ROW_COLS = ", ".join([*RAW_CONTRIBUTION.names, "doc_type", "domain"])


def _insert_chunk(con: duckdb.DuckDBPyConnection, m: duckdb.DuckDBPyConnection, *,
                  input_id: int, name: str) -> None:
    """Append the chunk's documents and contributions (SQL-mapped on the mapping connection
    ``m``, and Python-mapped, registered there as ``_oa_py_docs`` / ``_oa_py_rows``) to the
    workspace ``con`` in line order."""
    ref = "$name || ':line ' || line_no"  # the file's name is bound, never pasted
    docs = _arrow(m, f"""
        SELECT {_DOC_COLS} FROM (
            SELECT line_no, doc_id, {literal(SOURCE)} AS source, year, doc_type, n_contributors,
                   {ref} AS record_ref, updated_date, domain
            FROM _oa_w WHERE clean AND line_no NOT IN (SELECT line_no FROM _oa_routed)
            UNION ALL SELECT line_no, {_DOC_COLS} FROM _oa_py_docs)
        ORDER BY line_no""", {"name": name})
    rows = _arrow(m, f"""
        SELECT {_ROW_COLS} FROM (
            SELECT r.line_no, w.doc_id, {literal(SOURCE)} AS source, w.year,
                   r.seq::INTEGER AS contributor_seq, r.address_seq::INTEGER AS address_seq,
                   NULL AS city, NULL AS admin1, r.country, NULL AS postcode, r.address_raw,
                   r.org, r.institution_id, NULL AS applicant, w.tech_field, NULL::DOUBLE AS lat,
                   NULL::DOUBLE AS lon, NULL AS precision, {ref.replace('line_no', 'r.line_no')}
                   AS record_ref, w.doc_type, w.domain
            FROM _oa_r r JOIN _oa_w w USING (line_no)
            WHERE r.line_no NOT IN (SELECT line_no FROM _oa_routed)
            UNION ALL SELECT line_no, {_ROW_COLS} FROM _oa_py_rows)
        ORDER BY line_no, contributor_seq, address_seq""", {"name": name})
    store.append(con, "documents", docs, input_id=input_id)
    store.append(con, "raw_contributions", rows, input_id=input_id)


def _arrow(m: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pa.Table:
    rel = m.sql(sql, params=params)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def _mapping_connection() -> duckdb.DuckDBPyConnection:
    """A private connection for a file's per-chunk scratch tables. On the workspace, inside
    the file's transaction, every replaced scratch table would be kept until the commit
    (measured: +80 MB per 32 MB chunk, 4 GB for a 200 MB part)."""
    m = duckdb.connect(config={"memory_limit": f"{store.DEFAULT_MEMORY_MB // 2}MB",
                               "temp_directory": store.spill_dir()})
    m.execute("SET enable_progress_bar = false")
    return m


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    """Whole lines of ``f``, about :data:`CHUNK_BYTES` at a time."""
    while True:
        block = f.read(CHUNK_BYTES)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += f.readline()
        yield block


def _chunk_lines(block: bytes, first_line: int) -> tuple[pa.Table, list[tuple[int, bytes]]]:
    """The chunk's lines for SQL, and the lines that must go to Python because they are
    not UTF-8 (the chunk's other lines still go to SQL; a blank keeps the numbering)."""
    offsets = _line_offsets(block)
    table = _lines_table(block, offsets, first_line)
    if table is not None:
        return table, []
    good, bad = [], []
    for i in range(len(offsets) - 1):
        raw = block[offsets[i]:offsets[i + 1]]
        try:
            raw.decode("utf-8")
            good.append(raw)
        except UnicodeDecodeError:
            bad.append((first_line + i, raw))
            good.append(b"\n")
    text = b"".join(good)
    return _lines_table(text, _line_offsets(text), first_line), bad


def ingest_openalex_part(con: duckdb.DuckDBPyConnection, path: Path, *, input_id: int,
                         quarantine: Quarantine,
                         on_batch: Callable[[str, int], None] | None = None) -> int:
    """Read one OpenAlex works file in JSON Lines (plain or gzip) into the workspace ``con``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace, inside the file's transaction (tables ``documents``,
        ``raw_contributions``).
    path : Path
        A JSON Lines file (see :func:`is_json_lines`); reported as :func:`file_name` names it.
    input_id : int
        The file's id in the workspace.
    quarantine : Quarantine
        Receives exactly what the Python reader would put in it for this file.
    on_batch : callable, optional
        Progress, ``(file, works of the chunk)`` after each chunk.

    Returns
    -------
    int
        Records read: works in ``documents`` plus entries added to ``quarantine``.
    """
    name = file_name(path)
    partition_date = updated_date({}, name)
    n_before, n_docs, n_line = quarantine.count, 0, 0
    with open_binary(path, expected=_EXPECTED, whole_lines=True) as f, \
            contextlib.closing(_mapping_connection()) as m:
        for block in _chunks(f):
            if n_line == 0 and block.startswith(_BOM):
                block = block[len(_BOM):]
            lines, bad = _chunk_lines(block, n_line + 1)
            n_line += len(lines)
            n_chunk = _ingest_chunk(con, m, lines, bad, name=name, input_id=input_id,
                                    quarantine=quarantine, partition_date=partition_date)
            n_docs += n_chunk
            if on_batch:
                on_batch(str(path), n_chunk)
        quarantine_line_stream_end(quarantine, name, f, n_line, SOURCE)
    return n_docs + quarantine.count - n_before


def _ingest_chunk(con: duckdb.DuckDBPyConnection, m: duckdb.DuckDBPyConnection, lines: pa.Table,
                  bad: list[tuple[int, bytes]], *, name: str, input_id: int,
                  quarantine: Quarantine, partition_date: str | None) -> int:
    """One chunk of lines into the workspace ``con``, mapped on the private connection
    ``m``; return its works (documents) appended."""
    m.register("_oa_lines", lines)
    try:
        m.execute(_works_sql(), {"partition_date": partition_date})
        m.execute(_authorships_sql())
        m.execute(_rows_sql())
        m.execute(f"CREATE OR REPLACE TEMP TABLE _oa_routed AS {_routed_sql()}")
        routed = [n for (n,) in m.execute(
            "SELECT line_no FROM _oa_routed ORDER BY line_no").fetchall()]
        texts = dict(m.execute(
            "SELECT line_no, line FROM _oa_lines WHERE line_no IN (SELECT line_no FROM _oa_routed)"
        ).fetchall()) if routed else {}
        raws = sorted([(n, texts[n].encode("utf-8")) for n in routed] + bad)
        docs, rows = _python_rows(raws, name, quarantine)
        m.register("_oa_py_docs", docs)
        m.register("_oa_py_rows", rows)
        _insert_chunk(con, m, input_id=input_id, name=name)
        return int(store.scalar(m, "SELECT count(*) FROM _oa_w WHERE clean AND line_no NOT IN "
                                     "(SELECT line_no FROM _oa_routed)")) + docs.num_rows
    finally:
        for view in ("_oa_lines", "_oa_py_docs", "_oa_py_rows"):
            try:
                m.unregister(view)
            except duckdb.Error:
                pass
        for table in ("_oa_w", "_oa_a", "_oa_r", "_oa_routed"):
            m.execute(f"DROP TABLE IF EXISTS temp.{table}")


def is_json_lines(path: Path) -> bool:
    """Does the fast path take ``path``: a JSON Lines file (first significant byte ``{``)?
    A file that cannot be opened is left to the Python reader, which says why."""
    try:
        return path.is_file() and _json_kind(path) == "lines"
    except InputFormatError:
        return False
