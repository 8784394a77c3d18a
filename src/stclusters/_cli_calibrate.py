"""Commands ``sensitivity`` (the top N over a neighbourhood of the clustering parameters) and
``calibrate`` (fit ``eps_km`` and thresholds to a reference ranking). See
``docs/calibration.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stclusters.cli import (INPUTS_FIXED, _Command, _fail, _fixed, _progress, _signals_unwind,
                            console, err, input_problems, shared_fixed)
from stclusters.cli_options import params_from_options, with_options
from stclusters.errors import ParameterError

_EXIT_HELP = ("Exit codes: 0 ok; 1 internal error; 2 bad input or parameters; 130 interrupted; "
              "143 terminated.")
_CALIBRATE_EXIT_HELP = _EXIT_HELP.replace("0 ok;", "0 ok (a poor fit is reported, not an error);")


def _floats(text: str, option: str, problems: list[str]) -> tuple[float, ...]:
    """``"8,10,13"`` → (8.0, 10.0, 13.0); a problem naming the option otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        problems.append(f"{option} must be comma-separated numbers, got {text!r}")
        return ()
    if not values:
        problems.append(f"{option} must list at least one number")
    return values


def _read(inputs: list[Path] | None, *, kind: str, source: str | None, workspace: Path | None):
    from stclusters.pipeline import Input, read  # noqa: PLC0415

    inputs = inputs or []
    with _progress(list(inputs)) as (stage, batch):
        return read([Input(str(p), kind=kind, source=source) for p in inputs],
                    workspace=workspace, progress=stage, on_batch=batch)


# ----------------------------------------------------------------------------- sensitivity

def sensitivity_cmd(*, inputs: list[Path], out: Path, force: bool, kind: str, source: str | None,
                    workspace: Path | None, top: int, eps_factors: str, min_weight_factors: str,
                    split_min_share_pct: float, figure_top: int, label: str | None,
                    **method: Any) -> None:
    """How the top N changes around the chosen clustering parameters.

    Each
    cluster's rank range, and which clusters merge, split or dissolve, and where.

    Example: stclusters sensitivity grants/ works/ --out sens --eps-km 13 --top-n 30

    Every setting combines one radius factor (all sources) with one threshold factor per
    source: 5 × 5 × 5 = 125 settings by default. Writes sensitivity.csv/.parquet,
    sensitivity_events, sensitivity_settings, sensitivity.png/.svg and sensitivity.json.
    """
    from stclusters.analysis import _output  # noqa: PLC0415
    from stclusters.analysis.sensitivity import (OUTPUT_NAMES, SensitivityGrid,  # noqa: PLC0415
                                                 sensitivity)

    try:
        with _signals_unwind():
            problems = input_problems(kind=kind, top=top, inputs=inputs, workspace=workspace,
                                      label=label)
            ef = _floats(eps_factors, "--eps-factors", problems)
            mf = _floats(min_weight_factors, "--min-weight-factors", problems)
            if figure_top < 1:
                problems.append(f"--figure-top must be >= 1, got {figure_top}")
            if not (0 < split_min_share_pct <= 50):
                problems.append(f"--split-min-share-pct must be in (0, 50], got {split_min_share_pct}")
            params = params_from_options(method, extra_problems=problems)
            grid = SensitivityGrid(eps_factors=ef, min_weight_factors=mf)
            _output.prepare_dir(out, OUTPUT_NAMES, force=force)  # before the long run
            located = _read(inputs, kind=kind, source=source, workspace=workspace)
            res = located.rank(params, label=label)
            if res.table("clusters").num_rows == 0:
                raise ParameterError("the run found no cluster: nothing to follow",
                                     hint="lower --min-weight-share-pct or widen --eps-km")
            console.print(f"[dim]{len(grid.eps_factors)} radius × "
                          f"{len(grid.min_weight_factors)} threshold factors per source…[/]")
            rep = sensitivity(res, grid=grid, split_min_share_pct=split_min_share_pct)
            paths = rep.write(out, force=True, max_figure_clusters=figure_top)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc, out=out)
    _print_sensitivity(rep, top=top)
    console.print(f"Wrote {', '.join(sorted(p.name for p in paths))} to {escape(str(out))}/.")


