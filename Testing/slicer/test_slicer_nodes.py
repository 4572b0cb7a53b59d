"""Volumes and label maps through real MRML nodes (slicer-core scene) and back."""

import warnings

import numpy as np
import pytest
import torch

slicer = pytest.importorskip("slicer")
vtk = pytest.importorskip("vtk")

from RenderFMLib.errors import RenderFMWarning, SegmentationError, VolumeError  # noqa: E402
from RenderFMLib.segmentation.classes import class_names  # noqa: E402
from RenderFMLib.slicer.nodes import (  # noqa: E402
    LABEL_TAG,
    labels_from_segmentation_node,
    segmentation_node,
    volume_from_node,
    volume_node,
)
from RenderFMLib.volume import Volume  # noqa: E402

# Slicer stores a volume's geometry as origin, spacing and unit directions and multiplies them
# back out: the last bit of an entry may change (7e-18 mm measured on an oblique grid).
GEOMETRY_TOL_MM = 1e-12


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    i, j = [k for k in range(3) if k != axis]
    rotation = np.eye(3)
    rotation[[i, j, i, j], [i, j, j, i]] = np.cos(a), np.cos(a), -np.sin(a), np.sin(a)
    return rotation


def _oblique_volume() -> Volume:
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = _rotation(0, 17) @ _rotation(1, -31) @ _rotation(2, 52) \
        @ np.diag([0.7, 1.3, 2.9])
    ijk_to_ras[:3, 3] = (-12.5, 33.25, 101.125)
    values = torch.randn((5, 6, 7), generator=torch.Generator().manual_seed(0)) * 300
    return Volume(values, ijk_to_ras)


def test_sample_ct_round_trip_is_exact(context, sample_ct) -> None:
    node = volume_node(context, sample_ct, "sample")
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetDisplayNode() is not None
    assert node.GetImageData().GetScalarType() == vtk.VTK_FLOAT
    back = volume_from_node(node)
    assert back.array.dtype == torch.float32
    assert torch.equal(back.array, sample_ct.array)
    np.testing.assert_allclose(back.ijk_to_ras, sample_ct.ijk_to_ras, rtol=0, atol=GEOMETRY_TOL_MM)


def test_oblique_grid_round_trip_and_slicers_view_of_it(context) -> None:
    volume = _oblique_volume()
    node = volume_node(context, volume, "oblique")
    np.testing.assert_allclose(node.GetSpacing(), volume.spacing, rtol=1e-15)
    # Slicer's own IJK -> RAS mapping of a voxel index is the Volume's.
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ras = matrix.MultiplyPoint((6.0, 5.0, 4.0, 1.0))[:3]
    np.testing.assert_allclose(ras, volume.voxel_to_ras(np.array([6.0, 5.0, 4.0])), atol=1e-12)
    back = volume_from_node(node)
    assert torch.equal(back.array, volume.array)
    np.testing.assert_allclose(back.ijk_to_ras, volume.ijk_to_ras, rtol=0, atol=GEOMETRY_TOL_MM)


def test_linear_parent_transform_is_hardened_into_the_copy(context) -> None:
    volume = _oblique_volume()
    node = volume_node(context, volume, "moved")
    to_parent = np.eye(4)
    to_parent[:3, :3] = _rotation(2, 90)
    to_parent[:3, 3] = (10.0, -5.0, 2.5)
    transform = context.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    matrix = vtk.vtkMatrix4x4()
    matrix.DeepCopy(to_parent.ravel().tolist())
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    back = volume_from_node(node)
    np.testing.assert_allclose(back.ijk_to_ras, to_parent @ volume.ijk_to_ras, atol=1e-12)
    assert node.GetParentTransformNode() is transform  # the node itself is left as it was


