"""Shared fixtures: the real scans in ../shared/data (see its README for origin and licence)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip when this checkout has none beside it."""
    if not (SHARED_DATA / "totalseg").is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA
