"""OpenAlex works (and institutions), one row per (authorship, institution).

Accepted inputs: a JSON list (what the API and the project's sample hold), JSON Lines (what
the snapshot holds), each plain or gzip, and a snapshot folder (``data/works/`` or any folder
under it: every ``*.gz`` below it is read in name order; manifests are ignored).

Both work shapes are read (see ``shared/spec/formats.md`` §2.3):

* 2022: ``authorships[].raw_affiliation_string`` (one string), ``host_venue``, ``concepts``;
* 2024+: ``raw_affiliation_strings`` (list), ``affiliations[]`` = ``{raw_affiliation_string,
  institution_ids[]}``, ``countries[]``, ``primary_topic`` (field ids as integers or URLs).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import InputFormatError
from stclusters.sources._batch import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    StreamDamage,
    first_significant,
    open_binary,
    quarantine_skipped,
    sniff,
    stream_damage,
)
from stclusters.sources._quarantine import Quarantine
from stclusters.sources.table import iso_country_codes

_EXPECTED = "OpenAlex JSON (list or JSON Lines)"
SOURCE = "publication"
_CHUNK_CHARS = 1 << 20

INSTITUTION_GEO = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # short id, "I…"
        pa.field("lat", pa.float64()),  # degrees
        pa.field("lon", pa.float64()),
        pa.field("city", pa.string()),
        pa.field("region", pa.string()),
        pa.field("country_code", pa.string()),
        pa.field("geonames_city_id", pa.string()),
    ]
)


#: Quarantine reason of a record nested deeper than Python's JSON decoder goes (~1000).
_TOO_DEEP = "JSON nested too deep"


class _TruncatedList(Exception):
    """The JSON list ended (EOF) inside an element or before its closing bracket."""


# ----------------------------------------------------------------------------- file access

def _input_files(path: Path, entity: str = "works") -> list[tuple[Path, str]]:
    """The JSON files to read, each with the name it is reported under.

    ``path`` itself (reported by its file name), or the ``*.gz`` parts of a snapshot folder
    (its ``data/<entity>`` or ``<entity>`` subfolder if there is one), reported by their path
    relative to ``path``: parts of different ``updated_date=`` folders share file names
    (``part_000.gz``), so the name alone would not say which one is meant.
    """
    if not path.exists():
        raise InputFormatError(path, _EXPECTED, "file not found")
    if path.is_file():
        return [(path, path.name)]
    root = path
    for candidate in (path / "data" / entity, path / entity):
        if candidate.is_dir():
            root = candidate
            break
    files = sorted(f for f in root.rglob("*.gz") if f.is_file())
    if not files:
        raise InputFormatError(path, _EXPECTED, "folder holds no *.gz part files")
    return [(f, f.relative_to(path).as_posix()) for f in files]


def _json_kind(path: Path) -> str:
    """``'list'`` or ``'lines'`` from the first significant byte; else InputFormatError."""
    head = first_significant(sniff(path, expected=_EXPECTED, n=64))
    if head.startswith(b"["):
        return "list"
    if head.startswith(b"{"):
        return "lines"
    if not head:
        return "empty"
    raise InputFormatError(path, _EXPECTED, "content starts with neither '[' nor '{'")


_BOM = b"\xef\xbb\xbf"
#: What ``surrogateescape`` turns undecodable bytes into: lone surrogates U+DC80-U+DCFF,
#: which valid UTF-8 never decodes to.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
#: A JSON ``\\uD800``-``\\uDFFF`` escape: valid only as a high + low pair (checked then).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _text_stream(path: Path) -> io.TextIOWrapper:
    # utf-8-sig: tolerate a byte-order mark written by some tools. Invalid bytes become lone
    # surrogates (surrogateescape), so that the element holding them can be quarantined.
    return io.TextIOWrapper(open_binary(path, expected=_EXPECTED), encoding="utf-8-sig",
                            errors="surrogateescape")


def _lone_surrogate(text: str, obj: Any) -> bool:
    """Does the decoded ``obj`` hold a ``\\uD8xx`` escape without its pair (text that no
    UTF-8 output can hold)? Checked only when ``text`` has such an escape at all."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:  # too deep to check here; the record is quarantined as such later
        return False
    return False