def test_non_linear_parent_transform_is_an_error_naming_the_node(context) -> None:
    node = volume_node(context, _oblique_volume(), "warped")
    grid = vtk.vtkImageData()
    grid.SetDimensions(2, 2, 2)
    grid.AllocateScalars(vtk.VTK_DOUBLE, 3)
    grid.GetPointData().GetScalars().Fill(1.0)
    warp = slicer.vtkOrientedGridTransform()
    warp.SetDisplacementGridData(grid)
    transform = context.scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "warp")
    transform.SetAndObserveTransformFromParent(warp)
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(VolumeError, match="'warped'.*non-linear"):
        volume_from_node(node)


def test_a_node_without_image_is_an_error(context) -> None:
    node = context.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(VolumeError, match="'empty' holds no image"):
        volume_from_node(node)


@pytest.fixture(scope="module")
def sample_segmentation(context, sample_labels):
    return segmentation_node(context, sample_labels, "sample segmentation")


def _segments(node) -> list:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]


def test_segments_are_named_after_their_classes(sample_segmentation, sample_labels) -> None:
    labels = sorted(set(torch.unique(sample_labels.array).tolist()) - {0})
    segments = _segments(sample_segmentation)
    assert len(labels) == 61
    assert [s.GetName() for s in segments] == [class_names()[label] for label in labels]
    assert [_tag(s) for s in segments] == labels
    assert [s.GetLabelValue() for s in segments] == labels


def _tag(segment) -> int:
    value = vtk.reference("")
    assert segment.GetTag(LABEL_TAG, value)
    return int(str(value))


def test_segmentation_round_trip_keeps_every_voxel(context, sample_segmentation, sample_labels,
                                                   sample_ct) -> None:
    nodes_before = context.scene.GetNumberOfNodes()
    back = labels_from_segmentation_node(context, sample_segmentation, sample_ct)
    assert context.scene.GetNumberOfNodes() == nodes_before  # helper nodes were removed
    assert back.array.dtype == torch.int64
    assert torch.equal(back.array, sample_labels.array)  # so every label's voxel count is exact
    np.testing.assert_array_equal(back.ijk_to_ras, sample_ct.ijk_to_ras)


def test_export_onto_a_sub_grid_is_the_crop(context, sample_segmentation, sample_labels) -> None:
    """Slicer resamples onto the reference grid: a grid shifted by whole voxels is a crop."""
    shift = np.eye(4)
    shift[:3, 3] = (10, 20, 30)  # voxels along i, j, k
    reference = Volume(torch.zeros(40, 50, 60), sample_labels.ijk_to_ras @ shift)
    back = labels_from_segmentation_node(context, sample_segmentation, reference)
    assert torch.equal(back.array, sample_labels.array[30:70, 20:70, 10:70])


def test_segments_match_by_name_then_terminology_else_get_1001(context, sample_labels,
                                                               sample_ct) -> None:
    node = segmentation_node(context, sample_labels, "renamed")
    segments = _segments(node)
    spleen, kidney = segments[0], segments[1]  # labels 1 and 2
    spleen.SetName("Tumour")  # no class, default 'Tissue' terminology: unmatched
    kidney.SetName("Segment_2")  # no class name, but right-kidney terminology
    kidney.SetTerminology("Segmentation category and type - 3D Slicer General Anatomy list"
                          "~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney"
                          "~SCT^24028007^Right~Anatomic codes - DICOM master list~^^~^^")
    segments[2].SetName("Liver ")  # names match ignoring case and spaces: label 5
    with pytest.warns(RenderFMWarning, match="'Tumour' -> 1001"):
        back = labels_from_segmentation_node(context, node, sample_ct)
    source = sample_labels.array
    assert torch.equal(back.array == 1001, source == 1)
    assert torch.equal(back.array == 2, source == 2)
    assert int((back.array == 5).sum()) == int(((source == 3) | (source == 5)).sum())


def test_float_labels_are_refused(context, sample_ct) -> None:
    with pytest.raises(SegmentationError, match="integers"):
        segmentation_node(context, sample_ct, "not labels")


def test_empty_segmentation_is_refused(context, sample_ct) -> None:
    node = context.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "nothing")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SegmentationError, match="'nothing' holds no segments"):
            labels_from_segmentation_node(context, node, sample_ct)
