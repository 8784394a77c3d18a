"""The ``stclusters`` command line: ``demo`` and ``rank``.

Exit codes (also in ``rank --help``, the README and docs/reliability.md): 0 ok; 1 internal
error; 2 bad input or parameters; 3 nothing usable (every record filtered or rejected); 4 no
cluster found; 5 the output folder is in use by another run; 6 an output could not be
written (no space left, read-only, permission); 130 interrupted (Ctrl-C, SIGINT); 143
terminated (SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from stclusters._version import __version__
from stclusters.accounting import OUTCOME_EXIT_CODES
from stclusters.cli_options import params_from_options, with_options
from stclusters.errors import (InputFormatError, OutputBusyError, OutputWriteError, ParameterError,
                               StclustersError)

#: Exit codes besides the run outcomes' (:data:`stclusters.accounting.OUTCOME_EXIT_CODES`).
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_BUSY = 5
EXIT_WRITE = 6
EXIT_INTERRUPTED = 128 + signal.SIGINT    # 130, the shell's convention
EXIT_TERMINATED = 128 + signal.SIGTERM    # 143

EXIT_CODES_HELP = ("Exit codes: 0 ok; 1 internal error; 2 bad input or parameters; "
                   f"{OUTCOME_EXIT_CODES['nothing_used']} nothing usable (every record filtered "
                   f"or rejected); {OUTCOME_EXIT_CODES['no_cluster']} no cluster found; "
                   f"{EXIT_BUSY} output folder in use by another run; {EXIT_WRITE} an output "
                   f"could not be written (no space left, read-only); {EXIT_INTERRUPTED} "
                   f"interrupted; {EXIT_TERMINATED} terminated. Outputs are written in cases "
                   "0, 3 and 4; otherwise no manifest is written and no file of the run is left.")


class _FlagsWithoutValues:
    """Help shows a flag (``--force``, ``--help``) without a value placeholder."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        params = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


def _reflow(text: str | None) -> str | None:
    """A docstring's paragraphs as single lines: rich help keeps every line break of the
    source, which would wrap the help text at the code's line length, not the terminal's."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class _Command(_FlagsWithoutValues, TyperCommand):
    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any) -> None:  # noqa: A002
        super().__init__(*args, help=_reflow(help), **kwargs)


class _Group(_FlagsWithoutValues, TyperGroup):
    pass


app = typer.Typer(
    name="stclusters", cls=_Group,
    help="Find, rank and explain the world's science and technology clusters.\n\n"
         "Example: stclusters demo",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]})
console = Console()
if not console.is_terminal:  # piped or captured: wide enough for the ranking table
    console = Console(width=140)
err = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 140)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"stclusters {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """Find, rank and explain the world's science and technology clusters.

    Example: stclusters demo
    """


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds (and cleans up) like Ctrl-C."""


#: Signals received while a command ran. Libraries turn the KeyboardInterrupt raised in the
#: middle of their work into errors of their own (DuckDB: ``RuntimeError: Query
#: interrupted``; numba: ``SystemError``), so the signal itself says the run was stopped.
_received: list[int] = []


