"""Where every record went (methodology §9): read = used + filtered + rejected.

Records are the units of the input files: documents for USPTO XML and OpenAlex works, rows
for contribution tables, institutions for an OpenAlex institutions lookup. ``read`` per input
is the count its reader tallied while reading; ``used``, ``filtered`` and ``rejected`` are
counted afterwards from the workspace tables, so ``balanced`` is a real check that nothing was
lost or counted twice on the way. A document is *used* when at least one of its
contributions is; rejected records are the ones in the quarantine.

Contributions ((document, contributor, address) rows) are accounted per source as well:
used, or filtered with a reason (``unlocated`` split by the geocoder's reason).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb

from stclusters._sql import literals
from stclusters.contributions import fx_to_weight
from stclusters.schema import DOCUMENT_STATUS_SQL, SOURCES
from stclusters.sources import bundle_module, bundles
from stclusters.store import DOCUMENT_KINDS


#: A contribution's filter reason, with the geocoder's reason for unlocated ones.
_CONTRIBUTION_STATUS = """CASE WHEN status = 'unlocated'
    THEN 'unlocated (' || coalesce(geocode_status, 'no address') || ')' ELSE status END"""


def _status_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, int]]:
    """(input_id, source, status, n) for every record that reached the workspace tables;
    the bulk bundles' staged rows are counted by their own modules (``status_counts``)."""
    kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM inputs").fetchall()}
    staged = [tuple(row) for kind, module in bundles() if kind in kinds
              for row in module.status_counts(con)]
    return _workspace_status_counts(con) + staged


def _workspace_status_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, int]]:
    doc_kinds = literals(DOCUMENT_KINDS)
    return con.execute(f"""
        WITH docs AS (
          SELECT d.input_id, d.source, {DOCUMENT_STATUS_SQL} AS status
          FROM documents d
          JOIN inputs i ON i.input_id = d.input_id AND i.kind IN ({doc_kinds})
          LEFT JOIN contributions c
            ON c.input_id = d.input_id AND c.source = d.source AND c.doc_id = d.doc_id
           AND c.record_ref = d.record_ref
          GROUP BY d.input_id, d.source, d.doc_id, d.record_ref),
        rows_ AS (
          SELECT c.input_id, c.source, {_CONTRIBUTION_STATUS} AS status
          FROM contributions c
          JOIN inputs i ON i.input_id = c.input_id AND i.kind = 'table'),
        inst AS (
          SELECT input_id, 'institution' AS source,
                 CASE WHEN lat IS NULL OR lon IS NULL THEN 'no_coordinates' ELSE 'used' END AS status
          FROM institutions),
        merged AS (  -- a lookup: every merged-away id read is used as a filter
          SELECT input_id, 'merged_id' AS source, 'used' AS status FROM merged_ids)
        SELECT input_id, source, status, count(*) FROM (
          SELECT * FROM docs UNION ALL SELECT * FROM rows_ UNION ALL SELECT * FROM inst
          UNION ALL SELECT * FROM merged)
        GROUP BY ALL ORDER BY ALL""").fetchall()


def _empty_records(unit: str) -> dict[str, Any]:
    return {"unit": unit, "read": 0, "used": 0, "filtered": {}, "rejected": {}}


def _add(rec: dict[str, Any], status: str, n: int, *, rejected: bool = False) -> None:
    if rejected:
        rec["rejected"][status] = rec["rejected"].get(status, 0) + n
    elif status == "used":
        rec["used"] += n
    else:
        rec["filtered"][status] = rec["filtered"].get(status, 0) + n


def _sorted(rec: dict[str, Any]) -> dict[str, Any]:
    rec["filtered"] = dict(sorted(rec["filtered"].items()))
    rec["rejected"] = dict(sorted(rec["rejected"].items()))
    return rec


