"""Command ``region``: a region's indicators with their sources, flags and bounds (the shipped
GBA figures, users' rows, and with ``--run`` the counts computed from a run's records and the
S&T cluster of each city). See ``docs/regions.md``.

Nothing of :mod:`stclusters.cli` is imported at module level: ``cli`` imports this module
while it loads, and importing this module first must work too."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stclusters.regions._format import number

_OWN_FILES = ("indicators.csv", "indicators.parquet", "city_clusters.csv",
              "city_clusters.parquet", "region.json")


def _console():  # noqa: ANN202 - rich Console, shared with the other commands
    from stclusters.cli import console  # noqa: PLC0415 - see the module's docstring

    return console


def _order(region, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
    """The region first, then its groups, its members in file order, then context rows."""
    units = [region.id, *region.groups, *region.member_names]
    pos = {u: i for i, u in enumerate(units)}
    return sorted(rows, key=lambda r: (pos.get(r["region"], len(units)), r["region"],
                                       r["indicator"], r["year"], r["unit"]))


def _display_name(region) -> str:  # noqa: ANN001
    """``PRD-9 (Guangdong–Hong Kong–Macao Greater Bay Area)``, ``GBA: Guangdong–…``: the
    id once, whether or not the name starts with it."""
    if region.name == region.id or region.name.startswith(f"{region.id} "):
        return region.name
    return f"{region.id}: {region.name}"


def _unit_title(region, name: str) -> str:  # noqa: ANN001
    if name == region.id:
        return _display_name(region)
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
                      Text(number(r["value"], bound=r["bound"])), Text(r["unit"]),
                      Text(r["flag"]), Text(r["source_publisher"] or ""))
    return table


def _print(region, rows: list[dict[str, Any]],  # noqa: ANN001 - Region (imported lazily)
           clusters: list[dict[str, Any]] | None, label: str | None, hidden: int) -> None:
    """One table per region, group, member and context row; each city's cluster; credits."""
    from stclusters.regions.indicators import CREDITS  # noqa: PLC0415

    console = _console()
    if label:
        console.print(Text(f"{label}: the rows computed from the run and the city → cluster "
                           "table are not real data", style="bold red"))
    console.print(Text(f"{_display_name(region)}: indicators", style="bold"))
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
                       Text(number(c["share_pct"], digits=1)))
        console.print(ct)
    if hidden:
        console.print(Text(f"{hidden} rows of the population/GDP table not shown (ask with "
                           "--indicator population, gdp, gdp_per_capita, employed_persons).",
                           style="dim"))
    console.print(Text("Bounds: '> 3,600' means more than 3,600. Source: the publisher of each "
                       "row (titles, addresses and notes: --out or --json).", style="dim"))
    for line in CREDITS:
        console.print(Text(line, style="dim"))


