"""Command ``integration``: shares of Hong Kong's and Macao's documents made with mainland
co-contributors (and the other way), and a collaboration matrix with its chord figure, from
a finished run. See ``docs/integration.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stclusters.cli import _Command, _fail, _signals_unwind, console, err
from stclusters.errors import ParameterError
from stclusters.regions._format import number

if TYPE_CHECKING:
    from stclusters.regions.integration import YearFilter

#: The figure files ``--out`` writes beside the tables and the JSON.
FIGURE_NAMES = ("integration.png", "integration.svg")
#: Files ``--out`` writes (an earlier integration output in the folder is replaced).
OUTPUT_NAMES = ("integration_shares.csv", "integration_shares.parquet",
                "collaboration_matrix.csv", "collaboration_matrix.parquet",
                *FIGURE_NAMES, "integration.json")


def run_integration(run: Path, region_name: str, *, years: YearFilter, counting: str,
                    matrix: list[str] | None, top: int | None) -> dict[str, Any]:
    """Shares, matrix and context of one run folder (the connection is closed after)."""
    from stclusters._run_folder import open_run  # noqa: PLC0415
    from stclusters.regions import load_region  # noqa: PLC0415
    from stclusters.regions.integration import (collaboration_matrix,  # noqa: PLC0415
                                                integration_shares, matrix_years)

    region = load_region(region_name)
    if matrix and any(m.casefold() == "clusters" for m in matrix) and len(matrix) > 1:
        raise ParameterError("--matrix clusters cannot be combined with regions",
                             hint="give --matrix clusters alone, or regions only")
    units: Any = region
    if matrix:
        units = ("clusters" if matrix[0].casefold() == "clusters"
                 else [load_region(m) for m in matrix])
    con, _manifest, label = open_run(run, need=("contributions", "clusters", "ranking"))
    try:
        shares = integration_shares(con, region, years=years)
        mat = collaboration_matrix(con, units, counting=counting, years=years, top=top)
        counted = matrix_years(con, years)
        run_years = matrix_years(con, None)
    finally:
        con.close()
    return {"region": region, "shares": shares, "matrix": mat, "label": label,
            "matrix_years": counted, "notes": _notes(years, counted, run_years)}


def _notes(years: YearFilter, counted: tuple[int, ...], run_years: tuple[int, ...],
           ) -> list[str]:
    """Why a matrix is all zeros: no document of the run touching its units in the years
    asked for (the years it has are named)."""
    from stclusters.regions.integration import YearFilter  # noqa: PLC0415

    if counted:
        return []
    asked = years.label()
    have = (YearFilter(run_years[0], run_years[-1], run_years).label() if run_years
            else None)
    return [f"no document of the run touches the matrix's units"
            + (f" in {asked}" if asked else "") + ": every cell is 0"
            + (f" (the run's documents in these units are of {have})" if have else "")]


def _shares_table(shares, *, counting: str) -> Table:  # noqa: ANN001 - pa.Table
    """One line per (focal, partner, metric), one column per year: ``share % (part/all)``."""
    rows = [r for r in shares.to_pylist() if r["counting"] == counting]
    years = sorted({r["year"] for r in rows})
    what = "documents" if counting == "whole" else "fractional weight"
    table = Table(title=f"Share made with the partner, % ({counting} counting: {what} with "
                        "the partner / all)", title_justify="left")
    for h in ("Focal", "Partner", "Source"):
        table.add_column(h)
    for y in years:
        table.add_column(str(y), justify="right")
    lines: dict[tuple[str, str, str], dict[int, str]] = {}
    for r in rows:
        part, whole = ((number(r["n_docs_with_partner"]), number(r["n_docs"]))
                       if counting == "whole" else
                       (number(r["weight_with_partner"], digits=2), number(r["weight"], digits=2)))
        share = number(r["share_pct"], digits=1)
        lines.setdefault((r["focal"], r["partner"], r["source"]), {})[r["year"]] = (
            f"{share} ({part}/{whole})")
    for (focal, partner, source), cells in lines.items():
        table.add_row(Text(focal), Text(partner), Text(source),
                      *(Text(cells.get(y, "")) for y in years))
    return table


def _matrix_tables(mat) -> list[Table]:  # noqa: ANN001 - pa.Table
    value = "n_docs" if "n_docs" in mat.column_names else "weight"
    rows = mat.to_pylist()
    out = []
    for source in dict.fromkeys(r["source"] for r in rows):
        part = [r for r in rows if r["source"] == source]
        units = list(dict.fromkeys(r["a"] for r in part))
        cell = {(r["a"], r["b"]): r[value] for r in part}
        counting = part[0]["counting"] if part else ""
        t = Table(title=f"Collaboration matrix, {source} ({counting} counting: "
                        + ("documents" if value == "n_docs" else "fractional documents") + ")",
                  title_justify="left")
        t.add_column("")
        for u in units:
            t.add_column(Text(u), justify="right")
        for a in units:
            vals = [cell.get((a, b)) for b in units]
            t.add_row(Text(a), *(number(v, digits=0 if value == "n_docs" else 2)
                                 for v in vals))
        out.append(t)
    return out


def _summary(result: dict[str, Any], *, counting: str, years: YearFilter,
             run: Path) -> dict[str, Any]:
    from stclusters.regions.integration import CREDITS  # noqa: PLC0415

    region = result["region"]
    return {
        "data_label": result["label"], "region": region.id,
        "run": str(Path(run).resolve()),  # as rank records it: not as it was typed
        "years": years.as_json(), "matrix_counting": counting,
        "matrix_years": list(result["matrix_years"]), "notes": result["notes"],
        "rules": {
            "scope": "the run's used contributions only (status 'used': its windows and "
                     "precision), with the run's fractional weights",
            "share_whole": "100 * documents of the focal side with a used contribution in the "
                           "partner side (not in the focal side) / documents of the focal side",
            "share_fractional": "100 * the focal side's weight on such documents / its weight",
            "matrix_whole": "off the diagonal: documents with used contributions in both units; "
                            "diagonal: documents whose used contributions are all in the unit",
            "matrix_fractional": "sum over documents of w_i(d) * w_j(d) / W(d), diagonal "
                                 "included (Batagelj & Cerinšek 2013); rows sum to the unit's "
                                 "fractional count",
        },
        "credits": CREDITS,
        "shares": result["shares"].to_pylist(),
        "matrix": result["matrix"].to_pylist(),
    }


def _figure_years(years: YearFilter, result: dict[str, Any]) -> str:
    """The years the figure covers: those asked for, else those of the documents counted
    (``2017–2021``); ``no documents`` when the matrix counted none."""
    from stclusters.regions.integration import YearFilter  # noqa: PLC0415

    counted = result["matrix_years"]
    if years.label():
        return years.label() if counted else f"{years.label()} (no documents)"
    if not counted:
        return "no documents"
    return YearFilter(counted[0], counted[-1], counted).label()


def _write(out: Path, result: dict[str, Any], summary: dict[str, Any], *, force: bool,
           years: YearFilter) -> list[Path]:
    """Tables and JSON (:func:`stclusters.analysis._output.write_outputs`), then the figure."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from stclusters.analysis import _output  # noqa: PLC0415
    from stclusters.regions._integration_figure import missing_glyphs_quiet  # noqa: PLC0415
    from stclusters.regions.integration import integration_figure  # noqa: PLC0415

    label = result["label"]
    paths = _output.write_outputs(
        out, {"integration_shares": result["shares"], "collaboration_matrix": result["matrix"]},
        summary, stem_json="integration", label=label, force=force,
        own_names=FIGURE_NAMES)
    fig = integration_figure(result["matrix"], title=f"{result['region'].name}: collaboration",
                             data_label=label, years=_figure_years(years, result))
    try:
        with missing_glyphs_quiet():
            paths += _output.save_figure(fig, Path(out), "integration")
    finally:
        plt.close(fig)
    return paths


