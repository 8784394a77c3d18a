"""Editions over time and the moves between rankings (issue 9 §1, methodology §7).

The editions table is checked against an independent computation: each window ranked on its
own with ``stclusters.rank`` and the clusters matched by a brute-force haversine overlap
written here (numpy distances, plain-Python bookkeeping), not by the package's kernel.
The worlds are SYNTHETIC (drawn around GeoNames places, not real activity).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters.analysis._match import Side, match
from stclusters.analysis.editions import (compare, edition_params, exits, parse_edition_years,
                                          parse_lag_years, rank_editions)
from stclusters.cli import app
from stclusters.errors import ParameterError, StclustersError
from stclusters.params import RankParams
from stclusters.synthetic import synthetic_world

from conftest import SHARED_DATA

runner = CliRunner()
EARTH_RADIUS_KM = 6371.0088
SCALE = 2.0 ** 52


# ------------------------------------------------------------------ a world where clusters move

def _two_eras(n_per_source: int) -> tuple[pa.Table, pa.Table]:
    """Two SYNTHETIC worlds with different seeds (so different places are active) over
    overlapping year ranges: as the windows slide, activity moves from the first to the
    second. Document ids are made distinct."""
    a = synthetic_world(n_per_source=n_per_source, seed=11, years=(2010, 2016))
    b = synthetic_world(n_per_source=n_per_source, seed=12, years=(2014, 2020))
    b = b.set_column(0, "doc_id", pc.binary_join_element_wise("B", b.column("doc_id"), "-"))
    return a, b.cast(a.schema)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("world") / "SYNTHETIC_two_eras.parquet"
    pq.write_table(pa.concat_tables(_two_eras(6_000)), path)
    return path


EDITION_YEARS = [2017, 2019, 2021]


@pytest.fixture(scope="module")
def base() -> RankParams:
    # A threshold for a small world (the default 0.02 % would make nearly every point core).
    return RankParams(top_n=30).with_source("patent", min_weight_share_pct=0.3).with_source(
        "publication", min_weight_share_pct=0.3)


@pytest.fixture(scope="module")
def eds(world, base):
    return rank_editions([str(world)], edition_params(base, EDITION_YEARS), label="SYNTHETIC")


# ------------------------------------------------------------------ the independent computation

def _haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _brute_force_footprint(new_pts, old_cores, eps_km):
    """Old cluster (stc) of the nearest old core point within eps_km of each new point, by
    comparing every new point with every old core point (ties: the smaller stc)."""
    order = sorted(range(len(old_cores)), key=lambda i: old_cores[i]["stc"])
    c_lat = np.array([old_cores[i]["lat"] for i in order])
    c_lon = np.array([old_cores[i]["lon"] for i in order])
    c_stc = [old_cores[i]["stc"] for i in order]
    out = []
    for start in range(0, len(new_pts), 256):
        chunk = new_pts[start:start + 256]
        d = _haversine_km(np.array([p["lat"] for p in chunk])[:, None],
                          np.array([p["lon"] for p in chunk])[:, None],
                          c_lat[None, :], c_lon[None, :])
        for row in d:
            j = int(np.argmin(row)) if len(row) else -1  # the first of equals: smaller stc
            out.append(c_stc[j] if j >= 0 and row[j] <= eps_km else None)
    return out


class _Folder:
    """A run folder read back (manifest.json, workspace.duckdb) with the few things of a
    RankResult the independent computation uses."""

    def __init__(self, folder: Path) -> None:
        import duckdb

        self.manifest = json.loads((folder / "manifest.json").read_text())
        con = duckdb.connect(str(folder / "workspace.duckdb"), read_only=True)
        self._tables = {t: con.sql(f"SELECT * FROM {t}").to_arrow_table()
                        for t in ("points", "clusters", "ranking")}
        con.close()
        self.ranking = self._tables["ranking"]

    def table(self, name: str) -> pa.Table:
        return self._tables[name]


def _eps_km(run) -> float:
    return run.manifest["parameters"]["footprint_eps_km"]


def independent_moves(old, new, *, top_n):
    """The moves of ``new``'s top N against ``old`` (RankResults or run folders read back),
    computed from scratch from the documented rule. Returns {cluster_id: expected fields}
    and the exits."""
    old_cl = {c["stc"]: c for c in old.table("clusters").to_pylist()}
    new_cl = {c["stc"]: c for c in new.table("clusters").to_pylist()}
    old_cores = [p for p in old.table("points").to_pylist() if p["is_core"] and p["stc"] >= 0]
    new_pts = [p for p in new.table("points").to_pylist() if p["stc"] >= 0]
    totals = new.manifest["world_totals"]
    owner = _brute_force_footprint(new_pts, old_cores, _eps_km(old))
    overlap, total = {}, {}
    for p, b in zip(new_pts, owner):
        share = p["weight"] / totals[p["source"]]
        total[p["stc"]] = total.get(p["stc"], 0.0) + share
        if b is not None:
            overlap[(p["stc"], b)] = overlap.get((p["stc"], b), 0.0) + share
    pred, succ = {}, {}
    for (a, b), v in overlap.items():
        key_a = (-v, old_cl[b]["rank"], old_cl[b]["cluster_id"])
        if a not in pred or key_a < pred[a][0]:
            pred[a] = (key_a, b)
        key_b = (-v, new_cl[a]["rank"], new_cl[a]["cluster_id"])
        if b not in succ or key_b < succ[b][0]:
            succ[b] = (key_b, a)
    pred = {a: b for a, (_, b) in pred.items()}
    succ = {b: a for b, (_, a) in succ.items()}
    sources = sorted(c[:-len("_share_pct")] for c in new.ranking.column_names
                     if c.endswith("_share_pct"))
    expected = {}
    for a, c in new_cl.items():
        if c["rank"] > top_n:
            continue
        b = pred.get(a)
        absorbed = [x for x, y in succ.items() if y == a]
        if b is None:
            status = "new"
        elif all(old_cl[x]["rank"] > top_n for x in [b, *absorbed]):
            status = "entered"
        elif sum(old_cl[x]["rank"] <= top_n for x in absorbed) >= 2:
            status = "merged"
        elif succ.get(b) != a:
            status = "split"
        else:
            status = "continued"
        base = set(absorbed) | ({b} if b is not None else set())
        growth = {}
        for s in sources:
            before = sum(old_cl[x][f"{s}_weight"] for x in base)
            growth[s] = (c[f"{s}_weight"] / before - 1) * 100 if base and before > 0 else None
        expected[c["cluster_id"]] = {
            "rank": c["rank"], "prev_rank": old_cl[b]["rank"] if b is not None else None,
            "prev_cluster_id": old_cl[b]["cluster_id"] if b is not None else None,
            "move": old_cl[b]["rank"] - c["rank"] if b is not None else None,
            "status": status, "growth": growth,
            "overlap_pct": 100 * overlap[(a, b)] / total[a] if b is not None else None}
    gone = []
    for b, c in old_cl.items():
        a = succ.get(b)
        if c["rank"] <= top_n and (a is None or new_cl[a]["rank"] > top_n):
            gone.append((c["rank"], c["cluster_id"], "vanished" if a is None else "below_top_n"))
    return expected, sorted(gone)


def _rows_of(table: pa.Table, edition: str) -> list[dict]:
    return table.filter(pc.equal(table.column("edition"), edition)).to_pylist()


def _check_against_independent(table, exit_table, separate, top_n):
    """``table``/``exit_table`` (editions and exits) against :func:`independent_moves` of the
    ``separate`` rankings (edition → ranking, in order)."""
    names = list(separate)
    checked = {"moved": 0, "statuses": set(), "exits": 0}
    for old_name, new_name in zip(names, names[1:]):
        expected, gone = independent_moves(separate[old_name], separate[new_name], top_n=top_n)
        rows = _rows_of(table, new_name)
        assert {r["cluster_id"] for r in rows} == set(expected)
        for r in rows:
            e = expected[r["cluster_id"]]
            where = f"edition {new_name}, {r['name']} ({r['cluster_id']})"
            for key in ("rank", "prev_rank", "prev_cluster_id", "move", "status"):
                assert r[key] == e[key], (where, key, r[key], e[key])
            for s, g in e["growth"].items():
                assert (r[f"{s}_growth_pct"] is None) == (g is None), (where, s)
                if g is not None:
                    assert r[f"{s}_growth_pct"] == pytest.approx(g, rel=1e-9, abs=1e-9), (where, s)
            if e["overlap_pct"] is None:
                assert r["overlap_pct"] is None
            else:
                assert r["overlap_pct"] == pytest.approx(e["overlap_pct"], rel=1e-9), where
            checked["moved"] += bool(r["move"])
            checked["statuses"].add(r["status"])
        got = [(e["prev_rank"], e["prev_cluster_id"], e["reason"])
               for e in _rows_of(exit_table, new_name)]
        assert got == gone, new_name
        checked["exits"] += len(gone)
    return checked


# ------------------------------------------------------------------ the synthetic world

def test_editions_match_an_independent_computation(eds, world, base, figures):
    """Each edition equals a separate `rank` of its window, and previous rank, move, status,
    growth, overlap and exits equal a brute-force haversine matching of those separate runs."""
    params = edition_params(base, EDITION_YEARS)
    separate = {name: stclusters.rank([str(world)], params=p, label="SYNTHETIC")
                for name, p in params.items()}
    for name, res in separate.items():
        assert eds.results[name].ranking.equals(res.ranking), name
    checked = _check_against_independent(eds.table, eds.exits, separate, top_n=base.top_n)
    # The world really moves: ranks change, clusters enter the top N and leave it.
    assert checked["moved"] >= 10 and checked["exits"] >= 2
    assert {"continued", "entered"} <= checked["statuses"]
    table = eds.table
    assert table.column_names[:2] == ["edition", "edition_order"]
    assert _rows_of(table, "2017")[0]["status"] is None  # no earlier edition
    figures.append(f"editions (SYNTHETIC two-era world, 3 editions, top 30): {checked['moved']} "
                   f"rank moves, {checked['exits']} exits, statuses "
                   f"{', '.join(sorted(checked['statuses']))}; all equal to the brute-force check")


def test_editions_table_layout_and_windows(eds):
    t = eds.table
    sources = ["patent", "publication"]
    assert t.column_names == [
        "edition", "edition_order", "rank", "cluster_id", "name", "economy",
        *[f"{s}_weight" for s in sources], *[f"{s}_share_pct" for s in sources], "score_pct",
        "prev_cluster_id", "prev_name", "prev_rank", "move", "status",
        *[f"{s}_growth_pct" for s in sources], "overlap_pct"]
    assert t.column("edition").to_pylist() == sorted(t.column("edition").to_pylist())
    for name, res in eds.results.items():
        rows = _rows_of(t, name)
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert [r["cluster_id"] for r in rows] == res.ranking.column("cluster_id").to_pylist()
        y = int(name)
        assert (res.params.source("patent").first_year, res.params.source("patent").last_year) \
            == (y - 5, y - 1)
        assert (res.params.source("publication").first_year,
                res.params.source("publication").last_year) == (y - 6, y - 2)
        assert res.manifest["notes"] == [f"edition {name}"]
        assert res.manifest["data_label"] == "SYNTHETIC"


def test_write_outputs_and_compare_from_run_folders(eds, tmp_path):
    out = tmp_path / "eds"
    paths = eds.write(out)
    assert {"2017/", "2019/", "2021/", "editions.csv", "editions.parquet", "exits.csv",
            "exits.parquet", "workspace.duckdb", "editions.json"} == set(paths)
    for name in eds.results:
        assert (out / name / "manifest.json").is_file() and (out / name / "ranking.csv").is_file()
    # Each edition's profiles carry the growth of its own edition (none for the first).
    growth = pq.read_table(out / "2021" / "profiles.parquet").filter(
        pc.equal(pq.read_table(out / "2021" / "profiles.parquet").column("facet"), "growth"))
    moved = {r["cluster_id"]: r["move"] for r in _rows_of(eds.table, "2021")}
    assert growth.num_rows and set(growth.column("cluster_id").to_pylist()) <= set(moved)
    assert any(r["growth_pct"] is not None for r in growth.to_pylist())
    first = pq.read_table(out / "2017" / "profiles.parquet")
    assert not [r for r in first.filter(pc.equal(first.column("facet"), "growth")).to_pylist()
                if r["growth_pct"] is not None]  # the first edition has no earlier one
    parquet = pq.read_table(out / "editions.parquet")
    assert parquet.column("data_label").to_pylist() == ["SYNTHETIC"] * eds.table.num_rows
    assert parquet.drop_columns(["data_label"]).equals(eds.table)
    import duckdb

    con = duckdb.connect(str(out / "workspace.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM editions").fetchone()[0] == eds.table.num_rows
    assert con.execute("SELECT count(*) FROM exits").fetchone()[0] == eds.exits.num_rows
    assert con.execute("SELECT data_label FROM data_label").fetchone()[0] == "SYNTHETIC"
    con.close()
    manifest = json.loads((out / "editions.json").read_text())
    assert [e["edition"] for e in manifest["editions"]] == [str(y) for y in EDITION_YEARS]
    assert manifest["outputs"]["editions.csv"]["sha256"]
    # compare() on the written run folders gives the editions table's rows.
    from_folders = compare(out / "2019", out / "2021")
    in_memory = compare(eds.results["2019"], eds.results["2021"])
    assert from_folders.equals(in_memory)
    rows = eds.table.filter(pc.equal(eds.table.column("edition"), "2021"))
    assert rows.drop_columns(["edition", "edition_order"]).equals(in_memory)
    assert exits(out / "2019", out / "2021").to_pylist() == [
        {k: v for k, v in r.items() if k not in ("edition", "edition_order")}
        for r in _rows_of(eds.exits, "2021")]
    # The CLI: the same moves, printed and written.
    moves = tmp_path / "moves.csv"
    result = runner.invoke(app, ["compare", str(out / "2019"), str(out / "2021"),
                                 "--out", str(moves)])
    assert result.exit_code == 0, result.output
    assert "Status" in result.output and "continued" in result.output
    assert moves.read_text().count("\n") == in_memory.num_rows + 1
    assert (tmp_path / "moves.exits.csv").is_file()
    # Writing again with fewer editions: the earlier run's edition folders go.
    fewer = type(eds)({k: eds.results[k] for k in ("2019", "2021")},
                      eds.table.filter(pc.not_equal(eds.table.column("edition"), "2017")),
                      eds.exits, eds.label)
    fewer.write(out)
    assert not (out / "2017").exists() and (out / "2019" / "manifest.json").is_file()


def test_a_write_that_fails_leaves_no_edition_folder(eds, tmp_path, monkeypatch):
    """Stopped after the first edition's folder was written (Ctrl-C, full disk): nothing of
    the run stays behind that looks finished."""
    from stclusters.pipeline import RankResult

    real, calls = RankResult.write, []

    def write_then_stop(self, out_dir, **kw):
        calls.append(out_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, out_dir, **kw)

    monkeypatch.setattr(RankResult, "write", write_then_stop)
    out = tmp_path / "eds"
    with pytest.raises(KeyboardInterrupt):
        eds.write(out)
    assert len(calls) == 2 and not calls[0].exists()  # the first edition was written, then removed
    assert not out.exists() or [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_compare_out_never_replaces_a_file_silently(eds, tmp_path):
    out = tmp_path / "eds"
    eds.write(out)
    ranking = (out / "2019" / "ranking.csv").read_bytes()
    inside = runner.invoke(app, ["compare", str(out / "2019"), str(out / "2021"),
                                 "--out", str(out / "2019" / "ranking.csv")])
    assert inside.exit_code == 2  # inside the run folder (and it exists)
    assert (out / "2019" / "ranking.csv").read_bytes() == ranking
    victim = tmp_path / "data.parquet"
    victim.write_bytes(b"precious")
    refused = runner.invoke(app, ["compare", str(out / "2019"), str(out / "2021"),
                                  "--out", str(victim)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert victim.read_bytes() == b"precious"
    forced = runner.invoke(app, ["compare", str(out / "2019"), str(out / "2021"),
                                 "--out", str(victim), "--force"])
    assert forced.exit_code == 0 and victim.read_bytes() != b"precious"


def test_refuses_a_foreign_output_folder(eds, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StclustersError, match="no editions run"):
        eds.write(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_byte_identical_whatever_the_input_order(eds, base, tmp_path):
    """The world's two eras as two files, rows shuffled, given in the other order: the
    editions and exits files are the same bytes."""
    a, b = _two_eras(6_000)
    rng = random.Random(5)
    for name, t in (("b.parquet", b), ("a.parquet", a)):
        idx = list(range(t.num_rows))
        rng.shuffle(idx)
        pq.write_table(t.take(pa.array(idx)), tmp_path / name)
    again = rank_editions([str(tmp_path / "b.parquet"), str(tmp_path / "a.parquet")],
                          edition_params(base, EDITION_YEARS), label="SYNTHETIC")
    # The tables only (the edition folders are the pipeline's, tested for this elsewhere).
    eds._write_tables(tmp_path / "one")
    again._write_tables(tmp_path / "two")
    for name in ("editions.csv", "editions.parquet", "exits.csv", "exits.parquet"):
        one, two = (tmp_path / "one" / name).read_bytes(), (tmp_path / "two" / name).read_bytes()
        assert one == two, name


def test_matching_ignores_the_order_of_points():
    old = _side([(1, 1, 5), (2, 2, 5)], [(0, 0, 3, True, 1), (0, 0.01, 2, True, 1),
                                          (0, 0.3, 5, True, 2)], top_n=2)
    new = _side([(1, 1, 4), (2, 2, 3)], [(0, 0.05, 1, True, 1), (0, 0.02, 3, True, 1),
                                          (0, 0.25, 3, True, 2)], top_n=2)
    shuffled = Side(new.points.take([2, 0, 1]), new.clusters.take([1, 0]), new.world_totals,
                    new.footprint_eps_km, new.top_n)
    old_shuffled = Side(old.points.take([1, 2, 0]), old.clusters, old.world_totals,
                        old.footprint_eps_km, old.top_n)
    assert match(old, new).moves.equals(match(old_shuffled, shuffled).moves)


# ------------------------------------------------------------------ the real samples

USPTO = sorted((SHARED_DATA / "samples" / "uspto").glob("*.xml.gz"))


def test_real_samples_editions_cli_against_independent_computation(tmp_path):
    """USPTO grants 2005-2013 (real), through the command line: editions 2012 (grants
    2011-2012) and 2013 (2012-2013) share the 2012 grants, so clusters continue. The
    editions.csv it writes equals a brute-force matching of the edition folders it wrote."""
    out = tmp_path / "out"
    result = runner.invoke(app, ["editions", *map(str, USPTO), "--years", "2012-2013",
                                 "--window-years", "2", "--lag-years", "patent=0,publication=0",
                                 "--min-weight-share-pct", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "edition 2013" in result.output and "Status" in result.output
    for name in ("editions.csv", "exits.csv", "editions.json", "2012/manifest.json",
                 "2013/ranking.csv"):
        assert (out / name).is_file(), name
    header = (out / "editions.csv").read_text().splitlines()[0]
    assert header.startswith('"edition","edition_order","rank","cluster_id"')
    table = pq.read_table(out / "editions.parquet")
    separate = {name: _Folder(out / name) for name in ("2012", "2013")}
    checked = _check_against_independent(table, pq.read_table(out / "exits.parquet"), separate,
                                          top_n=RankParams().top_n)
    assert "continued" in checked["statuses"] and "new" in checked["statuses"]
    tokyo = [r for r in _rows_of(table, "2013") if r["name"] == "Tokyo"]
    assert tokyo and tokyo[0]["status"] == "continued" and tokyo[0]["overlap_pct"] == 100.0


# ------------------------------------------------------------------ hand-made cases

def _side(clusters, points, *, top_n, eps_km=13.0):
    """A ranking from hand: clusters (stc, rank, weight), points (lat, lon, weight, core, stc);
    one source, ``patent``."""
    total = sum(p[2] for p in points) or 1.0
    cl = pa.table({
        "stc": [c[0] for c in clusters], "rank": [c[1] for c in clusters],
        "cluster_id": [f"c{c[0]}" for c in clusters], "name": [f"C{c[0]}" for c in clusters],
        "economy": ["XX"] * len(clusters), "patent_weight": [float(c[2]) for c in clusters],
        "patent_share_pct": [100 * c[2] / total for c in clusters],
        "score_pct": [100 * c[2] / total for c in clusters]})
    pts = pa.table({"source": ["patent"] * len(points), "lat": [p[0] for p in points],
                    "lon": [p[1] for p in points],
                    "weight_fx": pa.array([round(p[2] * SCALE) for p in points], pa.int64()),
                    "is_core": [p[3] for p in points], "stc": [p[4] for p in points]})
    return Side(pts, cl, {"patent": total}, eps_km, top_n)


def test_split_merge_new_entered_and_exits_by_hand():
    # Old: B1 (0, 0) and B2 (0, 0.15) 16.7 km apart; B3 at lat 10; B6 at 40; B4 at 20;
    # B5 at 30, ranked 6th (outside the top 5).
    old = _side([(1, 1, 10), (3, 2, 9), (2, 3, 8), (6, 4, 7), (4, 5, 6), (5, 6, 5)],
                [(0, 0, 10, True, 1), (0, 0.15, 8, True, 2), (10, 0, 9, True, 3),
                 (20, 0, 6, True, 4), (30, 0, 5, True, 5), (40, 0, 7, True, 6)], top_n=5)
    # New: A1 spans B1 and B2 (12 + 8); B3 splits into A2 (9) and A3 (2, 11 km north);
    # B4 is gone; A5 grows out of B5; A4 is new (lat 50); A6, B6's heir, falls to 6th.
    new = _side([(1, 1, 20), (2, 2, 9), (5, 3, 6), (4, 4, 5), (3, 5, 2), (6, 6, 1)],
                [(0, 0.001, 12, True, 1), (0, 0.149, 8, True, 1), (10, 0, 9, True, 2),
                 (10.1, 0, 2, True, 3), (30, 0, 6, True, 5), (50, 0, 5, True, 4),
                 (40, 0, 1, True, 6)], top_n=5)
    m = match(old, new)
    rows = {r["cluster_id"]: r for r in m.moves.to_pylist()}
    assert [r["cluster_id"] for r in m.moves.to_pylist()] == ["c1", "c2", "c5", "c4", "c3"]
    assert rows["c1"]["status"] == "merged" and rows["c1"]["prev_cluster_id"] == "c1"
    assert rows["c1"]["patent_growth_pct"] == pytest.approx((20 / 18 - 1) * 100)
    assert rows["c1"]["overlap_pct"] == pytest.approx(60.0)
    assert (rows["c2"]["status"], rows["c2"]["prev_rank"], rows["c2"]["move"]) == \
        ("continued", 2, 0)
    assert (rows["c3"]["status"], rows["c3"]["prev_cluster_id"], rows["c3"]["move"]) == \
        ("split", "c3", -3)
    assert (rows["c5"]["status"], rows["c5"]["prev_rank"], rows["c5"]["move"]) == ("entered", 6, 3)
    assert rows["c5"]["patent_growth_pct"] == pytest.approx(20.0)
    assert rows["c4"]["status"] == "new" and rows["c4"]["prev_rank"] is None
    assert rows["c4"]["patent_growth_pct"] is None and rows["c4"]["overlap_pct"] is None
    assert [(e["prev_cluster_id"], e["reason"], e["successor_rank"])
            for e in m.exits.to_pylist()] == [("c6", "below_top_n", 6), ("c4", "vanished", None)]
    # A larger published top N keeps A6 in it: no exit for B6, and B5 was ranked, so A5
    # has continued, not entered.
    wide = match(old, new, top_n=6)
    assert [e["prev_cluster_id"] for e in wide.exits.to_pylist()] == ["c4"]
    assert {r["cluster_id"]: r["status"] for r in wide.moves.to_pylist()}["c5"] == "continued"


def test_ties_go_to_the_better_old_rank():
    # A lies between B1 (rank 2) and B2 (rank 1), 33 km apart, with equal weight in each
    # footprint: its predecessor is B2, the better ranked.
    old = _side([(1, 2, 5), (2, 1, 5)], [(0, 0, 5, True, 1), (0, 0.3, 5, True, 2)], top_n=2)
    new = _side([(1, 1, 2)], [(0, 0.1, 1, True, 1), (0, 0.2, 1, True, 1)], top_n=2)
    row = match(old, new).moves.to_pylist()[0]
    assert (row["prev_cluster_id"], row["prev_rank"], row["move"]) == ("c2", 1, 0)
    assert row["overlap_pct"] == pytest.approx(50.0)
    # Both old clusters were ranked and both have A as successor: a merger.
    assert row["status"] == "merged"


def test_a_point_in_two_footprints_counts_once_for_the_nearer():
    old = _side([(1, 1, 5), (2, 2, 5)], [(0, 0, 5, True, 1), (0, 0.2, 5, True, 2)], top_n=2)
    # 0.08 deg east of B1 (8.9 km) and 0.12 west of B2 (13.3 km: outside B2's 13 km).
    new = _side([(1, 1, 4)], [(0, 0.08, 4, True, 1)], top_n=2)
    row = match(old, new).moves.to_pylist()[0]
    assert row["prev_cluster_id"] == "c1" and row["overlap_pct"] == pytest.approx(100.0)
    new = _side([(1, 1, 4)], [(0, 0.11, 4, True, 1)], top_n=2)  # 12.2 km from B1, 10 from B2
    assert match(old, new).moves.to_pylist()[0]["prev_cluster_id"] == "c2"


# ------------------------------------------------------------------ parameters

def test_edition_params_gii_windows():
    eds = edition_params(RankParams(), [2024])
    p = eds["2024"]
    assert (p.source("patent").first_year, p.source("patent").last_year) == (2019, 2023)
    assert (p.source("publication").first_year, p.source("publication").last_year) == (2018, 2022)
    assert p.source("patent").doc_types == RankParams().source("patent").doc_types
    three = edition_params(RankParams(), [2023, 2021, 2022], window_years=3,
                           lag_years={"patent": 0})
    assert list(three) == ["2021", "2022", "2023"]
    assert three["2021"].source("publication").last_year == 2019  # its default lag 2 stays
    assert three["2021"].source("patent").first_year == 2019


def test_edition_params_windows_every_metric_the_run_counts():
    """Publications count unless excluded, whatever ``sources`` names: they get their
    window; excluded, the default lags do not ask for them; a lag the user gives must name
    a metric of the run."""
    only_patent = RankParams(sources={"patent": RankParams().source("patent")})
    eds = edition_params(only_patent, [2024])
    assert eds["2024"].source("publication").first_year == 2018
    no_pubs = RankParams().replace(excluded_sources=("publication",))
    eds = edition_params(no_pubs, [2024])
    assert (eds["2024"].source("patent").first_year, eds["2024"].source("patent").last_year) \
        == (2019, 2023)
    with pytest.raises(ParameterError, match="publication"):
        edition_params(no_pubs, [2024], lag_years={"publication": 2})
    # A lag given for one metric leaves the others' defaults as they are.
    vc = RankParams().with_metric("vc_deal")
    eds = edition_params(vc, [2024], lag_years={"vc_deal": 0})
    assert eds["2024"].source("publication").last_year == 2022
    assert eds["2024"].source("vc_deal").last_year == 2024


def test_edition_params_gathers_every_problem():
    with pytest.raises(ParameterError) as err:
        edition_params(RankParams(), [2020, 2020, "x"], window_years=0,
                       lag_years={"patent": -1, "vc": 1})
    text = str(err.value)
    for part in ("given more than once", "must be integers", "window_years", "lag_years['patent']",
                 "not configured: vc"):
        assert part in text, part
    with pytest.raises(ParameterError, match="at least one"):
        edition_params(RankParams(), [])


def test_parse_years_and_lags():
    assert parse_edition_years("2021-2024") == [2021, 2022, 2023, 2024]
    assert parse_edition_years("2015-2016, 2020,2015") == [2015, 2016, 2020]
    for bad in ("2024-2021", "21-24", "2021-", "soon", "2000-2200"):
        with pytest.raises(ValueError):
            parse_edition_years(bad)
    assert parse_lag_years("patent=1, publication=2") == {"patent": 1, "publication": 2}
    for bad in ("patent", "patent=-1", "patent=1,patent=2"):
        with pytest.raises(ValueError):
            parse_lag_years(bad)


# ------------------------------------------------------------------ command line

@pytest.mark.parametrize("command", ["editions", "compare"])
def test_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_cli_bad_years_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["editions", str(USPTO[0]), "--years", "2024-2021", "--out",
                                 str(out), "--lag-years", "patent=x"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "--years" in lines[0] and "--lag-years" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("hint:")
    assert not out.exists()


def test_cli_compare_refuses_a_folder_that_is_no_run(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and "not a complete run folder" in result.output
    result = runner.invoke(app, ["compare", str(tmp_path), str(tmp_path), "--out", "x.txt"])
    assert result.exit_code == 2 and ".csv or .parquet" in result.output
