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
