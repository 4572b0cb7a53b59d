"""Read a crop box from a Slicer markups ROI file (.mrk.json), rotation included.

Slicer writes an ROI as one markup of type "ROI" with "center" [3], "size" [3] (mm, along the
box's own axes) and "orientation" [9] (row-major 3x3, its columns the box's axes) in the file's
"coordinateSystem": "LPS" (Slicer's default for files) or "RAS". LPS -> RAS flips the first two
coordinates: centre_RAS = F centre_LPS and axes_RAS = F orientation_LPS with F = diag(-1, -1, 1)
(measured: a node turned 30 degrees about S, written by vtkMRMLMarkupsROIJsonStorageNode and read
back here, gives the node's own matrix).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .crop import CropBox, checked_box
from .errors import RenderFMError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


class ROIFileError(RenderFMError):
    """A file that is not a Slicer markups ROI RenderFM can crop to."""


def read_roi_file(path: str | Path) -> CropBox:
    """The box of the one ROI in a Slicer markups file (RAS mm); ROIFileError naming the file
    if it is missing, not JSON, holds no ROI, holds several, or an inside-out one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not JSON"
        raise ROIFileError(f"crop file {path} cannot be read as a Slicer ROI ({reason})") from None
    markups = document.get("markups") if isinstance(document, dict) else None
    rois = [m for m in markups if isinstance(m, dict) and m.get("type") == "ROI"] \
        if isinstance(markups, list) else []
    if len(rois) != 1:
        found = "no ROI" if not rois else f"{len(rois)} ROIs"
        raise ROIFileError(f"crop file {path} holds {found}; give a Slicer markups ROI file "
                           "(.mrk.json) with one ROI")
    return _box(path, rois[0])


def _box(path: Path, roi: dict) -> CropBox:
    """The CropBox of one ROI markup (RAS mm)."""
    if roi.get("insideOut"):
        raise ROIFileError(f"crop file {path}: an inside-out ROI (keep what lies outside) is not "
                           "supported")
    system = roi.get("coordinateSystem", "LPS")
    if system not in ("LPS", "RAS"):
        raise ROIFileError(f"crop file {path}: unknown coordinateSystem {system!r}")
    flip = LPS_TO_RAS if system == "LPS" else np.eye(3)
    try:
        centre = flip @ np.asarray(roi["center"], dtype=np.float64)
        orientation = np.asarray(roi.get("orientation", np.eye(3).ravel()), dtype=np.float64)
        axes = flip @ orientation.reshape(3, 3)
        size = np.asarray(roi["size"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise ROIFileError(f"crop file {path}: the ROI needs center [3], size [3] and "
                           f"orientation [9] numbers ({type(error).__name__}: {error})") from None
    return checked_box("crop file", str(path), centre, size, axes)
