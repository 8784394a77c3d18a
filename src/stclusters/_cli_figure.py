"""Command ``figure``: publication figures of a finished run (a footprint map and a ranking
bar chart, PNG and SVG). See ``docs/figures.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stclusters.cli import _Command, _fail, _signals_unwind, console


def figure_cmd(
    run_dir: Annotated[Path, typer.Argument(
        help="A run's output folder (the --out of `stclusters rank`), or an editions folder "
             "(figures for each edition).", metavar="RUN_DIR", show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the figures (default: RUN_DIR/figures; for an editions "
                      "folder, one sub-folder per edition).", metavar="DIR",
        show_default=False)] = None,
    top: Annotated[int, typer.Option(
        "--top", help="Clusters drawn on the map and in the bars (best ranked first; 0: "
                      "every ranked cluster).", metavar="N", min=0)] = 30,
    labels: Annotated[int, typer.Option(
        "--labels", help="Clusters labelled on the map with rank and name.", metavar="K",
        min=0)] = 10,
    extent: Annotated[str, typer.Option(
        "--extent", help="The map's area: world, top (the drawn clusters) or "
                         "lon0,lat0,lon1,lat1 in degrees.", metavar="AREA")] = "world",
    dpi: Annotated[int, typer.Option(
        "--dpi", help="PNG resolution, dots per inch (figures are 180 mm wide).",
        min=30, max=1200)] = 300,
    formats: Annotated[str, typer.Option(
        "--format", help="png, svg or png,svg.", metavar="LIST")] = "png,svg",
    force: Annotated[bool, typer.Option(
        "--force", help="Write into an --out folder that holds other files.")] = False,
) -> None:
    """Draw a run's clusters: a footprint map and a ranking bar chart, as PNG and SVG.

    The map shows each cluster's footprint coloured by the metric with the largest part of
    its score (discs sized by score where footprints are too small to see), the best
    ranked labelled, a scale bar, legend and the data credits; the bars stack each
    cluster's weighted shares. The same run gives byte-identical SVG files.

    Example: stclusters figure out --extent top --top 20

    Also: stclusters figure out --extent 100,15,150,50 --format svg --out paper/
    """
    from stclusters.reports.figures import (  # noqa: PLC0415 - matplotlib is slow to import
        parse_extent,
        parse_formats,
        write_figures_any,
    )

    try:
        with _signals_unwind():
            kinds = parse_formats(formats)
            area = parse_extent(extent)
            written = write_figures_any(run_dir, out=out, top=top, labels=labels, extent=area,
                                        dpi=dpi, formats=kinds, force=force)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    for path in written.paths:
        console.print(escape(str(path)), highlight=False)
    for note in written.skipped:
        console.print(f"[yellow]skipped:[/] {escape(note)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``figure`` to ``app``."""
    app.command("figure", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 not a "
                "run folder, an empty ranking, a bad option, or an --out folder holding "
                "other files (without --force); 6 a figure could not be written.")(figure_cmd)