def _iter_lines(path: Path, name: str, quarantine: Quarantine, source: str | None
                ) -> Iterator[tuple[str, dict]]:
    n = 0
    with open_binary(path, expected=_EXPECTED, whole_lines=True) as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                quarantine.add(name, f"line {n}", "invalid UTF-8",
                               excerpt=f"byte {exc.start}: {raw[:200].decode('utf-8', 'replace')}",
                               source=source)
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, or a number of more than 4,300 digits
                quarantine.add(name, f"line {n}", "malformed JSON", excerpt=f"{exc}: {line}",
                               source=source)
                continue
            except RecursionError:
                quarantine.add(name, f"line {n}", _TOO_DEEP, excerpt=line, source=source)
                continue
            if not isinstance(obj, dict):
                quarantine.add(name, f"line {n}", "not a JSON object", excerpt=line,
                               source=source)
                continue
            if _lone_surrogate(line, obj):
                quarantine.add(name, f"line {n}", "invalid Unicode escape",
                               excerpt=f"unpaired \\uD800-\\uDFFF escape: {line}", source=source)
                continue
            yield f"line {n}", obj
        quarantine_skipped(quarantine, name, f, source=source)
        damage = stream_damage(f)
        if damage is not None:
            _quarantine_damage(quarantine, name, f"after line {n}", damage, source)


def _quarantine_damage(quarantine: Quarantine, name: str, position: str, damage: StreamDamage,
                       source: str | None) -> None:
    """The one quarantine entry of a broken gzip stream (records before it are all read)."""
    quarantine.add(name, position, damage.reason, field="gzip", excerpt=damage.describe(),
                   source=source)


def _incomplete(exc: json.JSONDecodeError, buf: str) -> bool:
    """Did decoding fail only because the buffer ends inside the value?"""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(buf)


def _skip_value(buf: str, pos: int) -> int | None:
    """End index of the (malformed) value starting at ``pos``; ``None`` if the buffer ends
    first. Brackets are matched on a stack, and a closer also closes any unclosed inner
    opener (``{"a": [}`` ends at ``}``), so one bad bracket does not swallow the rest of the
    list. Used only to step over a malformed element, so a Python loop is fine."""
    stack: list[str] = []
    in_str = esc = False
    for i in range(pos, len(buf)):
        ch = buf[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}":
            if not stack:
                return i  # the list's own bracket: leave it to the caller
            opener = "{" if ch == "}" else "["
            while stack and stack.pop() != opener:
                pass
            if not stack:
                return i + 1
        elif not stack and ch == ",":
            return i
    return None


class _ListStream:
    """A sliding text buffer over one JSON list; ``buf[pos:]`` is the unread part."""

    def __init__(self, f: io.TextIOBase) -> None:
        self.f, self.buf, self.pos, self.eof = f, "", 0, False

    def fill(self) -> bool:
        """Read one more chunk; the consumed prefix is dropped (memory ~ one element)."""
        chunk = self.f.read(_CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at end of input)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def decode(self, decoder: json.JSONDecoder) -> tuple[Any, int]:
        """Decode the value at ``pos``: ``(value, start)``, the value's text being
        ``buf[start:pos]`` afterwards. Raise JSONDecodeError if malformed, _TruncatedList if
        the input ends inside it."""
        while True:
            try:
                start = self.pos
                obj, self.pos = decoder.raw_decode(self.buf, self.pos)
                return obj, start
            except json.JSONDecodeError as exc:
                if not _incomplete(exc, self.buf):
                    raise
                if not self.fill():
                    raise _TruncatedList from exc

    def skip_value(self) -> None:
        """Step over a malformed value, reading more input as needed."""
        while True:
            end = _skip_value(self.buf, self.pos)
            if end is not None:
                # A stray closer (``}`` where a value should start) is part of the malformed
                # value: step over it, or the same spot would be read again forever.
                if end == self.pos and self.buf[end] == "}":
                    end += 1
                self.pos = end
                return
            if not self.fill():
                raise _TruncatedList


