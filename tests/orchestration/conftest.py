"""Fixtures for the Dagster layer."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, instance_for_test


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance (SQLite in a temp dir), as Dagster's own tests use."""
    with instance_for_test() as temporary:
        yield temporary
