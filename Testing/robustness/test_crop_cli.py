"""`--crop` on the command line (issue 15): six bounds or a Slicer markups ROI file, for render
and export-ply; a bad box is one "renderfm: error:" line before any preparation, with nothing
written; a box that holds nothing writes an empty image and says so.

The phantom (conftest.py): a 72 mm cube of 3 mm voxels, RAS R -69..0, A -69..0, S 0..69, with a
bone core along S inside a soft-tissue cylinder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_user_error, messages

LOWER_HALF = "-100,100,-100,100,-100,34.5"  # S up to the cube's middle
RIGHT_LOWER = "-100,-30,-100,100,-100,34.5"  # and R below -30 mm
# A value starting with "-" goes after "=" (argparse would take it for an option): --crop=-100,...


def _roi_file(path: Path, center_lps: list, size: list, orientation_lps: list | None = None,
              **extra: object) -> Path:
    """A markups file shaped as Slicer 5 writes one ROI (LPS)."""
    roi = {"type": "ROI", "coordinateSystem": "LPS", "coordinateUnits": "mm", "roiType": "Box",
           "center": center_lps, "size": size,
           "orientation": orientation_lps or [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
           "controlPoints": [], **extra}
    path.write_text(json.dumps({"@schema": "markups-schema-v1.0.3.json#", "markups": [roi]}))
    return path


def _rows_drawn(png: Path) -> np.ndarray:
    """Which image rows hold anything (any channel above 2/255)."""
    return (np.asarray(Image.open(png)).max(axis=(1, 2)) > 2)


def test_crop_bounds_leave_out_the_upper_half(phantom, cli, tmp_path: Path) -> None:
    """Seen from the front (azimuth 0, S up), the lower half keeps the bottom rows only."""
    whole, cropped = tmp_path / "whole.png", tmp_path / "cropped.png"
    assert cli("render", phantom.model, "--size", 64, "-o", whole).returncode == 0
    result = cli("render", phantom.model, "--size", 64, f"--crop={LOWER_HALF}", "-o", cropped)
    assert result.returncode == 0, result.stderr
    drawn, kept = _rows_drawn(whole), _rows_drawn(cropped)
    assert kept.sum() > 5 and kept.sum() < drawn.sum() - 5
    assert np.flatnonzero(kept).min() > np.flatnonzero(drawn).min() + 5  # the top is gone


def test_a_slicer_roi_file_crops_like_the_same_bounds(phantom, cli, tmp_path: Path) -> None:
    """The LPS file of the box RIGHT_LOWER (centre RAS (-65, 0, -32.75), so LPS (65, 0, -32.75))
    renders the same picture as the bounds, within rounding (1/255); a file read as RAS would
    put the box beside the cube and draw nothing."""
    roi = _roi_file(tmp_path / "roi.mrk.json", [65.0, 0.0, -32.75], [70.0, 200.0, 134.5])
    by_file, by_bounds = tmp_path / "file.png", tmp_path / "bounds.png"
    assert cli("render", phantom.model, "--size", 64, "--crop", roi, "-o", by_file
               ).returncode == 0
    assert cli("render", phantom.model, "--size", 64, f"--crop={RIGHT_LOWER}", "-o", by_bounds
               ).returncode == 0
    assert _rows_drawn(by_bounds).sum() > 5
    difference = np.abs(np.asarray(Image.open(by_file), dtype=int)
                        - np.asarray(Image.open(by_bounds), dtype=int))
    assert difference.max() <= 1


def test_export_ply_crops_too(phantom, cli, tmp_path: Path) -> None:
    counts = []
    for crop in ([], [f"--crop={LOWER_HALF}"]):
        result = cli("export-ply", phantom.model, *crop, "-o", tmp_path / f"{len(crop)}.ply")
        assert result.returncode == 0, result.stderr
        counts.append(int(result.stdout.split("(")[1].split()[0]))
    assert 0 < counts[1] < counts[0]


def test_a_box_holding_nothing_writes_an_empty_image_and_says_so(phantom, cli,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    result = cli("render", phantom.model, "--crop", "500,600,500,600,500,600", "-o", out)
    assert result.returncode == 0
    assert any("crop box holds none" in line for line in messages(result.stderr, "warning"))
    assert not _rows_drawn(out).any()


@pytest.mark.parametrize(("crop", "expected"), [
    ("10,0,0,1,0,1", "--crop: the box is inverted: R_MIN 10 is above R_MAX 0"),
    ("0,1,nan,1,0,1", "--crop: the box must hold finite numbers of mm"),
    ("0,1,0,1", "--crop must be R_MIN,R_MAX,A_MIN,A_MAX,S_MIN,S_MAX (RAS mm) or a Slicer ROI"),
    ("camera.json", "holds no ROI; give a Slicer markups ROI file"),
    ("text.mrk.json", "cannot be read as a Slicer ROI (not JSON)"),
    ("missing.mrk.json", "cannot be read as a Slicer ROI (No such file or directory)"),
    ("inside_out.mrk.json", "an inside-out ROI (keep what lies outside) is not supported"),
    ("nan.mrk.json", "must hold finite numbers"),
], ids=["inverted", "nan", "four-numbers", "not-an-roi", "not-json", "missing", "inside-out",
        "nan-in-file"])
@pytest.mark.parametrize("command", ["render", "export-ply"])
def test_bad_crop_is_one_line_before_any_work(phantom, cli, tmp_path: Path, crop: str,
                                              expected: str, command: str) -> None:
    (tmp_path / "camera.json").write_text(json.dumps(
        {"position": [0, -500, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, 1],
         "view_angle": 30}))
    (tmp_path / "text.mrk.json").write_text("not json at all")
    _roi_file(tmp_path / "inside_out.mrk.json", [0, 0, 0], [10, 10, 10], insideOut=True)
    _roi_file(tmp_path / "nan.mrk.json", [0, float("nan"), 0], [10, 10, 10])
    value = str(tmp_path / crop) if not crop[0].isdigit() else crop
    out = tmp_path / ("out.png" if command == "render" else "out.ply")
    result = cli(command, phantom.ct, "--crop", value, "-o", out)
    message = assert_user_error(result)
    assert result.returncode == 2 and expected in message
    assert "preparing" not in result.stderr and not out.exists()
