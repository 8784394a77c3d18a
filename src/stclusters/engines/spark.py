"""The Spark engine: read, geocode, filter, count and aggregate on a Spark cluster.

``stclusters.rank(inputs, engine=stclusters.engines.engine("spark", master=...))`` or
``stclusters rank … --engine spark --master spark://host:7077``.

Where the work runs:

* **reading**: one Spark task per input file runs the project's own reader (the one the
  DuckDB engine runs) and writes the file's tables as Parquet into the store
  (:mod:`stclusters.engines._spark_store`); content hashes are taken in tasks too, and a
  file already in the store is not read again;
* **geocoding**: the distinct address keys are geocoded in Arrow batches on the executors,
  the gazetteer index broadcast to them once;
* **duplicates, filtering, fractional counting, aggregation to weighted points**: Spark SQL,
  the very statements the DuckDB engine runs (:mod:`stclusters.engines.transpile`);
* **on the driver**: the weighted points are collected (at most
  :data:`stclusters.engines.MAX_DRIVER_POINTS`) and clustered with the engine's kernel; the
  ranking, accounting and outputs follow as on DuckDB, which reads the contributions from
  the Parquet that Spark wrote.
"""

from __future__ import annotations

import functools
import itertools
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters import contributions as contrib
from stclusters import quality
from stclusters import store as st
from stclusters._sql import identifier
from stclusters.engines import Engine
from stclusters.engines._spark_remote import is_uri
from stclusters.engines._spark_store import hash_task, read_task, stored_files, sweep_stale
from stclusters.engines.transpile import to_spark
from stclusters.errors import InputFormatError, ParameterError
from stclusters.params import RankParams
from stclusters.sources import BUNDLE_KINDS
from stclusters.store import (
    DUPLICATES_QUARANTINE_SQL,
    DUPLICATES_SQL,
    DOCUMENT_DUPLICATE_MATCH,
    RAW_BUNDLE_DUPLICATE_MATCH,
    RAW_DUPLICATE_MATCH,
)

# pyspark 4 warns on every Arrow transfer that it does not fully support pandas 3; the
# engine hands it Arrow tables, never pandas frames.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)

#: Spark settings the engine sets unless the user set them: results in UTC, no console
#: progress bars (the CLI draws its own), Arrow transfers.
_DEFAULT_CONF = {"spark.sql.session.timeZone": "UTC",
                 "spark.ui.showConsoleProgress": "false",
                 "spark.sql.execution.arrow.pyspark.enabled": "true",
                 "spark.sql.ansi.enabled": "true"}

#: The tables of the read inputs that the counting and the ranking reach.
_READ_TABLES = ("inputs", "documents", "raw_contributions", "quarantine", "institutions",
                "merged_ids")


def session(eng: Engine):
    """The Spark session of ``eng`` (an active one is reused: a notebook's, spark-submit's)."""
    from pyspark import SparkConf, SparkContext  # noqa: PLC0415 - pyspark is heavy, optional
    from pyspark.sql import SparkSession  # noqa: PLC0415

    builder = SparkSession.builder.appName("stclusters")
    master = eng.master
    # Under spark-submit the master is set, but SparkConf cannot see it before the JVM is
    # reached: spark-submit's gateway port says so.
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ \
            and not SparkConf().contains("spark.master"):
        master = "local[*]"
    if master is not None:
        builder = builder.master(master)
    conf = {**_DEFAULT_CONF, **eng.conf}
    starting = SparkContext._active_spark_context is None  # else getOrCreate reuses it
    unreachable = _unreachable_master(master) if master is not None and starting else None
    if unreachable:
        # Spark itself retries for about a minute, printing Java traces, and its last line
        # does not say why: a TCP connection tells in a few seconds.
        raise ParameterError(f"cannot reach the Spark master {master}: {unreachable}",
                             hint="start the master (or python -m stclusters.engines.standalone "
                                  "start), check the host and port of --master "
                                  "(spark://HOST:7077), or use --master local[*]")
    if (master or "").startswith("local"):
        import sys  # noqa: PLC0415

        # Spark's 200 shuffle partitions are 200 tasks per shuffle, mostly empty, on a
        # laptop: twice the cores, with adaptive execution splitting skewed ones.
        conf.setdefault("spark.sql.shuffle.partitions", str(max(2, 2 * _local_cores(master))))

        # Local executors run this interpreter (its packages), not whatever python3 is
        # first on PATH (pyspark reads the variable when the context starts).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in sorted(conf.items()):
        builder = builder.config(key, value)
    try:
        if SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
            _launch_quiet_gateway({"spark.app.name": "stclusters",
                                   **({"spark.master": master} if master else {}), **conf})
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Java missing, master unreachable…
        raise ParameterError(f"cannot start Spark (master {master or 'from spark-submit'}): "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                             hint="Spark needs Java 17 (java -version) and pyspark; check "
                                  "--master") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _local_cores(master: str) -> int:
    """Cores of a ``local``, ``local[n]``, ``local[*]`` or ``local[n,retries]`` master."""
    inside = master[len("local["):-1].split(",")[0] if master.startswith("local[") else "1"
    if inside in ("*", ""):
        return os.cpu_count() or 2
    return int(inside) if inside.isdigit() and int(inside) > 0 else 1