def integration_cmd(
    region: Annotated[str, typer.Argument(
        help="A shipped region or group id (GBA, PRD-9) or a region YAML file.",
        metavar="REGION", show_default=False)],
    run: Annotated[Path, typer.Option("--run", help="A run's output folder (the --out of "
                                                    "`stclusters rank`, with workspace.duckdb).",
                                      metavar="DIR", show_default=False)],
    year: Annotated[list[str] | None, typer.Option(
        "--year", help="Documents of this year (or FIRST-LAST) only; repeat for several "
                       "years; default every year of the run's windows.", metavar="Y",
        show_default=False)] = None,
    counting: Annotated[str, typer.Option(
        "--counting", help="Rule of the matrix and the printed shares: whole (documents) or "
                           "fractional (weights).", metavar="whole|fractional")] = "whole",
    matrix: Annotated[list[str] | None, typer.Option(
        "--matrix", help="Units of the matrix: a region (repeat for several; members "
                         "labelled ID:member), or `clusters` (the run's ranked clusters). "
                         "Default: REGION's members.", metavar="REGION|clusters",
        show_default=False)] = None,
    top: Annotated[int | None, typer.Option(
        "--top", help="With --matrix clusters: the first N ranked clusters.", metavar="N",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write integration_shares, collaboration_matrix (CSV, Parquet), the "
                      "chord figure (PNG, SVG) and integration.json here.", metavar="DIR",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder holding other "
                                                        "files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print shares and matrix as "
                                                         "JSON.")] = False,
) -> None:
    """Integration of Hong Kong and Macao with the mainland, and who collaborates with whom.

    Shares of each side's
    documents made with a co-contributor on the other side, per metric and year (whole and
    fractional counting), and a unit-by-unit collaboration matrix with a chord figure. Only
    the run's used contributions count.

    Example: stclusters integration GBA --run out

    Also: stclusters integration GBA --run out --year 2021 --counting fractional --out integ
    """
    from stclusters.regions.integration import COUNTINGS, year_filter  # noqa: PLC0415

    try:
        with _signals_unwind():
            if counting not in COUNTINGS:
                raise ParameterError(f"--counting {counting!r}: not one of "
                                     f"{', '.join(COUNTINGS)}",
                                     hint="--counting whole or --counting fractional")
            if top is not None and top < 1:
                raise ParameterError(f"--top must be >= 1, got {top}", hint="e.g. --top 20")
            if top is not None and not (matrix and matrix[0].casefold() == "clusters"):
                raise ParameterError("--top N ranks clusters: it needs --matrix clusters",
                                     hint="add --matrix clusters, or drop --top")
            years = year_filter(year)
            if out is not None:
                from stclusters.analysis import _output  # noqa: PLC0415

                _output.prepare_dir(out, OUTPUT_NAMES, force=force)  # before the work
            result = run_integration(run, region, years=years, counting=counting,
                                     matrix=matrix, top=top)
            summary = _summary(result, counting=counting, years=years, run=run)
            paths = (_write(out, result, summary, force=force, years=years)
                     if out is not None else [])
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc, out=out)
    for note in result["notes"]:  # on stderr: --json keeps stdout for the JSON
        err.print(Text(f"Note: {note}.", style="yellow"))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
        return
    if result["label"]:
        console.print(Text(result["label"], style="bold red"))
    if result["shares"].num_rows == 0:
        console.print(Text(f"No used contribution of the run is in {result['region'].id}'s "
                           "focal sides: no share to show."))
    else:
        console.print(_shares_table(result["shares"], counting=counting))
    for t in _matrix_tables(result["matrix"]):
        console.print(t)
    from stclusters.regions.integration import CREDITS  # noqa: PLC0415

    console.print(Text(CREDITS, style="dim"))
    if paths:
        console.print(f"Wrote {', '.join(sorted(p.name for p in paths))} to "
                      f"{escape(str(out))}/.")


def register(app: typer.Typer) -> None:
    """Add ``integration`` to ``app``."""
    app.command("integration", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 an "
                "unknown region, bad option values (--top without --matrix clusters, a "
                "region twice in --matrix), or a folder that is not a finished run.")(integration_cmd)
