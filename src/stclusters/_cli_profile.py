"""Command ``profile``: who and what makes one ranked cluster of a finished run (top
applicants and institutions, technology and scientific fields, economies, collaboration,
growth). See ``docs/profiles.md``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from stclusters.cli import _Command, _fail, _signals_unwind, console


def _num(value: float | None, fmt: str) -> Text:
    return Text("" if value is None or value != value else fmt.format(value))


def _facet_table(facet: str, rows: list[dict[str, Any]]) -> Table:
    """One facet's rows (every source) as a rich table; cells from the inputs as Text, never
    markup."""
    growth = facet == "growth"
    # Keys that say more than their labels (institution ids, field numbers) get a column.
    keyed = any(r["key"] != r["label"] and not (r["key"] or "(").startswith("(") for r in rows)
    table = Table(title=facet.replace("_", " "), title_justify="left", show_lines=False)
    for header in ("Source", "#", *(("Key",) if keyed else ()), "Label",
                   *(("Growth %",) if growth else ("Weight", "Share %", "Docs", "Docs %")),
                   "Note"):
        table.add_column(header, justify="right" if header in (
            "#", "Weight", "Share %", "Docs", "Docs %", "Growth %") else "left")
    for r in rows:
        numbers = ([_num(r["growth_pct"], "{:+.1f}")] if growth else
                   [_num(r["weight"], "{:,.2f}"), _num(r["share_pct"], "{:.1f}"),
                    _num(r["n_docs"], "{:,.0f}"), _num(r["doc_share_pct"], "{:.1f}")])
        key = (Text(r["key"] or ""),) if keyed else ()
        table.add_row(Text(r["source"] or "all"), Text(str(r["item"])), *key,
                      Text(r["label"] or ""), *numbers, Text(r["note"] or ""))
    return table


def print_profile(prof) -> None:  # noqa: ANN001 - ClusterProfile (imported lazily)
    """A profile as a header line and one rich table per facet."""
    from stclusters.analysis.profiles import FACETS  # noqa: PLC0415

    head = Text(f"#{prof.rank} {prof.name} ({prof.economy})  {prof.cluster_id}", style="bold")
    if prof.data_label:
        head = Text(f"{prof.data_label}  ", style="bold red") + head
    console.print(head)
    console.print(Text("weight: " + ", ".join(f"{s} {w:,.2f}"
                                              for s, w in sorted(prof.weights.items()))))
    for facet in FACETS:
        rows = prof.facet(facet)
        if rows:
            console.print(_facet_table(facet, rows))


def profile_cmd(
    cluster: Annotated[str, typer.Argument(
        help="The cluster: its rank, its cluster_id, or its name (case-insensitive; a part "
             "of one name will do).", metavar="CLUSTER", show_default=False)],
    run: Annotated[Path, typer.Option("--run", help="A run's output folder (the --out of "
                                                    "`stclusters rank`, with workspace.duckdb).",
                                      metavar="DIR", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON "
                                                         "(facet → source → rows).")] = False,
) -> None:
    """Profile one ranked cluster of a finished run.

    Top applicants and institutions
    (fractional counts), technology fields (IPC/CPC → WIPO's 35 fields), scientific fields,
    weight by economy, documents with co-contributors outside the cluster and abroad, and
    growth between editions. The run's workspace is opened read-only.

    Example: stclusters profile 1 --run out

    Also: stclusters profile "san jose" --run out --json
    """
    from stclusters.analysis.profiles import run_profile  # noqa: PLC0415

    try:
        with _signals_unwind():
            prof = run_profile(run, cluster)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    if as_json:
        sys.stdout.write(prof.to_json() + "\n")
        return
    print_profile(prof)


def register(app: typer.Typer) -> None:
    """Add ``profile`` to ``app``."""
    app.command("profile", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 an "
                "unknown or ambiguous CLUSTER (the message lists candidates), or a folder "
                "that is not a finished run.")(profile_cmd)
