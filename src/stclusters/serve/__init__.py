"""``stclusters serve``: a local explorer of one finished run that re-clusters its weighted
points as sliders move (radius, core thresholds, metric weights) and shows what changed.
See ``docs/serve.md``."""

from stclusters.serve.app import ExplorerServer, start_server
from stclusters.serve.explorer import Explorer

__all__ = ["Explorer", "ExplorerServer", "start_server"]