def _after_list(s: _ListStream, name: str, n: int, quarantine: Quarantine,
                source: str | None) -> None:
    """What follows a list's closing bracket: nothing, or one quarantine entry for it (it
    may hold records, which must not vanish without a word)."""
    if s.peek() == "":
        return
    tail, size = s.buf[s.pos:s.pos + 200], len(s.buf) - s.pos
    while chunk := s.f.read(_CHUNK_CHARS):  # counted, not kept
        size += len(chunk)
    s.buf, s.pos = "", 0
    quarantine.add(name, f"after element {n}", "content after the end of the JSON list",
                   excerpt=f"{size} characters: {tail}", source=source)


def _iter_list(path: Path, name: str, quarantine: Quarantine, source: str | None
               ) -> Iterator[tuple[str, dict]]:
    """Stream the elements of a top-level JSON list with ``raw_decode`` over a sliding buffer."""
    decoder = json.JSONDecoder()
    with _text_stream(path) as f:
        s = _ListStream(f)
        if s.peek() != "[":
            raise InputFormatError(path, _EXPECTED, "not a JSON list")
        s.pos += 1
        n = 0
        expect_comma = False
        try:
            while True:
                ch = s.peek()
                if ch == "":
                    n += 1  # the list was cut after a complete element
                    raise _TruncatedList
                if ch == "]":
                    s.pos += 1
                    if s.peek() != "[":  # lists written one after the other read on
                        _after_list(s, name, n, quarantine, source)
                        break
                    s.pos += 1
                    expect_comma = False
                    continue
                if expect_comma:
                    if ch == ",":
                        s.pos += 1
                        if s.peek() == "":
                            n += 1
                            raise _TruncatedList
                    else:
                        # Missing comma: report it, then read on from this value.
                        quarantine.add(name, f"element {n + 1}", "malformed JSON",
                                       excerpt=f"expected ',' before {s.buf[s.pos:s.pos + 60]!r}",
                                       source=source)
                n += 1
                expect_comma = True
                head = s.buf[s.pos:s.pos + 150]
                try:
                    obj, start = s.decode(decoder)
                except json.JSONDecodeError as exc:
                    quarantine.add(name, f"element {n}", "malformed JSON",
                                   excerpt=f"{exc.msg}: {head}", source=source)
                    s.skip_value()
                    continue
                except ValueError as exc:  # a number of more than 4,300 digits
                    quarantine.add(name, f"element {n}", "malformed JSON",
                                   excerpt=f"{exc}: {head}", source=source)
                    s.skip_value()
                    continue
                except RecursionError:
                    quarantine.add(name, f"element {n}", _TOO_DEEP, excerpt=head, source=source)
                    s.skip_value()
                    continue
                bad = _ESCAPED_BYTE.search(s.buf, start, s.pos)
                if bad:
                    quarantine.add(name, f"element {n}", "invalid UTF-8",
                                   excerpt=f"character {bad.start() - start}: {head}",
                                   source=source)
                    continue
                if not isinstance(obj, dict):
                    quarantine.add(name, f"element {n}", "not a JSON object",
                                   excerpt=head, source=source)
                    continue
                if _lone_surrogate(s.buf[start:s.pos], obj):
                    quarantine.add(name, f"element {n}", "invalid Unicode escape",
                                   excerpt=f"unpaired \\uD800-\\uDFFF escape: {head}",
                                   source=source)
                    continue
                yield f"element {n}", obj
        except _TruncatedList:
            quarantine_skipped(quarantine, name, f, source=source)
            damage = stream_damage(f)
            if damage is not None:  # the list is cut where the stream broke: one entry
                _quarantine_damage(quarantine, name, f"element {max(n, 1)} to end of file",
                                   damage, source)
            else:
                quarantine.add(name, f"element {max(n, 1)} to end of file",
                               "truncated JSON list", excerpt=s.buf[s.pos:s.pos + 200],
                               source=source)
            return
        quarantine_skipped(quarantine, name, f, source=source)
        damage = stream_damage(f)
        if damage is not None:
            _quarantine_damage(quarantine, name, f"after element {n}", damage, source)


