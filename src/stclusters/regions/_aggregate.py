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

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import InputFormatError, ParameterError

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

_SCALES = {"": 1.0, "thousand": 1e3, "million": 1e6, "100 million": 1e8, "billion": 1e9}
_CURRENCY_UNIT = re.compile(r"^(?P<cur>[A-Z]{3}) ?(?P<scale>thousand|million|100 million|"
                            r"billion)?(?: \(亿元\))?$")
_PERSONS_UNIT = {"persons": 1.0, "10k persons": 1e4}
_BOUND_DIR = {">": (1, True), ">=": (1, False), "<": (-1, True), "<=": (-1, False)}
_PROVINCE = re.compile(r"\(province\)", re.IGNORECASE)

RATE_COLUMNS = ("year", "from_currency", "to_currency", "rate", "source_publisher",
                "source_title", "source_url")


def _base(unit: str) -> tuple[str, float] | None:
    """``(base unit, factor)`` of a unit: ``CNY 100 million (亿元)`` → ``(CNY, 1e8)``,
    ``10k persons`` → ``(persons, 1e4)``; None for any other unit (counted as written)."""
    m = _CURRENCY_UNIT.match(unit)
    if m:
        return m.group("cur"), _SCALES[m.group("scale") or ""]
    if unit in _PERSONS_UNIT:
        return "persons", _PERSONS_UNIT[unit]
    return None


