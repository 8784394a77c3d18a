"""The Spark engine gives the DuckDB engine's answer, byte for byte, on ``local[2]``.

The DuckDB engine is the oracle: same inputs, same parameters, and every output file of the
run folder (ranking, clusters, points, profiles, quarantine, footprints) must be identical;
the manifests differ only in the ``engine`` entry. Reading is resumable per input file in a
Spark workspace folder, and the counting plan itself is checked on generated rows.
"""

from __future__ import annotations

import csv
import filecmp
import json
import shutil
import shutil as _sh
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import stclusters
from stclusters import contributions as contrib
from stclusters.engines import engine
from stclusters.engines.transpile import to_spark
from stclusters.errors import InputFormatError, ParameterError
from stclusters.params import RankParams
from stclusters.synthetic import write_synthetic_world

from conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(_sh.which("java") is None, reason="Spark needs Java (java)")

SAMPLES = sorted((SHARED_DATA / "samples" / "uspto").glob("*.xml.gz")) + sorted(
    (SHARED_DATA / "samples" / "openalex").glob("*.json.gz"))
SNAPSHOT = Path(__file__).parent / "fixtures" / "openalex_snapshot"

#: Few shuffle partitions: the inputs are small, and 200 empty tasks per shuffle cost time.
SPARK = engine("spark", master="local[2]", conf={"spark.sql.shuffle.partitions": "4"})

#: Files of a run folder that are not byte-stable by design (the DuckDB file's pages) or
#: that name the engine (the manifest, compared apart).
_APART = {"manifest.json", "workspace.duckdb"}


def _both(inputs, tmp_path: Path, *, params: RankParams | None = None, spark_inputs=None):
    duck = stclusters.rank(inputs, params=params)
    spark = stclusters.rank(spark_inputs if spark_inputs is not None else inputs,
                            params=params, engine=SPARK)
    duck.write(tmp_path / "duckdb")
    spark.write(tmp_path / "spark")
    return duck, spark


