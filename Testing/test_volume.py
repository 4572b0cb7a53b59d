"""Tests of RenderFMLib.volume on the real shared CTs: geometry against nibabel and DICOM tags,
format round trips, bad input, HU plausibility, segmentation grids and resampling."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from data_paths import SHARED_DATA as DATA  # noqa: E402

from RenderFMLib.errors import RenderFMWarning, VolumeError
from RenderFMLib.volume import (
    LPS_TO_RAS,
    Volume,
    from_sitk,
    read_ct,
    read_segmentation,
    resample_isotropic,
    resample_spaced,
    to_sitk,
)

if not (DATA / "totalseg").is_dir() or not (DATA / "slicer_cthead_dicom").is_dir():
    pytest.skip(f"shared test data not found at {DATA}", allow_module_level=True)

LIVER = 5


@pytest.fixture(scope="module")
def data() -> Path:
    return DATA


@pytest.fixture(scope="module")
def head(data: Path) -> Volume:
    """The Slicer head CT (DICOM series) with its missing rescale applied."""
    return read_ct(data / "slicer_cthead_dicom", hu_offset=-1024)


@pytest.fixture(scope="module")
def ct_sm(data: Path) -> Volume:
    return read_ct(data / "totalseg" / "example_ct_sm.nii.gz")


def _renderfm_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RenderFMWarning)]


def _read_quietly(reader, *args, **kwargs):
    """Call a reader, returning (result, RenderFM warning messages)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = reader(*args, **kwargs)
    return result, _renderfm_warnings(record)


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


# --- geometry -------------------------------------------------------------------------------


def test_nifti_geometry_matches_nibabel(data: Path) -> None:
    nib = pytest.importorskip("nibabel")
    path = data / "totalseg" / "example_ct.nii.gz"
    volume = read_ct(path)
    image = nib.load(str(path))
    np.testing.assert_allclose(volume.ijk_to_ras, image.affine, atol=1e-4)
    expected = np.asarray(image.dataobj).transpose(2, 1, 0)
    assert volume.shape == (112, 101, 122)
    assert volume.array.dtype == torch.float32
    np.testing.assert_array_equal(volume.array.numpy(), expected)


def test_dicom_slice_positions_match_tags(data: Path, head: Volume) -> None:
    folder = data / "slicer_cthead_dicom"
    k_axis = head.voxel_to_ras([0, 0, 1]) - head.voxel_to_ras([0, 0, 0])
    normal = k_axis / np.linalg.norm(k_axis)
    first_voxels = np.stack([np.zeros(93), np.zeros(93), np.arange(93)], axis=1)
    slice_depths = head.voxel_to_ras(first_voxels) @ normal
    for name in ("CTHead1.dcm", "CTHead40.dcm", "CTHead93.dcm"):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(folder / name))
        reader.ReadImageInformation()
        lps = np.array([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
        ras = lps * [-1, -1, 1]
        k = int(np.argmin(np.abs(slice_depths - ras @ normal)))
        np.testing.assert_allclose(head.voxel_to_ras([0, 0, k]), ras, atol=1e-3)
    assert head.shape == (93, 64, 64)
    np.testing.assert_allclose(head.spacing, [3.2, 3.2, 1.5], atol=1e-6)


def test_round_trip_through_formats(head: Volume, tmp_path: Path) -> None:
    image = to_sitk(head)
    voxel = np.array([10, 20, 30])
    for suffix in (".nii.gz", ".nrrd", ".mha"):
        again = read_ct(_write(image, tmp_path / f"head{suffix}"), hu_offset=0)
        np.testing.assert_allclose(again.ijk_to_ras, head.ijk_to_ras, atol=1e-4, err_msg=suffix)
        assert torch.equal(again.array, head.array), suffix
        np.testing.assert_allclose(again.voxel_to_ras(voxel), head.voxel_to_ras(voxel), atol=1e-4)


def test_sitk_round_trip_oblique() -> None:
    angle = np.deg2rad(30)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    ) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    image = sitk.GetImageFromArray(np.arange(7 * 6 * 5, dtype=np.float32).reshape(7, 6, 5))
    image.SetDirection(tuple(rotation.ravel()))
    image.SetSpacing((0.7, 1.1, 2.5))
    image.SetOrigin((12.0, -40.0, 7.5))
    volume = from_sitk(image, torch.float32)
    for index in [(0, 0, 0), (4, 5, 6), (2, 1, 3)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose(volume.voxel_to_ras(index), LPS_TO_RAS[:3, :3] @ lps, atol=1e-9)
    back = to_sitk(volume)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-12)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-12)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