def _is_currency(base: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{3}", base))


def kind_of(indicator: str, unit: str) -> str:
    """``'sum'``, ``'ratio'``, ``'percentage'``, ``'intensity'`` or ``'whole'`` (the last
    three are never summed)."""
    if indicator in RATIOS or _COMPUTED_PER_MILLION.match(indicator):
        return "ratio"
    if _NOT_ADDITIVE.search(indicator):
        return "whole"
    if unit.startswith("%") or _PERCENT.search(indicator):
        return "percentage"
    if re.search(r"\bper\b", unit) or "per_" in indicator:
        return "intensity"
    return "sum"


#: Units of recomputed ratios when no member row names one.
RATIO_UNITS = {"rd_intensity": "% of GDP",
               "invention_patents_in_force_per_10k_pop": "per 10,000 residents"}


def _ratio_unit(indicator: str, numerator: tuple | None) -> str:
    if indicator in RATIO_UNITS:
        return RATIO_UNITS[indicator]
    if _COMPUTED_PER_MILLION.match(indicator):
        return "per million inhabitants"
    return f"{numerator[2]} per person" if numerator else "per person"


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
    publisher and title: no rate without a source.

    Raises
    ------
    InputFormatError
        Missing columns, a bad rate (not a positive number), an uncited row; line and field.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(reader.line_num, r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(path, "a rate table CSV", str(exc).splitlines()[0]) from exc
    missing = [c for c in RATE_COLUMNS if c not in header]
    if missing:
        raise InputFormatError(path, "a rate table CSV", "missing columns "
                               + ", ".join(missing), hint="columns: " + ",".join(RATE_COLUMNS))
    out, problems = [], []
    for line, r in rows:
        r = {k: (v or "").strip() for k, v in r.items() if k}
        try:
            year, rate = int(r["year"]), float(r["rate"])
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError
        except ValueError:
            problems.append(f"line {line}, field year/rate: {r['year']!r:.8} / {r['rate']!r:.16}"
                            " (an integer year and a positive rate)")
            continue
        codes = (r["from_currency"].upper(), r["to_currency"].upper())
        if not all(re.fullmatch(r"[A-Z]{3}", c) for c in codes):
            problems.append(f"line {line}, field from_currency/to_currency: ISO 4217 codes")
            continue
        if not (r["source_publisher"] and r["source_title"]):
            problems.append(f"line {line}, field source_publisher/source_title: a rate must "
                            "cite its source")
            continue
        out.append({"year": year, "from_currency": codes[0], "to_currency": codes[1],
                    "rate": rate, "source_publisher": r["source_publisher"],
                    "source_title": r["source_title"], "source_url": r["source_url"] or None})
    if problems:
        raise InputFormatError(path, "a rate table CSV", "; ".join(problems[:5]))
    return pa.Table.from_pylist(out)


def _rate(rates: list[dict] | None, year: int, cur: str, to: str) -> tuple[float, str] | None:
    """Units of ``to`` for one ``cur`` in ``year`` and who says so (direct or inverse row)."""
    if cur == to:
        return 1.0, ""
    for r in rates or ():
        if r["year"] == year and (r["from_currency"], r["to_currency"]) == (cur, to):
            return r["rate"], r["source_publisher"]
        if r["year"] == year and (r["from_currency"], r["to_currency"]) == (to, cur):
            return 1.0 / r["rate"], r["source_publisher"]
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
             ) -> tuple[float | None, str, str, str]:
    """``(value in base units or None, base, rate publisher, why None)`` of one row."""
    base = _base(row["unit"])
    if base is None:
        return row["value"], row["unit"], "", ""
    unit, factor = base
    value = row["value"] * factor
    if not _is_currency(unit) or target is None or unit == target:
        return value, unit, "", ""
    rate = _rate(rates, year, unit, target)
    if rate is None:
        return None, unit, "", f"no {unit}→{target} rate for {year} in the rate table"
    return value * rate[0], target, rate[1], ""


def _combine(parts: list[dict[str, Any]], year: int, target: str | None,
             rates: list[dict] | None) -> tuple[float | None, str | None, str, set[str]]:
    """Σ of ``parts`` in one base unit: ``(total, base, problem, rate publishers)``."""
    values, bases, pubs = [], set(), set()
    for row in parts:
        value, base, pub, why = _in_base(row, year, target, rates)
        if value is None:
            return None, None, why, pubs
        values.append(value)
        bases.add(base)
        pubs.update([pub] if pub else [])
    total = math.fsum(values)  # correctly rounded: the same whatever the members' order
    if len(bases) > 1:
        return None, None, "units differ (" + ", ".join(sorted(bases)) + "): give a rate " \
            "table and a target currency to convert currencies", pubs
    return total, bases.pop(), "", pubs


def _pick(by_key: dict, member: str, year: int, indicator: str) -> list[dict]:
    return by_key.get((member, year, indicator), [])


def _group_row(into: str, year: int, indicator: str, unit: str, value: float | None,
               parts: list[dict], bound: str | None, note: str) -> dict[str, Any]:
    pubs = sorted({p["source_publisher"] for p in parts if p["source_publisher"]})
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
    same_unit = not why and len({p["unit"] for p in parts}) == 1 and (
        target is None or (_base(unit) or ("",))[0] in ("", target) or not _base(unit))
    if same_unit:  # summed as written: no scale factor to round through
        total, base, problem, pubs = math.fsum(p["value"] for p in parts), None, "", set()
    else:
        total, base, problem, pubs = (None, None, why, set()) if why else \
            _combine(parts, year, target, rates)
    bound, bound_ok = _sum_bound([p["bound"] for p in parts])
    if total is not None and not bound_ok:
        total, problem = None, "lower and upper bounds among the parts"
    if total is not None and not same_unit:  # in the first member's unit, or millions of base
        b = _base(unit)
        if b is None or b[0] == base:
            total /= b[1] if b else 1.0
        else:
            unit, total = f"{base} million", total / 1e6
    note = (f"sum of {', '.join(members)}" + (f"; converted at rates of {'; '.join(sorted(pubs))}"
                                              if pubs else "")
            if total is not None else f"not summed: {problem}")
    return _group_row(into, year, indicator, unit, total, parts, bound, note)


def _aggregate_ratio(by_key, members, into, year, indicator, target, rates,
                     unit_of: dict[str, str]) -> dict[str, Any]:
    num_name, den_name, scale = _recipe(indicator)
    sides, problems, parts = {}, [], []
    for side in (num_name, den_name):
        rows, missing = [], []
        for m in members:
            found = _pick(by_key, m, year, side)
            if len(found) == 1:
                rows.append(found[0])
            else:
                missing.append(m)
        if missing:
            problems.append(f"no {side} for: " + ", ".join(missing))
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
    unit = unit_of.get(indicator) or _ratio_unit(indicator, sides.get(num_name))
    if problems or sides[den_name][0] == 0:
        why = "; ".join(problems) or f"{den_name} sums to 0"
        return _group_row(into, year, indicator, unit, None, parts, None,
                          f"not recomputed: {why}")
    (num, nb, nu), (den, db, du) = sides[num_name], sides[den_name]
    if _is_currency(nu) and _is_currency(du) and nu != du:
        return _group_row(into, year, indicator, unit, None, parts, None,
                          f"not recomputed: {num_name} in {nu}, {den_name} in {du}: give a "
                          "rate table and a target currency")
    bound, ok = _sum_bound([nb, _flip(db)])
    value = num / den * scale if ok else None
    note = (f"recomputed from its parts: Σ {num_name} / Σ {den_name} × {scale:g} over "
            f"{', '.join(members)} (never summed)" if ok else
            "not recomputed: the parts' bounds point different ways")
    return _group_row(into, year, indicator, unit, value, parts, bound, note)


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
    province = [m for m in members if _PROVINCE.search(m)]
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
