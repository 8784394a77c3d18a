"""What a figure can decide: a stored figure (or a rank) is an interval of the values it
allows, a claim ``x op c`` a set; the claim is held when the whole interval lies in the set,
not held when none of it does, and undecided otherwise (``docs/claims.md``)."""

from __future__ import annotations

from dataclasses import dataclass

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
    if x is None:
        return "?"
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.6g}"


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


def decide(iv: Interval, op: str, c: float) -> str:
    """:data:`HELD`, :data:`NOT_HELD` or :data:`UNDECIDED` for the claim ``x op c`` when all
    that is known of ``x`` is that it lies in ``iv``.

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
