"""The ``stclusters`` command line: ``demo`` and ``rank``."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from stclusters._version import __version__
from stclusters.errors import StclustersError

app = typer.Typer(
    name="stclusters",
    help="Find, rank and explain the world's science and technology clusters.\n\n"
         "Example: stclusters demo",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
if not console.is_terminal:  # piped or captured: wide enough for the ranking table
    console = Console(width=140)
err = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 140)


def _fail(exc: Exception) -> None:
    """One readable line and a hint, never a traceback (set STCLUSTERS_DEBUG=1 for one)."""
    if os.environ.get("STCLUSTERS_DEBUG"):
        raise exc
    if isinstance(exc, StclustersError):
        err.print(f"[bold red]error:[/] {exc}")
        if exc.hint:
            err.print(f"[dim]hint: {exc.hint}[/]")
        raise typer.Exit(code=2)
    if isinstance(exc, OSError):
        err.print(f"[bold red]error:[/] {exc.strerror or exc}: {exc.filename or ''}")
        err.print("[dim]hint: check the path and its permissions[/]")
        raise typer.Exit(code=2)
    err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}")
    err.print("[dim]hint: rerun with STCLUSTERS_DEBUG=1 for the traceback, and report it[/]")
    raise typer.Exit(code=1)


def print_ranking(ranking, *, title: str, top: int = 20) -> None:
    """Print the top ``top`` rows of a ranking table (Arrow) as a rich table."""
    rows = ranking.slice(0, top).to_pylist()
    table = Table(title=title, title_justify="left", show_lines=False)
    cols = [("Rank", "rank", "{:d}"), ("Cluster", "name", "{}"), ("Economy", "economy", "{}"),
            ("Patents", "patent_weight", "{:,.1f}"), ("Pubs", "publication_weight", "{:,.1f}"),
            ("Pat %", "patent_share_pct", "{:.2f}"), ("Pub %", "publication_share_pct", "{:.2f}"),
            ("Score %", "score_pct", "{:.2f}")]
    cols = [c for c in cols if c[1] in ranking.column_names]
    for header, _, _ in cols:
        table.add_column(header, justify="left" if header in ("Cluster", "Economy") else "right")
    for r in rows:
        table.add_row(*[fmt.format(r[key]) if r[key] is not None else "" for _, key, fmt in cols])
    console.print(table)


_STAGE_TEXT = {"read": "reading inputs", "geocode": "geocoding addresses offline",
               "count": "fractional counting", "cluster": "clustering (exact DBSCAN)",
               "rank": "scoring, naming, ranking", "account": "accounting"}


@contextlib.contextmanager
def _progress(prefix: str = ""):
    """A live spinner with the current stage, the records read and the time spent.

    Yields the two callbacks :func:`stclusters.rank` takes (``progress``, ``on_batch``).
    Outside a terminal it prints one line per stage instead.
    """
    if not console.is_terminal:
        yield (lambda stage: console.print(f"[dim]{prefix}{_STAGE_TEXT.get(stage, stage)}…[/]"),
               None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(prefix + "starting", total=None)
        seen = {"n": 0}

        def stage(name: str) -> None:
            bar.update(task, description=prefix + _STAGE_TEXT.get(name, name))

        def batch(path: str, n: int) -> None:
            seen["n"] += n
            bar.update(task, description=f"{prefix}reading {Path(path).name}: {seen['n']:,} records")

        yield stage, batch


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path("stclusters-demo"),
    n_per_source: Annotated[int, typer.Option(help="Synthetic contributions per source.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world.")] = 0,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 20,
    synthetic_only: Annotated[bool, typer.Option("--synthetic-only", help="Skip the real samples.")] = False,
) -> None:
    """Run the whole pipeline on the real samples and on a seeded synthetic world.

    Example: stclusters demo --out stclusters-demo
    """
    from stclusters import demo as d  # noqa: PLC0415
    from stclusters.pipeline import rank  # noqa: PLC0415

    t_start = time.perf_counter()
    try:
        shared = None if synthetic_only else d.find_shared_data()
        if shared is not None:
            inputs = d.sample_inputs(shared)
            console.print(f"[bold](a) Real samples[/] from {shared}: "
                          f"{len(inputs.patents)} USPTO grant files, {len(inputs.publications)} OpenAlex file(s)")
            with _progress("  ") as (stage, batch):
                res = rank([str(p) for p in inputs.all], params=d.sample_params(),
                           progress=stage, on_batch=batch, notes=d.SAMPLE_NOTES)
            res.write(out / "samples")
            mw = {s: c["min_weight"] for s, c in res.manifest["clustering"].items()}
            for note in d.SAMPLE_NOTES:
                console.print(f"  [yellow]{note}[/]")
            console.print("  min_weight used: " + ", ".join(f"{s} {w:.2f}" for s, w in mw.items()))
            print_ranking(res.ranking, title="Real samples (USPTO grants 2005–2013, OpenAlex works "
                                             "2017–2023): S&T clusters", top=top)
            _print_accounting(res.manifest)
        elif not synthetic_only:
            console.print("[yellow]../shared/data not found: running the synthetic world only "
                          "(set STCLUSTERS_SHARED_DATA to point at it).[/]")
        from stclusters.synthetic import write_synthetic_world  # noqa: PLC0415

        console.print(f"[bold](b) SYNTHETIC world[/]: {n_per_source:,} contributions per source, seed {seed}")
        world = out / "synthetic" / "SYNTHETIC_world.parquet"
        write_synthetic_world(world, n_per_source=n_per_source, seed=seed)
        with _progress("  ") as (stage, batch):
            res = rank([str(world)], label="SYNTHETIC", progress=stage, on_batch=batch,
                       notes=["SYNTHETIC data drawn around GeoNames places; not real activity"])
        res.write(out / "synthetic")
        print_ranking(res.ranking, title="SYNTHETIC world: S&T clusters (not real data)", top=top)
        _print_accounting(res.manifest)
    except Exception as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    console.print(f"Outputs in {out}/. Place names and populations: GeoNames (geonames.org), CC BY 4.0. "
                  f"Wall time {time.perf_counter() - t_start:.1f} s.")


def _print_accounting(manifest: dict) -> None:
    for source, acc in manifest["accounting"].items():
        r = acc.get("records")
        if not r:
            continue
        console.print(f"  [dim]{source}: read {r['read']:,} {r['unit']}s = used {r['used']:,} + filtered "
                      f"{sum(r['filtered'].values()):,} {r['filtered'] or ''} + rejected "
                      f"{sum(r['rejected'].values()):,} {r['rejected'] or ''}[/]")


@app.command("rank")
def rank_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="USPTO XML, OpenAlex works, or contribution tables.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("stclusters-out"),
    eps_km: Annotated[float, typer.Option(help="DBSCAN radius for every source, km.")] = 13.0,
    min_weight_patent: Annotated[float | None, typer.Option(help="Core threshold, patents (fractional count).")] = None,
    min_weight_publication: Annotated[float | None, typer.Option(help="Core threshold, publications.")] = None,
    min_weight_share_pct: Annotated[float, typer.Option(help="Threshold as % of the world total when no absolute one is given.")] = 0.02,
    patent_years: Annotated[str | None, typer.Option(help="Patent window, e.g. 2019-2023.")] = None,
    publication_years: Annotated[str | None, typer.Option(help="Publication window, e.g. 2018-2022.")] = None,
    counting: Annotated[str, typer.Option(help="'located' (1/n_located) or 'all' (1/n_all).")] = "located",
    top_n: Annotated[int, typer.Option(help="Clusters to publish.")] = 100,
    kind: Annotated[str, typer.Option(help="Input kind: auto, uspto-xml, openalex, openalex-institutions, table.")] = "auto",
    source: Annotated[str | None, typer.Option(help="Metric of a table without a 'source' column.")] = None,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 20,
) -> None:
    """Rank S&T clusters from your own records and write ranking, footprints, points, manifest.

    Example: stclusters rank grants.xml.gz works.jsonl.gz --out out --patent-years 2019-2023
    """
    from stclusters.params import RankParams  # noqa: PLC0415
    from stclusters.pipeline import Input, rank  # noqa: PLC0415

    try:
        params = RankParams(counting=counting, top_n=top_n)
        for s, mw, years in (("patent", min_weight_patent, patent_years),
                             ("publication", min_weight_publication, publication_years)):
            first, last = _years(years)
            params = params.with_source(s, eps_km=eps_km, min_weight=mw, first_year=first,
                                        last_year=last, min_weight_share_pct=min_weight_share_pct)
        with _progress() as (stage, batch):
            res = rank([Input(str(p), kind=kind, source=source) for p in inputs], params=params,
                       progress=stage, on_batch=batch)
        paths = res.write(out)
    except Exception as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    print_ranking(res.ranking, title="S&T clusters", top=top)
    _print_accounting(res.manifest)
    console.print(f"Wrote {', '.join(sorted(p.name for p in paths.values()))} to {out}/. "
                  "Place names: GeoNames (geonames.org), CC BY 4.0.")


def _years(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    from stclusters.errors import ParameterError  # noqa: PLC0415

    try:
        a, _, b = text.partition("-")
        return int(a), int(b or a)
    except ValueError:
        raise ParameterError(f"bad year window {text!r}", hint="write it as 2019-2023") from None


@app.command()
def version() -> None:
    """Print the version.

    Example: stclusters version
    """
    console.print(f"stclusters {__version__}")


def main() -> None:  # pragma: no cover
    sys.exit(app())
