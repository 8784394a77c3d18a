"""Indicators of a region: a tidy table of figures with their sources, flags and bounds, the
counts computed from a run's records, and the rules for adding members into a group.

The indicator table (:data:`SCHEMA`) has one row per (region, year, indicator, unit):

* ``region``: a member (``Shenzhen``), a group (``PRD-9``), the region itself (``GBA``), or a
  context row (``Guangdong (province)``: never added to city rows);
* ``year`` (int), ``indicator`` (``rd_expenditure``, ``population``, ``patent_fractional_count``
  …), ``value`` (double; null where a figure cannot be had, and the note says why), ``unit``;
* ``flag``: one of :data:`FLAGS`; ``bound``: null (the value is exact) or one of
  :data:`BOUNDS` (``'>'``: the true figure is above ``value``);
* ``source_publisher``, ``source_title``, ``source_url``, ``note``; ``origin``: the file and
  line the row came from (``gba_innovation_indicators.csv:3``), or how it was made.

Sources: the shipped ``gba_innovation_indicators.csv`` and the GBA population/GDP table (see
``regions/data/README.md``), users' CSV files in the same layout (:func:`read_indicators`),
the run's records (:func:`computed_indicators`, :func:`city_clusters`), and aggregates of
members (:func:`stclusters.regions._aggregate.aggregate`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from stclusters.contributions import fx_to_weight
from stclusters.errors import InputFormatError
from stclusters.regions._aggregate import (  # noqa: F401 - part of this module's API
    FLAG_ORDER, aggregate, kind_of, read_rates,
)
from stclusters.regions._format import csv_rows, pct_sql, unit_base
from stclusters.regions._located import add_region_contributions
from stclusters.regions.definitions import _DATA, Region
from stclusters.store import fetch_arrow

__all__ = ["SCHEMA", "CITY_CLUSTERS_SCHEMA", "FLAGS", "BOUNDS", "CREDITS", "CREDITS_TEXT",
           "read_indicators", "read_population", "bound_from_note", "computed_indicators",
           "city_clusters", "aggregate", "aggregate_groups", "read_rates", "rows_of_region",
           "label_computed"]

SHIPPED_INDICATORS = _DATA / "gba_innovation_indicators.csv"
SHIPPED_POPULATION = _DATA / "gba_11_cities_population_gdp_employment_1999_2024.csv"

SCHEMA = pa.schema([
    ("region", pa.string()), ("year", pa.int32()), ("indicator", pa.string()),
    ("value", pa.float64()), ("unit", pa.string()), ("flag", pa.string()),
    ("bound", pa.string()), ("source_publisher", pa.string()), ("source_title", pa.string()),
    ("source_url", pa.string()), ("note", pa.string()), ("origin", pa.string())])

CITY_CLUSTERS_SCHEMA = pa.schema([
    ("member", pa.string()), ("source", pa.string()), ("cluster_id", pa.string()),
    ("rank", pa.int64()), ("name", pa.string()), ("weight", pa.float64()),
    ("member_weight", pa.float64()), ("share_pct", pa.float64())])

FLAGS = ("official final", "provisional", "estimate", "secondary-source", "revised", "computed")
BOUNDS = (">", ">=", "<", "<=")

#: Columns a user's indicator CSV must have (the shipped file's); ``bound`` may be added.
CSV_COLUMNS = ("region", "year", "indicator", "value", "unit", "flag", "source_publisher",
               "source_title", "source_url", "note")
#: Columns of ``region --out`` files that a file may also have: ``origin`` (replaced by the
#: file and line read) and ``data_label`` (a labelled row is refused: it is not real data).
#: Any other column is refused (a misspelt ``bound`` must not be dropped in silence).
OUTPUT_COLUMNS = ("bound", "origin", "data_label")
_REQUIRED_TEXT = ("region", "indicator", "unit", "source_publisher")
_INDICATOR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
_YEARS = (1900, 2100)

#: The credits of every regions command (``region``, ``integration``, ``check``), one line
#: each; :data:`CREDITS_TEXT` is the same as one paragraph.
CREDITS = (
    "GBA city statistics: Statistics Bureau of Guangdong Province; Census and Statistics "
    "Department, Hong Kong SAR; Statistics and Census Service, Macao SAR.",
    "Indicator figures: each row's own publisher (column source_publisher).",
    "Places: GeoNames (geonames.org), CC BY 4.0.",
    "Counts: the run's used contributions (stclusters).",
    "Published ranks: WIPO, Global Innovation Index.",
)
CREDITS_TEXT = " ".join(CREDITS)

COMPUTED_PUBLISHER = "stclusters (this run)"
#: ``origin`` of the rows :func:`region_table` computes from a run (then the folder's name).
COMPUTED_ORIGIN = "computed from run "

# ------------------------------------------------------------------ bounds from notes

# Rule (a): the note calls the row's figure a bound in so many words: "lower bound" /
# "upper bound", unless followed by "for", which names another figure ("Upper bound for
# PRD-9: ..." on a province row is about PRD-9, not the row).
_NAMED_BOUND = re.compile(r"\b(lower|upper)\s+bound\b(?!\s+for\b)", re.IGNORECASE)
# Rule (b): a bound word directly before the row's own value ("more than 665,000",
# "EXCEED 3600", "over 57,000"); the same words before another number say nothing of the row.
_LOWER_WORDS = r"exceed(?:s|ed|ing)?|more\s+than|over|above|surpass(?:es|ed|ing)?|topped|超过"
_UPPER_WORDS = r"less\s+than|fewer\s+than|under|below|不到"
_NUMBER = r"([0-9][0-9,\s]*(?:\.[0-9]+)?)"
_AT_LEAST = re.compile(r"\bat\s+least\b|不低于|不少于", re.IGNORECASE)
_AT_MOST = re.compile(r"\bat\s+most\b|\bup\s+to\b|不超过|不高于", re.IGNORECASE)


def _number(text: str) -> float | None:
    try:
        return float(re.sub(r"[,\s]", "", text))
    except ValueError:
        return None


def bound_from_note(note: str | None, value: float) -> str | None:
    """The bound a note states for its row's ``value`` (None: the figure is exact).

    Rule, in order:

    a. the note says ``lower bound`` (→ ``'>'``) or ``upper bound`` (→ ``'<'``), not followed
       by ``for`` (which would name another figure);
    b. a bound word stands directly before the row's own value, thousands separators
       allowed: ``exceed(ed)``, ``more than``, ``over``, ``above``, ``surpassing``, ``topped``,
       ``超过`` → ``'>'``; ``less than``, ``fewer than``, ``under``, ``below``, ``不到`` → ``'<'``.

    The bound is non-strict (``'>='``, ``'<='``) when the note also says ``at least`` /
    ``at most`` (``不低于`` …). A bound word before some other number (another year's
    figure, a sub-total) does not make the row a bound.
    """
    if not note:
        return None
    direction = None
    named = _NAMED_BOUND.search(note)
    if named:
        direction = ">" if named.group(1).lower() == "lower" else "<"
    else:
        for words, sign in ((_LOWER_WORDS, ">"), (_UPPER_WORDS, "<")):
            for m in re.finditer(rf"(?:{words})\s*{_NUMBER}", note, re.IGNORECASE):
                if _number(m.group(1)) == value:
                    direction = sign
                    break
            if direction:
                break
    if direction == ">" and _AT_LEAST.search(note):
        return ">="
    if direction == "<" and _AT_MOST.search(note):
        return "<="
    return direction


# ------------------------------------------------------------------ reading CSV files

def _problem(problems: list[str], line: int, field: str, text: str) -> None:
    problems.append(f"line {line}, field {field}: {text}")


def _parse_row(row: dict[str, str], line: int, origin: str, has_bound: bool,
               problems: list[str]) -> dict[str, Any] | None:
    """One CSV row as a table row, or None (and its problems recorded)."""
    before = len(problems)
    clean = {k: (v or "").strip() for k, v in row.items()}
    for field in _REQUIRED_TEXT:
        if not clean[field]:
            _problem(problems, line, field, "empty")
    if clean["indicator"] and not _INDICATOR_NAME.match(clean["indicator"]):
        _problem(problems, line, "indicator", f"{clean['indicator']!r:.40} is not a name "
                 "(lower-case letters, digits, _)")
    year = None
    try:
        year = int(clean["year"])
        if not _YEARS[0] <= year <= _YEARS[1]:
            _problem(problems, line, "year", f"{year} outside {_YEARS[0]}–{_YEARS[1]}")
    except ValueError:
        _problem(problems, line, "year", f"not an integer ({clean['year']!r:.20})")
    value = None
    try:
        # An empty value is a figure that cannot be had (an aggregate with a member
        # missing, a growth without a previous year): allowed when the note says why.
        if clean["value"] or not clean["note"]:
            value = float(clean["value"])
            if not math.isfinite(value):
                _problem(problems, line, "value", f"not a finite number "
                         f"({clean['value']!r:.20})")
    except ValueError:
        _problem(problems, line, "value", f"not a number ({clean['value']!r:.20}; plain "
                 "digits, '.' for decimals, no thousands separators; empty only with a "
                 "note saying why)")
    if value is not None and value < 0 and clean["indicator"] and \
            kind_of(clean["indicator"], clean["unit"]) in ("sum", "whole"):
        _problem(problems, line, "value", f"{clean['value']!r:.20} is negative (a count, an "
                 "amount or a population is never below 0)")
    flag = clean["flag"].lower()
    if flag not in FLAGS:
        _problem(problems, line, "flag", f"{clean['flag']!r:.30} is not one of "
                 + ", ".join(FLAGS))
    bound = clean.get("bound") or None
    if has_bound and bound is not None and bound not in BOUNDS:
        _problem(problems, line, "bound", f"{bound!r:.10} is not empty or one of "
                 + " ".join(BOUNDS))
    elif bound is not None and value is None:
        _problem(problems, line, "bound", "a bound without a value")
    if len(problems) > before:
        return None
    if not has_bound:
        bound = bound_from_note(clean["note"], value) if value is not None else None
    return {"region": clean["region"], "year": year, "indicator": clean["indicator"],
            "value": value, "unit": clean["unit"], "flag": flag, "bound": bound,
            "source_publisher": clean["source_publisher"],
            "source_title": clean["source_title"] or None,
            "source_url": clean["source_url"] or None, "note": clean["note"] or None,
            "origin": f"{origin}:{line}"}


_HINT = "give a UTF-8 CSV file with the columns of gba_innovation_indicators.csv"


def _csv_rows(path: Path, origin: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and ``(line, row)`` pairs of an indicator CSV (:func:`csv_rows`)."""
    return csv_rows(path, origin, "an indicator CSV", hint=_HINT)


