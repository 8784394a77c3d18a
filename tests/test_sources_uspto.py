"""USPTO grant XML reader: real samples, malformed documents, streaming, unreadable files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pyarrow as pa
import pytest

from stclusters.errors import InputFormatError
from stclusters.sources import Quarantine, read_source
from stclusters.sources.uspto_xml import normalise_patent_id, read_uspto_xml

from conftest import SHARED_DATA

SAMPLES = SHARED_DATA / "samples" / "uspto"
SAMPLE_FILES = sorted(SAMPLES.glob("*.xml.gz"))


def _read_all(path, **kw):
    q = kw.pop("quarantine", None) or Quarantine()
    batches = list(read_uspto_xml(path, quarantine=q, **kw))
    docs = pa.concat_tables([b.documents for b in batches])
    cons = pa.concat_tables([b.contributions for b in batches])
    return batches, docs, cons, q


_DOCUMENTS = re.compile(r"<(us-patent-grant|sequence-cwu)\b.*?</\1>", flags=re.S)


def _independent_counts(text: str) -> tuple[int, int]:
    """Documents (grants and sequence listings: every record is accounted) and inventors,
    counted with regexes over the raw text, per document, using the same precedence as the
    schema (an <inventors> block wins over applicant-inventors)."""
    grants = re.findall(r"<us-patent-grant\b.*?</us-patent-grant>", text, flags=re.S)
    n_documents = len(_DOCUMENTS.findall(text))
    inventors = 0
    for g in grants:
        block = re.search(r"<inventors>(.*?)</inventors>", g, flags=re.S)
        if block:
            inventors += len(re.findall(r"<inventor\b", block.group(1)))
        else:
            inventors += len(re.findall(r'app-type="applicant-inventor"', g))
    return n_documents, inventors


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_all_grants_and_inventors(path):
    text = gzip.open(path, "rt", encoding="utf-8").read()
    n_documents, n_inventors = _independent_counts(text)
    _, docs, cons, q = _read_all(path)
    assert q.count == 0
    assert docs.num_rows == n_documents
    assert cons.num_rows == n_inventors
    assert sum(docs["n_contributors"].to_pylist()) == n_inventors
    # doc ids: the printed publication doc-numbers, normalised, in file order; a sequence
    # listing is named after its grant, kept apart from it
    expected_ids = []
    for m in _DOCUMENTS.finditer(text):
        printed = re.search(r"<publication-reference>\s*<document-id>\s*<country>US</country>"
                            r"\s*<doc-number>([^<]+)</doc-number>", m.group(0)).group(1)
        suffix = "" if m.group(1) == "us-patent-grant" else f"#{m.group(1)}"
        expected_ids.append(normalise_patent_id(printed) + suffix)
    assert docs["doc_id"].to_pylist() == expected_ids
    assert all(not i.startswith("0") and not i.startswith("D0") for i in expected_ids)
    n_sequences = len(re.findall(r"<sequence-cwu\b", text))
    assert docs["doc_type"].to_pylist().count("sequence-cwu") == n_sequences
    assert set(docs["source"].to_pylist()) == {"patent"}
    # every inventor row points at a document of the batch and has a country
    assert set(cons["doc_id"].to_pylist()) <= set(docs["doc_id"].to_pylist())
    assert cons["country"].null_count == 0


def test_counts_of_the_shared_samples():
    # Per file: (documents, inventors); checked by hand with grep (see _independent_counts).
    # ipg130416 holds 25 grants and 2 sequence listings (<sequence-cwu>).
    expected = {
        "uspto_ipg050104.small.xml.gz": (25, 62),
        "uspto_ipg110104.small.xml.gz": (25, 61),
        "uspto_ipg120103.small.xml.gz": (25, 66),
        "uspto_ipg120327.196.xml.gz": (196, 344),
        "uspto_ipg130416.small.xml.gz": (27, 71),
    }
    for path in SAMPLE_FILES:
        _, docs, cons, _ = _read_all(path)
        assert (docs.num_rows, cons.num_rows) == expected[path.name], path.name


def test_fields_of_known_documents():
    _, docs, cons, _ = _read_all(SAMPLES / "uspto_ipg050104.small.xml.gz")
    first = docs.slice(0, 1).to_pylist()[0]
    assert first["doc_id"] == "6836899" and first["year"] == 2005
    assert first["doc_type"] == "utility"
    assert first["record_ref"] == "uspto_ipg050104.small.xml.gz:document 1 (line 1)"
    row = cons.slice(0, 1).to_pylist()[0]
    assert (row["city"], row["admin1"], row["country"], row["postcode"]) == (
        "Bath", "PA", "US", "18014-8224")
    assert row["tech_field"] == "A45F"  # IPC 2005: <main-classification>A45F  504
    # a design patent with an assignee (2013 schema, <inventors>)
    _, docs, cons, _ = _read_all(SAMPLES / "uspto_ipg130416.small.xml.gz")
    d = docs.slice(0, 1).to_pylist()[0]
    assert (d["doc_id"], d["doc_type"], d["n_contributors"]) == ("D680087", "design", 4)
    rows = cons.filter(pa.compute.equal(cons["doc_id"], "D680087")).to_pylist()
    assert [r["contributor_seq"] for r in rows] == [0, 1, 2, 3]
    assert {r["applicant"] for r in rows} == {"Sharp Kabushiki Kaisha"}


def test_city_with_glued_postcode_kept_as_printed():
    cities = set()
    for path in SAMPLE_FILES:
        cities |= set(_read_all(path)[2]["city"].to_pylist())
    assert "I 31044 Montebelluna" in cities
    assert "Västerås" in cities  # character reference decoded


def test_normalise_patent_id():
    assert normalise_patent_id("08142281") == "8142281"
    assert normalise_patent_id("D0656296") == "D656296"
    assert normalise_patent_id("RE043567") == "RE43567"
    assert normalise_patent_id("PP021234") == "PP21234"


def _grant(number: str, inventors: int, *, appl_type: str = "utility") -> str:
    invs = "".join(
        f'<applicant sequence="{i:03d}" app-type="applicant-inventor"><addressbook>'
        f"<last-name>N{i}</last-name><address><city>City{i}</city><state>CA</state>"
        f"<country>US</country></address></addressbook></applicant>"
        for i in range(inventors))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE us-patent-grant SYSTEM "us-patent-grant-v42-2006-08-23.dtd" [ ]>\n'
            '<us-patent-grant lang="EN" dtd-version="v4.2 2006-08-23">\n'
            "<us-bibliographic-data-grant>\n<publication-reference><document-id><country>US"
            f"</country><doc-number>{number}</doc-number><kind>B2</kind><date>20120327"
            "</date></document-id></publication-reference>\n"
            f'<application-reference appl-type="{appl_type}"><document-id><country>US</country>'
            "<doc-number>1</doc-number></document-id></application-reference>\n"
            f"<parties><applicants>{invs}</applicants></parties>\n"
            "</us-bibliographic-data-grant>\n</us-patent-grant>\n")


def test_malformed_documents_are_quarantined_and_reading_goes_on(tmp_path):
    good1 = _grant("08000001", 2)
    broken = _grant("08000002", 1).replace("</parties>", "</partie>")
    no_number = _grant("", 1)
    no_inventor = _grant("08000004", 0)
    text = good1 + broken + no_number + no_inventor
    path = tmp_path / "mixed.xml"
    path.write_text(text)
    _, docs, cons, q = _read_all(path)
    assert docs["doc_id"].to_pylist() == ["8000001", "8000004"]
    assert docs["n_contributors"].to_pylist() == [2, 0]
    assert cons.num_rows == 2
    quarantined = q.to_table().to_pylist()
    lines_per_doc = good1.count("\n")
    assert [(r["position"], r["reason"]) for r in quarantined] == [
        (f"document 2 (line {lines_per_doc + 1})", "XML syntax error"),
        (f"document 3 (line {2 * lines_per_doc + 1})", "no doc-number"),
    ]
    assert all(r["file"] == "mixed.xml" for r in quarantined)


def _sequence_listing(number: str | None) -> str:
    ref = ("<publication-reference><document-id><country>US</country>"
           f"<doc-number>{number}</doc-number><kind>B2</kind><date>20130416</date>"
           "</document-id></publication-reference>\n") if number is not None else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE sequence-cwu SYSTEM "us-sequence-listing.dtd" [ ]>\n'
            f'<sequence-cwu id="SEQLST-1">\n{ref}<number>1</number>\n'
            "<sequence-list-new-rules><s100><s160>1</s160></s100></sequence-list-new-rules>\n"
            "</sequence-cwu>\n")


def test_sequence_listings_are_documents_without_contributors(tmp_path):
    text = (_grant("08420053", 2) + _sequence_listing("08420053") + _grant("08420054", 1)
            + _sequence_listing(None))
    path = tmp_path / "seq.xml"
    path.write_text(text)
    _, docs, cons, q = _read_all(path)
    assert q.count == 0
    lines = [text[: m.start()].count("\n") + 1 for m in re.finditer(r"<\?xml", text)]
    assert docs.drop_columns(["updated_date", "domain"]).to_pylist() == [
        {"doc_id": "8420053", "source": "patent", "year": 2012, "doc_type": "utility",
         "n_contributors": 2, "record_ref": f"seq.xml:document 1 (line {lines[0]})"},
        # not the grant's id: the same id twice would give the grant's inventors to both
        {"doc_id": "8420053#sequence-cwu", "source": "patent", "year": 2013,
         "doc_type": "sequence-cwu", "n_contributors": 0,
         "record_ref": f"seq.xml:document 2 (line {lines[1]})"},
        {"doc_id": "8420054", "source": "patent", "year": 2012, "doc_type": "utility",
         "n_contributors": 1, "record_ref": f"seq.xml:document 3 (line {lines[2]})"},
        {"doc_id": "seq.xml#4", "source": "patent", "year": None, "doc_type": "sequence-cwu",
         "n_contributors": 0, "record_ref": f"seq.xml:document 4 (line {lines[3]})"},
    ]
    assert cons["doc_id"].to_pylist() == ["8420053", "8420053", "8420054"]


def test_streams_many_documents_in_batches(tmp_path):
    path = tmp_path / "big.xml.gz"
    n = 20_000
    with gzip.open(path, "wt", compresslevel=1) as f:
        for i in range(n):
            f.write(_grant(f"{9000000 + i:08d}", 1 + i % 3))
    batches, docs, cons, q = _read_all(path, batch_size=4000)
    assert len(batches) == 5
    assert all(b.documents.num_rows == 4000 for b in batches)
    assert docs.num_rows == n and q.count == 0
    assert cons.num_rows == sum(1 + i % 3 for i in range(n))
    assert docs["doc_id"][-1].as_py() == str(9000000 + n - 1)
    # each batch carries exactly the inventors of its own patents
    for b in batches:
        assert set(b.contributions["doc_id"].to_pylist()) <= set(b.documents["doc_id"].to_pylist())


def test_unreadable_files_raise(tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        list(read_uspto_xml(tmp_path / "missing.xml", quarantine=Quarantine()))
    fake_gz = tmp_path / "fake.xml.gz"
    fake_gz.write_bytes(b"<?xml version='1.0'?><us-patent-grant/>")
    with pytest.raises(InputFormatError, match="not gzip"):
        list(read_uspto_xml(fake_gz, quarantine=Quarantine()))
    bad_gz = tmp_path / "bad.xml.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    with pytest.raises(InputFormatError):
        list(read_uspto_xml(bad_gz, quarantine=Quarantine()))
    not_xml = tmp_path / "notes.xml"
    not_xml.write_text("doc_id,year\n1,2020\n")
    with pytest.raises(InputFormatError, match="XML declaration"):
        list(read_uspto_xml(not_xml, quarantine=Quarantine()))


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    full = gzip.compress("".join(_grant(f"{8100000 + i}", 1) for i in range(3000)).encode())
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(full[: len(full) // 2])
    _, docs, _, q = _read_all(path)
    assert 0 < docs.num_rows < 3000
    assert q.reasons() == {"corrupt or truncated gzip stream": 1}


def test_read_source_detects_uspto():
    path = SAMPLES / "uspto_ipg120327.196.xml.gz"
    batches = list(read_source(path, quarantine=Quarantine()))
    assert sum(b.documents.num_rows for b in batches) == 196