def test_corners_center_and_radius() -> None:
    matrix = np.diag([2.0, 3.0, 4.0, 1.0])
    matrix[:3, 3] = [10, 20, 30]
    volume = Volume(torch.zeros(5, 4, 3), matrix)  # I = 3, J = 4, K = 5
    assert volume.shape == (5, 4, 3)
    np.testing.assert_allclose(volume.spacing, [2, 3, 4])
    corners = volume.corners_ras()
    np.testing.assert_allclose(corners.min(0), [10 - 1, 20 - 1.5, 30 - 2])
    np.testing.assert_allclose(corners.max(0), [10 + 5, 20 + 10.5, 30 + 18])
    np.testing.assert_allclose(volume.center_ras(), [12, 24.5, 38])
    assert volume.bounding_radius() == pytest.approx(0.5 * np.linalg.norm([6, 12, 20]))


def test_volume_rejects_bad_geometry() -> None:
    with pytest.raises(VolumeError, match="invertible"):
        Volume(torch.zeros(2, 2, 2), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(VolumeError, match="finite 4x4"):
        Volume(torch.zeros(2, 2, 2), np.full((4, 4), np.nan))
    with pytest.raises(VolumeError, match="3D torch tensor"):
        Volume(torch.zeros(2, 2), np.eye(4))


# --- bad input ------------------------------------------------------------------------------


def _image(array: np.ndarray, **kwargs) -> sitk.Image:
    return sitk.GetImageFromArray(array, **kwargs)


def _ramp(shape=(4, 5, 6), dtype=np.float32) -> np.ndarray:
    return np.linspace(-1000, 1000, int(np.prod(shape))).reshape(shape).astype(dtype)


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda d: d / "missing.nii.gz", "does not exist"),
        (lambda d: d / "notes.txt", "not an image SimpleITK can read"),
        (lambda d: _write(_image(_ramp((5, 6))), d / "flat.nii.gz"), "2D image"),
        (lambda d: _write(_image(_ramp((1, 5, 6))), d / "one.nii.gz"), "single slice"),
        (lambda d: _write(sitk.JoinSeries([_image(_ramp())] * 3), d / "four.nii.gz"), "4D image"),
        (lambda d: _write(_image(_ramp((4, 5, 6, 3), np.uint8) % 250, isVector=True),
                          d / "rgb.mha"), "RGB or vector"),
        (lambda d: _write(_image(np.full((4, 5, 6), 7, np.int16)), d / "flat.mha"), "constant"),
        (lambda d: _write(_image(np.where(_ramp() > 900, np.nan, _ramp())), d / "nan.nrrd"),
         "non-finite"),
        (lambda d: d / "empty_dir", "no DICOM series"),
        (lambda d: d / "empty.mha", "is empty"),
    ],
    ids=["missing", "text", "2d", "single-slice", "4d", "rgb", "constant", "nan", "empty-dir",
         "no-voxels"],
)
def test_read_ct_rejects(make, phrase: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.mha").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4 4 0\nElementType = MET_SHORT\n"
        "ElementDataFile = LOCAL\n"
    )
    path = make(tmp_path)
    with pytest.raises(VolumeError, match=phrase) as caught:
        read_ct(path)
    assert str(path) in str(caught.value)


def test_segmentation_far_away_does_not_overlap(data: Path, ct_sm: Volume, tmp_path: Path) -> None:
    image = sitk.ReadImage(str(data / "totalseg" / "example_seg.nii.gz"))
    image.SetOrigin((5000.0, 0.0, 0.0))
    path = _write(image, tmp_path / "far.nii.gz")
    with pytest.raises(VolumeError, match="do not overlap in space") as caught:
        read_segmentation(path, ct_sm)
    assert str(path) in str(caught.value)


