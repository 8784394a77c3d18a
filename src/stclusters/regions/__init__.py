"""Regions: named sets of places, their indicators, how their parts work together, and
claims about them checked against data (``runs + indicators → regions``).

* :mod:`~stclusters.regions.definitions`: region files and which member a location is in.
* :mod:`~stclusters.regions.indicators`: the tidy indicator table (sources, flags, bounds),
  indicators computed from a run's records, aggregation rules.
* :mod:`~stclusters.regions.integration`: shares made with partners across a border,
  collaboration matrices and their figure.
* :mod:`~stclusters.regions.claims`: claims (YAML) checked against indicators, runs,
  editions and published ranks: held, not held, or not enough data, with the evidence.

>>> from stclusters.regions import load_region, read_indicators, check_claims
>>> load_region("PRD-9").member_names[:2]
('Guangzhou', 'Shenzhen')
"""

from importlib import import_module

from stclusters.regions._located import add_region_contributions
from stclusters.regions.definitions import (
    Member, Region, assign_members, load_region, shipped_regions,
)

# Loaded on first use: they pull in DuckDB queries, matplotlib and the claim machinery.
_LAZY = {
    "read_indicators": "indicators", "computed_indicators": "indicators",
    "city_clusters": "indicators", "region_table": "indicators",
    "aggregate": "_aggregate", "read_rates": "_aggregate",
    "integration_shares": "integration", "collaboration_matrix": "integration",
    "integration_figure": "integration",
    "load_claims": "claims", "check_claims": "claims",
}

__all__ = ["Member", "Region", "add_region_contributions", "assign_members", "load_region",
           "shipped_regions", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"stclusters.regions.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'stclusters.regions' has no attribute {name!r}")