def _on_signal(signum, frame) -> None:  # noqa: ANN001, ARG001 - signal's signature
    _received.append(signum)
    raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """While the block runs, Ctrl-C and SIGTERM unwind the stack (so the run cleans up and
    exits 130 or 143, see :func:`_stopped`) instead of killing the process where it stands.
    Main thread only (the rule of ``signal``)."""
    _received.clear()
    try:
        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stopped(out: Path | None, *, terminated: bool, complete: bool) -> None:
    """Ctrl-C or SIGTERM: say so (not "internal error") and exit 130 or 143."""
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    where = f" in {escape(str(out))}" if out is not None else ""
    if complete:
        err.print(f"[bold red]{what}:[/] after the outputs were complete (manifest.json "
                  f"written{where})")
    else:
        err.print(f"[bold red]{what}:[/] the run stopped before its outputs were complete; no "
                  f"manifest was written and no file of this run is left{where}")
    raise typer.Exit(code=EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def _no_space(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left on device" in str(exc))


def _fail(exc: BaseException, *, out: Path | None = None, complete: bool = False) -> None:
    """One readable line and a hint, never a traceback (set STCLUSTERS_DEBUG=1 for one).

    ``complete``: the run's outputs (and manifest) were written before ``exc``.
    """
    import duckdb  # noqa: PLC0415 - loaded by the run already

    if _received or isinstance(exc, (KeyboardInterrupt, duckdb.InterruptException)):
        _stopped(out, complete=complete, terminated=isinstance(exc, _Terminated) or (
            signal.SIGTERM in _received))
    if os.environ.get("STCLUSTERS_DEBUG"):
        raise exc
    if isinstance(exc, StclustersError):
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        if exc.hint:
            err.print(f"[dim]hint: {escape(exc.hint)}[/]")
        code = (EXIT_BUSY if isinstance(exc, OutputBusyError) else
                EXIT_WRITE if isinstance(exc, OutputWriteError) else EXIT_BAD_INPUT)
        raise typer.Exit(code=code)
    if _no_space(exc):  # spilling to the temporary folder, or any other write of the run
        err.print(f"[bold red]error:[/] no space left on the device: {escape(str(exc))}")
        err.print("[dim]hint: free some space (or set TMPDIR to a larger device), then rerun[/]")
        raise typer.Exit(code=EXIT_WRITE)
    if isinstance(exc, OSError):
        err.print(f"[bold red]error:[/] {escape(str(exc.strerror or exc))}: "
                  f"{escape(str(exc.filename or ''))}")
        err.print("[dim]hint: check the path and its permissions[/]")
        raise typer.Exit(code=EXIT_BAD_INPUT)
    err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}")
    err.print("[dim]hint: rerun with STCLUSTERS_DEBUG=1 for the traceback, and report it[/]")
    raise typer.Exit(code=EXIT_INTERNAL)


def _show(res, *, title: str, top: int) -> None:  # noqa: ANN001
    """A run's ranking (top ``top`` of all the clusters it found) and its accounting."""
    found = any(c["n_clusters"] for c in res.manifest["clustering"].values())
    print_ranking(res.ranking, title=title, top=top,
                  n_clusters=res.table("clusters").num_rows if found else 0,
                  world_totals=res.manifest["world_totals"])
    _print_accounting(res.manifest)


def print_ranking(ranking, *, title: str, top: int = 20, n_clusters: int | None = None,
                  world_totals: dict[str, float] | None = None) -> None:
    """Print the top ``top`` rows of a ranking table (Arrow) as a rich table; the columns of
    a source with no used weight in ``world_totals`` (e.g. no patent input) are left out:
    they would show zeros that look like data."""
    if top <= 0 or ranking.num_rows == 0:
        return
    shown = ranking.slice(0, top)
    rows = shown.to_pylist()
    total = n_clusters if n_clusters is not None else ranking.num_rows
    table = Table(title=f"{title} (top {len(rows)} of {total:,})", title_justify="left",
                  show_lines=False)
    cols = [("Rank", "rank", "{:d}"), ("Cluster", "name", "{}"), ("Economy", "economy", "{}"),
            ("Patents", "patent_weight", "{:,.1f}"), ("Pubs", "publication_weight", "{:,.1f}"),
            ("Pat %", "patent_share_pct", "{:.2f}"), ("Pub %", "publication_share_pct", "{:.2f}"),
            ("Score %", "score_pct", "{:.2f}")]
    # Any further metric (vc_deal…) shows its share before the score.
    others = [c.removesuffix("_share_pct") for c in ranking.column_names
              if c.endswith("_share_pct") and c not in ("patent_share_pct", "publication_share_pct")]
    cols[-1:-1] = [(f"{s} %", f"{s}_share_pct", "{:.2f}") for s in others]
    empty = ({s for s in ("patent", "publication", *others) if not world_totals.get(s)}
             if world_totals is not None else set())
    cols = [c for c in cols if c[1] in ranking.column_names
            and not any(c[1].startswith(s + "_") for s in empty)]
    for header, _, _ in cols:
        table.add_column(header, justify="left" if header in ("Cluster", "Economy") else "right")
    for r in rows:
        # Text, not markup: a name or economy from the inputs ("[/]", "[link=...]") is shown
        # as it is, never run as rich markup.
        table.add_row(*[Text(fmt.format(r[key]) if r[key] is not None else "")
                        for _, key, fmt in cols])
    console.print(table)


_STAGE_TEXT = {"read": "reading inputs", "geocode": "geocoding addresses offline",
               "count": "fractional counting", "cluster": "clustering (exact DBSCAN)",
               "rank": "scoring, naming, ranking", "account": "accounting"}


def _size_bytes(path: Path) -> int:
    """Bytes of a file, or of the input files below a folder (0 when it cannot be seen)."""
    from stclusters.sources import folder_files  # noqa: PLC0415

    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in folder_files(path))
        return path.stat().st_size
    except OSError:
        return 0


