"""Run parameters, validated at the edge (every problem gathered into one message).

Every choice that the published GII method leaves open is a named parameter here, with a
documented default (methodology: "ours").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stclusters.errors import ParameterError
from stclusters.schema import PRECISIONS, SOURCES, metric_name_problem

#: Mean Earth radius (IUGG), km: the sphere of methodology §4.
EARTH_RADIUS_KM = 6371.0088

#: Default radius. 13 km is the neighbourhood radius of the published GII cluster studies'
#: descriptions and of our benchmarks' "world-realistic" setting: large enough to join a
#: metropolitan area's suburbs, small enough to keep Nagoya apart from Osaka (~110 km).
DEFAULT_EPS_KM = 13.0

#: Default density threshold as a share of the source's world total (in %). Absolute
#: thresholds do not travel between data sets of different sizes; a share does. 0.02 % of
#: 1.26 M PCT applications is ~250 applications within 13 km over five years, which keeps
#: the GII's 100th cluster (about 0.1 % of the world) well above the threshold.
DEFAULT_MIN_WEIGHT_SHARE_PCT = 0.02

#: OpenAlex's four topic domains (``primary_topic.domain.display_name``; formats.md §2.3).
#: The arts and humanities are a field of Social Sciences, as are psychology and economics.
OPENALEX_DOMAINS: tuple[str, ...] = ("Health Sciences", "Life Sciences", "Physical Sciences",
                                     "Social Sciences")

#: The science and technology domains: the GII counts S&T articles (SCIE), so the social
#: sciences and humanities are left out of publication counts by default.
ST_DOMAINS: tuple[str, ...] = ("Health Sciences", "Life Sciences", "Physical Sciences")

#: Population year when no window is set: the UN table's latest estimate-based year
#: (later columns are projections).
DEFAULT_POPULATION_YEAR = 2020


@dataclass(frozen=True)
class SourceParams:
    """Clustering and window parameters of one source (metric).

    Parameters
    ----------
    eps_km : float
        DBSCAN radius on the sphere, km.
    min_weight : float or None
        Core threshold: summed fractional weight within ``eps_km`` (itself included). When
        None, ``min_weight_share_pct`` of the source's world total is used.
    min_weight_share_pct : float
        Threshold as a share (%) of the source's world total, used when ``min_weight`` is None.
    first_year, last_year : int or None
        Inclusive window of years; None = open.
    doc_types : tuple of str or None
        Document types kept (e.g. ``("article", "journal-article")``); None keeps all.
    """

    eps_km: float = DEFAULT_EPS_KM
    min_weight: float | None = None
    min_weight_share_pct: float = DEFAULT_MIN_WEIGHT_SHARE_PCT
    first_year: int | None = None
    last_year: int | None = None
    doc_types: tuple[str, ...] | None = None

    def problems(self, name: str) -> list[str]:
        out = []
        if not (0 < self.eps_km < 1000):
            out.append(f"{name}.eps_km must be in (0, 1000) km, got {self.eps_km}")
        if self.min_weight is not None and not self.min_weight > 0:
            out.append(f"{name}.min_weight must be > 0, got {self.min_weight}")
        if not (0 < self.min_weight_share_pct <= 100):
            out.append(f"{name}.min_weight_share_pct must be in (0, 100], got {self.min_weight_share_pct}")
        if self.first_year is not None and self.last_year is not None and self.first_year > self.last_year:
            out.append(f"{name}: first_year {self.first_year} is after last_year {self.last_year}")
        return out

    def resolved_min_weight(self, world_total: float) -> float:
        """The absolute core threshold for a source whose world total is ``world_total``."""
        if self.min_weight is not None:
            return float(self.min_weight)
        # A threshold of zero would make every point core: keep it strictly positive.
        return max(world_total * self.min_weight_share_pct / 100.0, 1e-9)


def _default_sources() -> dict[str, SourceParams]:
    return {
        # GII 2024: PCT 2019–2023, SCIE 2018–2022. Open windows by default: users' data
        # decide; the edition is set with first_year/last_year.
        # GII counts PCT applications, i.e. inventions: USPTO design grants are left out,
        # and reissues, which re-grant an earlier patent, would count it twice.
        "patent": SourceParams(doc_types=("utility", "plant")),
        # GII counts original research articles only: OpenAlex 'article' (2023-08+) and the
        # Crossref-style 'journal-article' of older snapshots.
        "publication": SourceParams(doc_types=("article", "journal-article")),
    }


@dataclass(frozen=True)
class RankParams:
    """All parameters of a ranking run.

    Parameters
    ----------
    sources : mapping of str to SourceParams
        Per-metric parameters; keys are metric names (``patent``, ``publication``, or any
        other metric of a table's ``source`` column, e.g. ``vc_deal``). A metric other than
        patent and publication counts only when named here or in ``source_weights``: the
        records of a metric named nowhere (a typo such as ``patents``) are filtered with
        reason ``metric_not_configured``.
    counting : {"located", "all"}
        Fractional weight ``1/n_located(doc)`` (default) or ``1/n_all(doc)``.
    min_precision : str
        Coarsest precision that takes part in clustering (``city`` by default).
    merge_eps_km : float or None
        Radius linking the metrics' clusters (patent, publication…) into one S&T cluster
        and the radius of footprint discs; None = the largest ``eps_km`` of the scored
        metrics. Set smaller than a source's ``eps_km``, some of that source's border points
        fall outside every footprint and are not counted for a cluster.
    source_weights : mapping of str to float
        Weight of each source's share in the score (a metric not named weighs 1, so every
        metric counts equally by default). A metric of weight 0 is measured but not scored:
        it forms no cluster of its own, joins none, names none; its weight is counted in
        the clusters the scored metrics define (docs/metrics.md).
    top_n : int
        Clusters published in the ranking.
    economy_min_share_pct : float
        An economy code below this share (%) of a cluster's weight is left out of its label.
    name_max_places : int
        At most this many place names in a cluster's name.
    name_min_share_pct : float
        A second or third place joins the name only with at least this share (%) of the
        cluster's weight.
    name_min_population : int
        GeoNames places outside the UN's urban agglomerations name clusters only from this
        population up (keeps villages out of names; agglomerations always may).
    population_year : int or None
        Year of the footprint populations (UN World Urbanization Prospects 2018, linear
        between its five-year figures, 1950–2035). None: the latest ``last_year`` of the
        sources' windows, or 2020 when no window is set.
    quality_action : {"keep", "filter"}
        What happens to contributions whose country evidence disagrees (data-quality checks
        ``point_outside_country`` and ``text_country_differs``, see :mod:`stclusters.quality`):
        ``keep`` (default: counted under the stated country, as the GII counts every record;
        each one is listed in the ``quality`` table) or ``filter`` (not counted; filter reason
        ``country_mismatch`` in the accounting).
    excluded_sources : tuple of str
        Metrics left out of the run: their records are read and accounted (filter reason
        ``source_excluded``) but not counted, clustered or shown. Empty by default.
    publication_domains : tuple of str or None
        OpenAlex topic domains of the publications counted (``primary_topic.domain``;
        ``all`` on the command line). By default the science and technology domains:
        Social Sciences, with the arts and humanities, is left out (filter reason
        ``domain_excluded``). A work without a primary topic (the 2022 shape) or another
        publication without a domain is counted. None keeps every domain.
    """

    sources: Mapping[str, SourceParams] = field(default_factory=_default_sources)
    counting: Literal["located", "all"] = "located"
    min_precision: str = "city"
    merge_eps_km: float | None = None
    source_weights: Mapping[str, float] = field(
        default_factory=lambda: {"patent": 1.0, "publication": 1.0})
    top_n: int = 100
    economy_min_share_pct: float = 5.0
    name_max_places: int = 3
    name_min_share_pct: float = 10.0
    name_min_population: int = 100_000
    population_year: int | None = None
    quality_action: Literal["keep", "filter"] = "keep"
    excluded_sources: tuple[str, ...] = ()
    publication_domains: tuple[str, ...] | None = ST_DOMAINS

    def __post_init__(self) -> None:
        problems: list[str] = self._name_problems()
        for name, sp in self.sources.items():
            if not isinstance(sp, SourceParams):
                problems.append(f"sources[{name!r}] must be a SourceParams")
            else:
                problems += sp.problems(name)
        if self.counting not in ("located", "all"):
            problems.append(f"counting must be 'located' or 'all', got {self.counting!r}")
        if self.min_precision not in PRECISIONS:
            problems.append(f"min_precision must be one of {PRECISIONS}, got {self.min_precision!r}")
        if self.merge_eps_km is not None and not (0 < self.merge_eps_km < 1000):
            problems.append(f"merge_eps_km must be in (0, 1000) km, got {self.merge_eps_km}")
        for name, w in self.source_weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < math.inf:
                problems.append(f"source_weights[{name!r}] must be a finite number >= 0, got {w}")
        if self.top_n < 1:
            problems.append(f"top_n must be >= 1, got {self.top_n}")
        if not (0 <= self.economy_min_share_pct < 100):
            problems.append(f"economy_min_share_pct must be in [0, 100), got {self.economy_min_share_pct}")
        if not (1 <= self.name_max_places <= 5):
            problems.append(f"name_max_places must be in 1..5, got {self.name_max_places}")
        if not (0 <= self.name_min_share_pct <= 100):
            problems.append(f"name_min_share_pct must be in [0, 100], got {self.name_min_share_pct}")
        if not (0 <= self.name_min_population):
            problems.append(f"name_min_population must be >= 0, got {self.name_min_population}")
        if self.population_year is not None and not (1950 <= self.population_year <= 2035):
            problems.append(f"population_year must be in 1950..2035 (the UN table's span), "
                            f"got {self.population_year}")
        if self.quality_action not in ("keep", "filter"):
            problems.append(f"quality_action must be 'keep' or 'filter', got {self.quality_action!r}")
        if self.publication_domains is not None:
            unknown = [d for d in self.publication_domains if d not in OPENALEX_DOMAINS]
            if unknown or not self.publication_domains:
                problems.append(f"publication_domains must be OpenAlex domains "
                                f"({', '.join(OPENALEX_DOMAINS)}) or None for all, got "
                                f"{', '.join(map(repr, unknown)) or 'none'}")
        if problems:
            raise ParameterError("invalid parameters: " + "; ".join(problems),
                                 hint="see `stclusters rank --help` for the ranges")

    def _name_problems(self) -> list[str]:
        """Metric names that cannot be (they become column and option names)."""
        out = []
        if not isinstance(self.excluded_sources, tuple):  # a str would read as its letters
            return [f"excluded_sources must be a tuple of metric names, got {self.excluded_sources!r}"]
        for where, names in (("sources", list(self.sources)),
                             ("source_weights", list(self.source_weights)),
                             ("excluded_sources", list(self.excluded_sources))):
            out += [f"{where}: {problem}" for n in names
                    if (problem := metric_name_problem(n)) is not None]
        return out

    def weight_of(self, name: str) -> float:
        """Weight of metric ``name`` in the score: as set, else 1."""
        return float(self.source_weights.get(name, 1.0))

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric that counts, in name order: patent and publication, each metric named
        in ``sources`` or ``source_weights``, less ``excluded_sources``."""
        named = set(SOURCES) | set(self.sources) | set(self.source_weights)
        return tuple(sorted(named - set(self.excluded_sources)))

    def is_scored(self, name: str) -> bool:
        """Does metric ``name`` shape the clusters and the score (it counts, weight > 0)?"""
        return name in self.metrics and self.weight_of(name) > 0

    @property
    def footprint_eps_km(self) -> float:
        """Radius of the footprint discs and of the link between metrics' clusters, km:
        ``merge_eps_km``, else the largest ``eps_km`` of the configured scored metrics."""
        if self.merge_eps_km is not None:
            return self.merge_eps_km
        scored = [sp.eps_km for name, sp in self.sources.items() if self.is_scored(name)]
        return max(scored or [sp.eps_km for sp in self.sources.values()] or [DEFAULT_EPS_KM])

    @property
    def resolved_population_year(self) -> int:
        """Population year in use: ``population_year``, else the latest window end, else 2020."""
        if self.population_year is not None:
            return self.population_year
        ends = [sp.last_year for sp in self.sources.values() if sp.last_year is not None]
        return min(max(max(ends), 1950), 2035) if ends else DEFAULT_POPULATION_YEAR

    def source(self, name: str) -> SourceParams:
        """Parameters of ``name``; sources not configured get the defaults."""
        return self.sources.get(name, SourceParams())

    def replace(self, **changes: Any) -> RankParams:
        return dataclasses.replace(self, **changes)

    def with_source(self, name: str, **changes: Any) -> RankParams:
        """A copy with one source's parameters changed."""
        sources = dict(self.sources)
        sources[name] = dataclasses.replace(self.source(name), **changes)
        return dataclasses.replace(self, sources=sources)

    def with_metric(self, name: str, *, weight: float | None = None, **changes: Any) -> RankParams:
        """A copy with metric ``name`` configured: its :class:`SourceParams` ``changes``
        (``eps_km=``, ``first_year=``…) and, when given, its ``weight`` in the score.

        Examples
        --------
        >>> p = RankParams().with_metric("vc_deal", weight=1.0, first_year=2019, last_year=2023)
        >>> p.source("vc_deal").first_year, p.weight_of("vc_deal")
        (2019, 1.0)
        """
        out = self.with_source(name, **changes)
        if weight is not None:
            out = dataclasses.replace(out, source_weights={**out.source_weights, name: weight})
        return out

    def without_metrics(self, *names: str) -> RankParams:
        """A copy with the metrics ``names`` left out of the run (``excluded_sources``)."""
        excluded = tuple(sorted(set(self.excluded_sources) | set(names)))
        return dataclasses.replace(self, excluded_sources=excluded)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, key-sorted form (for the manifest)."""
        d = dataclasses.asdict(self)
        d["sources"] = {k: dataclasses.asdict(v) for k, v in sorted(self.sources.items())}
        d["source_weights"] = dict(sorted(self.source_weights.items()))
        d["footprint_eps_km"] = self.footprint_eps_km
        d["resolved_population_year"] = self.resolved_population_year
        return d
