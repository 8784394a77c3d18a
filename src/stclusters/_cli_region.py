"""Command ``region``: a region's indicators with their sources, flags and bounds (the shipped
GBA figures, users' rows, and with ``--run`` the counts computed from a run's records and the
S&T cluster of each city). See ``docs/regions.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stclusters.cli import _Command, _fail, _signals_unwind, console

_OWN_FILES = ("indicators.csv", "indicators.parquet", "city_clusters.csv",
              "city_clusters.parquet", "region.json")


def format_value(value: float | None, bound: str | None) -> str:
    """``> 3,600``, ``2,962.36``, ``0.0123``; ``–`` for a missing value."""
    if value is None or value != value:
        return "–"
    if value == int(value) and abs(value) < 1e15:
        text = f"{int(value):,}"
    elif abs(value) >= 1:
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.4g}"
    return f"{bound} {text}" if bound else text


def _order(region, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
    """The region first, then its groups, its members in file order, then context rows."""
    units = [region.id, *region.groups, *region.member_names]
    pos = {u: i for i, u in enumerate(units)}
    return sorted(rows, key=lambda r: (pos.get(r["region"], len(units)), r["region"],
                                       r["indicator"], r["year"], r["unit"]))


def _unit_title(region, name: str) -> str:  # noqa: ANN001
    if name == region.id:
        return f"{name}: {region.name}"
    if name in region.groups:
        return f"{name} (group: {', '.join(region.groups[name])})"
    if name in region.member_names:
        return name
    return f"{name} (context: not a member, never added to members' figures)"


def _unit_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """One region's rows; cells from the files as Text, never markup."""
    table = Table(title=title, title_justify="left", title_style="bold")
    for header in ("Year", "Indicator", "Value", "Unit", "Flag", "Source"):
        # The figure stays on one line; the publisher keeps room to be read.
        table.add_column(header, justify="right" if header in ("Year", "Value") else "left",
                         no_wrap=header in ("Year", "Value"),
                         min_width=30 if header == "Source" else None,
                         overflow="fold" if header == "Indicator" else "ellipsis")
    for r in rows:
        table.add_row(Text(str(r["year"])), Text(r["indicator"]),
                      Text(format_value(r["value"], r["bound"])), Text(r["unit"]),
                      Text(r["flag"]), Text(r["source_publisher"] or ""))
    return table


def _print(region, rows: list[dict[str, Any]],  # noqa: ANN001 - Region (imported lazily)
           clusters: list[dict[str, Any]] | None, label: str | None, hidden: int) -> None:
    """One table per region, group, member and context row; each city's cluster; credits."""
    from stclusters.regions.indicators import CREDITS  # noqa: PLC0415

    if label:
        console.print(Text(label, style="bold red"))
    console.print(Text(f"{region.name} ({region.id}): indicators", style="bold"))
    ordered = _order(region, rows)
    for name in dict.fromkeys(r["region"] for r in ordered):
        console.print(_unit_table(_unit_title(region, name),
                                  [r for r in ordered if r["region"] == name]))
    if not rows:
        console.print(Text("No rows match.", style="dim"))
    if clusters:
        ct = Table(title="S&T cluster of each city (most of its weight)", title_justify="left",
                   title_style="bold")
        for header in ("City", "Source", "Cluster", "Rank", "Share of city %"):
            ct.add_column(header, justify="right" if header in ("Rank", "Share of city %")
                          else "left")
        for c in clusters:
            ct.add_row(Text(c["member"]), Text(c["source"]),
                       Text(c["name"] or "(in no cluster)"),
                       Text("" if c["rank"] is None else str(c["rank"])),
                       Text(format_value(c["share_pct"], None)))
        console.print(ct)
    if hidden:
        console.print(Text(f"{hidden} rows of the population/GDP table not shown (ask with "
                           "--indicator population, gdp, gdp_per_capita, employed_persons).",
                           style="dim"))
    console.print(Text("Bounds: '> 3,600' means more than 3,600. Source: the publisher of each "
                       "row (titles, addresses and notes: --out or --json).", style="dim"))
    for line in CREDITS:
        console.print(Text(line, style="dim"))