def _cell(value: Any) -> str | None:
    """A Parquet cell as the text a CSV would hold (a float exactly, by ``repr``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parquet_rows(path: Path, origin: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """The columns and ``(row number, row as text)`` pairs of an indicator Parquet file, so
    that it goes through the checks of a CSV (row numbers from 1, shown as lines)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputFormatError(origin, "an indicator Parquet file", str(exc).splitlines()[0],
                               hint=_HINT) from exc
    header = list(table.column_names)
    return header, [(i, {k: _cell(v) for k, v in row.items()})
                    for i, row in enumerate(table.to_pylist(), start=1)]


def _check_header(header: list[str], origin: str) -> None:
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS and c not in OUTPUT_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        detail = "; ".join(filter(None, (
            missing and "missing columns " + ", ".join(missing),
            unknown and "unknown columns " + ", ".join(unknown),
            len(set(header)) != len(header) and "a column given twice")))
        raise InputFormatError(origin, "an indicator table", detail,
                               hint="columns: " + ",".join(CSV_COLUMNS) + " (and bound; "
                                    "origin and data_label of region --out are allowed)")


def _read_csv_file(path: Path, origin: str) -> list[dict[str, Any]]:
    """Every row of one indicator CSV or Parquet file (by its suffix ``.parquet``); every
    problem of the file in one error."""
    parquet = path.suffix.lower() == ".parquet"
    header, rows = (_parquet_rows if parquet else _csv_rows)(path, origin)
    _check_header(header, origin)
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for line, row in rows:
        if None in row or any(v is None for v in row.values()):
            _problem(problems, line, "(row)", f"{len(header)} fields expected")
            continue
        if (row.get("data_label") or "").strip():
            _problem(problems, line, "data_label", f"labelled {row['data_label'].strip()!r:.20}"
                     ": not real data (remove the row)")
            continue
        parsed = _parse_row(row, line, origin, "bound" in header, problems)
        if parsed is None:
            continue
        key = (parsed["region"], parsed["year"], parsed["indicator"], parsed["unit"])
        if key in seen:
            _problem(problems, line, "(row)", f"same region, year, indicator and unit as "
                     f"line {seen[key]} (one row per figure; a new vintage goes in a later file)")
            continue
        seen[key] = line
        out.append(parsed)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        kind = "an indicator Parquet file" if parquet else "an indicator CSV"
        raise InputFormatError(origin, kind, f"{len(problems)} bad row(s): " + shown,
                               hint="fix the rows named (docs/regions.md#indicators)")
    return out


