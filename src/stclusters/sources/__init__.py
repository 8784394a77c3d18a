"""Input readers: every supported file kind becomes a stream of :class:`ReadBatch`.

Kinds: ``uspto-xml`` (USPTO grant full text), ``openalex`` (works: JSON list, JSON Lines or a
snapshot folder), ``table`` (the generic contributions table, CSV or Parquet), and the
table files of two bulk *bundles*, ``patentsview`` and ``patstat``: their files are staged
one by one into the workspace and assembled into documents and contributions once all are
in (see :mod:`stclusters.workspace`). See ``docs/inputs.md``.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from stclusters.errors import InputFormatError, ParameterError
from stclusters.sources._batch import ReadBatch, first_significant, looks_binary, sniff
from stclusters.sources._quarantine import Quarantine
from stclusters.sources.openalex import read_openalex_institutions, read_openalex_works
from stclusters.sources.table import read_table
from stclusters.sources.uspto_xml import read_uspto_xml

__all__ = ["BUNDLE_KINDS", "FOLDER", "KINDS", "Quarantine", "ReadBatch", "bundle_module", "bundles",
           "detect_kind", "folder_files",
           "read_openalex_institutions",
           "read_openalex_works", "read_source", "read_table", "read_uspto_xml"]

#: The input kinds :func:`read_source` accepts (besides ``"auto"``).
KINDS: tuple[str, ...] = ("uspto-xml", "openalex", "table")

#: Bulk bundles: kind → the module that stages its table files and assembles them
#: (``KIND``, ``table_of``, ``UNITS``, ``SOURCES_OF``, ``stage``, ``assemble``,
#: ``status_counts``; see docs/inputs.md).
BUNDLE_KINDS: dict[str, str] = {"patentsview": "stclusters.sources.patentsview",
                                "patstat": "stclusters.sources.patstat"}

#: Prefix of each bundle's staging tables in a workspace.
STAGING_PREFIX: dict[str, str] = {"patentsview": "pv_", "patstat": "ps_"}


def bundle_module(kind: str) -> ModuleType | None:
    """The module of bundle ``kind``, ``None`` for any other kind."""
    name = BUNDLE_KINDS.get(kind)
    return importlib.import_module(name) if name else None


def bundles() -> list[tuple[str, ModuleType]]:
    """Every bundle kind with its module, in name order."""
    return [(kind, importlib.import_module(name)) for kind, name in sorted(BUNDLE_KINDS.items())]


def bundle_kind_of(path: Path) -> str | None:
    """The bundle whose table ``path`` holds, from its file name alone (``None``: no bundle)."""
    for kind, module in bundles():
        if module.table_of(path) is not None:
            return kind
    return None

_OPENALEX_ID = re.compile(rb'"id"\s*:\s*"https://openalex\.org/([A-Z])')

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")

#: What :func:`detect_kind` says of a folder that is not an OpenAlex snapshot: a folder of
#: input files, each read as the file it is (see :func:`folder_files`).
FOLDER = "folder"


#: Files that together mark a folder as the outputs of a run (``stclusters rank --out``).
_RUN_FOLDER_MARKS = ("manifest.json", "ranking.csv")


def _is_run_folder(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _RUN_FOLDER_MARKS)


def folder_files(path: str | Path) -> list[Path]:
    """The files below a folder that are inputs, in path order: regular files, without
    hidden ones (``.name``, and everything in hidden folders) and without the output folders
    of earlier runs inside it (``--out`` below the input folder), which are no inputs."""
    root = Path(path)
    runs = {d for d in root.rglob("*") if d.is_dir() and _is_run_folder(d)}
    return sorted(f for f in root.rglob("*") if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(root).parts)
                  and not any(parent in runs for parent in f.parents))


def _folder_kind(path: Path) -> str:
    """``openalex``/``openalex-institutions`` for a snapshot (parts in ``updated_date=*``
    folders), :data:`FOLDER` for any other folder with files; an empty one is an error."""
    files = folder_files(path)
    if not files:
        raise InputFormatError(path, "a supported input", "the folder holds no files")
    if any(part.startswith("updated_date=") for f in files
           for part in f.relative_to(path).parts[:-1]):
        return "openalex-institutions" if "institutions" in path.parts[-3:] else "openalex"
    return FOLDER


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def detect_kind(path: str | Path) -> str:
    """Guess the input kind of ``path`` from its first bytes, then its name.

    The published file names of the bulk bundles come first (``g_patent.tsv.zip`` →
    ``patentsview``, ``tls201_part01.zip`` → ``patstat``). Then content wins over the
    name: ``<?xml``/``<!DOCTYPE``/``<us-patent-grant`` → ``uspto-xml``;
    ``[`` or ``{`` → ``openalex`` (``openalex-institutions`` when the first OpenAlex id is an
    institution's ``I…``); ``PAR1`` → ``table`` (Parquet); other text → ``table``
    (CSV). A folder whose files sit in ``updated_date=*`` subfolders is an OpenAlex snapshot
    (``openalex-institutions`` when named ``institutions``); any other folder with files is
    :data:`FOLDER`: its files (:func:`folder_files`) are inputs of their own kinds.

    Raises
    ------
    InputFormatError
        Missing path, unreadable gzip, empty or binary content of no known kind.
    """
    p = Path(path)
    if p.is_dir():
        return _folder_kind(p)
    bundle = bundle_kind_of(p)
    if bundle is not None:  # the published file names are the surest sign
        return bundle
    head = sniff(p, expected="a supported input", n=4096)
    sig = first_significant(head)
    if sig.startswith((b"<?xml", b"<!DOCTYPE", b"<us-patent-grant")):
        return "uspto-xml"
    if sig.startswith((b"[", b"{")):
        # The first OpenAlex id names the entity: W… works, I… institutions.
        m = _OPENALEX_ID.search(head)
        return "openalex-institutions" if m and m.group(1) == b"I" else "openalex"
    if head.startswith(b"PAR1"):
        return "table"
    if not sig:
        raise InputFormatError(p, "a supported input", "file is empty")
    if looks_binary(head):
        raise InputFormatError(p, "a supported input", "binary content of no known kind")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
            raise InputFormatError(p, "a supported input", "neither XML, JSON, Parquet nor "
                                   "UTF-8 text") from exc
    if _base_name(p).endswith(_TABLE_SUFFIXES) or any(d in sig.split(b"\n", 1)[0]
                                                      for d in (b",", b"\t", b";")):
        return "table"
    raise InputFormatError(p, "a supported input",
                           "cannot tell the kind (not XML, JSON, Parquet or delimited text)")


def read_source(
    path: str | Path, *, kind: str = "auto", quarantine: Quarantine, source: str | None = None,
    batch_size: int | None = None,
) -> Iterator[ReadBatch]:
    """Read any supported input as a stream of :class:`ReadBatch`.

    Parameters
    ----------
    path : str or Path
        Input file (plain or gzip) or OpenAlex snapshot folder.
    kind : str
        One of :data:`KINDS`, or ``"auto"`` to use :func:`detect_kind`.
    quarantine : Quarantine
        Receives every record that cannot be used.
    source : str, optional
        For ``table`` only: the source of rows that have none.
    batch_size : int, optional
        Documents per batch (``uspto-xml``, ``openalex``; default 5000) or contributions
        per batch (``table``; default 200000).

    Raises
    ------
    InputFormatError
        Raised here, before the iterator is returned, when the file is missing, not
        readable gzip, or of no detectable kind.
    ParameterError
        Unknown ``kind``, or ``source`` given for a kind that fixes its own source.
    """
    if kind != "auto" and kind not in KINDS:
        raise ParameterError(f"kind must be 'auto' or one of {', '.join(KINDS)}, got {kind!r}")
    p = Path(path)
    if not p.exists():
        raise InputFormatError(p, kind if kind != "auto" else "a supported input", "file not found")
    resolved = detect_kind(p) if kind == "auto" else kind
    if resolved == FOLDER:  # every file checked now, read one after the other
        streams = [read_source(f, quarantine=quarantine, source=source, batch_size=batch_size)
                   for f in folder_files(p)]
        return itertools.chain.from_iterable(streams)
    if source is not None and resolved != "table":
        raise ParameterError(f"source= applies to tables only; {resolved} inputs are "
                             f"{'patents' if resolved == 'uspto-xml' else 'publications'}")
    if resolved == "uspto-xml":
        return read_uspto_xml(p, quarantine=quarantine, batch_size=batch_size or 5000)
    if resolved == "openalex":
        return read_openalex_works(p, quarantine=quarantine, batch_size=batch_size or 5000)
    return read_table(p, quarantine=quarantine, source=source, batch_size=batch_size or 200_000)
