"""OpenAlex works (and institutions), one row per (authorship, institution).

Accepted inputs: a JSON list (what the API and the project's sample hold), JSON Lines (what
the snapshot holds), each plain or gzip, and a snapshot folder (``data/works/`` or any folder
under it: every ``*.gz`` below it is read in name order; manifests are ignored here).

The snapshot itself (``shared/spec/formats.md`` §2.1-2.2): :func:`snapshot_parts` lists the
part files of a snapshot root or entity folder (each can be read as an input of its own),
:func:`check_manifest` compares an entity's ``manifest`` with the parts on disk, and
:func:`merged_away_ids` reads ``data/merged_ids/works/*.csv.gz``.

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
from collections.abc import Iterator, Sequence
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

#: A snapshot partition folder, ``updated_date=YYYY-MM-DD`` (formats.md §2.1).
_PARTITION_FOLDER = re.compile(r"updated_date=\d{4}-\d{2}-\d{2}")


def file_name(path: Path) -> str:
    """The name a single input file is reported under: its name, or for a snapshot part
    (a file in an ``updated_date=YYYY-MM-DD`` folder) ``updated_date=…/<name>``, the part's
    path below its entity folder. Parts of different partitions share names
    (``part_000.gz``), and the partition's date is the version date of records without
    their own ``updated_date`` (see :func:`updated_date`)."""
    if _PARTITION_FOLDER.fullmatch(path.parent.name):
        return f"{path.parent.name}/{path.name}"
    return path.name


def entity_dir(path: Path, entity: str) -> Path | None:
    """The folder of ``entity``'s parts in a snapshot given as ``path``: ``data/<entity>``
    (the bucket's layout), ``data/jsonl/<entity>`` (the 2026 exporter's) or ``<entity>``,
    the first that exists; None if none does."""
    for candidate in (path / "data" / entity, path / "data" / "jsonl" / entity, path / entity):
        if candidate.is_dir():
            return candidate
    return None


def _gz_parts(folder: Path) -> list[Path]:
    """Every ``*.gz`` file below ``folder``, in path order. The part names changed over the
    years (``0000_part_00.gz``, ``part_000.gz``, ``part_0000.gz``; formats.md §2.1), so
    every ``*.gz`` is a part."""
    return sorted((f for f in folder.rglob("*.gz") if f.is_file()), key=lambda f: f.as_posix())


def _input_files(path: Path, entity: str = "works") -> list[tuple[Path, str]]:
    """The JSON files to read, each with the name it is reported under.

    ``path`` itself (reported by :func:`file_name`), or the ``*.gz`` parts of a snapshot
    folder (its entity folder, see :func:`entity_dir`, if there is one), reported by their
    path relative to ``path``: parts of different ``updated_date=`` folders share file names
    (``part_000.gz``), so the name alone would not say which one is meant.
    """
    if not path.exists():
        raise InputFormatError(path, _EXPECTED, "file not found")
    if path.is_file():
        return [(path, file_name(path))]
    files = _gz_parts(entity_dir(path, entity) or path)
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


def decode_line(raw: bytes, n: int, name: str, quarantine: Quarantine, source: str | None
                ) -> dict | None:
    """The JSON object on line ``n`` (1-based; ``raw`` its bytes, BOM already removed), or
    None: a blank line (no record), or a line quarantined here (invalid UTF-8, malformed
    JSON, nested too deep, not an object, an unpaired surrogate escape). The one definition
    of a JSON Lines record, shared with the SQL fast path
    (:mod:`stclusters.sources._openalex_sql`), which hands it the lines it does not take."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        quarantine.add(name, f"line {n}", "invalid UTF-8",
                       excerpt=f"byte {exc.start}: {raw[:200].decode('utf-8', 'replace')}",
                       source=source)
        return None
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, or a number of more than 4,300 digits
        quarantine.add(name, f"line {n}", "malformed JSON", excerpt=f"{exc}: {line}",
                       source=source)
        return None
    except RecursionError:
        quarantine.add(name, f"line {n}", _TOO_DEEP, excerpt=line, source=source)
        return None
    if not isinstance(obj, dict):
        quarantine.add(name, f"line {n}", "not a JSON object", excerpt=line, source=source)
        return None
    if _lone_surrogate(line, obj):
        quarantine.add(name, f"line {n}", "invalid Unicode escape",
                       excerpt=f"unpaired \\uD800-\\uDFFF escape: {line}", source=source)
        return None
    return obj


def quarantine_line_stream_end(quarantine: Quarantine, name: str, stream: Any, n_lines: int,
                               source: str | None) -> None:
    """The entries of a JSON Lines file's end: junk stepped over between gzip members, and
    a broken gzip stream (``after line N``, N the last line read)."""
    quarantine_skipped(quarantine, name, stream, source=source)
    damage = stream_damage(stream)
    if damage is not None:
        _quarantine_damage(quarantine, name, f"after line {n_lines}", damage, source)


def _iter_lines(path: Path, name: str, quarantine: Quarantine, source: str | None
                ) -> Iterator[tuple[str, dict]]:
    n = 0
    with open_binary(path, expected=_EXPECTED, whole_lines=True) as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            obj = decode_line(raw, n, name, quarantine, source)
            if obj is not None:
                yield f"line {n}", obj
        quarantine_line_stream_end(quarantine, name, f, n, source)


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


#: OpenAlex's four topic domains by id (``https://openalex.org/domains/3``), for a
#: ``primary_topic.domain`` given by id only. Humanities are a field (12, Arts and
#: Humanities) of Social Sciences. Source: OpenAlex API reference, domains and fields.
DOMAIN_NAMES: dict[int, str] = {1: "Life Sciences", 2: "Social Sciences",
                                3: "Physical Sciences", 4: "Health Sciences"}


def _domain(work: dict) -> Any:
    """Domain of the work's primary topic (``primary_topic.domain.display_name``, else the
    name of its id); None without a primary topic (the 2022 shape) or a domain.

    The name is returned as found: one that is not a string is refused with the row."""
    topic = work.get("primary_topic")
    domain = topic.get("domain") if isinstance(topic, dict) else None
    if not isinstance(domain, dict):
        return None
    if domain.get("display_name") is not None:
        return domain["display_name"]
    did = domain.get("id")
    if isinstance(did, str):
        did = did.rstrip("/").rsplit("/", 1)[-1]
        did = int(did) if did.isdigit() else None
    return DOMAIN_NAMES.get(did) if isinstance(did, int) and not isinstance(did, bool) else None


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
    "domain": "primary_topic.domain.display_name",
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
                    domain=_domain(work), n_contributors=len(authorships),
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
        map_work(work, builder, quarantine, name, position)
        yield


def map_work(work: dict, builder: BatchBuilder, quarantine: Quarantine, name: str,
             position: str) -> None:
    """One work into ``builder`` (its document and contributions) or into the quarantine
    (without an id, a field the schema cannot take, an unexpected structure). Shared with
    the SQL fast path, which hands it the works it does not map itself."""
    if not short_id(work.get("id")):
        quarantine.add(name, position, "work without id", field="id",
                       excerpt=_work_excerpt(work), source=SOURCE)
        return
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


# ----------------------------------------------------------------------------- snapshot

#: The input kind of each entity's parts (the other entities are not read).
SNAPSHOT_KINDS: dict[str, str] = {"institutions": "openalex-institutions", "works": "openalex"}

_SNAPSHOT = "an OpenAlex snapshot (data/works, data/institutions)"


def snapshot_parts(path: str | Path) -> list[tuple[Path, str]]:
    """Every part file of an OpenAlex snapshot to read, with its input kind.

    Parameters
    ----------
    path : str or Path
        A snapshot root (``…/openalex-snapshot/`` holding ``data/works/``,
        ``data/institutions/`` or the 2026 ``data/jsonl/<entity>/``), or one entity folder
        (``data/works/``; a folder named ``institutions`` holds institutions, any other
        works).

    Returns
    -------
    list of (Path, str)
        ``(part, kind)`` with kind ``"openalex"`` (works) or ``"openalex-institutions"``,
        every ``*.gz`` below the entity folders (all three part-name styles), in path order.
        Other entities (authors, concepts, merged_ids …) and the parquet copy of the 2026
        layout are left out. Read on its own, a part keeps its partition's date and is
        named ``updated_date=…/<part>`` (:func:`file_name`).

    Raises
    ------
    InputFormatError
        ``path`` is no folder, or holds no part of works or institutions.
    """
    p = Path(path)
    if not p.is_dir():
        raise InputFormatError(p, _SNAPSHOT, "not a folder")
    found = {entity: d for entity in SNAPSHOT_KINDS if (d := entity_dir(p, entity)) is not None}
    if found:
        parts = [(f, SNAPSHOT_KINDS[entity]) for entity, d in found.items() for f in _gz_parts(d)]
    else:  # the entity folder itself
        kind = SNAPSHOT_KINDS["institutions" if p.name == "institutions" else "works"]
        parts = [(f, kind) for f in _gz_parts(p)]
    if not parts:
        raise InputFormatError(p, _SNAPSHOT, "no *.gz part files of works or institutions")
    return sorted(parts, key=lambda fk: fk[0].as_posix())


#: The manifest file names: ``manifest`` (Redshift manifest, ``"entries"``; formats.md §2.2)
#: and the 2026 exporter's ``manifest.json`` (``"files"``), looked for in this order.
MANIFEST_NAMES = ("manifest", "manifest.json")

#: A manifest larger than this is not read (a works manifest lists a few thousand parts).
_MANIFEST_MAX_BYTES = 64 << 20


def _finding(part: str, problem: str, expected: Any = None, found: Any = None
             ) -> dict[str, Any]:
    return {"part": part, "problem": problem, "expected": expected, "found": found}


def _part_of_url(url: str, entity: str) -> str | None:
    """The path below the entity folder of a manifest ``url``
    (``s3://openalex/data/works/updated_date=2024-01-01/part_000.gz`` →
    ``updated_date=2024-01-01/part_000.gz``); None if it names nothing safe to look up."""
    i = url.find("updated_date=")
    if i >= 0:
        rel = url[i:]
    else:
        marker = f"/{entity}/"
        j = url.rfind(marker)
        rel = url[j + len(marker):] if j >= 0 else url.rsplit("/", 1)[-1]
    parts = rel.split("/")
    if not rel or any(x in ("", ".", "..") for x in parts) or "\\" in rel:
        return None
    return rel


def _count(meta: dict, key: str) -> int | None:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _read_manifest(folder: Path) -> tuple[dict[str, dict[str, int | None]] | None,
                                            list[dict[str, Any]]]:
    """``({part: {"content_length", "record_count"}}, findings)`` of the entity folder's
    manifest; the dict is None when there is no manifest or it cannot be read at all."""
    path = next((folder / n for n in MANIFEST_NAMES if (folder / n).is_file()), None)
    if path is None:
        return None, [_finding("", "no manifest", expected=" or ".join(MANIFEST_NAMES))]
    try:
        if path.stat().st_size > _MANIFEST_MAX_BYTES:
            raise ValueError(f"larger than {_MANIFEST_MAX_BYTES} bytes")
        doc = json.loads(path.read_bytes())
        entries = doc.get("entries", doc.get("files")) if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ValueError('no "entries" (or "files") list')
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8
        return None, [_finding(path.name, "unreadable manifest", found=str(exc)[:200])]
    listed: dict[str, dict[str, int | None]] = {}
    findings = []
    for n, entry in enumerate(entries, start=1):
        url = entry.get("url") if isinstance(entry, dict) else None
        meta = entry.get("meta") if isinstance(entry, dict) else None
        rel = _part_of_url(url, folder.name) if isinstance(url, str) else None
        if rel is None or rel in listed:
            findings.append(_finding(f"{path.name} entry {n}", "unreadable manifest entry",
                                     found=json.dumps(entry)[:200]))
            continue
        meta = meta if isinstance(meta, dict) else {}
        listed[rel] = {"content_length": _count(meta, "content_length"),
                       "record_count": _count(meta, "record_count")}
    return listed, findings


def check_manifest(entity_dir: str | Path) -> list[dict[str, Any]]:
    """Compare an entity folder's manifest with the part files on disk.

    OpenAlex deletes the manifest while it writes a partition, so a manifest means the
    parts it lists were complete in the bucket (formats.md §2.2); a difference here is a
    download that went wrong or a copy that changed since.

    Parameters
    ----------
    entity_dir : str or Path
        ``data/works``, ``data/institutions`` or ``data/jsonl/<entity>``.

    Returns
    -------
    list of dict
        One finding per problem, ``{"part", "problem", "expected", "found"}``, ``part``
        being the path below the entity folder; problems: ``missing part`` (listed, not on
        disk; expected = its bytes), ``incomplete part`` (its size in bytes differs from the
        manifest's ``content_length``), ``unlisted part`` (on disk, not listed; found = its
        bytes), ``no manifest``, ``unreadable manifest`` (found = why),
        ``unreadable manifest entry``. Empty when all agree. Never raises on a damaged
        manifest.
    """
    folder = Path(entity_dir)
    listed, findings = _read_manifest(folder)
    if listed is None:
        return findings
    on_disk = {f.relative_to(folder).as_posix(): f for f in _gz_parts(folder)}
    for rel, meta in sorted(listed.items()):
        f = on_disk.get(rel)
        if f is None:
            findings.append(_finding(rel, "missing part", expected=meta["content_length"]))
        elif meta["content_length"] is not None and f.stat().st_size != meta["content_length"]:
            findings.append(_finding(rel, "incomplete part", expected=meta["content_length"],
                                     found=f.stat().st_size))
    findings += [_finding(rel, "unlisted part", found=f.stat().st_size)
                 for rel, f in sorted(on_disk.items()) if rel not in listed]
    return findings


def manifest_record_counts(entity_dir: str | Path) -> dict[str, int]:
    """``{part below the entity folder: record_count}`` from the entity folder's manifest
    (parts listed without a count left out); empty without a readable manifest. A part read
    on its own reports its records under the same name (:func:`file_name`)."""
    listed, _ = _read_manifest(Path(entity_dir))
    return {rel: m["record_count"] for rel, m in sorted((listed or {}).items())
            if m["record_count"] is not None}


#: Works merged into others (``data/merged_ids/works/*.csv.gz``; formats.md §2.1).
MERGED_IDS = pa.schema([
    pa.field("id", pa.string(), nullable=False),  # short id of the merged-away work, "W…"
    pa.field("merge_into_id", pa.string()),  # the work it now is
    pa.field("merge_date", pa.string()),  # ISO date
])

_MERGED_COLUMNS = ("merge_date", "id", "merge_into_id")


def merged_ids_dir(path: Path, entity: str = "works") -> Path | None:
    """``data/merged_ids/<entity>`` of a snapshot given as its root, its ``data`` folder or
    one of its entity folders; None if there is none."""
    for candidate in (path / "data" / "merged_ids" / entity, path / "merged_ids" / entity,
                      path.parent / "merged_ids" / entity,
                      path.parent.parent / "merged_ids" / entity):
        if candidate.is_dir():
            return candidate
    return None


def _read_merged_file(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv  # noqa: PLC0415 - only for snapshots with merged ids

    expected = "an OpenAlex merged_ids CSV (merge_date,id,merge_into_id)"
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in _MERGED_COLUMNS}))
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise InputFormatError(path, expected, f"unreadable ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in _MERGED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputFormatError(path, expected, f"column {', '.join(missing)} missing")
    return table.select(list(_MERGED_COLUMNS))


def merged_away_ids(root: str | Path, entity: str = "works") -> pa.Table:
    """The ids merged away in a snapshot: their documents must not count.

    Parameters
    ----------
    root : str or Path
        Snapshot root (or its ``data`` folder, or an entity folder of it).
    entity : str
        ``works`` (default) or another entity of ``data/merged_ids/``.

    Returns
    -------
    pa.Table
        :data:`MERGED_IDS`: ``id`` (short form, ``W…``), ``merge_into_id``, ``merge_date``,
        one row per id (its latest merge), sorted by ``id``; empty without merged ids.
        Every ``*.csv.gz`` (and ``*.csv``) of ``data/merged_ids/<entity>/`` is read.

    Raises
    ------
    InputFormatError
        A file that is not a readable CSV with the columns ``merge_date,id,merge_into_id``
        (the message names the file).
    """
    return read_merged_ids(merged_id_files(Path(root), entity))


def merged_id_files(root: Path, entity: str = "works") -> list[Path]:
    """The ``*.csv.gz`` (and ``*.csv``) files of ``data/merged_ids/<entity>/`` of a snapshot
    given as its root, its ``data`` folder or one of its entity folders, in name order."""
    folder = merged_ids_dir(Path(root), entity)
    return sorted(f for f in folder.iterdir() if f.is_file()
                  and f.name.endswith((".csv.gz", ".csv"))) if folder else []


def read_merged_ids(files: Sequence[Path]) -> pa.Table:
    """The merged-away ids of merged-ids CSV files, as :func:`merged_away_ids` describes.

    Raises
    ------
    InputFormatError
        A file that is not a readable CSV with the columns ``merge_date,id,merge_into_id``.
    """
    if not files:
        return MERGED_IDS.empty_table()
    import duckdb  # noqa: PLC0415

    con = duckdb.connect()
    try:
        con.register("_merged", pa.concat_tables([_read_merged_file(f) for f in files]))
        # Ids may be written as URLs; an id merged twice keeps its latest merge.
        short = "nullif(regexp_replace(rtrim({0}, '/'), '^.*/', ''), '')"
        rel = con.sql(f"""
            SELECT id, merge_into_id, merge_date FROM (
                SELECT {short.format('id')} AS id, {short.format('merge_into_id')} AS merge_into_id,
                       merge_date FROM _merged)
            WHERE id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY merge_date DESC NULLS LAST,
                                       merge_into_id NULLS LAST) = 1
            ORDER BY id""")
        table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
        return table.cast(MERGED_IDS)
    finally:
        con.close()
