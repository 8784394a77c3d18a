"""Matching the clusters of two rankings by footprint overlap (methodology §7).

The rule (also in ``docs/editions.md``):

1. Every point of the *new* ranking that counts for a cluster A (``points.stc >= 0``) is
   mapped onto the *old* ranking's footprints: it takes the old S&T cluster B of its nearest
   old core point within the old footprint radius (``footprint_eps_km``;
   :func:`stclusters.clusters.dbscan.nearest_core`), or none. A point inside two old
   footprints goes to the nearer one, so no weight is counted twice.
2. ``overlap(A, B)`` = Σ over the new points of A mapped to B of ``weight / world total`` of
   the point's source in the new ranking: shares, so that metrics of different units
   (patents, articles, deals) add up. Weights are summed exactly (fixed point,
   ``weight_fx``), so overlaps do not depend on row order.
3. ``pred(A)`` = the B with the largest overlap (ties: the better old rank, then the smaller
   ``cluster_id``); ``succ(B)`` = the A with the largest overlap (ties: the better new rank,
   then the smaller ``cluster_id``).
4. Status of A, first that applies: ``new`` (no overlap with any old cluster); ``entered``
   (neither ``pred(A)`` nor any B with ``succ(B) = A`` was in the old top N); ``merged`` (two
   or more old *top-N* clusters B have ``succ(B) = A``); ``split`` (``succ(pred(A)) != A``:
   A is not the main heir of its predecessor); ``continued``. A merger counts ranked clusters
   only: a big cluster nearly always absorbs some small unranked neighbour between two
   editions (on a synthetic world, 4 and 5 of the top 30 of two editions read ``merged`` for
   that alone), which is growth, not a merger a reader of the ranking would recognise.
5. Exits: old top-N clusters whose successor is none (``vanished``) or ranked below the new
   top N (``below_top_n``).

Growth compares A with its *predecessor set* ``P(A) = {pred(A)} ∪ {B : succ(B) = A}``:
``<source>_growth_pct = (weight(A) / Σ_{B∈P(A)} weight(B) − 1) · 100``. For a cluster that
continued, this is its predecessor alone; for a merger, the clusters it absorbed together
(against ``pred(A)`` alone a merger would show the absorbed clusters as growth).
``overlap_pct`` = ``100 · overlap(A, pred(A)) / Σ_s share_s(A)``: the part of A's activity
(in shares, unweighted) that lies within its predecessor's old footprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stclusters.clusters.dbscan import nearest_core
from stclusters.contributions import WEIGHT_SCALE
from stclusters.errors import StclustersError
from stclusters.store import fetch_arrow

#: Statuses of a cluster relative to the previous ranking (see the module docstring).
STATUSES = ("continued", "split", "merged", "new", "entered")
#: Why an old top-N cluster is not in the new top N.
EXIT_REASONS = ("below_top_n", "vanished")

_POINTS_SQL = ("SELECT source, lat, lon, weight_fx, is_core, stc FROM points WHERE stc >= 0 "
               "ORDER BY source, lat, lon")


@dataclass(frozen=True)
class Side:
    """One ranking as the matching reads it.

    Attributes
    ----------
    points : pyarrow.Table
        Points inside some S&T cluster: ``source, lat, lon`` (degrees), ``weight_fx`` (exact
        fixed-point weight), ``is_core``, ``stc`` (the cluster's workspace number).
    clusters : pyarrow.Table
        Every S&T cluster (ranked or not): ``stc, rank, cluster_id, name, economy``,
        ``<source>_weight``, ``<source>_share_pct``, ``score_pct``…
    world_totals : dict of str to float
        Used weight per source (the denominators of the shares).
    footprint_eps_km : float
        Radius of the footprint discs around core points, km.
    top_n : int
        Clusters published in this ranking.
    label : str or None
        Data label of the run (``SYNTHETIC``), if any.
    """

    points: pa.Table
    clusters: pa.Table
    world_totals: dict[str, float]
    footprint_eps_km: float
    top_n: int
    label: str | None = None

    @property
    def sources(self) -> list[str]:
        """Sources with a ``<source>_share_pct`` column, sorted."""
        return sorted(c[: -len("_share_pct")] for c in self.clusters.column_names
                      if c.endswith("_share_pct"))


def side_of_result(res: Any) -> Side:
    """The :class:`Side` of a :class:`stclusters.pipeline.RankResult` (its own tables)."""
    return Side(points=fetch_arrow(res.con, _POINTS_SQL),
                clusters=fetch_arrow(res.con, "SELECT * FROM clusters ORDER BY rank"),
                world_totals=dict(res.manifest["world_totals"]),
                footprint_eps_km=float(res.params.footprint_eps_km),
                top_n=int(res.params.top_n), label=res.label)


def side_of_run_folder(folder: str | Path) -> Side:
    """The :class:`Side` of a run folder written by ``stclusters rank`` (or
    ``RankResult.write``): its ``manifest.json`` and, opened read-only, ``workspace.duckdb``.

    Raises
    ------
    StclustersError
        ``folder`` is not a complete run folder (no manifest or workspace, unreadable).
    """
    folder = Path(folder)
    hint = "give the --out folder of a finished `stclusters rank` run"
    if not folder.is_dir():
        raise StclustersError(f"{folder}: not a folder", hint=hint)
    manifest_path, ws_path = folder / "manifest.json", folder / "workspace.duckdb"
    for needed in (manifest_path, ws_path):
        if not needed.is_file():
            raise StclustersError(f"{folder}: no {needed.name}: not a complete run folder",
                                  hint=hint)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        params = manifest["parameters"]
        eps_km, top_n = float(params["footprint_eps_km"]), int(params["top_n"])
        totals = {str(k): float(v) for k, v in manifest["world_totals"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StclustersError(f"{manifest_path}: cannot read the run's manifest ({exc})",
                              hint=hint) from exc
    try:
        con = duckdb.connect(str(ws_path), read_only=True)
    except duckdb.Error as exc:
        raise StclustersError(f"{ws_path}: cannot open the run's workspace "
                              f"({str(exc).splitlines()[0]})", hint=hint) from exc
    try:
        points = fetch_arrow(con, _POINTS_SQL)
        clusters = fetch_arrow(con, "SELECT * FROM clusters ORDER BY rank")
    except duckdb.Error as exc:
        raise StclustersError(f"{ws_path}: the workspace lacks the run's points or clusters "
                              f"({str(exc).splitlines()[0]})", hint=hint) from exc
    finally:
        con.close()
    return Side(points, clusters, totals, eps_km, top_n, manifest.get("data_label"))


@dataclass(frozen=True)
class Matched:
    """Outcome of :func:`match`: the new top N with their moves, and the exits."""

    moves: pa.Table
    exits: pa.Table


def _column(table: pa.Table, name: str, default: Any) -> list[Any]:
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [default] * table.num_rows


def _pair_sums(new: Side, old: Side) -> list[tuple[int, int, str, Decimal]]:
    """``(a, b, source, Σ weight_fx)`` of the new points by (new cluster, old footprint)."""
    pts = new.points
    is_core = old.points.column("is_core").to_numpy(zero_copy_only=False)
    old_lat = old.points.column("lat").to_numpy()[is_core]
    old_lon = old.points.column("lon").to_numpy()[is_core]
    old_stc = old.points.column("stc").to_numpy()[is_core]
    b, _ = nearest_core(pts.column("lat").to_numpy(), pts.column("lon").to_numpy(),
                        old_lat, old_lon, old_stc, eps_km=old.footprint_eps_km)
    mapped = pa.table({"a": pts.column("stc"), "b": pa.array(b, pa.int64()),
                       "source": pts.column("source"), "weight_fx": pts.column("weight_fx")})
    # A private connection: the grouping is exact (integer sums), and nothing of the
    # rankings' own workspaces is touched.
    con = duckdb.connect()
    try:
        con.register("_mapped", mapped)
        rows = con.execute("SELECT a, b, source, sum(weight_fx) FROM _mapped "
                           "GROUP BY a, b, source ORDER BY a, b, source").fetchall()
    finally:
        con.close()
    return [(int(a), int(b), str(s), Decimal(fx)) for a, b, s, fx in rows]


def _shares(sums, totals: dict[str, float]) -> tuple[dict[tuple[int, int], float],
                                                     dict[int, float]]:
    """``overlap[(a, b)]`` (b >= 0) and ``total[a]`` (all of A's points), in shares.

    Sources are added in name order (``sums`` is sorted), so the floats are the same bytes
    on every run.
    """
    overlap: dict[tuple[int, int], float] = {}
    total: dict[int, float] = {}
    for a, b, source, fx in sums:
        world = totals.get(source, 0.0)
        if world <= 0:
            continue
        share = float(fx) / WEIGHT_SCALE / world
        total[a] = total.get(a, 0.0) + share
        if b >= 0:
            overlap[(a, b)] = overlap.get((a, b), 0.0) + share
    return overlap, total


@dataclass(frozen=True)
class _Clusters:
    """Per-cluster look-ups of one side, keyed by ``stc``."""

    rank: dict[int, int]
    cluster_id: dict[int, str]
    name: dict[int, str]
    economy: dict[int, str]
    weight: dict[str, dict[int, float]]

    @classmethod
    def of(cls, side: Side, sources: list[str]) -> _Clusters:
        t = side.clusters
        stc = [int(s) for s in _column(t, "stc", -1)]
        weight = {s: dict(zip(stc, _column(t, f"{s}_weight", 0.0))) for s in sources}
        def by_stc(name: str, default: Any) -> dict[int, Any]:
            return dict(zip(stc, _column(t, name, default)))

        return cls(by_stc("rank", None), by_stc("cluster_id", ""), by_stc("name", ""),
                   by_stc("economy", ""), weight)


def _best(candidates: dict[int, float], rank: dict[int, int], cluster_id: dict[int, str]) -> int:
    """The key with the largest overlap; ties: better rank, then smaller cluster_id."""
    return min(candidates, key=lambda k: (-candidates[k], rank[k], cluster_id[k]))


def _links(overlap: dict[tuple[int, int], float], old: _Clusters, new: _Clusters
           ) -> tuple[dict[int, int], dict[int, int]]:
    """``pred`` (new stc → old stc) and ``succ`` (old stc → new stc)."""
    by_a: dict[int, dict[int, float]] = {}
    by_b: dict[int, dict[int, float]] = {}
    for (a, b), value in overlap.items():
        if value > 0:
            by_a.setdefault(a, {})[b] = value
            by_b.setdefault(b, {})[a] = value
    pred = {a: _best(c, old.rank, old.cluster_id) for a, c in by_a.items()}
    succ = {b: _best(c, new.rank, new.cluster_id) for b, c in by_b.items()}
    return pred, succ


def _status(a: int, pred: dict[int, int], heirs_of: dict[int, list[int]],
            succ: dict[int, int], old: _Clusters, old_top_n: int) -> str:
    """The status of new cluster ``a`` (first rule that applies, module docstring)."""
    if a not in pred:
        return "new"
    absorbed = heirs_of.get(a, [])
    if all(old.rank[b] > old_top_n for b in [pred[a], *absorbed]):
        return "entered"
    if sum(old.rank[b] <= old_top_n for b in absorbed) >= 2:
        return "merged"
    if succ.get(pred[a]) != a:
        return "split"
    return "continued"


def _growth_pct(a: int, base: list[int], source: str, old: _Clusters, new: _Clusters
                ) -> float | None:
    if not base:
        return None
    before = sum(old.weight[source].get(b, 0.0) for b in sorted(base))
    if before <= 0:
        return None
    return (new.weight[source].get(a, 0.0) / before - 1.0) * 100.0


def match(old: Side, new: Side, *, top_n: int | None = None,
          pair_sums: list[tuple[int, int, str, Decimal]] | None = None) -> Matched:
    """Match ``new``'s clusters to ``old``'s by footprint overlap (rule: module docstring).

    Parameters
    ----------
    old, new : Side
        The earlier and the later ranking.
    top_n : int, optional
        The published top N of both rankings (for ``entered`` and exits); by default each
        ranking's own ``top_n``.
    pair_sums : list, optional
        ``(a, b, source, Σ weight_fx)`` of the new points by (new cluster, old footprint),
        sorted, when the caller has them already (the explorer maps its points onto the old
        footprints once, for every setting); by default computed here.

    Returns
    -------
    Matched
        ``moves``: one row per cluster of ``new``'s top N, in rank order (columns:
        :func:`moves_schema`); ``exits``: one row per ``old`` top-N cluster that left it.
    """
    old_top_n = int(top_n) if top_n is not None else old.top_n
    new_top_n = int(top_n) if top_n is not None else new.top_n
    sources = new.sources
    o = _Clusters.of(old, sorted(set(sources) | set(old.sources)))
    n = _Clusters.of(new, sources)
    sums = pair_sums if pair_sums is not None else _pair_sums(new, old)
    overlap, total = _shares(sums, new.world_totals)
    pred, succ = _links(overlap, o, n)
    heirs_of: dict[int, list[int]] = {}
    for b, a in sorted(succ.items()):
        heirs_of.setdefault(a, []).append(b)
    ranked = sorted((r, stc) for stc, r in n.rank.items() if r is not None and r <= new_top_n)
    rows = []
    for _, a in ranked:
        b = pred.get(a)
        base = sorted({b, *heirs_of.get(a, [])} - {None})
        row = {"prev_cluster_id": o.cluster_id.get(b), "prev_name": o.name.get(b),
               "prev_rank": o.rank.get(b),
               "move": (o.rank[b] - n.rank[a]) if b is not None else None,
               "status": _status(a, pred, heirs_of, succ, o, old_top_n)}
        row.update({f"{s}_growth_pct": _growth_pct(a, base, s, o, n) for s in sources})
        row["overlap_pct"] = (100.0 * overlap[(a, b)] / total[a]) if b is not None else None
        rows.append(row)
    moves = _moves_table(new, [a for _, a in ranked], rows, sources)
    return Matched(moves, _exits(o, n, succ, old_top_n, new_top_n))


def moves_schema(sources: list[str]) -> pa.Schema:
    """Columns that :func:`match` adds to the new ranking's columns."""
    return pa.schema([("prev_cluster_id", pa.string()), ("prev_name", pa.string()),
                      ("prev_rank", pa.int64()), ("move", pa.int64()), ("status", pa.string()),
                      *[(f"{s}_growth_pct", pa.float64()) for s in sources],
                      ("overlap_pct", pa.float64())])


#: Columns of the new ranking carried into the moves table (with every ``<source>_weight``
#: and ``<source>_share_pct`` between ``economy`` and ``score_pct``).
_HEAD = ("rank", "cluster_id", "name", "economy")


def _moves_table(new: Side, stcs: list[int], rows: list[dict[str, Any]], sources: list[str]
                 ) -> pa.Table:
    order = {int(s): i for i, s in enumerate(_column(new.clusters, "stc", -1))}
    picked = new.clusters.take(pa.array([order[a] for a in stcs], pa.int64()))
    cols = [*_HEAD, *[f"{s}_weight" for s in sources], *[f"{s}_share_pct" for s in sources],
            "score_pct"]
    head = {c: picked.column(c).cast(_HEAD_TYPES.get(c, pa.float64())) for c in cols}
    schema = moves_schema(sources)
    tail = {f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}
    return pa.table({**head, **tail})


_HEAD_TYPES = {"rank": pa.int64(), "cluster_id": pa.string(), "name": pa.string(),
               "economy": pa.string()}

EXITS_SCHEMA = pa.schema([
    ("prev_rank", pa.int64()), ("prev_cluster_id", pa.string()), ("prev_name", pa.string()),
    ("prev_economy", pa.string()), ("successor_cluster_id", pa.string()),
    ("successor_name", pa.string()), ("successor_rank", pa.int64()), ("reason", pa.string())])


def _exits(old: _Clusters, new: _Clusters, succ: dict[int, int], old_top_n: int,
           new_top_n: int) -> pa.Table:
    rows = []
    for r, b in sorted((r, b) for b, r in old.rank.items() if r is not None and r <= old_top_n):
        a = succ.get(b)
        if a is not None and new.rank[a] <= new_top_n:
            continue
        rows.append({"prev_rank": r, "prev_cluster_id": old.cluster_id[b],
                     "prev_name": old.name[b], "prev_economy": old.economy[b],
                     "successor_cluster_id": new.cluster_id.get(a),
                     "successor_name": new.name.get(a), "successor_rank": new.rank.get(a),
                     "reason": "vanished" if a is None else "below_top_n"})
    return pa.Table.from_pylist(rows, schema=EXITS_SCHEMA)
