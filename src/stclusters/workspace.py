"""The workspace: inputs read into it once, resumably (``sources → workspace``).

A *workspace* is a DuckDB file that holds what the readers made of the inputs (tables
``inputs``, ``documents``, ``raw_contributions``, ``quarantine``, ``institutions`` and the
staging tables of the bulk bundles, PatentsView ``pv_*`` and PATSTAT ``ps_*``). Each input
file is read in one transaction: a run killed in the middle of a file leaves no trace of
that file, and the next run reads it again from its start. A file whose content (sha256)
is already in the workspace is skipped, whatever its name, so rerunning an ingest, or adding
new files to a workspace, reads only what is new.

:func:`stclusters.rank` ranks from a workspace without reading again: it copies the
workspace into memory (:func:`load_workspace`), numbering the inputs in path order so that
the outputs do not depend on the order in which files were ingested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from stclusters import store
from stclusters._decode_pool import (
    DECODED_KINDS,
    Decoded,
    DecodePool,
    ipc_batches,
    raise_if_refused,
    worker_count,
)
from stclusters._faults import checkpoint
from stclusters._sql import identifier
from stclusters.errors import InputFormatError, ParameterError
from stclusters.sources import (
    FOLDER,
    STAGING_PREFIX,
    bundle_module,
    bundles,
    detect_kind,
    folder_files,
    read_source,
)
from stclusters.sources._openalex_sql import ingest_openalex_part, is_json_lines
from stclusters.sources._quarantine import Quarantine
from stclusters.sources.openalex import read_merged_ids, read_openalex_institutions
from stclusters.sources.table import ingest_table

#: The kind of a snapshot's merged-ids file (``data/merged_ids/works/*.csv.gz``).
MERGED_IDS_KIND = "openalex-merged-ids"

#: The metric of records that a reader rejected before knowing their source.
_KIND_SOURCE = {"uspto-xml": "patent", "openalex": "publication",
                "openalex-institutions": "institution", MERGED_IDS_KIND: "merged_id"}

#: Tables a workspace keeps from ingest to rank (the bundles' staging tables besides).
WORKSPACE_TABLES = ("inputs", "documents", "raw_contributions", "quarantine", "institutions",
                    "merged_ids", "snapshot_checks")


@dataclass(frozen=True)
class Input:
    """One input file: ``kind`` is 'auto', 'uspto-xml', 'openalex', 'table',
    'openalex-institutions' (a lookup that locates OpenAlex affiliations by their
    institution's ``geo`` coordinates), 'patentsview' or 'patstat' (a table file of those
    bulk bundles); ``source`` sets the metric of a generic table without a ``source``
    column."""

    path: str
    kind: str = "auto"
    source: str | None = None


@dataclass
class FileIngest:
    """What happened to one input file in :func:`ingest_into`."""

    path: str
    kind: str
    status: str  # 'read' or 'skipped' (its content is already in the workspace)
    records_read: int = 0
    rejected: int = 0
    seconds: float = 0.0
    same_as: str | None = None  # for 'skipped': the workspace's file of the same content


@dataclass
class IngestReport:
    """The files of one :func:`ingest_into` call, in the order they were taken."""

    files: list[FileIngest] = field(default_factory=list)

    @property
    def n_read(self) -> int:
        return sum(f.status == "read" for f in self.files)

    @property
    def n_skipped(self) -> int:
        return sum(f.status == "skipped" for f in self.files)


def as_inputs(inputs: Any) -> list[Input]:
    """Paths, :class:`Input` s, or a mix, as a list of :class:`Input`."""
    if isinstance(inputs, (str, Path, Input)):
        inputs = [inputs]
    return [i if isinstance(i, Input) else Input(str(i)) for i in inputs]


def expand_inputs(inputs: Sequence[Input]) -> list[tuple[Input, str]]:
    """Every input file with its kind, in resolved path order; fails fast, before anything
    is read or written, on missing or unknown inputs.

    A folder of input files is its files (each of its own kind, or of the kind given);
    an OpenAlex snapshot folder is its part files (see
    :func:`stclusters.sources.openalex.snapshot_parts`), so that each part is an input that
    a resumed ingest can skip.
    """
    if not inputs:
        raise ParameterError("no input given",
                             hint="pass USPTO XML, OpenAlex works, PatentsView or PATSTAT "
                                  "files, or contribution tables")
    out: list[tuple[Input, str]] = []
    for item in sorted(inputs, key=lambda i: (str(Path(i.path).resolve()), i.kind)):
        p = Path(item.path)
        if not p.exists():
            from stclusters.engines._spark_remote import is_uri  # noqa: PLC0415

            raise InputFormatError(
                item.path if is_uri(item.path) else p,
                item.kind if item.kind != "auto" else "an input file",
                "a URI is read by the Spark engine only" if is_uri(item.path)
                else "no such file or directory",
                hint="URIs are read by `stclusters rank --engine spark` (engine='spark' "
                     "in Python); here, give a local path"
                if is_uri(item.path) else None)
        kind = detect_kind(p) if item.kind == "auto" or p.is_dir() else item.kind
        if kind == FOLDER:  # a folder of input files: each one is an input of its own kind
            for f in folder_files(p):
                if _unused_bundle_table(f):  # a whole PATSTAT download: tls211 & co. unread
                    continue
                one = Input(str(f), kind=item.kind, source=item.source)
                out.append((one, _folder_file_kind(p, f) if item.kind == "auto" else item.kind))
        elif p.is_dir() and kind in ("openalex", "openalex-institutions"):
            out.extend((Input(str(f), kind=k, source=item.source), k) for f, k in _parts(p))
            out.extend((Input(str(f), kind=MERGED_IDS_KIND), MERGED_IDS_KIND)
                       for f in _merged_id_files(p))
        else:
            out.append((item, kind))
    return out


def _unused_bundle_table(f: Path) -> bool:
    """Is ``f`` a table file of a bulk bundle that its reader does not use (PATSTAT's
    ``tls211_part01.zip``…)? In a folder such files are passed over, not refused."""
    return any(getattr(module, "other_table", lambda _: None)(f) is not None
               for _, module in bundles())


def _parts(folder: Path) -> list[tuple[Path, str]]:
    from stclusters.sources import openalex  # noqa: PLC0415

    return openalex.snapshot_parts(folder)


def _merged_id_files(folder: Path) -> list[Path]:
    from stclusters.sources import openalex  # noqa: PLC0415

    return openalex.merged_id_files(folder)


def _folder_file_kind(folder: Path, f: Path) -> str:
    """The kind of a file found in an input folder; one of no kind (a README) is refused
    with a hint to name the input files themselves."""
    try:
        return detect_kind(f)
    except InputFormatError as exc:
        exc.hint = (f"every file in the folder {folder} is read as an input: give the input "
                    f"files themselves rather than the folder, or move {f.name} out")
        raise


def _read_one(con: duckdb.DuckDBPyConnection, p: Path, kind: str, *, input_id: int,
              source: str | None, q: Quarantine, batch_rows: int,
              on_batch: Callable[[str, int], None] | None) -> int:
    """Read one input into the workspace; return the records read (accepted + quarantined)."""
    module = bundle_module(kind)
    if module is not None:  # a table file of a bulk bundle: staged, assembled at rank time
        n_read = module.stage(con, p, input_id=input_id, quarantine=q)
        if on_batch:
            on_batch(str(p), n_read)
        return n_read
    if kind == MERGED_IDS_KIND:  # works merged away: filtered when counting
        table = read_merged_ids([p])
        store.append(con, "merged_ids", table, input_id=input_id)
        if on_batch:
            on_batch(str(p), table.num_rows)
        return table.num_rows
    if kind == "openalex-institutions":
        table = read_openalex_institutions(p, quarantine=q)
        store.append(con, "institutions", table, input_id=input_id)
        if on_batch:
            on_batch(str(p), table.num_rows)
        return table.num_rows + q.count
    if kind == "table":  # the fast path: file → workspace in SQL
        n_rows = ingest_table(con, p, input_id=input_id, quarantine=q, source=source)
        if on_batch:
            on_batch(str(p), n_rows)
        return n_rows + q.count
    if _sql_path(kind, p):  # OpenAlex JSON Lines: mapped in SQL, odd lines by the Python reader
        return ingest_openalex_part(con, p, input_id=input_id, quarantine=q, on_batch=on_batch)
    n_docs = 0
    for batch in read_source(p, kind=kind, quarantine=q, source=source, batch_size=batch_rows):
        store.append(con, "documents", batch.documents, input_id=input_id)
        store.append(con, "raw_contributions",
                     store.with_doc_type(batch.contributions, batch.documents), input_id=input_id)
        n_docs += batch.documents.num_rows
        if on_batch:
            on_batch(str(p), batch.documents.num_rows)
    return n_docs + q.count


def _sql_path(kind: str, p: Path) -> bool:
    """Is ``p`` read by an SQL fast path in the main process (OpenAlex works in JSON Lines)
    rather than decoded in Python (possibly by a worker process)?"""
    return kind == "openalex" and is_json_lines(p)


def _decoded_in_python(kind: str, p: Path) -> bool:
    """Does ``p`` go to the decode pool (:data:`DECODED_KINDS`, no SQL fast path)?"""
    return kind in DECODED_KINDS and not _sql_path(kind, p)


def size_and_sha256(p: Path) -> tuple[int, str]:
    """Bytes and sha256 of an input file (folders are expanded into their files before)."""
    return p.stat().st_size, store.file_sha256(p)


def _known_contents(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """sha256 → path of the files already in the workspace."""
    return {sha: path for sha, path in con.execute(
        "SELECT sha256, arg_min(path, input_id) FROM inputs GROUP BY sha256").fetchall()}


def _next_input_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(store.scalar(con, "SELECT coalesce(max(input_id) + 1, 0) FROM inputs"))


def _store_quarantine(con: duckdb.DuckDBPyConnection, qt: pa.Table, *, input_id: int,
                      default_source: str | None) -> None:
    if default_source and qt.num_rows:
        filled = pa.compute.fill_null(qt.column("source"), default_source)
        qt = qt.set_column(qt.schema.get_field_index("source"), "source", filled)
    store.append(con, "quarantine", qt, input_id=input_id)


def _default_source(kind: str, item: Input, p: Path) -> str | None:
    module = bundle_module(kind)
    if module is not None:
        return module.SOURCES_OF.get(module.table_of(p) or "", "patent")
    return item.source or _KIND_SOURCE.get(kind)


def ingest_into(con: duckdb.DuckDBPyConnection, checked: Iterable[tuple[Input, str]], *,
                batch_rows: int = 200_000, on_batch: Callable[[str, int], None] | None = None,
                on_file: Callable[[FileIngest], None] | None = None) -> IngestReport:
    """Read each input into the workspace ``con``, one transaction per file, in the given
    order; document files (XML, JSON) are decoded ahead by worker processes when there are
    several (:mod:`stclusters._decode_pool`, ``$STCLUSTERS_WORKERS``).

    Parameters
    ----------
    checked : iterable of (Input, kind)
        From :func:`expand_inputs`.
    batch_rows : int
        Documents per batch of the document readers.
    on_batch, on_file : callables, optional
        Progress: after each batch ``(file, records)``; after each file, its
        :class:`FileIngest`.

    Returns
    -------
    IngestReport
        Per file: read or skipped (content already in the workspace), records, rejected.
    """
    report = IngestReport()
    known = _known_contents(con)
    plan = []  # (item, kind, size, sha, the workspace's file of the same content or None)
    for item, kind in checked:
        size, sha = size_and_sha256(Path(item.path))
        plan.append((item, kind, size, sha, known.get(sha)))
        known.setdefault(sha, str(item.path))
    pooled = {str(item.path) for item, kind, _, _, same in plan
              if same is None and _decoded_in_python(kind, Path(item.path))}
    jobs = [(str(item.path), kind, item.source) for item, kind, _, _, same in plan
            if str(item.path) in pooled]
    n_workers = worker_count(len(jobs), sum(size for item, kind, size, _, same in plan
                                            if str(item.path) in pooled))
    pool = DecodePool(jobs, workers=n_workers, batch_rows=batch_rows) if n_workers > 1 else None
    try:
        for item, kind, size, sha, same in plan:
            t0 = time.perf_counter()
            if same is not None:
                done = FileIngest(str(item.path), kind, "skipped", same_as=same)
            else:
                decoded = pool.result(str(item.path)) if pool and str(item.path) in pooled else None
                done = _ingest_file(con, item, kind, size=size, sha=sha, batch_rows=batch_rows,
                                    on_batch=on_batch, decoded=decoded)
            done.seconds = round(time.perf_counter() - t0, 3)
            report.files.append(done)
            if on_file:
                on_file(done)
    finally:
        if pool is not None:
            pool.close()
    check_snapshots(con, [Path(item.path) for item, kind, *_ in plan
                          if kind in ("openalex", "openalex-institutions")])
    return report


def _entity_dir(part: Path) -> Path | None:
    """The entity folder (``data/works``…) of a snapshot part in an ``updated_date=`` folder."""
    return part.parent.parent if part.parent.name.startswith("updated_date=") else None


def check_snapshots(con: duckdb.DuckDBPyConnection, parts: Sequence[Path]) -> None:
    """Table ``snapshot_checks``: for each snapshot entity folder among ``parts``, what its
    manifest says against the files (:func:`stclusters.sources.openalex.check_manifest`:
    missing, incomplete, unlisted parts) and against the records read from each part (a
    ``record count differs`` finding). Replaced for a folder each time it is ingested."""
    from stclusters.sources import openalex  # noqa: PLC0415

    folders = sorted({d for d in map(_entity_dir, parts) if d is not None})
    for folder in folders:
        findings = openalex.check_manifest(folder)
        counts = openalex.manifest_record_counts(folder)
        read = {Path(path).relative_to(folder).as_posix(): n for path, n in con.execute(
            "SELECT path, records_read FROM inputs WHERE starts_with(path, ?)",
            [str(folder) + "/"]).fetchall()}
        findings += [{"part": rel, "problem": "record count differs", "expected": n,
                      "found": read[rel]} for rel, n in sorted(counts.items())
                     if rel in read and read[rel] != n]
        con.execute("DELETE FROM snapshot_checks WHERE entity_dir = ?", [str(folder)])
        if findings:
            con.executemany("INSERT INTO snapshot_checks VALUES (?, ?, ?, ?, ?)",
                            [[str(folder), f["part"], f["problem"],
                              None if f["expected"] is None else str(f["expected"]),
                              None if f["found"] is None else str(f["found"])]
                             for f in findings])


def workspace_snapshot_findings(path: str | Path) -> list[dict[str, Any]]:
    """:func:`snapshot_findings` of a workspace file (opened read-only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return snapshot_findings(con)
    finally:
        con.close()


def snapshot_findings(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of ``snapshot_checks``, for the run manifest, in a stable order."""
    cols = ("entity_dir", "part", "problem", "expected", "found")
    return [dict(zip(cols, r)) for r in con.execute(
        "SELECT entity_dir, part, problem, expected, found FROM snapshot_checks ORDER BY ALL"
    ).fetchall()]


def _apply_decoded(con: duckdb.DuckDBPyConnection, p: Path, decoded: Decoded, *, input_id: int,
                   on_batch: Callable[[str, int], None] | None) -> tuple[int, pa.Table]:
    """Append what a worker decoded from ``p``; return its records read and quarantine."""
    raise_if_refused(decoded)
    for table, ipc in decoded.tables:
        for data in ipc_batches(ipc):
            store.append(con, table, data, input_id=input_id)
        Path(ipc).unlink()
    if on_batch:
        for n in decoded.batches:
            on_batch(str(p), n)
    return decoded.n_read, decoded.quarantine


def _ingest_file(con: duckdb.DuckDBPyConnection, item: Input, kind: str, *, size: int, sha: str,
                 batch_rows: int, on_batch: Callable[[str, int], None] | None,
                 decoded: Decoded | None = None) -> FileIngest:
    """One file in one transaction: all of it is in the workspace, or nothing."""
    p = Path(item.path)
    input_id = _next_input_id(con)
    con.begin()
    try:
        if decoded is not None:
            n_read, qt = _apply_decoded(con, p, decoded, input_id=input_id, on_batch=on_batch)
        else:
            q = Quarantine()
            n_read = _read_one(con, p, kind, input_id=input_id, source=item.source, q=q,
                               batch_rows=batch_rows, on_batch=on_batch)
            qt = q.to_table()
        store.add_input(con, store.InputFile(input_id, str(item.path), kind, size, sha),
                        records_read=n_read)
        _store_quarantine(con, qt, input_id=input_id, default_source=_default_source(kind, item, p))
        checkpoint(f"ingest:before-commit:{p.name}")  # tests kill the process here
        con.commit()
    except BaseException:
        try:
            con.rollback()
        except duckdb.Error:
            pass  # the transaction is already gone (the connection broke)
        raise
    return FileIngest(str(item.path), kind, "read", records_read=n_read, rejected=qt.num_rows)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """From ingested inputs to what the counting takes: the bundles' documents and
    contributions assembled from their staging tables, then one version of each document
    kept (:func:`stclusters.store.quarantine_duplicate_documents`)."""
    kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM inputs").fetchall()}
    for kind, module in bundles():
        if kind in kinds:
            module.assemble(con)
    store.quarantine_duplicate_documents(con)


def _staging_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    prefixes = tuple(STAGING_PREFIX.values())
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?",
        [schema]).fetchall() if r[0].startswith(prefixes))


def load_workspace(path: str | Path, con: duckdb.DuckDBPyConnection) -> None:
    """Copy a workspace's ingested tables into ``con`` (a fresh :func:`store.connect`),
    with the inputs numbered in path order.

    Raises
    ------
    InputFormatError
        ``path`` is no workspace (not a DuckDB file, or none written by ``ingest``), or
        another process holds it.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(p, "a workspace", "no such file",
                               hint="create it with: stclusters ingest INPUT... --workspace "
                                    + str(p))
    try:
        con.execute("ATTACH ? AS _src (READ_ONLY)", [str(p)])
    except duckdb.Error as exc:
        why = "in use by another process" if "lock" in str(exc).lower() else f"not a workspace ({exc})"
        raise InputFormatError(p, "a workspace", why) from exc
    try:
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = '_src'"
        ).fetchall()}
        missing = [t for t in WORKSPACE_TABLES if t not in have]
        if missing:
            raise InputFormatError(p, "a workspace", "not a workspace: no table "
                                   + ", ".join(missing))
        # New ids in path order: outputs never depend on the order files were ingested in.
        con.execute("""CREATE TEMP TABLE _renumber AS
            SELECT input_id AS old_id, (row_number() OVER (ORDER BY path, sha256, input_id) - 1)::INTEGER
                   AS new_id FROM _src.inputs""")
        for table in (*WORKSPACE_TABLES, *_staging_tables(con, "_src")):
            _copy_renumbered(con, table)
        con.execute("DROP TABLE _renumber")
    finally:
        con.execute("DETACH _src")