def region_cmd(
    region: Annotated[str, typer.Argument(
        help="GBA, PRD-9, HK-MO, or a region YAML file (file.yaml or file.yaml#GROUP).",
        metavar="REGION", show_default=False)],
    year: Annotated[list[int] | None, typer.Option(
        "--year", help="Keep this year (repeatable).", metavar="YEAR",
        show_default=False)] = None,
    indicator: Annotated[list[str] | None, typer.Option(
        "--indicator", help="Keep this indicator (repeatable), e.g. rd_expenditure, "
                            "population, patent_fractional_count.", metavar="NAME",
        show_default=False)] = None,
    indicators: Annotated[list[Path] | None, typer.Option(
        "--indicators", help="A CSV of your own rows, in the layout of the shipped "
                             "gba_innovation_indicators.csv (repeatable; a later file's row "
                             "replaces an earlier one for the same figure).", metavar="FILE",
        show_default=False)] = None,
    run: Annotated[Path | None, typer.Option(
        "--run", help="A run's output folder (the --out of `stclusters rank`): adds the "
                      "counts computed from its records and each city's S&T cluster.",
        metavar="DIR", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write indicators.csv/.parquet, city_clusters.csv/.parquet (with "
                      "--run) and region.json here.", metavar="DIR", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an --out folder that "
                                                        "holds other files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """A region's indicators with their sources, flags and bounds.

    The shipped Greater Bay Area figures (R&D, patents, high-tech enterprises, state key
    laboratories; population and GDP by city), your own rows (--indicators), and with --run
    the patents and publications of a run by city, region and group (fractional and whole
    counts, world shares, growth, per million inhabitants) and the S&T cluster of each city.

    Example: stclusters region GBA

    Also: stclusters region PRD-9 --year 2021 --indicator rd_expenditure --run out --out gba
    """
    try:
        with _signals_unwind():
            _run(region, years=year or [], names=indicator or [], files=indicators or [],
                 run=run, out=out, force=force, as_json=as_json)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)


def _run(region_arg: str, *, years: list[int], names: list[str], files: list[Path],
         run: Path | None, out: Path | None, force: bool, as_json: bool) -> None:
    from stclusters.analysis._output import prepare_dir, write_json, write_table  # noqa: PLC0415
    from stclusters.regions.definitions import load_region  # noqa: PLC0415
    from stclusters.regions.indicators import (  # noqa: PLC0415
        CREDITS, POPULATION_INDICATORS, region_table,
    )

    region = load_region(region_arg)
    if out is not None:  # refuse a bad folder before any work
        out = prepare_dir(out, _OWN_FILES, force=force)
    table, clusters, label = region_table(region, files=files, years=years, indicators=names,
                                          run=run)
    summary = {"region": region.id, "name": region.name,
               "members": list(region.member_names), "groups": dict(region.groups),
               "filters": {"years": sorted(years), "indicators": sorted(names)},
               "indicator_files": [str(p) for p in files],
               "run": str(run) if run is not None else None, "data_label": label,
               "rows": table.num_rows, "credits": list(CREDITS)}
    if out is not None:
        write_table(table, out, "indicators")
        if clusters is not None:
            write_table(clusters, out, "city_clusters")
        write_json(summary, out / "region.json")
    if as_json:
        doc = {**summary, "indicators": _order(region, table.to_pylist()),
               "city_clusters": clusters.to_pylist() if clusters is not None else None}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return
    rows = table.to_pylist()
    shown = rows if names else [r for r in rows if r["indicator"] not in POPULATION_INDICATORS]
    _print(region, shown, clusters.to_pylist() if clusters is not None else None, label,
           len(rows) - len(shown))
    if out is not None:
        console.print(Text(f"Wrote {out}/indicators.csv/.parquet"
                           + (", city_clusters.csv/.parquet" if clusters is not None else "")
                           + ", region.json"))


def register(app: typer.Typer) -> None:
    """Add ``region`` to ``app``."""
    app.command("region", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 an "
                "unknown region, a bad indicator file (the message names file, line and "
                "field), an unknown --indicator, or a folder that is not a finished run; "
                "130 interrupted; 143 terminated.")(region_cmd)
