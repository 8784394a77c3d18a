"""Open a finished run folder (the ``--out`` of ``stclusters rank``) for reading: its
``workspace.duckdb`` attached read-only to an in-memory DuckDB, each table behind a view, so
that analyses can add tables of their own without touching the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from stclusters._sql import identifier
from stclusters.errors import StclustersError

_HINT = "give the --out folder of a finished `stclusters rank` run"


def open_run(run_dir: str | Path, *, need: tuple[str, ...] = ("ranking", "clusters"),
             ) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any] | None, str | None]:
    """``(connection, manifest or None, data label or None)`` of a run folder.

    The connection is in memory; the run's tables are views over the read-only attached
    workspace (the caller closes the connection).

    Raises
    ------
    StclustersError
        No ``workspace.duckdb``, a workspace that cannot be opened, or one without the
        tables in ``need``.
    """
    path = Path(run_dir) / "workspace.duckdb"
    if (Path(run_dir) / "editions.json").is_file():
        editions = sorted(p.name for p in Path(run_dir).iterdir()
                          if (p / "manifest.json").is_file())
        raise StclustersError(
            f"{run_dir}: an editions folder, not one run",
            hint="give one edition's run folder" + (
                f", e.g. {Path(run_dir) / editions[-1]}" if editions else ""))
    if not path.is_file():
        raise StclustersError(f"{run_dir}: not a run folder (no workspace.duckdb)", hint=_HINT)
    # A run writes its manifest last: without one, the folder is a run that stopped.
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise StclustersError(f"{run_dir}: not a finished run (no manifest.json)",
                              hint="the run stopped before it finished: rank again")
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute("ATTACH ? AS run (READ_ONLY)", [str(path)])
        except duckdb.Error as exc:
            raise StclustersError(f"{path}: cannot open the run's workspace: "
                                  f"{str(exc).splitlines()[0]}",
                                  hint="is another run writing it? wait, then retry") from exc
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'run' AND table_schema = 'main'").fetchall()}
        missing = set(need) - present
        if missing:
            raise StclustersError(f"{path}: not a ranking's workspace (no table "
                                  f"{', '.join(sorted(missing))})", hint=_HINT)
        _check_columns(con, need)
        label = (con.execute("SELECT min(data_label) FROM run.data_label").fetchall()[0][0]
                 if "data_label" in present else None)
        for name in sorted(present):
            con.execute(f"CREATE VIEW {identifier(name)} AS "
                        f"SELECT * FROM run.main.{identifier(name)}")
    except BaseException:
        con.close()
        raise
    return con, manifest, label


#: Columns later stages read from a run's tables: a workspace written by an older version
#: without them is refused in one line rather than failing inside a query.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "contributions": ("doc_id", "source", "year", "contributor_seq", "address_seq", "lat",
                      "lon", "country", "precision", "geoname_id", "status", "weight",
                      "weight_fx"),
    "points": ("source", "lat", "lon", "weight", "weight_fx", "stc"),
    "clusters": ("rank", "cluster_id", "name", "economy", "stc"),
    "ranking": ("rank", "cluster_id", "name", "economy"),
}


def _check_columns(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
    for table in tables:
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'run' "
            "AND table_schema = 'main' AND table_name = ?", [table]).fetchall()}
        lacking = [c for c in REQUIRED_COLUMNS.get(table, ()) if c not in have]
        if lacking:
            raise StclustersError(
                f"run table {table} lacks column(s) {', '.join(lacking)}: written by an "
                "older version of stclusters", hint="rank the inputs again with this version")


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """A run folder's ``manifest.json``, or None when it has none.

    Raises
    ------
    StclustersError
        The manifest exists but cannot be read or parsed.
    """
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StclustersError(f"{path}: cannot read the run's manifest ({exc})",
                              hint=_HINT) from exc
