"""The plain pandas + scikit-learn pipeline an analyst writes today (benchmark baseline).

Written to be the best a competent analyst would write without stclusters, for contribution
tables that are already located (lat/lon; no geocoding), e.g. the synthetic world:

1. ``pandas.read_parquet`` of the needed columns only;
2. fractional counting, ``w = 1 / n_located(doc)`` with ``groupby().transform("size")``;
3. pre-aggregating duplicate coordinates per source (sum of ``w``), which shrinks the input of
   DBSCAN by the repeats;
4. per source, scikit-learn ``DBSCAN(metric="haversine", algorithm="ball_tree")`` with
   ``sample_weight`` and ``min_samples`` = 0.02 % of the source's world total (the stclusters
   default);
5. S&T clusters: patent and publication clusters linked when core points come within eps
   (``BallTree.query_radius``), connected components (``scipy.sparse.csgraph``);
6. footprints: every point within eps of a core point counts for the nearest one's S&T cluster
   (``BallTree.query``, k = 1);
7. cluster weights per source, shares of the world totals, score = sum of shares, rank.

It does less than ``stclusters.rank`` (no names, economies, accounting, quarantine,
workspace, exact-tie rules), which only favours it in timings.

Usage::

    python benchmarks/baseline_pandas_sklearn.py contributions.parquet [--top 20]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import DBSCAN
from sklearn.neighbors import BallTree

R_KM = 6371.0088
EPS_KM = 13.0
MIN_SHARE_PCT = 0.02
CLUSTERED_PRECISIONS = ("point", "postcode", "city")


def load(path: str) -> pd.DataFrame:
    """Read the located contributions and give each its fractional weight."""
    df = pd.read_parquet(path, columns=["doc_id", "source", "lat", "lon", "precision"])
    df = df[df["lat"].notna() & df["lon"].notna()]
    df["w"] = 1.0 / df.groupby(["source", "doc_id"])["doc_id"].transform("size")
    return df


def points(df: pd.DataFrame) -> pd.DataFrame:
    """Weighted points: w summed per (source, lat, lon) of clusterable rows."""
    fine = df[df["precision"].isin(CLUSTERED_PRECISIONS)]
    return fine.groupby(["source", "lat", "lon"], as_index=False, sort=False)["w"].sum()


def cluster_source(pts: pd.DataFrame, min_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn weighted haversine DBSCAN: (labels, core mask).

    scikit-learn >= 1.x only takes an integer ``min_samples``: the threshold is rounded up.
    """
    X = np.radians(pts[["lat", "lon"]].to_numpy())
    db = DBSCAN(eps=EPS_KM / R_KM, min_samples=max(1, math.ceil(min_weight)), metric="haversine",
                algorithm="ball_tree").fit(X, sample_weight=pts["w"].to_numpy())
    core = np.zeros(len(pts), bool)
    core[db.core_sample_indices_] = True
    return db.labels_, core


def st_clusters(pts: pd.DataFrame) -> np.ndarray:
    """S&T cluster id per core point row (-1 elsewhere): link clusters across sources."""
    node = pts["node"].to_numpy()
    core = pts["core"].to_numpy()
    X = np.radians(pts[["lat", "lon"]].to_numpy())
    n_nodes = int(node.max()) + 1 if len(node) else 0
    src = pts["source"].to_numpy()
    edges_a, edges_b = [], []
    sources = sorted(set(src))
    for i, a in enumerate(sources):
        for b in sources[i + 1:]:
            ia = np.flatnonzero(core & (src == a))
            ib = np.flatnonzero(core & (src == b))
            if len(ia) == 0 or len(ib) == 0:
                continue
            hits = BallTree(X[ib], metric="haversine").query_radius(X[ia], r=EPS_KM / R_KM)
            for j, h in zip(ia, hits, strict=True):
                if len(h):
                    edges_a.append(np.full(len(h), node[j]))
                    edges_b.append(node[ib[h]])
    ea = np.concatenate(edges_a) if edges_a else np.empty(0, int)
    eb = np.concatenate(edges_b) if edges_b else np.empty(0, int)
    graph = coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    out = np.full(len(pts), -1)
    out[core] = comp[node[core]]
    return out


def assign(pts: pd.DataFrame, stc_core: np.ndarray) -> np.ndarray:
    """Footprints: S&T cluster of the nearest core point within eps, for every point."""
    core = stc_core >= 0
    X = np.radians(pts[["lat", "lon"]].to_numpy())
    dist, idx = BallTree(X[core], metric="haversine").query(X, k=1)
    stc = stc_core[core][idx[:, 0]]
    stc[dist[:, 0] > EPS_KM / R_KM] = -1
    return stc


def rank(path: str) -> pd.DataFrame:
    """The whole baseline: contributions Parquet → ranking DataFrame (all clusters)."""
    df = load(path)
    totals = df.groupby("source")["w"].sum()
    pts = points(df)
    del df
    pts["node"] = -1
    pts["core"] = False
    offset = 0
    for source, idx in pts.groupby("source").indices.items():
        labels, core = cluster_source(pts.iloc[idx], totals[source] * MIN_SHARE_PCT / 100)
        pts.iloc[idx, pts.columns.get_loc("core")] = core
        pts.iloc[idx, pts.columns.get_loc("node")] = np.where(labels >= 0, labels + offset, -1)
        offset += int(labels.max()) + 1 if len(labels) else 0
    pts["stc"] = assign(pts, st_clusters(pts)) if pts["core"].any() else -1
    w = pts[pts["stc"] >= 0].pivot_table(index="stc", columns="source", values="w",
                                         aggfunc="sum", fill_value=0.0)
    shares = w.div(totals[w.columns], axis=1) * 100
    out = shares.add_suffix("_share_pct").join(w)
    out["score_pct"] = shares.sum(axis=1)
    out = out.sort_values("score_pct", ascending=False)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: print the top clusters."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parquet")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    print(rank(args.parquet).head(args.top).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