def iter_json_objects(
    path: str | Path, *, quarantine: Quarantine, source: str | None = None,
    entity: str = "works",
) -> Iterator[tuple[str, str, dict]]:
    """Yield ``(file, position, object)`` for every JSON object of a file or snapshot folder.

    ``file`` is the name the file is reported under (see :func:`_input_files`): its name, or
    for a folder its path relative to ``path``. All files are checked (exist, gzip readable,
    start with ``[`` or ``{``) before the first object is yielded, so a wrong input fails
    before any output is made.
    """
    files = _input_files(Path(path), entity)
    kinds = [(f, name, _json_kind(f)) for f, name in files]
    for f, name, kind in kinds:
        if kind == "empty":
            continue
        it = (_iter_list(f, name, quarantine, source) if kind == "list"
              else _iter_lines(f, name, quarantine, source))
        for position, obj in it:
            yield name, position, obj


# ----------------------------------------------------------------------------- work mapping

def short_id(value: Any) -> str | None:
    """``https://openalex.org/W123`` → ``W123``; ``None`` or empty stays ``None``."""
    if not value or not isinstance(value, str):
        return None
    return value.rstrip("/").rsplit("/", 1)[-1] or None


def _tech_field(work: dict) -> str | None:
    """Field of the primary topic; for older records the top level-0 concept."""
    topic = work.get("primary_topic")
    if isinstance(topic, dict):
        field = topic.get("field")
        if isinstance(field, dict) and field.get("display_name"):
            return field["display_name"]
    best: tuple[float, str] | None = None
    for c in work.get("concepts") or ():
        if isinstance(c, dict) and c.get("level") == 0 and c.get("display_name"):
            score = float(c.get("score") or 0.0)
            if best is None or score > best[0]:
                best = (score, c["display_name"])
    return best[1] if best else None


def _raw_strings(a: dict) -> list[str]:
    """The authorship's raw affiliation strings, newest field first."""
    strings = a.get("raw_affiliation_strings")
    if isinstance(strings, list) and strings:
        return [s for s in strings if isinstance(s, str) and s.strip()]
    single = a.get("raw_affiliation_string")
    if isinstance(single, str) and single.strip():
        return [single]
    return [aff["raw_affiliation_string"] for aff in a.get("affiliations") or ()
            if isinstance(aff, dict) and aff.get("raw_affiliation_string")]


def _address_rows(a: dict) -> list[dict[str, Any]]:
    """Address fields of one authorship: one dict per institution, or one fallback row."""
    raws = _raw_strings(a)
    by_institution: dict[str, list[str]] = {}
    for aff in a.get("affiliations") or ():
        if isinstance(aff, dict) and aff.get("raw_affiliation_string"):
            for iid in aff.get("institution_ids") or ():
                by_institution.setdefault(short_id(iid) or "", []).append(aff["raw_affiliation_string"])
    institutions = [i for i in a.get("institutions") or () if isinstance(i, dict) and i]
    if institutions:
        rows = []
        for inst in institutions:
            iid = short_id(inst.get("id"))
            matched = by_institution.get(iid or "\0")
            # Without the 2024+ mapping, every string is shown: it is the author's whole line.
            raw = "; ".join(matched) if matched else ("; ".join(raws) or None)
            country = inst.get("country_code")
            rows.append({"org": inst.get("display_name"), "institution_id": iid,
                         "country": _iso2(country, "country") if isinstance(country, str)
                         else country, "address_raw": raw})
        return rows
    countries = {c for c in a.get("countries") or () if isinstance(c, str) and c}
    return [{"address_raw": "; ".join(raws) or None,
             "country": _iso2(next(iter(countries)), "countries") if len(countries) == 1
             else None}]


