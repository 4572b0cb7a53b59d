"""Volumes and label maps <-> MRML nodes (scalar volume and segmentation nodes).

World coordinates are patient RAS millimetres in both worlds: a node's IJKToRAS matrix is the
Volume's ijk_to_ras, and its voxel array is the Volume's [K, J, I] array.

Segmentations use TotalSegmentator's `total` numbering (segmentation/classes.py): each label
becomes a segment named after its class (labels outside the table: "label <n>"), its label value
also kept in the segment tag LABEL_TAG. Back to a label map, segments are matched to classes by
name (or by their terminology), the same way segmentation/readers.py reads a Slicer .seg.nrrd.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..errors import RenderFMWarning, SegmentationError, VolumeError
from ..segmentation.classes import class_names
from ..segmentation.readers import FIRST_UNMATCHED, normalized_name, segment_label, short_list
from ..volume import Volume
from .context import SlicerContext

LABEL_TAG = "RenderFM.LabelValue"
"""Segment tag holding the label value a segment was made from (decimal text)."""


def vtk_matrix(matrix: np.ndarray) -> Any:
    """A vtkMatrix4x4 holding a [4, 4] array."""
    import vtk

    out = vtk.vtkMatrix4x4()
    out.DeepCopy(np.asarray(matrix, dtype=np.float64).ravel().tolist())
    return out


def numpy_matrix(matrix: Any) -> np.ndarray:
    """A [4, 4] float64 array from a vtkMatrix4x4."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _image_data(array: np.ndarray) -> Any:
    """vtkImageData (origin 0, spacing 1) holding a copy of a [K, J, I] array."""
    import vtk
    from vtk.util import numpy_support

    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    flat = np.ascontiguousarray(array).ravel()
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    return image


def _add_image_node(context: SlicerContext, class_name: str, array: np.ndarray,
                    ijk_to_ras: np.ndarray, name: str) -> Any:
    """A new volume node of class_name in the scene, with a copy of array and the geometry."""
    node = context.scene.AddNewNodeByClass(class_name, name)
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras))
    node.SetAndObserveImageData(_image_data(array))
    node.CreateDefaultDisplayNodes()
    return node


def _remove(context: SlicerContext, node: Any) -> None:
    """Remove a helper volume node made here, with its display nodes and their own colour
    tables (not Slicer's shared built-in ones)."""
    displays = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    for display in filter(None, displays):
        color = display.GetColorNode() if display.IsA("vtkMRMLVolumeDisplayNode") else None
        context.scene.RemoveNode(display)
        if color is not None and not color.GetSingletonTag():
            context.scene.RemoveNode(color)
    context.scene.RemoveNode(node)


def volume_node(context: SlicerContext, volume: Volume, name: str) -> Any:
    """A new vtkMRMLScalarVolumeNode (float32 HU, IJKToRAS = volume.ijk_to_ras) with a default
    display node, added to context.scene."""
    array = volume.array.detach().cpu().numpy().astype(np.float32, copy=False)
    return _add_image_node(context, "vtkMRMLScalarVolumeNode", array, volume.ijk_to_ras, name)


def _node_name(node: Any) -> str:
    return f"{node.GetClassName()} '{node.GetName()}'"


