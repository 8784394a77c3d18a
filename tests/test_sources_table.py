"""Generic contributions table (CSV/Parquet): validation, quarantine positions, batching."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from stclusters.errors import InputFormatError, ParameterError
from stclusters.schema import DOCUMENT, RAW_CONTRIBUTION
from stclusters.sources import Quarantine, detect_kind, read_source
from stclusters.sources.table import ingest_table, iso_country_codes, read_table

HEADER = ["doc_id", "source", "year", "lat", "lon", "country", "city", "extra"]
GOOD = [
    ["P1", "patent", "2020", "37.33", "-121.89", "us", "San Jose", "x"],
    ["P1", "patent", "2020", "", "", "DE", "Berlin", "x"],
    ["W1", "publication", "2019", "22.54", "114.06", "CN", "Shenzhen", ""],
]
BAD = [  # (row, field, reason)
    (["", "patent", "2020", "", "", "", "", ""], "doc_id", "missing doc_id"),
    (["P2", "patent", "twenty", "", "", "", "", ""], "year", "year not an integer"),
    (["P3", "patent", "2020.5", "", "", "", "", ""], "year", "year not an integer"),
    (["P4", "patent", "2020", "91", "0", "", "", ""], "lat", "lat outside [-90, 90]"),
    (["P5", "patent", "2020", "0", "-181", "", "", ""], "lon", "lon outside [-180, 180]"),
    (["P6", "patent", "2020", "10", "", "", "", ""], "lat/lon", "only one of lat/lon given"),
    (["P7", "patent", "2020", "", "", "XX", "", ""], "country",
     "country not recognised (ISO 3166-1 code or English name)"),
    (["P8", "vc deal", "2020", "", "", "", "", ""], "source", "source not a metric name"),
]


def _read(path, **kw):
    q = kw.pop("quarantine", None) or Quarantine()
    batches = list(read_table(path, quarantine=q, **kw))
    docs = pa.concat_tables([b.documents for b in batches]) if batches else DOCUMENT.empty_table()
    cons = (pa.concat_tables([b.contributions for b in batches]) if batches
            else RAW_CONTRIBUTION.empty_table())
    return batches, docs, cons, q


def _write_csv(path, rows, *, delim=",", eol="\n", header=HEADER):
    text = eol.join(delim.join(r) for r in [header, *rows]) + eol
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


@pytest.mark.parametrize("delim,eol,name", [(",", "\n", "t.csv"), ("\t", "\r\n", "t.tsv"),
                                            (";", "\r\n", "t.csv.gz")])
def test_csv_good_and_bad_rows(tmp_path, delim, eol, name):
    rows = GOOD + [r for r, _, _ in BAD]
    path = tmp_path / name
    _write_csv(path, rows, delim=delim, eol=eol)
    _, docs, cons, q = _read(path)
    assert docs.schema == DOCUMENT and cons.schema == RAW_CONTRIBUTION
    assert docs.to_pydict()["doc_id"] == ["P1", "W1"]
    assert docs["n_contributors"].to_pylist() == [2, 1]
    assert cons["country"].to_pylist() == ["US", "DE", "CN"]  # upper-cased, checked
    assert cons["precision"].to_pylist() == ["point", None, "point"]
    assert cons["contributor_seq"].to_pylist() == [0, 1, 0]  # order within the document
    assert cons["address_seq"].to_pylist() == [0, 0, 0]
    assert cons["record_ref"].to_pylist() == [f"{name}:row 1", f"{name}:row 2", f"{name}:row 3"]
    got = [(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()]
    assert got == [(f"row {len(GOOD) + i + 1}", f, r) for i, (_, f, r) in enumerate(BAD)]


def test_iso_codes_come_from_geonames():
    codes = iso_country_codes()
    assert {"US", "CN", "DE", "HK"} <= codes and "XX" not in codes and len(codes) > 240


def test_malformed_csv_rows_are_quarantined_by_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("doc_id,source,year,city\n"
                    "A,patent,2020,Paris\n"
                    "B,patent,2020\n"  # too few fields: line 3
                    "C,patent,2020,Lyon,extra\n"  # too many: line 4
                    "D,patent,1999x,Nice\n"  # well-formed, bad year: data row 4
                    "E,patent,2021,Metz\n")
    _, docs, cons, q = _read(path)
    assert docs["doc_id"].to_pylist() == ["A", "E"]
    assert cons["record_ref"].to_pylist() == ["m.csv:row 1", "m.csv:row 5"]
    got = [(r["position"], r["field"], r["reason"][:17]) for r in q.to_table().to_pylist()]
    assert got == [("line 3", None, "malformed CSV row"), ("line 4", None, "malformed CSV row"),
                   ("row 4", "year", "year not an integ")]


def test_parquet_typed_columns_and_explicit_sequences(tmp_path):
    t = pa.table({
        "doc_id": ["D1", "D1", "D1", "D2"],
        "source": ["publication"] * 4,
        "year": pa.array([2021, 2021, 2021, 2022], pa.int64()),
        "contributor_seq": [0, 0, 1, 0],
        "address_seq": [0, 1, 0, 0],
        "lat": [48.85, 45.76, None, 1.0],
        "lon": [2.35, 4.83, None, 200.0],
        "precision": ["city", None, None, None],
        "institution_id": ["I1", "I2", None, None],
        "unused": [1, 2, 3, 4],
    })
    path = tmp_path / "c.parquet"
    pq.write_table(t, path)
    assert detect_kind(path) == "table"
    _, docs, cons, q = _read(path)
    assert docs.to_pylist()[0] | {} == {"doc_id": "D1", "source": "publication", "year": 2021,
                                        "doc_type": None, "n_contributors": 2,
                                        "record_ref": "c.parquet:row 1", "updated_date": None,
                                        "domain": None}
    assert docs.num_rows == 1  # D2 rejected: its only row has lon 200
    assert cons["precision"].to_pylist() == ["city", "point", None]
    assert cons["address_seq"].to_pylist() == [0, 1, 0]
    assert [(r["position"], r["field"]) for r in q.to_table().to_pylist()] == [("row 4", "lon")]


def test_scattered_documents_are_grouped_and_never_split(tmp_path):
    rng = np.random.default_rng(7)
    n_docs, n_rows = 500, 3000
    doc_of_row = rng.integers(0, n_docs, n_rows)
    t = pa.table({"doc_id": [f"d{i}" for i in doc_of_row], "year": [2020] * n_rows})
    path = tmp_path / "s.parquet"
    pq.write_table(t, path, row_group_size=700)
    batches, docs, cons, q = _read(path, source="patent", batch_size=256)
    assert len(batches) > 5 and q.count == 0
    counts = np.bincount(doc_of_row, minlength=n_docs)
    expect = {f"d{i}": int(c) for i, c in enumerate(counts) if c}
    assert dict(zip(docs["doc_id"].to_pylist(), docs["n_contributors"].to_pylist())) == expect
    assert docs.num_rows == len(expect)  # each document once
    seen = set()
    for b in batches:
        ids = set(b.contributions["doc_id"].to_pylist())
        assert ids == set(b.documents["doc_id"].to_pylist())
        assert not ids & seen
        seen |= ids
    assert set(cons["source"].to_pylist()) == {"patent"}


def test_required_columns_and_source_argument(tmp_path):
    path = tmp_path / "nosrc.csv"
    path.write_text("doc_id,year\nA,2020\n")
    with pytest.raises(InputFormatError, match="source"):
        _read(path)
    _, docs, _, _ = _read(path, source="publication")
    assert docs["source"].to_pylist() == ["publication"]
    with pytest.raises(ParameterError):  # any metric name, but a name (docs/metrics.md)
        _read(path, source="venture deals")
    noyear = tmp_path / "noyear.csv"
    noyear.write_text("doc_id,source\nA,patent\n")
    with pytest.raises(InputFormatError, match="year"):
        _read(noyear)


def test_unreadable_tables_raise(tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        _read(tmp_path / "none.csv")
    fake = tmp_path / "f.csv.gz"
    fake.write_text("doc_id,source,year\n")
    with pytest.raises(InputFormatError, match="not gzip"):
        _read(fake)
    with pytest.raises(InputFormatError, match="not found"):
        read_source(tmp_path / "none.parquet", quarantine=Quarantine())
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02\x03" * 10)
    with pytest.raises(InputFormatError):
        read_source(binary, quarantine=Quarantine())


def test_header_only_file_gives_no_batches(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("doc_id,source,year\n")
    batches, docs, _, q = _read(path)
    assert batches == [] and q.count == 0


def test_read_source_csv_and_speed_of_the_vectorised_path(tmp_path):
    n = 300_000
    rng = np.random.default_rng(1)
    t = pa.table({
        "doc_id": pa.array((np.arange(n) // 3).astype(str)),
        "source": pa.array(["patent"] * n),
        "year": pa.array(np.full(n, 2021)),
        "lat": pa.array(rng.uniform(-60, 60, n)),
        "lon": pa.array(rng.uniform(-170, 170, n)),
        "country": pa.array(["JP"] * n),
    })
    pq.write_table(t, tmp_path / "big.parquet")
    pacsv.write_csv(t, tmp_path / "big.csv")
    for name in ("big.parquet", "big.csv"):
        start = time.perf_counter()
        batches = list(read_source(tmp_path / name, quarantine=Quarantine(), batch_size=100_000))
        elapsed = time.perf_counter() - start
        assert sum(b.contributions.num_rows for b in batches) == n
        assert sum(b.documents.num_rows for b in batches) == n // 3
        assert elapsed < 30, (name, elapsed)  # generous: shared 2-core machine


def _ingested(path, **kw):
    """Documents and contributions as ``ingest_table`` writes them into a workspace."""
    from stclusters import store  # noqa: PLC0415

    con = store.connect()
    q = Quarantine()
    n = ingest_table(con, path, input_id=0, quarantine=q, **kw)
    docs = store.fetch_arrow(con, "SELECT * EXCLUDE (input_id) FROM documents").cast(DOCUMENT)
    cons = store.fetch_arrow(con, "SELECT * EXCLUDE (input_id, doc_type, _row, domain) FROM raw_contributions"
                             ).cast(RAW_CONTRIBUTION)
    assert n == cons.num_rows
    return docs, cons, q


def _sorted_rows(tbl, keys):
    return sorted(tbl.to_pylist(), key=lambda r: tuple(str(r[k]) for k in keys))


@pytest.mark.parametrize("seq_column", ["none", "full", "partly empty"])
def test_ingest_and_read_give_the_same_rows(tmp_path, seq_column):
    # Scattered documents, rejected rows in between, and contributor_seq absent, complete,
    # or given for some rows only (the others take their order among the document's rows).
    header = ["doc_id", "source", "year", "contributor_seq", "doc_type", "lat", "lon"]
    rows = [
        ["A", "patent", "2020", "0", "utility", "10", "20"],
        ["B", "patent", "2021", "0", "design", "", ""],
        ["A", "patent", "2022", "3", "reissue", "", ""],
        ["C", "patent", "2020", "0", "", "95", "0"],  # rejected
        ["B", "patent", "2021", "1", "", "1", "1"],
        ["A", "publication", "2019", "0", "article", "", ""],  # same id, other source
        ["A", "patent", "2020", "1", "", "", ""],
    ]
    if seq_column == "none":
        header.remove("contributor_seq")
        rows = [r[:3] + r[4:] for r in rows]
    elif seq_column == "partly empty":
        rows[2][3] = rows[6][3] = ""
    path = tmp_path / "t.csv"
    _write_csv(path, rows, header=header)
    _, docs, cons, q = _read(path)
    idocs, icons, iq = _ingested(path)
    assert q.to_table().equals(iq.to_table()) and q.count == 1
    assert _sorted_rows(docs, ["source", "doc_id"]) == _sorted_rows(idocs, ["source", "doc_id"])
    key = ["source", "doc_id", "record_ref"]
    assert _sorted_rows(cons, key) == _sorted_rows(icons, key)
    assert icons["contributor_seq"].null_count == 0
    # read_table streams in document order: file order of each document's first row
    assert [(d["source"], d["doc_id"]) for d in docs.to_pylist()] == [
        ("patent", "A"), ("patent", "B"), ("publication", "A")]
    a = docs.to_pylist()[0]
    assert (a["year"], a["doc_type"], a["record_ref"]) == (2020, "utility", "t.csv:row 1")
    seqs = [r["contributor_seq"] for r in cons.to_pylist() if r["doc_id"] == "A"
            and r["source"] == "patent"]
    assert seqs == {"none": [0, 1, 2], "full": [0, 3, 1], "partly empty": [0, 1, 2]}[seq_column]
    assert a["n_contributors"] == 3
