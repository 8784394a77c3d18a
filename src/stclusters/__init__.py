"""stclusters: find, rank and explain the world's science and technology clusters."""

from stclusters._version import __version__

__all__ = ["__version__"]
