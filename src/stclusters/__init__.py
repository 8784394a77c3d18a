"""stclusters: find, rank and explain the world's science and technology clusters.

>>> import stclusters
>>> res = stclusters.rank(["grants.xml.gz", "works.jsonl.gz"])    # doctest: +SKIP
>>> res.ranking.to_pandas().head(20)                                # doctest: +SKIP
"""

from stclusters._version import __version__
from stclusters.errors import InputFormatError, ParameterError, StclustersError
from stclusters.params import RankParams, SourceParams
from stclusters.pipeline import Input, RankResult, rank

__all__ = ["Input", "InputFormatError", "ParameterError", "RankParams", "RankResult",
           "SourceParams", "StclustersError", "__version__", "rank"]