def test_segmentation_rejects_fractional_and_negative(ct_sm: Volume, tmp_path: Path) -> None:
    fractional = _write(_image(np.full((4, 5, 6), 2.5, np.float32)), tmp_path / "frac.nii.gz")
    with pytest.raises(VolumeError, match="non-integer values"):
        read_segmentation(fractional, ct_sm)
    negative = _write(_image(np.full((4, 5, 6), -3, np.int16)), tmp_path / "neg.nii.gz")
    with pytest.raises(VolumeError, match="negative labels"):
        read_segmentation(negative, ct_sm)


def test_read_ct_rejects_non_finite_offset(data: Path) -> None:
    with pytest.raises(VolumeError, match="HU offset"):
        read_ct(data / "totalseg" / "example_ct_sm.nii.gz", hu_offset=float("nan"))


def test_resample_rejects_bad_spacing(ct_sm: Volume) -> None:
    for spacing in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(VolumeError, match="positive number of mm"):
            resample_isotropic(ct_sm, spacing)


# --- HU plausibility ------------------------------------------------------------------------


def test_head_ct_without_rescale_warns(data: Path) -> None:
    folder = data / "slicer_cthead_dicom"
    volume, messages = _read_quietly(read_ct, folder)
    assert len(messages) == 1 and "without rescale" in messages[0] and str(folder) in messages[0]
    assert float(volume.array.min()) == 0.0
    shifted, messages = _read_quietly(read_ct, folder, hu_offset=-1024)
    assert messages == []
    assert float(shifted.array.min()) == pytest.approx(-1024)


@pytest.mark.parametrize("name", ["example_ct.nii.gz", "example_ct_sm.nii.gz"])
def test_real_hu_ct_does_not_warn(data: Path, name: str) -> None:
    volume, messages = _read_quietly(read_ct, data / "totalseg" / name)
    assert messages == []
    assert float(volume.array.min()) < -1000


def test_implausible_values_warn(tmp_path: Path) -> None:
    path = _write(_image(_ramp(dtype=np.float32) / 100), tmp_path / "small.nii.gz")
    with pytest.warns(RenderFMWarning, match="no bone or soft tissue"):
        read_ct(path)


def test_several_dicom_series_pick_largest(data: Path, tmp_path: Path) -> None:
    for source in (data / "slicer_cthead_dicom").glob("*.dcm"):
        (tmp_path / source.name).symlink_to(source)
    _write(_image(np.ones((1, 8, 8), np.int16)), tmp_path / "other.dcm")
    volume, messages = _read_quietly(read_ct, tmp_path, hu_offset=-1024)
    assert volume.shape == (93, 64, 64)
    assert any("2 DICOM series" in m for m in messages)


# --- segmentations --------------------------------------------------------------------------


def test_segmentation_on_same_grid(data: Path, ct_sm: Volume) -> None:
    path = data / "totalseg" / "example_seg.nii.gz"
    labels, messages = _read_quietly(read_segmentation, path, ct_sm)
    assert messages == []
    assert labels.array.dtype == torch.int64
    stored = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    np.testing.assert_array_equal(labels.array.numpy(), stored)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.ReadImage(str(path)))
    assert int((labels.array == LIVER).sum()) == stats.GetNumberOfPixels(LIVER) > 1000
    np.testing.assert_array_equal(labels.ijk_to_ras, ct_sm.ijk_to_ras)


