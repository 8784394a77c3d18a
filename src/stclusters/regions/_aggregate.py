"""Adding members' indicators into a group's (``aggregate``), by the rule of each indicator:

* counts and amounts are summed; amounts only in one currency, or converted with a rate
  table the user gives (:func:`read_rates`, every rate cited);
* ratios are recomputed from their parts (``rd_intensity`` = Σ rd_expenditure / Σ gdp;
  per-capita figures = Σ numerator / Σ population), never summed or averaged;
* percentages and intensities without parts, and whole counts (not additive: a document
  with contributors in two members counts once in the group) are refused;
* province-level rows (``Guangdong (province)``) are never added to city rows;
* a group figure exists only where every member has the figure (and every part) for that
  year; else the value is null and the note names the members missing;
* bounds propagate (a sum with a ``'>'`` part is a ``'>'`` bound; a ratio's denominator
  bound turns round), and so do flags (the weakest of the parts, :data:`FLAG_ORDER`).

The indicator tables are small (curated figures, hundreds of rows): this module works on
Python lists of rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import InputFormatError, ParameterError
from stclusters.regions._format import csv_rows, is_currency, is_province, unit_base

#: Flags from strongest to weakest; an aggregate takes the weakest of its parts.
FLAG_ORDER = ("official final", "revised", "provisional", "computed", "secondary-source",
              "estimate")

#: Ratios recomputed from their parts: indicator → (numerator, denominator, scale). The
#: value is Σ numerator / Σ denominator × scale, both parts in base units (currency units,
#: persons), e.g. rd_intensity in % of GDP = 100 × Σ R&D / Σ GDP.
RATIOS: dict[str, tuple[str, str, float]] = {
    "rd_intensity": ("rd_expenditure", "gdp", 100.0),
    "invention_patents_in_force_per_10k_pop": ("invention_patents_in_force", "population",
                                               1e4),
    "gdp_per_capita": ("gdp", "population", 1.0),
}
_COMPUTED_PER_MILLION = re.compile(r"^(?P<src>.+)_per_million_fractional$")
_NOT_ADDITIVE = re.compile(r"_whole_count$")
_PERCENT = re.compile(r"_(world_share|growth)_")
#: A percentage by its unit: ``%``, ``% of GDP``, ``percent``, ``pct``, ``per cent``,
#: ``percentage points`` (any case).
_PERCENT_UNIT = re.compile(r"\s*(%|percent(age)?s?\b|pct\b|per\s+cent\b)", re.IGNORECASE)

_BOUND_DIR = {">": (1, True), ">=": (1, False), "<": (-1, True), "<=": (-1, False)}
#: An intensity by its name: ``per`` as a word of the name (``rd_per_capita``,
#: ``patents_per_10k_pop``), not inside another word (``paper_count``, ``newspaper_articles``).
_PER_WORD = re.compile(r"(^|_)per(_|$)")

RATE_COLUMNS = ("year", "from_currency", "to_currency", "rate", "source_publisher",
                "source_title", "source_url")


def kind_of(indicator: str, unit: str) -> str:
    """``'sum'``, ``'ratio'``, ``'percentage'``, ``'intensity'`` or ``'whole'`` (the last
    three are never summed)."""
    if indicator in RATIOS or _COMPUTED_PER_MILLION.match(indicator):
        return "ratio"
    if _NOT_ADDITIVE.search(indicator):
        return "whole"
    if _PERCENT_UNIT.match(unit or "") or _PERCENT.search(indicator):
        return "percentage"
    if re.search(r"\bper\b", unit) or _PER_WORD.search(indicator):
        return "intensity"
    return "sum"


#: Units of recomputed ratios when no member row names one.
RATIO_UNITS = {"rd_intensity": "% of GDP",
               "invention_patents_in_force_per_10k_pop": "per 10,000 residents"}


def _ratio_unit(indicator: str, numerator_base: str | None, written: str | None) -> str:
    """The unit of a recomputed ratio: as the members write it for a ratio whose unit does
    not depend on a currency (``% of GDP``, ``per 10,000 residents``); else the base unit
    its numerator was summed in (after any conversion) per person (``HKD per person``);
    the members' unit as written when the numerator could not be summed."""
    if indicator in RATIO_UNITS:
        return written or RATIO_UNITS[indicator]
    if _COMPUTED_PER_MILLION.match(indicator):
        return written or "per million inhabitants"
    if numerator_base:
        return f"{numerator_base} per person"
    return written or "per person"


