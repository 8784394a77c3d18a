"""Hostile and damaged inputs (issue 7, readers): no record lost without a word, no run
broken by one bad record.

Each test names the case it guards. Damaged gzip streams are built from the real samples;
the "decodable" oracle is zlib itself (a decoder with no exceptions on a cut stream), so
the tests do not trust the reader they check.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stclusters
from stclusters import demo, store
from stclusters.schema import DOCUMENT, MAX_TEXT_CHARS, YEAR_RANGE
from stclusters.sources import Quarantine, read_source
from stclusters.sources._batch import GzipStream
from conftest import SHARED_DATA

OPENALEX = SHARED_DATA / "samples" / "openalex" / "openalex_works_tu9_sample_410.json.gz"
USPTO = SHARED_DATA / "samples" / "uspto" / "uspto_ipg120327.196.xml.gz"
_XML_END = re.compile(rb"</(us-patent-grant|sequence-cwu)>")
JUNK = bytes((i * 97 + 13) % 256 for i in range(7000))  # no gzip magic at its start


def _read(path: Path, kind: str) -> tuple[pa.Table, Quarantine]:
    q = Quarantine()
    batches = list(read_source(path, kind=kind, quarantine=q))
    return pa.concat_tables([DOCUMENT.empty_table(), *(b.documents for b in batches)]), q


def _decodable_prefix(data: bytes) -> bytes:
    """What zlib decodes of a damaged gzip stream before the damage (the oracle)."""
    d, out = zlib.decompressobj(wbits=31), b""
    for i in range(0, len(data), 4096):
        try:
            out += d.decompress(data[i:i + 4096])
        except zlib.error:
            break
        if d.eof:
            break
    return out


def _complete_xml_documents(text: bytes) -> int:
    return len(_XML_END.findall(text))


def _complete_list_elements(text: bytes) -> int:
    s, dec, n = text.decode("utf-8", "ignore"), json.JSONDecoder(), 0
    pos = s.index("[") + 1
    while True:
        while pos < len(s) and s[pos] in " ,\n\r\t":
            pos += 1
        try:
            _, pos = dec.raw_decode(s, pos)
        except json.JSONDecodeError:
            return n
        n += 1


def _one_damage_entry(q: Quarantine, reason: str) -> dict:
    rows = q.to_table().to_pylist()
    assert len(rows) == 1, rows
    assert rows[0]["reason"] == reason and rows[0]["field"] == "gzip"
    return rows[0]


# ----------------------------------------------------------------------------- item 1

@pytest.mark.parametrize("sample, kind, n_records", [(OPENALEX, "openalex", 410),
                                                     (USPTO, "uspto-xml", 196)])
def test_junk_after_gzip_stream_loses_no_record(tmp_path, sample, kind, n_records):
    # Before: 230 of 410 works and 131 of 196 grants, and one vague entry.
    data = sample.read_bytes()
    path = tmp_path / f"junk{sample.suffixes[-2]}.gz"
    path.write_bytes(data + JUNK)
    docs, q = _read(path, kind)
    assert docs.num_rows == n_records
    row = _one_damage_entry(q, "junk after the gzip stream")
    assert f"stream breaks at byte {len(data)} of {len(data) + len(JUNK)}" in row["excerpt"]


@pytest.mark.parametrize("sample, kind, complete", [
    (OPENALEX, "openalex", _complete_list_elements), (USPTO, "uspto-xml", _complete_xml_documents)])
def test_cut_gzip_stream_keeps_every_decodable_record(tmp_path, sample, kind, complete):
    # Before: 219 of 227 works and 64 of 90 grants that zlib decodes.
    data = sample.read_bytes()[: len(sample.read_bytes()) // 2]
    path = tmp_path / f"half{sample.suffixes[-2]}.gz"
    path.write_bytes(data)
    docs, q = _read(path, kind)
    expected = complete(_decodable_prefix(data))
    assert docs.num_rows == expected
    row = _one_damage_entry(q, "corrupt or truncated gzip stream")
    assert row["position"].endswith("to end of file")
    assert str(expected + 1) in row["position"]  # the record the cut fell in
    assert f"of {len(data)}" in row["excerpt"]


@settings(max_examples=12)
@given(cut=st.integers(200, 188_000), flip=st.booleans())
def test_any_cut_or_corruption_of_uspto_gzip_keeps_decodable_documents(tmp_path_factory, cut, flip):
    data = bytearray(USPTO.read_bytes())
    if flip:  # a corrupt byte mid-stream instead of a cut
        data[cut] ^= 0x55
    else:
        del data[cut:]
    path = tmp_path_factory.mktemp("cut") / "u.xml.gz"
    path.write_bytes(bytes(data))
    try:
        docs, q = _read(path, "uspto-xml")
    except stclusters.InputFormatError:
        assert _complete_xml_documents(_decodable_prefix(bytes(data))) == 0
        return
    prefix = _decodable_prefix(bytes(data))
    # A flipped byte can garble text before zlib notices (CRC): such documents are
    # quarantined as XML, never lost; the count of documents read + rejected covers them.
    assert docs.num_rows + q.count >= _complete_xml_documents(prefix)
    damage = [r for r in q.to_table().to_pylist() if r["field"] == "gzip"]
    assert len(damage) <= 1
    if not flip:
        assert docs.num_rows == _complete_xml_documents(prefix) and len(damage) == 1


def test_multi_member_gzip_reads_every_member(tmp_path):
    text = zlib.decompress(OPENALEX.read_bytes(), wbits=31)
    cuts = [0, 1000, len(text) // 3, len(text) - 5, len(text)]  # members end mid-element
    path = tmp_path / "multi.json.gz"
    path.write_bytes(b"".join(gzip.compress(text[a:b]) for a, b in zip(cuts, cuts[1:])) + b"\0" * 512)
    docs, q = _read(path, "openalex")
    assert docs.num_rows == 410 and q.count == 0  # NUL padding after the last member is fine


def test_cut_gzip_csv_reads_every_whole_row(tmp_path):
    rows = "".join(f"D{i},patent,2020,Paris,FR\n" for i in range(20000))
    data = gzip.compress(("doc_id,source,year,city,country\n" + rows).encode())
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    prefix = _decodable_prefix(data[: len(data) * 2 // 3])
    q = Quarantine()
    n = sum(b.documents.num_rows for b in read_source(path, kind="table", quarantine=q))
    whole = prefix.count(b"\n") - 1  # header excluded; the cut line is no row
    assert n == whole
    row = _one_damage_entry(q, "corrupt or truncated gzip stream")
    assert row["position"] == f"after row {whole}"
    assert "of a line cut short dropped" in row["excerpt"]


def test_damaged_gzip_manifest_is_balanced_and_says_so(tmp_path):
    path = tmp_path / "junk.xml.gz"
    path.write_bytes(USPTO.read_bytes() + JUNK)
    res = stclusters.rank([str(path)], params=demo.sample_params())
    (item,) = res.manifest["inputs"]
    r = item["records"]
    assert r["read"] == 197 and r["rejected"] == {"junk after the gzip stream": 1}
    assert r["balanced"] and r["read"] == r["used"] + sum(r["filtered"].values()) + 1


def test_gzip_stream_without_a_decodable_byte_is_an_input_error(tmp_path):
    path = tmp_path / "bad.xml.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 100)
    with pytest.raises(stclusters.InputFormatError, match="not a readable gzip file"):
        _read(path, "uspto-xml")


def test_gzip_stream_reads_like_zlib_on_intact_input():
    data = USPTO.read_bytes()
    with open(USPTO, "rb") as raw:
        gz = GzipStream(raw, size_bytes=len(data))
        assert gz.read() == zlib.decompress(data, wbits=31) and gz.damage is None


# ----------------------------------------------------------------------------- item 2

def test_nul_in_doc_id_beyond_the_sniffed_head_is_quarantined(tmp_path):
    lines = ["doc_id,source,year,city"] + [f"D{i},patent,2020,Paris" for i in range(5000)]
    lines[4000] = "D\x00X,patent,2020,Paris"  # ~80 KB in: after the 64 KB header sniff
    lines[4500] = "D\x07Y,patent,2020,Paris"
    lines[4600] = "D4599,patent,2020,Pa\x00ris"
    path = tmp_path / "nul.csv"
    path.write_text("\n".join(lines) + "\n")
    assert len("\n".join(lines[:4000]).encode()) > 65536
    docs, q = _read(path, "table")
    assert docs.num_rows == 4997
    assert [(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("row 4000", "doc_id", "control character in an identifier"),
        ("row 4500", "doc_id", "control character in an identifier"),
        ("row 4600", "city", "NUL character in text")]
    assert "\x00" not in q.to_table().to_pylist()[0]["excerpt"]  # shown as \x00


def test_control_character_in_openalex_id_is_quarantined(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"id": "https://openalex.org/W1\u0000"}) + "\n"
                    + json.dumps({"id": "https://openalex.org/W2"}) + "\n")
    docs, q = _read(path, "openalex")
    assert docs["doc_id"].to_pylist() == ["W2"]
    assert [(r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("id", "id: control character in an identifier")]


# ----------------------------------------------------------------------------- items 3, 4

_OK = {"id": "https://openalex.org/W1", "publication_year": 2020, "type": "article",
       "authorships": [{"institutions": [{"id": "https://openalex.org/I1",
                                          "display_name": "Uni", "country_code": "FR"}]}]}
_DEEP = '{"id": "https://openalex.org/W9", "x": ' + "[" * 1000 + "]" * 1000 + "}"


def _work(**fields) -> dict:
    w = json.loads(json.dumps(_OK)) | {"id": "https://openalex.org/W2"}
    return w | fields


def _inst(**fields) -> dict:
    return {"authorships": [{"institutions": [{"display_name": "Uni", "country_code": "FR"}
                                              | fields]}]}


@pytest.mark.parametrize("layout", ["lines", "list"])
@pytest.mark.parametrize("bad, field, reason", [
    (_DEEP, None, "JSON nested too deep"),
    (_work(type=5), "type", "type: not a string (number)"),
    (_work(type=["article"]), "type", "type: not a string (list)"),
    (_work(**_inst(display_name=7)), "authorships[].institutions[].display_name",
     "authorships[].institutions[].display_name: not a string (number)"),
    (_work(**_inst(country_code={"a": 1})), "authorships[].institutions[].country_code",
     "authorships[].institutions[].country_code: not a string (object)"),
    (_work(**_inst(country_code="=cmd|' /C calc'!A0")), "authorships[].institutions[].country_code",
     "authorships[].institutions[].country_code: not an ISO 3166-1 alpha-2 code"),
    (_work(primary_topic={"field": {"display_name": 7}}), "primary_topic.field.display_name",
     "primary_topic.field.display_name: not a string (number)"),
    (_work(publication_year=2**40), "publication_year", "publication_year: outside [1500, 2100]"),
    (_work(publication_year=-5), "publication_year", "publication_year: outside [1500, 2100]"),
    (_work(publication_year=[2020]), "publication_year", "publication_year: not an integer (list)"),
    (_work(updated_date=5), "updated_date", "updated_date: not an ISO 8601 date"),
])
def test_one_bad_work_is_quarantined_and_the_run_goes_on(tmp_path, layout, bad, field, reason):
    texts = [json.dumps(_OK), bad if isinstance(bad, str) else json.dumps(bad),
             json.dumps(_OK | {"id": "https://openalex.org/W3"})]
    path = tmp_path / ("w.jsonl" if layout == "lines" else "w.json")
    path.write_text("\n".join(texts) + "\n" if layout == "lines" else "[" + ",\n".join(texts) + "]")
    docs, q = _read(path, "openalex")
    assert docs["doc_id"].to_pylist() == ["W1", "W3"]
    unit = "line" if layout == "lines" else "element"
    assert [(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        (f"{unit} 2", field, reason)]


@pytest.mark.parametrize("year, ok", [(YEAR_RANGE[0], True), (YEAR_RANGE[1], True),
                                      (YEAR_RANGE[0] - 1, False), (YEAR_RANGE[1] + 1, False),
                                      ("2020", True)])
def test_plausible_year_range_is_one_rule_for_works_and_tables(tmp_path, year, ok):
    works = tmp_path / "w.jsonl"
    works.write_text(json.dumps(_work(publication_year=year)) + "\n")
    table = tmp_path / "t.csv"
    table.write_text(f"doc_id,source,year\nD1,patent,{year}\n")
    for path, kind in ((works, "openalex"), (table, "table")):
        docs, q = _read(path, kind)
        assert (docs.num_rows, q.count) == ((1, 0) if ok else (0, 1)), kind
        if not ok:
            assert f"outside [{YEAR_RANGE[0]}, {YEAR_RANGE[1]}]" in q.to_table()["reason"][0].as_py()


# ----------------------------------------------------------------------------- items 5, 6

def test_huge_csv_field_quarantines_its_row_and_reads_the_rest(tmp_path):
    # Before: the whole file refused ("straddling object straddles two block boundaries").
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("doc_id,source,year,city\nA,patent,2020,Paris\r\n")
        f.write("B,patent,2020," + "x" * (17 << 20) + "\r\nC,patent,2020,Lyon\r\n")
    docs, q = _read(path, "table")
    assert docs["doc_id"].to_pylist() == ["A", "C"]
    assert [(r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("line 3", "line longer than 1048576 bytes")]


def test_long_csv_field_under_the_line_limit_is_quarantined_by_field(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("doc_id,source,year,city\nA,patent,2020," + "y" * (MAX_TEXT_CHARS + 1) + "\n")
    docs, q = _read(path, "table")
    assert docs.num_rows == 0
    assert [(r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("city", f"longer than {MAX_TEXT_CHARS} characters")]


def _grant(number: str, city: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<us-patent-grant><us-bibliographic-data-grant>'
            f"<publication-reference><document-id><doc-number>{number}</doc-number>"
            "<date>20200101</date></document-id></publication-reference>"
            "<us-parties><inventors><inventor><addressbook><address>"
            f"<city>{city}</city><country>US</country></address></addressbook></inventor>"
            "</inventors></us-parties></us-bibliographic-data-grant></us-patent-grant>\n")


def test_huge_xml_city_is_quarantined_before_the_geocoder(tmp_path):
    # Before: a 50 MB city cost the geocoder 67 s. Now the record stops at the reader.
    path = tmp_path / "big.xml"
    path.write_text(_grant("1", "Boston") + _grant("2", "x" * (5 << 20)) + _grant("3", "Denver"))
    docs, q = _read(path, "uspto-xml")
    assert docs["doc_id"].to_pylist() == ["1", "3"]
    assert [(r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("inventor address/city", f"inventor address/city: longer than {MAX_TEXT_CHARS} characters")]


def test_geocoder_bounds_the_work_per_field(monkeypatch):
    from stclusters.geocode import Geocoder

    seen: list[int] = []
    geocoder = Geocoder.__new__(Geocoder)  # no gazetteer needed: nothing may reach it
    monkeypatch.setattr(Geocoder, "geocode", lambda self, city, *a, **k: seen.append(len(city)))
    monkeypatch.setattr(Geocoder, "geocode_affiliation", lambda self, raw, *a: seen.append(len(raw)))
    r = geocoder._geocode_fields("x" * (50 << 20), None, "US", None, None)
    r2 = geocoder._geocode_fields(None, None, None, None, "y" * 20_000)
    assert seen == [] and r.status == r2.status == "unmatched:field-too-long"


# ----------------------------------------------------------------------------- item 7

def _snapshot(root: Path, versions: list[tuple[str, list[dict]]]) -> Path:
    for day, works in versions:
        d = root / "data" / "works" / f"updated_date={day}"
        d.mkdir(parents=True)
        (d / "part_000.gz").write_bytes(gzip.compress(
            "".join(json.dumps(w) + "\n" for w in works).encode()))
    return root


def _dedup(inputs: list[tuple[Path, str]]):
    con = store.connect(None)
    for input_id, (path, kind) in enumerate(inputs):
        q = Quarantine()
        n = 0
        for b in read_source(path, kind=kind, quarantine=q):
            store.append(con, "documents", b.documents, input_id=input_id)
            store.append(con, "raw_contributions", store.with_doc_type(b.contributions, b.documents),
                         input_id=input_id)
            n += b.documents.num_rows
        store.add_input(con, store.InputFile(input_id, str(path), kind, 0, ""), records_read=n)
    store.quarantine_duplicate_documents(con)
    docs = store.fetch_arrow(con, "SELECT doc_id, record_ref FROM documents ORDER BY doc_id")
    quar = store.fetch_arrow(con, "SELECT file, position, reason, excerpt FROM quarantine "
                                  "ORDER BY file, position")
    return docs.to_pylist(), quar.to_pylist()


def test_newest_version_of_a_work_wins_across_snapshot_partitions(tmp_path):
    w = {"id": "https://openalex.org/W1", "publication_year": 2020, "type": "article"}
    snap = _snapshot(tmp_path / "snap", [
        ("2024-01-01", [w | {"updated_date": "2024-01-01T00:00:00"}, w | {"id": "https://openalex.org/W2"}]),
        ("2024-03-01", [w | {"updated_date": "2024-03-01T00:00:00"}]),
        ("2024-05-01", [w | {"updated_date": "2024-02-01T00:00:00"}])])  # an older version re-sent
    docs, quar = _dedup([(snap, "openalex")])
    newest = "data/works/updated_date=2024-03-01/part_000.gz:line 1"
    assert docs == [{"doc_id": "W1", "record_ref": newest},
                    {"doc_id": "W2", "record_ref": "data/works/updated_date=2024-01-01/part_000.gz:line 2"}]
    assert [(r["file"].split("=")[1][:10], r["reason"]) for r in quar] == [
        ("2024-01-01", "superseded by a newer version"), ("2024-05-01", "superseded by a newer version")]
    assert all(r["excerpt"].endswith(newest) for r in quar)


def test_same_date_or_no_date_keeps_the_first_read(tmp_path):
    w = {"id": "https://openalex.org/W1", "updated_date": "2024-01-01"}
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(w) + "\n" + json.dumps({"id": "https://openalex.org/W5"}) + "\n")
    b.write_text(json.dumps(w) + "\n" + json.dumps({"id": "https://openalex.org/W5"}) + "\n")
    docs, quar = _dedup([(a, "openalex"), (b, "openalex")])
    assert [d["record_ref"] for d in docs] == ["a.jsonl:line 1", "a.jsonl:line 2"]
    assert [(r["file"], r["reason"]) for r in quar] == [("b.jsonl", "duplicate document")] * 2


def test_newest_institution_wins_by_updated_date(tmp_path):
    from stclusters.sources import read_openalex_institutions

    def inst(lat: float, day: str | None) -> dict:
        rec = {"id": "https://openalex.org/I1", "geo": {"latitude": lat, "longitude": 1.0}}
        return rec | ({"updated_date": day} if day else {})

    path = tmp_path / "i.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        inst(1.0, "2024-01-01"), inst(2.0, "2024-06-01"), inst(3.0, "2024-03-01"), inst(4.0, None)]))
    q = Quarantine()
    t = read_openalex_institutions(path, quarantine=q)
    assert t["lat"].to_pylist() == [2.0]
    assert [(r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("line 1", "superseded by a newer version"), ("line 3", "superseded by a newer version"),
        ("line 4", "superseded by a newer version")]


# ----------------------------------------------------------------------------- item 9: found by attacking

def test_nul_in_a_row_within_the_sniffed_head_is_one_row_not_a_binary_file(tmp_path):
    # Before: "binary content that is not Parquet" for the whole file (a NUL in the first
    # 64 KB), while the same NUL later in the file was accepted: one rule now, by row.
    path = tmp_path / "nul.csv"
    path.write_bytes(b"doc_id,source,year\nA,patent,2020\nB\x00,patent,2020\nC,patent,2020\n")
    for kind in ("table", "auto"):
        docs, q = _read(path, kind)
        assert docs["doc_id"].to_pylist() == ["A", "C"]
        assert [(r["position"], r["field"]) for r in q.to_table().to_pylist()] == [("row 2", "doc_id")]


def test_invalid_utf8_in_one_csv_row_quarantines_that_row(tmp_path):
    # Before: the whole file refused ("CSV conversion error to string: invalid UTF8 data").
    path = tmp_path / "bad.csv"
    path.write_bytes(b"doc_id,source,year,city\nA,patent,2020,Paris\r\n"
                     b"B,patent,2020,Par\xffis\r\nC,patent,2020,Lyon\r\n")
    docs, q = _read(path, "table")
    assert docs["doc_id"].to_pylist() == ["A", "C"]
    assert [(r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("line 3", "invalid UTF-8")]


def test_stray_closing_brace_in_a_json_list_does_not_loop_forever(tmp_path):
    # Before: the reader read the same '}' again and again, filling memory (23 GB, killed).
    import signal

    path = tmp_path / "w.json"
    path.write_text('[{"id": "https://openalex.org/W1"}, }, {"id": "https://openalex.org/W2"}]')
    signal.alarm(20)
    try:
        docs, q = _read(path, "openalex")
    finally:
        signal.alarm(0)
    assert docs["doc_id"].to_pylist() == ["W1", "W2"]
    assert [r["reason"] for r in q.to_table().to_pylist()] == ["malformed JSON"]


def test_damaged_parquet_is_one_clear_input_error(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"doc_id": ["A"] * 50, "source": ["patent"] * 50,
                             "year": ["2020"] * 50}), path)
    good = path.read_bytes()
    errors = 0
    for at in range(len(good) - 400, len(good) - 8, 3):  # the footer's metadata
        raw = bytearray(good)
        raw[at] ^= 0x5A
        path.write_bytes(bytes(raw))
        try:  # read and checked, or one clear error: never duckdb's own exception
            _read(path, "table")
        except stclusters.InputFormatError as exc:
            assert str(path) in str(exc)
            errors += 1
    assert errors > 0


def test_number_too_long_for_python_is_one_malformed_record(tmp_path):
    # Before: ValueError ("Exceeds the limit (4300 digits)") aborted the run.
    for layout in ("lines", "list"):
        texts = ['{"id": "https://openalex.org/W1", "x": ' + "9" * 5000 + "}",
                 '{"id": "https://openalex.org/W2"}']
        path = tmp_path / ("w.jsonl" if layout == "lines" else "w.json")
        path.write_text("\n".join(texts) if layout == "lines" else "[" + ",".join(texts) + "]")
        docs, q = _read(path, "openalex")
        assert docs["doc_id"].to_pylist() == ["W2"] and q.reasons() == {"malformed JSON": 1}


def test_content_after_a_json_list_is_read_or_quarantined_never_ignored(tmp_path):
    # Before: everything after the first ']' vanished without a word.
    path = tmp_path / "w.json"
    path.write_text('[{"id": "https://openalex.org/W1"}]\n[{"id": "https://openalex.org/W2"}]')
    docs, q = _read(path, "openalex")
    assert docs["doc_id"].to_pylist() == ["W1", "W2"] and q.count == 0  # lists one after another
    path.write_text('[{"id": "https://openalex.org/W1"}] {"id": "https://openalex.org/W3"}')
    docs, q = _read(path, "openalex")
    assert docs["doc_id"].to_pylist() == ["W1"]
    assert [(r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("after element 1", "content after the end of the JSON list")]


@pytest.mark.parametrize("glue", [b" ", b"\r"])
def test_xml_documents_glued_on_one_line_or_cr_only_are_all_read(tmp_path, glue):
    # Before: a document starting mid-line (or a file with CR-only line ends) hid inside
    # the one before it, and both went to the quarantine as one XML syntax error.
    docs_xml = [_grant(str(n), "Boston") for n in (1, 2, 3)]
    text = glue.join(d.encode().rstrip(b"\n") for d in docs_xml)
    if glue == b"\r":
        text = text.replace(b"\n", b"\r")
    path = tmp_path / "g.xml"
    path.write_bytes(text)
    docs, q = _read(path, "uspto-xml")
    assert docs["doc_id"].to_pylist() == ["1", "2", "3"] and q.count == 0


def test_csv_with_a_column_twice_is_refused(tmp_path):
    # Before: the first of the two was used without a word.
    path = tmp_path / "twice.csv"
    path.write_text("DOC_ID,doc_id,source,year\nA,B,patent,2020\n")
    with pytest.raises(stclusters.InputFormatError, match="column given twice"):
        _read(path, "table")


def test_unterminated_quote_swallowing_the_rest_is_quarantined(tmp_path):
    # Before: row A was used with rows B and C inside its city; B and C vanished.
    path = tmp_path / "q.csv"
    path.write_text('doc_id,source,year,city\nZ,patent,2020,"Pa\nris"\n'  # a real multi-line value
                    'A,patent,2020,"Paris\nB,patent,2020,Lyon\nC,patent,2020,Nice\n')
    docs, q = _read(path, "table")
    assert docs["doc_id"].to_pylist() == ["Z"]
    assert [(r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("row 2 to end of file", "unterminated quote: the value runs to the end of the file")]


def test_institution_fields_of_the_wrong_kind_are_quarantined(tmp_path):
    from stclusters.sources import read_openalex_institutions

    recs = [{"id": "https://openalex.org/I1", "geo": {"latitude": 1, "longitude": 2,
                                                      "geonames_city_id": {"a": 1}}},
            {"id": "https://openalex.org/I2", "geo": {"latitude": 1, "longitude": 2,
                                                      "country_code": "=cmd|' /C calc'!A0"}},
            {"id": "https://openalex.org/I3", "geo": {"latitude": 1, "longitude": 2,
                                                      "country_code": "fr", "geonames_city_id": 42}}]
    path = tmp_path / "i.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs))
    q = Quarantine()
    t = read_openalex_institutions(path, quarantine=q)
    assert t.select(["id", "country_code", "geonames_city_id"]).to_pylist() == [
        {"id": "I3", "country_code": "FR", "geonames_city_id": "42"}]
    assert [(r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("geo.geonames_city_id", "geo.geonames_city_id: not a GeoNames id"),
        ("country_code", "country_code: not an ISO 3166-1 alpha-2 code")]


def test_junk_between_gzip_members_loses_no_member(tmp_path):
    # Before: the members after the junk were never read (the junk was "after the stream").
    text = zlib.decompress(OPENALEX.read_bytes(), wbits=31)
    half = text.index(b"}, {", len(text) // 2) + 3  # a member boundary between two works
    path = tmp_path / "j.json.gz"
    path.write_bytes(gzip.compress(text[:half]) + JUNK[:500] + gzip.compress(text[half:]))
    docs, q = _read(path, "openalex")
    assert docs.num_rows == 410
    (row,) = q.to_table().to_pylist()
    assert (row["reason"], row["field"]) == ("junk between gzip members", "gzip")
    assert row["position"] == f"gzip member at byte {len(gzip.compress(text[:half]))}"


def test_empty_gz_part_of_a_snapshot_is_an_empty_input(tmp_path):
    # Before: a 0-byte part ("named .gz but not gzip-compressed") refused the whole snapshot.
    snap = _snapshot(tmp_path / "snap", [("2024-01-01", [{"id": "https://openalex.org/W1"}])])
    empty = snap / "data" / "works" / "updated_date=2024-02-01"
    empty.mkdir()
    (empty / "part_000.gz").write_bytes(b"")
    docs, q = _read(snap, "openalex")
    assert docs["doc_id"].to_pylist() == ["W1"] and q.count == 0
