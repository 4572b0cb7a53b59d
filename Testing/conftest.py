"""Shared fixtures: the real scans in ../shared/data (see its README for origin and licence)."""

from pathlib import Path

import pytest
from data_paths import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip when this checkout has none beside it."""
    if not (SHARED_DATA / "totalseg").is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA
