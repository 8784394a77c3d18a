"""Fuzz targets, one per reader, with a bounded budget (issue 7, readers).

Small valid inputs (from the real samples where there are some) are mutated by hypothesis:
byte flips, insertions and deletions, truncation, junk, gzip damage, JSON values of the
wrong type, odd Unicode, hostile table cells. Properties, for every reader:

* no unhandled exception: only :class:`InputFormatError`, and only for a whole file that
  cannot be read (its header, its magic bytes);
* every batch has the reader's schema; every quarantine row says where and why;
* no record silently dropped: a record the mutation did not touch is used, and the records
  read = used + rejected (one quarantine entry per rejected record, or one for a damaged
  stream's tail).
"""

from __future__ import annotations

import gzip
import io
import json
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stclusters.errors import InputFormatError
from stclusters.schema import DOCUMENT, QUARANTINE, RAW_CONTRIBUTION
from stclusters.sources import Quarantine, read_openalex_institutions, read_source
from stclusters.sources.uspto_xml import normalise_patent_id
from conftest import SHARED_DATA

BUDGET = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])

_WORKS = json.load(gzip.open(SHARED_DATA / "samples" / "openalex"
                             / "openalex_works_tu9_sample_410.json.gz"))[:6]
_XML = zlib.decompress((SHARED_DATA / "samples" / "uspto" / "uspto_ipg120327.196.xml.gz")
                       .read_bytes(), wbits=31)
_XML_DOCS = [b"<?xml" + d for d in _XML.split(b"<?xml")[1:5]]  # four whole documents
_CSV_HEADER = "doc_id,source,year,contributor_seq,lat,lon,country,city,org\n"
_CSV_ROWS = [f"D{i},patent,20{10 + i},0,{40 + i}.5,{-3 - i}.25,ES,Madrid,Org {i}\n"
             for i in range(8)]

#: Odd text: control characters, surrogates (as JSON escapes), RTL marks, huge code points.
odd_text = st.text(st.characters(codec=None, categories=None, exclude_characters=""),
                   max_size=30) | st.sampled_from(
    ["\x00", "\u202e", "\ufeff", "\udc80", "\ud83d", "𝔘𝔫𝔦", "=cmd|' /C calc'!A0", "", " ",
     "\n", "\r", '"', "'", "\\", ",", ";", "\t", "9" * 40])
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
    | odd_text,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(odd_text, kids, max_size=3),
    max_leaves=8) | st.just("[" * 1200 + "]" * 1200)  # the last one: nesting, as raw text


def _deep(value) -> bool:
    """The raw-text nesting value of :data:`json_value` (spliced into a record as JSON)."""
    return isinstance(value, str) and value.startswith("[[[[")


def _docs(path, kind):
    """Read ``path``: (documents, contributions, quarantine rows); checks the schemas."""
    q = Quarantine()
    batches = list(read_source(path, kind=kind, quarantine=q))
    for b in batches:
        assert b.documents.schema == DOCUMENT and b.contributions.schema == RAW_CONTRIBUTION
    rows = q.to_table()
    assert rows.schema == QUARANTINE
    for r in rows.to_pylist():
        assert r["file"] and r["position"] and r["reason"], r
    docs = pa.concat_tables([DOCUMENT.empty_table(), *(b.documents for b in batches)])
    cons = pa.concat_tables([RAW_CONTRIBUTION.empty_table(), *(b.contributions for b in batches)])
    return docs, cons, rows.to_pylist()