def _assert_same_outputs(tmp_path: Path) -> list[str]:
    a, b = tmp_path / "duckdb", tmp_path / "spark"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    compared = [n for n in names if n not in _APART]
    assert {"ranking.csv", "clusters.parquet", "points.parquet", "quarantine.csv",
            "profiles.csv"} <= set(compared)
    differ = [n for n in compared if not filecmp.cmp(a / n, b / n, shallow=False)]
    assert differ == []
    ma = json.loads((a / "manifest.json").read_text())
    mb = json.loads((b / "manifest.json").read_text())
    assert ma.pop("engine")["name"] == "duckdb"
    eng = mb.pop("engine")
    assert eng["name"] == "spark" and eng["master"] == "local[2]" and eng["version"]
    assert ma == mb  # inputs, accounting, clustering, totals, outputs' hashes
    return compared


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (a cluster without a population has no intensity)."""
    return a.schema == b.schema and a.to_pandas().equals(b.to_pandas())


def _balanced(manifest: dict) -> None:
    for entry in manifest["inputs"]:
        for source, r in entry["records"].items() if "read" not in entry["records"] else [
                ("", entry["records"])]:
            assert r["read"] == r["used"] + sum(r["filtered"].values()) + sum(
                r["rejected"].values()), (entry["name"], source)


def test_samples_agree_byte_for_byte(tmp_path):
    assert SAMPLES, "the shared samples are missing"
    duck, spark = _both(SAMPLES, tmp_path)
    _assert_same_outputs(tmp_path)
    assert spark.ranking.num_rows > 10
    assert spark.manifest["geocoding"]["distinct_addresses"] > 100
    # The ranking tables themselves, not only their files.
    assert _same(spark.ranking, duck.ranking)
    assert spark.table("contributions").sort_by(
        [("input_id", "ascending"), ("record_ref", "ascending"), ("address_seq", "ascending")]
    ).equals(duck.table("contributions").sort_by(
        [("input_id", "ascending"), ("record_ref", "ascending"), ("address_seq", "ascending")]))


def test_synthetic_world_agrees_whatever_the_input_order(tmp_path):
    parts = []
    for seed in range(3):  # three part files: three read tasks
        p = tmp_path / f"world-{seed}.parquet"
        write_synthetic_world(p, n_per_source=1500, seed=seed)
        parts.append(p)
    params = RankParams().with_source("patent", min_weight_share_pct=0.5).with_source(
        "publication", min_weight_share_pct=0.5)
    _both(parts, tmp_path, params=params, spark_inputs=list(reversed(parts)))
    compared = _assert_same_outputs(tmp_path)
    ranking = list(csv.DictReader((tmp_path / "spark" / "ranking.csv").open()))
    assert len(ranking) >= 5, compared


def test_openalex_snapshot_fixture_agrees(tmp_path):
    """A bulk format: parts in updated_date folders, institutions, merged ids, versions of
    one work in several parts (duplicates quarantined in Spark)."""
    duck, spark = _both([SNAPSHOT], tmp_path)
    _assert_same_outputs(tmp_path)
    reasons = {r["reason"] for r in spark.quarantine.to_pylist()}
    assert "superseded by a newer version" in reasons
    _balanced(spark.manifest)


def test_damaged_table_rows_are_quarantined_alike(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rows = ["doc_id,source,year,contributor_seq,lat,lon,country",
            "d1,patent,2020,0,22.54,114.06,CN", "d1,patent,2020,1,22.30,114.17,HK",
            "d2,patent,2020,0,91.5,114.06,CN",  # latitude out of range: rejected
            "d3,publication,notayear,0,22.5,114.0,CN",  # bad year: rejected
            "d4,publication,2021,0,22.55,114.05,CN", "d4,publication,2021,0,22.55,114.05,CN",
            # Greenwich: -0.0 and 0.0 are one coordinate (Spark's grouping folds them).
            "d5,patent,2020,0,51.48,-0.0,GB", "d6,patent,2020,0,51.48,0.0,GB"]
    (src / "a.csv").write_text("\n".join(rows) + "\n")
    (src / "b.csv").write_text("\n".join(rows[:1] + ["d1,patent,2020,0,22.54,114.06,CN"]) + "\n")
    _both([src / "a.csv", src / "b.csv"], tmp_path,
          params=RankParams().with_source("patent", min_weight_share_pct=1.0))
    _assert_same_outputs(tmp_path)
    manifest = json.loads((tmp_path / "spark" / "manifest.json").read_text())
    _balanced(manifest)
    quarantined = list(csv.DictReader((tmp_path / "spark" / "quarantine.csv").open()))
    assert len(quarantined) >= 3  # the bad latitude, the bad year, the duplicate document


def test_workspace_folder_reads_each_file_once(tmp_path):
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    write_synthetic_world(a, n_per_source=500, seed=1)
    write_synthetic_world(b, n_per_source=500, seed=2)
    ws = tmp_path / "ws"
    read_files: list[str] = []
    first = stclusters.rank([a], engine=SPARK, workspace=ws,
                            on_batch=lambda path, n: read_files.append(Path(path).name))
    assert read_files == ["a.parquet"]
    read_files.clear()
    # Same content under another name is not read again; the new file is.
    twin = tmp_path / "a-copy.parquet"
    shutil.copy(a, twin)
    second = stclusters.rank([twin, b], engine=SPARK, workspace=ws,
                             on_batch=lambda path, n: read_files.append(Path(path).name))
    assert read_files == ["b.parquet"]
    assert [i["name"] for i in second.manifest["inputs"]] == ["a.parquet", "b.parquet"]
    # The workspace ranks all it holds: the same as DuckDB on both files.
    duck = stclusters.rank([a, b])
    assert _same(second.ranking, duck.ranking)
    assert first.manifest["engine"]["name"] == "spark"


@pytest.mark.parametrize("bundle", ["patentsview", "patstat"])
def test_bulk_bundle_fixtures_agree(tmp_path, bundle):
    """PatentsView and PATSTAT table files: staged in Spark tasks, assembled on the driver
    by the DuckDB engine's code, counted in Spark."""
    files = sorted((Path(__file__).parent / "fixtures" / bundle).iterdir())
    files = [f for f in files if f.suffix != ".md"]
    assert files
    duck, spark = _both(files, tmp_path)
    _assert_same_outputs(tmp_path)
    assert spark.ranking.num_rows > 0
    _balanced(spark.manifest)


def test_unreadable_file_is_one_clear_error_as_on_duckdb(tmp_path):
    bad = tmp_path / "contributions.csv"
    bad.write_text("a,b\n1,2\n")  # no doc_id, source, year: refused by the reading task
    with pytest.raises(InputFormatError) as duck:
        stclusters.rank([bad])
    with pytest.raises(InputFormatError) as spark:
        stclusters.rank([bad], engine=SPARK)
    assert str(spark.value) == str(duck.value)
    assert "Traceback" not in str(spark.value) and "py4j" not in str(spark.value)


