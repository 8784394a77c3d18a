"""Where the counting plan runs: ``duckdb`` (the default, one machine) or ``spark``.

The method is written once (:mod:`stclusters.contributions` and :mod:`stclusters.quality`
hold its SQL in DuckDB's dialect); :mod:`stclusters.engines.transpile` carries it to Spark
SQL. Both engines hand the same tables (``contributions``, ``points``, ``point_countries``,
``documents``, ``quarantine``…) to the clustering and the ranking, which run on the
driver with the engine's own kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stclusters.errors import ParameterError

#: The engines, the default first.
ENGINES = ("duckdb", "spark")

#: Points collected to the driver for clustering, at most (about 150 bytes each with the
#: clustering's working arrays: 10M points in about 1.5 GB of driver memory).
MAX_DRIVER_POINTS = 10_000_000


@dataclass(frozen=True)
class Engine:
    """Which engine runs a ranking, and how to reach it.

    Parameters
    ----------
    name : {'duckdb', 'spark'}
    master : str, optional
        Spark only: ``local[*]``, ``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://…``.
        None takes the master that ``spark-submit`` set, else ``local[*]``.
    conf : dict, optional
        Spark only: extra Spark settings (``spark.executor.memory`` …).
    workspace : str, optional
        Spark only: a folder (local path or URI) keeping every input file read, as Parquet,
        by content hash, so a later run does not read it again. None: a private temporary
        folder, removed at exit.
    max_driver_points : int
        Spark only: refuse a run whose weighted points exceed this (they are clustered on
        the driver).
    """

    name: str = "duckdb"
    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    workspace: str | None = None
    max_driver_points: int = MAX_DRIVER_POINTS


def engine(name: str = "duckdb", *, master: str | None = None,
           conf: dict[str, str] | None = None, workspace: str | None = None,
           max_driver_points: int = MAX_DRIVER_POINTS) -> Engine:
    """Check the engine settings; every problem is named in one :class:`ParameterError`."""
    problems = []
    if name not in ENGINES:
        problems.append(f"unknown engine {name!r} (choose one of {', '.join(ENGINES)})")
    if name != "spark" and (master is not None or conf):
        problems.append("--master and --spark-conf go with --engine spark")
    for key, value in (conf or {}).items():
        if not isinstance(key, str) or not key.startswith("spark.") or not isinstance(value, str):
            problems.append(f"Spark setting {key!r}: give KEY=VALUE with a key starting spark.")
    if isinstance(max_driver_points, bool) or not isinstance(max_driver_points, int) \
            or max_driver_points < 1:
        problems.append(f"max_driver_points must be a positive integer, not {max_driver_points!r}")
    hints = ["e.g. --engine spark --master local[2] --spark-conf spark.driver.memory=4g"]
    if name == "spark" and workspace is not None:
        problem = _workspace_problem(str(workspace))
        if problem:
            problems.append(problem)
            hints.insert(0, "give --workspace a folder for the Spark engine's store (made if "
                            "missing), e.g. --workspace spark-ws")
    if problems:
        raise ParameterError("; ".join(problems), hint="; ".join(hints))
    return Engine(name, master, dict(conf or {}), workspace, max_driver_points)


def _workspace_problem(workspace: str) -> str | None:
    """What makes ``workspace`` unusable as a Spark store folder, or None: it (or the
    nearest of its parents that exists) is not a folder. A URI is not checked here (its
    file system is reached through Spark)."""
    from pathlib import Path  # noqa: PLC0415

    from stclusters.engines._spark_remote import is_uri  # noqa: PLC0415

    if is_uri(workspace):
        return None
    path = Path(workspace)
    existing = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
    if existing is None or existing.is_dir():
        return None
    # The CLI gathers these lines with its other problems (without the hint): each says
    # what to do too.
    if existing != path:
        return (f"Spark workspace {workspace}: {existing} is a file, and the Spark engine's "
                f"store is a folder (give a folder path)")
    if path.suffix == ".duckdb" or _is_duckdb_file(path):
        return (f"Spark workspace {workspace} is a DuckDB workspace file, and the Spark "
                f"engine's store is a folder (give a folder, e.g. --workspace spark-ws; rank "
                f"the DuckDB workspace without --engine spark)")
    return (f"Spark workspace {workspace} is not a folder, and the Spark engine's store is "
            f"a folder (give a folder path, made if missing)")


def _is_duckdb_file(path) -> bool:
    """Does ``path`` start as a DuckDB database file does (``DUCK`` at byte 8)?"""
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:  # a socket, a file we may not read: not one, as far as we can tell
        return False