def _recipe(indicator: str) -> tuple[str, str, float]:
    m = _COMPUTED_PER_MILLION.match(indicator)
    if m:
        return f"{m.group('src')}_fractional_count", "population", 1e6
    return RATIOS[indicator]


# ------------------------------------------------------------------ rates

def read_rates(path: str | Path) -> pa.Table:
    """A currency rate table the user gives: CSV ``year, from_currency, to_currency, rate,
    source_publisher, source_title, source_url``; ``rate`` = units of ``to_currency`` for one
    ``from_currency`` (a yearly average, as its source says). Every row must name its
    publisher and title: no rate without a source. One rate per year and pair of
    currencies, in either direction (``HKD→CNY`` and ``CNY→HKD`` of one year is the same
    rate given twice, refused even when they agree).

    Raises
    ------
    InputFormatError
        Missing or unknown columns, a row with more or fewer fields than the header, a bad
        rate (not a positive number), an uncited row, a rate given twice; every bad row
        named by line and field (up to five) in one message.
    """
    path = Path(path)
    header, rows = csv_rows(path, str(path), "a rate table CSV",
                            hint="columns: " + ",".join(RATE_COLUMNS))
    missing = [c for c in RATE_COLUMNS if c not in header]
    unknown = [c for c in header if c not in RATE_COLUMNS]
    if missing or unknown:
        raise InputFormatError(path, "a rate table CSV", "; ".join(filter(None, (
            missing and "missing columns " + ", ".join(missing),
            unknown and "unknown columns " + ", ".join(unknown)))),
            hint="columns: " + ",".join(RATE_COLUMNS))
    out, problems, seen = [], [], {}
    for line, raw in rows:
        if None in raw or any(v is None for v in raw.values()):
            problems.append(f"line {line}, field (row): {len(header)} fields expected")
            continue
        row, why = _rate_row(raw)
        if row is None:
            problems.append(f"line {line}, {why}")
            continue
        key = (row["year"], frozenset((row["from_currency"], row["to_currency"])))
        if key in seen:
            problems.append(f"line {line}, field rate: {row['from_currency']}/"
                            f"{row['to_currency']} {row['year']} already given on line "
                            f"{seen[key]} (one rate per year and pair)")
            continue
        seen[key] = line
        out.append(row)
    if problems:
        raise InputFormatError(path, "a rate table CSV", f"{len(problems)} bad row(s): "
                               + "; ".join(problems[:5])
                               + (f"; and {len(problems) - 5} more" if len(problems) > 5
                                  else ""), hint="fix the rows named (docs/regions.md)")
    return pa.Table.from_pylist(out, schema=_RATE_SCHEMA)


_RATE_SCHEMA = pa.schema([
    ("year", pa.int64()), ("from_currency", pa.string()), ("to_currency", pa.string()),
    ("rate", pa.float64()), ("source_publisher", pa.string()), ("source_title", pa.string()),
    ("source_url", pa.string())])


def _rate_row(raw: dict[str | None, str | None]) -> tuple[dict[str, Any] | None, str]:
    """One rate row, or ``(None, "field …: why")``."""
    r = {k: (v or "").strip() for k, v in raw.items() if k}
    try:
        year, rate = int(r["year"]), float(r["rate"])
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError
    except ValueError:
        return None, (f"field year/rate: {r['year']!r:.8} / {r['rate']!r:.16} (an integer "
                      "year and a positive rate)")
    codes = (r["from_currency"].upper(), r["to_currency"].upper())
    if not all(re.fullmatch(r"[A-Z]{3}", c) for c in codes) or codes[0] == codes[1]:
        return None, "field from_currency/to_currency: two different ISO 4217 codes"
    if not (r["source_publisher"] and r["source_title"]):
        return None, "field source_publisher/source_title: a rate must cite its source"
    return {"year": year, "from_currency": codes[0], "to_currency": codes[1], "rate": rate,
            "source_publisher": r["source_publisher"], "source_title": r["source_title"],
            "source_url": r["source_url"] or None}, ""