#: How each input kind is named on its progress bar.
_KIND_LABEL = {"uspto-xml": "USPTO XML", "openalex": "OpenAlex works",
               "openalex-institutions": "OpenAlex institutions", "table": "tables",
               "patentsview": "PatentsView", "patstat": "PATSTAT"}


def _input_files(inputs: list[Path]) -> list[tuple[Path, str]]:
    """The input files below ``inputs`` with their kinds (folders and snapshots expanded),
    for the progress bars only: an input that cannot be told is left to the run to refuse."""
    from stclusters.workspace import as_inputs, expand_inputs  # noqa: PLC0415

    try:
        return [(Path(i.path), kind) for i, kind in expand_inputs(as_inputs(inputs))]
    except Exception:  # noqa: BLE001 - the run says what is wrong, in its own words
        return [(p, "input") for p in inputs]


class _ReadProgress:
    """Progress of the read stage, one bar per source kind (USPTO XML, OpenAlex works,
    PatentsView…): bytes of finished input files out of that kind's input bytes (a file
    counts when its last batch is in: readers do not report positions inside a file), the
    records read, their rate, and the time left."""

    def __init__(self, bar: Progress, inputs: list[Path], prefix: str) -> None:
        self.bar = bar
        self.prefix = prefix
        files = _input_files(inputs)
        self.kind_of = {str(p): kind for p, kind in files}
        self.records: dict[str, int] = {}
        self.current: str | None = None
        self.done: set[str] = set()
        self.tasks: dict[str, Any] = {}
        for kind in dict.fromkeys(kind for _, kind in files):
            total = sum(_size_bytes(p) for p, k in files if k == kind)
            self.tasks[kind] = bar.add_task(f"{prefix}{_KIND_LABEL.get(kind, kind)}",
                                            total=total or None, records="")
            self.records[kind] = 0
        self.last_t = time.perf_counter()
        self.started: dict[str, float] = {}

    def _kind(self, path: str) -> str:
        if path not in self.kind_of and self.tasks:  # a part of a folder given whole
            self.kind_of[path] = next(iter(self.tasks))
        return self.kind_of.get(path, "input")

    def _task(self, kind: str) -> Any:
        if kind not in self.tasks:
            self.tasks[kind] = self.bar.add_task(self.prefix + kind, total=None, records="")
            self.records[kind] = 0
        return self.tasks[kind]

    def _finish_current(self) -> None:
        if self.current is not None and self.current not in self.done:
            self.done.add(self.current)
            self.bar.advance(self._task(self._kind(self.current)), _size_bytes(Path(self.current)))

    def batch(self, path: str, n: int) -> None:
        if path != self.current:
            self._finish_current()
            self.current = path
        kind = self._kind(path)
        now = time.perf_counter()
        # A kind's clock starts when the batch before its first one came in (its reading
        # started then), not at the run's start.
        start = self.started.setdefault(kind, self.last_t)
        self.last_t = now
        self.records[kind] += n
        rate = self.records[kind] / max(now - start, 1e-9)
        self.bar.update(self._task(kind),
                        description=f"{self.prefix}{_KIND_LABEL.get(kind, kind)}: "
                                    f"{escape(Path(path).name)}",
                        records=f"{self.records[kind]:,} records, {rate:,.0f}/s")

    def finish(self) -> None:
        self._finish_current()
        for kind, task_id in self.tasks.items():
            task = self.bar.tasks[task_id]
            if task.total is not None:
                self.bar.update(task_id, completed=task.total)
            n_files = sum(1 for f in self.done if self._kind(f) == kind)
            self.bar.update(task_id, description=f"{self.prefix}{_KIND_LABEL.get(kind, kind)}: "
                            f"read {n_files} file(s)")
            self.bar.stop_task(task_id)


class _BarIfKnown(BarColumn):
    """A bar for work of known size; nothing (the spinner says it) when the size is unknown,
    rather than a pulse that looks like progress."""

    def render(self, task):  # noqa: ANN001, ANN201 - rich's signature
        return Text("") if task.total is None else super().render(task)


@contextlib.contextmanager
def _progress(inputs: list[Path], prefix: str = "", *, out: Console | None = None
              ) -> Iterator[tuple[Callable[[str], None], Callable[[str, int], None] | None]]:
    """Live progress: a bar for reading (the input bytes are known), a spinner for the later
    stages (their work is not known ahead).

    Yields the two callbacks :func:`stclusters.rank` takes (``progress``, ``on_batch``).
    Outside a terminal it prints one line per stage instead.
    """
    out = out or console
    if not out.is_terminal:
        yield (lambda stage: out.print(f"[dim]{prefix}{_STAGE_TEXT.get(stage, stage)}…[/]"),
               None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), _BarIfKnown(),
               TaskProgressColumn(), TextColumn("{task.fields[records]}"),
               TimeRemainingColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=True) as bar:
        reading = _ReadProgress(bar, inputs, prefix)
        later: list[Any] = []

        def stage(name: str) -> None:
            if name == "read":
                return
            if not later:  # reading is over
                reading.finish()
                later.append(bar.add_task(prefix, total=None, records=""))
            bar.update(later[0], description=prefix + _STAGE_TEXT.get(name, name))

        yield stage, reading.batch