def _over_units(units: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A source's records over its units: the one unit's record as it is, or for several
    (``document`` and ``row``) their sums under the unit ``record``; ``by_unit`` keeps each
    unit's own balance, so that no line adds documents to rows unsaid."""
    if len(units) == 1:
        rec = dict(next(iter(units.values())))
    else:
        rec = _empty_records("record")
        for u in units.values():
            rec["read"] += u["read"]
            for kind in ("filtered", "rejected"):
                for reason, n in u[kind].items():
                    rec[kind][reason] = rec[kind].get(reason, 0) + n
            rec["used"] += u["used"]
        _sorted(rec)
    rec["by_unit"] = {unit: {k: v for k, v in u.items() if k != "unit"}
                      for unit, u in sorted(units.items())}
    return rec


def _unit(kind: str, path: str) -> str:
    """The unit of an input's records: ``document``, ``institution``, ``row``, or for a
    bundle's table file what its module says (``document`` for PatentsView's ``g_patent``,
    ``location`` for its locations…)."""
    module = bundle_module(kind)
    if module is not None:
        return module.UNITS.get(module.table_of(Path(path)) or "", "row")
    if kind in DOCUMENT_KINDS:
        return "document"
    return {"openalex-institutions": "institution",
            "openalex-merged-ids": "merged id"}.get(kind, "row")


def account(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accounting per source and per input file.

    Returns
    -------
    by_source : dict
        ``{source: {"records": {...}, "contributions": {...}}}``; lookups (institutions)
        appear under their own name with records only. ``records`` has ``unit``
        (``document``, ``row``, ``institution``, or ``record`` when a source was read in
        several units) and ``by_unit``: the balance of each unit apart.
    by_input : list of dict
        Per input in input order: ``unit``, ``read`` (tallied while reading), ``used``,
        ``filtered``, ``rejected`` and ``balanced`` (read = used + filtered + rejected).
    """
    inputs = con.execute(
        "SELECT input_id, kind, records_read, path FROM inputs ORDER BY input_id").fetchall()
    unit_of = {i: _unit(k, path) for i, k, _, path in inputs}
    per_input = {i: _empty_records(unit_of[i]) for i, *_ in inputs}
    per_source: dict[str, dict[str, Any]] = {}

    # Per source and unit: a source read from XML documents and from table rows counts each
    # apart (a document and a row are not the same thing), then the sum over units.
    by_unit: dict[str, dict[str, dict[str, Any]]] = {}

    def bucket(source: str, input_id: int) -> dict[str, Any]:
        unit = unit_of[input_id]
        return by_unit.setdefault(source, {}).setdefault(unit, _empty_records(unit))

    for input_id, source, status, n in _status_counts(con):
        for rec in (per_input[input_id], bucket(source, input_id)):
            _add(rec, status, n)
    for input_id, source, reason, n in con.execute("""
            SELECT input_id, coalesce(source, 'unknown'), reason, count(*)
            FROM quarantine GROUP BY ALL ORDER BY ALL""").fetchall():
        for rec in (per_input[input_id], bucket(source, input_id)):
            _add(rec, reason, n, rejected=True)
    for source, units in by_unit.items():
        for rec in units.values():
            rec["read"] = rec["used"] + sum(rec["filtered"].values()) + sum(
                rec["rejected"].values())
            _sorted(rec)
        per_source.setdefault(source, {})["records"] = _over_units(units)
    by_input = []
    for input_id, _, records_read, _ in inputs:
        rec = _sorted(per_input[input_id])
        rec["read"] = int(records_read)
        rec["balanced"] = rec["read"] == rec["used"] + sum(rec["filtered"].values()) + sum(
            rec["rejected"].values())
        by_input.append(rec)
    _contributions(con, per_source)
    return dict(sorted(per_source.items())), by_input


def _contributions(con: duckdb.DuckDBPyConnection, per_source: dict[str, dict[str, Any]]) -> None:
    rows = con.execute(f"""
        SELECT source, {_CONTRIBUTION_STATUS} AS status, count(*), {fx_to_weight('sum(weight_fx)')}
        FROM contributions GROUP BY ALL ORDER BY ALL""").fetchall()
    acc: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"read": 0, "used": 0, "filtered": {}, "used_weight": 0.0})
    for source, status, n, w in rows:
        b = acc[source]
        b["read"] += n
        if status == "used":
            b["used"] += n
            b["used_weight"] = float(w)
        else:
            b["filtered"][status] = b["filtered"].get(status, 0) + n
    for source, b in acc.items():
        per_source.setdefault(source, {})["contributions"] = b


def located_by_country(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict[str, Any]]]:
    """The geocoding match rate per source and stated country (methodology §1).

    Returns
    -------
    dict
        ``{source: {country: {"contributions": n, "located": k, "located_pct": 100 k / n}}}``
        over every contribution row (used or not); ``country`` is the ISO-2 code the record
        states, ``"??"`` when it states none. Countries in code order.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for source, country, n, k in con.execute("""
            SELECT source, coalesce(country, '??'), count(*),
                   count(*) FILTER (WHERE lat IS NOT NULL AND lon IS NOT NULL)
            FROM contributions GROUP BY ALL ORDER BY ALL""").fetchall():
        out.setdefault(source, {})[country] = {
            "contributions": int(n), "located": int(k),
            "located_pct": round(100.0 * k / n, 2) if n else 0.0}
    return out


#: Sources that are lookups (they locate other records) and feed no counts of their own.
LOOKUP_SOURCES = frozenset({"institution", "merged_id"})


def selection_reasons() -> frozenset[str]:
    """Filter reasons that only say a record lies outside what its bulk table is read for
    (each bundle module's ``SELECTION_REASONS``: a PATSTAT application that is not PCT, a
    link of an applicant who is no inventor). They are accounted like any other, but they
    do not make a source look mostly unused."""
    return frozenset(r for _, module in bundles()
                     for r in getattr(module, "SELECTION_REASONS", ()))


def lookup_sources() -> frozenset[str]:
    """:data:`LOOKUP_SOURCES` and the lookup tables of the bulk bundles (PatentsView
    locations, PATSTAT persons…): every source that is not a metric."""
    staged = {s for _, module in bundles() for s in module.SOURCES_OF.values()}
    return LOOKUP_SOURCES | frozenset(staged - set(SOURCES))

#: A source whose filtered and rejected records reach this share (%) of its read records
#: gets a warning naming the main reason: most of its input did not count.
WARN_UNUSED_SHARE_PCT = 50.0

#: Run outcomes and the exit code the command line gives each (documented in the README).
OUTCOME_EXIT_CODES = {"ok": 0, "nothing_used": 3, "no_cluster": 4}


def _plural(n: int, unit: str) -> str:
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def _main_reason(rec: dict[str, Any]) -> tuple[str, str, int]:
    """(``filtered`` or ``rejected``, reason, count) of the largest reason; ties by name."""
    reasons = [(n, kind, reason) for kind in ("filtered", "rejected")
               for reason, n in rec[kind].items()]
    if not reasons:
        return "filtered", "none", 0
    n, kind, reason = max(reasons, key=lambda r: (r[0], r[1] == "filtered", r[2]))
    return kind, reason, n


def unused_warnings(accounting: dict[str, Any]) -> list[dict[str, Any]]:
    """Sources whose records mostly did not count, each with its main reason.

    Parameters
    ----------
    accounting : dict
        The per-source accounting of :func:`account`.

    Returns
    -------
    list of dict
        Per source, in name order: ``source``, ``unit``, ``read``, ``unused`` (filtered +
        rejected), ``kind`` (``filtered`` or ``rejected``), ``reason``, ``n`` (records of
        that reason) and ``message`` (one line).
    """
    out = []
    lookups = lookup_sources()
    # A metric left out of the run on purpose (excluded_sources) is no sign of trouble either.
    selection = selection_reasons() | {"source_excluded"}
    for source, acc in sorted(accounting.items()):
        rec = acc.get("records")
        if source in lookups or not rec or not rec["read"]:
            continue
        # Records a bulk table holds by design outside what is counted (PATSTAT's non-PCT
        # applications: 95 % of tls201) are no sign that something went wrong.
        selected_out = sum(n for r, n in rec["filtered"].items() if r in selection)
        considered = rec["read"] - selected_out
        unused = considered - rec["used"]
        if not considered or 100.0 * unused / considered < WARN_UNUSED_SHARE_PCT:
            continue
        kind, reason, n = _main_reason(
            {**rec, "filtered": {r: k for r, k in rec["filtered"].items() if r not in selection}})
        message = (f"{unused:,} of {_plural(rec['read'], source + ' ' + rec['unit'])} not "
                   f"used: {reason} ({n:,} {kind})")
        out.append({"source": source, "unit": rec["unit"], "read": rec["read"], "unused": unused,
                    "kind": kind, "reason": reason, "n": n, "message": message})
    return out


def outcome(accounting: dict[str, Any], *, n_clusters: int) -> dict[str, Any]:
    """What a run produced, in one word and one line.

    Parameters
    ----------
    accounting : dict
        The per-source accounting of :func:`account`.
    n_clusters : int
        S&T clusters found (ranked or not).

    Returns
    -------
    dict
        ``status``: ``ok``, ``nothing_used`` (no record of any source counted: every one was
        filtered or rejected) or ``no_cluster`` (records counted, but no point reached a
        core threshold); ``message``: one line with the main reason; ``warnings``: the
        :func:`unused_warnings`.
    """
    warnings = unused_warnings(accounting)
    lookups = lookup_sources()
    counted = {s: a["records"] for s, a in accounting.items()
               if s not in lookups and a.get("records")}
    n_used = sum(r["used"] for r in counted.values())
    n_read = sum(r["read"] for r in counted.values())
    if n_read == 0:
        present = sorted(s for s in accounting if s in lookups)
        return {"status": "nothing_used", "warnings": warnings,
                "message": "nothing used: the inputs hold no patent or publication record "
                           "(nor one of any other metric)"
                           + (f" (only a lookup: {', '.join(present)})" if present else "")}
    if n_used == 0:
        if warnings:
            main = max(warnings, key=lambda w: (w["n"], w["source"]))
            why = f"; main reason: {main['reason']} ({main['n']:,} {main['source']} {main['kind']})"
        else:
            why = ""
        return {"status": "nothing_used", "warnings": warnings,
                "message": f"nothing used: {_plural(n_read, 'record')} read, none counted{why}"}
    if n_clusters == 0:
        return {"status": "no_cluster", "warnings": warnings,
                "message": f"no cluster found: {_plural(n_used, 'record')} used, but no point's "
                           "neighbourhood reached the core threshold (min_weight)"}
    return {"status": "ok", "warnings": warnings, "message": "ok"}
