"""Where every record went (methodology §9): read = used + filtered + rejected, per source.

Two levels are accounted:

* ``records``: the units of the input files, documents for USPTO XML and OpenAlex, rows for
  generic tables. A document is *used* when at least one of its contributions is; rejected
  records are the ones in the quarantine.
* ``contributions``: (document, contributor, address) rows, used or filtered with a reason.
"""

from __future__ import annotations

from typing import Any

import duckdb

from stclusters.contributions import fx_to_weight

DOCUMENT_KINDS = ("uspto-xml", "openalex")


def _bucket(acc: dict, source: str, unit: str) -> dict:
    return acc.setdefault(source, {"records": {"unit": unit, "read": 0, "used": 0, "filtered": {},
                                               "rejected": {}}})


def account(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Per-source accounting of records and contributions, from the workspace tables."""
    acc: dict[str, Any] = {}
    kinds = dict(con.execute("SELECT input_id, kind FROM inputs").fetchall())
    doc_inputs = [i for i, k in kinds.items() if k in DOCUMENT_KINDS] or [-1]
    row_inputs = [i for i, k in kinds.items() if k not in DOCUMENT_KINDS] or [-1]
    doc_status = con.execute(f"""
        WITH d AS (
          SELECT d.source, CASE
            WHEN bool_or(c.status = 'used') THEN 'used'
            WHEN count(c.status) = 0 THEN 'no_contributors'
            WHEN bool_or(c.status = 'out_of_window') THEN 'out_of_window'
            WHEN bool_or(c.status = 'doc_type_excluded') THEN 'doc_type_excluded'
            ELSE 'no_located_contributor' END AS status
          FROM documents d LEFT JOIN contributions c
            ON c.input_id = d.input_id AND c.source = d.source AND c.doc_id = d.doc_id
          WHERE d.input_id IN ({", ".join(map(str, doc_inputs))})
          GROUP BY d.input_id, d.source, d.doc_id, d.record_ref)
        SELECT source, status, count(*) FROM d GROUP BY ALL ORDER BY ALL""").fetchall()
    row_status = con.execute(f"""
        SELECT source, status, count(*) FROM contributions
        WHERE input_id IN ({", ".join(map(str, row_inputs))}) GROUP BY ALL ORDER BY ALL""").fetchall()
    for unit, rows in (("document", doc_status), ("row", row_status)):
        for source, status, n in rows:
            b = _bucket(acc, source, unit)["records"]
            b["read"] += n
            if status == "used":
                b["used"] += n
            else:
                b["filtered"][status] = b["filtered"].get(status, 0) + n
    for input_id, source, reason, n in con.execute("""
            SELECT q.input_id, coalesce(q.source, 'unknown'), q.reason, count(*)
            FROM quarantine q GROUP BY ALL ORDER BY ALL""").fetchall():
        unit = "document" if kinds.get(input_id) in DOCUMENT_KINDS else "row"
        b = _bucket(acc, source, unit)["records"]
        b["read"] += n
        b["rejected"][reason] = b["rejected"].get(reason, 0) + n
    for source, status, n, w in con.execute(f"""
            SELECT source, status, count(*), {fx_to_weight('sum(weight_fx)')}
            FROM contributions GROUP BY ALL ORDER BY ALL""").fetchall():
        b = acc.setdefault(source, {}).setdefault(
            "contributions", {"read": 0, "used": 0, "filtered": {}, "used_weight": 0.0})
        b["read"] += n
        if status == "used":
            b["used"] += n
            b["used_weight"] = float(w)
        else:
            b["filtered"][status] = b["filtered"].get(status, 0) + n
    for source in acc:
        rec = acc[source].get("records")
        if rec:
            rec["filtered"] = dict(sorted(rec["filtered"].items()))
            rec["rejected"] = dict(sorted(rec["rejected"].items()))
            rec["balanced"] = rec["read"] == rec["used"] + sum(rec["filtered"].values()) + sum(
                rec["rejected"].values())
    return dict(sorted(acc.items()))
