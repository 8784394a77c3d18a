"""Inputs given as URIs are read through Spark's own file systems (``file:`` here, the same
code path as ``s3a://``, ``hdfs://``, ``abfss://``), with the DuckDB engine's answer on the
same files given as local paths."""

from __future__ import annotations

import filecmp
import json
import shutil as _sh
from pathlib import Path, PurePosixPath

import pytest

import stclusters
from stclusters.engines._spark_remote import folder_kinds, is_uri, local_name
from stclusters.errors import InputFormatError
from stclusters.params import RankParams

from conftest import SHARED_DATA
from test_spark_engine import SNAPSHOT, SPARK

needs_java = pytest.mark.skipif(_sh.which("java") is None, reason="Spark needs Java (java)")

USPTO = sorted((SHARED_DATA / "samples" / "uspto").glob("*.xml.gz"))
OPENALEX = sorted((SHARED_DATA / "samples" / "openalex").glob("*.json.gz"))


# ----------------------------------------------------------------------------- listing


@pytest.mark.parametrize("path, expected", [
    ("s3a://bucket/works/part_000.gz", True), ("hdfs://nn:8020/x", True),
    ("abfss://c@acct.dfs.core.windows.net/x", True), ("file:/data/x.csv", True),
    ("file:///data/x.csv", True), ("/data/x.csv", False), ("data/x.csv", False),
    ("C:\\data\\x.csv", False), ("weird:name.csv", False)])
def test_is_uri(path, expected):
    assert is_uri(path) is expected


def test_a_snapshot_folder_is_its_works_and_institutions_parts():
    root = "s3a://b/openalex-snapshot"
    files = [f"{root}/{rel}" for rel in (
        "RELEASE_NOTES.txt", "data/works/manifest",
        "data/works/updated_date=2024-01-02/part_001.gz",
        "data/works/updated_date=2024-01-01/part_000.gz",
        "data/institutions/updated_date=2024-01-01/part_000.gz",
        "data/authors/updated_date=2024-01-01/part_000.gz",
        "data/works/updated_date=2024-01-01/_SUCCESS",
        "data/merged_ids/works/2024-01-01.csv.gz",
        "data/merged_ids/authors/2024-01-01.csv.gz")]
    assert folder_kinds(files, root, "auto") == [
        (f"{root}/data/institutions/updated_date=2024-01-01/part_000.gz",
         "openalex-institutions"),
        (f"{root}/data/merged_ids/works/2024-01-01.csv.gz", "openalex-merged-ids"),
        (f"{root}/data/works/updated_date=2024-01-01/part_000.gz", "openalex"),
        (f"{root}/data/works/updated_date=2024-01-02/part_001.gz", "openalex")]
    # The entity folder itself: its parts are works whatever its name.
    entity = f"{root}/data/mine"
    assert folder_kinds([f"{entity}/updated_date=2024-01-01/part_000.gz"], entity, "auto") == [
        (f"{entity}/updated_date=2024-01-01/part_000.gz", "openalex")]


def test_any_other_folder_is_its_files_without_hidden_or_unused_bundle_tables():
    root = "hdfs://nn/in"
    files = [f"{root}/b.csv", f"{root}/a.xml.gz", f"{root}/.hidden.csv", f"{root}/_SUCCESS",
             f"{root}/patstat/tls211_part01.zip", f"{root}/patstat/tls201_part01.zip"]
    assert folder_kinds(files, root, "auto") == [
        (f"{root}/a.xml.gz", "auto"), (f"{root}/b.csv", "auto"),
        (f"{root}/patstat/tls201_part01.zip", "auto")]


def test_a_fetched_file_keeps_its_name_and_partition_folder():
    assert local_name("s3a://b/w/updated_date=2024-01-01/part_000.gz") == PurePosixPath(
        "updated_date=2024-01-01/part_000.gz")
    assert local_name("file:/x.csv").name == "x.csv"


# ----------------------------------------------------------------------------- agreement


def _same_run(duck, spark, tmp_path: Path, *, paths: dict[str, str]) -> None:
    """Every output file identical but the manifest, whose inputs are named by URI."""
    duck.write(tmp_path / "duckdb")
    spark.write(tmp_path / "spark")
    a, b = tmp_path / "duckdb", tmp_path / "spark"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    differ = [n for n in names if n not in ("manifest.json", "workspace.duckdb")
              and not filecmp.cmp(a / n, b / n, shallow=False)]
    assert differ == []
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    ma.pop("engine"), mb.pop("engine")
    text = json.dumps(ma, sort_keys=True)
    for local, uri in paths.items():
        text = text.replace(json.dumps(local)[1:-1], json.dumps(uri)[1:-1])
    assert json.loads(text) == mb