def _demo_run(out: Path, *, n_per_source: int, seed: int, top: int, synthetic_only: bool):
    """The demo's two runs (real samples, SYNTHETIC world); return the last result."""
    from stclusters import demo as d  # noqa: PLC0415
    from stclusters.pipeline import rank  # noqa: PLC0415

    shared = None if synthetic_only else d.find_shared_data()
    if shared is not None:
        inputs = d.sample_inputs(shared)
        console.print(f"[bold](a) Real samples[/] from {escape(str(shared))}: "
                      f"{len(inputs.patents)} USPTO grant files, {len(inputs.publications)} OpenAlex file(s)")
        with _progress(inputs.all, "  ") as (stage, batch):
            res = rank([str(p) for p in inputs.all], params=d.sample_params(),
                       progress=stage, on_batch=batch, notes=d.SAMPLE_NOTES)
        res.write(out / "samples")
        _demo_views(out / "samples")
        mw = {s: c["min_weight"] for s, c in res.manifest["clustering"].items()}
        for note in d.SAMPLE_NOTES:
            console.print(f"  [yellow]{note}[/]")
        console.print("  min_weight used: " + ", ".join(f"{s} {w:.2f}" for s, w in mw.items()))
        _show(res, title="Real samples (USPTO grants 2005–2013, OpenAlex works 2017–2023): "
                         "S&T clusters", top=top)
    elif not synthetic_only:
        console.print("[yellow]../shared/data not found: running the synthetic world only "
                      "(set STCLUSTERS_SHARED_DATA to point at it).[/]")
    from stclusters.synthetic import write_synthetic_world  # noqa: PLC0415

    console.print(f"[bold](b) SYNTHETIC world[/]: {n_per_source:,} contributions per source, seed {seed}")
    world = out / "synthetic" / "SYNTHETIC_world.parquet"
    write_synthetic_world(world, n_per_source=n_per_source, seed=seed)
    with _progress([world], "  ") as (stage, batch):
        res = rank([str(world)], label="SYNTHETIC", progress=stage, on_batch=batch,
                   notes=["SYNTHETIC data drawn around GeoNames places; not real activity"])
    # The folder holds the world file this command just wrote beside the outputs.
    res.write(out / "synthetic", force=True)
    _demo_views(out / "synthetic")
    _show(res, title="SYNTHETIC world: S&T clusters (not real data)", top=top)
    return res


def _demo_views(run_dir: Path) -> None:
    """The views of a demo run: its offline HTML report and its figures (PNG, SVG)."""
    from stclusters.reports.figures import write_figures  # noqa: PLC0415
    from stclusters.reports.html import write_report  # noqa: PLC0415

    console.print(f"  report: {escape(str(write_report(run_dir)))} (opens offline)")
    write_figures(run_dir, force=True)
    console.print(f"  figures: {escape(str(run_dir / 'figures'))}/ (footprints map, "
                  "ranking bars; PNG and SVG)")


@app.command(cls=_Command)
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path("stclusters-demo"),
    n_per_source: Annotated[int, typer.Option(help="Synthetic contributions per source.",
                                              min=1)] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world.")] = 0,
    top: Annotated[int, typer.Option(help="Rows to print.", min=0)] = 20,
    synthetic_only: Annotated[bool, typer.Option("--synthetic-only", help="Skip the real samples.")] = False,
) -> None:
    """Run the whole pipeline on the real samples and on a seeded synthetic world.

    Example: stclusters demo --out stclusters-demo
    """
    t_start = time.perf_counter()
    try:
        with _signals_unwind():
            res = _demo_run(out, n_per_source=n_per_source, seed=seed, top=top,
                            synthetic_only=synthetic_only)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc, out=out)
    console.print(f"Outputs in {escape(str(out))}/. Wall time {time.perf_counter() - t_start:.1f} s.")
    _print_credits(res.manifest)


def _plural(n: int, unit: str) -> str:
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def _reasons(counts: dict[str, int]) -> str:
    """`` (doc_type_excluded 410, out_of_window 3)``, or nothing when there is none."""
    if not counts:
        return ""
    return " (" + ", ".join(f"{k} {n:,}" for k, n in counts.items()) + ")"