def _rate(rates: list[dict] | None, year: int, cur: str, to: str,
          ) -> tuple[float, str, str] | None:
    """Units of ``to`` for one ``cur`` in ``year``, its publisher and its title (a direct
    or an inverse row); None without one."""
    for r in rates or ():
        pair = (r["from_currency"], r["to_currency"])
        if r["year"] == year and pair in ((cur, to), (to, cur)):
            rate = r["rate"] if pair == (cur, to) else 1.0 / r["rate"]
            return rate, r["source_publisher"], r["source_title"]
    return None


# ------------------------------------------------------------------ bounds and flags

def _sum_bound(bounds: Sequence[str | None]) -> tuple[str | None, bool]:
    """``(bound, ok)`` of a sum: exact parts and lower bounds give a lower bound (strict if
    any part is), likewise upper; lower and upper together give no usable bound (ok False)."""
    dirs = [_BOUND_DIR[b] for b in bounds if b]
    if not dirs:
        return None, True
    signs = {d for d, _ in dirs}
    if len(signs) > 1:
        return None, False
    sign, strict = signs.pop(), any(s for _, s in dirs)
    return ({1: ">", -1: "<"}[sign] + ("" if strict else "=")), True


def _flip(bound: str | None) -> str | None:
    return {">": "<", ">=": "<=", "<": ">", "<=": ">="}.get(bound) if bound else None


def weakest_flag(flags: Sequence[str]) -> str:
    """The weakest of ``flags`` (:data:`FLAG_ORDER`)."""
    return max(flags, key=lambda f: FLAG_ORDER.index(f) if f in FLAG_ORDER else len(FLAG_ORDER))


# ------------------------------------------------------------------ aggregation

def _in_base(row: dict[str, Any], year: int, target: str | None, rates: list[dict] | None,
             ) -> tuple[float | None, str, tuple[str, str] | None, str]:
    """``(value in base units or None, base, (rate publisher, title) or None, why None)``
    of one row (:func:`~stclusters.regions._format.unit_base`)."""
    unit, factor = unit_base(row["unit"])
    value = row["value"] * factor
    if not is_currency(unit) or target is None or unit == target:
        return value, unit, None, ""
    rate = _rate(rates, year, unit, target)
    if rate is None:
        return None, unit, None, f"no {unit}→{target} rate for {year} in the rate table"
    return value * rate[0], target, rate[1:], ""


def _combine(parts: list[dict[str, Any]], year: int, target: str | None,
             rates: list[dict] | None,
             ) -> tuple[float | None, str | None, str, set[tuple[str, str]]]:
    """Σ of ``parts`` in one base unit: ``(total, base, problem, rates' (publisher, title))``."""
    values, bases, pubs = [], set(), set()
    for row in parts:
        value, base, cite, why = _in_base(row, year, target, rates)
        if value is None:
            return None, None, why, pubs
        values.append(value)
        bases.add(base)
        pubs.update([cite] if cite else [])
    total = math.fsum(values)  # correctly rounded: the same whatever the members' order
    if len(bases) > 1:
        return None, None, "units differ (" + ", ".join(sorted(bases)) + "): give a rate " \
            "table and a target currency to convert currencies", pubs
    return total, bases.pop(), "", pubs


def _pick(by_key: dict, member: str, year: int, indicator: str) -> list[dict]:
    return by_key.get((member, year, indicator), [])


def _rates_note(cites: set[tuple[str, str]]) -> str:
    """``; converted at rates of <publisher>, <title>; …`` (empty without a conversion)."""
    if not cites:
        return ""
    return "; converted at rates of " + "; ".join(f"{p}, {t}" for p, t in sorted(cites))