# ------------------------------------------------------------------ the population table

_POP_COLUMNS = (  # column → (indicator, unit template, note)
    ("population_10k", "population", "10k persons", "year-end resident population"),
    ("gdp_100m_local_currency", "gdp", "{cur} 100 million", "GDP at current prices, local "
                                                            "currency"),
    ("gdp_per_capita_local_currency", "gdp_per_capita", "{cur} per person",
     "GDP per capita at current prices, local currency"),
    ("employed_persons_10k", "employed_persons", "10k persons", "employed persons"),
)
_POP_FLAGS = {"": "official final", "r": "revised", "p": "provisional"}
_POP_CITY = {  # city_en → (region member name, currency, publisher)
    "Hong Kong SAR": ("Hong Kong", "HKD", "Census and Statistics Department, Hong Kong SAR"),
    "Macao SAR": ("Macao", "MOP", "Statistics and Census Service, Macao SAR"),
}
_MAINLAND = ("CNY", "Statistics Bureau of Guangdong Province")
_POP_TITLE = ("Greater Bay Area 11 cities: population, GDP and employment, 1999–2024 "
              "(compiled table)")


def _pop_unit(template: str, cur: str) -> str:
    # The mainland GDP unit is written as rd_expenditure's, so their ratio needs no rates.
    if template == "{cur} 100 million" and cur == "CNY":
        return "CNY 100 million (亿元)"
    return template.format(cur=cur)


