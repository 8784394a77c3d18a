"""What a figure can decide: a stored figure (or a rank) is an interval of the values it
allows, a claim ``x op c`` a set; the claim is held when the whole interval lies in the set,
not held when none of it does, and undecided otherwise (``docs/claims.md``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from stclusters.regions._format import number

#: Comparison operators a claim may use.
OPS: tuple[str, ...] = ("<", "<=", "=", ">=", ">")
#: Bounds a stored figure may carry (``> 3600``: "more than 3,600").
BOUNDS: tuple[str, ...] = ("<", "<=", ">=", ">")

HELD, NOT_HELD, UNDECIDED = "held", "not held", "not enough data"
VERDICTS: tuple[str, ...] = (HELD, NOT_HELD, UNDECIDED)


@dataclass(frozen=True)
class Interval:
    """The values a figure allows: ``lo``..``hi`` (``None``: unbounded), each end open or
    closed. An exact figure is ``lo == hi``, both closed."""

    lo: float | None
    hi: float | None
    lo_open: bool = False
    hi_open: bool = False

    @classmethod
    def of(cls, value: float, bound: str | None = None) -> Interval:
        """The interval of a stored ``value`` with its ``bound`` (``None``: exact)."""
        if bound is None:
            return cls(value, value)
        if bound not in BOUNDS:
            raise ValueError(f"bound must be one of {BOUNDS} or None, got {bound!r}")
        return {">": cls(value, None, lo_open=True), ">=": cls(value, None),
                "<": cls(None, value, hi_open=True), "<=": cls(None, value)}[bound]

    def widened(self, half_unit: float) -> Interval:
        """The values a *rounded* figure allows: each finite end moved out by ``half_unit``
        (a rounded ``23,000`` to the thousand is ``22,500..23,500``, ends included)."""
        if not half_unit:
            return self
        return replace(self, lo=None if self.lo is None else self.lo - half_unit,
                       hi=None if self.hi is None else self.hi + half_unit)

    def contains(self, x: float) -> bool:
        above = self.lo is None or x > self.lo or (x == self.lo and not self.lo_open)
        below = self.hi is None or x < self.hi or (x == self.hi and not self.hi_open)
        return above and below

    def text(self) -> str:
        """``3600``, ``> 3600``, ``≥ 3600``, ``> 20`` as a person reads it."""
        if self.lo is not None and self.lo == self.hi:
            return _num(self.lo)
        if self.hi is None and self.lo is not None:
            return f"{'>' if self.lo_open else '≥'} {_num(self.lo)}"
        if self.lo is None and self.hi is not None:
            return f"{'<' if self.hi_open else '≤'} {_num(self.hi)}"
        return f"{_num(self.lo)}..{_num(self.hi)}" if self.lo is not None else "any"


def _num(x: float | None) -> str:
    return "?" if x is None else number(x)


_ROUNDED_TO = re.compile(r"\brounded\s+to\s+(?:the\s+nearest\s+)?([\d,]*\.?\d+)", re.I)
_ROUNDED = re.compile(r"\brounded\b|\babout\s*[\d'\"‘“]|约\s*[\d'\"‘“]", re.I)


def last_digit_unit(value: float) -> float:
    """The unit of ``value``'s last non-zero digit, in its shortest decimal form:
    ``23000`` → 1000, ``279200`` → 100, ``3.7`` → 0.1, ``0`` → 1."""
    digits = Decimal(repr(float(value))).normalize()
    if digits.is_zero():
        return 1.0
    return float(Decimal(1).scaleb(digits.as_tuple().exponent))


def rounding_half_unit(note: str | None, value: float) -> float:
    """Half the rounding unit of a figure whose ``note`` says it is rounded (0.0: exact).

    Rule: a note saying ``rounded to N`` (``rounded to 100``) gives the unit ``N``; a note
    saying ``rounded``, ``about <number>`` or ``约<number>`` gives the unit of the value's
    last non-zero digit (:func:`last_digit_unit`). The figure then allows ± half that unit.
    """
    text = note or ""
    named = _ROUNDED_TO.search(text)
    if named:
        return float(named.group(1).replace(",", "")) / 2
    return last_digit_unit(value) / 2 if _ROUNDED.search(text) else 0.0


def written_half_unit(value: float) -> float:
    """Half the unit of the last decimal place a claim's value is written with (its
    shortest form): ``3.7`` → 0.05, ``16`` → 0.5, ``3600`` → 0.5."""
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return float(Decimal(5).scaleb(min(int(exponent), 0) - 1))


def _all_satisfy(iv: Interval, op: str, c: float) -> bool:
    if op == ">":
        return iv.lo is not None and (iv.lo > c or (iv.lo == c and iv.lo_open))
    if op == ">=":
        return iv.lo is not None and iv.lo >= c
    if op == "<":
        return iv.hi is not None and (iv.hi < c or (iv.hi == c and iv.hi_open))
    if op == "<=":
        return iv.hi is not None and iv.hi <= c
    return iv.lo is not None and iv.lo == iv.hi == c  # "="


def _some_satisfy(iv: Interval, op: str, c: float) -> bool:
    if op == ">":
        return iv.hi is None or iv.hi > c
    if op == ">=":
        return iv.hi is None or iv.hi > c or (iv.hi == c and not iv.hi_open)
    if op == "<":
        return iv.lo is None or iv.lo < c
    if op == "<=":
        return iv.lo is None or iv.lo < c or (iv.lo == c and not iv.lo_open)
    return iv.contains(c)  # "="


def _equal_target(c: float, half_unit: float) -> Interval:
    """The values ``= c`` allows when ``c`` is written to ``±half_unit``: ``[c - h, c + h)``
    (a value half-way up rounds up), computed in decimal so ``3.65`` is ``3.65``."""
    exact, h = Decimal(repr(float(c))), Decimal(repr(float(half_unit)))
    return Interval(float(exact - h), float(exact + h), hi_open=True)


def _within(iv: Interval, target: Interval) -> bool:
    lo_ok = iv.lo is not None and (iv.lo > target.lo or (iv.lo == target.lo and not (
        target.lo_open and not iv.lo_open)))
    hi_ok = iv.hi is not None and (iv.hi < target.hi or (iv.hi == target.hi and not (
        target.hi_open and not iv.hi_open)))
    return lo_ok and hi_ok


def _overlaps(iv: Interval, target: Interval) -> bool:
    below = iv.hi is not None and (iv.hi < target.lo or (iv.hi == target.lo and (
        iv.hi_open or target.lo_open)))
    above = iv.lo is not None and (iv.lo > target.hi or (iv.lo == target.hi and (
        iv.lo_open or target.hi_open)))
    return not (below or above)


def decide(iv: Interval, op: str, c: float, *, half_unit: float = 0.0) -> str:
    """:data:`HELD`, :data:`NOT_HELD` or :data:`UNDECIDED` for the claim ``x op c`` when all
    that is known of ``x`` is that it lies in ``iv``.

    ``half_unit`` (``=`` only): ``c`` is written to that precision (:func:`written_half_unit`),
    so ``= c`` means ``x`` lies in ``[c - half_unit, c + half_unit)``: ``= 3.7`` holds for a
    stored ``3.7000000000000006``. Other operators compare with ``c`` as written.

    Examples
    --------
    >>> decide(Interval.of(3600, ">"), ">", 4000)
    'not enough data'
    >>> decide(Interval.of(3600, ">"), ">", 3000)
    'held'
    >>> decide(Interval.of(3600, ">"), "<", 3000)
    'not held'
    """
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    if op == "=" and half_unit:
        target = _equal_target(c, half_unit)
        return HELD if _within(iv, target) else UNDECIDED if _overlaps(iv, target) \
            else NOT_HELD
    if _all_satisfy(iv, op, c):
        return HELD
    if not _some_satisfy(iv, op, c):
        return NOT_HELD
    return UNDECIDED


def combine_all(verdicts: list[str]) -> str:
    """A claim over several parts (editions) holds when every part holds, fails when any part
    fails, and is undecided otherwise."""
    if verdicts and all(v == HELD for v in verdicts):
        return HELD
    if any(v == NOT_HELD for v in verdicts):
        return NOT_HELD
    return UNDECIDED


def combine_sources(verdicts: list[str]) -> tuple[str, bool]:
    """One verdict from several independent bodies of data on the same claim: the decisive
    ones must agree. Returns ``(verdict, disagree)``; disagreeing data decide nothing."""
    decisive = {v for v in verdicts if v != UNDECIDED}
    if len(decisive) == 1:
        return decisive.pop(), False
    return UNDECIDED, len(decisive) > 1