def test_driver_bound_is_enforced_with_a_clear_message():
    small = engine("spark", master="local[2]", conf=SPARK.conf, max_driver_points=3)
    with pytest.raises(ParameterError) as err:
        stclusters.rank(SAMPLES[:1], engine=small)
    assert "exceed the driver's bound of 3" in str(err.value)


def test_engine_settings_are_checked_together():
    with pytest.raises(ParameterError) as err:
        engine("flink", master="local[2]", conf={"executor.memory": "1g"}, max_driver_points=0)
    text = str(err.value)
    for part in ("unknown engine 'flink'", "--master", "executor.memory", "max_driver_points"):
        assert part in text


# ----------------------------------------------------------------------------- the plan


def test_transpile_rewrites_what_differs():
    assert "MATERIALIZED" not in to_spark("WITH a AS NOT MATERIALIZED (SELECT 1 AS x) SELECT x FROM a")
    assert "CAST(weight_fx AS DECIMAL(38, 0))" in to_spark("SELECT sum(weight_fx) FROM t")
    assert "SUM(n)" in to_spark("SELECT sum(n) FROM t")
    with pytest.raises(ValueError):
        to_spark("SELECT a FROM t ORDER BY ALL")


_ROW = hs.tuples(hs.integers(0, 5), hs.sampled_from(["patent", "publication"]),
                 hs.integers(0, 3), hs.integers(0, 2),
                 hs.sampled_from([(22.5, 114.0), (22.3, 114.2), (48.1, 11.6), (None, None)]),
                 hs.sampled_from([2018, 2020, 2022, None]))


@pytest.fixture(scope="module")
def spark():
    from stclusters.engines.spark import session

    return session(SPARK)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=hs.lists(_ROW, min_size=1, max_size=40),
       counting=hs.sampled_from(["located", "all"]),
       window=hs.sampled_from([None, (2019, 2021)]))
def test_counting_plan_agrees_on_generated_rows(spark, rows, counting, window):
    """The counting plan on both engines, over raw rows with given coordinates: the same
    statuses, weights and exact fixed-point weights, row by row."""
    from stclusters import store

    raw = pa.table({
        "input_id": pa.array([0] * len(rows), pa.int32()),
        "doc_id": [f"d{r[0]}" for r in rows], "source": [r[1] for r in rows],
        "year": pa.array([r[5] for r in rows], pa.int32()),
        "contributor_seq": pa.array([r[2] for r in rows], pa.int32()),
        "address_seq": pa.array([r[3] for r in rows], pa.int32()),
        "lat": [r[4][0] for r in rows], "lon": [r[4][1] for r in rows]})
    params = RankParams(counting=counting)
    if window:
        params = params.with_source("patent", first_year=window[0], last_year=window[1])
    con = store.connect(None)
    con.register("_raw", raw)
    cols = ", ".join(raw.column_names)
    con.execute(f"INSERT INTO raw_contributions ({cols}) SELECT {cols} FROM _raw")
    from stclusters.pipeline import _geocoder

    contrib.locate(con, _geocoder)
    contrib.count_fractional(con, params)
    expect = store.fetch_arrow(con, "SELECT doc_id, source, contributor_seq, address_seq, "
                                    "status, weight, weight_fx FROM contributions ORDER BY ALL")
    # The same tables on Spark (rowid: DuckDB's own, as a column).
    for name in ("raw_contributions", "institutions", "geocodes", "reverse_countries",
                 "outside_cells", "merged_ids"):
        table = store.fetch_arrow(con, f"SELECT *, rowid AS rowid FROM {name}"
                                  if name == "raw_contributions" else f"SELECT * FROM {name}")
        spark.createDataFrame(table).createOrReplaceTempView(name) if table.num_rows else \
            spark.createDataFrame(table.schema.empty_table()).createOrReplaceTempView(name)
    plan = contrib.counting_plan(params, sorted(set(raw.column("source").to_pylist())))
    spark.createDataFrame(plan.source_params).createOrReplaceTempView("_source_params")
    spark.sql(to_spark(plan.weights_sql)).createOrReplaceTempView("_weights")
    got = spark.sql(to_spark(plan.contributions_sql)).select(
        "doc_id", "source", "contributor_seq", "address_seq", "status", "weight",
        "weight_fx").toArrow()
    got = got.sort_by([(c, "ascending") for c in got.column_names])
    assert got.to_pylist() == expect.to_pylist()
