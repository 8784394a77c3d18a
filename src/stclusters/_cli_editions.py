"""Commands ``editions`` (rank successive editions, with moves) and ``compare`` (the moves
between two finished runs). See ``docs/editions.md``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stclusters.accounting import OUTCOME_EXIT_CODES
from stclusters.cli import (_STAGE_TEXT, INPUTS_FIXED, _Command, _fail, _fixed, _progress,
                            _signals_unwind, EXIT_CODES_HELP, console, err, input_problems,
                            shared_fixed)
from stclusters.cli_options import params_from_options, rank_options
from stclusters.errors import ParameterError

_STATUS_STYLE = {"new": "green", "entered": "green", "merged": "cyan", "split": "yellow"}


def _move_text(move: int | None) -> str:
    if move is None:
        return ""
    return f"+{move}" if move > 0 else ("=" if move == 0 else f"−{-move}")


def _pct_text(value: float | None) -> str:
    if value is None or value != value:
        return ""
    return f"{value:+.1f} %"


def print_moves(table: pa.Table, *, title: str, top: int = 20) -> None:
    """The first ``top`` rows of a moves table (editions or compare) as a rich table:
    rank, name, economy, previous rank, move, status, growth per source, score."""
    if top <= 0 or table.num_rows == 0:
        return
    rows = table.slice(0, top).to_pylist()
    # A source without growth anywhere shown (no data in either ranking) gets no column.
    growth = [c for c in table.column_names if c.endswith("_growth_pct")
              and any(r[c] is not None for r in rows)]
    out = Table(title=f"{title} (top {len(rows)} of {table.num_rows})", title_justify="left")
    for header in ("Rank", "Cluster", "Economy", "Prev", "Move", "Status",
                   *[f"{c[: -len('_growth_pct')].capitalize()} growth" for c in growth], "Score %"):
        out.add_column(header, justify="left" if header in ("Cluster", "Economy", "Status")
                       else "right")
    for r in rows:
        # Text, not markup: names come from the inputs.
        out.add_row(Text(str(r["rank"])), Text(r["name"] or ""), Text(r["economy"] or ""),
                    Text("" if r["prev_rank"] is None else str(r["prev_rank"])),
                    Text(_move_text(r["move"])),
                    Text(r["status"] or "", style=_STATUS_STYLE.get(r["status"] or "", "")),
                    *[Text(_pct_text(r[c])) for c in growth],
                    Text(f"{r['score_pct']:.2f}" if r["score_pct"] is not None else ""))
    console.print(out)


def print_exits(exits: pa.Table) -> None:
    """One line per cluster that left the top N."""
    for r in exits.to_pylist():
        where = (f"now {r['successor_rank']} ({r['successor_name']})"
                 if r["reason"] == "below_top_n" else "no successor")
        edition = f"{r['edition']}: " if "edition" in r else ""
        console.print(Text(f"  {edition}left the top N: {r['prev_rank']}. {r['prev_name']} "
                           f"({r['prev_economy']}), {where}"))


def _stage_text(stage: str) -> str:
    """``2019: cluster`` → ``edition 2019: clustering (exact DBSCAN)``."""
    edition, _, name = stage.rpartition(": ")
    text = _STAGE_TEXT.get(name, name)
    return f"edition {edition}: {text}" if edition else text


def _edition_inputs(years: str, window_years: int, lag_years: str | None, problems: list[str]
                    ) -> tuple[list[int], dict[str, int] | None]:
    from stclusters.analysis.editions import parse_edition_years, parse_lag_years  # noqa: PLC0415

    edition_years: list[int] = []
    lags: dict[str, int] | None = None  # the defaults, for the metrics the run counts
    try:
        edition_years = parse_edition_years(years)
    except ValueError as exc:
        problems.append(f"--years: {exc}")
    if lag_years is not None:
        try:
            lags = parse_lag_years(lag_years)
        except ValueError as exc:
            problems.append(f"--lag-years: {exc}")
    if window_years < 1:
        problems.append(f"--window-years must be >= 1, got {window_years}")
    return edition_years, lags


def editions_cmd(*, inputs: list[Path], years: str, window_years: int, lag_years: str | None,
                 out: Path, force: bool, kind: str, source: str | None,
                 workspace: Path | None, top: int, label: str | None, **method: Any) -> None:
    """Rank several editions of the same records, with each cluster's move.

    Records are read once. Each cluster gets its
    previous rank, move, status (continued, split, merged, new, entered), exits and growth.

    Example: stclusters editions grants/ works/ --years 2021-2024 --out editions-out

    Edition Y counts a source over [Y-lag-window+1, Y-lag]; every rank option applies.
    """
    from stclusters.analysis.editions import (_check_out, edition_params,  # noqa: PLC0415
                                              rank_editions)
    from stclusters.pipeline import Input, read  # noqa: PLC0415

    complete = False
    code = 0
    try:
        with _signals_unwind():
            problems = input_problems(kind=kind, top=top, inputs=inputs, workspace=workspace,
                                      label=label)
            edition_years, lags = _edition_inputs(years, window_years, lag_years, problems)
            base = params_from_options(method, extra_problems=problems)
            eds = edition_params(base, edition_years, window_years=window_years, lag_years=lags)
            _check_out(out, force=force)  # before the long run, not after it
            inputs = inputs or []
            with _progress(list(inputs)) as (stage, batch):
                located = read([Input(str(p), kind=kind, source=source) for p in inputs],
                               workspace=workspace, progress=stage, on_batch=batch)
                result = rank_editions(located, eds, label=label,
                                       progress=lambda s: stage(_stage_text(s)))
            result.write(out, force=force)
            complete = True
            _print_editions(result, out=out, top=top)
            code = max(OUTCOME_EXIT_CODES[r.outcome["status"]] for r in result.results.values())
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc, out=out, complete=complete)
    if code:
        raise typer.Exit(code=code)


def _print_editions(result: Any, *, out: Path, top: int) -> None:
    table = result.table
    names = list(result.results)
    for name in names:
        res = result.results[name]
        rows = table.filter(pa.compute.equal(table.column("edition"), name))
        status = rows.column("status").to_pylist()
        counts = ", ".join(f"{s} {status.count(s)}" for s in
                           ("continued", "split", "merged", "entered", "new") if status.count(s))
        n_exits = sum(1 for e in result.exits.column("edition").to_pylist() if e == name)
        windows = ", ".join(f"{s} {sp.first_year}-{sp.last_year}"
                            for s, sp in sorted(res.params.sources.items()))
        console.print(Text(f"edition {name} ({windows}): {rows.num_rows} ranked"
                           + (f"; {counts}; {n_exits} left the top N" if counts else "")))
        if res.outcome["status"] != "ok":
            err.print(f"[yellow]warning:[/] edition {escape(name)}: "
                      f"{escape(res.outcome['message'])}", highlight=False)
    last = table.filter(pa.compute.equal(table.column("edition"), names[-1]))
    print_moves(last, title=f"S&T clusters, edition {names[-1]}", top=top)
    print_exits(result.exits.filter(pa.compute.equal(result.exits.column("edition"), names[-1])))
    console.print(f"Wrote editions.csv, editions.parquet, exits.csv, exits.parquet, "
                  f"workspace.duckdb, editions.json and one folder per edition to "
                  f"{escape(str(out))}/.")


_EDITIONS_FIXED = [
    INPUTS_FIXED,
    _fixed("years", Annotated[str, typer.Option(
        help="Edition years: 2021-2024, 2019,2021,2023 or a mix.", metavar="YEARS",
        show_default=False)]),
    _fixed("window_years", Annotated[int, typer.Option(
        help="Years in each edition's window (x >= 1).", metavar="N")], 5),
    _fixed("lag_years", Annotated[str | None, typer.Option(
        help="Years from each source's window end to the edition year, over the defaults "
             "patent=1,publication=2; any other metric lags 1.", metavar="SOURCE=N,...",
        show_default=False)], None),
    _fixed("out", Annotated[Path, typer.Option(
        help="Output folder: new, empty, or of an earlier editions run (replaced).")],
        Path("stclusters-editions")),
    *shared_fixed(workspace_help="A workspace file (see `stclusters ingest`) to rank.",
                  top_help="Rows of the last edition to print (x >= 0)."),
]


def compare_cmd(
    old_run: Annotated[Path, typer.Argument(help="Folder of the earlier (or reference) "
                                                 "`stclusters rank` run.", metavar="OLD_RUN",
                                            show_default=False)],
    new_run: Annotated[Path, typer.Argument(help="Folder of the later (or variant) run.",
                                            metavar="NEW_RUN", show_default=False)],
    out: Annotated[Path | None, typer.Option(
        help="Write the moves to this .csv or .parquet file (the exits beside it, as "
             "<name>.exits.csv or .parquet).", metavar="FILE")] = None,
    top_n: Annotated[int | None, typer.Option(
        help="Published top N of both runs (default: each run's own top_n).",
        metavar="N")] = None,
    top: Annotated[int, typer.Option(help="Rows to print (x >= 0).", metavar="N")] = 20,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace --out (and its exits file) if they exist.")] = False,
) -> None:
    """The moves between two finished runs.

    Previous rank, move, status and growth of each
    cluster of NEW_RUN's top N, matched to OLD_RUN's clusters by footprint overlap.

    Example: stclusters compare out-2023 out-2024 --out moves.csv
    """
    from stclusters.analysis._match import match, side_of_run_folder  # noqa: PLC0415

    try:
        with _signals_unwind():
            problems = []
            if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
                problems.append(f"--out must end in .csv or .parquet, got {out.name!r}")
            if top_n is not None and top_n < 1:
                problems.append(f"--top-n must be >= 1, got {top_n}")
            if top < 0:
                problems.append(f"--top must be >= 0, got {top}")
            if out is not None:
                problems += _out_file_problems(out, (old_run, new_run), force=force)
            if problems:
                raise ParameterError("invalid parameters: " + "; ".join(problems),
                                     hint="see `stclusters compare --help`")
            matched = match(side_of_run_folder(old_run), side_of_run_folder(new_run),
                            top_n=top_n)
            if out is not None:
                _write_moves(matched.moves, matched.exits, out)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    print_moves(matched.moves, title=f"{new_run.name} against {old_run.name}", top=top)
    print_exits(matched.exits)
    if out is not None:
        console.print(f"Wrote {escape(str(out))} and {escape(str(exits_path(out)))}.")


def _out_file_problems(out: Path, runs: tuple[Path, ...], *, force: bool) -> list[str]:
    """``compare --out`` never writes into a run folder it reads (its files are that run's,
    hashed in its manifest), and replaces an existing file only with ``--force``."""
    problems = []
    for run in runs:
        if out.resolve().parent == run.resolve() or run.resolve() in out.resolve().parents:
            problems.append(f"--out {str(out)!r} is inside the run folder {str(run)!r}: "
                            "write the moves elsewhere")
    existing = [p for p in (out, exits_path(out)) if p.exists()]
    if existing and not force:
        problems.append(f"--out: {', '.join(repr(str(p)) for p in existing)} exist(s); "
                        "pass --force to replace")
    return problems


def exits_path(out: Path) -> Path:
    """``moves.csv`` → ``moves.exits.csv``: where ``compare --out`` puts the exits."""
    return out.with_name(f"{out.stem}.exits{out.suffix}")


def _write_moves(moves: pa.Table, exit_rows: pa.Table, out: Path) -> None:
    from stclusters.reports._tables import put_file, write_parquet  # noqa: PLC0415
    from stclusters.reports.csv_writer import write_csv  # noqa: PLC0415

    writer = write_csv if out.suffix.lower() == ".csv" else write_parquet
    for table, path in ((moves, out), (exit_rows, exits_path(out))):
        put_file(path, lambda t=table, p=path: writer(t, p))


def _with_method_options(func: Any, fixed: list[inspect.Parameter]) -> Any:
    """``func`` with the ``fixed`` parameters and every rank option except the windows
    (``--years``, ``--<source>-years``): editions set those."""
    func.__signature__ = inspect.Signature(
        fixed + [o.parameter() for o in rank_options() if o.target[0] != "years"])
    return func


def register(app: typer.Typer) -> None:
    """Add ``editions`` and ``compare`` to ``app``."""
    app.command("editions", cls=_Command, epilog=EXIT_CODES_HELP + " With several editions, "
                "the exit code is the worst edition's.")(
        _with_method_options(editions_cmd, _EDITIONS_FIXED))
    app.command("compare", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 bad "
                "parameters or a folder that is not a finished run.")(compare_cmd)
