"""The single place that turns a path or a user string into SQL text.

Bind parameters (``con.execute("... ?", [value])``) whenever DuckDB accepts them: a bound
value is data, never SQL. Where it does not (table functions' file arguments inside a view,
``VALUES`` lists built for one query, identifiers), quote with :func:`literal` or
:func:`identifier` below and nowhere else; ``tests/test_injection.py`` scans the source
tree so that hand-made quoting (``'{value}'`` in an f-string, ``.replace("'", "''")``)
cannot come back.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _checked(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"SQL {what} must be a str, got {type(value).__name__}")
    # DuckDB ends a string at NUL in some paths: refuse rather than truncate silently.
    if "\x00" in value:
        raise ValueError(f"SQL {what} holds a NUL character: {value[:40]!r}")
    return utf8_text(value)


def utf8_text(value: str) -> str:
    """``value`` as text that DuckDB, Arrow and JSON take (bound, quoted or written).

    A file name's bytes that are not UTF-8 reach Python as surrogate escapes, which they all
    refuse: each such byte is spelt ``\\xNN``, so the name stays readable and distinct
    (:func:`file_path` reads such a file through a link, never by this text).
    """
    if _is_utf8(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def literal(value: str) -> str:
    """``value`` as a DuckDB string literal: single-quoted, quotes doubled.

    DuckDB's standard strings give backslashes no meaning, so doubling ``'`` is the whole
    escape: the result is one string token whatever ``value`` holds.

    Examples
    --------
    >>> literal("it's")
    "'it''s'"
    """
    return "'" + _checked(value, "literal").replace("'", "''") + "'"


def literals(values: Iterable[str]) -> str:
    """Comma-separated :func:`literal` of each value (for ``IN (...)`` and list literals)."""
    return ", ".join(literal(v) for v in values)


def identifier(name: str) -> str:
    """``name`` as a DuckDB identifier: double-quoted, quotes doubled.

    Examples
    --------
    >>> identifier('a"b')
    '"a""b"'
    """
    if name == "":
        raise ValueError("an SQL identifier cannot be empty")
    return '"' + _checked(name, "identifier").replace('"', '""') + '"'


#: Characters DuckDB's file functions expand as a glob, even in a bound parameter
#: (``read_parquet('b[1].parquet')`` reads ``b1.parquet``; ``*`` reads every match).
_GLOB_CHARS = frozenset("*?[")


@functools.cache
def _links_dir() -> str:
    """A private folder (one per process, removed at exit) for links with plain names."""
    from stclusters._tempdirs import private_dir  # noqa: PLC0415

    return private_dir("stclusters-links-")


def file_path(path: str | Path) -> str:
    """A path naming exactly the file ``path`` for DuckDB's file functions (an argument of
    the relation API, e.g. ``con.read_parquet(file_path(p))``: never SQL text).

    The path is made absolute (a leading ``~`` or ``scheme://`` then means nothing to
    DuckDB), and a name holding a glob character (or bytes that are not UTF-8) is reached
    through a symbolic link with a plain name in a private folder, so DuckDB reads that one
    file and no other.
    """
    resolved = Path(path).resolve()
    if _GLOB_CHARS.intersection(str(resolved)) or not _is_utf8(str(resolved)):
        link = Path(tempfile.mkstemp(prefix="input-", suffix=resolved.suffix,
                                     dir=_links_dir())[1])
        link.unlink()
        os.symlink(resolved, link)
        resolved = link
    return str(resolved)
