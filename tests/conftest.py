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

import pytest

_FIGURES: list[str] = []


@pytest.fixture(scope="session")
def figures() -> list[str]:
    """Lines a test wants in the run's summary (measured figures such as the geocoder's
    accuracy), shown even under ``pytest -q``, which hides ``print``."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
