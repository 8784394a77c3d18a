"""IPC and CPC symbols → the 35 technology fields of WIPO's IPC–technology concordance.

The concordance (Schmoch 2008, revised by WIPO; source and our own additions in the header
of ``data/wipo_ipc_technology_concordance.csv``) assigns IPC subclasses, and for a few split
subclasses their main groups, to 35 fields in five sectors. CPC shares IPC's subclasses and
main groups, so a CPC symbol maps as its IPC equivalent.

Examples
--------
>>> wipo_field("H01L").field
'Semiconductors'
>>> wipo_field("G01N 33/53").field
'Analysis of biological materials'
>>> wipo_field("Y02E 10/50") is None      # CPC tagging: in no field
True
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

#: The concordance shipped with the package (CSV, ``#`` comment lines on top).
CONCORDANCE_PATH = (Path(__file__).resolve().parents[1] / "data"
                    / "wipo_ipc_technology_concordance.csv")

#: An IPC/CPC symbol once blanks are removed: subclass (``H01L``), then optionally the main
#: group and a subgroup (``H01L21/02``); section Y is CPC's tagging scheme.
_SYMBOL = re.compile(r"([A-HY][0-9]{2}[A-Z])(?:([0-9]{1,4})(?:/[0-9]{1,6})?)?")


@dataclass(frozen=True)
class WipoField:
    """One of the 35 WIPO technology fields, as a code was mapped to it.

    ``basis`` says whose assignment it is: ``WIPO`` (the published table), ``stclusters``
    (our placement of a subclass the table lacks, see the data file) or ``field name`` (the
    value already was a field's name).
    """

    field_no: int
    field: str
    sector: str
    basis: str


@functools.cache
def concordance() -> dict[str, WipoField]:
    """The concordance as ``{"H01L": WipoField, "G01N 33": WipoField, …}`` (read once)."""
    lines = [ln for ln in CONCORDANCE_PATH.read_text(encoding="utf-8").splitlines()
             if ln and not ln.startswith("#")]
    return {row["ipc"]: WipoField(int(row["field_no"]), row["field"], row["sector"], row["basis"])
            for row in csv.DictReader(lines)}


@functools.cache
def fields() -> tuple[WipoField, ...]:
    """The 35 fields in their published order (``basis`` ``WIPO``)."""
    seen: dict[int, WipoField] = {}
    for f in concordance().values():
        seen.setdefault(f.field_no, WipoField(f.field_no, f.field, f.sector, "WIPO"))
    return tuple(seen[k] for k in sorted(seen))


def parse_symbol(value: str) -> tuple[str, int | None] | None:
    """``(subclass, main_group)`` of an IPC/CPC symbol, or None if ``value`` is not one.

    Blanks are ignored (PATSTAT pads symbols: ``H01L  21/02``), letters upper-cased.

    >>> parse_symbol("h01l 21/02")
    ('H01L', 21)
    >>> parse_symbol("Physics") is None
    True
    """
    m = _SYMBOL.fullmatch(re.sub(r"\s+", "", value).upper())
    if m is None:
        return None
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


def is_symbol(value: str) -> bool:
    """True if ``value`` reads as an IPC/CPC symbol (mapped or not)."""
    return parse_symbol(value) is not None


def wipo_field(value: str) -> WipoField | None:
    """The WIPO field of an IPC/CPC symbol (or of a field's own name); None if unmapped.

    A main-group row (``A61K 8``) wins over its subclass row (``A61K``); a bare subclass
    takes its subclass row. A value that is not a symbol but is a field's name (any case)
    maps to that field.
    """
    parsed = parse_symbol(value)
    if parsed is None:
        by_name = {f.field.casefold(): f for f in fields()}
        hit = by_name.get(value.strip().casefold())
        return WipoField(hit.field_no, hit.field, hit.sector, "field name") if hit else None
    subclass, group = parsed
    table = concordance()
    if group is not None and f"{subclass} {group}" in table:
        return table[f"{subclass} {group}"]
    return table.get(subclass)
