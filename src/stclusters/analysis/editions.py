"""Editions over time: rank the same records over successive windows, match the clusters of
consecutive editions by footprint overlap, and report previous rank, move, status (continued,
split, merged, new, entered), exits and growth per metric (methodology §7).

The matching rule is in :mod:`stclusters.analysis._match` and ``docs/editions.md``.

Examples
--------
>>> from stclusters.analysis.editions import edition_params, rank_editions   # doctest: +SKIP
>>> params = edition_params(RankParams(), [2023, 2024])                        # doctest: +SKIP
>>> eds = rank_editions(["grants/", "works/"], params)                         # doctest: +SKIP
>>> eds.table.to_pandas()[["edition", "rank", "name", "prev_rank", "status"]]  # doctest: +SKIP
>>> eds.write("editions-out/")                                                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import shutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stclusters.analysis._match import (EXITS_SCHEMA, Side, match, moves_schema,
                                        side_of_result, side_of_run_folder)
from stclusters.errors import ParameterError, StclustersError
from stclusters.params import RankParams
from stclusters.reports._atomic import atomic_path, write_text
from stclusters.reports._tables import labelled, put_file, write_parquet
from stclusters.reports.csv_writer import write_csv
from stclusters.store import file_sha256
from stclusters.schema import YEAR_RANGE

__all__ = ["DEFAULT_LAG_YEARS", "DEFAULT_WINDOW_YEARS", "EDITION_FILES", "Editions", "compare",
           "edition_params", "exits", "parse_edition_years", "parse_lag_years", "rank_editions"]

#: Years in each edition's window (GII: five years of PCT filings and of articles).
DEFAULT_WINDOW_YEARS = 5
#: Years between an edition and the last year of its window, per source (GII 2024: PCT
#: 2019–2023 is one year behind, SCIE 2018–2022 two: articles are indexed later).
DEFAULT_LAG_YEARS: Mapping[str, int] = {"patent": 1, "publication": 2}

#: Files an editions run writes in its output folder (besides one run folder per edition).
EDITION_FILES = ("editions.csv", "editions.parquet", "exits.csv", "exits.parquet",
                 "workspace.duckdb", "editions.json")

#: Edition names become folder names: letters, digits, ``.``, ``_``, ``-``.
_EDITION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def edition_params(base: RankParams, years: Sequence[int], *,
                   window_years: int = DEFAULT_WINDOW_YEARS,
                   lag_years: Mapping[str, int] | None = None,
                   default_lag_years: int = 1) -> dict[str, RankParams]:
    """The parameters of each edition: ``base`` with every source's window set.

    Edition ``Y`` counts, for each metric ``s`` of ``base`` (:attr:`RankParams.metrics`:
    patent and publication unless excluded, and every other metric named), the years
    ``[Y − lag_s − window_years + 1, Y − lag_s]`` (GII 2024: PCT 2019–2023, articles
    2018–2022). Every other parameter is ``base``'s.

    Parameters
    ----------
    base : RankParams
        Parameters shared by every edition (its windows are replaced).
    years : sequence of int
        Edition years; editions are returned in increasing year order.
    window_years : int
        Years in each window (>= 1), default 5.
    lag_years : mapping of str to int, optional
        Per source, years from the window's last year to the edition year (>= 0), over the
        defaults :data:`DEFAULT_LAG_YEARS` (patent 1, publication 2, for those of them that
        ``base`` counts). Given lags must name metrics of ``base``.
    default_lag_years : int
        Lag of a configured source not in ``lag_years`` (>= 0), default 1.

    Returns
    -------
    dict of str to RankParams
        Edition name (the year, as text) → its parameters, in year order.

    Raises
    ------
    ParameterError
        Every problem at once: no year, a repeated or non-integer year, a window or lag out
        of range, a lag for a source that is not configured, a window outside the years
        the readers accept.
    """
    problems: list[str] = []
    year_list = list(years) if not isinstance(years, (str, bytes)) else [years]
    if not year_list:
        problems.append("years: give at least one edition year")
    bad = [y for y in year_list if not _is_int(y)]
    if bad:
        problems.append(f"years must be integers, got {', '.join(map(repr, bad[:3]))}")
    good = sorted(y for y in year_list if _is_int(y))
    repeated = sorted({y for y in good if good.count(y) > 1})
    if repeated:
        problems.append(f"years: {', '.join(map(str, repeated))} given more than once")
    if not _is_int(window_years) or window_years < 1:
        problems.append(f"window_years must be an integer >= 1, got {window_years!r}")
    if not _is_int(default_lag_years) or default_lag_years < 0:
        problems.append(f"default_lag_years must be an integer >= 0, got {default_lag_years!r}")
    configured = list(base.metrics)
    given = dict(lag_years or {})
    # The defaults for the metrics this run counts, then what the caller gave over them.
    lag_years = {s: lag for s, lag in DEFAULT_LAG_YEARS.items() if s in configured} | given
    for s, lag in sorted(lag_years.items()):
        if not _is_int(lag) or lag < 0:
            problems.append(f"lag_years[{s!r}] must be an integer >= 0, got {lag!r}")
    unknown = sorted(set(given) - set(configured))
    if unknown:
        problems.append(f"lag_years names source(s) not configured: {', '.join(unknown)} "
                        f"(configured: {', '.join(configured)})")
    if problems:
        raise ParameterError("invalid editions: " + "; ".join(problems),
                             hint="e.g. years 2021-2024, window 5 years, "
                                  "lags patent=1,publication=2")
    out: dict[str, RankParams] = {}
    lo, hi = YEAR_RANGE
    for y in good:
        params = base
        for s in configured:
            last = y - int(lag_years.get(s, default_lag_years))
            first = last - int(window_years) + 1
            if first < lo or last > hi:
                problems.append(f"edition {y}: {s} window {first}-{last} is outside "
                                f"[{lo}, {hi}]")
            params = params.with_source(s, first_year=first, last_year=last)
        out[str(y)] = params
    if problems:
        raise ParameterError("invalid editions: " + "; ".join(problems),
                             hint="choose edition years whose windows lie in the data's years")
    return out


#: At most this many editions from one ``--years`` text (a typo such as 2021-20240 would
#: otherwise ask for thousands of rankings).
MAX_EDITIONS = 100


def parse_edition_years(text: str) -> list[int]:
    """``2021-2024`` → [2021, 2022, 2023, 2024]; ``2019,2021,2023`` and mixes such as
    ``2015-2017,2020`` too. Sorted, without repeats.

    Raises
    ------
    ValueError
        The text is not of that form, a range runs backwards, or it names more than
        :data:`MAX_EDITIONS` editions (the message says which).
    """
    years: set[int] = set()
    for item in (text or "").split(","):
        m = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", item)
        if not m:
            raise ValueError(f"cannot read {item.strip()!r} as a year or a range of years "
                             "(2021, 2021-2024)")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if first > last:
            raise ValueError(f"the range {first}-{last} runs backwards")
        if last - first >= MAX_EDITIONS:
            raise ValueError(f"{first}-{last} names more than {MAX_EDITIONS} editions")
        years.update(range(first, last + 1))
    if len(years) > MAX_EDITIONS:
        raise ValueError(f"{len(years)} editions: at most {MAX_EDITIONS}")
    return sorted(years)


def parse_lag_years(text: str) -> dict[str, int]:
    """``patent=1,publication=2`` → {'patent': 1, 'publication': 2}.

    Raises
    ------
    ValueError
        An item is not ``source=N`` with N a whole number of years >= 0, or a source is
        named twice.
    """
    lags: dict[str, int] = {}
    for item in (text or "").split(","):
        m = re.fullmatch(r"\s*([A-Za-z][\w-]*)\s*=\s*(\d{1,3})\s*", item)
        if not m:
            raise ValueError(f"cannot read {item.strip()!r} as source=YEARS (patent=1)")
        if m.group(1) in lags:
            raise ValueError(f"{m.group(1)} given twice")
        lags[m.group(1)] = int(m.group(2))
    return lags


def _windows(params: RankParams) -> dict[str, list[int | None]]:
    return {s: [sp.first_year, sp.last_year] for s, sp in sorted(params.sources.items())}


#: Columns that lead the editions table, before the new ranking's and the moves' columns.
_EDITION_COLUMNS = [("edition", pa.string()), ("edition_order", pa.int32())]


@dataclass
class Editions:
    """Rankings of successive editions and the moves between them.

    Attributes
    ----------
    results : dict of str to RankResult
        Each edition's ranking, in edition order.
    table : pyarrow.Table
        The editions table: one row per cluster of each edition's top N (columns in
        ``docs/editions.md``), editions in order, ranks ascending within each.
    exits : pyarrow.Table
        Per edition after the first, the previous top-N clusters that left the top N:
        ``edition, edition_order, prev_rank, prev_cluster_id, prev_name, prev_economy,
        successor_cluster_id, successor_name, successor_rank, reason`` (``below_top_n`` or
        ``vanished``).
    label : str or None
        Data label of every edition (``SYNTHETIC``), if any.
    """

    results: dict[str, Any]
    table: pa.Table
    exits: pa.Table
    label: str | None = None

    def write(self, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
        """Write every edition's outputs into ``out_dir/<edition>/`` and, in ``out_dir``,
        ``editions.csv``/``.parquet``, ``exits.csv``/``.parquet``, ``workspace.duckdb``
        (tables ``editions``, ``exits``, ``edition_params``) and ``editions.json`` (last: its
        presence means the folder is complete). Every file is written atomically.

        ``out_dir`` must be new, empty, or the folder of an earlier editions run (whose
        outputs are removed first); another non-empty folder is refused unless ``force``.
        Returns file name → path (edition folders as ``<edition>/``).
        """
        from stclusters.analysis.profiles import build_edition_profiles  # noqa: PLC0415
        from stclusters.reports._lock import out_dir_lock  # noqa: PLC0415

        out = Path(out_dir)
        _check_out(out, force=force)
        with out_dir_lock(out):
            _clear_earlier(out)
            # Each edition's profiles carry its own growth rows (profiles.csv of its folder).
            build_edition_profiles(self)
            paths: dict[str, Path] = {}
            made: list[Path] = []  # what this run created, removed again if it fails
            try:
                for name, res in self.results.items():
                    if not (out / name).exists():
                        made.append(out / name)
                    paths[f"{name}/"] = out / name
                    res.write(out / name, force=force)
                tables = self._write_tables(out)
            except BaseException:
                # Interrupted or failed: no edition folder of this run may stay behind looking
                # finished (each has its own manifest); editions.json is written last.
                for path in made:
                    shutil.rmtree(path, ignore_errors=True)
                for name in EDITION_FILES:
                    (out / name).unlink(missing_ok=True)
                raise
            paths.update(tables)
            return paths

    def _write_tables(self, out: Path) -> dict[str, Path]:
        table, exit_rows = labelled(self.table, self.label), labelled(self.exits, self.label)
        paths = {}
        for name, t, writer in (("editions.csv", table, write_csv),
                                ("editions.parquet", table, write_parquet),
                                ("exits.csv", exit_rows, write_csv),
                                ("exits.parquet", exit_rows, write_parquet)):
            paths[name] = put_file(out / name, lambda w=writer, t=t, p=out / name: w(t, p))
        params = pa.table({
            "edition": pa.array(list(self.results), pa.string()),
            "edition_order": pa.array(range(len(self.results)), pa.int32()),
            "parameters": pa.array([json.dumps(r.params.to_dict(), sort_keys=True)
                                    for r in self.results.values()], pa.string())})
        ws = out / "workspace.duckdb"
        paths[ws.name] = put_file(ws, lambda: _write_workspace(
            ws, {"editions": table, "exits": exit_rows, "edition_params": params}, self.label))
        manifest = {
            "data_label": self.label,
            "editions": [{"edition": name, "edition_order": i, "folder": name,
                          "windows": _windows(r.params), "outcome": r.outcome["status"]}
                         for i, (name, r) in enumerate(self.results.items())],
            "matching": {"rule": "footprint overlap, see docs/editions.md",
                         "footprint_eps_km": {n: r.params.footprint_eps_km
                                              for n, r in self.results.items()},
                         "top_n": {n: r.params.top_n for n, r in self.results.items()}},
            "outputs": {n: ({"path": n, "byte_stable": False} if n == "workspace.duckdb" else
                            {"path": n, "size_bytes": p.stat().st_size, "sha256": file_sha256(p)})
                        for n, p in sorted(paths.items())},
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        paths["editions.json"] = put_file(out / "editions.json",
                                      lambda: write_text(out / "editions.json", text))
        return paths


def _write_workspace(path: Path, tables: Mapping[str, pa.Table], label: str | None) -> None:
    """Tables into a new DuckDB file, atomically (registered Arrow tables, no SQL text from
    data)."""
    from stclusters._sql import identifier  # noqa: PLC0415

    with atomic_path(path) as tmp:
        tmp.unlink()  # DuckDB creates the file itself
        con = duckdb.connect(str(tmp))
        try:
            for name, table in tables.items():
                con.register("_t", table)
                con.execute(f"CREATE TABLE {identifier(name)} AS SELECT * FROM _t")
                con.unregister("_t")
            if label:
                con.execute("CREATE TABLE data_label AS SELECT ?::VARCHAR AS data_label", [label])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


def _earlier_editions(out: Path) -> list[str] | None:
    """Edition folders of an earlier editions run in ``out`` (None: not such a folder)."""
    manifest = out / "editions.json"
    if not manifest.is_file():
        return None
    try:
        return [str(e["folder"]) for e in json.loads(manifest.read_text("utf-8"))["editions"]
                if _EDITION_NAME.fullmatch(str(e["folder"]))]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _ours(name: str) -> bool:
    from stclusters.reports._lock import LOCK_NAME  # noqa: PLC0415

    return name in EDITION_FILES or name == LOCK_NAME or (
        ".partial" in name and any(name.startswith(f".{f}.") for f in EDITION_FILES))


def _is_run_folder(path: Path) -> bool:
    """A folder an interrupted editions write may have left: an edition's run folder."""
    from stclusters.reports.outputs import _is_ours  # noqa: PLC0415

    return (path.is_dir() and not path.is_symlink() and bool(_EDITION_NAME.fullmatch(path.name))
            and all(_is_ours(e.name) for e in path.iterdir()))


def _check_out(out: Path, *, force: bool) -> None:
    """Refuse a file, or a non-empty folder that is no editions run's (unless ``force``)."""
    if out.exists() and not out.is_dir():
        raise StclustersError(f"{out}: the output path is a file, not a folder",
                              hint="give --out a folder (new, empty, or of an earlier run)")
    if not out.is_dir() or force or _earlier_editions(out) is not None:
        return
    foreign = sorted(e.name for e in out.iterdir() if not (_ours(e.name) or _is_run_folder(e)))
    if foreign:
        raise StclustersError(f"{out}: the output folder holds files of no editions run "
                              f"({', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''})",
                              hint="choose a new or empty folder, or pass --force")


def _clear_earlier(out: Path) -> None:
    """Remove an earlier editions run's files (its manifest first) and edition folders, so
    that no stale edition sits beside the new ones. Other files are left alone."""
    from stclusters.reports.outputs import prepare_out_dir  # noqa: PLC0415

    earlier = _earlier_editions(out) or []
    (out / "editions.json").unlink(missing_ok=True)
    for name in EDITION_FILES:
        (out / name).unlink(missing_ok=True)
    for folder in earlier:
        sub = out / folder
        if sub.is_dir() and not sub.is_symlink():
            prepare_out_dir(sub)  # removes that run's outputs only
            with contextlib.suppress(OSError):
                sub.rmdir()  # only if nothing else is left in it


