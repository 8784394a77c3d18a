"""The SQL fast path of OpenAlex JSON Lines gives the Python reader's workspace rows exactly.

The Python reader (``read_openalex_works``) is the oracle: the same file read both ways must
give the same documents, raw_contributions, quarantine rows and records read.
"""

from __future__ import annotations

import gzip
import sys
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA
from stclusters import store, workspace
from stclusters.sources import read_source
from stclusters.sources import _openalex_sql
from stclusters.sources._openalex_sql import ingest_openalex_part, is_json_lines
from stclusters.sources._quarantine import Quarantine

FIXTURE = Path(__file__).parent / "fixtures" / "openalex_snapshot" / "data" / "works"
TABLES = ("documents", "raw_contributions", "quarantine")


def _python_path(p: Path):
    con, q, n = store.connect(None), Quarantine(), 0
    for b in read_source(p, kind="openalex", quarantine=q, batch_size=1000):
        store.append(con, "documents", b.documents, input_id=0)
        store.append(con, "raw_contributions",
                     store.with_doc_type(b.contributions, b.documents), input_id=0)
        n += b.documents.num_rows
    store.append(con, "quarantine", q.to_table(), input_id=0)
    return con, n + q.count


def _fast_path(p: Path):
    con, q = store.connect(None), Quarantine()
    n = ingest_openalex_part(con, p, input_id=0, quarantine=q)
    store.append(con, "quarantine", q.to_table(), input_id=0)
    return con, n


def _rows(con, table: str, *, ordered: bool = False) -> list[tuple]:
    order = "rowid" if ordered else "ALL"
    return con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def assert_same(p: Path) -> tuple[int, dict[str, int]]:
    """Both paths on ``p``: same records read, same rows in the same order; return the
    records read and the rows per table (for tests to check they are not vacuous)."""
    assert is_json_lines(p)
    (a, n_a), (b, n_b) = _python_path(p), _fast_path(p)
    assert n_a == n_b
    sizes = {}
    for table in TABLES:
        rows_a, rows_b = _rows(a, table, ordered=True), _rows(b, table, ordered=True)
        assert rows_a == rows_b, table
        sizes[table] = len(rows_a)
    return n_a, sizes


def _write_lines(path: Path, lines: list[bytes], *, gz: bool = True) -> Path:
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("part", sorted(FIXTURE.rglob("*.gz")), ids=lambda p: p.parent.name + p.name)
def test_fixture_snapshot_parts_read_alike(part):
    n, sizes = assert_same(part)
    assert n > 0 and sizes["raw_contributions"] > n


def test_the_real_sample_as_json_lines_reads_alike(tmp_path):
    sample = SHARED_DATA / "samples" / "openalex" / "openalex_works_tu9_sample_410.json.gz"
    works = json.loads(gzip.decompress(sample.read_bytes()))
    part = tmp_path / "updated_date=2022-09-01" / "part_000.gz"
    part.parent.mkdir()
    _write_lines(part, [json.dumps(w, ensure_ascii=False).encode() + b"\n" for w in works])
    n, sizes = assert_same(part)
    assert n == len(works) == sizes["documents"] == 410
    # The list itself is no JSON Lines file: the Python reader takes it.
    assert not is_json_lines(sample)


# ----------------------------------------------------------------------------- generated parts

_ids = st.one_of(st.just("https://openalex.org/I1"), st.just("https://openalex.org/I2/"),
                 st.just("I3"), st.none(), st.integers(0, 9), st.just(""), st.just("I\x00"))
_country = st.sampled_from(["US", "de", "FR", "", "XX", "usa", " us", None, 5, "GB"])
_text = st.one_of(st.text(max_size=12), st.just("Dept. X, Univ. Y, Paris"), st.just(" "),
                  st.just("a" * 1001), st.just("nul\x00"), st.none(), st.integers(0, 3))
_institution = st.one_of(
    st.fixed_dictionaries({"id": _ids, "display_name": _text, "country_code": _country}),
    st.just({}), st.just({"ror": "x"}), st.just("I1"), st.none())
_affiliation = st.one_of(
    st.fixed_dictionaries({"raw_affiliation_string": _text,
                           "institution_ids": st.lists(_ids, max_size=3)}),
    st.just({}), st.none())
_authorship = st.one_of(
    st.fixed_dictionaries({}, optional={
        "institutions": st.lists(_institution, max_size=3),
        "countries": st.lists(_country, max_size=3),
        "raw_affiliation_strings": st.lists(_text, max_size=3),
        "raw_affiliation_string": _text,  # the 2022 shape
        "affiliations": st.lists(_affiliation, max_size=3),
    }),
    st.none(), st.just("x"), st.just([]))
_score = st.one_of(st.floats(0, 1), st.sampled_from(["0.41", "0.5", "", "x", None, 1, True]))
_concept = st.fixed_dictionaries({}, optional={
    "level": st.sampled_from([0, 1, 0.0, "0", None, False]), "display_name": _text,
    "score": _score})
