"""CropBox <-> Slicer's markups ROI node (vtkMRMLMarkupsROINode), and the crop a volume rendering
display node asks for.

An ROI node holds its box as a size (mm, along its own axes) and an object-to-node matrix (the
box's axes as columns and its centre, RAS mm); a parent transform, if any, moves it to world
coordinates (GetObjectToWorldMatrix). Slicer's volume rendering crops to the display node's ROI
node when its Crop checkbox (CroppingEnabled) is on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..crop import CropBox, checked_box
from .nodes import numpy_matrix, vtk_matrix


def roi_node(scene: Any, box: CropBox, name: str = "RenderFM crop") -> Any:
    """A new vtkMRMLMarkupsROINode in scene holding box (centre, size and axes, RAS mm)."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", name)
    set_roi(node, box)
    return node


def set_roi(node: Any, box: CropBox) -> None:
    """Move and size an ROI node to box, in one modification (one ModifiedEvent)."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(box.axes)
    matrix[:3, 3] = box.center
    was_modifying = node.StartModify()
    node.SetSize(*box.size)
    node.SetAndObserveObjectToNodeMatrix(vtk_matrix(matrix))
    node.EndModify(was_modifying)


def box_from_roi(node: Any) -> CropBox:
    """The box an ROI node holds, in world RAS mm (its parent transforms applied; a transform
    that scales or shears gives ArgumentError)."""
    matrix = numpy_matrix(node.GetObjectToWorldMatrix())
    size = [0.0, 0.0, 0.0]
    node.GetSizeWorld(size)
    axes = matrix[:3, :3] / np.linalg.norm(matrix[:3, :3], axis=0).clip(1e-12)
    return checked_box("ROI node", node.GetName() or "roi", matrix[:3, 3], size, axes)


def display_crop(display: Any) -> CropBox | None:
    """The box a volume rendering display node crops to: its ROI node's, when its Crop checkbox
    is on and it has one; else None (nothing cropped)."""
    if display is None or not display.GetCroppingEnabled():
        return None
    roi = display.GetROINode()
    if roi is None or not roi.IsA("vtkMRMLMarkupsROINode"):
        return None
    return box_from_roi(roi)


def crop_display(display: Any, box: CropBox | None) -> None:
    """Make a volume rendering display node crop to box (a new ROI node in its scene, hidden),
    or stop cropping (None)."""
    if box is None:
        display.SetCroppingEnabled(False)
        return
    node = roi_node(display.GetScene(), box, f"{display.GetName() or 'volume'} crop")
    if node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetVisibility(False)
    display.SetAndObserveROINodeID(node.GetID())
    display.SetCroppingEnabled(True)
