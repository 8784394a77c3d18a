"""Named points where a test may stop the process (fault injection, ``tests/test_faults.py``).

A run passes :func:`checkpoint` at each stage (``stage:read`` … ``stage:account``), before
each output file is put in place (``write:<file name>``) and while the workspace file is
attached (``attach:workspace.duckdb``). When ``$STCLUSTERS_PAUSE_AT`` names the point, the
process writes its pid to the file ``$STCLUSTERS_PAUSE_READY`` and waits while that file
exists (at most :data:`PAUSE_S`), so that a test can kill or interrupt it exactly there, or
let it go on by removing the file. Unset (always, outside tests), a checkpoint costs one
environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT = "STCLUSTERS_PAUSE_AT"
PAUSE_READY = "STCLUSTERS_PAUSE_READY"

#: How long a paused process waits for the test to act, s.
PAUSE_S = 120.0


def checkpoint(name: str) -> None:
    """Pause here if ``$STCLUSTERS_PAUSE_AT`` is ``name`` (tests only)."""
    if os.environ.get(PAUSE_AT) != name:
        return
    ready = Path(os.environ.get(PAUSE_READY, ""))
    if not ready.name:
        return
    ready.write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_S
    while ready.exists() and time.monotonic() < deadline:  # short sleeps: signals act promptly
        time.sleep(0.05)
