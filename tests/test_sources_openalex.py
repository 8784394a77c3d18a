"""OpenAlex works reader: 2022 sample, today's shape, list/JSONL/gzip/folder, malformed input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from stclusters.errors import InputFormatError
from stclusters.sources import Quarantine, detect_kind, read_source
from stclusters.sources.openalex import read_openalex_institutions, read_openalex_works

from conftest import SHARED_DATA

SAMPLE = SHARED_DATA / "samples" / "openalex" / "openalex_works_tu9_sample_410.json.gz"
FIXTURE = Path(__file__).parent / "fixtures" / "openalex_works_2024_synthetic.jsonl"


def _read(path, **kw):
    q = kw.pop("quarantine", None) or Quarantine()
    batches = list(read_openalex_works(path, quarantine=q, **kw))
    docs = pa.concat_tables([b.documents for b in batches])
    cons = pa.concat_tables([b.contributions for b in batches])
    return batches, docs, cons, q


def _where(q):
    """(position, reason) of each quarantined record, in order."""
    return [(r["position"], r["reason"]) for r in q.to_table().to_pylist()]


def test_sample_2022_shape_counts_match_json_load():
    works = json.load(gzip.open(SAMPLE))
    batches, docs, cons, q = _read(SAMPLE, batch_size=100)
    assert q.count == 0
    assert len(batches) == 5  # 410 works in batches of 100
    assert docs["doc_id"].to_pylist() == [w["id"].rsplit("/", 1)[1] for w in works]
    assert docs["n_contributors"].to_pylist() == [len(w["authorships"]) for w in works]
    assert docs["year"].to_pylist() == [w["publication_year"] for w in works]
    # one row per real institution, or one row for an authorship without any
    expected_rows = sum(max(1, sum(1 for i in a["institutions"] if i))
                        for w in works for a in w["authorships"])
    assert cons.num_rows == expected_rows
    # every authorship is present: unlocated ones too (they count for n_all)
    pairs = set(zip(cons["doc_id"].to_pylist(), cons["contributor_seq"].to_pylist()))
    assert len(pairs) == sum(len(w["authorships"]) for w in works)
    first = cons.slice(0, 1).to_pylist()[0]
    a0 = works[0]["authorships"][0]
    assert first["institution_id"] == a0["institutions"][0]["id"].rsplit("/", 1)[1]
    assert first["org"] == a0["institutions"][0]["display_name"]
    assert first["country"] == a0["institutions"][0]["country_code"]
    assert first["address_raw"] == a0["raw_affiliation_string"]
    assert first["record_ref"] == f"{SAMPLE.name}:element 1"


def test_today_shape_fixture():
    _, docs, cons, q = _read(FIXTURE)
    assert docs["doc_id"].to_pylist() == ["W9000000001", "W9000000002", "W9000000004"]
    assert docs["doc_type"].to_pylist() == ["article", "preprint", "review"]
    assert docs["n_contributors"].to_pylist() == [3, 1, 0]
    rows = {(r["doc_id"], r["contributor_seq"], r["address_seq"]): r for r in cons.to_pylist()}
    assert len(rows) == cons.num_rows == 5
    a = rows[("W9000000001", 0, 0)]
    b = rows[("W9000000001", 0, 1)]
    assert (a["institution_id"], a["country"], a["address_raw"]) == (
        "I9000000001", "DE", "Example University, Berlin, Germany")
    assert (b["institution_id"], b["country"], b["address_raw"]) == (
        "I9000000002", "CH", "Example Institute, Zurich, Switzerland")
    c = rows[("W9000000001", 1, 0)]  # no institution: raw string + its single country
    assert (c["org"], c["country"], c["address_raw"]) == (None, "JP", "Sample Lab, Kyoto, Japan")
    d = rows[("W9000000001", 2, 0)]  # nothing at all: still one row
    assert all(d[k] is None for k in ("org", "institution_id", "country", "address_raw", "city"))
    e = rows[("W9000000002", 0, 0)]  # two countries: not unique, so unknown
    assert e["country"] is None and "Somewhere, USA" in e["address_raw"]
    # topic field with string ids, integer ids, and the level-0 concept fallback
    fields = dict(zip(cons["doc_id"].to_pylist(), cons["tech_field"].to_pylist()))
    assert fields["W9000000001"] == "Engineering"
    assert fields["W9000000002"] == "Biochemistry, Genetics and Molecular Biology"
    # the malformed line 3 is quarantined with its line number
    assert _where(q) == [
        ("line 3", "malformed JSON")]


def test_list_jsonl_gzip_plain_give_the_same_rows(tmp_path):
    good = [json.loads(line) for line in FIXTURE.read_text().splitlines()
            if line.strip() and "BROKEN" not in line]
    variants = {
        "w.json": json.dumps(good, indent=2).encode(),
        "w.jsonl": "\n".join(json.dumps(w) for w in good).encode(),
    }
    results = []
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        (tmp_path / (name + ".gz")).write_bytes(gzip.compress(data))
        for n in (name, name + ".gz"):
            _, docs, cons, q = _read(tmp_path / n, batch_size=2)
            assert q.count == 0, n
            results.append((docs.drop(["record_ref"]), cons.drop(["record_ref"])))
    for docs, cons in results[1:]:
        assert docs.equals(results[0][0]) and cons.equals(results[0][1])
    assert results[0][0].num_rows == 3


def test_malformed_list_element_is_quarantined_and_reading_goes_on(tmp_path):
    text = ('[{"id": "W1", "authorships": []},\n {"id": "W2", "authorships": [}, '
            '{"id": "W3", "authorships": []}, 42, {"authorships": []}, {"id": "W6"}]')
    path = tmp_path / "bad.json"
    path.write_text(text)
    _, docs, _, q = _read(path)
    assert docs["doc_id"].to_pylist() == ["W1", "W3", "W6"]
    assert _where(q) == [
        ("element 2", "malformed JSON"), ("element 4", "not a JSON object"),
        ("element 5", "work without id")]


def test_truncated_list_quarantines_the_tail_and_stops(tmp_path):
    works = [{"id": f"W{i}", "authorships": [{"institutions": []}]} for i in range(1, 6)]
    text = json.dumps(works)
    cut = text[: text.index('{"id": "W4"') + 20]
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(cut.encode()))
    _, docs, _, q = _read(path)
    assert docs["doc_id"].to_pylist() == ["W1", "W2", "W3"]
    assert _where(q) == [
        ("element 4 to end of file", "truncated JSON list")]


def test_snapshot_folder_with_manifest(tmp_path):
    root = tmp_path / "openalex-snapshot"
    lines = FIXTURE.read_text().splitlines()
    for date, part in (("2024-01-01", lines[:2]), ("2024-02-01", lines[2:])):
        d = root / "data" / "works" / f"updated_date={date}"
        d.mkdir(parents=True)
        (d / "part_000.gz").write_bytes(gzip.compress("\n".join(part).encode()))
    (root / "data" / "works" / "manifest").write_text('{"entries": []}')
    assert detect_kind(root) == "openalex"
    q = Quarantine()
    batches = list(read_source(root, quarantine=q))
    ids = [i for b in batches for i in b.documents["doc_id"].to_pylist()]
    assert ids == ["W9000000001", "W9000000002", "W9000000004"]
    # Both parts are called part_000.gz: files are named by their path below the input.
    refs = [r for b in batches for r in b.documents["record_ref"].to_pylist()]
    assert refs == ["data/works/updated_date=2024-01-01/part_000.gz:line 1",
                    "data/works/updated_date=2024-01-01/part_000.gz:line 2",
                    "data/works/updated_date=2024-02-01/part_000.gz:line 2"]
    assert [(r["file"], r["position"]) for r in q.to_table().to_pylist()] == [
        ("data/works/updated_date=2024-02-01/part_000.gz", "line 1")]
    # Given the works folder itself, the names start below it.
    q = Quarantine()
    batches = list(read_source(root / "data" / "works", quarantine=q))
    assert batches[0].contributions["record_ref"][0].as_py() == (
        "updated_date=2024-01-01/part_000.gz:line 1")
    assert q.to_table()["file"].to_pylist() == ["updated_date=2024-02-01/part_000.gz"]


def test_streaming_many_works(tmp_path):
    path = tmp_path / "many.jsonl.gz"
    n = 20_000
    with gzip.open(path, "wt", compresslevel=1) as f:
        for i in range(n):
            f.write(json.dumps({"id": f"https://openalex.org/W{i}", "publication_year": 2020,
                                "authorships": [{"institutions": [], "countries": ["FR"]}]}))
            f.write("\n")
    batches, docs, cons, q = _read(path, batch_size=6000)
    assert [b.documents.num_rows for b in batches] == [6000, 6000, 6000, 2000]
    assert docs.num_rows == cons.num_rows == n and q.count == 0


def test_unreadable_inputs_raise(tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        list(read_openalex_works(tmp_path / "nope.json", quarantine=Quarantine()))
    (tmp_path / "x.json.gz").write_bytes(b"[]")
    with pytest.raises(InputFormatError, match="not gzip"):
        list(read_openalex_works(tmp_path / "x.json.gz", quarantine=Quarantine()))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputFormatError, match="neither"):
        list(read_openalex_works(tmp_path / "x.txt", quarantine=Quarantine()))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputFormatError, match="no \\*.gz"):
        list(read_openalex_works(tmp_path / "empty_dir", quarantine=Quarantine()))


def test_institutions_with_geo(tmp_path):
    recs = [
        {"id": "https://openalex.org/I1", "display_name": "A", "country_code": "DE",
         "geo": {"city": "Berlin", "geonames_city_id": "2950159", "region": None,
                 "country_code": "DE", "country": "Germany", "latitude": 52.52,
                 "longitude": 13.40}},
        {"id": "https://openalex.org/I2", "display_name": "B", "country_code": "US",
         "geo": {"city": "Boston", "geonames_city_id": 4930956, "region": "Massachusetts",
                 "country_code": "US", "latitude": 42.36, "longitude": -71.06}},
        {"id": "https://openalex.org/I3", "display_name": "no geo"},
    ]
    path = tmp_path / "inst.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs))
    t = read_openalex_institutions(path).to_pylist()
    assert [r["id"] for r in t] == ["I1", "I2", "I3"]
    assert (t[0]["lat"], t[0]["lon"], t[0]["geonames_city_id"]) == (52.52, 13.40, "2950159")
    assert t[1]["geonames_city_id"] == "4930956" and t[1]["region"] == "Massachusetts"
    assert t[2]["lat"] is None and t[2]["country_code"] is None


def test_invalid_utf8_is_quarantined_not_replaced(tmp_path):
    works = [{"id": f"https://openalex.org/W{i}", "publication_year": 2020,
              "authorships": [{"raw_affiliation_string": f"Lab {i}, Paris, France"}]}
             for i in range(1, 5)]
    bad = 2  # 1-based: the second work has a byte that is no UTF-8 (Latin-1 é)
    as_lines = [json.dumps(w, ensure_ascii=False).encode() for w in works]
    as_lines[bad - 1] = as_lines[bad - 1].replace(b"Lab", b"Laborat\xe9", 1)
    variants = {
        "w.jsonl": b"\n".join(as_lines),
        "w.jsonl.gz": gzip.compress(b"\n".join(as_lines)),
        "w.json": b"[" + b",\n".join(as_lines) + b"]",
        "w.json.gz": gzip.compress(b"[" + b",\n".join(as_lines) + b"]"),
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        _, docs, cons, q = _read(tmp_path / name)
        assert docs["doc_id"].to_pylist() == ["W1", "W3", "W4"], name
        assert "\ufffd" not in "".join(cons["address_raw"].to_pylist()), name
        unit = "line" if ".jsonl" in name else "element"
        rows = q.to_table().to_pylist()
        assert [(r["file"], r["position"], r["reason"], r["source"]) for r in rows] == [
            (name, f"{unit} {bad}", "invalid UTF-8", "publication")], name
        assert "Laborat" in rows[0]["excerpt"]


def test_unpaired_surrogate_escape_is_quarantined(tmp_path):
    # Valid JSON, but "\ud800" alone is no character: no UTF-8 output could hold it.
    text = ('[{"id": "W1", "authorships": [{"raw_affiliation_string": "Caf\\ud800"}]},\n'
            ' {"id": "W2", "authorships": [{"raw_affiliation_string": "Smile \\ud83d\\ude00"}]}]')
    path = tmp_path / "s.json"
    path.write_text(text)
    _, docs, cons, q = _read(path)
    assert docs["doc_id"].to_pylist() == ["W2"]
    assert cons["address_raw"].to_pylist() == ["Smile \U0001F600"]  # a proper pair is fine
    assert _where(q) == [
        ("element 1", "invalid Unicode escape")]
    q.to_table()  # the excerpt itself is writable
    lines = tmp_path / "s.jsonl"
    lines.write_text("\n".join(json.dumps(w) for w in json.loads(text)))
    _, docs, _, q = _read(lines)
    assert docs["doc_id"].to_pylist() == ["W2"]
    assert _where(q) == [
        ("line 1", "invalid Unicode escape")]


def _institution(i, **geo):
    return {"id": f"https://openalex.org/I{i}", "display_name": f"Inst {i}", "country_code": "FR",
            "geo": {"city": "Paris", "country_code": "FR", **geo}}


@pytest.mark.parametrize("geo,field,reason", [
    ({"latitude": 95.0, "longitude": 2.35}, "geo.latitude", "latitude outside [-90, 90]"),
    ({"latitude": -90.5, "longitude": 2.35}, "geo.latitude", "latitude outside [-90, 90]"),
    ({"latitude": 48.85, "longitude": 180.5}, "geo.longitude", "longitude outside [-180, 180]"),
    ({"latitude": 48.85, "longitude": float("-inf")}, "geo.longitude",
     "longitude outside [-180, 180]"),
    ({"latitude": float("nan"), "longitude": 2.35}, "geo.latitude", "latitude not a number"),
    ({"latitude": "48.85", "longitude": 2.35}, "geo.latitude", "latitude not a number"),
    ({"latitude": 48.85, "longitude": True}, "geo.longitude", "longitude not a number"),
    ({"latitude": 48.85, "longitude": {"deg": 2}}, "geo.longitude", "longitude not a number"),
    ({"latitude": 48.85}, "geo.latitude/geo.longitude", "only one of latitude/longitude given"),
    ({"latitude": None, "longitude": 2.35}, "geo.latitude/geo.longitude",
     "only one of latitude/longitude given"),
])
def test_institution_with_unusable_coordinates_is_quarantined(tmp_path, geo, field, reason):
    recs = [_institution(1, latitude=48.85, longitude=2.35), _institution(2, **geo),
            _institution(3, latitude=-33.87, longitude=151.21)]
    for name, data in (("inst.jsonl", "\n".join(json.dumps(r) for r in recs)),
                       ("inst.json", json.dumps(recs, indent=1))):
        path = tmp_path / name
        path.write_text(data)  # json.dumps writes NaN / -Infinity, as Python's json reads them
        q = Quarantine()
        t = read_openalex_institutions(path, quarantine=q)
        assert t["id"].to_pylist() == ["I1", "I3"], name  # kept out of the lookup
        assert t["lat"].to_pylist() == [48.85, -33.87]
        unit = "line" if name.endswith("jsonl") else "element"
        rows = q.to_table().to_pylist()
        assert [(r["file"], r["position"], r["field"], r["reason"], r["source"]) for r in rows] == [
            (name, f"{unit} 2", field, reason, "institution")], name
        assert rows[0]["excerpt"].startswith("I2: latitude=")


def test_institution_quarantine_rows_name_their_source_and_path(tmp_path):
    folder = tmp_path / "snap" / "data" / "institutions"
    for date in ("2024-01-01", "2024-02-01"):
        d = folder / f"updated_date={date}"
        d.mkdir(parents=True)
        (d / "part_000.gz").write_bytes(gzip.compress(
            (json.dumps(_institution(1, latitude=1.0, longitude=2.0)) + "\n{broken\n"
             + json.dumps({"display_name": "no id"})).encode()))
    q = Quarantine()
    t = read_openalex_institutions(tmp_path / "snap", quarantine=q)
    assert t.num_rows == 1
    rows = q.to_table().to_pylist()
    assert {r["source"] for r in rows} == {"institution"}
    first, second = (f"data/institutions/updated_date={d}/part_000.gz"
                     for d in ("2024-01-01", "2024-02-01"))
    assert [(r["file"], r["position"], r["reason"]) for r in rows] == [
        (first, "line 2", "malformed JSON"), (first, "line 3", "institution without id"),
        (first, "line 1", "superseded by a newer version"),  # I1 again in the newer part
        (second, "line 2", "malformed JSON"), (second, "line 3", "institution without id")]


def test_institution_read_twice_without_dates_first_record_wins_later_is_accounted(tmp_path):
    recs = [_institution(1, latitude=1.0, longitude=2.0),
            _institution(2, latitude=3.0, longitude=4.0),
            _institution(1, latitude=5.0, longitude=6.0),
            _institution(2, latitude=99.0, longitude=0.0)]
    path = tmp_path / "inst.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs))
    q = Quarantine()
    t = read_openalex_institutions(path, quarantine=q)
    # Without updated_date the first record read stays (the rule of works, docs/inputs.md).
    assert t.select(["id", "lat", "lon"]).to_pylist() == [
        {"id": "I1", "lat": 1.0, "lon": 2.0},
        {"id": "I2", "lat": 3.0, "lon": 4.0}]  # a rejected later record replaces nothing
    assert [(r["file"], r["position"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("inst.jsonl", "line 3", "duplicate record"),
        ("inst.jsonl", "line 4", "latitude outside [-90, 90]")]
    assert t.num_rows + q.count == len(recs)  # every record read is somewhere


def test_domain_of_the_primary_topic(tmp_path):
    _, docs, _, _ = _read(FIXTURE)
    assert docs["domain"].to_pylist() == ["Physical Sciences", "Life Sciences", None]
    _, sample, _, _ = _read(SAMPLE)  # the 2022 shape has no primary_topic
    assert set(sample["domain"].to_pylist()) == {None}
    topic = {"field": {"id": 22, "display_name": "Engineering"}}
    works = [
        {"id": "W1", "primary_topic": {**topic, "domain": {"id": 3}}},  # id only: its name
        {"id": "W2", "primary_topic": {**topic, "domain": {"id": "https://openalex.org/domains/2"}}},
        {"id": "W3", "primary_topic": {**topic, "domain": {"id": 9}}},  # no such domain
        {"id": "W4", "primary_topic": {**topic, "domain": {"display_name": 7}}},
        {"id": "W5", "primary_topic": {**topic, "domain": "Physical Sciences"}},
        {"id": "W6", "primary_topic": None},
    ]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(w) for w in works))
    _, docs, _, q = _read(path)
    assert dict(zip(docs["doc_id"].to_pylist(), docs["domain"].to_pylist())) == {
        "W1": "Physical Sciences", "W2": "Social Sciences", "W3": None, "W5": None, "W6": None}
    assert [(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()] == [
        ("line 4", "primary_topic.domain.display_name",
         "primary_topic.domain.display_name: not a string (number)")]
