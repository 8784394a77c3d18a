"""One way of showing a figure, of reading a unit and of reading the regions' small CSV
files, shared by ``region``, ``check`` and ``integration``: :func:`number` (how a value is
printed), :func:`is_province` (a row about a province, never added to city rows),
:func:`unit_base` (a unit's base and scale) and :func:`csv_rows` (a UTF-8 CSV with the line
of each row)."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from stclusters.errors import InputFormatError
from stclusters.geocode._provinces import province_key

__all__ = ["number", "is_province", "unit_base", "is_currency", "csv_rows", "pct_sql",
           "MISSING"]

#: What :func:`number` shows for a figure that cannot be had (None, NaN).
MISSING = "—"

_SIGNIFICANT_DECIMALS = 6
_MAX_DECIMALS = 20


def _decimals(value: float) -> int:
    """Places after the point that keep at most 6 significant digits of the fraction:
    ``2962.3612345`` → 6, ``0.000123456789`` → 9 (the zeros after the point do not count
    for a value below 1)."""
    magnitude = abs(value)
    if magnitude >= 1 or magnitude == 0:
        return _SIGNIFICANT_DECIMALS
    leading_zeros = -math.floor(math.log10(magnitude)) - 1
    return min(leading_zeros + _SIGNIFICANT_DECIMALS, _MAX_DECIMALS)


def number(value: float | None, *, bound: str | None = None, digits: int | None = None) -> str:
    """A figure as shown to a reader, by one rule for every command.

    Thousands separators (``3,600``); after the point at most 6 significant digits, trailing
    zeros trimmed (``2,962.36``, ``0.000123457``); a bound before the figure (``> 3,600``);
    ``—`` for a figure that cannot be had (None, NaN); ``inf`` / ``-inf`` for infinities.

    Parameters
    ----------
    value : float or None
        The figure.
    bound : str, optional, keyword-only
        ``'>'``, ``'>='``, ``'<'``, ``'<='`` (shown before the figure) or None (exact).
    digits : int, optional, keyword-only
        At most this many places after the point instead of the 6-significant-digit rule
        (trailing zeros still trimmed): ``number(12.345, digits=1)`` → ``12.3``.

    Returns
    -------
    str
        The text; ``—`` (with no bound) where there is no figure.

    Examples
    --------
    >>> number(3600.0, bound=">")
    '> 3,600'
    >>> number(None)
    '—'
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        text = "inf" if value > 0 else "-inf"
    else:
        places = _decimals(value) if digits is None else max(int(digits), 0)
        text = f"{value:,.{places}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text == "-0":
            text = "0"
    return f"{bound} {text}" if bound else text


_PROVINCE = re.compile(r"\(province\)|\sprovince$|省$", re.IGNORECASE)


def pct_sql(part: str, whole: str) -> str:
    """SQL of ``100 · part / whole`` for two exact integer expressions (fixed-point weights,
    document counts), NULL where ``whole`` is 0.

    The integer part of the percentage is computed exactly (``100 · part // whole``) and only
    the remainder goes through a floating-point division, so a part equal to the whole is
    exactly ``100.0`` (never ``100.00000000000001``) and equal inputs give equal shares.
    """
    num = f"(CAST({part} AS HUGEINT) * 100)"
    den = f"CAST({whole} AS HUGEINT)"
    return (f"(CASE WHEN {den} <> 0 THEN CAST({num} // {den} AS DOUBLE) "
            f"+ CAST({num} % {den} AS DOUBLE) / CAST({den} AS DOUBLE) END)")


def is_province(region_name: str) -> bool:
    """A province-level row: the name says ``(province)``, or ends with `` Province`` or
    ``省`` (``Guangdong (province)``, ``Guangdong Province``, ``广东省``), or is the bare
    name of a Chinese province or autonomous region (``Guangdong``, ``Guangxi``; the four
    municipalities, Beijing, Shanghai, Tianjin and Chongqing, are cities too and do not
    count). Such rows are context: never added to city rows."""
    name = (region_name or "").strip()
    return bool(_PROVINCE.search(name)) or province_key(name) in _BARE_PROVINCES


def _bare_provinces() -> frozenset[str]:
    from stclusters.geocode._provinces import CN_PROVINCES  # noqa: PLC0415 - one table

    # Jilin is also a prefecture-level city of Jilin province: a row named so stays a city.
    return frozenset(province_key(n) for capital, names in CN_PROVINCES
                     if capital not in names for n in names) - {"jilin", "吉林"}


_SCALES = {"": 1.0, "thousand": 1e3, "10k": 1e4, "10 thousand": 1e4, "million": 1e6,
           "100 million": 1e8, "billion": 1e9, "trillion": 1e12}
_CURRENCY_UNIT = re.compile(r"^(?P<base>[A-Z]{3})(?: (?P<scale>thousand|10k|10 thousand|"
                            r"million|100 million|billion|trillion))?(?: \([^()]*\))?$")
_PERSONS_UNIT = re.compile(r"^(?:(?P<scale>thousand|10k|10 thousand|million) )?persons$")


def unit_base(unit: str) -> tuple[str, float]:
    """The base unit and the scale of ``unit``: one of ``unit`` is ``scale`` of the base.

    ``CNY 100 million (亿元)`` → ``('CNY', 1e8)``; ``CNY billion`` → ``('CNY', 1e9)``;
    ``HKD million`` → ``('HKD', 1e6)``; ``MOP`` → ``('MOP', 1.0)``; ``10k persons`` →
    ``('persons', 1e4)``; any other unit is its own base: ``('% of GDP', 1.0)``.
    A currency is three capital letters (ISO 4217), optionally a scale word and a
    parenthesised gloss.
    """
    unit = (unit or "").strip()
    m = _CURRENCY_UNIT.match(unit)
    if m:
        return m.group("base"), _SCALES[m.group("scale") or ""]
    m = _PERSONS_UNIT.match(unit)
    if m:
        return "persons", _SCALES[m.group("scale") or ""]
    return unit, 1.0


def is_currency(base: str) -> bool:
    """``base`` (from :func:`unit_base`) is a currency code (three capital letters)."""
    return bool(re.fullmatch(r"[A-Z]{3}", base or ""))


def csv_rows(path: str | Path, origin: str, what: str, *, hint: str | None = None,
             ) -> tuple[list[str], list[tuple[int, dict[str | None, str | None]]]]:
    """The header (names stripped) and ``(line, row)`` pairs of a UTF-8 CSV (a BOM allowed).

    ``line`` is the physical line where the row starts (a quoted field may span lines). A
    row with more fields than the header has them under the key None; one with fewer has
    None values (the caller names such rows).

    Raises
    ------
    InputFormatError
        The file cannot be read, is not UTF-8, or is not CSV (``origin``: the name shown).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFormatError(origin, f"{what} (UTF-8)", str(exc).splitlines()[0],
                               hint=hint) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = []
        start = reader.line_num + 1
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputFormatError(origin, what, f"line {reader.line_num}: {exc}",
                               hint="quote fields that hold commas") from exc
    return header, rows


_BARE_PROVINCES = _bare_provinces()
