"""Where unusable records go: kept with their file, position and reason, never dropped."""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa

from stclusters.schema import QUARANTINE

_EXCERPT_CHARS = 200
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # tab and line feed stay readable


class Quarantine:
    """Collects rejected records; every reader writes to one.

    Examples
    --------
    >>> q = Quarantine()
    >>> q.add("a.csv", "line 3", "bad latitude", field="lat", excerpt="x,91.5,…")
    >>> q.count
    1
    """

    def __init__(self) -> None:
        self._rows: list[dict] = []

    def add(
        self,
        file: str,
        position: str,
        reason: str,
        *,
        field: str | None = None,
        excerpt: str | None = None,
        source: str | None = None,
    ) -> None:
        """Keep one rejected record. ``reason`` should be short and stable (it is grouped on).

        Text that UTF-8 cannot hold (lone surrogates from undecodable input bytes or file
        names) is replaced by ``?`` in ``file`` and ``excerpt``, so the quarantine can be
        written.
        """
        if excerpt is not None:
            if len(excerpt) > _EXCERPT_CHARS:
                excerpt = excerpt[: _EXCERPT_CHARS - 1] + "…"
            # Control characters (a NUL in an id) are shown, not written: ``\x00``.
            excerpt = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _utf8(excerpt))
        self._rows.append(
            {"file": _utf8(str(file)), "position": position, "source": source, "field": field,
             "reason": reason, "excerpt": excerpt}
        )

    @property
    def count(self) -> int:
        return len(self._rows)

    def reasons(self) -> dict[str, int]:
        """Counts per reason, sorted by reason."""
        return dict(sorted(Counter(r["reason"] for r in self._rows).items()))

    def to_table(self) -> pa.Table:
        return pa.Table.from_pylist(self._rows, schema=QUARANTINE)


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
