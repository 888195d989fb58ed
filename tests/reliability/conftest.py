"""Reliability suites: their scale (DBOPS_STRESS_SCALE) and the figures they report at the end of a run."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Scale:
    """How hard the suites push: CI's default keeps them to a few minutes; `full` is `make stress`."""

    name: str
    kill_points: int
    processes: int
    concurrent_migrations: int
    examples: int


SCALES = {
    "ci": Scale("ci", kill_points=12, processes=4, concurrent_migrations=40, examples=25),
    "full": Scale("full", kill_points=120, processes=8, concurrent_migrations=200, examples=400),
}


def current_scale() -> Scale:
    name = os.environ.get("DBOPS_STRESS_SCALE", "ci").strip().lower() or "ci"
    if name not in SCALES:
        raise pytest.UsageError(f"DBOPS_STRESS_SCALE={name}: use one of {', '.join(SCALES)}")
    return SCALES[name]


SCALE = current_scale()
FIGURE = "figure: "
_figures: dict[tuple[str, str], object] = {}


@pytest.fixture
def scale() -> Scale:
    return SCALE


@pytest.fixture
def figure(record_property):
    """figure("kill points survived", 24): reported under "reliability figures" at the end of the run (last value wins)."""

    def record(name: str, value: object) -> None:
        record_property(FIGURE + name, value)

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" or not report.passed:
        return
    for name, value in report.user_properties:
        if isinstance(name, str) and name.startswith(FIGURE):
            _figures[(report.nodeid.split("::", 1)[-1], name[len(FIGURE):])] = value


def pytest_terminal_summary(terminalreporter) -> None:
    if not _figures:
        return
    terminalreporter.section(f"reliability figures (DBOPS_STRESS_SCALE={SCALE.name})")
    for (test, name), value in sorted(_figures.items()):
        terminalreporter.write_line(f"{test}: {name} = {value}")
