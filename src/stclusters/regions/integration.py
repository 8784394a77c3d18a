"""How integrated Hong Kong and Macao are with the mainland, and who works with whom inside
a region: shares of documents made with a co-contributor on the other side, and
collaboration matrices between a region's members (or regions, or ranked clusters).

Only the run's **used** contributions count (``status = 'used'``: in their metric's window,
located at a precision that clusters), with the run's fractional weights (methodology §2).
Counting is at the level of contributions (a contributor at one address): an author with a
Hong Kong and a Shenzhen affiliation makes the document a Hong Kong–mainland document.

**Shares** (:func:`integration_shares`), per side pair (focal *F*, partner *P*), metric and
year. A document is *F*'s when one of its used contributions is in *F*; it is made *with P*
when one of its used contributions is in *P* and not in *F* (so "Shenzhen with CN" means
with mainland contributors outside Shenzhen).

* whole: ``share_pct = 100 · n_docs_with_partner / n_docs``: *F*'s documents made with *P*
  over *F*'s documents.
* fractional: ``share_pct = 100 · weight_with_partner / weight``: *F*'s fractional weight
  (the sum of its contributions' weights) on documents made with *P*, over *F*'s weight.

A side is a member (``Hong Kong``), a group of the region (``PRD-9``, ``HK-MO``) or an
economy (ISO-2 ``CN``: any used contribution located in mainland China, in the region or
not).

**Matrix** (:func:`collaboration_matrix`) over units *i, j* (the region's members, plus
``(other)``: used contributions in no unit), per metric:

* whole (full counting): off the diagonal, the documents with used contributions in both
  *i* and *j*; on the diagonal, the documents whose used contributions are all in *i*
  (*i* alone). Every document touching a unit is counted, on the diagonal or in each pair
  of units it touches.
* fractional (the normalised co-occurrence of Batagelj & Cerinšek 2013, *On bibliographic
  networks*, Scientometrics 96: 845–864): document *d* adds ``w_i(d) · w_j(d) / W(d)`` to
  cell *(i, j)*, diagonal included, where ``w_i(d)`` is the weight of *d*'s used
  contributions in *i* and ``W(d)`` that of all its used contributions (1 under the
  default counting). Each row then sums, over every unit and ``(other)``, to the unit's
  fractional count; a document adds its weight ``W(d)`` to the whole matrix.

The ``(other, other)`` cell is left out (documents touching no unit are not counted).
Sums are exact: fixed-point integers (``weight_fx``), one rounding per document and cell.
See ``docs/integration.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from stclusters._sql import literal
from stclusters.contributions import fx_to_weight
from stclusters.errors import ParameterError
from stclusters.regions._format import pct_sql
from stclusters.regions._integration_units import (PLACED_TABLE, UNITS_TABLE, Units,
                                                   build_units, placed_contributions)
from stclusters.store import fetch_arrow
from stclusters.regions.definitions import Region

__all__ = ["COUNTINGS", "CREDITS", "MAINLAND", "OTHER", "SHARES_SCHEMA", "Side", "YearFilter",
           "Years", "collaboration_matrix", "default_sides", "integration_figure",
           "integration_shares", "matrix_schema", "matrix_years", "resolve_side",
           "year_filter"]

#: Counting rules, as written in the ``counting`` columns.
COUNTINGS: tuple[str, ...] = ("whole", "fractional")
#: The mainland's economy code (ISO 3166-1 alpha-2).
MAINLAND = "CN"
#: The matrix unit of used contributions outside every unit.
OTHER = "(other)"
#: Credits shown with every figure.
CREDITS = ("Places: GeoNames (geonames.org), CC BY 4.0. Counts: the run's used contributions "
           "(stclusters).")

SHARES_SCHEMA = pa.schema([
    ("region", pa.string()), ("focal", pa.string()), ("partner", pa.string()),
    ("source", pa.string()), ("year", pa.int32()), ("counting", pa.string()),
    ("n_docs", pa.int64()), ("n_docs_with_partner", pa.int64()),
    ("weight", pa.float64()), ("weight_with_partner", pa.float64()),
    ("share_pct", pa.float64())])


def matrix_schema(counting: str) -> pa.Schema:
    """Columns of :func:`collaboration_matrix`: the value is ``n_docs`` (whole, documents)
    or ``weight`` (fractional, documents' fractional weight)."""
    value = ("n_docs", pa.int64()) if counting == "whole" else ("weight", pa.float64())
    return pa.schema([("source", pa.string()), ("counting", pa.string()),
                      ("a", pa.string()), ("b", pa.string()), value])


@dataclass(frozen=True)
class Side:
    """One side of a share: region members, or an economy (``CN``)."""

    label: str
    kind: str  # 'member', 'group' or 'economy'
    members: tuple[str, ...] = ()
    economy: str | None = None


def _catalog(region: Region) -> dict[str, Side]:
    """Every side a name can mean in ``region``: members, groups, and the default groups of
    members outside and inside the mainland when the file names none."""
    counted = set(region.member_names)
    sides = {m: Side(m, "member", (m,)) for m in region.member_names}
    for g, names in region.groups.items():
        sides.setdefault(g, Side(g, "group", tuple(n for n in names if n in counted)))
    outside, mainland = _split_by_economy(region)
    for names, fallback in ((outside, "-".join(sorted({region.economy_of(n) for n in outside}))),
                            (mainland, f"{region.id} mainland")):
        if len(names) > 1 and _group_of(region, names) is None:
            sides.setdefault(fallback, Side(fallback, "group", names))
    return sides


def _split_by_economy(region: Region) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(members outside the mainland, members in it), in file order."""
    outside = tuple(n for n in region.member_names
                    if region.economy_of(n) not in (None, MAINLAND))
    mainland = tuple(n for n in region.member_names if region.economy_of(n) == MAINLAND)
    return outside, mainland


def _group_of(region: Region, names: tuple[str, ...]) -> str | None:
    for g, listed in region.groups.items():
        if set(listed) == set(names):
            return g
    return None


def resolve_side(region: Region, name: str) -> Side:
    """A side by name: a member, a group (of the file, or the default outside/mainland
    group), or an ISO-2 economy code (``CN``).

    Raises
    ------
    ParameterError
        A name that is none of these (the message lists the choices).
    """
    sides = _catalog(region)
    if name in sides:
        return sides[name]
    if len(name) == 2 and name.isalpha() and name.isupper():
        return Side(name, "economy", economy=name)
    raise ParameterError(f"region {region.id}: no member, group or economy {name!r}",
                         hint="choose from " + ", ".join(sides) + ", or an ISO-2 code (CN)")


def default_sides(region: Region) -> tuple[tuple[str, str], ...]:
    """The pairs (focal, partner) of the integration question for ``region``.

    Each member outside the mainland (Hong Kong, Macao) and their group (HK-MO) with the
    mainland (``CN``: anywhere) and with the region's mainland members (PRD-9); each
    mainland member and their group with the outside group and with each outside member.

    Raises
    ------
    ParameterError
        A region without members both outside and inside the mainland.
    """
    outside, mainland = _split_by_economy(region)
    if not outside or not mainland:
        raise ParameterError(
            f"region {region.id}: no default sides (it needs members in mainland China and "
            "members outside it, each with an economy)",
            hint="give sides=[(focal, partner), ...] of members, groups or ISO-2 codes")
    cat = _catalog(region)

    def group(names: tuple[str, ...]) -> str:
        if len(names) == 1:
            return names[0]
        return next(label for label, s in cat.items()
                    if s.kind == "group" and set(s.members) == set(names))

    out_g, main_g = group(outside), group(mainland)
    pairs: list[tuple[str, str]] = []
    for focal in dict.fromkeys((*outside, out_g)):
        pairs += [(focal, MAINLAND), (focal, main_g)]
    for focal in dict.fromkeys((*mainland, main_g)):
        pairs += [(focal, p) for p in dict.fromkeys((out_g, *outside))]
    return tuple(dict.fromkeys(pairs))


@dataclass(frozen=True)
class YearFilter:
    """The documents' years kept: ``first``..``last`` (inclusive, ``None`` open) and, when
    years were listed one by one, only those (``only``, sorted)."""

    first: int | None = None
    last: int | None = None
    only: tuple[int, ...] | None = None

    def params(self) -> list[Any]:
        """Bind values of :data:`_YEAR_SQL` (in order)."""
        return [self.first, self.first, self.last, self.last, self.only is None,
                list(self.only or ())]

    def label(self) -> str | None:
        """``2021``, ``2019–2021``, ``2019–``, ``2019, 2021–2022``; None for every year."""
        if self.only is not None:
            runs: list[list[int]] = []
            for y in self.only:
                if runs and y == runs[-1][-1] + 1:
                    runs[-1].append(y)
                else:
                    runs.append([y])
            return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)
        if self.first is None and self.last is None:
            return None
        if self.first == self.last:
            return str(self.first)
        ends = ("" if y is None else str(y) for y in (self.first, self.last))
        return "–".join(ends)

    def as_json(self) -> dict[str, Any] | None:
        """``{"first", "last", "only"}``, or None for every year."""
        if self == YearFilter():
            return None
        return {"first": self.first, "last": self.last,
                "only": None if self.only is None else list(self.only)}


#: What a ``years`` argument may be: a year, ``"FIRST-LAST"`` text, a ``(first, last)``
#: tuple (``None`` ends open), a list/set of years (ints or ``YEAR``/``FIRST-LAST`` texts), or
#: a :class:`YearFilter` already read.
Years = int | str | tuple[int | None, int | None] | Iterable[int | str] | YearFilter | None


#: The SQL condition of a :class:`YearFilter` on a ``year`` column (bind ``params()``).
_YEAR_SQL = ("(? IS NULL OR year >= ?) AND (? IS NULL OR year <= ?) "
             "AND (? OR list_contains(?::INTEGER[], year))")


def _year_span(item: Any) -> tuple[int | None, int | None]:
    """One year, ``FIRST-LAST`` text or a (first, last) pair → (first, last), checked."""
    from stclusters.cli_options import parse_years  # noqa: PLC0415

    if isinstance(item, bool) or not isinstance(item, int | str | tuple):
        raise ParameterError(f"years {item!r}: not a year, a FIRST-LAST text or a pair",
                             hint="e.g. 2021, '2019-2021', (2019, 2021) or [2019, 2021]")
    if isinstance(item, int):
        return item, item
    if isinstance(item, str):
        try:
            first, last = parse_years(item)
        except ValueError:
            raise ParameterError(f"year {item!r}: expected YEAR or FIRST-LAST",
                                 hint="e.g. --year 2021, --year 2019-2021, or --year 2019 "
                                      "--year 2021") from None
    else:
        first, last = item
    if first is not None and last is not None and first > last:
        raise ParameterError(f"years {first}-{last}: the first year is after the last",
                             hint="give FIRST-LAST with FIRST <= LAST")
    return first, last


def year_filter(years: Years) -> YearFilter:
    """The one reading of a ``years`` argument (API and ``--year``, repeatable).

    Parameters
    ----------
    years : int, str, (first, last), list or set of those, YearFilter, or None
        ``2021``; ``"2019-2021"`` (also ``"2019-"``, ``"-2021"``); ``(2019, 2021)``
        (``None`` ends open); a list or set of years or closed ``FIRST-LAST`` texts (the
        repeated ``--year`` of ``region`` and ``integration``: those years only); None:
        every year.

    Returns
    -------
    YearFilter

    Raises
    ------
    ParameterError
        Text that is no year or range, a first year after the last, or an open range
        among several.
    """
    if years is None:
        return YearFilter()
    if isinstance(years, YearFilter):
        return years
    if isinstance(years, int | str) or (isinstance(years, tuple) and len(years) == 2
                                       and all(y is None or isinstance(y, int)
                                               and not isinstance(y, bool) for y in years)):
        first, last = _year_span(years)
        return YearFilter(first, last)
    items = list(years)
    if not items:
        return YearFilter()
    if len(items) == 1:
        return YearFilter(*_year_span(items[0]))
    listed: set[int] = set()
    for item in items:
        first, last = _year_span(item)
        if first is None or last is None:
            raise ParameterError(f"years {item!r}: an open range among several years",
                                 hint="give closed ranges (2019-2021) when repeating --year")
        listed.update(range(first, last + 1))
    only = tuple(sorted(listed))
    return YearFilter(only[0], only[-1], only)


def integration_shares(con: duckdb.DuckDBPyConnection, region: Region, *,
                       sides: Sequence[tuple[str, str]] | None = None,
                       years: Years = None,
                       geocoder: Any = None) -> pa.Table:
    """Shares of each focal side's documents made with a partner, per metric and year.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A ranking's connection (``RankResult.con``, or :func:`stclusters._run_folder.open_run`)
        reaching its ``contributions``. Temp tables ``region_contributions`` and
        ``_integration_*`` are made on it (the region's placement is kept for the next
        call on the same run).
    region : Region
        The region (:func:`stclusters.regions.load_region`).
    sides : sequence of (focal, partner), optional, keyword-only
        Names of members, groups or ISO-2 economies (:func:`resolve_side`); default
        :func:`default_sides`.
    years : int, str, (first, last), or list of years, optional, keyword-only
        Documents' years to keep (:func:`year_filter`). Default every year.

    Returns
    -------
    pyarrow.Table
        :data:`SHARES_SCHEMA`, two rows (``whole``, ``fractional``) per pair, metric and year
        in which the focal side has a document; ``weight`` in documents (fractional).
    """
    pairs = list(sides) if sides is not None else list(default_sides(region))
    resolved = [(resolve_side(region, f), resolve_side(region, p)) for f, p in pairs]
    for f, p in resolved:
        if f.label == p.label:
            raise ParameterError(f"side {f.label!r} paired with itself",
                                 hint="a share needs two different sides")
    kept = year_filter(years)
    placed_contributions(con, region, geocoder=geocoder)
    defs = {s.label: s for pair in resolved for s in pair}
    con.register("_integration_sides", pa.table({
        "side": pa.array([s.label for s in defs.values() for _ in (s.members or (None,))],
                         pa.string()),
        "member": pa.array([m for s in defs.values() for m in (s.members or (None,))],
                           pa.string()),
        "economy": pa.array([s.economy for s in defs.values() for _ in (s.members or (None,))],
                            pa.string())}))
    con.register("_integration_pairs", pa.table({
        "pos": pa.array(range(len(resolved)), pa.int32()),
        "focal": pa.array([f.label for f, _ in resolved], pa.string()),
        "partner": pa.array([p.label for _, p in resolved], pa.string())}))
    try:
        table = fetch_arrow(con, _SHARES_SQL, kept.params())
    finally:
        con.unregister("_integration_sides")
        con.unregister("_integration_pairs")
    n = table.num_rows
    return pa.table({
        "region": pa.array([region.id] * n, pa.string()), **{
            c: table.column(c) for c in SHARES_SCHEMA.names if c != "region"}}
    ).cast(SHARES_SCHEMA)


_SHARES_SQL = f"""
WITH rc AS (
    SELECT rowid AS rid, source, doc_id, year, country, member, weight_fx
    FROM {PLACED_TABLE}
    WHERE {_YEAR_SQL}),
tagged AS (
    -- Two equi-joins, not one join on an OR: the contributions may be millions.
    SELECT rc.*, s.side FROM rc JOIN _integration_sides s ON s.member = rc.member
    UNION ALL
    SELECT rc.*, s.side FROM rc JOIN _integration_sides s ON s.economy = rc.country),
rows_ AS (
    SELECT rid, source, doc_id, year, weight_fx, list_distinct(list(side)) AS sides
    FROM tagged GROUP BY rid, source, doc_id, year, weight_fx),
focal_docs AS (
    SELECT DISTINCT r.source, r.doc_id FROM rows_ r
    JOIN (SELECT DISTINCT focal FROM _integration_pairs) f ON list_contains(r.sides, f.focal)),
per_doc AS (
    SELECT p.pos, r.source, r.year, r.doc_id,
           bool_or(list_contains(r.sides, p.focal)) AS has_focal,
           bool_or(list_contains(r.sides, p.partner)
                   AND NOT list_contains(r.sides, p.focal)) AS has_partner,
           coalesce(sum(CAST(r.weight_fx AS HUGEINT))
                    FILTER (WHERE list_contains(r.sides, p.focal)), 0) AS focal_fx
    FROM rows_ r SEMI JOIN focal_docs d ON d.source = r.source AND d.doc_id = r.doc_id
    JOIN _integration_pairs p
      ON list_contains(r.sides, p.focal) OR list_contains(r.sides, p.partner)
    GROUP BY p.pos, r.source, r.year, r.doc_id),
agg AS (
    SELECT pos, source, year,
           count(*) FILTER (WHERE has_focal) AS n_docs,
           count(*) FILTER (WHERE has_focal AND has_partner) AS n_with,
           coalesce(sum(focal_fx) FILTER (WHERE has_focal), 0) AS fx,
           coalesce(sum(focal_fx) FILTER (WHERE has_focal AND has_partner), 0) AS fx_with
    FROM per_doc GROUP BY pos, source, year HAVING count(*) FILTER (WHERE has_focal) > 0),
counted AS (
    SELECT a.*, c.counting, c.k FROM agg a
    CROSS JOIN (VALUES ('whole', 0), ('fractional', 1)) c(counting, k))
SELECT p.focal, p.partner, c.source, c.year, c.counting, c.n_docs,
       c.n_with AS n_docs_with_partner,
       {fx_to_weight('c.fx')} AS weight, {fx_to_weight('c.fx_with')} AS weight_with_partner,
       CASE c.counting
         WHEN 'whole' THEN {pct_sql('c.n_with', 'c.n_docs')}
         ELSE CASE WHEN c.fx > 0 THEN {pct_sql('c.fx_with', 'c.fx')} END END AS share_pct
FROM counted c JOIN _integration_pairs p ON p.pos = c.pos
ORDER BY c.pos, c.source, c.year, c.k"""


def collaboration_matrix(con: duckdb.DuckDBPyConnection, units: Units, *,
                         counting: str = "whole",
                         years: Years = None,
                         top: int | None = None, geocoder: Any = None) -> pa.Table:
    """Unit × unit collaboration, one matrix per metric (long form, both triangles).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A ranking's connection (see :func:`integration_shares`).
    units : Region, sequence of Region, mapping label → Region, or ``"clusters"``
        A region's members; several regions' members (labelled ``ID:member``; they must
        share no place); whole regions as units (a mapping); or the run's ranked clusters
        (``#rank name``; contributions meet clusters through ``points.stc``).
    counting : {"whole", "fractional"}, keyword-only
        The rule (module docstring). ``whole`` fills ``n_docs`` (documents); ``fractional``
        fills ``weight`` (documents' fractional weight).
    years : int, str, (first, last), or list of years, optional, keyword-only
        Documents' years to keep (:func:`year_filter`). Default every year of the run.
    top : int, optional, keyword-only
        With ``"clusters"``: the first ``top`` ranked clusters only (refused with other
        units).

    Returns
    -------
    pyarrow.Table
        :func:`matrix_schema`: every ordered pair ``(a, b)`` of units and ``(other)`` (not
        ``(other, other)``), per metric with used contributions; zeros included. Symmetric.
    """
    if counting not in COUNTINGS:
        raise ParameterError(f"counting {counting!r}: not one of {', '.join(COUNTINGS)}",
                             hint="--counting whole or --counting fractional")
    kept = year_filter(years)
    labels = build_units(con, units, top=top, geocoder=geocoder)
    order = (*labels, OTHER)
    con.register("_integration_order", pa.table({
        "unit": pa.array(order, pa.string()), "pos": pa.array(range(len(order)), pa.int32())}))
    try:
        table = fetch_arrow(con, _MATRIX_SQL, kept.params())
    finally:
        con.unregister("_integration_order")
    value = "n_docs" if counting == "whole" else "weight"
    n = table.num_rows
    return pa.table({"source": table.column("source"),
                     "counting": pa.array([counting] * n, pa.string()),
                     "a": table.column("a"), "b": table.column("b"),
                     value: table.column(value)}).cast(matrix_schema(counting))


def matrix_years(con: duckdb.DuckDBPyConnection, years: Years = None) -> tuple[int, ...]:
    """The years of the documents the last :func:`collaboration_matrix` on ``con`` counted
    (those touching a unit, within ``years``), sorted; empty when it counted none (every
    cell 0). Names the years a figure covers when no ``years`` were asked for."""
    kept = year_filter(years)
    rows = con.execute(f"SELECT DISTINCT year FROM {UNITS_TABLE} WHERE {_YEAR_SQL} "
                       "ORDER BY year", kept.params()).fetchall()
    return tuple(int(r[0]) for r in rows if r[0] is not None)


_OTHER_SQL = literal(OTHER)

_MATRIX_SQL = f"""
WITH du AS (
    SELECT source, doc_id, unit, sum(fx) AS fx FROM {UNITS_TABLE}
    WHERE {_YEAR_SQL}
    GROUP BY source, doc_id, unit),
tot AS (
    -- W(d): every used contribution of the documents touching a unit.
    SELECT c.source, c.doc_id, CAST(sum(c.weight_fx) AS HUGEINT) AS fx
    FROM contributions c SEMI JOIN du ON du.source = c.source AND du.doc_id = c.doc_id
    WHERE c.status = 'used' GROUP BY c.source, c.doc_id),
inside AS (SELECT source, doc_id, sum(fx) AS fx FROM du GROUP BY source, doc_id),
full_ AS (
    SELECT source, doc_id, unit, fx FROM du
    UNION ALL
    SELECT t.source, t.doc_id, {_OTHER_SQL}, t.fx - i.fx
    FROM tot t JOIN inside i ON i.source = t.source AND i.doc_id = t.doc_id
    WHERE t.fx > i.fx),
k AS (SELECT source, doc_id, count(*) AS n_units FROM full_ GROUP BY source, doc_id),
cells AS (
    SELECT a.source, a.unit AS a, b.unit AS b,
           count(*) FILTER (WHERE a.unit <> b.unit OR k.n_units = 1) AS n_docs,
           sum(a.fx * b.fx // t.fx) AS fx
    FROM full_ a
    JOIN full_ b ON b.source = a.source AND b.doc_id = a.doc_id
    JOIN tot t ON t.source = a.source AND t.doc_id = a.doc_id
    JOIN k ON k.source = a.source AND k.doc_id = a.doc_id
    WHERE NOT (a.unit = {_OTHER_SQL} AND b.unit = {_OTHER_SQL})
    GROUP BY a.source, a.unit, b.unit),
sources AS (SELECT DISTINCT source FROM contributions WHERE status = 'used'),
grid AS (
    SELECT s.source, x.unit AS a, x.pos AS pa, y.unit AS b, y.pos AS pb
    FROM sources s, _integration_order x, _integration_order y
    WHERE NOT (x.unit = {_OTHER_SQL} AND y.unit = {_OTHER_SQL}))
SELECT g.source, g.a, g.b, coalesce(c.n_docs, 0) AS n_docs,
       {fx_to_weight('coalesce(c.fx, 0)')} AS weight
FROM grid g LEFT JOIN cells c ON c.source = g.source AND c.a = g.a AND c.b = g.b
ORDER BY g.source, g.pa, g.pb"""


def integration_figure(matrix: pa.Table, *, title: str, data_label: str | None = None,
                       years: str | None = None):  # noqa: ANN201 - matplotlib Figure
    """A chord diagram per metric of a :func:`collaboration_matrix` (matplotlib Figure).

    Arcs: each unit's collaboration with the other units (off the diagonal; ``(other)``
    left out); chords: the pairs, width ∝ the cell. The counting rule, the years, the
    credits and the data label (a SYNTHETIC banner) are written on the figure.
    """
    from stclusters.regions._integration_figure import chord_figure  # noqa: PLC0415

    return chord_figure(matrix, title=title, data_label=data_label, years=years,
                        credits=CREDITS)