_topic = st.one_of(st.none(), st.just("x"), st.fixed_dictionaries({}, optional={
    "field": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"display_name": _text})),
    "domain": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "display_name": _text,
        "id": st.sampled_from(["https://openalex.org/domains/3", "https://openalex.org/domains/",
                               1, 4, 7, "2", "٣", None, True, 2.0])}))}))
_work = st.fixed_dictionaries(
    {"id": st.one_of(st.just("https://openalex.org/W7"), st.just("https://openalex.org/W8"),
                     st.just("W9/"), st.just(""), st.none(), st.integers(), st.just("W\x01"))},
    optional={
        "publication_year": st.one_of(st.integers(1400, 2200), st.just(2**40), st.just("2020"),
                                      st.just(2020.0), st.just(True), st.none()),
        "type": st.one_of(st.sampled_from(["article", "journal-article", "x" * 1001]),
                          st.none(), st.integers()),
        "updated_date": st.sampled_from(["2024-01-02", "2024-01-02T03:04:05.123456", "yesterday",
                                         "２０２４-01-01", None, 5]),
        "primary_topic": _topic,
        "concepts": st.one_of(st.lists(_concept, max_size=3), st.just("abc"), st.none()),
        "authorships": st.one_of(st.lists(_authorship, max_size=4), st.just({}),
                                 st.just("ab"), st.just(0)),
    })
_hostile = st.sampled_from([
    b"{not json}\n", b"[1, 2]\n", b'"x"\n', b"\n", b"   \n", b"\xff\xfe{}\n",
    b'{"id": "W1", "x": "\\ud800"}\n', b'{"id": "W1",}\n', b'{"id": "W1", "a": nan}\n',
    b'{"id": "W1", "a": NaN}\n', b'{"id": "W2", "id": "W3"}\n',
    b'{"id": "W4", "publication_year": 1999, "publication_year": 2001}\n',
    b'{"id": "W5", "authorships": [{"countries": "US"}]}\n',
    b'{"id": "W6", "authorships": [{"institutions": 5}]}\n',
    b'{"id": "W7", "n": ' + b"1" * 5000 + b"}\n",
    b'{"id": "W8", "d": ' + b"[" * 1200 + b"]" * 1200 + b"}\n",
    b'{"id": "W\\u0000"}\n', b'{"\\u0069d": "W10"}\n', b"\xef\xbb\xbf{}\n",
])
_line = st.one_of(_work.map(lambda w: json.dumps(w).encode() + b"\n"),
                  _work.map(lambda w: json.dumps(w, ensure_ascii=False).encode("utf-8", "surrogatepass")
                            + b"\r\n"),
                  _hostile)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, min_size=1, max_size=25), gz=st.booleans())
def test_generated_parts_read_alike(tmp_path, lines, gz):
    part = tmp_path / "updated_date=2024-05-01" / f"part_000{'.gz' if gz else ''}"
    part.parent.mkdir(exist_ok=True)
    _write_lines(part, [b'{"id": "W0"}\n', *lines], gz=gz)  # starts with '{': JSON Lines
    assert_same(part)


def test_small_chunks_keep_line_numbers_and_order(tmp_path, monkeypatch):
    """Chunk borders change nothing (each chunk is one query)."""
    works = [{"id": f"W{i}", "publication_year": 2020,
              "authorships": [{"institutions": [{"id": "I1", "country_code": "FR"}]}]}
             for i in range(50)]
    lines = [json.dumps(w).encode() + b"\n" for w in works]
    lines[17] = b"{broken\n"
    part = _write_lines(tmp_path / "works.jsonl.gz", lines)
    monkeypatch.setattr(_openalex_sql, "CHUNK_BYTES", 300)
    n, sizes = assert_same(part)
    progress = []
    con = store.connect(None)
    ingest_openalex_part(con, part, input_id=0, quarantine=Quarantine(),
                         on_batch=lambda f, k: progress.append(k))
    assert len(progress) > 5 and sum(progress) == 49  # works per chunk, not a running total
    assert (n, sizes) == (50, {"documents": 49, "raw_contributions": 49, "quarantine": 1})
    con, _ = _fast_path(part)
    assert con.execute("SELECT position FROM quarantine").fetchall() == [("line 18",)]


