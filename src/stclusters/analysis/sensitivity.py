"""How the top N moves over a neighbourhood of the clustering parameters (issue 9 §3).

One ranked run is re-clustered under every setting of a grid around its parameters
(each source's ``eps_km`` times a factor, each source's ``min_weight`` times a factor),
without recounting (see :mod:`stclusters.analysis._evaluate`). Each cluster of the run's
ranking is followed into every setting:

* **Matching rule.** A base cluster's *core points* (of the run) are looked up in the
  setting's S&T clusters (footprints: within ``merge_eps_km`` of a core point of that
  setting, the pipeline's own assignment). Its match is the setting's cluster holding the
  largest weight of those core points (ties: the better ranked one). Its rank in the
  setting is the rank of its match.
* **merged**: the match is also the match of another base cluster (any rank); the two
  are one cluster there.
* **split**: at least two of the setting's clusters each hold at least
  ``split_min_share_pct`` (default 10 %) of the base cluster's core weight.
* **dissolved**: none of its core points is in any cluster of the setting (a threshold
  raised above its density); it counts as out of the top N.

Outputs (:meth:`SensitivityReport.write`): ``sensitivity.csv/.parquet`` (per cluster of the
base top N: rank range, share of settings in the top N, merges and splits),
``sensitivity_events.csv/.parquet`` (one row per merge, split, dissolution: setting, partner,
where), ``sensitivity_settings.csv/.parquet`` (per setting: parameters, clusters, rank
correlation with the base), ``sensitivity.png/.svg`` (rank ranges) and ``sensitivity.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from stclusters.analysis._evaluate import Evaluation, Evaluator, spearman
from stclusters.analysis import _output
from stclusters.reports._tables import labelled
from stclusters.errors import ParameterError
from stclusters.params import RankParams

__all__ = ["DEFAULT_EPS_FACTORS", "DEFAULT_MIN_WEIGHT_FACTORS", "SensitivityGrid",
           "SensitivityReport", "sensitivity"]

#: Radius factors: ±20-25 % around the chosen radius (13 km → 10.4 … 16.25 km).
DEFAULT_EPS_FACTORS: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.25)
#: Threshold factors, per source: half to twice the chosen density threshold.
DEFAULT_MIN_WEIGHT_FACTORS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)
#: A base cluster is split in a setting when two clusters there each hold this share (%)
#: of its core weight.
DEFAULT_SPLIT_MIN_SHARE_PCT = 10.0

OUTPUT_NAMES = tuple(f"sensitivity{s}.{e}" for s in ("", "_events", "_settings")
                     for e in ("csv", "parquet")) + ("sensitivity.png", "sensitivity.svg",
                                                     "sensitivity.json")


def _factors(name: str, values: Sequence[float]) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    bad = [v for v in vals if not (np.isfinite(v) and v > 0)]
    if not vals or bad:
        raise ParameterError(f"{name} must be positive numbers, got "
                             f"{', '.join(map(str, bad)) or 'none'}",
                             hint="e.g. --eps-factors 0.8,0.9,1,1.1,1.25")
    return tuple(sorted(set(vals)))


@dataclass(frozen=True)
class SensitivityGrid:
    """The neighbourhood searched: every combination of one radius factor (applied to every
    source's ``eps_km``, and to ``merge_eps_km`` when it is set) and one threshold factor
    per source (applied to its absolute ``min_weight``, as resolved for the run).

    With the defaults and two sources: 5 × 5 × 5 = 125 settings.
    """

    eps_factors: tuple[float, ...] = DEFAULT_EPS_FACTORS
    min_weight_factors: tuple[float, ...] = DEFAULT_MIN_WEIGHT_FACTORS

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_factors", _factors("eps factors", self.eps_factors))
        object.__setattr__(self, "min_weight_factors",
                           _factors("min_weight factors", self.min_weight_factors))

    def settings(self, base: RankParams, min_weight: dict[str, float]) -> list[Setting]:
        """Every setting, radius first (settings of one radius share cached clusterings)."""
        sources = sorted(min_weight)
        combos = np.array(np.meshgrid(*[self.min_weight_factors] * len(sources),
                                      indexing="ij")).reshape(len(sources), -1).T
        out = []
        for ef in self.eps_factors:
            for mf in combos:
                p = base
                for s, f in zip(sources, mf):
                    p = p.with_source(s, eps_km=base.source(s).eps_km * ef,
                                      min_weight=min_weight[s] * float(f))
                if base.merge_eps_km is not None:
                    p = p.replace(merge_eps_km=base.merge_eps_km * ef)
                out.append(Setting(len(out), ef, dict(zip(sources, map(float, mf))), p))
        return out


@dataclass(frozen=True)
class Setting:
    """One point of the grid."""

    setting_id: int
    eps_factor: float
    min_weight_factors: dict[str, float]
    params: RankParams


@dataclass
class _Base:
    """The run's clusters, numbered as its ``stc`` (content order)."""

    rank: np.ndarray
    cluster_id: list[str]
    name: list[str]
    economy: list[str]
    score_pct: np.ndarray
    core_idx: np.ndarray  # evaluator indices of the base core points
    core_stc: np.ndarray
    core_point_weight: np.ndarray  # weight of each base core point
    core_weight: np.ndarray  # per base cluster

    @property
    def n(self) -> int:
        return len(self.rank)


@dataclass
class SensitivityReport:
    """What :func:`sensitivity` found. Tables are Arrow; :meth:`write` saves them."""

    clusters: pa.Table
    events: pa.Table
    settings: pa.Table
    grid: SensitivityGrid
    base_params: RankParams
    top_n: int
    split_min_share_pct: float
    label: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Key figures (JSON-ready)."""
        c = self.clusters.to_pydict()
        n = self.clusters.num_rows
        stable = sum(1 for lo, hi in zip(c["rank_min"], c["rank_max"])
                     if lo is not None and hi is not None and hi - lo <= 2)
        always = sum(1 for s in c["top_n_share_pct"] if s == 100.0)
        return {"n_settings": self.settings.num_rows, "top_n": self.top_n,
                "n_clusters_followed": n, "always_in_top_n": always,
                "rank_range_at_most_2": stable,
                "events": dict(sorted(Counter(self.events.column("event").to_pylist()).items())),
                "eps_factors": list(self.grid.eps_factors),
                "min_weight_factors": list(self.grid.min_weight_factors),
                "split_min_share_pct": self.split_min_share_pct}

    def figure(self, *, max_clusters: int = 40):
        """Rank ranges of the base top clusters as horizontal bars (matplotlib Figure)."""
        return _figure(self, max_clusters=max_clusters)

    def write(self, out_dir: str | Path, *, force: bool = False,
              max_figure_clusters: int = 40) -> list[Path]:
        """Write the three tables (CSV, Parquet), the figure (PNG, SVG) and a JSON summary."""
        import matplotlib.pyplot as plt  # noqa: PLC0415

        out = _output.prepare_dir(out_dir, OUTPUT_NAMES, force=force)
        paths: list[Path] = []
        for stem, t in (("sensitivity", self.clusters), ("sensitivity_events", self.events),
                        ("sensitivity_settings", self.settings)):
            paths += _output.write_table(labelled(t, self.label), out, stem)
        fig = self.figure(max_clusters=max_figure_clusters)
        try:
            paths += _output.save_figure(fig, out, "sensitivity")
        finally:
            plt.close(fig)
        paths.append(_output.write_json(
            {"data_label": self.label, "summary": self.summary(),
             "base_parameters": self.base_params.to_dict(),
             "matching_rule": "core points of each base cluster looked up in the setting's "
                              "footprints; match = the setting's cluster holding most of their "
                              "weight (ties: better rank)"}, out / "sensitivity.json"))
        return paths


def sensitivity(result, *, grid: SensitivityGrid | None = None, top_n: int | None = None,  # noqa: ANN001
                split_min_share_pct: float = DEFAULT_SPLIT_MIN_SHARE_PCT,
                evaluator: Evaluator | None = None,
                progress: Callable[[int, int], None] | None = None) -> SensitivityReport:
    """Follow the run's top N through a grid of clustering parameters around its own.

    Parameters
    ----------
    result : RankResult
        A ranked run (``stclusters.rank`` or ``Located.rank``); its points are re-clustered.
    grid : SensitivityGrid, optional
        Radius and threshold factors (default: 5 × 5 per source, see the module).
    top_n : int, optional
        Clusters of the base ranking followed (default: the run's ``top_n``).
    split_min_share_pct : float
        Share (%) of a base cluster's core weight each of two parts must hold for a split.
    evaluator : Evaluator, optional
        Reuse one built on the same run.
    progress : callable, optional
        Called with (settings done, settings in all).

    Returns
    -------
    SensitivityReport

    Examples
    --------
    >>> res = stclusters.rank(["world.parquet"])                  # doctest: +SKIP
    >>> rep = sensitivity(res)                                   # doctest: +SKIP
    >>> rep.clusters.to_pandas()[["rank", "name", "rank_min", "rank_max"]]  # doctest: +SKIP
    >>> rep.write("sens/")                                       # doctest: +SKIP
    """
    import time  # noqa: PLC0415

    grid = grid or SensitivityGrid()
    top_n = int(top_n or result.params.top_n)
    if not (0 < split_min_share_pct <= 50):
        raise ParameterError(f"split_min_share_pct must be in (0, 50], got {split_min_share_pct}")
    t0 = time.perf_counter()
    ev = evaluator or Evaluator.from_result(result)
    base_eval = ev.evaluate(result.params)
    base = _base(result, ev, base_eval)
    if base.n == 0:
        raise ParameterError("the run found no cluster: nothing to follow",
                             hint="lower the thresholds (--min-weight-share-pct) first")
    # A metric of weight 0 is not clustered (clusters.st.not_clustered): no threshold axis.
    settings = grid.settings(result.params, {
        s: m for s, m in ev.resolved_min_weight(result.params).items()
        if result.params.is_scored(s)})
    ev.plan([st.params for st in settings])  # one sweep per (source, radius)
    followed = np.flatnonzero(base.rank <= top_n)
    followed = followed[np.argsort(base.rank[followed])]
    ranks = np.full((len(followed), len(settings)), -1, dtype=np.int64)
    events: list[dict[str, Any]] = []
    setting_rows: list[dict[str, Any]] = []
    for j, st in enumerate(settings):
        e = ev.evaluate(st.params)
        match = _match(base, e)
        ranks[:, j] = np.where(match.cluster[followed] >= 0,
                               e.rank[np.maximum(match.cluster[followed], 0)], -1)
        new_events = _events(base, e, match, followed, st, ev.names, split_min_share_pct)
        events += new_events
        setting_rows.append(_setting_row(st, e, ev.names, ranks[:, j], base, followed, top_n,
                                         new_events))
        if progress:
            progress(j + 1, len(settings))
    clusters = _cluster_table(base, followed, ranks, events, top_n)
    return SensitivityReport(clusters, _events_table(events, ev.names),
                             pa.Table.from_pylist(setting_rows), grid, result.params, top_n,
                             split_min_share_pct, result.label,
                             {"total": round(time.perf_counter() - t0, 3)})


def _base(result, ev: Evaluator, e: Evaluation) -> _Base:  # noqa: ANN001
    """The run's clusters (names and ranks as published) beside the evaluator's numbering."""
    cl = result.table("clusters")
    n = cl.num_rows
    if n != e.n_clusters:  # the evaluator repeats the pipeline: it cannot differ
        raise RuntimeError(f"re-clustering the run gave {e.n_clusters} clusters, the run has {n}")
    stc = cl.column("stc").to_numpy() if n else np.zeros(0, np.int64)
    ids = cl.column("cluster_id").to_pylist() if n else []
    if any(e.cluster_id[k] != i for k, i in zip(stc.tolist(), ids)):
        raise RuntimeError("re-clustering the run gave other clusters than the run")

    def by_stc(col: str) -> list:
        out = [None] * n
        for k, v in zip(stc.tolist(), cl.column(col).to_pylist()):
            out[k] = v
        return out

    rank = np.array(by_stc("rank"), dtype=np.int64) if n else np.zeros(0, np.int64)
    core_idx = np.flatnonzero(e.labels.is_core)
    core_stc = e.labels.stc[core_idx]
    return _Base(rank, list(e.cluster_id), by_stc("name"), by_stc("economy"),
                 np.array(by_stc("score_pct"), dtype=float) if n else np.zeros(0),
                 core_idx, core_stc, ev.weight[core_idx],
                 np.bincount(core_stc, weights=ev.weight[core_idx], minlength=n))


@dataclass
class _Match:
    cluster: np.ndarray  # per base cluster: matched cluster of the setting, -1 dissolved
    captured_pct: np.ndarray  # share of its core weight in the match, %
    pair_base: np.ndarray  # every overlap: base cluster, setting cluster, share (%)
    pair_cluster: np.ndarray
    pair_pct: np.ndarray


def _match(base: _Base, e: Evaluation) -> _Match:
    """Where each base cluster's core weight lies in the setting (see the module's rule)."""
    s_stc = e.labels.stc[base.core_idx]
    inside = s_stc >= 0
    n_s = max(e.n_clusters, 1)
    keys, inv = np.unique(base.core_stc[inside] * n_s + s_stc[inside], return_inverse=True)
    pw = np.bincount(inv, weights=base.core_point_weight[inside], minlength=len(keys))
    pb, pc = keys // n_s, keys % n_s
    pct = pw / base.core_weight[pb] * 100
    # Per base cluster, the overlap of most weight first (ties: better setting rank).
    order = np.lexsort((e.rank[pc], -pw, pb))
    first = order[np.flatnonzero(np.diff(pb[order], prepend=-1))]
    cluster = np.full(base.n, -1, dtype=np.int64)
    captured = np.zeros(base.n)
    cluster[pb[first]] = pc[first]
    captured[pb[first]] = pct[first]
    return _Match(cluster, captured, pb, pc, pct)


def _setting_params(st: Setting, names: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"setting_id": st.setting_id, "eps_factor": st.eps_factor}
    for s in names:
        row[f"{s}_eps_km"] = float(st.params.source(s).eps_km)
    for s in names:
        # A metric of weight 0 has no threshold axis (it is not clustered): null.
        mw = st.params.source(s).min_weight
        row[f"{s}_min_weight_factor"] = st.min_weight_factors.get(s)
        row[f"{s}_min_weight"] = None if s not in st.min_weight_factors or mw is None else float(mw)
    return row


def _events(base: _Base, e: Evaluation, m: _Match, followed: np.ndarray, st: Setting,
            names: list[str], split_min_share_pct: float) -> list[dict[str, Any]]:
    """Merges, splits and dissolutions of the followed base clusters in one setting."""
    out: list[dict[str, Any]] = []
    by_cluster: dict[int, list[int]] = {}
    for b, c in enumerate(m.cluster.tolist()):
        if c >= 0:
            by_cluster.setdefault(c, []).append(b)
    big = m.pair_pct >= split_min_share_pct
    parts: dict[int, list[tuple[int, float]]] = {}
    for b, c, pct in zip(m.pair_base[big].tolist(), m.pair_cluster[big].tolist(),
                         m.pair_pct[big].tolist()):
        parts.setdefault(b, []).append((c, pct))
    params = _setting_params(st, names)
    for b in followed.tolist():
        c = int(m.cluster[b])
        row = {**params, "base_rank": int(base.rank[b]), "cluster_id": base.cluster_id[b],
               "name": base.name[b]}
        if c < 0:
            out.append({**row, "event": "dissolved", "setting_rank": None,
                        "setting_cluster_id": None, "lat": None, "lon": None,
                        "captured_pct": 0.0, "partners": ""})
            continue
        where = {"setting_rank": int(e.rank[c]), "setting_cluster_id": e.cluster_id[c],
                 "lat": float(e.lat[c]), "lon": float(e.lon[c]),
                 "captured_pct": round(float(m.captured_pct[b]), 3)}
        others = sorted((o for o in by_cluster[c] if o != b), key=lambda o: base.rank[o])
        if others:
            out.append({**row, "event": "merged", **where, "partners": "; ".join(
                f"#{base.rank[o]} {base.name[o]}" for o in others)})
        pieces = sorted(parts.get(b, []), key=lambda cp: e.rank[cp[0]])
        if len(pieces) >= 2:
            out.append({**row, "event": "split", **where, "partners": "; ".join(
                f"rank {e.rank[pc]} at {e.lat[pc]:.3f},{e.lon[pc]:.3f} ({pct:.0f}%)"
                for pc, pct in pieces)})
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _setting_row(st: Setting, e: Evaluation, names: list[str], ranks: np.ndarray, base: _Base,
                 followed: np.ndarray, top_n: int, events: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    kept = ranks >= 0
    kinds = Counter(ev["event"] for ev in events)
    return {**_setting_params(st, names), "n_clusters": e.n_clusters,
            "top_n_kept": int(((ranks >= 1) & (ranks <= top_n)).sum()),
            "spearman_top_n": _rounded(spearman(base.rank[followed][kept].astype(float),
                                                ranks[kept].astype(float))),
            "n_merged": kinds.get("merged", 0), "n_split": kinds.get("split", 0),
            "n_dissolved": kinds.get("dissolved", 0)}


def _cluster_table(base: _Base, followed: np.ndarray, ranks: np.ndarray,
                   events: list[dict[str, Any]], top_n: int) -> pa.Table:
    """Per followed base cluster: rank range over the settings, merges and splits."""
    n_set = ranks.shape[1]
    kinds: dict[tuple[str, str], int] = Counter((ev["cluster_id"], ev["event"]) for ev in events)
    partners: dict[str, Counter] = {}
    for ev in events:
        if ev["event"] == "merged":
            partners.setdefault(ev["cluster_id"], Counter()).update(ev["partners"].split("; "))
    rows = []
    for i, b in enumerate(followed.tolist()):
        r = ranks[i][ranks[i] >= 0]
        cid = base.cluster_id[b]
        top = partners.get(cid, Counter()).most_common(3)
        rows.append({
            "rank": int(base.rank[b]), "cluster_id": cid, "name": base.name[b],
            "economy": base.economy[b], "score_pct": float(base.score_pct[b]),
            "rank_min": int(r.min()) if len(r) else None,
            "rank_median": float(np.median(r)) if len(r) else None,
            "rank_max": int(r.max()) if len(r) else None,
            "top_n_share_pct": round(100.0 * float(((r >= 1) & (r <= top_n)).sum()) / n_set, 3),
            "n_settings": n_set, "n_dissolved": kinds.get((cid, "dissolved"), 0),
            "n_merged": kinds.get((cid, "merged"), 0), "n_split": kinds.get((cid, "split"), 0),
            "merged_with": "; ".join(f"{p} ({k})" for p, k in sorted(top, key=lambda t: (-t[1], t[0]))),
        })
    return pa.Table.from_pylist(rows)


def _events_table(events: list[dict[str, Any]], names: list[str]) -> pa.Table:
    if events:
        return pa.Table.from_pylist(events)
    schema = [("setting_id", pa.int64()), ("eps_factor", pa.float64())]
    schema += [(f"{s}_eps_km", pa.float64()) for s in names]
    for s in names:
        schema += [(f"{s}_min_weight_factor", pa.float64()), (f"{s}_min_weight", pa.float64())]
    schema += [("base_rank", pa.int64()), ("cluster_id", pa.string()), ("name", pa.string()),
               ("event", pa.string()), ("setting_rank", pa.int64()),
               ("setting_cluster_id", pa.string()), ("lat", pa.float64()), ("lon", pa.float64()),
               ("captured_pct", pa.float64()), ("partners", pa.string())]
    return pa.schema(schema).empty_table()


def _figure(rep: SensitivityReport, *, max_clusters: int):
    """Horizontal bars from the best to the worst rank of each base cluster; a tick at the
    median, a dot at the base rank; clusters in base rank order, top to bottom."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    c = rep.clusters.slice(0, max_clusters).to_pydict()
    n = len(c["rank"])
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.28 * max(n, 1)))
    y = np.arange(n)
    lo = np.array([v if v is not None else np.nan for v in c["rank_min"]], dtype=float)
    hi = np.array([v if v is not None else np.nan for v in c["rank_max"]], dtype=float)
    med = np.array([v if v is not None else np.nan for v in c["rank_median"]], dtype=float)
    ax.barh(y, hi - lo + 0.0, left=lo, height=0.55, color="#9ecae1", edgecolor="#3182bd",
            label="rank range over the settings")
    ax.scatter(med, y, marker="|", s=120, color="#08519c", label="median rank", zorder=3)
    ax.scatter(c["rank"], y, marker="o", s=16, color="#d62728", label="rank in the run",
               zorder=4)
    ax.axvline(rep.top_n + 0.5, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{r}. {nm}" + ("" if s == 100 else f"  ({s:.0f}% in top {rep.top_n})")
                      for r, nm, s in zip(c["rank"], c["name"], c["top_n_share_pct"])],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("rank (1 = first)")
    ax.set_xlim(0.5, max(np.nanmax(hi) if n and np.isfinite(np.nanmax(hi)) else 1,
                         rep.top_n) + 1)
    label = f"{rep.label}: " if rep.label else ""
    ax.set_title(f"{label}rank ranges over {rep.settings.num_rows} settings "
                 f"(eps × {', '.join(f'{f:g}' for f in rep.grid.eps_factors)}; min_weight × "
                 f"{', '.join(f'{f:g}' for f in rep.grid.min_weight_factors)} per source)",
                 fontsize=8, pad=22)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
