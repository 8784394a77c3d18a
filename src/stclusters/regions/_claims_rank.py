"""Where the cluster containing a place ranks: in a run folder (the footprint that holds the
place), in each edition of an editions folder, or in a published table of ranks (names that
contain the place). Each answer is an :class:`Observation` (an interval of ranks, or why
there is none)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stclusters._run_folder import open_run
from stclusters.errors import StclustersError
from stclusters.params import EARTH_RADIUS_KM
from stclusters.regions._claims_logic import Interval

_DATA = Path(__file__).parent / "data"
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
            rows = list(csv.DictReader(fh))
            header = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StclustersError(f"{path}: cannot read the published ranks: {exc}",
                              hint="a CSV with columns edition, rank, cluster") from exc
    missing = {"edition", "rank", "cluster"} - header
    if missing:
        raise StclustersError(f"{path}: published ranks lack column(s) "
                              f"{', '.join(sorted(missing))}",
                              hint="a CSV with columns edition, rank, cluster")
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


def published_rank(table: dict[str, list[tuple[int, str]]], place: str, edition: str | None,
                   *, origin: str) -> Observation:
    """The rank of the published cluster whose name contains ``place`` (case-insensitive).

    An edition that lists ranks 1..k without a name containing the place puts it below k
    (rank > k); an edition listing ranks with gaps says nothing about an absent name.
    """
    obs = Observation("published", edition, source={**PUBLISHED_SOURCE, "file": origin})
    if edition is None:
        obs.why = "the published table is by edition; the claim names no edition"
        return obs
    if edition not in table:
        obs.why = (f"edition {edition} is not in the published table (editions held: "
                   f"{', '.join(sorted(table))})")
        return obs
    listed = sorted(table[edition])
    hits = [(r, n) for r, n in listed if place.casefold() in n.casefold()]
    if len(hits) > 1:
        obs.why = (f"{len(hits)} published clusters of {edition} name {place}: "
                   + "; ".join(f"#{r} {n}" for r, n in hits))
        return obs
    if hits:
        rank, name = hits[0]
        obs.interval = Interval.of(rank)
        obs.evidence = f"GII {edition}: #{rank} {name}"
        return obs
    ranks = [r for r, _ in listed]
    if ranks == list(range(1, len(ranks) + 1)):
        obs.interval = Interval.of(len(ranks), ">")
        obs.evidence = f"GII {edition}: no name with {place} among ranks 1-{len(ranks)}"
        return obs
    obs.why = (f"GII {edition}: the table lists only ranks {', '.join(map(str, ranks))} and "
               f"none names {place}")
    return obs


# ------------------------------------------------------------------ run folders

def run_metrics(manifest: dict[str, Any] | None) -> set[str] | None:
    """The metrics a run scored (weight > 0), from its manifest's ``score_weights``."""
    weights = (manifest or {}).get("score_weights")
    if not isinstance(weights, dict):
        return None
    return {str(m) for m, w in weights.items() if isinstance(w, (int, float)) and w > 0}


def run_edition(manifest: dict[str, Any] | None) -> str | None:
    """The edition a run was ranked as (``editions`` writes the note ``edition <name>``)."""
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
    rank among all clusters (``clusters.rank``), or, if the run has none, rank > top N.
    """
    con, manifest, label = open_run(run_dir, need=("ranking", "clusters", "points"))
    try:
        obs = Observation(basis, edition, data_label=label,
                          source={"publisher": "stclusters run", "title": str(run_dir),
                                  "url": ""})
        scored = run_metrics(manifest)
        if metrics is not None and scored is not None and scored != set(metrics):
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
            obs.why = f"{where} has no records within {eps_km:g} km of {place}"
        elif stc is None:
            obs.no_cluster = True
            obs.evidence = (f"{where}: {n_near} points within {eps_km:g} km of {place}, none "
                            "in an S&T cluster")
        elif rank is None:
            top_n = int(params.get("top_n") or 0)
            obs.interval = Interval.of(top_n, ">")
            obs.evidence = (f"{where}: {place} in cluster {cluster_id} ({name}), not in the "
                            f"top {top_n}")
        else:
            obs.interval = Interval.of(int(rank))
            obs.evidence = (f"{where}: #{int(rank)} {name} ({cluster_id}; nearest clustered "
                            f"point {km:.1f} km from {place})")
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