#: ``--indicators FILE`` of every command that reads the indicator table (``region``,
#: ``check``, ``report``): read by :func:`stclusters.regions.indicators.read_indicators`.
IndicatorFiles = Annotated[list[Path] | None, typer.Option(
    "--indicators", help="A CSV or Parquet file of your own indicator rows, in the layout of "
                         "the shipped gba_innovation_indicators.csv, or a table `region --out` "
                         "wrote; read after the shipped rows (repeatable; a later file's row "
                         "replaces an earlier one for the same figure).", metavar="FILE",
    show_default=False)]


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
    indicators: IndicatorFiles = None,
    run: Annotated[Path | None, typer.Option(
        "--run", help="A run's output folder (the --out of `stclusters rank`): adds the "
                      "counts computed from its records and each city's S&T cluster.",
        metavar="DIR", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write indicators.csv/.parquet, city_clusters.csv/.parquet (with "
                      "--run) and region.json here.", metavar="DIR", show_default=False)] = None,
    aggregated: Annotated[bool, typer.Option(
        "--aggregate", help="Add the region's and its groups' figures added up from their "
                            "members' (counts summed, ratios recomputed from their parts; "
                            "percentages never summed; a missing member gives no figure, "
                            "and the note says why).")] = False,
    rates: Annotated[Path | None, typer.Option(
        "--rates", help="With --aggregate: a cited currency rate CSV (year, from_currency, "
                        "to_currency, rate, source_publisher, source_title, source_url).",
        metavar="FILE", show_default=False)] = None,
    currency: Annotated[str | None, typer.Option(
        "--currency", help="With --aggregate and --rates: convert amounts into this ISO "
                           "4217 currency (e.g. CNY).", metavar="CODE",
        show_default=False)] = None,
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

    Also: stclusters region PRD-9 --year 2021 --indicator rd_expenditure --run out --out gba;
    stclusters region GBA --aggregate --rates rates.csv --currency CNY --indicator gdp
    """
    from stclusters.cli import _fail, _signals_unwind  # noqa: PLC0415 - module docstring

    try:
        with _signals_unwind():
            _run(region, years=year or [], names=indicator or [], files=indicators or [],
                 run=run, out=out, force=force, as_json=as_json,
                 combine={"aggregated": aggregated, "rates": rates,
                          "currency": currency.upper() if currency else None})
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)


def _run(region_arg: str, *, years: list[int], names: list[str], files: list[Path],
         run: Path | None, out: Path | None, force: bool, as_json: bool,
         combine: dict[str, Any] | None = None) -> None:
    """The command's work; ``combine``: ``aggregated``, ``rates``, ``currency`` of
    :func:`~stclusters.regions.indicators.region_table`."""
    from stclusters.analysis._output import prepare_dir, write_outputs  # noqa: PLC0415
    from stclusters.regions.definitions import load_region  # noqa: PLC0415
    from stclusters.regions.indicators import (  # noqa: PLC0415
        CREDITS, POPULATION_INDICATORS, label_computed, region_table,
    )

    region = load_region(region_arg)
    if out is not None:  # refuse a bad folder before any work
        out = prepare_dir(out, _OWN_FILES, force=force)
    combine = combine or {}
    table, clusters, label = region_table(region, files=files, years=years, indicators=names,
                                          run=run, **combine)
    summary = {"region": region.id, "name": region.name,
               "members": list(region.member_names), "groups": dict(region.groups),
               "filters": {"years": sorted(years), "indicators": sorted(names)},
               # Resolved, as rank records its inputs: the same files give the same JSON
               # however their paths were typed.
               "indicator_files": [str(Path(p).resolve()) for p in files],
               "run": str(Path(run).resolve()) if run is not None else None,
               "data_label": label, "aggregate": bool(combine.get("aggregated")),
               "rates": str(Path(combine["rates"]).resolve()) if combine.get("rates") else None,
               "currency": combine.get("currency"),
               "rows": table.num_rows, "credits": list(CREDITS)}
    # Only the rows computed from a labelled run carry its label; city_clusters is wholly
    # the run's (labelled by write_outputs).
    written = label_computed(table, label)
    if out is not None:
        tables = {"indicators": written} | ({"city_clusters": clusters}
                                             if clusters is not None else {})
        write_outputs(out, tables, summary, stem_json="region", label=label, force=force,
                      own_names=_OWN_FILES)
    if as_json:
        from stclusters.reports._tables import labelled  # noqa: PLC0415

        doc = {**summary, "indicators": _order(region, written.to_pylist()),
               "city_clusters": (labelled(clusters, label).to_pylist()
                                 if clusters is not None else None)}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return
    rows = table.to_pylist()
    shown = rows if names else [r for r in rows if r["indicator"] not in POPULATION_INDICATORS]
    _print(region, shown, clusters.to_pylist() if clusters is not None else None, label,
           len(rows) - len(shown))
    if out is not None:
        _console().print(Text(f"Wrote {out}/indicators.csv/.parquet"
                           + (", city_clusters.csv/.parquet" if clusters is not None else "")
                           + ", region.json"))


def register(app: typer.Typer) -> None:
    """Add ``region`` to ``app``."""
    from stclusters.cli import _Command  # noqa: PLC0415 - see the module's docstring

    app.command("region", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 an "
                "unknown region, a bad indicator file (the message names file, line and "
                "field), an unknown --indicator, or a folder that is not a finished run; "
                "130 interrupted; 143 terminated.")(region_cmd)
