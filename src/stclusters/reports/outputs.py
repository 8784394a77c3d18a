"""Files a run writes, each atomically; the manifest last, so its presence means complete.

=================== =====================================================================
file                content
=================== =====================================================================
ranking.csv         the published clusters (top N), one row per cluster, rank order
ranking.parquet     the same, typed
clusters.parquet    every S&T cluster found, ranked or not
footprints.geojson  footprint polygons (RFC 7946, lon/lat) of the ranked clusters, rank order
points.parquet      weighted points with source cluster, core flag and S&T cluster id
quarantine.csv      rejected records: file, position, source, field, reason, excerpt
manifest.json       inputs (path, size, sha256), parameters, versions, accounting, outcome
workspace.duckdb    the embedded store with every table of the run (not byte-stable)
=================== =====================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters._sql import identifier
from stclusters.errors import StclustersError
from stclusters.reports._atomic import atomic_path, write_text
from stclusters.reports.csv_writer import write_csv
from stclusters.reports.geojson import footprints_feature_collection, write_geojson
from stclusters.store import fetch_arrow, file_sha256


def _write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        # No statistics timestamps in Parquet; fixed compression: byte-identical reruns.
        pq.write_table(table, tmp, compression="zstd")


#: Every file a run writes. A folder holding ``manifest.json``, or nothing but these (and
#: the ``.<name>.*.partial`` temporaries of an interrupted write), is a run folder of ours.
OUTPUT_NAMES = ("ranking.csv", "ranking.parquet", "clusters.parquet", "footprints.geojson",
                "points.parquet", "quarantine.csv", "manifest.json", "workspace.duckdb")


def _is_ours(name: str) -> bool:
    return name in OUTPUT_NAMES or (".partial" in name and any(
        name.startswith(f".{o}.") for o in OUTPUT_NAMES))


def check_out_dir(out: str | Path, *, force: bool = False) -> None:
    """Refuse an output folder that :func:`prepare_out_dir` would refuse, changing nothing
    (the command line asks before a run, so that a long run does not end in this error).

    Raises
    ------
    StclustersError
        ``out`` is a file, or a non-empty folder of something else (without ``force``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StclustersError(f"{out}: the output path is a file, not a folder",
                              hint="give --out a folder (new, empty, or of an earlier run)")
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
    for name in ["manifest.json", *(n for n in entries if _is_ours(n) and n != "manifest.json")]:
        (out / name).unlink(missing_ok=True)


def _label(table: pa.Table, label: str | None) -> pa.Table:
    """Prefix a ``data_label`` column (e.g. SYNTHETIC) so no row can be mistaken for real."""
    if not label:
        return table
    return table.add_column(0, "data_label", pa.array([label] * table.num_rows, pa.string()))


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
    prepare_out_dir(out, force=force)
    paths: dict[str, Path] = {}
    ranking = _label(_typed(fetch_arrow(con, "SELECT * FROM ranking ORDER BY rank")), label)
    clusters = _label(_typed(fetch_arrow(
        con, "SELECT * EXCLUDE (stc) FROM clusters ORDER BY rank")), label)
    # Typed casts: a point outside every cluster has nulls here, not NaN.
    points = _label(fetch_arrow(con, """
        SELECT p.source, p.lat, p.lon, p.weight, p.n_contributions, p.src_label, p.is_core,
               c.cluster_id::VARCHAR AS cluster_id, c.rank::INTEGER AS cluster_rank
        FROM points p LEFT JOIN clusters c ON c.stc = p.stc
        ORDER BY p.source, p.lat, p.lon"""), label)
    quarantine = _label(fetch_arrow(con, "SELECT file, position, source, field, reason, excerpt "
                                         "FROM quarantine ORDER BY ALL"), label)
    for name, table, writer in (("ranking.csv", ranking, write_csv),
                                ("ranking.parquet", ranking, _write_parquet),
                                ("clusters.parquet", clusters, _write_parquet),
                                ("points.parquet", points, _write_parquet),
                                ("quarantine.csv", quarantine, write_csv)):
        writer(table, out / name)
        paths[name] = out / name
    paths["footprints.geojson"] = out / "footprints.geojson"
    write_geojson(paths["footprints.geojson"], _footprints(con, eps_km=eps_km, label=label))
    paths["workspace.duckdb"] = out / "workspace.duckdb"
    _save_workspace(con, paths["workspace.duckdb"], label=label)
    manifest = dict(manifest)
    # The DuckDB file's bytes depend on its page layout, not only on the data: listed, but
    # without size or hash, so the manifest itself stays byte-identical across reruns.
    manifest["outputs"] = {
        name: ({"path": name, "byte_stable": False} if name == "workspace.duckdb" else
               {"path": name, "size_bytes": p.stat().st_size, "sha256": file_sha256(p)})
        for name, p in sorted(paths.items())}
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True,
                                                 ensure_ascii=False, default=str) + "\n")
    paths["manifest.json"] = out / "manifest.json"
    return paths


#: Tables kept in ``workspace.duckdb``; ``raw_contributions`` is left out: ``contributions``
#: holds every row of it, located, with status and weight.
WORKSPACE_TABLES = ("inputs", "documents", "contributions", "geocodes", "quarantine", "points",
                    "clusters", "ranking", "runs")


def _save_workspace(con: duckdb.DuckDBPyConnection, path: Path, *, label: str | None) -> None:
    """Copy the run's tables into a DuckDB file (atomically); a label (``SYNTHETIC``) goes
    into a table ``data_label`` of its own, so the file says what it holds."""
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    with atomic_path(path) as tmp:
        tmp.unlink()  # DuckDB creates the file itself
        con.execute("ATTACH ? AS _ws", [str(tmp)])
        try:
            for table in WORKSPACE_TABLES:
                if table in present:
                    name = identifier(table)
                    con.execute(f"CREATE TABLE _ws.{name} AS SELECT * FROM {name}")
            if label:
                con.execute("CREATE TABLE _ws.data_label AS SELECT ?::VARCHAR AS data_label",
                            [label])
        finally:
            con.execute("DETACH _ws")


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
