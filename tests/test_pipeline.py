"""End to end: real samples in, ranking, footprints, points, manifest out; accounting adds up;
bad input is quarantined or refused with one clear line; outputs are byte-identical."""

from __future__ import annotations

import gzip
import re
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters import demo
from stclusters.cli import app
from conftest import SHARED_DATA

USPTO = sorted((SHARED_DATA / "samples" / "uspto").glob("*.xml.gz"))
OPENALEX = sorted((SHARED_DATA / "samples" / "openalex").glob("*.json.gz"))


def _balanced(manifest: dict) -> None:
    """Per input, the records its reader tallied = used + filtered + rejected (counted apart)."""
    for item in manifest["inputs"]:
        r = item["records"]
        assert r["balanced"], item
        assert r["read"] == r["used"] + sum(r["filtered"].values()) + sum(r["rejected"].values())
    # Per source, contributions add up to the rows of the contributions table.
    for source, acc in manifest["accounting"].items():
        c = acc.get("contributions")
        if c:
            assert c["read"] == c["used"] + sum(c["filtered"].values()), source


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    res = stclusters.rank([str(p) for p in USPTO + OPENALEX], params=demo.sample_params())
    res.write(out)
    return res, out


def test_samples_rank_named_clusters_and_balance(sample_run):
    res, out = sample_run
    m = res.manifest
    assert USPTO and OPENALEX
    _balanced(m)
    # 196 + 4 × 25 grants, and 2 sequence listings in ipg130416 (read, filtered).
    assert m["accounting"]["patent"]["records"]["read"] == 298
    assert m["accounting"]["publication"]["records"]["read"] == 410
    rows = res.ranking.to_pylist()
    assert len(rows) >= 10
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    scores = [r["score_pct"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    for r in rows:
        assert r["name"] and not r["name"].startswith("Cluster ")
        assert r["economy"] and r["economy"] != "??"
        assert r["score_pct"] == pytest.approx(r["patent_share_pct"] + r["publication_share_pct"])
    # US names carry their state code.
    us = [r["name"] for r in rows if r["economy"] == "US"]
    assert us and all(re.search(r", [A-Z]{2}( \(\d+\))?$", n) for n in us), us
    # No two clusters carry the same name.
    assert len({r["name"] for r in rows}) == len(rows)
    # Shares are of the world total of the source's weight.
    totals = m["world_totals"]
    for r in rows:
        assert r["patent_share_pct"] == pytest.approx(r["patent_weight"] / totals["patent"] * 100)


def test_contributions_table_holds_the_canonical_schema(sample_run):
    """Methodology §1's table (schema.CONTRIBUTION) is what the workspace calls contributions."""
    from stclusters.schema import CONTRIBUTION

    table = sample_run[0].table("contributions")
    for field in CONTRIBUTION:
        assert table.schema.field(field.name).type == field.type, field.name
    assert set(table.column("status").to_pylist()) <= {"used", "out_of_window", "doc_type_excluded",
                                                        "unlocated", "coarse_precision"}


def test_outputs_written_and_described(sample_run):
    res, out = sample_run
    for name in ("ranking.csv", "ranking.parquet", "clusters.parquet", "points.parquet",
                 "footprints.geojson", "quarantine.csv", "manifest.json", "workspace.duckdb"):
        assert (out / name).stat().st_size > 0, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert {i["path"] for i in manifest["inputs"]} == {str(p.resolve()) for p in USPTO + OPENALEX}
    assert all(len(i["sha256"]) == 64 and i["size_bytes"] > 0 for i in manifest["inputs"])
    assert manifest["software"]["stclusters"] == stclusters.__version__
    assert manifest["parameters"]["sources"]["patent"]["eps_km"] == 13.0
    fc = json.loads((out / "footprints.geojson").read_text())
    assert len(fc["features"]) == res.ranking.num_rows
    points = pq.read_table(out / "points.parquet")
    assert {"source", "lat", "lon", "weight", "is_core", "cluster_id"} <= set(points.column_names)
    # Every point's weight adds up to the world total per source.
    for s, total in manifest["world_totals"].items():
        w = sum(r["weight"] for r in points.to_pylist() if r["source"] == s)
        assert w == pytest.approx(total)
    assert "GeoNames" in " ".join(manifest["attribution"])


def test_byte_identical_whatever_the_input_order(tmp_path, sample_run):
    _, first = sample_run
    inputs = [str(p) for p in reversed(USPTO + OPENALEX)]
    stclusters.rank(inputs, params=demo.sample_params()).write(tmp_path)
    for name in ("ranking.csv", "ranking.parquet", "points.parquet", "footprints.geojson",
                 "clusters.parquet", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (first / name).read_bytes(), name


def _corrupt_second_document(src: Path, dst: Path) -> None:
    text = gzip.decompress(src.read_bytes()).decode("utf-8")
    starts = [i for i in range(len(text)) if text.startswith("<us-patent-grant", i)]
    i = starts[1]
    text = text[:i] + text[i:].replace("</us-bibliographic-data-grant>", "</broken>", 1)
    dst.write_bytes(gzip.compress(text.encode("utf-8")))


def test_malformed_document_is_quarantined_and_counted(tmp_path):
    bad = tmp_path / "bad_ipg.xml.gz"
    _corrupt_second_document(USPTO[0], bad)
    res = stclusters.rank([str(bad)], params=demo.sample_params())
    q = res.quarantine.to_pylist()
    assert len(q) == 1 and "document 2" in q[0]["position"], q
    rec = res.manifest["accounting"]["patent"]["records"]
    assert sum(rec["rejected"].values()) == 1
    assert rec["read"] == 25
    _balanced(res.manifest)


def test_unreadable_input_one_line_exit_2_nothing_written(tmp_path):
    runner = CliRunner()
    not_gzip = tmp_path / "fake.xml.gz"
    not_gzip.write_text("<us-patent-grant>not gzip</us-patent-grant>")
    for path in (tmp_path / "missing.xml.gz", not_gzip):
        out = tmp_path / f"out_{path.name}"
        result = runner.invoke(app, ["rank", str(path), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert str(path) in result.output
        assert "Traceback" not in result.output
        assert not out.exists()


def test_demo_without_shared_falls_back_to_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("STCLUSTERS_SHARED_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "find_shared_data", lambda: None)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--n-per-source", "20000"])
    assert result.exit_code == 0, result.output
    assert "not found" in result.output and "SYNTHETIC" in result.output
    ranking = (tmp_path / "d" / "synthetic" / "ranking.csv").read_text()
    assert ranking.splitlines()[0].startswith('"data_label"')
    assert all(line.startswith('"SYNTHETIC"') for line in ranking.splitlines()[1:])
    assert not (tmp_path / "d" / "samples").exists()


def test_synthetic_world_outputs_byte_identical_across_runs(tmp_path):
    """Large enough for DuckDB to aggregate in parallel: float sums would differ in their
    last bits between runs; fixed-point and ordered sums do not."""
    from stclusters.synthetic import write_synthetic_world

    world = tmp_path / "world.parquet"
    write_synthetic_world(world, n_per_source=150_000, seed=3)
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        stclusters.rank([str(world)], label="SYNTHETIC").write(out)
        outs.append(out)
    for name in ("ranking.csv", "clusters.parquet", "points.parquet", "footprints.geojson",
                 "manifest.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_openalex_institutions_locate_affiliations(tmp_path):
    """An institutions file (2024+ shape, with ``geo``) locates authors by coordinate; the
    others fall back to the geocoder on the raw affiliation string."""
    work = {"id": "https://openalex.org/W1", "publication_year": 2020, "type": "article",
            "authorships": [
                {"author_position": "first", "author": {"id": "https://openalex.org/A1"},
                 "institutions": [{"id": "https://openalex.org/I10", "display_name": "Uni A",
                                   "country_code": "DE"}],
                 "raw_affiliation_strings": ["Somewhere unknown"]},
                {"author_position": "last", "author": {"id": "https://openalex.org/A2"},
                 "institutions": [{"id": "https://openalex.org/I99", "display_name": "Uni B",
                                   "country_code": "FR"}],
                 "raw_affiliation_strings": ["Laboratoire X, Paris, France"]}]}
    inst = {"id": "https://openalex.org/I10", "display_name": "Uni A", "country_code": "DE",
            "geo": {"city": "Aachen", "geonames_city_id": "3247449", "region": None,
                    "country_code": "DE", "country": "Germany", "latitude": 50.77664,
                    "longitude": 6.08342}}
    (tmp_path / "works.jsonl").write_text(json.dumps(work) + "\n")
    (tmp_path / "inst.jsonl").write_text(json.dumps(inst) + "\n")
    res = stclusters.rank([str(tmp_path / "works.jsonl"), str(tmp_path / "inst.jsonl")])
    kinds = {Path(i["path"]).name: i["kind"] for i in res.manifest["inputs"]}
    assert kinds == {"works.jsonl": "openalex", "inst.jsonl": "openalex-institutions"}
    rows = {r["institution_id"]: r for r in res.table("contributions").to_pylist()}
    assert (rows["I10"]["lat"], rows["I10"]["lon"]) == (50.77664, 6.08342)
    assert rows["I10"]["geocode_status"] == "institution" and rows["I10"]["geoname_id"] == 3247449
    assert rows["I99"]["geocode_status"].startswith("matched:")
    assert abs(rows["I99"]["lat"] - 48.85) < 0.1
    assert rows["I10"]["weight"] == rows["I99"]["weight"] == 0.5


def _table(path: Path, rows) -> None:
    header = "doc_id,source,year,contributor_seq,lat,lon,country\n"
    path.write_text(header + "".join(",".join(map(str, r)) + "\n" for r in rows))


def test_duplicate_documents_count_once_and_are_quarantined(tmp_path):
    rows = [(f"D{i}", "patent", 2020, k, 52.52 + i * 1e-3, 13.40, "DE") for i in range(30) for k in range(2)]
    _table(tmp_path / "a.csv", rows)
    _table(tmp_path / "b.csv", rows[:10])  # the same five documents again, in another file
    text = gzip.decompress(USPTO[0].read_bytes())
    (tmp_path / "twice.xml.gz").write_bytes(gzip.compress(text + text))  # every grant twice
    res = stclusters.rank([str(tmp_path / n) for n in ("a.csv", "b.csv", "twice.xml.gz")],
                          params=demo.sample_params())
    _balanced(res.manifest)
    by_name = {Path(i["path"]).name: i["records"] for i in res.manifest["inputs"]}
    assert by_name["b.csv"]["rejected"] == {"duplicate document": 10}
    assert by_name["a.csv"]["rejected"] == {}
    assert by_name["twice.xml.gz"]["read"] == 50
    assert by_name["twice.xml.gz"]["rejected"] == {"duplicate document": 25}
    # Each document weighs 1 once: 30 from the first table, the first copy of each grant.
    assert res.manifest["world_totals"]["patent"] == pytest.approx(30 + by_name["twice.xml.gz"]["used"])
    assert 0 < by_name["twice.xml.gz"]["used"] <= 25
    q = [r for r in res.quarantine.to_pylist() if r["reason"] == "duplicate document"]
    assert all(r["excerpt"].startswith("first read at ") for r in q)
    assert {r["file"] for r in q} == {"b.csv", "twice.xml.gz"}


def test_no_cluster_still_writes_every_output(tmp_path):
    _table(tmp_path / "sparse.csv", [(f"D{i}", "patent", 2020, 0, -60 + i, 10.0 * i, "") for i in range(5)])
    res = stclusters.rank([str(tmp_path / "sparse.csv")],
                          params=stclusters.RankParams().with_source("patent", min_weight=5))
    assert res.ranking.num_rows == 0
    out = tmp_path / "out"
    res.write(out)
    assert json.loads((out / "footprints.geojson").read_text())["features"] == []
    assert (out / "ranking.csv").read_text().startswith('"rank"')
    _balanced(json.loads((out / "manifest.json").read_text()))


def test_byte_identical_whatever_the_row_order(tmp_path):
    import random

    rng = random.Random(5)
    rows = []
    for i in range(400):
        lat, lon = rng.choice([(22.54, 114.06), (22.50, 114.13), (35.68, 139.69), (48.85, 2.35)])
        for k in range(rng.randint(1, 3)):
            rows.append((f"D{i}", rng.choice(["patent", "publication"]) if k == 0 else None, 2020, k,
                         round(lat + rng.gauss(0, 0.03), 4), round(lon + rng.gauss(0, 0.03), 4), ""))
    rows = [(d, s or next(r[1] for r in rows if r[0] == d and r[1]), y, k, la, lo, c)
            for d, s, y, k, la, lo, c in rows]
    params = stclusters.RankParams().with_source("patent", min_weight=3).with_source(
        "publication", min_weight=3)
    outs = []
    for name, order in (("a", rows), ("b", rng.sample(rows, len(rows)))):
        (tmp_path / name).mkdir()
        _table(tmp_path / name / "t.csv", order)
        stclusters.rank([str(tmp_path / name / "t.csv")], params=params).write(tmp_path / name / "out")
        outs.append(tmp_path / name / "out")
    for f in ("ranking.csv", "clusters.parquet", "points.parquet", "footprints.geojson"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    assert (outs[0] / "ranking.csv").read_text().count("\n") >= 3


def test_api_ranking_holds_the_documented_columns_only(sample_run):
    res, _ = sample_run
    cols = res.ranking.column_names
    assert "stc" not in cols  # the workspace's join key, not an output
    assert {"rank", "cluster_id", "name", "economy", "population", "population_basis",
            "patent_per_million_pop", "publication_per_million_pop"} <= set(cols)
    assert set(res.ranking.column("population_basis").to_pylist()) <= {
        "un_wup2018", "un_wup2018+geonames", "geonames", "none"}


def test_read_once_rank_many_matches_separate_runs(sample_run, tmp_path):
    """`stclusters.read` + `Located.rank` twice: each result equals a separate `rank` with the
    same parameters (manifest and output files), and the second never replaces the first's
    tables (each ranking lives in its own schema)."""
    res, out = sample_run
    located = stclusters.read([str(p) for p in USPTO + OPENALEX])

    def shared_tables():  # schema main: what was read, shared by every ranking
        return located.con.execute(
            "SELECT table_name, estimated_size, column_count FROM duckdb_tables() "
            "WHERE schema_name = 'main' AND database_name = current_database() "
            "ORDER BY 1").fetchall()

    before = shared_tables()
    wide = demo.sample_params().with_source("patent", eps_km=40.0)
    a = located.rank(demo.sample_params())
    b = located.rank(wide)
    assert a.ranking.equals(res.ranking)
    assert json.dumps(a.manifest, sort_keys=True) == json.dumps(res.manifest, sort_keys=True)
    assert b.manifest["clustering"]["patent"]["eps_km"] == 40.0
    # a's tables are still a's, after b ran.
    assert a.table("clusters").num_rows == res.table("clusters").num_rows
    assert a.table("points").equals(res.table("points"))
    assert not b.table("clusters").equals(a.table("clusters"))
    a.write(tmp_path / "a")
    for name in ("ranking.csv", "points.parquet", "manifest.json", "footprints.geojson"):
        assert (tmp_path / "a" / name).read_bytes() == (out / name).read_bytes(), name
    b.write(tmp_path / "b")  # profiles built, workspace saved: the shared tables untouched
    assert shared_tables() == before