def read_population(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The GBA population/GDP/employment table as indicator rows (:data:`SCHEMA` dicts).

    ``population`` and ``employed_persons`` in 10k persons, ``gdp`` in 100 million of local
    currency (CNY, HKD, MOP), ``gdp_per_capita`` in local currency per person; flags ``r`` →
    revised, ``p`` → provisional, none → official final; publisher: the statistics office
    of the city. An empty cell is a figure not published (no row); a bad cell is an error.
    """
    path = Path(path) if path else SHIPPED_POPULATION
    origin = path.name if path == SHIPPED_POPULATION else str(path)
    header, rows = _csv_rows(path, origin)
    need = ["year", "city_en"] + [c for c, *_ in _POP_COLUMNS] + [f"{c}_flag"
                                                                  for c, *_ in _POP_COLUMNS]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputFormatError(origin, "the GBA population table", "missing columns "
                               + ", ".join(missing))
    out, problems = [], []
    for line, row in rows:
        city = (row.get("city_en") or "").strip()
        member, cur, publisher = _POP_CITY.get(city, (city, *_MAINLAND))
        for col, indicator, unit, note in _POP_COLUMNS:
            text, flag = (row.get(col) or "").strip(), (row.get(f"{col}_flag") or "").strip()
            if not text:
                continue
            value = _number(text)
            if value is None or flag not in _POP_FLAGS or not (row.get("year") or "").isdigit():
                _problem(problems, line, col, f"value {text!r:.20}, flag {flag!r:.5}, year "
                         f"{row.get('year')!r:.8}")
                continue
            out.append({"region": member, "year": int(row["year"]), "indicator": indicator,
                        "value": value, "unit": _pop_unit(unit, cur), "flag": _POP_FLAGS[flag],
                        "bound": None, "source_publisher": publisher,
                        "source_title": _POP_TITLE, "source_url": None, "note": note,
                        "origin": f"{origin}:{line}"})
    if problems:
        raise InputFormatError(origin, "the GBA population table", "; ".join(problems[:5]))
    return out


# ------------------------------------------------------------------ the table

def _replace(rows: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Add ``new`` to ``rows``; a row of ``new`` replaces the earlier row with the same
    (region, year, indicator, unit) and says so in its note (a new vintage)."""
    index = {(r["region"], r["year"], r["indicator"], r["unit"]): i for i, r in enumerate(rows)}
    for row in new:
        key = (row["region"], row["year"], row["indicator"], row["unit"])
        if key in index:
            old = rows[index[key]]
            if _same_figure(old, row):  # read back from region --out: nothing replaced
                continue
            said = (f"replaces {old['origin']} (value {_plain(old['value'])}, flag {old['flag']}"
                    + (f", bound {old['bound']}" if old["bound"] else "") + ")")
            row = {**row, "note": f"{row['note']} [{said}]" if row["note"] else f"[{said}]"}
            rows[index[key]] = row
        else:
            index[key] = len(rows)
            rows.append(row)


def _plain(value: float | None) -> str:
    """A value as data text in a note: ``3600``, ``3658.2`` (no separators); ``none``."""
    return "none" if value is None else f"{value:.15g}"


def _same_figure(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """``new`` says what ``old`` says (every column but ``origin``): the earlier row, with
    its origin, is kept (a table written by ``region --out`` read back changes nothing)."""
    return all(old[k] == new[k] for k in SCHEMA.names if k != "origin")


def to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows (dicts with :data:`SCHEMA`'s keys) as a table sorted by region, indicator, year,
    unit (so that the same figures give the same bytes)."""
    ordered = sorted(rows, key=lambda r: (r["region"], r["indicator"], r["year"], r["unit"]))
    return pa.Table.from_pylist(list(ordered), schema=SCHEMA)


def read_indicators(paths: Iterable[str | Path] = (), *, shipped: bool = True,
                    population: bool = True) -> pa.Table:
    """The indicator table: the shipped figures, then users' files, in order.

    Parameters
    ----------
    paths : iterable of path
        Users' indicator files, CSV or Parquet (by the suffix ``.parquet``): the columns
        of ``gba_innovation_indicators.csv`` (see :data:`CSV_COLUMNS`) and, optionally,
        ``bound``, ``origin`` and ``data_label`` (the columns of ``region --out``; the
        origin read is the file and line; a labelled row is refused). Any other column is
        refused. Without a ``bound`` column the bound is read from the note
        (:func:`bound_from_note`). An empty value is allowed where the note says why.
    shipped : bool, keyword-only
        Start from the shipped GBA figures (``gba_innovation_indicators.csv``).
    population : bool, keyword-only
        With ``shipped``: also the GBA population/GDP table (:func:`read_population`).

    Returns
    -------
    pyarrow.Table
        :data:`SCHEMA`. A later file's row for the same (region, year, indicator, unit)
        replaces the earlier one, and its note says which row it replaced; a row equal to
        the earlier one in every column but ``origin`` leaves it as it was.

    Raises
    ------
    InputFormatError
        A file that cannot be read, lacks a column, or has bad rows: one line naming the
        file and, for each bad row (up to five), its line and field.
    """
    rows: list[dict[str, Any]] = []
    if shipped and population:
        _replace(rows, read_population())
    if shipped:
        _replace(rows, _read_csv_file(SHIPPED_INDICATORS, SHIPPED_INDICATORS.name))
    for path in paths:
        _replace(rows, _read_csv_file(Path(path), str(path)))
    return to_table(rows)


#: Context rows shown with a shipped region file's regions: figures about a wider area
#: (never added to members' figures).
SHIPPED_CONTEXT: dict[tuple[str, str], tuple[str, ...]] = {
    ("gba.yaml", "GBA"): ("Guangdong (province)",),
    ("gba.yaml", "PRD-9"): ("Guangdong (province)",)}


def rows_of_region(table: pa.Table, region: Region, *,
                   context: Sequence[str] | None = None) -> pa.Table:
    """The rows about ``region``: its counted members, itself, its groups within it, and its
    context rows (``context``; default for the shipped GBA and PRD-9: ``Guangdong
    (province)``).
    Rows of the file's other members (Hong Kong for ``PRD-9``) are left out."""
    names = set(region.member_names)
    units = names | {region.id} | {g for g, ms in region.groups.items() if set(ms) <= names}
    if context is None:
        context = SHIPPED_CONTEXT.get((region.source, region.id), ())
    units |= set(context)
    keep = pc.is_in(table.column("region"), pa.array(sorted(units), pa.string()))
    return table.filter(keep)


# ------------------------------------------------------------------ computed from records

_RULE_FRACTIONAL = ("fractional count: a document counts 1, shared equally among its "
                    "located contributors (and a contributor's addresses); the sum of the "
                    "shares of the run's used contributions placed in the region")
_RULE_WHOLE = ("whole count: documents with at least one used contributor placed in the "
               "region, each counted once")


def _units(region: Region) -> pa.Table:
    """``(unit, pos, member)``: each member alone, the region, and each group whose members
    the region counts (group totals come from the records, never from members' sums)."""
    names = region.member_names
    units: list[tuple[str, tuple[str, ...]]] = [(n, (n,)) for n in names]
    units.append((region.id, names))
    units += [(g, ms) for g, ms in region.groups.items()
              if set(ms) <= set(names) and tuple(ms) != names]
    first: dict[str, tuple[str, ...]] = {}
    for unit, ms in units:  # a name is one unit (a one-city region named as its city)
        first.setdefault(unit, ms)
    units = list(first.items())
    rows = [(u, pos, m) for pos, (u, ms) in enumerate(units) for m in ms]
    return pa.table({"unit": [r[0] for r in rows], "pos": [r[1] for r in rows],
                     "member": [r[2] for r in rows]})


def _population_table(rows: pa.Table | None) -> pa.Table:
    """``(region, year, persons)`` from the ``population`` rows (any unit of persons).

    Raises
    ------
    ParameterError
        A region's population of one year given in two units (``10k persons`` and
        ``persons``): which one is meant is not ours to pick, and adding them would count
        the residents twice.
    """
    from stclusters.errors import ParameterError  # noqa: PLC0415

    pop = rows if rows is not None else to_table(read_population())
    pop = pop.filter(pc.equal(pop.column("indicator"), "population")).to_pylist()
    kept, where = [], {}
    for r in pop:
        base, scale = unit_base(r["unit"])
        if r["value"] is None or base != "persons":
            continue
        key = (r["region"], r["year"])
        if key in where:
            raise ParameterError(
                f"population of {key[0]} {key[1]} given twice ({where[key]}; {r['origin']} "
                f"in {r['unit']}): per-capita figures need one", hint="keep one of the two "
                "rows (a new vintage in the same unit replaces the old one)")
        where[key] = f"{r['origin']} in {r['unit']}"
        kept.append((r["region"], r["year"], r["value"] * scale))
    return pa.table({"region": pa.array([k[0] for k in kept], pa.string()),
                     "year": pa.array([k[1] for k in kept], pa.int32()),
                     "persons": pa.array([k[2] for k in kept], pa.float64())})


_COMPUTED_SQL = """
WITH world AS (
    SELECT source, year, sum(weight_fx) AS fx, count(DISTINCT doc_id) AS docs
    FROM region_contributions GROUP BY ALL),
cnt AS (
    SELECT u.unit, rc.source, rc.year, sum(rc.weight_fx) AS fx,
           count(DISTINCT rc.doc_id) AS docs
    FROM region_contributions rc JOIN _ind_units u ON u.member = rc.member GROUP BY ALL),
grid AS (
    SELECT u.unit, u.pos, w.source, w.year, w.fx AS world_fx, w.docs AS world_docs,
           coalesce(c.fx, 0) AS fx, coalesce(c.docs, 0) AS docs
    FROM (SELECT DISTINCT unit, pos FROM _ind_units) u CROSS JOIN world w
    LEFT JOIN cnt c ON c.unit = u.unit AND c.source = w.source AND c.year = w.year),
pop AS (  -- population (persons) of a unit: every member's figure of that year, summed
    SELECT u.unit, y.year,
           sum(p.persons) AS persons,
           string_agg(CASE WHEN p.persons IS NULL THEN u.member END, ', '
                      ORDER BY u.member) AS missing,
           -- a member's population not above 0 voids the unit's per-capita figure
           string_agg(CASE WHEN NOT p.persons > 0 THEN u.member END, ', '
                      ORDER BY u.member) AS not_positive
    FROM _ind_units u CROSS JOIN (SELECT DISTINCT year FROM world) y
    LEFT JOIN _ind_pop p ON p.region = u.member AND p.year = y.year
    GROUP BY ALL),
metrics AS (
    SELECT g.unit, g.pos, g.source, g.year,
           {frac} AS frac, CAST(g.docs AS DOUBLE) AS whole,
           100.0 * CAST(g.fx AS DOUBLE) / CAST(g.world_fx AS DOUBLE) AS share_frac,
           100.0 * g.docs / g.world_docs AS share_whole,
           CASE WHEN prev.fx > 0 THEN 100.0 * (CAST(g.fx AS DOUBLE) / CAST(prev.fx AS DOUBLE)
                                              - 1) END AS growth_frac,
           CASE WHEN prev.docs > 0 THEN 100.0 * (g.docs / prev.docs - 1) END AS growth_whole,
           prev.year IS NOT NULL AS has_prev,
           CASE WHEN p.missing IS NULL AND p.not_positive IS NULL
                THEN 1e6 * {frac} / p.persons END AS pc_frac,
           CASE WHEN p.missing IS NULL AND p.not_positive IS NULL
                THEN 1e6 * g.docs / p.persons END AS pc_whole,
           CASE WHEN p.missing IS NULL THEN p.not_positive END AS pop_zero,
           p.missing AS pop_missing
    FROM grid g
    LEFT JOIN grid prev ON prev.unit = g.unit AND prev.source = g.source
                       AND prev.year = g.year - 1
    LEFT JOIN pop p ON p.unit = g.unit AND p.year = g.year)
SELECT unit, pos, source, year, frac, whole, share_frac, share_whole, growth_frac,
       growth_whole, has_prev, pc_frac, pc_whole, pop_missing, pop_zero
FROM metrics ORDER BY pos, source, year
"""

# (indicator suffix, column, unit, note) of each computed metric.
_METRICS = (
    ("fractional_count", "frac", "documents (fractional count)", _RULE_FRACTIONAL),
    ("whole_count", "whole", "documents (whole count)", _RULE_WHOLE),
    ("world_share_fractional", "share_frac", "% of world (fractional count)",
     "share of the run's world total for this source and year; " + _RULE_FRACTIONAL),
    ("world_share_whole", "share_whole", "% of world (whole count)",
     "share of the run's documents with a used contributor, this source and year; "
     + _RULE_WHOLE),
    ("growth_fractional", "growth_frac", "% vs previous year",
     "change of the fractional count on the previous year"),
    ("growth_whole", "growth_whole", "% vs previous year",
     "change of the whole count on the previous year"),
    ("per_million_fractional", "pc_frac", "per million inhabitants",
     "fractional count per million year-end residents (GBA population table, summed over "
     "members)"),
    ("per_million_whole", "pc_whole", "per million inhabitants",
     "whole count per million year-end residents (GBA population table, summed over members)"),
)


def _metric_note(suffix: str, col: str, base: str, r: dict[str, Any]) -> str:
    """The counting rule, and why the value is null where it is."""
    if suffix.startswith("growth") and r[col] is None:
        return base + ("; previous year has a zero count" if r["has_prev"]
                       else f"; no records for {r['year'] - 1} in the run")
    if suffix.startswith("per_million") and r["pop_missing"]:
        return base + f"; population of {r['year']} missing for: {r['pop_missing']}"
    if suffix.startswith("per_million") and r["pop_zero"]:
        return base + (f"; population of {r['year']} is not above 0 for: {r['pop_zero']}: "
                       "no figure")
    return base


def computed_indicators(con: duckdb.DuckDBPyConnection, region: Region, *,
                        population: pa.Table | None = None, placed: bool = False,
                        origin: str = "run") -> pa.Table:
    """Counts of a run's records by member, region and group, year and source.

    Per (unit, source, year) with records: ``<source>_fractional_count`` (sum of weights,
    exact: summed in fixed point), ``<source>_whole_count`` (documents with at least one used
    contributor in the unit), ``<source>_world_share_fractional`` / ``_whole`` (% of the
    run's world total of that source and year), ``<source>_growth_fractional`` / ``_whole``
    (% on the previous year; null where that year has no records or a zero count),
    ``<source>_per_million_fractional`` / ``_whole`` (per million year-end residents; null
    where a member's population of that year is missing, named in the note). Flag
    ``computed``, publisher :data:`COMPUTED_PUBLISHER`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A ranking's connection (its ``contributions`` table), e.g. ``RankResult.con`` or
        :func:`stclusters._run_folder.open_run`.
    region : Region
        Units: each counted member, the region, and its groups within it.
    population : pyarrow.Table, optional, keyword-only
        Indicator rows with ``population`` (any unit of persons; other rows are ignored),
        e.g. :func:`read_indicators` with users' files; default the shipped GBA table. A
        region's population of one year in two units is refused (``ParameterError``); a
        population of 0 gives no per-capita figure (null, the note says why).
    placed : bool, keyword-only
        ``region_contributions`` of this region is already in ``con``.
    origin : str, keyword-only
        Written in each row's ``origin`` (the run folder).

    Returns
    -------
    pyarrow.Table
        :data:`SCHEMA`.
    """
    if not placed:
        add_region_contributions(con, region)
    con.register("_ind_units", _units(region))
    con.register("_ind_pop", _population_table(population))
    try:
        res = fetch_arrow(con, _COMPUTED_SQL.format(frac=fx_to_weight("g.fx")))
    finally:
        con.unregister("_ind_units")
        con.unregister("_ind_pop")
    rows = []
    for r in res.to_pylist():  # one row per unit, source and year: few, and made tidy here
        for suffix, col, unit, note in _METRICS:
            rows.append({"region": r["unit"], "year": r["year"],
                         "indicator": f"{r['source']}_{suffix}", "value": r[col],
                         "unit": unit, "flag": "computed", "bound": None,
                         "source_publisher": COMPUTED_PUBLISHER,
                         "source_title": f"records of the run, placed in region {region.id}",
                         "source_url": None, "note": _metric_note(suffix, col, note, r),
                         "origin": origin})
    return to_table(rows)


_CLUSTERS_SQL = """
WITH w AS (
    SELECT rc.member, rc.source, k.cluster_id, k.rank, k.name, sum(rc.weight_fx) AS fx
    FROM region_contributions rc
    LEFT JOIN points p ON p.source = rc.source AND p.lat = rc.lat AND p.lon = rc.lon
    LEFT JOIN clusters k ON k.stc = p.stc
    WHERE rc.member IS NOT NULL
    GROUP BY ALL),
tot AS (SELECT member, source, sum(fx) AS fx FROM w GROUP BY ALL),
best AS (
    SELECT member, source, cluster_id, rank, name, fx,
           row_number() OVER (PARTITION BY member, source
                              ORDER BY fx DESC, rank, cluster_id) AS k
    FROM w WHERE cluster_id IS NOT NULL)
SELECT t.member, t.source, b.cluster_id, b.rank, b.name,
       {best} AS weight, {tot} AS member_weight,
       {share} AS share_pct
FROM tot t JOIN _ind_units u ON u.member = t.member AND u.unit = t.member
LEFT JOIN best b ON b.member = t.member AND b.source = t.source AND b.k = 1
ORDER BY u.pos, t.source
"""


def city_clusters(con: duckdb.DuckDBPyConnection, region: Region, *,
                  placed: bool = False) -> pa.Table:
    """The S&T cluster each member falls in, per source: the run's cluster holding most of
    the member's weight over the run's years (ties: better rank, then cluster id).

    Returns
    -------
    pyarrow.Table
        :data:`CITY_CLUSTERS_SCHEMA`: ``weight`` the member's weight in that cluster,
        ``member_weight`` its whole weight (documents, fractional), ``share_pct`` the first
        over the second. A member with records but in no cluster has a null cluster.
    """
    if not placed:
        add_region_contributions(con, region)
    con.register("_ind_units", _units(region))
    try:
        res = fetch_arrow(con, _CLUSTERS_SQL.format(best=fx_to_weight("b.fx"),
                                                     tot=fx_to_weight("t.fx"),
                                                     share=pct_sql("b.fx", "t.fx")))
    finally:
        con.unregister("_ind_units")
    return res.cast(CITY_CLUSTERS_SCHEMA)


# ------------------------------------------------------------------ one region's view

#: Indicators of the population/GDP table (many rows: shown by the command when asked for).
POPULATION_INDICATORS = tuple(ind for _, ind, _, _ in _POP_COLUMNS)


def _groups_within(region: Region) -> list[tuple[str, tuple[str, ...]]]:
    """``(name, members)`` of the region itself and of each group of it within its members
    (once per name: ``PRD-9`` loaded alone is both)."""
    names = set(region.member_names)
    units = {region.id: tuple(region.member_names)}
    for group, members in region.groups.items():
        if set(members) <= names:
            units.setdefault(group, tuple(members))
    return [(g, ms) for g, ms in units.items() if len(ms) > 1]


def aggregate_groups(table: pa.Table, region: Region, *, rates: pa.Table | None = None,
                     currency: str | None = None) -> pa.Table:
    """The region's and its groups' figures added up from their members' rows of
    ``table`` (:func:`aggregate`, every indicator; a figure that cannot be had is a row with
    a null value and the reason). Rows computed from a run are left out: a group's counts
    come from the records, never from its members' sums."""
    curated = table.filter(pc.invert(pc.starts_with(table.column("origin"), COMPUTED_ORIGIN)))
    rows: list[dict[str, Any]] = []
    for group, members in _groups_within(region):
        rows += aggregate(curated, into=group, members=members, rates=rates,
                          currency=currency).to_pylist()
    return to_table(rows)


def region_table(region: Region, *, files: Sequence[str | Path] = (),
                 years: Sequence[int] = (), indicators: Sequence[str] = (),
                 run: str | Path | None = None, aggregated: bool = False,
                 rates: str | Path | None = None, currency: str | None = None,
                 ) -> tuple[pa.Table, pa.Table | None, str | None]:
    """``(indicator rows, city_clusters or None, the run's data label or None)`` of one
    region: the shipped and users' rows about it (:func:`rows_of_region`), and with ``run``
    (a run folder) the indicators computed from its records and each city's cluster.

    ``years`` and ``indicators`` keep only those (empty: all). With ``aggregated``, the
    region's and its groups' figures added up from their members' (:func:`aggregate_groups`,
    origin ``aggregate(<group>)``), amounts converted into ``currency`` with the rate file
    ``rates`` (:func:`read_rates`) when given.

    Raises
    ------
    ParameterError
        An indicator asked for that no row has (the hint lists those that exist);
        ``currency`` without ``rates`` or ``rates`` without ``aggregated``.
    """
    from stclusters._run_folder import open_run  # noqa: PLC0415
    from stclusters.errors import ParameterError  # noqa: PLC0415

    if (rates is not None or currency is not None) and not aggregated:
        raise ParameterError("--rates and --currency convert aggregated amounts",
                             hint="add --aggregate")
    rate_table = read_rates(rates) if rates is not None else None
    everything = read_indicators(files)
    table = rows_of_region(everything, region)
    if aggregated:
        added = aggregate_groups(table, region, rates=rate_table, currency=currency)
        table = to_table(table.to_pylist() + added.to_pylist())
    clusters, label = None, None
    if run is not None:
        con, _manifest, label = open_run(run, need=("contributions", "points", "clusters"))
        try:
            add_region_contributions(con, region)
            computed = computed_indicators(con, region, placed=True, population=everything,
                                           origin=f"{COMPUTED_ORIGIN}{Path(run).resolve().name}")
            clusters = city_clusters(con, region, placed=True)
        finally:
            con.close()
        table = to_table(table.to_pylist() + computed.to_pylist())
    if indicators:
        have = set(table.column("indicator").to_pylist())
        unknown = [i for i in indicators if i not in have]
        if unknown:
            raise ParameterError(f"no row for indicator {', '.join(unknown)} in region "
                                 f"{region.id}", hint="indicators: " + ", ".join(sorted(have)))
        table = table.filter(pc.is_in(table.column("indicator"),
                                      pa.array(list(indicators), pa.string())))
    if years:
        table = table.filter(pc.is_in(table.column("year"), pa.array(list(years), pa.int32())))
    return table, clusters, label


def label_computed(table: pa.Table, label: str | None) -> pa.Table:
    """``table`` with a leading ``data_label`` column when the run is labelled (SYNTHETIC
    …): the label on the rows computed from the run (origin :data:`COMPUTED_ORIGIN`), null
    on the curated and users' rows, which are not the run's. Unchanged without a label."""
    if not label:
        return table
    computed = [(o or "").startswith(COMPUTED_ORIGIN) for o in table.column("origin").to_pylist()]
    return table.add_column(0, "data_label", pa.array(
        [label if c else None for c in computed], pa.string()))