def accounting_line(source: str, r: dict[str, Any]) -> str:
    """``patent: read 3 documents = used 2 + filtered 1 (out_of_window 1) + rejected 0``."""
    return (f"{source}: read {_plural(r['read'], r['unit'])} = used {r['used']:,} + filtered "
            f"{sum(r['filtered'].values()):,}{_reasons(r['filtered'])} + rejected "
            f"{sum(r['rejected'].values()):,}{_reasons(r['rejected'])}")


def _print_credits(manifest: dict) -> None:
    """The data credits a run's results require (the manifest's ``attribution``)."""
    for line in manifest.get("attribution", []):
        console.print(f"[dim]{escape(line)}[/]", highlight=False)


#: How a unit is named in a per-unit accounting line (``patent table rows: read 170 rows``).
_UNIT_LABEL = {"document": "documents", "row": "table rows", "institution": "institutions"}


def accounting_lines(source: str, r: dict[str, Any]) -> list[str]:
    """One :func:`accounting_line` per unit: a source read from documents and from table
    rows gets a line for each, never a sum that adds documents to rows."""
    units = r.get("by_unit") or {}
    if len(units) <= 1:
        return [accounting_line(source, r)]
    return [accounting_line(f"{source} {_UNIT_LABEL.get(unit, unit + 's')}", {"unit": unit, **u})
            for unit, u in units.items()]


def _print_accounting(manifest: dict) -> None:
    for source, acc in manifest["accounting"].items():
        r = acc.get("records")
        for line in (accounting_lines(source, r) if r else []):
            console.print(f"  [dim]{escape(line)}[/]", highlight=False)


def _reason_hint(source: str, reason: str) -> str:
    """How to keep records that ``reason`` left out, in this command's options."""
    builtin = source in ("patent", "publication")  # any other metric is set with --metric
    if reason == "doc_type_excluded":
        return (f"use --{source}-types all" if builtin else
                f"use --metric {source}:types=all") + " to keep every type"
    if reason == "out_of_window":
        return (f"widen --{source}-years" if builtin else
                f"widen --metric {source}:years=...") + " (or --years all)"
    if reason == "domain_excluded":
        return "use --publication-domains all to keep every OpenAlex domain"
    if reason == "merged_away":
        return "OpenAlex merged these works into others (data/merged_ids): those count"
    if reason.startswith("unlocated") or reason == "no_located_contributor":
        return "give lat/lon or address fields (docs/inputs.md)"
    if reason == "coarse_precision":
        return "lower --min-precision (e.g. admin1)"
    if reason == "country_mismatch":
        return "--quality-action keep counts them (each is listed in the quality table)"
    if reason == "duplicate document":
        return "a document read twice counts once: is an input given twice, or do files overlap?"
    if reason == "metric_not_configured":
        return (f"a table's source must be patent or publication (or pass --source), or another "
                f"metric named with --metric {source} (docs/metrics.md)")
    if reason == "source not a metric name":
        return "a table's source must be a metric name such as patent, publication or vc_deal (or pass --source); see quarantine.csv"
    return "see quarantine.csv"


def _threshold_warnings(manifest: dict[str, Any]) -> list[str]:
    """Sources whose core threshold, derived from a share of a small world total, is below
    one document: then every located document is a core point and a cluster of its own."""
    out = []
    for s, c in sorted(manifest["clustering"].items()):
        sp = manifest["parameters"]["sources"].get(s, {})
        # n_core_points 0: a metric of weight 0, not clustered (docs/metrics.md).
        if sp.get("min_weight") is None and c["n_core_points"] and c["min_weight"] < 1.0:
            own = (f"--min-weight-{s}" if s in ("patent", "publication")
                   else f"--metric {s}:min_weight=N")
            out.append(f"{s}: min_weight {c['min_weight']:.3g} ({sp.get('min_weight_share_pct')} % "
                       f"of {manifest['world_totals'].get(s, 0):,.1f}) is below one document, so "
                       f"every located document is a core point; for a small input raise "
                       f"--min-weight-share-pct or set {own}")
    return out


