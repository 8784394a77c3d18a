"""Writing analysis outputs (sensitivity, calibration): tables as CSV and Parquet, figures
as PNG and SVG, a JSON summary; every file atomic and byte-identical for the same input."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import ParameterError
from stclusters.reports._atomic import atomic_path, write_text
from stclusters.reports._tables import write_parquet
from stclusters.reports.csv_writer import write_csv


def prepare_dir(out: str | Path, own_names: Iterable[str], *, force: bool = False) -> Path:
    """The output folder, created if missing; files of an earlier run of the same command
    (``own_names``) are replaced. A folder holding anything else is refused unless ``force``.

    Raises
    ------
    ParameterError
        ``out`` is a file, or a non-empty folder of other files (without ``force``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: the output folder is a file",
                             hint="give a new or empty folder with --out")
    own = set(own_names)
    if out.is_dir() and not force:
        other = sorted(p.name for p in out.iterdir()
                       if p.name not in own and not p.name.endswith(".partial"))
        if other:
            raise ParameterError(
                f"{out}: the output folder holds other files ({', '.join(other[:3])}"
                f"{'…' if len(other) > 3 else ''})",
                hint="give a new or empty folder, or pass --force to write beside them")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_table(table: pa.Table, out: Path, stem: str) -> list[Path]:
    """``<stem>.csv`` and ``<stem>.parquet`` in ``out``."""
    csv_path, pq_path = out / f"{stem}.csv", out / f"{stem}.parquet"
    write_csv(table, csv_path)
    write_parquet(table, pq_path)
    return [csv_path, pq_path]


def write_json(data: dict[str, Any], path: Path) -> Path:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_outputs(out: str | Path, tables: dict[str, pa.Table], summary: dict[str, Any], *,
                  stem_json: str, label: str | None, force: bool,
                  own_names: Iterable[str] = ()) -> list[Path]:
    """Every output of a command in one folder: ``<stem>.csv`` and ``<stem>.parquet`` for each
    of ``tables``, and ``<stem_json>.json`` holding ``summary``.

    Parameters
    ----------
    out : path
        The folder (:func:`prepare_dir`: created if missing; a folder of other files is
        refused unless ``force``).
    tables : dict of str to pyarrow.Table
        Stem → table, written in the dict's order.
    summary : dict
        The JSON summary.
    stem_json : str, keyword-only
        Name of the JSON file without ``.json``.
    label : str or None, keyword-only
        The run's data label (SYNTHETIC …): each table gets a leading ``data_label`` column
        (:func:`stclusters.reports._tables.labelled`), except a table that already has one
        (its maker labelled the rows that need it, e.g. computed rows among curated ones).
    force : bool, keyword-only
        Write into a folder that holds other files.
    own_names : iterable of str, keyword-only
        Further file names this command writes on other occasions (``city_clusters.*`` of
        ``region --run``, a figure). Those this call does not write are removed, so no file
        of an earlier run of the command is left beside the new ones (as ``rank`` does); a
        caller writing one of them after this call writes it anew.

    Returns
    -------
    list of Path
        The files written, in order.
    """
    from stclusters.reports._tables import labelled  # noqa: PLC0415

    own = [f"{stem}.{ext}" for stem in tables for ext in ("csv", "parquet")]
    own_names = list(own_names)
    mine = {*own, f"{stem_json}.json"}
    folder = prepare_dir(out, [*mine, *own_names], force=force)
    for name in own_names:
        if name not in mine:
            (folder / name).unlink(missing_ok=True)
    paths: list[Path] = []
    for stem, table in tables.items():
        if "data_label" not in table.column_names:
            table = labelled(table, label)
        paths += write_table(table, folder, stem)
    paths.append(write_json(summary, folder / f"{stem_json}.json"))
    return paths


def save_figure(fig, out: Path, stem: str) -> list[Path]:  # noqa: ANN001 - matplotlib Figure
    """``<stem>.png`` and ``<stem>.svg``, without creation dates (byte-identical reruns)."""
    import matplotlib as mpl  # noqa: PLC0415

    paths = []
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = out / f"{stem}.{ext}"
        with mpl.rc_context({"svg.hashsalt": "stclusters", "svg.fonttype": "none"}):
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=ext, metadata=meta, dpi=110)
        paths.append(path)
    return paths
