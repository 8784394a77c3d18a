"""USPTO grant full-text XML (``ipgYYMMDD.xml``, 2005+ schemas), one row per inventor.

A weekly file is many XML documents glued together, each with its own ``<?xml …?>`` and
``<!DOCTYPE …>`` lines, so it is not one well-formed XML file. The reader splits the byte
stream line by line at those headers and parses each document on its own with lxml
(no DTD, no network, no entity expansion). Besides ``<us-patent-grant>`` the files hold
``<sequence-cwu>`` documents (sequence listings of a grant): they are no patents, but every
record read must be accounted, so each one becomes a document without contributors
(``doc_type`` = its root name), which the pipeline counts as filtered (``no_contributors``).

Where the inventors are, by schema version:

* v4.0–v4.2 (2005–2012): ``parties/applicants/applicant[@app-type="applicant-inventor"]``
  (also ``us-parties/us-applicants/us-applicant``);
* v4.3+ (2013–): ``us-parties/inventors/inventor``. The applicants there may be the same
  persons again, so ``inventors`` wins when present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

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
    with_last,
)
from stclusters.sources._quarantine import Quarantine

_EXPECTED = "USPTO grant XML"
SOURCE = "patent"

#: Roots that are part of a grant file but not a patent: kept as documents without
#: contributors (``doc_type`` = the root name), so that they are counted, not lost.
_NON_GRANT_ROOTS = frozenset({"sequence-cwu"})

_DOC_NUMBER_PATH = "publication-reference/document-id/doc-number"
_DATE_PATH = "publication-reference/document-id/date"

_DOC_NUMBER = re.compile(r"([A-Z]*)0*(\d+)")
_IPC_SUBCLASS = re.compile(r"[A-H]\d\d[A-Z]")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        load_dtd=False, no_network=True, resolve_entities=False, dtd_validation=False,
        huge_tree=True, recover=False,
    )


def normalise_patent_id(doc_number: str) -> str:
    """PatentsView-style ``patent_id`` from a printed doc-number.

    Leading zeros of the number are dropped, a letter prefix is kept:
    ``08142281`` → ``8142281``, ``D0656296`` → ``D656296``, ``RE043567`` → ``RE43567``.
    Anything else is returned stripped, unchanged.
    """
    s = doc_number.strip().upper()
    m = _DOC_NUMBER.fullmatch(s)
    return f"{m.group(1)}{m.group(2)}" if m else s


def _pieces(stream) -> Iterator[tuple[int, bytes]]:
    """``(line number, piece)``: the stream's lines, a line cut before every ``<?xml`` that is
    not at its start (a document glued to the previous one's last line; a file with CR-only
    line ends is one line), so that no document hides inside another."""
    for line_no, line in enumerate(stream, start=1):
        if line_no == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is no document
        if line.find(b"<?xml", 1) < 0:
            yield line_no, line
            continue
        for piece in _XML_DECL.split(line):
            if piece:
                yield line_no, piece


_XML_DECL = re.compile(rb"(?=<\?xml)")


def _split_documents(stream) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(document number, first line, bytes)`` for each XML document of the stream.

    A document starts at an ``<?xml`` line, or at a ``<us-patent-grant`` line when the
    current one already has a root (files whose documents lack the XML declaration).
    """
    buf: list[bytes] = []
    root_seen = False
    start_line = 1
    n_doc = 0
    for line_no, line in _pieces(stream):
        head = line.lstrip()
        if buf and (head.startswith(b"<?xml") or (head.startswith(b"<us-patent-grant") and root_seen)):
            n_doc += 1
            yield n_doc, start_line, b"".join(buf)
            buf, root_seen = [], False
        if not buf:
            if not head:
                continue  # blank lines between documents; an XML declaration must come first
            start_line, line = line_no, head
        if head.startswith(b"<") and not head.startswith((b"<?", b"<!")):
            root_seen = True
        buf.append(line)
    if buf:
        n_doc += 1
        yield n_doc, start_line, b"".join(buf)


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None:
        return None
    text = "".join(found.itertext()).strip()
    return text or None


def _inventor_elements(bib: etree._Element) -> list[etree._Element]:
    parties = [p for p in (bib.find("us-parties"), bib.find("parties")) if p is not None]
    inventors = [
        el for p in parties for holder in p.findall("inventors")
        for el in holder if el.tag in ("inventor", "deceased-inventor")
    ]
    if inventors:
        return inventors
    return [
        el for p in parties
        for el in (*p.findall("applicants/applicant"), *p.findall("us-applicants/us-applicant"))
        if "inventor" in (el.get("app-type") or "")
    ]