#: The work's field behind each column, to name it in the quarantine.
_WORK_FIELDS = {
    "doc_id": "id", "year": "publication_year", "doc_type": "type",
    "updated_date": "updated_date", "org": "authorships[].institutions[].display_name",
    "country": "authorships[].institutions[].country_code",
    "countries": "authorships[].countries",
    "institution_id": "authorships[].institutions[].id",
    "address_raw": "authorships[].raw_affiliation_string(s)",
    "tech_field": "primary_topic.field.display_name",
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+Z?)?")


def _publication_year(value: Any) -> int | None:
    """``publication_year`` as an int (a number, or digits in a string); None if absent.

    The range is checked with the row (:data:`stclusters.schema.YEAR_RANGE`)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise RecordError("publication_year", "not an integer") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError("publication_year", f"not an integer ({type(value).__name__})")
    return value


_PARTITION_DATE = re.compile(r"(?:^|/)updated_date=(\d{4}-\d{2}-\d{2})/")


def updated_date(record: dict, file_name: str = "") -> str | None:
    """The date of this version of a record: its ``updated_date`` (ISO 8601 text, compared
    as text), else the date of the snapshot partition it was read from
    (``updated_date=YYYY-MM-DD/`` in ``file_name``); None without either.

    Raises
    ------
    RecordError
        ``updated_date`` given but not an ISO date (``YYYY-MM-DD``, optionally with a time).
    """
    value = record.get("updated_date")
    if value is None:
        m = _PARTITION_DATE.search(file_name)
        return m.group(1) if m else None
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise RecordError("updated_date", "not an ISO 8601 date")
    return value


def _add_work(work: dict, builder: BatchBuilder, record_ref: str) -> None:
    doc_id = short_id(work.get("id"))
    year = _publication_year(work.get("publication_year"))
    tech_field = _tech_field(work)
    authorships = work.get("authorships") or []
    if not isinstance(authorships, list):
        raise RecordError("authorships", "not a list")
    rows = []
    for seq, a in enumerate(authorships):
        addresses = _address_rows(a) if isinstance(a, dict) else [{}]
        for k, addr in enumerate(addresses):
            rows.append(dict(doc_id=doc_id, source=SOURCE, year=year, contributor_seq=seq,
                             address_seq=k, tech_field=tech_field, record_ref=record_ref, **addr))
    document = dict(doc_id=doc_id, source=SOURCE, year=year, doc_type=work.get("type"),
                    n_contributors=len(authorships),
                    updated_date=updated_date(work, record_ref.rsplit(":", 1)[0]),
                    record_ref=record_ref)
    builder.add_record(document, rows)  # all checked first: nothing is left of a bad work


def read_openalex_works(
    path: str | Path, *, quarantine: Quarantine, batch_size: int = 5000,
) -> Iterator[ReadBatch]:
    """Stream OpenAlex works as batches of publications and author affiliations.

    Parameters
    ----------
    path : str or Path
        JSON list or JSON Lines file (plain or gzip), or a snapshot folder.
    quarantine : Quarantine
        Receives malformed lines (``"line N"``), malformed list elements (``"element N"``),
        the tail of a truncated list, and works without an ``id``.
    batch_size : int
        Works per batch.

    Yields
    ------
    ReadBatch
        ``documents``: one row per work (``doc_id`` short id ``W…``, ``year`` =
        ``publication_year``, ``doc_type`` = ``type``, ``n_contributors`` = authorships).
        ``contributions``: one row per (authorship, institution) with ``contributor_seq`` =
        authorship index and ``address_seq`` = institution index; an authorship without
        institutions gives one row (raw affiliation and country if known, else all address
        fields null: it still counts as a contributor).

    Raises
    ------
    InputFormatError
        Missing path, folder without parts, broken gzip, content that is not JSON.
    """
    builder = BatchBuilder(batch_size)
    yield from builder.stream(_read_works(path, builder, quarantine))


def _read_works(path: str | Path, builder: BatchBuilder, quarantine: Quarantine
                ) -> Iterator[None]:
    """Map every work into ``builder`` (or the quarantine); one step per work."""
    for name, position, work in iter_json_objects(path, quarantine=quarantine, source=SOURCE):
        if not short_id(work.get("id")):
            quarantine.add(name, position, "work without id", field="id",
                           excerpt=_work_excerpt(work), source=SOURCE)
        else:
            try:
                _add_work(work, builder, f"{name}:{position}")
            except RecordError as exc:
                field = _WORK_FIELDS.get(exc.field, exc.field)
                quarantine.add(name, position, f"{field}: {exc.reason}", field=field,
                               excerpt=_work_excerpt(work), source=SOURCE)
            except (TypeError, AttributeError, ValueError) as exc:
                quarantine.add(name, position, "unexpected work structure", excerpt=str(exc),
                               source=SOURCE)
            except RecursionError:
                quarantine.add(name, position, _TOO_DEEP, source=SOURCE)
        yield


def _work_excerpt(record: dict) -> str:
    """The start of the record as JSON, for the quarantine (a too deep one by its keys)."""
    try:
        return json.dumps(record, ensure_ascii=False)[:200]
    except (RecursionError, ValueError, TypeError):
        return "keys: " + ", ".join(map(str, list(record)[:20]))


INSTITUTION_SOURCE = "institution"

_COORDINATES = (("latitude", 90.0), ("longitude", 180.0))


def _coordinate_problem(geo: dict) -> tuple[str, str] | None:
    """``(field, reason)`` of the first thing wrong with ``geo``'s coordinates, else None.

    Both absent (or null) is fine: the institution is kept without a coordinate. Otherwise
    both must be JSON numbers (not strings, not booleans, not NaN) within range.
    """
    given = [geo.get(k) is not None for k, _ in _COORDINATES]
    if not any(given):
        return None
    for key, limit in _COORDINATES:
        value = geo.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"geo.{key}", f"{key} not a number"
    if not all(given):
        return "geo.latitude/geo.longitude", "only one of latitude/longitude given"
    for key, limit in _COORDINATES:
        if not -limit <= geo[key] <= limit:
            return f"geo.{key}", f"{key} outside [{-limit:g}, {limit:g}]"
    return None


def read_openalex_institutions(
    path: str | Path, *, quarantine: Quarantine | None = None,
) -> pa.Table:
    """Read OpenAlex institution records (with ``geo``) into a coordinate lookup table.

    Parameters
    ----------
    path : str or Path
        JSON list / JSON Lines file (plain or gzip) or a snapshot (its ``data/institutions``
        folder is read) or ``data/institutions`` folder.
    quarantine : Quarantine, optional
        Receives, with ``source="institution"``: malformed records, records without ``id``,
        and records whose coordinates cannot be used (one of ``geo.latitude`` /
        ``geo.longitude`` only, not a number, NaN, outside [-90, 90] / [-180, 180]). Such a
        record is left out of the table (an earlier record of the same id, if any, stays).
        A record replaced by a later one of the same id is quarantined too (``superseded by
        a later record``), so that every record read is in the table or the quarantine.
        A private quarantine is used (and dropped) if none is given.

    Returns
    -------
    pa.Table
        ``INSTITUTION_GEO`` schema: ``id`` (short ``I…``), ``lat``/``lon`` (degrees,
        null when the record has no ``geo`` coordinates), ``city``, ``region``,
        ``country_code``, ``geonames_city_id`` (string). Later records win over earlier ones
        with the same id (snapshot partitions are read oldest first).
    """
    q = quarantine if quarantine is not None else Quarantine()
    rows: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}  # id → "<file>:<position>" of the record in ``rows``
    dates: dict[str, str | None] = {}  # id → updated_date of the record in ``rows``
    for name, position, inst in iter_json_objects(path, quarantine=q, source=INSTITUTION_SOURCE,
                                                  entity="institutions"):
        iid = short_id(inst.get("id"))
        if not iid:
            q.add(name, position, "institution without id", field="id",
                  excerpt=_work_excerpt(inst), source=INSTITUTION_SOURCE)
            continue
        geo = inst.get("geo") if isinstance(inst.get("geo"), dict) else {}
        problem = _coordinate_problem(geo)
        if problem is not None:
            field, reason = problem
            q.add(name, position, reason, field=field, source=INSTITUTION_SOURCE,
                  excerpt=f"{iid}: latitude={geo.get('latitude')!r}, "
                          f"longitude={geo.get('longitude')!r}")
            continue
        country = _str(geo.get("country_code")) or _str(inst.get("country_code"))
        try:
            date = updated_date(inst, name)
            country = _iso2(country, "country_code")
            gid = _geonames_id(geo.get("geonames_city_id"))
        except RecordError as exc:
            q.add(name, position, f"{exc.field}: {exc.reason}", field=exc.field,
                  excerpt=_work_excerpt(inst), source=INSTITUTION_SOURCE)
            continue
        here = f"{name}:{position}"
        if iid in where:
            loser, winner = _older_version(where[iid], dates[iid], here, date)
            old_file, old_position = loser.rsplit(":", 1)
            q.add(old_file, old_position, "superseded by a newer version"
                  if date != dates[iid] else "duplicate record", field="id",
                  excerpt=f"{iid}: kept {winner}", source=INSTITUTION_SOURCE)
            if winner != here:
                continue
        where[iid], dates[iid] = here, date
        lat, lon = geo.get("latitude"), geo.get("longitude")
        rows[iid] = {
            "id": iid, "lat": float(lat) if lat is not None else None,
            "lon": float(lon) if lon is not None else None,
            "city": _str(geo.get("city")), "region": _str(geo.get("region")),
            "country_code": country,
            "geonames_city_id": gid,
        }
    return pa.Table.from_pylist(list(rows.values()), schema=INSTITUTION_GEO)


def _older_version(kept: str, kept_date: str | None, new: str, new_date: str | None
                   ) -> tuple[str, str]:
    """``(loser, winner)`` of two versions of a record (``<file>:<position>`` each): the
    newer ``updated_date`` wins, a dated version beats an undated one; on a tie the one read
    first (``kept``) stays."""
    if new_date is not None and (kept_date is None or new_date > kept_date):
        return kept, new
    return new, kept


def _geonames_id(value: Any) -> str | None:
    """A GeoNames id (a number, or digits in a string) as text; None if absent.

    Raises
    ------
    RecordError
        Any other value (an object, a name, a boolean).
    """
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    raise RecordError("geo.geonames_city_id", "not a GeoNames id")


def _iso2(value: str | None, field: str) -> str | None:
    """An ISO 3166-1 alpha-2 code as OpenAlex writes it (any case), upper-cased.

    Raises
    ------
    RecordError
        Anything else (validated at the edge: the code becomes a cluster's economy label).
    """
    if value is None or value == "":
        return None
    code = value.strip().upper()
    if code not in iso_country_codes():
        raise RecordError(field, "not an ISO 3166-1 alpha-2 code")
    return code


def _str(value: Any) -> str | None:
    """A text field of the record; a value of another JSON type is not a name (None)."""
    return value if isinstance(value, str) else None