def _check_editions(editions: Mapping[str, RankParams]) -> None:
    problems = []
    if not editions:
        problems.append("give at least one edition")
    for name, params in editions.items():
        if not isinstance(name, str) or not _EDITION_NAME.fullmatch(name):
            problems.append(f"edition name {name!r} must be 1-64 letters, digits, '.', '_' or "
                            "'-' (it names the edition's folder)")
        if not isinstance(params, RankParams):
            problems.append(f"edition {name!r}: parameters must be a RankParams, got "
                            f"{type(params).__name__}")
    if problems:
        raise ParameterError("invalid editions: " + "; ".join(problems),
                             hint="build them with edition_params(base, years)")


def rank_editions(located_or_inputs: Any, editions: Mapping[str, RankParams], *,
                  label: str | None = None, workspace: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> Editions:
    """Rank each edition over the same records (read once) and match consecutive editions.

    Parameters
    ----------
    located_or_inputs : Located, or inputs as :func:`stclusters.read` takes them
        Records already read (:class:`stclusters.pipeline.Located`), or inputs to read once.
    editions : mapping of str to RankParams
        Edition name → parameters, in time order (see :func:`edition_params`); each name
        must be usable as a folder name.
    label : str, optional
        Data label of every edition's outputs (``SYNTHETIC``).
    workspace : path, optional
        A workspace to read (as :func:`stclusters.read`), when inputs are given.
    progress : callable, optional
        Called with ``"<edition>: <stage>"`` as each edition's stages start (and with the
        read stages when inputs are read).

    Returns
    -------
    Editions
        ``.results``, ``.table`` (cluster × edition), ``.exits``, ``.write(out_dir)``.
    """
    from stclusters.pipeline import Located, read  # noqa: PLC0415

    _check_editions(editions)
    located = (located_or_inputs if isinstance(located_or_inputs, Located)
               else read(located_or_inputs, workspace=workspace, progress=progress))
    results: dict[str, Any] = {}
    moves: dict[str, pa.Table] = {}
    exit_parts: list[pa.Table] = []
    previous: Side | None = None
    for order, (name, params) in enumerate(editions.items()):
        stage = (lambda s, n=name: progress(f"{n}: {s}")) if progress else None
        results[name] = located.rank(params, label=label, progress=stage,
                                     notes=[f"edition {name}"])
        # Only two editions' points are held at a time (millions of rows each).
        side = side_of_result(results[name])
        if previous is None:
            moves[name], exit_rows = _first_edition(side), EXITS_SCHEMA.empty_table()
        else:
            matched = match(previous, side)
            moves[name], exit_rows = matched.moves, matched.exits
        exit_parts.append(_with_edition(exit_rows, name, order))
        previous = side
    return Editions(results, _editions_table(moves), pa.concat_tables(exit_parts), label)


def _editions_table(moves: Mapping[str, pa.Table]) -> pa.Table:
    """The editions' moves in one table: every source's columns in each (an edition without
    a source's data gets nulls there), editions in order."""
    sources = sorted({c[: -len("_share_pct")] for t in moves.values() for c in t.column_names
                      if c.endswith("_share_pct")})
    return pa.concat_tables([_with_edition(_conform(t, sources), name, order)
                             for order, (name, t) in enumerate(moves.items())])


def _first_edition(side: Side) -> pa.Table:
    """The first edition's rows: its top N, with nothing to compare against (nulls)."""
    empty = Side(side.points.slice(0, 0), side.clusters.slice(0, 0), side.world_totals,
                 side.footprint_eps_km, side.top_n)
    moves = match(empty, side).moves
    # Against no earlier edition every cluster would read "new": say "no previous edition".
    return moves.set_column(moves.schema.get_field_index("status"), "status",
                            pa.nulls(moves.num_rows, pa.string()))


def _conform(moves: pa.Table, sources: list[str]) -> pa.Table:
    """Columns of every source in a fixed order (an edition without a source's data gets
    nulls), so that editions concatenate into one table."""
    head = ["rank", "cluster_id", "name", "economy", *[f"{s}_weight" for s in sources],
            *[f"{s}_share_pct" for s in sources], "score_pct"]
    schema = moves_schema(sources)
    cols = {}
    for name in head + schema.names:
        kind = schema.field(name).type if name in schema.names else (
            moves.schema.field(name).type if name in moves.column_names else pa.float64())
        cols[name] = (moves.column(name).cast(kind) if name in moves.column_names
                      else pa.nulls(moves.num_rows, kind))
    return pa.table(cols)


def _with_edition(table: pa.Table, name: str, order: int) -> pa.Table:
    table = table.add_column(0, "edition_order", pa.array([order] * table.num_rows, pa.int32()))
    return table.add_column(0, "edition", pa.array([name] * table.num_rows, pa.string()))


def exits(old: Any, new: Any, *, top_n: int | None = None) -> pa.Table:
    """The old top-N clusters that left the top N (see :func:`compare`; columns as
    :attr:`Editions.exits` without the edition columns)."""
    return match(_side(old), _side(new), top_n=top_n).exits


def compare(old: Any, new: Any, *, top_n: int | None = None) -> pa.Table:
    """Match two rankings by footprint overlap: previous rank, move, status and growth.

    The rule is that of editions (``docs/editions.md``), for any two rankings of the same
    kind of records: two editions, or the same world ranked with two metrics and with three.

    Parameters
    ----------
    old, new : RankResult or path
        A ranking in memory, or the folder of a finished ``stclusters rank`` run (its
        ``manifest.json`` and ``workspace.duckdb``, opened read-only).
    top_n : int, optional
        Published top N of both (for ``entered``); by default each ranking's own.

    Returns
    -------
    pyarrow.Table
        One row per cluster of ``new``'s top N in rank order: the editions table's columns
        without ``edition`` and ``edition_order``. Exits: :func:`exits`.
    """
    return match(_side(old), _side(new), top_n=top_n).moves


def _side(ranking: Any) -> Side:
    if isinstance(ranking, Side):
        return ranking
    if isinstance(ranking, (str, Path)):
        return side_of_run_folder(ranking)
    if hasattr(ranking, "con") and hasattr(ranking, "manifest"):
        return side_of_result(ranking)
    raise TypeError(f"a ranking must be a RankResult or a run folder, got {type(ranking).__name__}")