@st.composite
def byte_edit(draw, data: bytes, *, lo: int = 0, hi: int | None = None):
    """One byte-level edit of ``data`` in ``[lo, hi)``: (new bytes, position)."""
    hi = len(data) if hi is None else hi
    at = draw(st.integers(lo, hi - 1))
    how = draw(st.sampled_from(["flip", "insert", "delete"]))
    if how == "flip":
        new = bytes([data[at] ^ draw(st.integers(1, 255))])
        return data[:at] + new + data[at + 1:], at
    if how == "insert":
        junk = draw(st.binary(min_size=1, max_size=8) | odd_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
        return data[:at] + junk + data[at:], at
    return data[:at] + data[at + 1:], at


def _line_of(data: bytes, at: int) -> int:
    return data.count(b"\n", 0, at)


# ----------------------------------------------------------------------------- OpenAlex works

def _mutate_work(work: dict, path: list[str | int], value) -> dict:
    w = json.loads(json.dumps(work))
    target = w
    for key in path[:-1]:
        target = target[key] if isinstance(target, dict) and key in target or isinstance(key, int) and isinstance(target, list) and len(target) > key else None
        if target is None:
            return w
    if isinstance(target, dict) or isinstance(target, list) and isinstance(path[-1], int) and len(target) > path[-1]:
        target[path[-1]] = value
    return w


_WORK_PATHS = [["id"], ["type"], ["publication_year"], ["updated_date"], ["authorships"],
               ["authorships", 0], ["authorships", 0, "institutions"],
               ["authorships", 0, "institutions", 0], ["authorships", 0, "institutions", 0, "display_name"],
               ["authorships", 0, "institutions", 0, "country_code"],
               ["authorships", 0, "institutions", 0, "id"], ["authorships", 0, "raw_affiliation_string"],
               ["authorships", 0, "countries"], ["primary_topic"], ["concepts"]]


@BUDGET
@given(layout=st.sampled_from(["lines", "list"]), k=st.integers(0, len(_WORKS) - 1),
       path=st.sampled_from(_WORK_PATHS), value=json_value)
def test_fuzz_openalex_wrong_values(tmp_path, layout, k, path, value):
    works = [json.dumps(w) for w in _WORKS]
    works[k] = (f'{{"id": "{_WORKS[k]["id"]}", "x": {value}}}' if _deep(value)
                else json.dumps(_mutate_work(_WORKS[k], path, value)))
    f = tmp_path / ("w.jsonl" if layout == "lines" else "w.json")
    f.write_text("\n".join(works) if layout == "lines" else "[" + ",\n".join(works) + "]")
    docs, _, q = _docs(f, "openalex")
    assert docs.num_rows + len(q) == len(works)  # read = used + rejected, one entry each
    others = {w["id"].rsplit("/", 1)[1] for i, w in enumerate(_WORKS) if i != k}
    assert others <= set(docs["doc_id"].to_pylist())


@BUDGET
@given(data=st.data(), gz=st.booleans())
def test_fuzz_openalex_bytes(tmp_path, data, gz):
    text = "".join(json.dumps(w) + "\n" for w in _WORKS).encode()
    mutated, at = data.draw(byte_edit(text))
    f = tmp_path / "w.jsonl"
    f.write_bytes(gzip.compress(mutated) if gz else mutated)
    try:
        docs, _, q = _docs(f, "openalex")
    except InputFormatError:
        assert at < 64 or gz  # only a broken start makes the file unreadable
        return
    # Lines the edit left as they were are records of their own: each must be used.
    originals = {json.dumps(w).encode(): w["id"].rsplit("/", 1)[1] for w in _WORKS}
    untouched = {originals[line] for line in mutated.split(b"\n") if line in originals}
    assert len(untouched) >= len(_WORKS) - 2  # an edit touches one line, or joins two
    assert untouched <= set(docs["doc_id"].to_pylist())


@BUDGET
@given(data=st.data())
def test_fuzz_openalex_damaged_gzip(tmp_path, data):
    text = ("[" + ",\n".join(json.dumps(w) for w in _WORKS) + "]").encode()
    packed = gzip.compress(text[:len(text) // 2]) + gzip.compress(text[len(text) // 2:])
    how = data.draw(st.sampled_from(["cut", "junk", "flip"]))
    at = data.draw(st.integers(10, len(packed) - 1))
    if how == "cut":
        packed = packed[:at]
    elif how == "junk":
        packed += data.draw(st.binary(min_size=1, max_size=64))
    else:
        packed = packed[:at] + bytes([packed[at] ^ 0xA5]) + packed[at + 1:]
    f = tmp_path / "w.json.gz"
    f.write_bytes(packed)
    try:
        docs, _, q = _docs(f, "openalex")
    except InputFormatError:
        return  # not one decodable byte (a broken header)
    assert len([r for r in q if r["field"] == "gzip"]) <= 1
    if how == "junk":  # junk after intact members: every work read, the junk one entry
        assert docs.num_rows == len(_WORKS) and len(q) <= 1


# ----------------------------------------------------------------------------- institutions

@BUDGET
@given(k=st.integers(0, 3), key=st.sampled_from(["id", "geo", "country_code", "updated_date",
                                                  "latitude", "longitude", "city"]),
       value=json_value)
def test_fuzz_openalex_institutions(tmp_path, k, key, value):
    recs = [{"id": f"https://openalex.org/I{i}", "country_code": "FR",
             "geo": {"latitude": 45.0 + i, "longitude": 2.0, "city": "Lyon"}} for i in range(4)]
    if key in ("latitude", "longitude", "city"):
        recs[k]["geo"][key] = value
    else:
        recs[k][key] = value
    lines = [json.dumps(r) for r in recs]
    if _deep(value):
        lines[k] = f'{{"id": "https://openalex.org/I{k}", "geo": {value}}}'
    f = tmp_path / "i.jsonl"
    f.write_text("\n".join(lines))
    q = Quarantine()
    t = read_openalex_institutions(f, quarantine=q)
    assert t.num_rows + q.count == 4
    assert {f"I{i}" for i in range(4) if i != k} <= set(t["id"].to_pylist())
    assert all(c is None or len(c) == 2 and c.isupper() for c in t["country_code"].to_pylist())


# ----------------------------------------------------------------------------- USPTO XML

@BUDGET
@given(data=st.data(), gz=st.booleans())
def test_fuzz_uspto_bytes(tmp_path, data, gz):
    text = b"".join(_XML_DOCS)
    starts = [text.index(d) for d in _XML_DOCS]
    k = data.draw(st.integers(0, len(_XML_DOCS) - 1))
    # Inside document k, after its declaration line (an edit there may merge two documents).
    lo = starts[k] + _XML_DOCS[k].index(b"\n") + 1
    mutated, at = data.draw(byte_edit(text, lo=lo, hi=starts[k] + len(_XML_DOCS[k]) - 1))
    f = tmp_path / "u.xml"
    f.write_bytes(gzip.compress(mutated) if gz else mutated)
    docs, _, q = _docs(f, "uspto-xml")
    assert docs.num_rows + len(q) >= len(_XML_DOCS)  # the edited one: used, or rejected
    ids = [normalise_patent_id(d.split(b"<doc-number>")[1].split(b"</doc-number>")[0].decode())
           for d in _XML_DOCS]
    others = {i for j, i in enumerate(ids) if j != k}
    assert others <= set(docs["doc_id"].to_pylist())


@BUDGET
@given(city=odd_text, country=odd_text, number=odd_text)
def test_fuzz_uspto_hostile_fields(tmp_path, city, country, number):
    def esc(s: str) -> str:
        return (s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                .replace("&", "&amp;").replace("<", "&lt;"))
    doc = _XML_DOCS[0].decode()
    doc = doc.replace("<city>", f"<city>{esc(city)}", 1).replace(
        "<country>", f"<country>{esc(country)}", 1).replace("<doc-number>", f"<doc-number>{esc(number)}", 1)
    f = tmp_path / "u.xml"
    f.write_bytes(doc.encode("utf-8", "surrogatepass") + b"".join(_XML_DOCS[1:]))
    docs, _, q = _docs(f, "uspto-xml")
    assert docs.num_rows + len(q) == len(_XML_DOCS)


# ----------------------------------------------------------------------------- tables

@BUDGET
@given(k=st.integers(0, len(_CSV_ROWS) - 1), col=st.integers(0, 8), cell=odd_text)
def test_fuzz_csv_cells(tmp_path, k, col, cell):
    rows = list(_CSV_ROWS)
    cells = rows[k].rstrip("\n").split(",")
    cells[col] = cell
    rows[k] = ",".join(cells) + "\n"
    f = tmp_path / "t.csv"
    f.write_bytes((_CSV_HEADER + "".join(rows)).encode("utf-8", "surrogatepass"))
    docs, cons, q = _docs(f, "table")
    assert cons.num_rows + len(q) >= len(_CSV_ROWS)
    others = {f"D{i}" for i in range(len(_CSV_ROWS)) if i != k}
    assert others <= set(docs["doc_id"].to_pylist())


@BUDGET
@given(data=st.data(), gz=st.booleans())
def test_fuzz_csv_bytes(tmp_path, data, gz):
    text = (_CSV_HEADER + "".join(_CSV_ROWS)).encode()
    mutated, at = data.draw(byte_edit(text, lo=len(_CSV_HEADER)))
    f = tmp_path / "t.csv"
    f.write_bytes(gzip.compress(mutated) if gz else mutated)
    docs, cons, q = _docs(f, "table")
    hit = _line_of(mutated, at)
    kept = {line.split(b",")[0].decode() for line in mutated.split(b"\n")[1:]
            if line + b"\n" in {r.encode() for r in _CSV_ROWS}}
    assert kept <= set(docs["doc_id"].to_pylist()), hit


_CELLS = st.one_of(st.none(), odd_text.filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t)),
                   st.integers(-(2**62), 2**62).map(str),
                   st.floats().map(str))


@BUDGET
@given(cols=st.fixed_dictionaries({
    "doc_id": st.lists(_CELLS, min_size=3, max_size=3),
    "year": st.lists(st.one_of(_CELLS, st.sampled_from(["2020", "1499", "2101", "-5"])),
                     min_size=3, max_size=3),
    "lat": st.lists(_CELLS, min_size=3, max_size=3),
    "lon": st.lists(_CELLS, min_size=3, max_size=3),
    "country": st.lists(_CELLS, min_size=3, max_size=3),
    "city": st.lists(_CELLS, min_size=3, max_size=3),
}), flip=st.integers(0, 10_000))
def test_fuzz_parquet(tmp_path, cols, flip):
    t = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()}
                 | {"source": pa.array(["patent"] * 3)})
    buf = io.BytesIO()
    pq.write_table(t, buf)
    f = tmp_path / "t.parquet"
    f.write_bytes(buf.getvalue())
    try:
        _, cons, q = _docs(f, "table")
    except InputFormatError:
        pytest.fail("a well-formed Parquet file is readable")
    assert cons.num_rows + len([r for r in q if r["reason"] != "duplicate document"]) == 3
    # The same file with one byte flipped: unreadable (one clear error) or read and checked.
    raw = bytearray(buf.getvalue())
    raw[flip % len(raw)] ^= 0x5A
    f.write_bytes(bytes(raw))
    try:
        _docs(f, "table")
    except InputFormatError:
        pass
