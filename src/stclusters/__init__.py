"""stclusters: find, rank and explain the world's science and technology clusters.

>>> import stclusters
>>> res = stclusters.rank(["grants.xml.gz", "works.jsonl.gz"])    # doctest: +SKIP
>>> res.ranking.to_pandas().head(20)                                # doctest: +SKIP
"""

from stclusters._version import __version__
from stclusters.errors import InputFormatError, ParameterError, StclustersError
from stclusters.params import RankParams, SourceParams

__all__ = ["Input", "InputFormatError", "IngestReport", "Located", "ingest", "ParameterError", "RankParams",
           "RankResult", "SourceParams", "StclustersError", "__version__", "rank", "read"]

_LAZY = {"Input", "Located", "RankResult", "rank", "read"}
_LAZY_INGEST = {"IngestReport", "ingest"}


def __getattr__(name: str):
    # The pipeline pulls in numba and DuckDB: load it on first use, not on `import stclusters`.
    if name in _LAZY:
        from stclusters import pipeline  # noqa: PLC0415

        return getattr(pipeline, name)
    if name in _LAZY_INGEST:
        from stclusters import workspace  # noqa: PLC0415

        return getattr(workspace, name)
    raise AttributeError(f"module 'stclusters' has no attribute {name!r}")
