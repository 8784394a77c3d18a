"""Where the cluster containing a place ranks: in a run folder (the footprint that holds the
place), in each edition of an editions folder, or in a published table of ranks (names that
contain the place). Each answer is an :class:`Observation` (an interval of ranks, or why
there is none)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stclusters._run_folder import open_run
from stclusters.errors import StclustersError
from stclusters.params import EARTH_RADIUS_KM
from stclusters.regions.definitions import _DATA
from stclusters.regions._claims_logic import Interval
from stclusters.regions._format import number

#: The shipped copy of ``shared/data/reference/gii_top_ranks_by_edition.csv``.
SHIPPED_PUBLISHED = _DATA / "gii_top_ranks_by_edition.csv"
PUBLISHED_SOURCE = {"publisher": "World Intellectual Property Organization (WIPO)",
                    "title": "Global Innovation Index, S&T cluster rankings (confirmed ranks "
                             "of leading clusters, by edition; partial)",
                    "url": "https://www.wipo.int/global_innovation_index/"}


@dataclass
class Observation:
    """What one body of data says about a rank claim for one edition.

    ``interval`` is ``None`` when the data say nothing (``why`` tells why); ``no_cluster``
    means the data cover the place but no cluster holds it.
    """

    basis: str
    edition: str | None
    interval: Interval | None = None
    no_cluster: bool = False
    why: str = ""
    evidence: str = ""
    source: dict[str, str] = field(default_factory=dict)
    data_label: str | None = None


# ------------------------------------------------------------------ published table

def read_published(path: str | Path | None = None) -> dict[str, list[tuple[int, str]]]:
    """Edition → ``[(rank, cluster name), …]`` of a published ranks table (CSV with columns
    ``edition, rank, cluster``; default the shipped GII table).

    Raises
    ------
    StclustersError
        Unreadable file, missing columns, or a rank that is no positive integer (file and
        line named).
    """
    path = Path(path) if path is not None else SHIPPED_PUBLISHED
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = set(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StclustersError(f"{path}: cannot read the published ranks: {exc}",
                              hint="a CSV with columns edition, rank, cluster") from exc
    missing = {"edition", "rank", "cluster"} - header
    if missing:
        raise StclustersError(f"{path}: published ranks lack column(s) "
                              f"{', '.join(sorted(missing))}",
                              hint="a CSV with columns edition, rank, cluster")
    if not rows:
        raise StclustersError(f"{path}: the published ranks file has its header but no ranks",
                              hint="add one line per edition, rank and cluster")
    out: dict[str, list[tuple[int, str]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            rank = int(row["rank"])
            if rank < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise StclustersError(f"{path}:{line}: rank {row['rank']!r} is not a positive "
                                  "integer", hint="fix that line") from None
        out.setdefault(str(row["edition"]).strip(), []).append((rank, row["cluster"].strip()))
    return out


_STATE_SUFFIX = re.compile(r",\s*[A-Z]{2}$")


def name_parts(cluster: str) -> tuple[str, ...]:
    """The places a published cluster is named after, casefolded: the name split on ``–``
    (en dash), each part without a state suffix (``, CA``): ``San Jose, CA–San Francisco,
    CA`` → ``('san jose', 'san francisco')``."""
    parts = (_STATE_SUFFIX.sub("", p.strip()) for p in cluster.split("–"))
    return tuple(" ".join(p.casefold().split()) for p in parts if p.strip())


def _matches(name: str, place: str, published_name: str | None) -> bool:
    """``published_name`` given: the printed name itself (case and spacing aside); else
    ``place`` is one of the name's parts (whole parts: ``York`` is not ``New York City``)."""
    if published_name:
        return " ".join(name.casefold().split()) == " ".join(published_name.casefold().split())
    return " ".join(place.casefold().split()) in name_parts(name)


def published_rank(table: dict[str, list[tuple[int, str]]], place: str, edition: str | None,
                   *, origin: str, published_name: str | None = None,
                   country: str | None = None) -> Observation:
    """The rank of the published cluster named after ``place`` (one of the name's parts,
    :func:`name_parts`), or whose printed name is ``published_name`` when given.

    A published table names clusters after their main places only (Dongguan lies in
    ``Shenzhen–Hong Kong–Guangzhou``): a place no name mentions is undecided, never
    "below the listed ranks". It names no economies either: a claim that gives a
    ``country`` (Cambridge, GB) is undecided unless ``published_name`` says which cluster it
    means (``Boston–Cambridge`` is not in GB).
    """
    obs = Observation("published", edition, source={**PUBLISHED_SOURCE, "file": origin})
    if edition is None:
        obs.why = "the published table is by edition; the claim names no edition"
        return obs
    if edition not in table:
        obs.why = (f"edition {edition} is not in the published table (editions held: "
                   f"{', '.join(sorted(table))})")
        return obs
    if country and not published_name:
        obs.why = (f"the published table names no economies, so it cannot tell which "
                   f"{place} is the one of the claim's country {country} (give "
                   "published_name: the cluster's printed name)")
        return obs
    what = f"named {published_name!r}" if published_name else f"named after {place}"
    hits = [(r, n) for r, n in sorted(table[edition]) if _matches(n, place, published_name)]
    if len(hits) > 1:
        obs.why = (f"{len(hits)} published clusters of {edition} are {what}: "
                   + "; ".join(f"#{r} {n}" for r, n in hits))
        return obs
    if hits:
        rank, name = hits[0]
        obs.interval = Interval.of(rank)
        obs.evidence = f"GII {edition}: #{rank} {name}"
        return obs
    obs.why = (f"GII {edition}: no published cluster is {what}; the published table names "
               "clusters after their main places only, so the place may lie in a listed "
               "cluster (give published_name: the cluster's printed name)")
    return obs