def _applicant(bib: etree._Element) -> str | None:
    """First assignee organisation; failing that, the first applicant organisation."""
    for assignee in bib.iterfind(".//assignees/assignee"):
        org = _text(assignee, "addressbook/orgname") or _text(assignee, "orgname")
        if org:
            return org
    for path in (".//applicants/applicant", ".//us-applicants/us-applicant"):
        for app in bib.iterfind(path):
            org = _text(app, "addressbook/orgname")
            if org:
                return org
    return None


def _tech_field(bib: etree._Element) -> str | None:
    """Main classification subclass (``H01L``): CPC first, then IPCR, then IPC (2005)."""
    for path in ("classifications-cpc/main-cpc/classification-cpc",
                 "classifications-cpc/further-cpc/classification-cpc",
                 "classifications-ipcr/classification-ipcr"):
        el = bib.find(path)
        if el is not None:
            code = "".join(_text(el, t) or "" for t in ("section", "class", "subclass"))
            if _IPC_SUBCLASS.fullmatch(code):
                return code
    main = _text(bib, "classification-ipc/main-classification")
    if main:
        code = main.replace(" ", "")[:4]
        if _IPC_SUBCLASS.fullmatch(code):
            return code
    return None


def _year(date: str | None) -> int | None:
    if date and len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    return None


def _add_document(
    root: etree._Element, builder: BatchBuilder, record_ref: str,
) -> None:
    bib = root.find("us-bibliographic-data-grant")
    if bib is None:
        bib = root
    doc_id = normalise_patent_id(_text(bib, _DOC_NUMBER_PATH) or "")
    year = _year(_text(bib, _DATE_PATH))
    app_ref = bib.find("application-reference")
    doc_type = app_ref.get("appl-type") if app_ref is not None else None
    inventors = _inventor_elements(bib)
    applicant = _applicant(bib)
    tech_field = _tech_field(bib)
    rows = []
    for seq, inv in enumerate(inventors):
        addr = inv.find("addressbook/address")
        rows.append(dict(
            doc_id=doc_id, source=SOURCE, year=year, contributor_seq=seq, address_seq=0,
            city=_text(addr, "city"), admin1=_text(addr, "state"),
            country=_text(addr, "country"), postcode=_text(addr, "postcode"),
            applicant=applicant, tech_field=tech_field, record_ref=record_ref,
        ))
    builder.add_record(dict(doc_id=doc_id, source=SOURCE, year=year, doc_type=doc_type,
                            n_contributors=len(inventors), record_ref=record_ref), rows)


def _excerpt(doc: bytes) -> str:
    """The document's root line, for the quarantine (the header lines say nothing)."""
    for line in doc.splitlines():
        s = line.strip()
        if s and not s.startswith((b"<?xml", b"<!DOCTYPE")):
            return s[:200].decode("utf-8", "replace")
    return doc[:200].decode("utf-8", "replace")


def read_uspto_xml(
    path: str | Path, *, quarantine: Quarantine, batch_size: int = 5000,
) -> Iterator[ReadBatch]:
    """Stream a USPTO grant XML file (plain or gzip) as batches of patents and inventors.

    Parameters
    ----------
    path : str or Path
        A weekly ``ipgYYMMDD.xml`` file or an excerpt of one, optionally gzip-compressed.
    quarantine : Quarantine
        Receives malformed documents (XML syntax error, no doc-number, unexpected root),
        with position ``"document N (line L)"`` (N 1-based over all documents of the file,
        L the document's first line).
    batch_size : int
        Documents per batch.

    Yields
    ------
    ReadBatch
        ``documents``: one row per patent (``doc_id`` like PatentsView's ``patent_id``,
        ``year`` of grant, ``doc_type`` = ``appl-type``, ``n_contributors`` = inventors,
        0 allowed), and one row per sequence listing (``doc_id`` = the normalised
        doc-number + ``#sequence-cwu``, else ``<file>#<N>``; ``doc_type`` =
        ``sequence-cwu``, ``n_contributors`` 0). ``contributions``: one row per inventor
        (``contributor_seq`` 0-based in document order, ``address_seq`` 0, address fields
        as printed).

    Raises
    ------
    InputFormatError
        Missing file, broken gzip, or content that does not start like XML.
    """
    p = Path(path)
    head = first_significant(sniff(p, expected=_EXPECTED, n=512))
    if not head.startswith((b"<?xml", b"<us-patent-grant", b"<!DOCTYPE")):
        raise InputFormatError(p, _EXPECTED, "content does not start with an XML declaration")
    builder = BatchBuilder(batch_size)
    yield from builder.stream(_read_documents(p, builder, quarantine))


