"""Regions: named sets of places, their indicators, how their parts work together, and
claims about them checked against data (``runs + indicators → regions``).

* :mod:`~stclusters.regions.definitions`: region files and which member a location is in.
"""

from stclusters.regions._located import add_region_contributions
from stclusters.regions.definitions import (
    Member, Region, assign_members, load_region, shipped_regions,
)

__all__ = ["Member", "Region", "add_region_contributions", "assign_members", "load_region",
           "shipped_regions"]
