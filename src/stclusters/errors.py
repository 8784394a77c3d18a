"""Errors that reach the user as one readable line (the CLI maps them to exit code 2)."""

from __future__ import annotations

from pathlib import Path


class StclustersError(Exception):
    """Base class: a problem the user can fix; ``hint`` says how."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class InputFormatError(StclustersError):
    """A whole input file cannot be read: missing, not gzip, not the expected format.

    Raised before anything is written, so no output is half-made.
    """

    def __init__(self, path: str | Path, expected: str, detail: str) -> None:
        super().__init__(f"{path}: cannot read as {expected}: {detail}",
                         hint=f"check that the file exists and is {expected}")
        self.path = str(path)
        self.expected = expected
        self.detail = detail


class ParameterError(StclustersError, ValueError):
    """One or more parameters are invalid; the message lists every problem found."""
