"""The one CSV writer of the package: every CSV we write goes through :func:`write_csv`.

A CSV is opened in spreadsheets, and a spreadsheet executes a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``), as it
does after a leading TAB or CR. Input text reaches our CSVs (an OpenAlex ``country_code``
as ``economy``, a rejected record's ``excerpt``, an input's file name), so, following the
OWASP guidance on CSV injection, a *string* cell that a spreadsheet could take for a formula
gets a leading single quote ``'``: spreadsheets show it as text, and a reader that wants the
original strips that one character (the Parquet files hold the values unchanged). Numeric
columns are never touched, and a string cell that is a plain number (``-3.5``, ``+2``) stays
as it is: a number executes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from stclusters.reports._atomic import atomic_path

#: Characters that start a formula: ASCII, and their full-width forms (some spreadsheets
#: fold those to ASCII).
TRIGGERS = "=+-@\uff1d\uff0b\uff0d\uff20"
#: Blanks a spreadsheet may skip before a trigger.
BLANKS = " \x0b\x0c\u00a0\u3000"
#: Characters that are risky as the first one of a cell by themselves (OWASP: TAB, CR).
CONTROLS = "\t\r\n"


def _re2_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in chars) + "]"


#: A cell a spreadsheet may evaluate (RE2 syntax, for Arrow): a trigger after optional
#: blanks, or a leading control character.
FORMULA_START = f"^{_re2_class(CONTROLS)}|^{_re2_class(BLANKS)}*{_re2_class(TRIGGERS)}"

#: A plain decimal number, signed or not: safe as it is.
PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"

#: What neutralises a formula cell (OWASP: a leading single quote).
PREFIX = "'"


def neutralise_column(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix :data:`PREFIX` to each string that a spreadsheet would run as a formula.

    Parameters
    ----------
    values : pyarrow string array
        Cells of one column (nulls stay null).

    Returns
    -------
    pyarrow string array
        The same cells, formula-like ones prefixed; others unchanged.
    """
    risky = pc.and_(pc.match_substring_regex(values, FORMULA_START),
                    pc.invert(pc.match_substring_regex(values, PLAIN_NUMBER)))
    prefixed = pc.binary_join_element_wise(pa.scalar(PREFIX, values.type), values, "")
    return pc.if_else(risky, prefixed, values)


def neutralise(table: pa.Table) -> pa.Table:
    """Every string column of ``table`` through :func:`neutralise_column`; other columns
    (numbers, booleans) as they are."""
    for i, f in enumerate(table.schema):
        t = f.type
        if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
            t = t.value_type
            table = table.set_column(i, f.name, table.column(i).cast(t))
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            table = table.set_column(i, f.name, neutralise_column(table.column(i)))
    return table


def write_csv(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as CSV at ``path``, atomically, formula-like cells neutralised."""
    with atomic_path(path) as tmp:
        pacsv.write_csv(neutralise(table), tmp)