def _report_outcome(outcome: dict[str, Any]) -> int:
    """Print the warnings and, when the run found nothing, why; return the exit code."""
    status = outcome["status"]
    main = max(outcome["warnings"], key=lambda w: (w["n"], w["source"]), default=None)
    for w in outcome["warnings"]:
        if status != "nothing_used" or w is not main:  # the main one is said below
            err.print(f"[yellow]warning:[/] {escape(w['message'])}; "
                      f"{escape(_reason_hint(w['source'], w['reason']))}", highlight=False)
    if status == "nothing_used":
        err.print(f"[bold red]{escape(outcome['message'])}[/]", highlight=False)
        if main:
            err.print(f"[dim]hint: {escape(_reason_hint(main['source'], main['reason']))}[/]")
        elif "lookup" in outcome["message"]:
            err.print("[dim]hint: an OpenAlex institutions file only locates the affiliations of "
                      "works: give the works too[/]")
        else:
            err.print("[dim]hint: the inputs hold no records (a header only?)[/]")
    elif status == "no_cluster":
        err.print(f"[bold red]{escape(outcome['message'])}[/]", highlight=False)
        err.print("[dim]hint: lower --min-weight-<source> or --min-weight-share-pct, or widen "
                  "--eps-km[/]")
    return OUTCOME_EXIT_CODES[status]


_KINDS = ("auto", "uspto-xml", "openalex", "openalex-institutions", "openalex-merged-ids",
          "table", "patentsview", "patstat")