def _print_sensitivity(rep: Any, *, top: int) -> None:
    s = rep.summary()
    label = f"{rep.label}: " if rep.label else ""
    console.print(Text(f"{label}{s['n_settings']} settings; of the top {s['top_n']}, "
                       f"{s['always_in_top_n']} stay in it in every setting and "
                       f"{s['rank_range_at_most_2']} move at most 2 ranks; events: "
                       + (", ".join(f"{k} {v}" for k, v in s["events"].items()) or "none")))
    if top <= 0:
        return
    t = Table(title=f"Rank ranges (top {min(top, rep.clusters.num_rows)})", title_justify="left")
    for h in ("Rank", "Cluster", "Economy", "Min", "Median", "Max", "In top N %", "Merged",
              "Split", "Dissolved"):
        t.add_column(h, justify="left" if h in ("Cluster", "Economy") else "right")
    for r in rep.clusters.slice(0, top).to_pylist():
        t.add_row(*(Text(str(v) if v is not None else "–") for v in (
            r["rank"], r["name"], r["economy"], r["rank_min"], r["rank_median"], r["rank_max"],
            f"{r['top_n_share_pct']:.0f}", r["n_merged"], r["n_split"], r["n_dissolved"])))
    console.print(t)


_COMMON_FIXED = [
    INPUTS_FIXED,
    *shared_fixed(workspace_help="A workspace file (see `stclusters ingest`) to read instead "
                                 "of (or besides) the inputs."),
]

_SENSITIVITY_FIXED = [
    _COMMON_FIXED[0],
    _fixed("out", Annotated[Path, typer.Option(
        help="Output folder: new, empty, or of an earlier sensitivity run (replaced).")],
        Path("stclusters-sensitivity")),
    *_COMMON_FIXED[1:],
    _fixed("eps_factors", Annotated[str, typer.Option(
        help="Factors applied to every source's eps_km (and merge_eps_km when set).",
        metavar="F,F,...")], "0.8,0.9,1,1.1,1.25"),
    _fixed("min_weight_factors", Annotated[str, typer.Option(
        help="Factors applied to each source's absolute min_weight, source by source.",
        metavar="F,F,...")], "0.5,0.75,1,1.5,2"),
    _fixed("split_min_share_pct", Annotated[float, typer.Option(
        help="A cluster is split when two clusters of a setting each hold this share (%) of "
             "its core weight, in (0, 50].", metavar="PCT")], 10.0),
    _fixed("figure_top", Annotated[int, typer.Option(
        help="Clusters drawn in the figure (x >= 1).", metavar="N")], 40),
]


# ----------------------------------------------------------------------------- calibrate

def calibrate_cmd(*, inputs: list[Path], reference: Path, pairs: Path | None, no_pairs: bool,
                  out: Path, force: bool, kind: str, source: str | None,
                  workspace: Path | None, top: int, eps_km_grid: str,
                  min_weight_share_pct_grid: str, per_source_eps: bool, weight_rank: float,
                  weight_share: float, weight_pairs: float, weight_match: float,
                  label: str | None, **method: Any) -> None:
    """Fit eps_km and the thresholds to a reference ranking and place pairs.

    Fits each metric's threshold and eps_km to a reference ranking and must-merge /
    must-not-merge pairs; reports the fit in full (rank correlation, share errors, pairs
    held, unmatched clusters, best setting and runners-up) and says plainly when it is poor.

    Example: stclusters calibrate grants/ works/ --reference gii2023_top34.csv --out cal
    --eps-km-grid 8,10,13,16,20 --min-weight-share-pct-grid 0.005,0.01,0.02,0.04,0.08

    Pairs: the methodology's by default (Shenzhen with Hong Kong and Guangzhou, …; not
    Boston with New York …), --pairs FILE for your own, --no-pairs for none.
    """
    from stclusters.analysis import _output  # noqa: PLC0415
    from stclusters.analysis.calibrate import (OUTPUT_NAMES, CalibrationGrid,  # noqa: PLC0415
                                               Objective, calibrate, default_pairs,
                                               read_pairs, read_reference)

    try:
        with _signals_unwind():
            problems = input_problems(kind=kind, top=top, inputs=inputs, workspace=workspace,
                                      label=label)
            eps = _floats(eps_km_grid, "--eps-km-grid", problems)
            shares = _floats(min_weight_share_pct_grid, "--min-weight-share-pct-grid", problems)
            if pairs is not None and no_pairs:
                problems.append("--pairs and --no-pairs exclude each other")
            params = params_from_options(method, extra_problems=problems)
            grid = CalibrationGrid(eps_km=eps, min_weight_share_pct=shares,
                                   per_source_eps=per_source_eps)
            objective = Objective(weight_rank, weight_share, weight_pairs, weight_match)
            # Files first, then the long read: a bad reference must not end a long run.
            ref = read_reference(reference)
            the_pairs = [] if no_pairs else (read_pairs(pairs) if pairs else default_pairs())
            _output.prepare_dir(out, OUTPUT_NAMES, force=force)
            located = _read(inputs, kind=kind, source=source, workspace=workspace)
            console.print(f"[dim]searching {len(grid.eps_km)} radii × "
                          f"{len(grid.min_weight_share_pct)} thresholds per source…[/]")
            rep = calibrate(located, ref, params=params, pairs=the_pairs, grid=grid,
                            objective=objective, label=label)
            paths = rep.write(out, force=True)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc, out=out)
    _print_fit(rep, top=top)
    console.print(f"Wrote {', '.join(sorted(p.name for p in paths))} to {escape(str(out))}/.")