def _read_documents(p: Path, builder: BatchBuilder, quarantine: Quarantine) -> Iterator[None]:
    """Parse the file's documents one by one into ``builder``; one step per document.

    A damaged gzip stream ends the documents at the break (every document before it is
    read); the break is one quarantine entry, which also stands for the document it cut.
    """
    parser = _parser()
    last_position = "start of file"
    with open_binary(p, expected=_EXPECTED, whole_lines=True) as stream:
        for (n_doc, line, doc), last in with_last(_split_documents(stream)):
            position = f"document {n_doc} (line {line})"
            damage = stream_damage(stream) if last else None
            if damage is not None and not _parses(doc, parser):
                quarantine_skipped(quarantine, p.name, stream, source=SOURCE)
                _quarantine_damage(quarantine, p.name, f"{position} to end of file", damage)
                return
            last_position = position
            _read_one(doc, p.name, n_doc, position, parser, builder, quarantine)
            yield
        quarantine_skipped(quarantine, p.name, stream, source=SOURCE)
        damage = stream_damage(stream)
        if damage is not None:
            _quarantine_damage(quarantine, p.name, f"after {last_position}", damage)


def _parses(doc: bytes, parser: etree.XMLParser) -> bool:
    try:
        etree.fromstring(doc, parser)
    except etree.XMLSyntaxError:
        return False
    return True


def _quarantine_damage(quarantine: Quarantine, file_name: str, position: str,
                       damage: StreamDamage) -> None:
    quarantine.add(file_name, position, damage.reason, field="gzip", excerpt=damage.describe(),
                   source=SOURCE)


def _add_non_grant(root: etree._Element, builder: BatchBuilder, file_name: str, n_doc: int,
                   record_ref: str) -> None:
    """A document of the grant file that is no patent (a sequence listing): counted, with no
    contributors. Its id is kept apart from the grant's (``8420053#sequence-cwu``): the same
    id twice would join the grant's inventors to both documents."""
    number = _text(root, _DOC_NUMBER_PATH) or _text(root, f".//{_DOC_NUMBER_PATH}")
    date = _text(root, _DATE_PATH) or _text(root, f".//{_DATE_PATH}")
    doc_id = f"{normalise_patent_id(number)}#{root.tag}" if number else f"{file_name}#{n_doc}"
    builder.add_record(dict(doc_id=doc_id, source=SOURCE, year=_year(date), doc_type=root.tag,
                            n_contributors=0, record_ref=record_ref), [])


def _read_one(
    doc: bytes, file_name: str, n_doc: int, position: str, parser: etree.XMLParser,
    builder: BatchBuilder, quarantine: Quarantine,
) -> None:
    try:
        root = etree.fromstring(doc, parser)
    except etree.XMLSyntaxError as exc:
        quarantine.add(file_name, position, "XML syntax error", excerpt=str(exc), source=SOURCE)
        return
    record_ref = f"{file_name}:{position}"
    try:
        _add_root(root, doc, builder, file_name, n_doc, position, record_ref, quarantine)
    except RecordError as exc:
        field = _XML_FIELDS.get(exc.field, exc.field)
        quarantine.add(file_name, position, f"{field}: {exc.reason}", field=field,
                       excerpt=_excerpt(doc), source=SOURCE)


#: The XML element behind each column, to name it in the quarantine.
_XML_FIELDS = {
    "doc_id": "doc-number", "year": "publication-reference date", "doc_type": "appl-type",
    "city": "inventor address/city", "admin1": "inventor address/state",
    "country": "inventor address/country", "postcode": "inventor address/postcode",
    "applicant": "assignee orgname", "tech_field": "classification",
}


def _add_root(root: etree._Element, doc: bytes, builder: BatchBuilder, file_name: str,
              n_doc: int, position: str, record_ref: str, quarantine: Quarantine) -> None:
    if root.tag in _NON_GRANT_ROOTS:
        _add_non_grant(root, builder, file_name, n_doc, record_ref)
        return
    if root.tag != "us-patent-grant":
        quarantine.add(file_name, position, "not a us-patent-grant document",
                       field="root", excerpt=_excerpt(doc), source=SOURCE)
        return
    if not _text(root, f"us-bibliographic-data-grant/{_DOC_NUMBER_PATH}"):
        quarantine.add(file_name, position, "no doc-number", field="doc-number",
                       excerpt=_excerpt(doc), source=SOURCE)
        return
    _add_document(root, builder, record_ref)