def _copy_renumbered(con: duckdb.DuckDBPyConnection, table: str) -> None:
    t = identifier(table)
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = '_src' "
        "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
    select = ", ".join("m.new_id AS input_id" if c == "input_id" else f"s.{identifier(c)}"
                       for c in cols)
    order = "ORDER BY m.new_id, s.rowid" if "input_id" in cols else ""
    con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute(f"CREATE TABLE {t} AS SELECT {select} FROM _src.{t} s "
                f"LEFT JOIN _renumber m ON m.old_id = s.input_id {order}"
                if "input_id" in cols else f"CREATE TABLE {t} AS SELECT * FROM _src.{t}")


def ingest(inputs: Any, *, workspace: str | Path, batch_rows: int = 200_000,
           on_batch: Callable[[str, int], None] | None = None,
           on_file: Callable[[FileIngest], None] | None = None) -> IngestReport:
    """Add input files to a workspace file (created if missing), skipping what it holds.

    Parameters
    ----------
    inputs : path, Input, or a sequence of them
        As for :func:`stclusters.rank`, and PatentsView / PATSTAT table files or folders.
    workspace : path
        The DuckDB file. Rank from it with ``stclusters.rank([], workspace=...)``.

    Returns
    -------
    IngestReport

    Examples
    --------
    >>> stclusters.ingest(["g_inventor_disambiguated.tsv.zip", "g_patent.tsv.zip"],
    ...                   workspace="pv.duckdb")                       # doctest: +SKIP
    >>> stclusters.rank([], workspace="pv.duckdb").write("out/")       # doctest: +SKIP
    """
    checked = expand_inputs(as_inputs(inputs))
    con = open_workspace(workspace)
    try:
        return ingest_into(con, checked, batch_rows=batch_rows, on_batch=on_batch,
                           on_file=on_file)
    finally:
        con.close()


def open_workspace(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (or create) a workspace file for ingesting.

    Raises
    ------
    InputFormatError
        Another process holds the file, or it is not a DuckDB database.
    """
    p = Path(path)
    try:
        return store.connect(p)
    except duckdb.Error as exc:
        why = ("in use by another process (an ingest or rank running on it?)"
               if "lock" in str(exc).lower() else f"not a workspace ({exc})")
        raise InputFormatError(p, "a workspace", why) from exc