def _print_fit(rep: Any, *, top: int) -> None:
    style = {"good": "green", "fair": "yellow", "poor": "bold red"}[rep.verdict]
    for i, line in enumerate(rep.lines()):
        console.print(Text(line, style=style if "verdict:" in line else ""))
    if rep.verdict == "poor":
        err.print("[bold red]the fit is poor:[/] the reference is not reproduced by any "
                  "setting searched (see calibration.csv, cluster by cluster)")
    if top <= 0:
        return
    t = Table(title="Reference clusters at the best setting", title_justify="left")
    for h in ("Ref", "Reference cluster", "Ours", "Our cluster"):
        t.add_column(h, justify="left" if "cluster" in h else "right")
    for r in rep.clusters.slice(0, top).to_pylist():
        t.add_row(Text(str(r["ref_rank"])), Text(r["ref_name"]),
                  Text(str(r["rank"]) if r["rank"] is not None else "unmatched"),
                  Text(r["name"] or ""))
    console.print(t)


_CALIBRATE_FIXED = [
    _COMMON_FIXED[0],
    _fixed("reference", Annotated[Path, typer.Option(
        help="Reference ranking (CSV: rank, cluster, economy, <source>_share_pct or the "
             "GII's pct_share_pct/pub_share_pct, optional counts).", metavar="FILE.csv",
        show_default=False)]),
    _fixed("pairs", Annotated[Path | None, typer.Option(
        help="Pairs file (CSV: rule merge|apart, place_a, economy_a, place_b, economy_b); "
             "default: the methodology's pairs.", metavar="FILE")], None),
    _fixed("no_pairs", Annotated[bool, typer.Option(
        "--no-pairs", help="Fit without pairs.")], False),
    _fixed("out", Annotated[Path, typer.Option(
        help="Output folder: new, empty, or of an earlier calibration (replaced).")],
        Path("stclusters-calibration")),
    *_COMMON_FIXED[1:],
    _fixed("eps_km_grid", Annotated[str, typer.Option(
        help="eps_km values searched, km (every source alike unless --per-source-eps).",
        metavar="KM,KM,...")], "8,10,13,16,20"),
    _fixed("min_weight_share_pct_grid", Annotated[str, typer.Option(
        help="Thresholds searched, % of each source's world total, source by source.",
        metavar="PCT,PCT,...")], "0.005,0.01,0.02,0.04,0.08"),
    _fixed("per_source_eps", Annotated[bool, typer.Option(
        "--per-source-eps", help="Search each source's eps_km on its own (grid size "
                                 "multiplies).")], False),
    _fixed("weight_rank", Annotated[float, typer.Option(
        help="Weight of (1 - Spearman)/2 in the loss (x >= 0).", metavar="W")], 1.0),
    _fixed("weight_share", Annotated[float, typer.Option(
        help="Weight of the mean share error (WAPE) in the loss (x >= 0).", metavar="W")], 1.0),
    _fixed("weight_pairs", Annotated[float, typer.Option(
        help="Weight of the share of pairs not held in the loss (x >= 0).", metavar="W")], 1.0),
    _fixed("weight_match", Annotated[float, typer.Option(
        help="Weight of the share of unmatched reference clusters in the loss (x >= 0).",
        metavar="W")], 1.0),
]


def register(app: typer.Typer) -> None:
    """Add ``sensitivity`` and ``calibrate`` to ``app``."""
    app.command("sensitivity", cls=_Command, epilog=_EXIT_HELP)(
        with_options(sensitivity_cmd, _SENSITIVITY_FIXED))
    app.command("calibrate", cls=_Command, epilog=_CALIBRATE_EXIT_HELP)(
        with_options(calibrate_cmd, _CALIBRATE_FIXED))