def _group_row(into: str, year: int, indicator: str, unit: str, value: float | None,
               parts: list[dict], bound: str | None, note: str,
               cites: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """The group's row; its publishers are its parts' and the cited rates' (``cites``)."""
    pubs = sorted({p["source_publisher"] for p in parts if p["source_publisher"]}
                  | {p for p, _t in cites})
    return {"region": into, "year": year, "indicator": indicator, "value": value,
            # A figure that cannot be had carries the weakest flag of what there was.
            "unit": unit, "flag": weakest_flag([p["flag"] for p in parts]) if parts
            else FLAG_ORDER[-1], "bound": bound if value is not None else None,
            "source_publisher": "; ".join(pubs) or None,
            "source_title": f"aggregate of {len({p['region'] for p in parts})} member(s)",
            "source_url": None, "note": note, "origin": f"aggregate({into})"}


def _aggregate_sum(by_key, members, into, year, indicator, target, rates) -> dict[str, Any]:
    parts, missing, doubled = [], [], []
    for m in members:
        rows = _pick(by_key, m, year, indicator)
        if not rows:
            missing.append(m)
        elif len(rows) > 1:  # the same figure in two units: which one to add is not ours
            doubled.append(m)
        else:
            parts.append(rows[0])
    unit = parts[0]["unit"] if parts else ""
    why = ""
    if missing:
        why = "no figure for: " + ", ".join(missing)
    elif doubled:
        why = "more than one unit for: " + ", ".join(doubled)
    elif any(p["value"] < 0 for p in parts):
        why = "negative figure for: " + ", ".join(p["region"] for p in parts if p["value"] < 0)
    base_of_unit = unit_base(unit)[0]
    same_unit = not why and len({p["unit"] for p in parts}) == 1 and (
        target is None or not is_currency(base_of_unit) or base_of_unit == target)
    if same_unit:  # summed as written: no scale factor to round through
        total, base, problem, pubs = math.fsum(p["value"] for p in parts), None, "", set()
    else:
        total, base, problem, pubs = (None, None, why, set()) if why else \
            _combine(parts, year, target, rates)
    bound, bound_ok = _sum_bound([p["bound"] for p in parts])
    if total is not None and not bound_ok:
        total, problem = None, "lower and upper bounds among the parts"
    if total is not None and not same_unit:  # in the first member's unit, or millions of base
        b = unit_base(unit)
        if b[0] == base:
            total /= b[1]
        else:
            unit, total = f"{base} million", total / 1e6
    if total is None:
        pubs = set()
    note = (f"sum of {', '.join(members)}{_rates_note(pubs)}" if total is not None
            else f"not summed: {problem}")
    return _group_row(into, year, indicator, unit, total, parts, bound, note, pubs)


def _aggregate_ratio(by_key, members, into, year, indicator, target, rates,
                     unit_of: dict[str, str]) -> dict[str, Any]:
    num_name, den_name, scale = _recipe(indicator)
    sides, problems, parts, cites = {}, [], [], set()
    for side in (num_name, den_name):
        rows, missing, doubled = [], [], []
        for m in members:
            found = _pick(by_key, m, year, side)
            if len(found) == 1:
                rows.append(found[0])
            else:  # none, or the same figure in two units: which one to add is not ours
                (doubled if found else missing).append(m)
        # A part below 0 (or a denominator not above 0) is no figure: the group gets none.
        invalid = [r["region"] for r in rows
                   if r["value"] < 0 or (side == den_name and not r["value"] > 0)]
        if invalid:
            problems.append(f"{side} not {'above' if side == den_name else 'at least'} 0 "
                            "for: " + ", ".join(invalid))
            continue
        if missing or doubled:
            problems += [f"no {side} for: " + ", ".join(missing)] if missing else []
            problems += ([f"more than one unit of {side} for: " + ", ".join(doubled)]
                         if doubled else [])
            continue
        total, _base_unit, problem, pubs = _combine(rows, year, target, rates)
        if total is None:
            problems.append(f"{side}: {problem}")
            continue
        bound, ok = _sum_bound([r["bound"] for r in rows])
        if not ok:
            problems.append(f"{side}: lower and upper bounds among the parts")
            continue
        sides[side] = (total, bound, _base_unit)
        parts += rows
        cites |= pubs
    numerator = sides.get(num_name)
    unit = _ratio_unit(indicator, numerator[2] if numerator else None, unit_of.get(indicator))
    if problems or sides[den_name][0] == 0:
        why = "; ".join(problems) or f"{den_name} sums to 0"
        return _group_row(into, year, indicator, unit, None, parts, None,
                          f"not recomputed: {why}")
    (num, nb, nu), (den, db, du) = sides[num_name], sides[den_name]
    if is_currency(nu) and is_currency(du) and nu != du:
        return _group_row(into, year, indicator, unit, None, parts, None,
                          f"not recomputed: {num_name} in {nu}, {den_name} in {du}: give a "
                          "rate table and a target currency")
    bound, ok = _sum_bound([nb, _flip(db)])
    value = num / den * scale if ok else None
    note = (f"recomputed from its parts: Σ {num_name} / Σ {den_name} × {scale:g} over "
            f"{', '.join(members)} (never summed){_rates_note(cites)}" if ok else
            "not recomputed: the parts' bounds point different ways")
    return _group_row(into, year, indicator, unit, value, parts, bound, note,
                      cites if ok else set())


def aggregate(table: pa.Table, *, into: str, members: Sequence[str],
              indicators: Sequence[str] | None = None, rates: pa.Table | None = None,
              currency: str | None = None) -> pa.Table:
    """A group's figures from its members' rows of ``table``, by each indicator's rule.

    Parameters
    ----------
    table : pyarrow.Table
        Indicator rows (:data:`stclusters.regions.indicators.SCHEMA`), e.g. from
        :func:`~stclusters.regions.indicators.read_indicators`.
    into : str, keyword-only
        The group's name, written in ``region`` (``PRD-9``).
    members : sequence of str, keyword-only
        The members added. A province-level name (``… (province)``) is refused.
    indicators : sequence of str, optional, keyword-only
        Indicators to aggregate; default every indicator the members have. Asking for one
        that is never summed (a percentage or an intensity without parts, a whole count) is
        refused; with the default such indicators get a row with a null value and a note.
    rates : pyarrow.Table, optional, keyword-only
        :func:`read_rates`; used only to convert amounts into ``currency``.
    currency : str, optional, keyword-only
        ISO 4217 code amounts are converted into (needs ``rates``).

    Returns
    -------
    pyarrow.Table
        One row per (indicator, year) that any member has, region ``into``; ``value`` null
        where a member or part is missing (the note names them).

    Raises
    ------
    ParameterError
        A province-level member, ``into`` among the members, ``currency`` without ``rates``,
        or an indicator asked for that is never summed.
    """
    from stclusters.regions.indicators import to_table  # noqa: PLC0415 - module cycle

    members = list(dict.fromkeys(members))
    province = [m for m in members if is_province(m)]
    if province:
        raise ParameterError(f"{', '.join(province)}: a province-level row is never added to "
                             "city rows", hint="aggregate cities (members) only; the province "
                                               "row is context")
    if into in members or not members:
        raise ParameterError(f"aggregate into {into!r}: give members other than the group",
                             hint="members: the cities the group is made of")
    if currency is not None and rates is None:
        raise ParameterError(f"currency {currency}: converting needs a rate table",
                             hint="give rates= (read_rates: a cited CSV); no rate is invented")
    rows = [r for r in table.to_pylist() if r["region"] in members]
    rate_rows = rates.to_pylist() if rates is not None else None
    by_key: dict[tuple, list[dict]] = {}
    unit_of: dict[str, str] = {}
    for r in rows:
        if r["value"] is not None:
            by_key.setdefault((r["region"], r["year"], r["indicator"]), []).append(r)
        unit_of.setdefault(r["indicator"], r["unit"])
    asked = list(indicators) if indicators is not None else sorted(unit_of)
    out = []
    for indicator in asked:
        kind = kind_of(indicator, unit_of.get(indicator, ""))
        if kind in ("percentage", "intensity", "whole") and indicators is not None:
            raise ParameterError(_refusal(indicator, kind),
                                 hint="aggregate its parts, or recompute from records")
        years = sorted({r["year"] for r in rows if r["indicator"] == indicator
                        or (kind == "ratio" and r["indicator"] in _recipe(indicator)[:2])})
        for year in years:
            if kind == "sum":
                out.append(_aggregate_sum(by_key, members, into, year, indicator, currency,
                                          rate_rows))
            elif kind == "ratio":
                out.append(_aggregate_ratio(by_key, members, into, year, indicator, currency,
                                            rate_rows, unit_of))
            else:
                seen = [r for r in rows if r["indicator"] == indicator and r["year"] == year]
                out.append(_group_row(into, year, indicator, unit_of[indicator], None, seen,
                                      None, "not aggregated: " + _refusal(indicator, kind)))
    return to_table(out)


def _refusal(indicator: str, kind: str) -> str:
    if kind == "whole":
        return (f"{indicator}: whole counts are not additive (a document with contributors "
                "in two members counts once in the group); count the group from records")
    return (f"{indicator}: a {kind} is never summed or averaged over members; a group's "
            "figure is recomputed from the parts (Σ numerator / Σ denominator)")
