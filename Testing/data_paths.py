"""Where the tests find the real scans: ../shared/data beside this checkout (see its README)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