def _unreachable_master(master: str, *, timeout_s: float = 3.0) -> str | None:
    """Why no master of a ``spark://host:port[,host:port…]`` URL accepts a TCP connection
    (``"host:port: connection refused; …"``), or None: one answers, or ``master`` is
    another kind (``local``, ``yarn``, ``k8s://``: not checked), or a URL Spark will refuse
    with its own message. One live master of a high-availability list is enough (the
    others may be standbys that are down)."""
    import socket  # noqa: PLC0415

    if not master.startswith("spark://"):
        return None
    causes = []
    for hostport in master[len("spark://"):].split(","):
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit():
            return None
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return None
        except socket.gaierror:
            cause = "unknown host"
        except ConnectionRefusedError:
            cause = "connection refused (nothing listens on that port)"
        except TimeoutError:
            cause = f"no answer within {timeout_s:g} s"
        except OSError as exc:  # no route to host, network unreachable…
            cause = (exc.strerror or type(exc).__name__).lower()
        causes.append(f"{hostport}: {cause}")
    return "; ".join(causes)


#: The driver JVM's logging when the user configured none: errors only, one line each, on
#: stderr (Spark's own default prints its warnings, start-up banners included).
_LOG4J2_PROPERTIES = """\
# Written by stclusters (Spark engine): errors only. Configure your own with
# -Dlog4j2.configurationFile in spark.driver.extraJavaOptions or a log4j2.properties in
# $SPARK_CONF_DIR, and stclusters leaves logging to it.
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
# pyspark's driver counts as a shell: Spark takes the level of its gateway's logger for
# the console (WARN, announced on stderr, when that logger has none of its own).
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""

#: Lines the driver JVM prints before any logging is set up, dropped from its stderr.
_JVM_NOISE = (b"WARNING: Using incubator modules:",)

#: Where Spark looks for a log4j2 configuration of the user's (in ``$SPARK_CONF_DIR``).
_LOG4J2_FILES = ("log4j2.properties", "log4j2.xml", "log4j2.yaml", "log4j2.yml",
                 "log4j2.json", "log4j2-test.properties", "log4j2-test.xml")


def _conf_dirs(env) -> list[Path]:
    """``$SPARK_CONF_DIR``, else ``<spark home>/conf`` (pyspark's own, pip-installed)."""
    if env.get("SPARK_CONF_DIR"):
        return [Path(env["SPARK_CONF_DIR"])]
    from pyspark.find_spark_home import _find_spark_home  # noqa: PLC0415

    return [Path(env.get("SPARK_HOME") or _find_spark_home()) / "conf"]


def _quiet_driver_conf(conf: dict[str, str], env) -> dict[str, str]:
    """The settings that quiet the driver JVM's logging (``spark.driver.extraJavaOptions``
    with this engine's log4j2 file), or ``{}`` when the user set up logging their own way
    (a log4j option in the Spark settings or the environment, a log4j2 file in the conf
    folder, or driver Java options in ``spark-defaults.conf`` that ours would replace)."""
    java_opts = conf.get("spark.driver.extraJavaOptions", "")
    said = " ".join([java_opts, conf.get("spark.driver.defaultJavaOptions", "")]
                    + [env.get(k, "") for k in ("PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS",
                                                "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")])
    if "log4j" in said.lower() or env.get("LOG4J_CONFIGURATION_FILE"):
        return {}
    for folder in _conf_dirs(env):
        if any((folder / name).is_file() for name in _LOG4J2_FILES):
            return {}
        defaults = folder / "spark-defaults.conf"
        if not java_opts and defaults.is_file() and "spark.driver.extraJavaOptions" in \
                defaults.read_text(encoding="utf-8", errors="replace"):
            return {}
    from stclusters._tempdirs import private_dir  # noqa: PLC0415

    path = Path(private_dir("stclusters-log4j-")) / "log4j2.properties"
    path.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
    # A file: URI, so that a space in the temporary folder's path needs no quoting.
    return {"spark.driver.extraJavaOptions":
            f"{java_opts} -Dlog4j2.configurationFile={path.as_uri()}".strip()}


def _forward_stderr(stream, *, fd: int = 2) -> None:
    """Copy the driver JVM's stderr to ours, line by line, without its start-up noise."""
    for line in iter(stream.readline, b""):
        if not line.startswith(_JVM_NOISE):
            view = memoryview(line)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except OSError:  # our stderr is gone: keep draining, or the JVM would block
                continue


def _launch_quiet_gateway(conf: dict[str, str]) -> None:
    """Start the driver JVM (pyspark's py4j gateway) for the settings ``conf`` as pyspark
    would, with quiet logging (:func:`_quiet_driver_conf`) and its stderr forwarded through
    :func:`_forward_stderr`; errors still reach the terminal."""
    import threading  # noqa: PLC0415

    from pyspark import SparkConf, SparkContext  # noqa: PLC0415
    from pyspark.java_gateway import launch_gateway  # noqa: PLC0415

    settings = {**conf, **_quiet_driver_conf(conf, os.environ)}
    spark_conf = SparkConf(loadDefaults=False)
    for key, value in sorted(settings.items()):
        spark_conf.set(key, value)
    # Our own pipe, read from before the JVM starts: a JVM that dies at start-up (no Java,
    # a bad option) says why on it.
    read_fd, write_fd = os.pipe()
    threading.Thread(target=_forward_stderr, args=(os.fdopen(read_fd, "rb"),),
                     name="stclusters-jvm-stderr", daemon=True).start()
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": write_fd})
    finally:
        os.close(write_fd)  # the JVM holds its copy; the reader ends when the JVM does
    SparkContext._ensure_initialized(gateway=gateway)


#: Characters Hadoop's glob patterns give a meaning to (``GlobPattern``); a backslash makes
#: each literal.
_HADOOP_GLOB_CHARS = frozenset("\\[]{}*?")


def _hadoop_literal(path: str) -> str:
    """``path`` (a local path or a URI) as a Hadoop glob that matches exactly that path:
    Spark's readers expand glob patterns, so a folder named ``a [b]`` would otherwise
    match ``a b`` only (or nothing)."""
    return "".join("\\" + c if c in _HADOOP_GLOB_CHARS else c for c in path)


def engine_info(spark) -> dict[str, Any]:
    """The manifest's ``engine`` entry."""
    return {"name": "spark", "version": spark.version, "master": spark.sparkContext.master}


# ----------------------------------------------------------------------------- reading


def _plan_files(spark, checked, store: str, *, keep_store_order: bool
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hash the inputs in Spark tasks; return (files to read, the run's files in input-id
    order). Without a workspace the run's files are the inputs in the order the DuckDB
    engine reads them, a content seen twice read once; with one, every file of the store
    (as :func:`stclusters.workspace.load_workspace` numbers a workspace)."""
    paths = [str(item.path) for item, _ in checked]
    hashed = {}
    if paths:
        rdd = spark.sparkContext.parallelize(paths, numSlices=len(paths))
        hashed = {p: (size, sha) for p, size, sha in rdd.map(hash_task).collect()}
    known = stored_files(store)
    to_read, run, seen = [], [], set(known)
    for item, kind in checked:
        size, sha = hashed[str(item.path)]
        entry = {"path": str(item.path), "kind": kind, "source": item.source, "size": size,
                 "sha256": sha, "store": store}
        if sha not in seen:
            seen.add(sha)
            to_read.append(entry)
            run.append(entry)
    if keep_store_order:
        run = None  # filled after reading: the whole store
    return to_read, run


class _Appended:
    """Accumulates lists (what each reading task finished), for the driver's progress."""

    def zero(self, value: list) -> list:
        return []

    def addInPlace(self, a: list, b: list) -> list:  # noqa: N802 - pyspark's name
        return a + b


def _reporting(spark, job: Callable[[Any], list[dict[str, Any]]],
               on_file: Callable[[str, int], None] | None) -> list[dict[str, Any]]:
    """Run ``job(accumulator)`` (a Spark job whose tasks add ``(path, records read)`` per
    file), calling ``on_file`` as files finish rather than when the whole job does."""
    import threading  # noqa: PLC0415

    acc = spark.sparkContext.accumulator([], _Appended())
    if on_file is None:
        return job(acc)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["metas"] = job(acc)
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            out["error"] = exc

    seen = 0
    worker = threading.Thread(target=run, name="stclusters-read", daemon=True)
    worker.start()
    try:
        while True:
            worker.join(0.25)
            done = acc.value[seen:]
            seen += len(done)
            for path, n in done:
                on_file(path, n)
            if not worker.is_alive():
                break
    except BaseException:
        spark.sparkContext.cancelAllJobs()  # Ctrl-C: the tasks stop too
        raise
    if "error" in out:
        raise out["error"]
    return out["metas"]


def _raise_first_error(metas: list[dict[str, Any]]) -> None:
    failed = sorted((m["error"] for m in metas if "error" in m), key=lambda e: e["path"])
    if failed:  # the first in path order, as the DuckDB engine, reading in that order, says
        e = failed[0]
        raise InputFormatError(e["path"], e["expected"], e["detail"], hint=e["hint"])


def _read_files(spark, to_read: list[dict[str, Any]], batch_rows: int,
                on_file: Callable[[str, int], None] | None) -> list[dict[str, Any]]:
    if not to_read:
        return []
    items = [{**e, "batch_rows": batch_rows} for e in to_read]

    def job(acc) -> list[dict[str, Any]]:
        def task(item: dict[str, Any]) -> dict[str, Any]:
            meta = read_task(item)
            acc.add([(item["path"], meta.get("records_read", 0))])
            return meta

        return spark.sparkContext.parallelize(items, numSlices=len(items)).map(task).collect()

    metas = _reporting(spark, job, on_file)
    _raise_first_error(metas)
    return metas


def _read_remote(spark, listed, store: str, batch_rows: int,
                 on_file: Callable[[str, int], None] | None) -> list[dict[str, Any]]:
    """Read the URI inputs (:func:`~stclusters.engines._spark_remote.list_inputs`) through
    Spark's ``binaryFile`` source; return their metas in URI order."""
    import json  # noqa: PLC0415

    from stclusters.engines import _spark_remote as remote  # noqa: PLC0415

    if not listed:
        return []
    wanted = {item.path: (kind, item.source) for item, kind in listed}

    def job(acc) -> list[dict[str, Any]]:
        def task(batches):
            for out in remote.read_batches(batches, wanted=wanted, store=store,
                                           batch_rows=batch_rows):
                acc.add([(m["path"], m.get("records_read", 0))
                         for m in map(json.loads, out.column("meta").to_pylist())
                         if "error" not in m])
                yield out

        files = spark.read.format("binaryFile").load([_hadoop_literal(u) for u in wanted])
        try:
            rows = files.mapInArrow(task, "meta string").collect()
        except Exception as exc:  # noqa: BLE001 - a Java error: files over 2 GB, access
            raise ParameterError(f"Spark could not fetch the inputs: "
                                 f"{remote._java_message(exc)}",
                                 hint="a file read through a URI must be under 2 GB; "
                                      "check the file system's settings") from exc
        return [json.loads(r.meta) for r in rows]

    metas = _reporting(spark, job, on_file)
    _raise_first_error(metas)
    return sorted(metas, key=lambda m: m["path"])


def _table_df(spark, name: str, metas: list[dict[str, Any]], ids, schema: pa.Schema | None):
    """One read table over the run's files, with each file's ``input_id`` and a ``rowid``
    in reading order (input, then row)."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    files = [str(Path(m["store"]) / "files" / m["sha256"] / f"{name}.parquet")
             for m in metas if name in m["tables"]]
    if not files:
        if schema is None:
            return None
        empty = schema.empty_table()
        df = spark.createDataFrame(empty.add_column(0, "_stc_row", pa.array([], pa.int64())))
        return df.withColumn("rowid", F.col("_stc_row")).drop("_stc_row")
    df = spark.read.parquet(*map(_hadoop_literal, files))
    df = df.withColumn("_sha", F.regexp_extract(F.col("_metadata.file_path"),
                                                r"/files/([0-9a-f]{64})/", 1))
    df = df.join(F.broadcast(ids), "_sha").drop("input_id").withColumnRenamed("_input_id",
                                                                              "input_id")
    df = df.withColumn("rowid", F.col("input_id").cast("bigint") * F.lit(1 << 32) + F.col("_stc_row"))
    cols = [c for c in df.columns if c not in ("_sha", "_stc_row", "input_id", "rowid")]
    return df.select("input_id", *cols, "rowid")


def _schemas() -> dict[str, pa.Schema]:
    """Arrow schemas of a fresh workspace's tables (for tables no file has rows of)."""
    con = st.connect(None)
    try:
        return {name: st.fetch_arrow(con, f"SELECT * FROM {identifier(name)} LIMIT 0").schema
                for (name,) in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main'").fetchall()}
    finally:
        con.close()


# ----------------------------------------------------------------------------- geocoding


@functools.lru_cache(maxsize=2)
def _executor_geocoder(index: tuple[tuple[str, bytes], ...]):
    """The geocoder of an executor's Python worker, from the broadcast index files (written
    once per worker into a private folder, then memory-mapped as on the driver)."""
    import tempfile  # noqa: PLC0415

    from stclusters.geocode import Geocoder  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="stclusters-gazetteer-"))
    for name, data in index:
        (folder / name).write_bytes(data)
    return Geocoder.load(cache_dir=folder)


def _gazetteer_index() -> tuple[tuple[str, bytes], ...]:
    """The driver's gazetteer cache files (built first if needed), name and bytes."""
    from stclusters.geocode._gazetteer import _paths, cache_dir, load_gazetteer  # noqa: PLC0415

    load_gazetteer()
    return tuple((p.name, p.read_bytes()) for p in _paths(cache_dir()))


def _geocode_on_executors(spark, keys_df, broadcast) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

    empty = contrib.geocode_keys(pa.Table.from_pylist([], schema=_keys_schema()), None)
    schema = from_arrow_schema(empty.schema)

    def geocode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        geocoder = _executor_geocoder(broadcast.value)
        for batch in batches:
            if batch.num_rows:
                yield from contrib.geocode_keys(pa.Table.from_batches([batch]),
                                                geocoder).to_batches()

    return keys_df.mapInArrow(geocode, schema)


def _keys_schema() -> pa.Schema:
    from stclusters.schema import RAW_CONTRIBUTION  # noqa: PLC0415

    return pa.schema([RAW_CONTRIBUTION.field(k) for k in contrib._ADDRESS_KEY])


# ----------------------------------------------------------------------------- the run


def _register(spark, name: str, df) -> None:
    df.createOrReplaceTempView(name)


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in table.column_names]) if table.num_rows \
        else table


