"""The OpenAlex snapshot: layout, parts read one by one, manifests, merged ids, the S&T
domain filter, and the same ranking as a generic table of the same records."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import stclusters
from stclusters import store
from stclusters.cli_options import params_from_options
from stclusters.errors import InputFormatError, ParameterError
from stclusters.pipeline import Input
from stclusters.sources import Quarantine
from stclusters.sources.openalex import (
    check_manifest,
    manifest_record_counts,
    merged_away_ids,
    read_openalex_institutions,
    read_openalex_works,
    snapshot_parts,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bulk.openalex import generate, peer_sql  # noqa: E402

SNAPSHOT = Path(__file__).parent / "fixtures" / "openalex_snapshot"
WORKS = SNAPSHOT / "data" / "works"
INSTITUTIONS = SNAPSHOT / "data" / "institutions"
#: How the fixture was made (tests/fixtures/README.md).
FIXTURE_ARGS = {"n_works": 400, "seed": 0, "part_works": 150}
#: The fixture is small: a core point needs 3 documents within eps.
PARAMS = stclusters.RankParams().with_source("publication", min_weight=3.0)


def _records(folder: Path) -> list[dict]:
    """Every JSON record of the parts below ``folder``, with ``_part`` and ``_line``."""
    out = []
    for part in sorted(folder.rglob("*.gz"), key=lambda p: p.as_posix()):
        with gzip.open(part, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                rec = json.loads(line)
                rec["_part"], rec["_line"] = part.relative_to(folder).as_posix(), n
                out.append(rec)
    return out


def _newest_works() -> dict[str, dict]:
    """Short id → the newest version of each work (by ``updated_date``)."""
    newest: dict[str, dict] = {}
    for w in _records(WORKS):
        wid = w["id"].rsplit("/", 1)[1]
        if wid not in newest or w["updated_date"] > newest[wid]["updated_date"]:
            newest[wid] = w
    return newest


def _inputs(root: Path) -> list[Input]:
    """The snapshot as the pipeline takes it: each part an input of its own kind."""
    return [Input(str(p), kind=k) for p, k in snapshot_parts(root)]


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "openalex-snapshot"
    shutil.copytree(SNAPSHOT, root)
    return root


@pytest.fixture(scope="module")
def ranked():
    """The fixture snapshot ranked with the default filters (shared: ~4 s a run)."""
    return stclusters.rank(_inputs(SNAPSHOT), params=PARAMS)


def _balanced(acc: dict) -> bool:
    r = acc["records"]
    return r["read"] == r["used"] + sum(r["filtered"].values()) + sum(r["rejected"].values())


# ----------------------------------------------------------------------------- the fixture

def test_fixture_is_the_generators_output_and_the_bytes_are_deterministic(tmp_path):
    a = generate(tmp_path / "a", **FIXTURE_ARGS)
    b = generate(tmp_path / "b", **FIXTURE_ARGS)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(SNAPSHOT).as_posix()
                           for p in SNAPSHOT.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel  # same seed, same bytes
        fresh, kept = (a / rel).read_bytes(), (SNAPSHOT / rel).read_bytes()
        if rel.endswith(".gz"):
            assert fresh[4:8] == b"\0\0\0\0"  # gzip mtime 0
            fresh, kept = gzip.decompress(fresh), gzip.decompress(kept)
        if rel.endswith("manifest"):  # sizes of compressed parts depend on the zlib build
            fresh = json.dumps([e["url"] for e in json.loads(fresh)["entries"]]).encode()
            kept = json.dumps([e["url"] for e in json.loads(kept)["entries"]]).encode()
        assert fresh == kept, rel


def test_fixture_has_every_edge_case():
    records = _records(WORKS)
    ids = [r["id"] for r in records]
    updated = {i for i in ids if ids.count(i) > 1}
    assert updated and all(
        {r["_part"].split("/")[0] for r in records if r["id"] == i}
        == {"updated_date=2024-03-01", "updated_date=2024-06-01"} for i in updated)
    newest = _newest_works()
    domains = {(w["primary_topic"] or {}).get("domain", {}).get("display_name")
               for w in newest.values()}
    assert domains == {None, "Health Sciences", "Life Sciences", "Physical Sciences",
                       "Social Sciences"}
    assert any(isinstance(r["primary_topic"] and r["primary_topic"]["domain"]["id"], int)
               for r in records)  # the 2024-02-27 release's integer ids
    kinds = {(len(a["institutions"]), bool(a["raw_affiliation_strings"]))
             for w in newest.values() for a in w["authorships"]}
    assert kinds == {(0, False), (0, True), (1, True), (2, True)}
    merged = merged_away_ids(SNAPSHOT)["id"].to_pylist()
    assert set(merged) & set(newest) and set(merged) - set(newest)
    insts = _records(INSTITUTIONS)
    assert any(i["geo"]["latitude"] is None for i in insts)
    cited = {i["id"] for w in newest.values() for a in w["authorships"] for i in a["institutions"]}
    assert cited - {i["id"] for i in insts}  # some institutions are not in the parts


# ----------------------------------------------------------------------------- layout

def test_snapshot_parts_of_a_root_and_of_entity_folders():
    parts = snapshot_parts(SNAPSHOT)
    assert [(p.relative_to(SNAPSHOT).as_posix(), k) for p, k in parts] == [
        ("data/institutions/updated_date=2024-06-01/part_000.gz", "openalex-institutions"),
        ("data/works/updated_date=2024-03-01/part_000.gz", "openalex"),
        ("data/works/updated_date=2024-03-01/part_001.gz", "openalex"),
        ("data/works/updated_date=2024-06-01/part_000.gz", "openalex"),
        ("data/works/updated_date=2024-06-01/part_001.gz", "openalex")]
    assert snapshot_parts(WORKS) == parts[1:]
    assert snapshot_parts(INSTITUTIONS) == parts[:1]


def test_snapshot_parts_2026_layout_name_styles_and_other_entities(tmp_path):
    root = tmp_path / "openalex-snapshot"
    jsonl = root / "data" / "jsonl"
    shutil.copytree(WORKS, jsonl / "works")
    shutil.copytree(INSTITUTIONS, jsonl / "institutions")
    # The three part-name styles of formats.md §2.1 in one copy synced over the years.
    old = jsonl / "works" / "updated_date=2023-05-01"
    old.mkdir()
    shutil.copy(jsonl / "works" / "updated_date=2024-03-01" / "part_000.gz", old / "0000_part_00.gz")
    (jsonl / "works" / "updated_date=2024-03-01" / "part_001.gz").rename(
        jsonl / "works" / "updated_date=2024-03-01" / "part_0001.gz")
    for other in ("data/jsonl/authors/updated_date=2024-06-01", "data/parquet/works/updated_date=2024-06-01"):
        (root / other).mkdir(parents=True)
        (root / other / "part_0000.gz").write_bytes(gzip.compress(b"{}\n"))
    (root / "data" / "merged_ids" / "works").mkdir(parents=True)
    parts = [(p.relative_to(root).as_posix(), k) for p, k in snapshot_parts(root)]
    assert parts == [
        ("data/jsonl/institutions/updated_date=2024-06-01/part_000.gz", "openalex-institutions"),
        ("data/jsonl/works/updated_date=2023-05-01/0000_part_00.gz", "openalex"),
        ("data/jsonl/works/updated_date=2024-03-01/part_000.gz", "openalex"),
        ("data/jsonl/works/updated_date=2024-03-01/part_0001.gz", "openalex"),
        ("data/jsonl/works/updated_date=2024-06-01/part_000.gz", "openalex"),
        ("data/jsonl/works/updated_date=2024-06-01/part_001.gz", "openalex")]
    empty = tmp_path / "empty" / "data" / "authors"
    empty.mkdir(parents=True)
    with pytest.raises(InputFormatError, match="no \\*.gz part files of works or institutions"):
        snapshot_parts(tmp_path / "empty")
    with pytest.raises(InputFormatError, match="not a folder"):
        snapshot_parts(SNAPSHOT / "LICENSE.txt")


def test_a_part_read_alone_is_named_below_its_entity_folder_and_keeps_its_date(tmp_path):
    part = WORKS / "updated_date=2024-03-01" / "part_000.gz"
    q = Quarantine()
    batches = list(read_openalex_works(part, quarantine=q))
    refs = [r for b in batches for r in b.documents["record_ref"].to_pylist()]
    assert refs[2] == "updated_date=2024-03-01/part_000.gz:line 3"
    # A record without its own updated_date takes its partition's date.
    lines = gzip.decompress(part.read_bytes()).decode().splitlines()
    undated = []
    for line in lines:
        rec = json.loads(line)
        del rec["updated_date"]
        undated.append(json.dumps(rec))
    folder = tmp_path / "updated_date=2024-03-01"
    folder.mkdir()
    (folder / "part_000.gz").write_bytes(gzip.compress("\n".join(undated).encode()))
    docs = pa.concat_tables(b.documents for b in read_openalex_works(
        folder / "part_000.gz", quarantine=Quarantine()))
    assert set(docs["updated_date"].to_pylist()) == {"2024-03-01"}
    assert docs.num_rows == len(lines) == manifest_record_counts(WORKS)[
        "updated_date=2024-03-01/part_000.gz"]
    # Institutions too: a bad record of a part is filed under the part's name.
    ipart = INSTITUTIONS / "updated_date=2024-06-01" / "part_000.gz"
    bad = tmp_path / "inst" / "updated_date=2024-06-01"
    bad.mkdir(parents=True)
    (bad / "part_000.gz").write_bytes(gzip.compress(gzip.decompress(ipart.read_bytes())
                                                    + b"{broken\n"))
    q = Quarantine()
    t = read_openalex_institutions(bad / "part_000.gz", quarantine=q)
    assert t.num_rows == len(_records(INSTITUTIONS))
    assert [(r["file"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("updated_date=2024-06-01/part_000.gz", "malformed JSON")]


def test_domain_on_the_documents():
    newest = _newest_works()
    docs = pa.concat_tables(b.documents for b in read_openalex_works(WORKS, quarantine=Quarantine()))
    got = dict(zip(docs["doc_id"].to_pylist(), docs["domain"].to_pylist()))
    for wid, w in newest.items():
        topic = w["primary_topic"]
        assert got[wid] == (topic["domain"]["display_name"] if topic else None), wid


# ----------------------------------------------------------------------------- manifests

def test_manifest_of_the_fixture_agrees_with_its_parts():
    assert check_manifest(WORKS) == [] and check_manifest(INSTITUTIONS) == []
    counts = manifest_record_counts(WORKS)
    lines = {}
    for r in _records(WORKS):
        lines[r["_part"]] = lines.get(r["_part"], 0) + 1
    assert counts == lines and sum(counts.values()) == len(_records(WORKS)) > 400


def test_manifest_findings_missing_short_and_unlisted_parts(tmp_path):
    root = _copy(tmp_path)
    works = root / "data" / "works"
    missing = works / "updated_date=2024-03-01" / "part_001.gz"
    size_missing = missing.stat().st_size
    missing.unlink()
    short = works / "updated_date=2024-06-01" / "part_000.gz"
    size_short = short.stat().st_size
    short.write_bytes(short.read_bytes()[: size_short // 2])
    extra = works / "updated_date=2024-07-01" / "part_000.gz"
    extra.parent.mkdir()
    extra.write_bytes(gzip.compress(b'{"id": "W1"}\n'))
    assert check_manifest(works) == [
        {"part": "updated_date=2024-03-01/part_001.gz", "problem": "missing part",
         "expected": size_missing, "found": None},
        {"part": "updated_date=2024-06-01/part_000.gz", "problem": "incomplete part",
         "expected": size_short, "found": size_short // 2},
        {"part": "updated_date=2024-07-01/part_000.gz", "problem": "unlisted part",
         "expected": None, "found": extra.stat().st_size}]


def test_manifest_json_of_2026_no_manifest_and_damaged_manifests(tmp_path):
    root = _copy(tmp_path)
    works = root / "data" / "works"
    listed = json.loads((works / "manifest").read_text())
    (works / "manifest").unlink()
    assert check_manifest(works) == [{"part": "", "problem": "no manifest",
                                      "expected": "manifest or manifest.json", "found": None}]
    assert manifest_record_counts(works) == {}
    (works / "manifest.json").write_text(json.dumps({"files": listed["entries"]}))
    assert check_manifest(works) == []
    assert manifest_record_counts(works) == manifest_record_counts(WORKS)
    for text in ("{not json", '{"entries": 3}', "[]", "\xff\xfe", '{"a": ' * 5000):
        (works / "manifest.json").write_text(text, errors="surrogateescape")
        findings = check_manifest(works)
        assert [f["problem"] for f in findings] == ["unreadable manifest"], text[:20]
    entries = listed["entries"][1:] + [{"url": 5}, {"meta": {}},
                                       {"url": "s3://openalex/data/works/../../etc/passwd"}]
    (works / "manifest.json").write_text(json.dumps({"files": entries}))
    problems = [(f["part"], f["problem"]) for f in check_manifest(works)]
    assert problems == [
        (f"manifest.json entry {n}", "unreadable manifest entry") for n in (4, 5, 6)] + [
        ("updated_date=2024-03-01/part_000.gz", "unlisted part")]


# ----------------------------------------------------------------------------- merged ids

def test_merged_away_ids(tmp_path):
    t = merged_away_ids(SNAPSHOT)
    with gzip.open(SNAPSHOT / "data" / "merged_ids" / "works" / "2024-06-01.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    assert t.schema.names == ["id", "merge_into_id", "merge_date"]
    assert t["id"].to_pylist() == sorted(r["id"] for r in rows)
    assert merged_away_ids(WORKS).equals(t)  # found from the entity folder too
    folder = tmp_path / "snap" / "data" / "merged_ids" / "works"
    folder.mkdir(parents=True)
    (folder / "2024-01-01.csv.gz").write_bytes(gzip.compress(
        b"merge_date,id,merge_into_id\n2024-01-01,https://openalex.org/W5,W6\n"
        b"2024-01-01,W7,W8\n"))
    (folder / "2024-02-01.csv").write_bytes(b"merge_date,id,merge_into_id\n2024-02-01,W5,W9\n")
    assert merged_away_ids(tmp_path / "snap").to_pylist() == [
        {"id": "W5", "merge_into_id": "W9", "merge_date": "2024-02-01"},  # the latest merge
        {"id": "W7", "merge_into_id": "W8", "merge_date": "2024-01-01"}]
    assert merged_away_ids(tmp_path).num_rows == 0  # no merged ids: nothing merged
    (folder / "2024-03-01.csv.gz").write_bytes(gzip.compress(b"merge_date,id\n1,2\n")[:15])
    with pytest.raises(InputFormatError, match="2024-03-01.csv.gz.*unreadable"):
        merged_away_ids(tmp_path / "snap")
    (folder / "2024-03-01.csv.gz").write_bytes(gzip.compress(b"date,id\n1,2\n"))
    with pytest.raises(InputFormatError, match="column merge_date, merge_into_id missing"):
        merged_away_ids(tmp_path / "snap")


def test_merged_works_are_filtered_and_accounted():
    # Given as its root, the snapshot's merged-ids files are inputs of their own (a lookup).
    res = stclusters.rank([str(SNAPSHOT)], params=PARAMS.replace(publication_domains=None)
                          .with_source("publication", doc_types=None))
    merged = set(merged_away_ids(SNAPSHOT)["id"].to_pylist()) & set(_newest_works())
    acc = res.manifest["accounting"]["publication"]
    assert acc["records"]["filtered"]["merged_away"] == len(merged) > 0
    assert _balanced(acc)
    c = res.table("contributions").to_pylist()
    assert {r["status"] for r in c if r["doc_id"] in merged} == {"merged_away"}
    assert not any(r["status"] == "merged_away" for r in c if r["doc_id"] not in merged)
    lookup = res.manifest["accounting"]["merged_id"]["records"]
    assert lookup["unit"] == "merged id" and lookup["read"] == lookup["used"] > 0
    kinds = [i["kind"] for i in res.manifest["inputs"]]
    assert kinds.count("openalex-merged-ids") == len(list(
        (SNAPSHOT / "data" / "merged_ids" / "works").glob("*.csv.gz")))


# ----------------------------------------------------------------------------- domains

def _expected_domain_excluded() -> set[str]:
    return {wid for wid, w in _newest_works().items()
            if w["type"] in ("article", "journal-article") and w["primary_topic"]
            and w["primary_topic"]["domain"]["display_name"] == "Social Sciences"}


def test_domain_filter_on_and_off_through_the_api(ranked):
    on = ranked
    off = stclusters.rank(_inputs(SNAPSHOT), params=PARAMS.replace(publication_domains=None))
    social = _expected_domain_excluded()
    acc_on = on.manifest["accounting"]["publication"]["records"]
    acc_off = off.manifest["accounting"]["publication"]["records"]
    assert acc_on["filtered"]["domain_excluded"] == len(social) > 0
    assert "domain_excluded" not in acc_off["filtered"]
    used_on, used_off = _used_docs(on), _used_docs(off)
    assert {d for d, s in _statuses(on).items() if "domain_excluded" in s} == social
    assert used_on < used_off and used_off - used_on == social & used_off != set()
    # Works without a primary topic (as in the 2022 shape) are kept and counted.
    no_topic = {wid for wid, w in _newest_works().items() if w["primary_topic"] is None}
    assert no_topic & used_on
    assert not any("domain_excluded" in _statuses(on).get(d, ()) for d in no_topic)
    assert list(on.manifest["parameters"]["publication_domains"]) == [
        "Health Sciences", "Life Sciences", "Physical Sciences"]
    assert _balanced(on.manifest["accounting"]["publication"])


def _statuses(res) -> dict[str, set[str]]:
    """Doc id → the statuses of its contributions."""
    docs: dict[str, set] = {}
    for r in res.table("contributions").select(["doc_id", "status"]).to_pylist():
        docs.setdefault(r["doc_id"], set()).add(r["status"])
    return docs


def _used_docs(res) -> set[str]:
    return {d for d, s in _statuses(res).items() if "used" in s}


def test_domain_filter_is_a_cli_option():
    assert params_from_options({}).publication_domains == (
        "Health Sciences", "Life Sciences", "Physical Sciences")
    assert params_from_options({"publication_domains": "all"}).publication_domains is None
    assert params_from_options({"publication_domains": "Social Sciences, Life Sciences"}
                               ).publication_domains == ("Social Sciences", "Life Sciences")
    with pytest.raises(ParameterError, match="publication_domains must be OpenAlex domains.*'Humanities'"):
        params_from_options({"publication_domains": "Humanities"})


# ----------------------------------------------------------------------------- same ranking

def test_snapshot_ranks_like_a_generic_table_of_the_same_located_records(tmp_path, ranked):
    snap = ranked
    assert snap.ranking.num_rows >= 3
    rows = [r for r in snap.table("contributions").to_pylist()
            if r["status"] != "domain_excluded"]  # a table has no domain: leave them out
    path = tmp_path / "located.csv"
    cols = ("doc_id", "source", "year", "contributor_seq", "address_seq", "lat", "lon",
            "precision", "country", "doc_type")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in sorted(rows, key=lambda r: (r["doc_id"], r["contributor_seq"], r["address_seq"])):
            w.writerow(["" if r[c] is None else r[c] for c in cols])
    table = stclusters.rank([str(path)], params=PARAMS)
    assert table.ranking.equals(snap.ranking)
    assert table.table("points").equals(snap.table("points"))


def test_peer_sql_gives_the_institution_located_rows(ranked):
    import duckdb

    sql, params = peer_sql(SNAPSHOT)
    con = duckdb.connect()
    peer = con.execute(sql, params).fetchall()
    rows = ranked.table("contributions").to_pylist()
    ours = sorted((r["doc_id"], r["contributor_seq"], r["institution_id"], r["lat"], r["lon"])
                  for r in rows if r["status"] == "used" and r["geocode_status"] == "institution")
    # The peer has no merged-ids table in our run (not wired here): leave its merged out.
    merged = set(merged_away_ids(SNAPSHOT)["id"].to_pylist())
    theirs = sorted((d, s, i, lat, lon) for d, _, s, i, _, lat, lon in peer
                    if lat is not None and d not in merged)
    assert theirs == [o for o in ours if o[0] not in merged]


# ----------------------------------------------------------------------------- damage

def test_damaged_part_is_read_up_to_the_damage_and_accounted(tmp_path):
    root = _copy(tmp_path)
    part = root / "data" / "works" / "updated_date=2024-03-01" / "part_000.gz"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) * 6 // 10])
    res = stclusters.rank(_inputs(root), params=PARAMS)
    q = [r for r in res.quarantine.to_pylist() if r["field"] == "gzip"]
    assert len(q) == 1 and q[0]["file"] == "updated_date=2024-03-01/part_000.gz"
    assert q[0]["reason"] == "corrupt or truncated gzip stream"
    entry = next(i for i in res.manifest["inputs"] if i["path"] == str(part.resolve()))
    counts = manifest_record_counts(root / "data" / "works")
    read = entry["records"]["read"]
    assert 0 < read - 1 < counts["updated_date=2024-03-01/part_000.gz"]
    assert _balanced(res.manifest["accounting"]["publication"])
    assert [f["problem"] for f in check_manifest(root / "data" / "works")] == ["incomplete part"]