@needs_java
def test_samples_as_uris_agree_with_duckdb_on_local_paths(tmp_path):
    """Single files as ``file:///`` URIs and a glob; Hadoop names them ``file:/…``."""
    assert USPTO and OPENALEX
    duck = stclusters.rank(USPTO + OPENALEX)
    glob = (SHARED_DATA / "samples" / "openalex").as_uri() + "/*.json.gz"
    spark = stclusters.rank([p.as_uri() for p in USPTO] + [glob], engine=SPARK)
    assert [r["path"] for r in spark.manifest["inputs"]] == sorted(
        f"file:{p}" for p in USPTO + OPENALEX) or all(
        r["path"].startswith("file:/") for r in spark.manifest["inputs"])
    _same_run(duck, spark, tmp_path, paths={str(p): f"file:{p}" for p in USPTO + OPENALEX})
    assert spark.ranking.num_rows > 10


@needs_java
def test_snapshot_folder_as_uri_agrees(tmp_path):
    duck = stclusters.rank([SNAPSHOT])
    spark = stclusters.rank([SNAPSHOT.as_uri()], engine=SPARK)
    duck.write(tmp_path / "duckdb")
    spark.write(tmp_path / "spark")
    for name in ("ranking.csv", "clusters.parquet", "points.parquet", "quarantine.csv"):
        assert filecmp.cmp(tmp_path / "duckdb" / name, tmp_path / "spark" / name,
                           shallow=False), name
    assert "superseded by a newer version" in {r["reason"] for r in spark.quarantine.to_pylist()}
    kinds = sorted({r["kind"] for r in spark.manifest["inputs"]})
    assert kinds == sorted({r["kind"] for r in duck.manifest["inputs"]})


@needs_java
def test_damaged_rows_through_a_uri_are_quarantined_alike(tmp_path):
    src = tmp_path / "in [1]"  # a glob character in the folder's name is taken literally
    src.mkdir()
    (src / "a.csv").write_text("doc_id,source,year,contributor_seq,lat,lon,country\n"
                               "d1,patent,2020,0,22.54,114.06,CN\n"
                               "d2,patent,2020,0,91.5,114.06,CN\n"
                               "d3,publication,notayear,0,22.5,114.0,CN\n")
    params = RankParams().with_source("patent", min_weight_share_pct=1.0)
    duck = stclusters.rank([src / "a.csv"], params=params)
    # As Hadoop takes a path: not percent-encoded, glob characters escaped to be literal.
    folder = "file://" + str(src).replace("[", "\\[").replace("]", "\\]")
    spark = stclusters.rank([folder], params=params, engine=SPARK)
    assert duck.quarantine.to_pylist() == spark.quarantine.to_pylist()
    assert len(spark.quarantine.to_pylist()) == 2
    (entry,) = spark.manifest["inputs"]
    assert entry["path"] == f"file:{src}/a.csv"


@needs_java
def test_a_missing_uri_is_named(tmp_path):
    missing = (tmp_path / "nothing-here.csv").as_uri()
    with pytest.raises(InputFormatError, match="nothing-here.csv.*no such file"):
        stclusters.rank([missing], engine=SPARK)


@needs_java
def test_a_uri_of_no_known_kind_is_named(tmp_path):
    bad = tmp_path / "blob.bin"
    bad.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputFormatError, match=r"file:.*blob\.bin.*binary content"):
        stclusters.rank([bad.as_uri()], engine=SPARK)


@needs_java
def test_a_fetched_file_is_not_read_again_in_a_workspace(tmp_path):
    store = tmp_path / "store"
    uri = USPTO[0].as_uri()
    first = stclusters.rank([uri], engine=SPARK, workspace=store)
    metas = sorted((store / "files").glob("*/meta.json"))
    assert len(metas) == 1
    stamp = metas[0].stat().st_mtime_ns
    again = stclusters.rank([uri], engine=SPARK, workspace=store)
    assert metas[0].stat().st_mtime_ns == stamp
    assert again.ranking.equals(first.ranking)


@needs_java
def test_progress_is_reported_per_file_with_its_records(tmp_path):
    """Each file is reported once as its task finishes, local or fetched, with the records
    the manifest says it read."""
    calls: list[tuple[str, int]] = []
    local, fetched = USPTO[:2], OPENALEX[:1]
    located = stclusters.read(local + [p.as_uri() for p in fetched], engine=SPARK,
                              on_batch=lambda path, n: calls.append((path, n)))
    res = located.rank()
    read = {e["path"]: e["records"] for e in res.manifest["inputs"]}
    assert sorted(p for p, _ in calls) == sorted(read)
    for path, n in calls:
        r = read[path]
        total = r["read"] if "read" in r else sum(s["read"] for s in r.values())
        assert n == total > 0, path