def _collect(df) -> pa.Table:
    return df.toArrow()


class SparkRun:
    """The Spark side of one located input set: its session, store and scratch folder."""

    def __init__(self, spark, eng: Engine, store: str, scratch: Path) -> None:
        self.spark, self.engine, self.store, self.scratch = spark, eng, store, scratch
        self._n = itertools.count()

    def write(self, df, name: str) -> list[str]:
        """Write ``df`` as Parquet into the scratch folder; return its part files, sorted."""
        folder = self.scratch / f"{name}-{next(self._n)}"
        df.write.mode("errorifexists").parquet(str(folder))
        return sorted(str(p) for p in folder.glob("*.parquet"))

    def materialise(self, df, name: str):
        """``df`` written once and read back as view ``name`` (not recomputed by later uses)."""
        files = self.write(df, name)
        out = self.spark.read.parquet(*map(_hadoop_literal, files)) if files else df.limit(0)
        _register(self.spark, name, out)
        return out, files

    def count(self, con, params: RankParams) -> None:
        """Build ``contributions``, ``point_countries`` and ``points`` on ``con`` (the driver's
        DuckDB): :func:`stclusters.contributions.counting_plan` run by Spark SQL."""
        spark = self.spark
        sources = [r[0] for r in spark.sql(to_spark(contrib.SOURCES_SQL)).collect()]
        plan = contrib.counting_plan(params, sorted(sources))
        _register(spark, "_source_params", spark.createDataFrame(plan.source_params))
        # The located rows and statuses once (not once per statement, as DuckDB streams them).
        self.materialise(spark.sql(to_spark(plan.statuses_sql)), "_statuses")
        self.materialise(spark.sql(to_spark(plan.staged_weights_sql)), "_weights")
        _, files = self.materialise(spark.sql(to_spark(plan.staged_contributions_sql)),
                                    "contributions")
        pc, _ = self.materialise(spark.sql(to_spark(contrib.POINT_COUNTRIES_SQL)),
                                 "point_countries")
        n_points = pc.count()
        if n_points > self.engine.max_driver_points:
            raise ParameterError(
                f"{n_points:,} weighted points (by economy) exceed the driver's bound of "
                f"{self.engine.max_driver_points:,}: they are clustered on the driver",
                hint="raise max_driver_points with a larger driver (about 150 bytes a "
                     "point: spark.driver.memory), or coarsen the coordinates")
        pc_table = _collect(pc)
        _view_parquet(con, "contributions", files, spark.table("contributions"))
        con.register("_pc", pc_table)
        con.execute("CREATE OR REPLACE TABLE point_countries AS SELECT source, lat, lon, "
                    "country, CAST(weight_fx AS HUGEINT) AS weight_fx, n_contributions "
                    "FROM _pc")
        con.unregister("_pc")
        # The economies of a point folded on the driver: they are collected already, and a
        # second Spark job over them costs more than the fold.
        con.execute(f"CREATE OR REPLACE TABLE points AS WITH _points_fx AS "
                    f"({contrib.POINTS_FX_SQL}) {contrib.POINTS_FROM_FX_SQL}")


def _view_parquet(con, name: str, files: list[str], df) -> None:
    """View ``name`` on the driver's DuckDB over Spark's Parquet (no rows through Python)."""
    if files:
        con.read_parquet(files).create_view(name, replace=True)
    else:
        con.register("_empty", df.limit(0).toArrow())
        con.execute(f"CREATE OR REPLACE TABLE {identifier(name)} AS SELECT * FROM _empty")
        con.unregister("_empty")


def _dedup(spark, run: SparkRun) -> int:
    """Quarantine the losing versions of a document, in Spark (:data:`DUPLICATES_SQL`)."""
    dup, _ = run.materialise(spark.sql(to_spark(DUPLICATES_SQL)), "_dup")
    n = dup.count()
    if not n:
        return 0
    q = spark.sql(to_spark(DUPLICATES_QUARANTINE_SQL))
    quarantine = spark.table("quarantine")
    cols = quarantine.columns
    from pyspark.sql import functions as F  # noqa: PLC0415

    added = q.select(*[q[c] if c in q.columns else F.lit(None).cast(quarantine.schema[c].dataType)
                       .alias(c) for c in cols])
    run.materialise(quarantine.unionByName(added), "quarantine")
    run.materialise(spark.sql(to_spark(
        f"SELECT * FROM raw_contributions r WHERE NOT EXISTS (SELECT 1 FROM _dup d WHERE "
        f"{RAW_DUPLICATE_MATCH}) AND NOT EXISTS (SELECT 1 FROM _dup d JOIN inputs i ON "
        f"i.kind = d.kind WHERE {RAW_BUNDLE_DUPLICATE_MATCH})")), "raw_contributions")
    run.materialise(spark.sql(to_spark(
        f"SELECT * FROM documents x WHERE NOT EXISTS (SELECT 1 FROM _dup d WHERE "
        f"{DOCUMENT_DUPLICATE_MATCH})")), "documents")
    return n


def read_spark(checked, eng: Engine, *, remote=(), batch_rows: int,
               on_file: Callable[[str, int], None] | None = None,
               stage: Callable[[str], Any]) -> tuple[Any, list, dict, SparkRun, dict]:
    """Read and geocode ``checked`` inputs (local files and their kinds, as
    :func:`stclusters.workspace.expand_inputs` gives them) and the ``remote`` ones
    (:class:`~stclusters.workspace.Input` s whose paths are URIs) on Spark.

    Returns ``(con, recorded, geocoding, run, engine_info)``: the driver's DuckDB with the
    read tables (views over Spark's Parquet where large), the inputs as
    :class:`stclusters.store.InputFile`, the geocoding summary, the :class:`SparkRun` that
    counts, and the manifest's engine entry.
    """
    from stclusters._tempdirs import private_dir  # noqa: PLC0415
    from stclusters.workspace import check_snapshots  # noqa: PLC0415

    spark = session(eng)
    store = eng.workspace or private_dir("stclusters-spark-")
    # Where Spark writes what the driver reads back (contributions…): beside the store, so
    # that a store on a shared filesystem makes the scratch shared too.
    sweep_stale(store)  # what killed reading tasks of earlier runs left
    scratch = Path(private_dir("run-", base=str(Path(store) / "scratch")))
    run = SparkRun(spark, eng, store, scratch)
    with stage("read"):
        from stclusters.engines._spark_remote import list_inputs  # noqa: PLC0415

        listed = list_inputs(spark, remote) if remote else []
        to_read, ordered = _plan_files(spark, checked, store,
                                       keep_store_order=eng.workspace is not None)
        _read_files(spark, to_read, batch_rows, on_file)
        fetched = _read_remote(spark, listed, store, batch_rows, on_file)
        stored = stored_files(store)
        if ordered is None:
            metas = sorted(stored.values(), key=lambda m: (m["path"], m["sha256"]))
        else:
            # A content fetched twice (or read by an earlier run under another name) is
            # named by its first path in the run's order, as on DuckDB.
            seen = {e["sha256"] for e in ordered}
            for m in fetched:
                if m["sha256"] not in seen:
                    seen.add(m["sha256"])
                    ordered.append(m)
            metas = [{**stored[e["sha256"]], "path": e["path"]} for e in ordered]
        metas = [{**m, "store": store} for m in metas]
        recorded = [st.InputFile(i, m["path"], m["kind"], m["size_bytes"], m["sha256"])
                    for i, m in enumerate(metas)]
        ids = spark.createDataFrame([(m["sha256"], i) for i, m in enumerate(metas)],
                                    "_sha string, _input_id int")
        schemas = _schemas()
        names = sorted({t for m in metas for t in m["tables"]} | set(_READ_TABLES))
        for name in names:
            df = _table_df(spark, name, metas, ids, schemas.get(name))
            if df is not None:
                _register(spark, name, df)
        con = st.connect(None)
        _load(con, "inputs", _collect(spark.table("inputs").drop("rowid").orderBy("input_id")))
        con.executemany("UPDATE inputs SET path = ? WHERE input_id = ?",
                        [[r.path, r.input_id] for r in recorded])
        if any(m["kind"] in BUNDLE_KINDS for m in metas):
            _assemble_bundles(spark, con, metas, ids, schemas)
        _dedup(spark, run)
        _driver_tables(spark, run, con)
        # A snapshot's manifest is checked against local folders only (not yet through URIs).
        check_snapshots(con, [Path(r.path) for r in recorded if not is_uri(r.path)
                              and r.kind in ("openalex", "openalex-institutions")])
    with stage("geocode"):
        geocoding = _locate(spark, run, con)
    return con, recorded, geocoding, run, engine_info(spark)


def _load(con, name: str, table: pa.Table) -> None:
    """Replace the rows of the driver's table ``name`` with ``table`` (same columns)."""
    con.register("_t", table)
    try:
        con.execute(f"DELETE FROM {identifier(name)}")
        con.execute(f"INSERT INTO {identifier(name)} SELECT * FROM _t")
    finally:
        con.unregister("_t")


def _driver_tables(spark, run: SparkRun, con) -> None:
    """The read tables on the driver: the small ones as DuckDB tables, ``documents`` as a
    view over Parquet; ``raw_contributions`` stays in Spark."""
    for name in ("quarantine", "institutions", "merged_ids"):
        _load(con, name, _collect(spark.table(name).drop("rowid")))
    docs, files = run.materialise(spark.table("documents").drop("rowid"), "_documents")
    con.execute("DROP TABLE documents")
    con.execute("DROP TABLE raw_contributions")
    _view_parquet(con, "documents", files, docs)


def _assemble_bundles(spark, con, metas, ids, schemas) -> None:
    """PatentsView and PATSTAT: their table files were staged in Spark tasks; the bundles
    are assembled (joined across files) on the driver's DuckDB, by the same code as the
    DuckDB engine, and the documents, contributions and quarantine rows go back to Spark.
    The staging tables stay on the driver for the bundles' accounting."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from stclusters.sources import bundles  # noqa: PLC0415

    bundle_ids = [i for i, m in enumerate(metas) if m["kind"] in BUNDLE_KINDS]
    for i in bundle_ids:
        m = metas[i]
        for name in m["tables"]:
            if name == "inputs":
                continue
            table = pq.read_table(Path(m["store"]) / "files" / m["sha256"] / f"{name}.parquet")
            table = table.drop(["_stc_row"]).set_column(
                0, "input_id", pa.array([i] * table.num_rows, pa.int32()))
            con.register("_t", table)
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                           [name]).fetchone()[0]:
                con.execute(f"INSERT INTO {identifier(name)} SELECT * FROM _t")
            else:
                con.execute(f"CREATE TABLE {identifier(name)} AS SELECT * FROM _t")
            con.unregister("_t")
    kinds = {metas[i]["kind"] for i in bundle_ids}
    for kind, module in bundles():
        if kind in kinds:
            module.assemble(con)
    keep = [m for i, m in enumerate(metas) if i not in set(bundle_ids)]
    for name in ("documents", "raw_contributions", "quarantine"):
        assembled = st.fetch_arrow(
            con, f"SELECT *, CAST(input_id AS BIGINT) * {1 << 32} + rowid AS rowid "
                 f"FROM {identifier(name)} ORDER BY rowid")
        base = _table_df(spark, name, keep, ids, schemas.get(name))
        extra = spark.createDataFrame(assembled, schema=base.schema)
        _register(spark, name, base.unionByName(extra))
        con.execute(f"DELETE FROM {identifier(name)}")


def _locate(spark, run: SparkRun, con) -> dict[str, int]:
    """Table ``geocodes`` (Spark view, driver view) and the quality lookups (both sides)."""
    from stclusters.pipeline import _geocoder  # noqa: PLC0415

    keys = spark.sql(to_spark(contrib.ADDRESS_KEYS_SQL))
    n_keys = keys.count()
    if n_keys:
        bc = spark.sparkContext.broadcast(_gazetteer_index())
        geocoded = _geocode_on_executors(spark, keys, bc)
        places = contrib.place_countries(_geocoder())
    else:
        geocoded = spark.createDataFrame(contrib.geocode_keys(
            pa.Table.from_pylist([], schema=_keys_schema()), None))
        places = contrib.place_countries(None)
    _register(spark, "_geocodes", geocoded)
    _register(spark, "_places", spark.createDataFrame(places))
    geo, files = run.materialise(spark.sql(to_spark(contrib.GEOCODES_SQL)), "geocodes")
    _view_parquet(con, "geocodes", files, geo)
    matched = st.scalar(con, "SELECT count(*) FROM geocodes WHERE lat IS NOT NULL")
    no_country = _sorted(_collect(spark.sql(to_spark(quality.NO_COUNTRY_SQL))))
    cells = _sorted(_collect(spark.sql(to_spark(quality.CELLS_SQL))))
    reverse, outside = quality.lookup_tables(_geocoder, no_country, cells)
    for name, table in (("reverse_countries", reverse), ("outside_cells", outside)):
        _register(spark, name, spark.createDataFrame(table, schema=_spark_schema(table.schema)))
        con.register("_lookup", table)
        con.execute(f"CREATE OR REPLACE TABLE {identifier(name)} AS SELECT * FROM _lookup")
        con.unregister("_lookup")
    return {"distinct_addresses": int(n_keys), "matched": int(matched),
            "points_without_country": no_country.num_rows, "cells_checked": cells.num_rows}


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

    return from_arrow_schema(schema)
