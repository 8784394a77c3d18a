"""Shared test settings: where the real sample data lives, and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

#: ``../shared/data`` beside the checkout (as in CI), or ``$STCLUSTERS_SHARED_DATA``.
SHARED_DATA = Path(os.environ.get(
    "STCLUSTERS_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ci")
