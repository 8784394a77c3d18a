"""Command ``report``: a finished run as one self-contained HTML file (map, ranking table,
cluster and run panels; with ``--region`` a region page) that opens offline. See
``docs/report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stclusters.cli import _Command, _fail, _signals_unwind, console
from stclusters._cli_region import IndicatorFiles


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
    region: Annotated[str | None, typer.Option(
        "--region", help="Add a region page: indicators with their sources, the run's "
                         "counts per city, integration figures and claims (GBA, PRD-9, "
                         "HK-MO or a region file).", metavar="REGION",
        show_default=False)] = None,
    claims: Annotated[str | None, typer.Option(
        "--claims", help="With --region: the claims to check (a claim file or a shipped "
                         "set; default: gba for the GBA and its groups).",
        metavar="gba|FILE", show_default=False)] = None,
    indicators: IndicatorFiles = None,
) -> None:
    """Write a run's report: one HTML file that opens offline.

    A world map of the ranked clusters' footprints (zoom, pan, hover for the numbers), the
    ranking table (sort, filter by economy or name, select a row to fly to it), each
    cluster's top places, economies and profile, and the run's parameters, accounting,
    data quality, manifest and credits. Scripts, styles, country outlines and data are
    inline: the page loads nothing from the network. With --region, a second tab shows
    the region's indicators over time (sources, flags, bounds), the counts computed from
    the run and each city's cluster, the integration shares and city-by-city matrix, and
    the claims with their verdicts.

    Example: stclusters report out

    Also: stclusters report eds/2024 --out gii-2024.html --top 100 --outlines 50m

    Also: stclusters report out --region GBA --indicators yearbook2023.csv
    """
    from stclusters.reports.html import write_report  # noqa: PLC0415

    try:
        with _signals_unwind():
            path = write_report(run_dir, out, top_n=top, outlines=outlines, region=region,
                                claims=claims, indicators=indicators or ())
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    size_kb = path.stat().st_size / 1024
    console.print(f"wrote {path} ({size_kb:,.0f} KB)", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 a folder "
                "that is not a finished run, a bad --top, --out or --outlines, an unknown "
                "--region, a bad --claims or --indicators file, or --claims/--indicators "
                "without --region; 6 the "
                "report could not be written (no space, permission: the message names the "
                "file).")(report_cmd)
