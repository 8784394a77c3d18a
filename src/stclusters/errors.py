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

    def __init__(self, path: str | Path, expected: str, detail: str, *,
                 hint: str | None = None) -> None:
        super().__init__(f"{path}: cannot read as {expected}: {detail}",
                         hint=hint or f"check that the file exists and is {expected}")
        self.path = str(path)
        self.expected = expected
        self.detail = detail


class ParameterError(StclustersError, ValueError):
    """One or more parameters are invalid; the message lists every problem found."""


class OutputBusyError(StclustersError):
    """Another run is writing into the output folder (it holds the folder's lock)."""

    def __init__(self, out: str | Path, holder: str) -> None:
        super().__init__(f"{out}: another stclusters run is writing into this output folder"
                         + (f" ({holder})" if holder else ""),
                         hint="wait for it to finish, or choose another --out folder")
        self.out = str(out)
        self.holder = holder


class OutputWriteError(StclustersError):
    """The system refused to write an output file (full disk, quota, read-only, permission).

    Nothing this run wrote is left looking complete: the manifest is not written and the
    run's files are removed.
    """

    def __init__(self, path: str | Path, cause: BaseException) -> None:
        import errno  # noqa: PLC0415

        code = getattr(cause, "errno", None)
        text = str(cause)
        if code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text:
            what, hint = "no space left on the device", "free some space, or choose --out on " \
                                                        "another device, then rerun"
        elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
            what, hint = (getattr(cause, "strerror", None) or text).lower(), \
                "choose an --out folder you can write to"
        else:
            what, hint = (getattr(cause, "strerror", None) or text), "check the device, then rerun"
        super().__init__(f"{what} while writing {path}", hint=hint)
        self.path = str(path)