def test_cropped_segmentation_back_on_ct_grid(data: Path, ct_sm: Volume, tmp_path: Path) -> None:
    image = sitk.ReadImage(str(data / "totalseg" / "example_seg_fast.nii.gz"))
    cropped = image[5:100, 10:90, 3:25]  # x (i), y (j), z (k); keeps the physical position
    path = _write(cropped, tmp_path / "cropped.nii.gz")
    labels, messages = _read_quietly(read_segmentation, path, ct_sm)
    coverage = 100.0 * (95 * 80 * 22) / (122 * 101 * 30)
    assert len(messages) == 1 and "resampled" in messages[0] and f"{coverage:.1f}%" in messages[0]
    assert labels.shape == ct_sm.shape
    original = sitk.GetArrayFromImage(image)
    result = labels.array.numpy()
    np.testing.assert_array_equal(result[3:25, 10:90, 5:100], original[3:25, 10:90, 5:100])
    outside = np.ones(result.shape, bool)
    outside[3:25, 10:90, 5:100] = False
    assert not result[outside].any()


def test_coarser_segmentation_back_on_ct_grid(data: Path, ct_sm: Volume, tmp_path: Path) -> None:
    image = sitk.ReadImage(str(data / "totalseg" / "example_seg.nii.gz"))
    coarse = resample_isotropic(from_sitk(image, torch.int64), 6.0, labels=True)
    path = _write(to_sitk(coarse), tmp_path / "coarse.nrrd")
    labels, messages = _read_quietly(read_segmentation, path, ct_sm)
    assert any("resampled" in m for m in messages)
    original = sitk.GetArrayFromImage(image)
    result = labels.array.numpy()
    assert labels.shape == ct_sm.shape
    assert set(np.unique(result)) <= set(np.unique(original))
    liver = original == LIVER
    overlap = np.logical_and(result == LIVER, liver).sum() / liver.sum()
    assert overlap > 0.8


# --- resampling -----------------------------------------------------------------------------


def test_resample_isotropic_ct(ct_sm: Volume) -> None:
    fine = resample_isotropic(ct_sm, 1.5)
    assert fine.shape == tuple(2 * n for n in ct_sm.shape)
    np.testing.assert_allclose(fine.spacing, 1.5)
    assert np.linalg.norm(fine.center_ras() - ct_sm.center_ras()) < 1.5
    np.testing.assert_allclose(fine.corners_ras(), ct_sm.corners_ras(), atol=1e-6)
    assert fine.array.dtype == torch.float32
    assert float(fine.array.mean()) == pytest.approx(float(ct_sm.array.mean()), abs=10)


def test_resample_spaced_gives_each_axis_its_spacing(ct_sm: Volume) -> None:
    """1.5 x 1.5 x 6 mm along the 3 mm CT's i, j, k: twice the voxels in-plane, half the slices,
    the same box; the same grid as resample_isotropic when the three are equal."""
    thick = resample_spaced(ct_sm, (1.5, 1.5, 6.0))
    k, j, i = ct_sm.shape
    assert thick.shape == (round(k / 2), 2 * j, 2 * i)
    np.testing.assert_allclose(thick.spacing, (1.5, 1.5, 6.0))
    np.testing.assert_allclose(thick.corners_ras(), ct_sm.corners_ras(), atol=3.0)
    assert np.allclose(resample_spaced(ct_sm, (1.5, 1.5, 1.5)).ijk_to_ras,
                       resample_isotropic(ct_sm, 1.5).ijk_to_ras)
    for spacing in ((1.5, 1.5), (1.5, 0.0, 3.0), (1.5, 1.5, float("nan"))):
        with pytest.raises(VolumeError, match="positive mm along i, j and k"):
            resample_spaced(ct_sm, spacing)
    with pytest.raises(VolumeError, match="1.5 x 1.5 x 1000 mm is too coarse"):
        resample_spaced(ct_sm, (1.5, 1.5, 1000.0))


def test_resample_isotropic_labels(data: Path, ct_sm: Volume) -> None:
    labels = read_segmentation(data / "totalseg" / "example_seg.nii.gz", ct_sm)
    fine = resample_isotropic(labels, 1.5, labels=True)
    assert fine.array.dtype == torch.int64
    assert fine.shape == (60, 202, 244)
    assert set(fine.array.unique().tolist()) <= set(labels.array.unique().tolist())
    # fine voxels 2n and 2n + 1 both lie inside original voxel n, so both take its label
    for start in (0, 1):
        picked = fine.array[start::2, start::2, start::2].numpy()
        np.testing.assert_array_equal(picked, labels.array.numpy())