# ------------------------------------------------------------------ run folders

def run_metrics(manifest: dict[str, Any] | None) -> set[str] | None:
    """The metrics a run scored (weight > 0), from its manifest's ``score_weights``."""
    weights = (manifest or {}).get("score_weights")
    if not isinstance(weights, dict):
        return None
    return {str(m) for m, w in weights.items() if isinstance(w, (int, float)) and w > 0}


def run_edition(manifest: dict[str, Any] | None) -> str | None:
    """The edition a run was ranked as: the manifest's ``edition``, or its note
    ``edition <name>`` (written by ``stclusters editions``); None when it names none."""
    named = (manifest or {}).get("edition")
    if isinstance(named, (str, int)) and not isinstance(named, bool) and str(named).strip():
        return str(named).strip()
    for note in (manifest or {}).get("notes") or []:
        if isinstance(note, str) and note.startswith("edition "):
            return note[len("edition "):].strip()
    return None


_DISTANCE_SQL = """
CREATE OR REPLACE TEMP TABLE _claim_near AS
SELECT stc, km FROM (
    SELECT p.stc, 2 * $r * asin(least(1, sqrt(
               pow(sin(radians(p.lat - $lat) / 2), 2)
             + cos(radians($lat)) * cos(radians(p.lat))
               * pow(sin(radians(p.lon - $lon) / 2), 2)))) AS km
    FROM points p)
WHERE km <= $eps
"""
_NEAREST_SQL = """
SELECT n.stc, c.rank, c.name, c.cluster_id, n.km
FROM _claim_near n JOIN clusters c ON c.stc = n.stc
ORDER BY n.km, n.stc LIMIT 1
"""


def run_rank(run_dir: str | Path, place: str, lat: float, lon: float, *, basis: str,
             edition: str | None, metrics: tuple[str, ...] | None) -> Observation:
    """The rank of the run's cluster whose footprint holds ``(lat, lon)`` (degrees).

    The cluster is that of the nearest point within the run's footprint radius
    (manifest ``parameters.footprint_eps_km``, km) that lies in an S&T cluster (its ``stc``
    is a row of ``clusters``; noise points carry ``stc = -1``); its rank is that cluster's
    rank among all the run's clusters (``clusters.rank``, beyond the top N too).

    With ``metrics``, the run must say which metrics scored it (manifest ``score_weights``)
    and score exactly those; otherwise the observation is undecided.
    """
    con, manifest, label = open_run(run_dir, need=("ranking", "clusters", "points"))
    try:
        obs = Observation(basis, edition, data_label=label,
                          source={"publisher": "stclusters run", "title": str(run_dir),
                                  "url": ""})
        scored = run_metrics(manifest)
        if metrics is not None and scored is None:
            obs.why = (f"{run_dir}: the manifest does not say which metrics scored the run "
                       f"(no score_weights); the claim is about {', '.join(sorted(metrics))}")
            return obs
        if metrics is not None and scored != set(metrics):
            obs.why = (f"{run_dir} scores {', '.join(sorted(scored))}; the claim is about "
                       f"{', '.join(sorted(metrics))}")
            return obs
        params = (manifest or {}).get("parameters") or {}
        eps_km = params.get("footprint_eps_km")
        if not isinstance(eps_km, (int, float)):
            obs.why = f"{run_dir}: the manifest gives no footprint_eps_km"
            return obs
        con.execute(_DISTANCE_SQL, {"r": EARTH_RADIUS_KM, "lat": float(lat),
                                    "lon": float(lon), "eps": float(eps_km)})
        n_near = con.execute("SELECT count(*) FROM _claim_near").fetchone()[0]
        stc, rank, name, cluster_id, km = (con.execute(_NEAREST_SQL).fetchone()
                                           or (None,) * 5)
        where = f"{run_dir}" + (f" (edition {edition})" if edition else "")
        if not n_near:
            obs.why = f"{where} has no records within {number(eps_km)} km of {place}"
        elif stc is None:
            obs.no_cluster = True
            obs.evidence = (f"{where}: {number(n_near)} points within {number(eps_km)} km "
                            f"of {place}, none in an S&T cluster")
        else:
            obs.interval = Interval.of(int(rank))
            obs.evidence = (f"{where}: #{int(rank)} {name} ({cluster_id}; nearest clustered "
                            f"point {number(km, digits=1)} km from {place})")
        return obs
    finally:
        con.close()


def editions_runs(editions_dir: str | Path) -> dict[str, Path]:
    """Edition name → run folder of an editions output folder (from its ``editions.json``)."""
    path = Path(editions_dir) / "editions.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(e["edition"]): Path(editions_dir) / str(e["folder"])
                for e in data["editions"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StclustersError(f"{editions_dir}: not an editions folder (no readable "
                              "editions.json)",
                              hint="give the --out folder of `stclusters editions`") from exc
