"""Command ``report``: a finished run as one self-contained HTML file (map, ranking table,
cluster and run panels) that opens offline. See ``docs/report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stclusters.cli import _Command, _fail, _signals_unwind, console


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(
        help="A run's output folder (the --out of `stclusters rank`, or one edition's folder "
             "of `stclusters editions`).", metavar="RUN_DIR", show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", help="The HTML file to write (default: RUN_DIR/report.html).",
        metavar="FILE", show_default=False)] = None,
    outlines: Annotated[str, typer.Option(
        "--outlines", help="Country outlines: Natural Earth 1:110m (108 KB, the world) or "
                           "1:50m (756 KB more, coasts that hold when zoomed to one city).",
        metavar="110m|50m")] = "110m",
    top: Annotated[int | None, typer.Option(
        "--top", min=1, help="Show the clusters ranked 1..N only (default: every ranked "
                             "cluster of the run).", metavar="N", show_default=False)] = None,
) -> None:
    """Write a run's report: one HTML file that opens offline.

    A world map of the ranked clusters' footprints (zoom, pan, hover for the numbers), the
    ranking table (sort, filter by economy or name, select a row to fly to it), each
    cluster's top places, economies and profile, and the run's parameters, accounting,
    data quality, manifest and credits. Scripts, styles, country outlines and data are
    inline: the page loads nothing from the network.

    Example: stclusters report out

    Also: stclusters report eds/2024 --out gii-2024.html --top 100 --outlines 50m
    """
    from stclusters.reports.html import write_report  # noqa: PLC0415

    try:
        with _signals_unwind():
            path = write_report(run_dir, out, top_n=top, outlines=outlines)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    size_kb = path.stat().st_size / 1024
    console.print(f"wrote {path} ({size_kb:,.0f} KB)", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 a folder "
                "that is not a finished run, or a bad --top, --out or --outlines; 6 the "
                "report could not be written (no space, permission: the message names the "
                "file).")(report_cmd)