def _node_ijk_to_ras(node: Any) -> np.ndarray:
    """The node's IJK -> world RAS matrix, its linear parent transforms hardened in."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = numpy_matrix(matrix)
    parent = node.GetParentTransformNode()
    if parent is None:
        return ijk_to_ras
    if not parent.IsTransformToWorldLinear():
        raise VolumeError(f"{_node_name(node)} is under the non-linear transform "
                          f"'{parent.GetName()}'; harden or remove it first")
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return numpy_matrix(to_world) @ ijk_to_ras


def volume_from_node(node: Any, dtype: torch.dtype = torch.float32) -> Volume:
    """A Volume (values cast to dtype) from a scalar volume node; inverse of volume_node.

    Linear parent transforms are applied to the returned geometry (the node is not changed);
    a non-linear one raises VolumeError naming the node, as does a node without a 3D scalar image.
    """
    from vtk.util import numpy_support

    image = node.GetImageData() if node is not None else None
    scalars = image.GetPointData().GetScalars() if image is not None else None
    if image is None or scalars is None:
        raise VolumeError(f"{_node_name(node) if node else 'no node'} holds no image")
    if scalars.GetNumberOfComponents() != 1:
        raise VolumeError(f"{_node_name(node)} has {scalars.GetNumberOfComponents()} components "
                          "per voxel; RenderFM needs a scalar volume")
    low_i, high_i, low_j, high_j, low_k, high_k = image.GetExtent()
    shape = (high_k - low_k + 1, high_j - low_j + 1, high_i - low_i + 1)
    if min(shape) < 1:
        raise VolumeError(f"{_node_name(node)} has an empty image")
    numpy_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    array = numpy_support.vtk_to_numpy(scalars).reshape(shape).astype(numpy_dtype)
    offset = np.eye(4)
    offset[:3, 3] = (low_i, low_j, low_k)  # image extents may start away from index 0
    return Volume(torch.from_numpy(array), _node_ijk_to_ras(node) @ offset)


def segmentation_node(context: SlicerContext, labels: Volume, name: str) -> Any:
    """A new vtkMRMLSegmentationNode with one segment per non-zero label of an integer label map.

    Segments are named after their classes (segmentation.classes; "label <n>" outside the table)
    and ordered by label; each keeps its label value as its binary labelmap value and in the tag
    LABEL_TAG. The node gets a default display node.
    """
    if labels.array.is_floating_point():
        raise SegmentationError(f"a label map must hold integers, got {labels.array.dtype}")
    array = labels.array.detach().cpu().numpy()
    if array.size and (array.min() < 0 or array.max() > np.iinfo(np.int32).max):
        raise SegmentationError(f"labels must lie in 0..{np.iinfo(np.int32).max}, got "
                                f"{array.min()}..{array.max()}")
    labelmap = _add_image_node(context, "vtkMRMLLabelMapVolumeNode", array.astype(np.int32),
                               labels.ijk_to_ras, f"{name} labels")
    node = context.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    try:
        imported = context.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, node)
    finally:
        _remove(context, labelmap)
    if not imported:
        context.scene.RemoveNode(node)
        raise SegmentationError(f"Slicer could not import the label map as segmentation '{name}'")
    names = class_names()
    segmentation = node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        label = segment.GetLabelValue()
        segment.SetName(names.get(label, f"label {label}"))
        segment.SetTag(LABEL_TAG, str(label))
    return node


def _terminology(segment: Any) -> dict:
    """A segment's terminology as readers.segment_label reads it: type and modifier, each as
    (scheme, code, meaning); empty when the segment has none."""
    entry = segment.GetTerminology() if segment.HasTerminology() else ""
    parts = [part.split("^") for part in str(entry or "").split("~")]
    if len(parts) < 4 or len(parts[2]) != 3:
        return {}
    return {"type": parts[2], "typeModifier": parts[3] if len(parts[3]) == 3 else None}


def _segment_labels(node: Any) -> tuple[list[str], list[int]]:
    """Segment IDs (segment order) and their class labels; unmatched ones get 1001.. with a
    RenderFMWarning."""
    by_name = {normalized_name(name): label for label, name in class_names().items()}
    segmentation = node.GetSegmentation()
    ids: list[str] = []
    labels: list[int] = []
    unmatched: list[str] = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        label = segment_label({"name": segment.GetName(), "terminology": _terminology(segment)},
                               by_name)
        if label is None:
            label = FIRST_UNMATCHED + len(unmatched)
            unmatched.append(f"{segment.GetName()!r} -> {label}")
        ids.append(segmentation.GetNthSegmentID(index))
        labels.append(label)
    if unmatched:
        warnings.warn(f"segments of {_node_name(node)} that match no TotalSegmentator class were "
                      f"given their own labels in the group 'other': {short_list(unmatched)}",
                      RenderFMWarning, stacklevel=3)
    return ids, labels


def labels_from_segmentation_node(context: SlicerContext, node: Any, reference: Volume) -> Volume:
    """The segmentation as an int64 label map (TotalSegmentator numbering) on reference's grid.

    Segments are matched to classes by name, else by terminology; unmatched ones are numbered
    1001, 1002... with a RenderFMWarning; where segments overlap the later one wins. Slicer
    resamples (nearest neighbour) segments stored on another grid.
    """
    import vtk

    if node is None or node.GetSegmentation().GetNumberOfSegments() == 0:
        raise SegmentationError(f"{_node_name(node) if node else 'no node'} holds no segments")
    ids, labels = _segment_labels(node)
    grid = Volume(torch.zeros(reference.shape, dtype=torch.float32), reference.ijk_to_ras)
    reference_node = volume_node(context, grid, f"{node.GetName()} reference")
    labelmap = context.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode",
                                               f"{node.GetName()} export")
    segment_ids = vtk.vtkStringArray()
    for segment_id in ids:
        segment_ids.InsertNextValue(segment_id)
    try:
        exported = context.segmentations_logic.ExportSegmentsToLabelmapNode(
            node, segment_ids, labelmap, reference_node)
        values = volume_from_node(labelmap, torch.int64) if exported else None
    finally:
        _remove(context, labelmap)
        _remove(context, reference_node)
    if values is None or values.shape != reference.shape:
        raise SegmentationError(f"Slicer could not export {_node_name(node)} to a label map on "
                                "the reference grid")
    lookup = torch.tensor([0, *labels], dtype=torch.int64)  # export order 1..N -> class label
    return Volume(lookup[values.array], reference.ijk_to_ras)
