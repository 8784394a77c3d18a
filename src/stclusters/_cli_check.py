"""Command ``check``: claims (sentences with their sources) judged against the data at hand:
held, not held, or not enough data, with the evidence and why. See ``docs/claims.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from stclusters.cli import _Command, _fail, _signals_unwind, console
from stclusters._cli_region import IndicatorFiles

_STYLE = {"held": "bold green", "not held": "bold red", "not enough data": "bold yellow"}


def print_results(res) -> None:  # noqa: ANN001 - ClaimResults (imported lazily)
    """One block per claim (verdict, sentence, evidence, why), then the count per verdict.
    Every cell from the data is printed as Text, never as markup."""
    from stclusters.regions.claims import CREDITS  # noqa: PLC0415

    for c in res.checks:
        head = Text(f"{c.verdict:<15} ", style=_STYLE[c.verdict]) + Text(
            f"{c.claim.id}: {c.claim.text}")
        if c.data_label:
            head = Text(f"{c.data_label}  ", style="bold red") + head
        console.print(head)
        console.print(Text(f"    claim:    {c.claim.statement()}  (source: "
                           f"{c.claim.source.get('publisher', '')}"
                           f"{', ' + c.claim.source['date'] if 'date' in c.claim.source else ''})"))
        if c.evidence:
            console.print(Text(f"    evidence: {c.evidence}"))
        if c.why:
            console.print(Text(f"    why:      {c.why}"))
    counts = res.counts
    console.print(Text(", ".join(f"{n} {v}" for v, n in counts.items()) +
                       f" ({sum(counts.values())} claims)", style="bold"))
    console.print(Text(CREDITS, style="dim"))


def check_cmd(
    claims: Annotated[str, typer.Argument(
        help="A claim file (YAML, docs/claims.md) or a shipped set: gba.",
        metavar="CLAIMS", show_default=False)],
    indicators: IndicatorFiles = None,
    run: Annotated[Path | None, typer.Option(
        "--run", help="A run's output folder (the --out of `stclusters rank`): rank claims, "
                      "and indicator claims on the counts computed from its records.",
        metavar="DIR", show_default=False)] = None,
    run_edition: Annotated[str | None, typer.Option(
        "--run-edition", help="The edition the --run folder is (when its manifest names "
                              "none), e.g. 2021.", metavar="EDITION", show_default=False)] = None,
    editions: Annotated[Path | None, typer.Option(
        "--editions", help="An editions output folder (the --out of `stclusters editions`).",
        metavar="DIR", show_default=False)] = None,
    published: Annotated[Path | None, typer.Option(
        "--published", help="Published ranks (CSV: edition, rank, cluster) instead of the "
                            "shipped GII table.", metavar="CSV", show_default=False)] = None,
    no_published: Annotated[bool, typer.Option(
        "--no-published", help="Do not use any published ranks.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write claims.csv/.parquet and claims.json here.", metavar="DIR",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that holds "
                                                        "other files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Check claims against indicators, rankings and editions.

    Each claim is held, not held or not enough data, shown with the figures compared
    (flags, bounds, sources) and, where the data cannot decide, why. A verdict is a result:
    the exit code is 0 whatever the verdicts.

    Example: stclusters check gba

    Also: stclusters check my_claims.yaml --indicators yearbook.csv --editions eds --out chk
    """
    from stclusters.regions.claims import check_claims, load_claims  # noqa: PLC0415

    try:
        with _signals_unwind():
            parsed = load_claims(claims)
            res = check_claims(parsed, indicators=indicators or None, run=run,
                               editions=editions, run_edition=run_edition,
                               published=False if no_published else (published or True))
            if out is not None:
                res.write(out, force=force)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(res.to_dict(), indent=2, sort_keys=True,
                                    ensure_ascii=False) + "\n")
        return
    print_results(res)


def register(app: typer.Typer) -> None:
    """Add ``check`` to ``app``."""
    app.command("check", cls=_Command, epilog="Exit codes: 0 ok (whatever the verdicts); 1 "
                "internal error; 2 a bad claim file (every problem in one line), or an "
                "input that cannot be read.")(check_cmd)
