"""USPTO grant full-text XML (``ipgYYMMDD.xml``, 2005+ schemas), one row per inventor.

A weekly file is many XML documents glued together, each with its own ``<?xml …?>`` and
``<!DOCTYPE …>`` lines, so it is not one well-formed XML file. The reader splits the byte
stream line by line at those headers and parses each document on its own with lxml
(no DTD, no network, no entity expansion). Besides ``<us-patent-grant>`` the files hold
``<sequence-cwu>`` documents (sequence listings of a grant); those are skipped.

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
    GZIP_STREAM_ERRORS,
    BatchBuilder,
    ReadBatch,
    first_significant,
    open_binary,
    sniff,
)
from stclusters.sources._quarantine import Quarantine

_EXPECTED = "USPTO grant XML"
SOURCE = "patent"

#: Roots that are part of a grant file but not a patent: skipped without quarantine.
_SKIPPED_ROOTS = frozenset({"sequence-cwu"})

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


def _split_documents(stream) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(document number, first line, bytes)`` for each XML document of the stream.

    A document starts at an ``<?xml`` line, or at a ``<us-patent-grant`` line when the
    current one already has a root (files whose documents lack the XML declaration).
    """
    buf: list[bytes] = []
    root_seen = False
    start_line = 1
    n_doc = 0
    for line_no, line in enumerate(stream, start=1):
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
    doc_id = normalise_patent_id(_text(bib, "publication-reference/document-id/doc-number") or "")
    year = _year(_text(bib, "publication-reference/document-id/date"))
    app_ref = bib.find("application-reference")
    doc_type = app_ref.get("appl-type") if app_ref is not None else None
    inventors = _inventor_elements(bib)
    applicant = _applicant(bib)
    tech_field = _tech_field(bib)
    builder.add_document(doc_id=doc_id, source=SOURCE, year=year, doc_type=doc_type,
                         n_contributors=len(inventors), record_ref=record_ref)
    for seq, inv in enumerate(inventors):
        addr = inv.find("addressbook/address")
        builder.add_contribution(
            doc_id=doc_id, source=SOURCE, year=year, contributor_seq=seq, address_seq=0,
            city=_text(addr, "city"), admin1=_text(addr, "state"),
            country=_text(addr, "country"), postcode=_text(addr, "postcode"),
            applicant=applicant, tech_field=tech_field, record_ref=record_ref,
        )


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
        Patents per batch.

    Yields
    ------
    ReadBatch
        ``documents``: one row per patent (``doc_id`` like PatentsView's ``patent_id``,
        ``year`` of grant, ``doc_type`` = ``appl-type``, ``n_contributors`` = inventors,
        0 allowed). ``contributions``: one row per inventor (``contributor_seq`` 0-based in
        document order, ``address_seq`` 0, address fields as printed).

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
    parser = _parser()
    last_position = "start of file"
    with open_binary(p, expected=_EXPECTED) as stream:
        docs = _split_documents(stream)
        while True:
            try:
                n_doc, line, doc = next(docs)
            except StopIteration:
                break
            except GZIP_STREAM_ERRORS as exc:
                # Cut-off download: keep what was read, record the loss, stop cleanly.
                quarantine.add(p.name, f"after {last_position}", "corrupt or truncated gzip stream",
                               excerpt=str(exc), source=SOURCE)
                break
            position = f"document {n_doc} (line {line})"
            last_position = position
            _read_one(doc, p.name, position, parser, builder, quarantine)
            if builder.full:
                batch = builder.take()
                if batch is not None:
                    yield batch
    batch = builder.take()
    if batch is not None:
        yield batch


def _read_one(
    doc: bytes, file_name: str, position: str, parser: etree.XMLParser,
    builder: BatchBuilder, quarantine: Quarantine,
) -> None:
    try:
        root = etree.fromstring(doc, parser)
    except etree.XMLSyntaxError as exc:
        quarantine.add(file_name, position, "XML syntax error", excerpt=str(exc), source=SOURCE)
        return
    if root.tag in _SKIPPED_ROOTS:
        return
    if root.tag != "us-patent-grant":
        quarantine.add(file_name, position, "not a us-patent-grant document",
                       field="root", excerpt=_excerpt(doc), source=SOURCE)
        return
    if not _text(root, "us-bibliographic-data-grant/publication-reference/document-id/doc-number"):
        quarantine.add(file_name, position, "no doc-number", field="doc-number",
                       excerpt=_excerpt(doc), source=SOURCE)
        return
    _add_document(root, builder, f"{file_name}:{position}")