def input_problems(*, kind: str, top: int, inputs: list[Path] | None,
                   workspace: Path | None, label: str | None = None) -> list[str]:
    """Problems with the options every ranking command shares (gathered, not raised)."""
    problems = []
    if label is not None and (not label.strip() or not label.isprintable()):
        problems.append(f"--label must be printable text on one line, got {label!r}")
    if kind not in _KINDS:
        problems.append(f"--kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    if top < 0:
        problems.append(f"--top must be >= 0, got {top}")
    if not inputs and workspace is None:
        problems.append("no input given: pass input files, or --workspace of an ingest")
    return problems


def engine_from_options(engine: str, master: str | None, spark_conf: list[str] | None,
                        workspace: Path | None, problems: list[str]):
    """The :class:`stclusters.engines.Engine` of the CLI's options; problems are gathered."""
    from stclusters.engines import engine as make_engine  # noqa: PLC0415
    from stclusters.errors import ParameterError as _PE  # noqa: PLC0415

    conf = {}
    for item in spark_conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--spark-conf takes KEY=VALUE, got {item!r}")
        else:
            conf[key.strip()] = value.strip()
    try:
        return make_engine(engine, master=master, conf=conf,
                           workspace=str(workspace) if workspace and engine == "spark" else None)
    except _PE as exc:
        problems.append(str(exc.args[0] if exc.args else exc))
        return None


def rank_cmd(*, inputs: list[str] | None, out: Path, force: bool, kind: str, source: str | None,
             workspace: Path | None, top: int, label: str | None, engine: str,
             master: str | None, spark_conf: list[str] | None, **method: Any) -> None:
    """Rank S&T clusters from your own records and write ranking, footprints, points, manifest.

    Example: stclusters rank grants.xml.gz works.jsonl.gz --out out --patent-years 2019-2023

    From a workspace filled by `stclusters ingest` (nothing is read again):
    stclusters rank --workspace pv.duckdb --out out

    On Spark (same method, same outputs): stclusters rank works/ --out out --engine spark
    --master spark://host:7077 --spark-conf spark.executor.memory=4g
    """
    from stclusters.engines._spark_remote import is_uri  # noqa: PLC0415
    from stclusters.pipeline import Input, rank  # noqa: PLC0415

    given = [p if is_uri(p) else str(Path(p)) for p in inputs or []]
    local = [Path(p) for p in given if not is_uri(p)]
    complete = False
    try:
        with _signals_unwind():
            problems = input_problems(kind=kind, top=top, inputs=given, workspace=workspace,
                                      label=label)
            eng = engine_from_options(engine, master, spark_conf, workspace, problems)
            params = params_from_options(method, extra_problems=problems)
            from stclusters.reports._lock import out_dir_lock  # noqa: PLC0415
            from stclusters.reports.outputs import check_out_dir  # noqa: PLC0415

            # Before the run: a long run must not end refused.
            check_out_dir(out, force=force, inputs=local)
            # The folder's lock from the start: a second run into it is refused at once,
            # not after its own long run.
            with out_dir_lock(out):
                with _progress([Path(p) for p in given]) as (stage, batch):
                    res = rank([Input(p, kind=kind, source=source) for p in given],
                               params=params, progress=stage, on_batch=batch,
                               workspace=workspace, label=label, engine=eng)
                paths = res.write(out, force=force)
            complete = True
            _print_run(res, out=out, paths=paths, top=top)
            code = _report_outcome(res.outcome)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        if isinstance(exc, InputFormatError) and re.search(
                r"missing required column\(s\) [^;]*\bsource\b", exc.detail):
            exc.hint = "add a source column, or pass --source patent (or publication)"
        _fail(exc, out=out, complete=complete)
    if code:
        raise typer.Exit(code=code)


def _print_run(res, *, out: Path, paths: dict[str, Path], top: int) -> None:  # noqa: ANN001
    """What ``rank`` prints once its outputs are written."""
    _show(res, title="S&T clusters", top=top)
    for line in _threshold_warnings(res.manifest) + snapshot_warnings(
            res.manifest.get("snapshot_checks", [])):
        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    console.print(f"Wrote {', '.join(sorted(p.name for p in paths.values()))} to "
                  f"{escape(str(out))}/.")
    _print_credits(res.manifest)


def _fixed(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


_INPUTS_HELP = ("USPTO XML, OpenAlex works (file or snapshot folder), PatentsView or PATSTAT "
                "table files (zipped as published, or not), contribution tables (CSV/Parquet), "
                "or folders of them.")
_KIND_HELP = "Input kind: {} (auto: from each file's name and content)."
_SOURCE_HELP = ("Metric of a table without a 'source' column: patent, publication or any "
                "other metric name (e.g. vc_deal).")

INPUTS_FIXED = _fixed("inputs", Annotated[list[Path] | None, typer.Argument(
    help=_INPUTS_HELP + " Optional with --workspace.", metavar="INPUT", show_default=False)],
    None)


def shared_fixed(*, workspace_help: str, top_help: str = "Rows to print (x >= 0).",
                 ) -> list[inspect.Parameter]:
    """``--force``, ``--kind``, ``--source``, ``--workspace`` and ``--top``: the options every
    ranking command (rank, editions, sensitivity, calibrate) takes besides the method's."""
    return [
        _fixed("force", Annotated[bool, typer.Option(
            "--force", help="Write into a folder that holds other files (they are left as "
                            "they are).")], False),
        _fixed("kind", Annotated[str, typer.Option(
            help=_KIND_HELP.format(", ".join(_KINDS)), metavar="KIND")], "auto"),
        _fixed("source", Annotated[str | None, typer.Option(help=_SOURCE_HELP,
                                                            metavar="SOURCE")], None),
        _fixed("workspace", Annotated[Path | None, typer.Option(help=workspace_help,
                                                                metavar="FILE")], None),
        _fixed("top", Annotated[int, typer.Option(help=top_help, metavar="N")], 20),
        _fixed("label", Annotated[str | None, typer.Option(
            help="A label written into every output (SYNTHETIC for synthetic data).",
            metavar="TEXT")], None),
    ]


#: rank's inputs stay text: ``s3a://bucket/key`` as a Path would lose a slash.
_RANK_INPUTS = _fixed("inputs", Annotated[list[str] | None, typer.Argument(
    help=_INPUTS_HELP + " With --engine spark also URIs Spark reads (s3a://, hdfs://, "
                        "abfss://, file:). Optional with --workspace.",
    metavar="INPUT", show_default=False)], None)

_RANK_FIXED = [
    _RANK_INPUTS,
    _fixed("out", Annotated[Path, typer.Option(
        help="Output folder: new, empty, or of an earlier run (whose outputs are replaced).")],
        Path("stclusters-out")),
    *shared_fixed(workspace_help="A workspace file (see `stclusters ingest`): the inputs are "
                                 "added to it first (files it holds are skipped), then "
                                 "everything it holds is ranked. With --engine spark: a "
                                 "folder, one Parquet set per input file, by content."),
    _fixed("engine", Annotated[str, typer.Option(
        help="Where reading, geocoding and counting run: duckdb (this machine) or spark "
             "(a Spark cluster; same method, same outputs).", metavar="ENGINE")], "duckdb"),
    _fixed("master", Annotated[str | None, typer.Option(
        help="Spark master: local[*], local[2], spark://host:7077, yarn, k8s://... "
             "(default: the one spark-submit set, else local[*]).", metavar="URL",
        show_default=False)], None),
    _fixed("spark_conf", Annotated[list[str] | None, typer.Option(
        "--spark-conf", help="A Spark setting KEY=VALUE (repeatable), e.g. "
                             "spark.executor.memory=4g.", metavar="KEY=VALUE",
        show_default=False)], None),
]

app.command("rank", cls=_Command, epilog=EXIT_CODES_HELP)(with_options(rank_cmd, _RANK_FIXED))


@app.command("ingest", cls=_Command, epilog="Exit codes: 0 ok; 1 internal error; 2 bad input "
             f"or parameters; {EXIT_INTERRUPTED} interrupted; {EXIT_TERMINATED} terminated. "
             "A file is in the workspace whole or not at all.")
def ingest_cmd(
    inputs: Annotated[list[Path], typer.Argument(help=_INPUTS_HELP, metavar="INPUT",
                                                 show_default=False)],
    workspace: Annotated[Path, typer.Option(help="The workspace file (DuckDB), created if "
                                                 "missing.", metavar="FILE")],
    kind: Annotated[str, typer.Option(help=_KIND_HELP.format(", ".join(_KINDS)),
                                      metavar="KIND")] = "auto",
    source: Annotated[str | None, typer.Option(help=_SOURCE_HELP, metavar="SOURCE")] = None,
) -> None:
    """Add input files to a workspace, reading each file once.

    Rerun it after a crash, or
    with new files, and only what the workspace lacks is read (by content, sha256).

    Example: stclusters ingest g_patent.tsv.zip g_inventor_disambiguated.tsv.zip
    g_location_disambiguated.tsv.zip --workspace pv.duckdb

    Then: stclusters rank --workspace pv.duckdb --out out
    """
    from stclusters.workspace import Input, ingest, workspace_snapshot_findings  # noqa: PLC0415

    try:
        with _signals_unwind():
            if kind not in _KINDS:
                raise ParameterError(f"--kind must be one of {', '.join(_KINDS)}, got {kind!r}")
            with _progress(list(inputs)) as (_, batch):
                report = ingest([Input(str(p), kind=kind, source=source) for p in inputs],
                                workspace=workspace, on_batch=batch)
            findings = workspace_snapshot_findings(workspace)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    _print_ingest(report, workspace)
    for line in snapshot_warnings(findings):
        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)


#: Snapshot findings printed one by one; the rest are counted (all are in the manifest).
_MAX_SNAPSHOT_WARNINGS = 5


def snapshot_warnings(findings: list[dict[str, Any]]) -> list[str]:
    """One line per OpenAlex snapshot manifest finding (at most a few, then a count)."""
    lines = []
    for f in findings[:_MAX_SNAPSHOT_WARNINGS]:
        where = f"{Path(f['entity_dir']).name}/{f['part']}" if f["part"] else Path(f["entity_dir"]).name
        detail = ", ".join(f"{k} {f[k]}" for k in ("expected", "found") if f.get(k) is not None)
        lines.append(f"OpenAlex snapshot {where}: {f['problem']}" + (f" ({detail})" if detail else ""))
    if len(findings) > _MAX_SNAPSHOT_WARNINGS:
        lines.append(f"… and {len(findings) - _MAX_SNAPSHOT_WARNINGS} more snapshot findings "
                     "(manifest.json: snapshot_checks)")
    return lines


def _print_ingest(report, workspace: Path) -> None:  # noqa: ANN001
    """One line per file (read or skipped), then the totals."""
    from stclusters.sources.openalex import file_name  # noqa: PLC0415

    for f in report.files:
        name = escape(file_name(Path(f.path)))
        if f.status == "skipped":
            console.print(f"  [dim]skipped {name}: already in the workspace "
                          f"(as {escape(Path(f.same_as or '').name)})[/]", highlight=False)
            continue
        rate = f.records_read / f.seconds if f.seconds > 0 else 0.0
        console.print(f"  read {name} ({f.kind}): {f.records_read:,} records, "
                      f"{f.rejected:,} rejected, {f.seconds:.1f} s ({rate:,.0f}/s)",
                      highlight=False)
    console.print(f"{report.n_read} file(s) read, {report.n_skipped} skipped, into "
                  f"{escape(str(workspace))}. Rank it with: stclusters rank --workspace "
                  f"{escape(str(workspace))} --out OUT", highlight=False)


@app.command(cls=_Command)
def version() -> None:
    """Print the version.

    Example: stclusters version
    """
    console.print(f"stclusters {__version__}")


#: Modules of the analysis commands; each has ``register(app)`` and imports what it shares
#: with this module (``_Command``, ``with_options``, ``_fail``…) from here.
_COMMAND_MODULES: tuple[str, ...] = (
    "stclusters._cli_editions", "stclusters._cli_profile", "stclusters._cli_calibrate",
    "stclusters._cli_region", "stclusters._cli_integration", "stclusters._cli_check",
    "stclusters._cli_report", "stclusters._cli_figure", "stclusters._cli_serve",
)


def _register_commands() -> None:
    import importlib  # noqa: PLC0415

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()


def main() -> None:  # pragma: no cover
    sys.exit(app())