def test_a_truncated_gzip_part_reads_as_the_python_reader_does(tmp_path):
    """Records before the break are kept; one quarantine entry says where it broke."""
    works = [json.dumps({"id": f"W{i}", "publication_year": 2021, "authorships": [
        {"raw_affiliation_string": f"Lab {i}, Lyon, France"}]}).encode() + b"\n"
        for i in range(3000)]
    whole = gzip.compress(b"".join(works))
    part = tmp_path / "part_000.gz"
    part.write_bytes(whole[: len(whole) * 2 // 3])
    n, sizes = assert_same(part)
    assert 0 < sizes["documents"] < 3000 and sizes["quarantine"] == 1
    con, _ = _fast_path(part)
    assert con.execute("SELECT reason, field FROM quarantine").fetchall() == [
        ("corrupt or truncated gzip stream", "gzip")]


def test_ingest_takes_the_fast_path_for_json_lines_only(tmp_path, monkeypatch):
    """workspace.ingest: JSON Lines parts go through the SQL path in the main process, a
    JSON list through the Python reader in a decode worker; both give their rows."""
    monkeypatch.setenv("STCLUSTERS_WORKERS", "2")
    pooled = []
    real_pool = workspace.DecodePool
    monkeypatch.setattr(workspace, "DecodePool",
                        lambda jobs, **kw: pooled.extend(Path(j[0]).name for j in jobs)
                        or real_pool(jobs, **kw))
    calls = []
    real = workspace.ingest_openalex_part
    monkeypatch.setattr(workspace, "ingest_openalex_part",
                        lambda con, p, **kw: calls.append(p.name) or real(con, p, **kw))
    part = sorted(FIXTURE.rglob("*.gz"))[0]
    sample = SHARED_DATA / "samples" / "openalex" / "openalex_works_tu9_sample_410.json.gz"
    small = tmp_path / "small.json"
    small.write_text(json.dumps([{"id": "W1", "authorships": [{}]}, {"id": "W2"}]))
    report = workspace.ingest([part, sample, small], workspace=tmp_path / "ws.duckdb")
    assert calls == [part.name]
    assert sorted(pooled) == sorted([sample.name, small.name])
    files = sorted([part, sample, small], key=lambda p: str(p.resolve()))
    assert [f.records_read for f in report.files] == [_python_path(p)[1] for p in files]


# Well-formed works of both shapes: every one of them must be mapped in SQL, not handed on.
_name = st.text(st.sampled_from("abcXYZ éü,.-/ 1"), max_size=15)
_good_institution = st.fixed_dictionaries(
    {"id": st.sampled_from(["https://openalex.org/I1", "https://openalex.org/I2", "I3"])},
    optional={"display_name": st.one_of(_name, st.none()),
              "country_code": st.sampled_from(["US", "de", "FR", "", None])})
_good_authorship = st.one_of(
    st.fixed_dictionaries({  # 2024+
        "institutions": st.lists(_good_institution, max_size=3),
        "countries": st.lists(st.sampled_from(["US", "de", "FR", ""]), max_size=2),
        "raw_affiliation_strings": st.lists(_name, max_size=2),
        "affiliations": st.lists(st.fixed_dictionaries({
            "raw_affiliation_string": _name,
            "institution_ids": st.lists(st.sampled_from(
                ["https://openalex.org/I1", "https://openalex.org/I2", "I3", None]), max_size=2)}),
            max_size=2)}),
    st.fixed_dictionaries({  # 2022
        "institutions": st.lists(_good_institution, max_size=2),
        "raw_affiliation_string": st.one_of(_name, st.none())}))
_good_work = st.fixed_dictionaries({
    "id": st.sampled_from(["https://openalex.org/W1", "https://openalex.org/W2", "W3"]),
    "publication_year": st.one_of(st.integers(1500, 2100), st.none()),
    "type": st.sampled_from(["article", "review", None]),
    "authorships": st.lists(_good_authorship, max_size=4),
}, optional={
    "updated_date": st.sampled_from(["2024-01-02", "2022-08-17T11:53:22.002867"]),
    "primary_topic": st.fixed_dictionaries({
        "field": st.fixed_dictionaries({"display_name": st.one_of(_name, st.none())}),
        "domain": st.one_of(st.fixed_dictionaries({"display_name": _name}),
                            st.fixed_dictionaries({"id": st.sampled_from(
                                ["https://openalex.org/domains/2", 3, "4", 9])}))}),
    "concepts": st.lists(st.fixed_dictionaries({
        "level": st.integers(0, 2), "display_name": _name,
        "score": st.one_of(st.floats(0, 1), st.sampled_from(["0.47713992", "0.5", 1, 0]))}),
        max_size=4),
})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(works=st.lists(_good_work, min_size=1, max_size=20))
def test_well_formed_works_are_mapped_in_sql(tmp_path, monkeypatch, works):
    handed_on = []
    monkeypatch.setattr(_openalex_sql, "map_work",
                        lambda work, *a, **kw: handed_on.append(work))
    part = _write_lines(tmp_path / "works.jsonl",
                        [json.dumps(w, ensure_ascii=False).encode() + b"\n" for w in works],
                        gz=False)
    con, n = _fast_path(part)
    assert handed_on == [] and n == len(works)
    monkeypatch.undo()
    assert_same(part)


def test_the_blank_test_knows_every_python_space():
    """``line.strip()`` is the Python reader's blank test: the SQL's class has its spaces."""
    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert spaces and max(spaces) < _openalex_sql._SPACE_BELOW


def test_a_file_name_with_quotes_is_data_not_sql(tmp_path):
    part = _write_lines(tmp_path / "it's \"works\" $name.jsonl",
                        [b'{"id": "W1", "authorships": [{"raw_affiliation_string": "Paris"}]}\n'],
                        gz=False)
    n, sizes = assert_same(part)
    con, _ = _fast_path(part)
    assert con.execute("SELECT record_ref FROM documents").fetchall() == [
        (f"{part.name}:line 1",)]
