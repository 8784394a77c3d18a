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


class _Figures:
    """``figures.append(line)``: the line goes into the test's report, which travels from a
    pytest-xdist worker to the controller that prints the summary."""

    def __init__(self, node) -> None:
        self._node = node

    def append(self, line: str) -> None:
        self._node.user_properties.append(("measured_figure", line))


@pytest.fixture
def figures(request) -> _Figures:
    """Lines a test wants in the run's summary (measured figures such as the geocoder's
    accuracy), shown even under ``pytest -q``, which hides ``print``."""
    return _Figures(request.node)


def pytest_runtest_logreport(report) -> None:
    if report.when == "call":
        _FIGURES.extend(v for k, v in report.user_properties if k == "measured_figure")


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
