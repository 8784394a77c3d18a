"""Folders are detected by what they hold, and a CSV header with blanks around its names
reads (issue 6)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stclusters
from stclusters.cli import app
from stclusters.errors import InputFormatError
from stclusters.sources import FOLDER, Quarantine, detect_kind, read_source

runner = CliRunner()


def _rows(prefix: str, n: int, lat: float, lon: float, country: str) -> str:
    return "".join(f"{prefix}{i},patent,2020,{lat},{lon + i * 1e-4},{country}\n" for i in range(n))


def _work(i: int) -> dict:
    return {"id": f"https://openalex.org/W{i}", "publication_year": 2020, "type": "article",
            "authorships": [{"institutions": [{"id": f"https://openalex.org/I{i}",
                                               "display_name": "ETH Zurich", "country_code": "CH"}],
                             "raw_affiliation_strings": ["ETH Zurich, Zurich, Switzerland"]}]}


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")   # hidden files are not inputs
    with pytest.raises(InputFormatError, match="the folder holds no files"):
        detect_kind(tmp_path / "empty")
    result = runner.invoke(app, ["rank", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "holds no files" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_folder_of_tables_reads_every_table(tmp_path):
    folder = tmp_path / "tables"
    (folder / "more").mkdir(parents=True)
    header = "doc_id,source,year,lat,lon,country\n"
    (folder / "a.csv").write_text(header + _rows("a", 5, 48.85, 2.35, "FR"))
    (folder / "more" / "b.csv").write_text(header + _rows("b", 3, 52.52, 13.40, "DE"))
    assert detect_kind(folder) == FOLDER
    res = stclusters.rank([str(folder)])
    assert [(i["name"], i["kind"]) for i in res.manifest["inputs"]] == [("a.csv", "table"),
                                                                         ("b.csv", "table")]
    rec = res.manifest["accounting"]["patent"]["records"]
    assert rec["read"] == rec["used"] == 8
    batches = list(read_source(folder, quarantine=Quarantine()))
    assert sum(b.contributions.num_rows for b in batches) == 8


def test_folder_of_json_works_files(tmp_path):
    folder = tmp_path / "works"
    folder.mkdir()
    (folder / "w1.json").write_text(json.dumps([_work(1), _work(2)]))
    with gzip.open(folder / "w2.jsonl.gz", "wt") as f:
        f.write(json.dumps(_work(3)) + "\n")
    assert detect_kind(folder) == FOLDER
    res = stclusters.rank([str(folder)])
    assert {i["kind"] for i in res.manifest["inputs"]} == {"openalex"}
    assert res.manifest["accounting"]["publication"]["records"]["read"] == 3


def test_snapshot_folder_is_openalex(tmp_path):
    part = tmp_path / "snap" / "data" / "works" / "updated_date=2024-01-01"
    part.mkdir(parents=True)
    with gzip.open(part / "part_000.gz", "wt") as f:
        f.write(json.dumps(_work(1)) + "\n")
    (tmp_path / "snap" / "data" / "works" / "manifest").write_text("{}")
    assert detect_kind(tmp_path / "snap") == "openalex"
    res = stclusters.rank([str(tmp_path / "snap")])
    assert res.manifest["accounting"]["publication"]["records"]["read"] == 1


def test_header_with_blanks_around_names(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text(" doc_id, source ,year,lat ,lon,country\n"
                    "d1,patent,2020,48.85,2.35,FR\nd2,patent,2020,48.86,2.35,FR\n")
    res = stclusters.rank([str(path)])
    rec = res.manifest["accounting"]["patent"]["records"]
    assert rec["read"] == rec["used"] == 2
    assert sorted(res.table("contributions").column("doc_id").to_pylist()) == ["d1", "d2"]


def test_progress_names_each_part_of_a_snapshot(tmp_path):
    works = tmp_path / "snap" / "data" / "works"
    for k, day in enumerate(("2024-01-01", "2024-02-01")):
        (works / f"updated_date={day}").mkdir(parents=True)
        with gzip.open(works / f"updated_date={day}" / "part_000.gz", "wt") as f:
            f.write("".join(json.dumps(_work(10 * k + i)) + "\n" for i in range(3)))
    seen: list[tuple[str, int]] = []
    stclusters.rank([str(tmp_path / "snap")], on_batch=lambda p, n: seen.append((p, n)),
                    batch_rows=2)
    parts = sorted({p for p, _ in seen})
    assert parts == [str(works / f"updated_date={d}" / "part_000.gz")
                     for d in ("2024-01-01", "2024-02-01")]
    assert sum(n for _, n in seen) == 6


def test_outputs_of_a_run_inside_the_input_folder_are_no_inputs(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "a.csv").write_text("doc_id,source,year,lat,lon,country\n"
                                  + _rows("a", 5, 48.85, 2.35, "FR"))
    first = stclusters.rank([str(folder)])
    first.write(folder / "out")              # the run's outputs now sit inside the input folder
    again = stclusters.rank([str(folder)])   # ranking.csv there is no contributions table
    assert [i["name"] for i in again.manifest["inputs"]] == ["a.csv"]
    assert again.manifest["accounting"] == first.manifest["accounting"]


def test_a_file_of_no_kind_in_a_folder_says_what_to_do(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "a.csv").write_text("doc_id,source,year,lat,lon,country\n"
                                  + _rows("a", 2, 48.85, 2.35, "FR"))
    (folder / "README.md").write_text("# notes\nThese are my tables.\n")
    result = runner.invoke(app, ["rank", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "README.md: cannot read as a supported input" in text
    assert "give the input files themselves rather than the folder, or move README.md out" in text


def test_a_snapshot_folder_is_one_input_per_part_each_with_its_hash(tmp_path):
    # Each part is an input of its own, so that a resumed ingest can skip the parts it has.
    part = tmp_path / "snap" / "updated_date=2024-01-01"
    part.mkdir(parents=True)
    with gzip.open(part / "part_000.gz", "wt") as f:
        f.write(json.dumps(_work(1)) + "\n")
    first = stclusters.rank([str(tmp_path / "snap")]).manifest["inputs"]
    assert len(first) == 1 and first[0]["sha256"] == hashlib.sha256(
        (part / "part_000.gz").read_bytes()).hexdigest()
    assert first[0]["size_bytes"] == (part / "part_000.gz").stat().st_size
    (part / "part_001.gz").write_bytes(gzip.compress(b""))
    second = stclusters.rank([str(tmp_path / "snap")]).manifest["inputs"]
    assert [Path(i["path"]).name for i in second] == ["part_000.gz", "part_001.gz"]
    assert second[0]["sha256"] == first[0]["sha256"] != second[1]["sha256"]
