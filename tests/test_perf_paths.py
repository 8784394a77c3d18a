"""The fast paths of issue 8 give what the plain definitions give.

* A Parquet table's number columns are read as numbers (no round trip through text), and the
  checks run once per row: the accepted rows and the quarantine equal those of the same
  values written as CSV text.
* The cluster id (the heaviest core point, ties by lat, lon, source) picked in numpy equals
  the SQL window that defined it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters import store
from stclusters.ranking import _cluster_ids
from stclusters.sources import Quarantine
from stclusters.sources.table import ingest_table

#: (doc_id, source, year, contributor_seq, address_seq, lat, lon): good rows and rows that
#: each fail one number check.
ROWS = [
    ("P1", "patent", 2020, 0, 0, 37.33, -121.89),
    ("P1", "patent", 2020, 1, 0, 52.52, 13.405),
    ("P1", "patent", 2020, 1, 1, 48.1374, 11.5755),
    ("W1", "publication", 2019, 0, 0, 22.54, 114.06),
    ("W2", "publication", 2019, 0, 0, None, None),
    ("P2", "patent", None, 0, 0, 1.0, 1.0),           # missing year
    ("P3", "patent", 2020.5, 0, 0, 1.0, 1.0),         # year not an integer
    ("P4", "patent", 1400, 0, 0, 1.0, 1.0),           # year outside the range
    ("P5", "patent", 2020, -1, 0, 1.0, 1.0),          # negative contributor_seq
    ("P6", "patent", 2020, 0, 2.5, 1.0, 1.0),         # address_seq not an integer
    ("P7", "patent", 2020, 0, 0, 91.0, 0.0),          # lat outside
    ("P8", "patent", 2020, 0, 0, 0.0, -181.0),        # lon outside
    ("P9", "patent", 2020, 0, 0, 10.0, None),         # only one of lat/lon
    ("P10", "patent", 2020, 0, 0, float("nan"), 1.0),  # NaN is no latitude
]
NAMES = ("doc_id", "source", "year", "contributor_seq", "address_seq", "lat", "lon")


def _text(v) -> str:
    """A value as a CSV writer prints it (integral floats without a fraction)."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def _ingest(path):
    con = store.connect(None)
    q = Quarantine()
    ingest_table(con, path, input_id=0, quarantine=q)
    rows = con.execute("SELECT doc_id, source, year, contributor_seq, address_seq, lat, lon, "
                       "precision, _row FROM raw_contributions ORDER BY _row").fetchall()
    quarantined = [(r["position"], r["field"], r["reason"]) for r in q.to_table().to_pylist()]
    return rows, sorted(quarantined)


def test_parquet_numbers_match_the_same_values_as_csv_text(tmp_path):
    cols = list(zip(*ROWS))
    typed = pa.table({
        "doc_id": pa.array(cols[0]), "source": pa.array(cols[1]),
        "year": pa.array(cols[2], pa.float64()),  # 2020.5 must stay refusable
        "contributor_seq": pa.array(cols[3], pa.int64()),
        "address_seq": pa.array(cols[4], pa.float64()),
        "lat": pa.array(cols[5], pa.float64()), "lon": pa.array(cols[6], pa.float32()),
    })
    pq.write_table(typed, tmp_path / "t.parquet")
    # float32 longitudes as the text DuckDB reads back into the same DOUBLE
    lon32 = typed.column("lon").cast(pa.float64()).to_pylist()
    lines = [",".join(NAMES)] + [
        ",".join(_text(v) if k != 6 else ("" if lon32[i] is None else repr(lon32[i]))
                 for k, v in enumerate(r)) for i, r in enumerate(ROWS)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    from_parquet, q_parquet = _ingest(tmp_path / "t.parquet")
    from_csv, q_csv = _ingest(tmp_path / "t.csv")
    assert len(from_parquet) == 5 and len(q_parquet) == 9
    assert from_parquet == from_csv
    assert q_parquet == q_csv
    assert ("row 14", "lat", "lat outside [-90, 90]") in q_parquet


def test_cluster_id_is_the_sql_windows_heaviest_core_point():
    rng = np.random.default_rng(7)
    n = 400
    cores = pa.table({
        "stc": rng.integers(0, 12, n), "source": rng.choice(["patent", "publication"], n),
        "lat": rng.integers(0, 3, n) * 0.5, "lon": rng.integers(0, 3, n) * 0.25,
        "weight": rng.integers(1, 4, n).astype(float),  # many ties on weight and place
    })
    con = store.connect(None)
    con.register("cores", cores)
    want = [f"stc{la:+.4f}{lo:+.4f}" for la, lo in con.execute("""
        SELECT lat, lon FROM (
          SELECT stc, lat, lon, row_number() OVER (
              PARTITION BY stc ORDER BY weight DESC, lat, lon, source) AS k
          FROM cores) WHERE k = 1 ORDER BY stc""").fetchall()]
    shuffled = cores.take(pa.array(rng.permutation(n)))
    assert _cluster_ids(shuffled) == want
    assert _cluster_ids(cores.slice(0, 0)) == []
