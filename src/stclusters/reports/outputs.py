"""Files a run writes, each atomically; the manifest last, so its presence means complete.

A run holds the folder's lock (:mod:`stclusters.reports._lock`) while it writes; every CSV
goes through :func:`stclusters.reports.csv_writer.write_csv` (formula cells neutralised). On
any error or interrupt the files this run already put in place are removed again; see
``docs/reliability.md``.

=================== =====================================================================
file                content
=================== =====================================================================
ranking.csv         the published clusters (top N), one row per cluster, rank order
ranking.parquet     the same, typed
clusters.parquet    every S&T cluster found, ranked or not
footprints.geojson  footprint polygons (RFC 7946, lon/lat) of the ranked clusters, rank order
points.parquet      weighted points with source cluster, core flag and S&T cluster id
quarantine.csv      rejected records: file, position, source, field, reason, excerpt
profiles.csv        profiles of the ranked clusters: top applicants, institutions, fields,
                    economies, collaboration, growth (:mod:`stclusters.analysis.profiles`)
profiles.parquet    the same, typed
manifest.json       inputs (path, size, sha256), parameters, versions, accounting, outcome
workspace.duckdb    the embedded store with every table of the run (not byte-stable)
=================== =====================================================================
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stclusters._sql import identifier
from stclusters.analysis import profiles
from stclusters._faults import checkpoint
from stclusters.errors import StclustersError
from stclusters.reports._atomic import atomic_path, write_text
from stclusters.reports.csv_writer import write_csv
from stclusters.reports._lock import LOCK_NAME, out_dir_lock
from stclusters.reports.geojson import footprints_feature_collection, write_geojson
from stclusters.reports._tables import labelled, put_file, write_parquet
from stclusters.store import fetch_arrow, file_sha256, visible_tables


#: Every file a run writes. A folder holding ``manifest.json``, or nothing but these (and
#: the ``.<name>.*.partial`` temporaries of an interrupted write), is a run folder of ours.
OUTPUT_NAMES = ("ranking.csv", "ranking.parquet", "clusters.parquet", "footprints.geojson",
                "points.parquet", "quarantine.csv", "profiles.csv", "profiles.parquet",
                "manifest.json", "workspace.duckdb")


#: Views made later from a run folder (``stclusters report``, ``stclusters figure``): they
#: belong to the run they were made from, so a new run into the folder removes them.
VIEW_NAMES = ("report.html", "figures")


def _is_ours(name: str) -> bool:
    """An output name, a view of the run, the folder's lock, or a temporary of ours
    (``.<output>.*.partial``, and DuckDB's ``.partial.wal`` beside a workspace being
    written)."""
    return (name in OUTPUT_NAMES or name in VIEW_NAMES or name == LOCK_NAME
            or (".partial" in name and any(name.startswith(f".{o}.")
                                           for o in (*OUTPUT_NAMES, *VIEW_NAMES))))


def _remove_output(path: Path) -> None:
    """Remove one earlier output; the ``figures`` folder loses only figure files (and
    goes when that leaves it empty): whatever else a user put there stays."""
    if not path.is_dir():
        path.unlink(missing_ok=True)
        return
    from stclusters.reports.figures import FIGURE_STEMS  # noqa: PLC0415 - matplotlib

    for item in path.iterdir():
        if item.is_file() and item.name.split(".")[0] in FIGURE_STEMS:
            item.unlink(missing_ok=True)
    if not any(path.iterdir()):
        path.rmdir()


def _replaced_inputs(out: Path, inputs: Sequence[str | Path]) -> list[str]:
    """Inputs that a run into ``out`` would remove or overwrite: files directly in ``out``
    named like an output (a contributions table called ``points.parquet``)."""
    here = out.resolve()
    hit = []
    for item in map(Path, inputs):
        files = (sorted(item.iterdir()) if item.is_dir() and item.resolve() == here else [item])
        hit += [str(f) for f in files
                if f.is_file() and f.resolve().parent == here and _is_ours(f.name)]
    return hit


def check_out_dir(out: str | Path, *, force: bool = False, inputs: Sequence[str | Path] = ()
                  ) -> None:
    """Refuse an output folder that :func:`prepare_out_dir` would refuse, changing nothing
    (the command line asks before a run, so that a long run does not end in this error).

    Raises
    ------
    StclustersError
        ``out`` is a file, a non-empty folder of something else (without ``force``), or a
        folder where an output would replace one of ``inputs`` (even with ``force``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StclustersError(f"{out}: the output path is a file, not a folder",
                              hint="give --out a folder (new, empty, or of an earlier run)")
    replaced = _replaced_inputs(out, inputs) if out.is_dir() else []
    if replaced:
        raise StclustersError(f"{out}: the outputs would replace the input {replaced[0]}"
                              + (f" and {len(replaced) - 1} more" if len(replaced) > 1 else ""),
                              hint="choose another --out folder")
    if not out.is_dir() or force or (out / "manifest.json").is_file():
        return
    foreign = sorted(e.name for e in out.iterdir() if not _is_ours(e.name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise StclustersError(f"{out}: the output folder holds files of no stclusters run "
                              f"({shown})", hint="choose a new or empty folder, or pass --force "
                              "(API: write(..., force=True)) to write beside them")


def prepare_out_dir(out: Path, *, force: bool = False) -> None:
    """Make ``out`` ready for a run's files; never leave an earlier run's outputs beside them.

    A new or empty folder is used as is. A run folder of ours (it has ``manifest.json``, or
    holds only our output names) loses every output file of the earlier run first, so a file
    this run does not write cannot survive from that run. Any other non-empty folder is
    refused (:func:`check_out_dir`), unless ``force``: then our output names are removed and
    other files are left.
    """
    check_out_dir(out, force=force)
    out.mkdir(parents=True, exist_ok=True)
    entries = sorted(e.name for e in out.iterdir())
    # The manifest first: if removal stops half-way, no manifest vouches for what is left.
    for name in ["manifest.json", *(n for n in entries
                                    if _is_ours(n) and n not in ("manifest.json", LOCK_NAME))]:
        _remove_output(out / name)


def _typed(table: pa.Table) -> pa.Table:
    """Columns that are all null in an empty result (Arrow type ``null``) become strings, so
    that a file's schema does not depend on whether clusters were found."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def write_outputs(con: duckdb.DuckDBPyConnection, out_dir: str | Path, manifest: dict[str, Any],
                  *, eps_km: float, label: str | None = None, force: bool = False
                  ) -> dict[str, Path]:
    """Write every output file of a run into ``out_dir``; return name → path.

    ``out_dir`` is prepared by :func:`prepare_out_dir` (``force`` as there): an earlier run's
    outputs are removed first, a folder of other files is refused.
    """
    out = Path(out_dir)
    inputs = [i["path"] for i in manifest.get("inputs", [])]
    check_out_dir(out, force=force, inputs=inputs)  # before the lock makes the folder
    with out_dir_lock(out):
        prepare_out_dir(out, force=force)
        written: list[Path] = []
        try:
            return _write_all(con, out, manifest, eps_km=eps_km, label=label, written=written)
        except BaseException:
            # An error, Ctrl-C or SIGTERM half-way: no manifest was written, and the files
            # this run already put in place go too, so nothing of it looks complete.
            for path in reversed(written):
                with contextlib.suppress(OSError):
                    path.unlink()
            raise


def _write_all(con: duckdb.DuckDBPyConnection, out: Path, manifest: dict[str, Any], *,
               eps_km: float, label: str | None, written: list[Path]) -> dict[str, Path]:
    """The files of :func:`write_outputs`, the manifest last (it hashes what this run
    wrote: the folder's lock keeps every other run out meanwhile)."""
    paths: dict[str, Path] = {}
    ranking = labelled(_typed(fetch_arrow(con, "SELECT * FROM ranking ORDER BY rank")), label)
    clusters = labelled(_typed(fetch_arrow(
        con, "SELECT * EXCLUDE (stc) FROM clusters ORDER BY rank")), label)
    # Typed casts: a point outside every cluster has nulls here, not NaN.
    points = labelled(fetch_arrow(con, """
        SELECT p.source, p.lat, p.lon, p.weight, p.n_contributions, p.src_label, p.is_core,
               c.cluster_id::VARCHAR AS cluster_id, c.rank::INTEGER AS cluster_rank
        FROM points p LEFT JOIN clusters c ON c.stc = p.stc
        ORDER BY p.source, p.lat, p.lon"""), label)
    quarantine = labelled(fetch_arrow(con, "SELECT file, position, source, field, reason, excerpt "
                                         "FROM quarantine ORDER BY ALL"), label)
    profiles = labelled(_profiles(con), label)
    for name, table, writer in (("ranking.csv", ranking, write_csv),
                                ("ranking.parquet", ranking, write_parquet),
                                ("clusters.parquet", clusters, write_parquet),
                                ("points.parquet", points, write_parquet),
                                ("quarantine.csv", quarantine, write_csv),
                                ("profiles.csv", profiles, write_csv),
                                ("profiles.parquet", profiles, write_parquet)):
        paths[name] = put_file(out / name, functools.partial(writer, table, out / name), written)
    footprints = _footprints(con, eps_km=eps_km, label=label)
    paths["footprints.geojson"] = put_file(out / "footprints.geojson", functools.partial(
        write_geojson, out / "footprints.geojson", footprints), written)
    paths["workspace.duckdb"] = put_file(out / "workspace.duckdb", functools.partial(
        _save_workspace, con, out / "workspace.duckdb", label=label), written)
    manifest = dict(manifest)
    # The DuckDB file's bytes depend on its page layout, not only on the data: listed, but
    # without size or hash, so the manifest itself stays byte-identical across reruns.
    manifest["outputs"] = {
        name: ({"path": name, "byte_stable": False} if name == "workspace.duckdb" else
               {"path": name, "size_bytes": p.stat().st_size, "sha256": file_sha256(p)})
        for name, p in sorted(paths.items())}
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    paths["manifest.json"] = put_file(out / "manifest.json", functools.partial(
        write_text, out / "manifest.json", text), written)
    return paths


#: Tables kept in ``workspace.duckdb``; ``raw_contributions`` is left out: ``contributions``
#: holds every row of it, located, with status and weight.
WORKSPACE_TABLES = ("inputs", "documents", "contributions", "geocodes", "quarantine", "points",
                    "clusters", "ranking", "profiles", "runs")


def _profiles(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Table ``profiles`` of the ranked clusters, built now if the run has none yet (the
    pipeline leaves it to the first :meth:`RankResult.write` or ``profile()`` call)."""
    if "profiles" not in set(visible_tables(con)):
        return profiles.build_profiles_on(con)
    return fetch_arrow(con, f"SELECT * FROM profiles ORDER BY {profiles.ORDER_BY}").cast(
        profiles.PROFILE_SCHEMA)



def _save_workspace(con: duckdb.DuckDBPyConnection, path: Path, *, label: str | None) -> None:
    """Copy the run's tables into a DuckDB file (atomically); a label (``SYNTHETIC``) goes
    into a table ``data_label`` of its own, so the file says what it holds."""
    present = set(visible_tables(con))
    with atomic_path(path) as tmp:
        tmp.unlink()  # DuckDB creates the file itself
        # DuckDB's log beside the file: gone after a clean DETACH, not after a failure (a
        # full disk left a 76 kB ``.partial.wal`` behind).
        wal = tmp.with_name(tmp.name + ".wal")
        try:
            con.execute("ATTACH ? AS _ws", [str(tmp)])
            try:
                for table in WORKSPACE_TABLES:
                    if table in present:
                        name = identifier(table)
                        con.execute(f"CREATE TABLE _ws.{name} AS SELECT * FROM {name}")
                if label:
                    con.execute("CREATE TABLE _ws.data_label AS SELECT ?::VARCHAR AS data_label",
                                [label])
                checkpoint("attach:workspace.duckdb")
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # the first error is the one to tell
                    con.execute("DETACH _ws")
                raise
            con.execute("DETACH _ws")
        finally:
            wal.unlink(missing_ok=True)


def _footprints(con: duckdb.DuckDBPyConnection, *, eps_km: float, label: str | None) -> dict:
    cores = fetch_arrow(con, """
        SELECT p.lat, p.lon, c.cluster_id FROM points p JOIN clusters c ON c.stc = p.stc
        WHERE p.is_core AND c.cluster_id IN (SELECT cluster_id FROM ranking)
        ORDER BY c.cluster_id, p.lat, p.lon""")
    props = {}
    for row in fetch_arrow(con, "SELECT * FROM ranking ORDER BY rank").to_pylist():
        if label:
            row = {"data_label": label, **row}
        props[row["cluster_id"]] = {k: (None if isinstance(v, float) and v != v else v)
                                    for k, v in row.items()}
    return footprints_feature_collection(
        cores.column("lat").to_numpy(), cores.column("lon").to_numpy(),
        cores.column("cluster_id").to_numpy(zero_copy_only=False),
        eps_km=eps_km, properties=props, order=list(props))
