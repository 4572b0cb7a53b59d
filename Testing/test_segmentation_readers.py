"""Tests of RenderFMLib.segmentation.readers on TotalSegmentator's real outputs: multilabel files
against nibabel, per-class mask folders, binary masks and Slicer .seg.nrrd files written here
from the real segmentation."""

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from data_paths import SHARED_DATA as DATA  # noqa: E402

from RenderFMLib.errors import RenderFMWarning, SegmentationError, VolumeError
from RenderFMLib.segmentation import read_labels
from RenderFMLib.volume import LPS_TO_RAS, read_ct

TOTALSEG = DATA / "totalseg"
if not TOTALSEG.is_dir():
    pytest.skip(f"shared test data not found at {DATA}", allow_module_level=True)

SPLEEN, KIDNEY_RIGHT, KIDNEY_LEFT, LIVER, L1, AORTA = 1, 2, 3, 5, 31, 52


@pytest.fixture(scope="module")
def ct_sm():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RenderFMWarning)
        return read_ct(TOTALSEG / "example_ct_sm.nii.gz")


@pytest.fixture(scope="module")
def ct():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RenderFMWarning)
        return read_ct(TOTALSEG / "example_ct.nii.gz")


def _nib_kji(name: str) -> np.ndarray:
    """nibabel's [I, J, K] array of a shared file as int64 [K, J, I] (the Volume order)."""
    return np.asarray(nib.load(TOTALSEG / name).dataobj).astype(np.int64).transpose(2, 1, 0)


def _write_like(array_kji: np.ndarray, path: Path, dtype=np.uint8) -> None:
    """Write array on example_seg's grid (geometry copied from the real file by SimpleITK)."""
    image = sitk.GetImageFromArray(array_kji.astype(dtype))
    image.CopyInformation(sitk.ReadImage(str(TOTALSEG / "example_seg.nii.gz")))
    sitk.WriteImage(image, str(path))


@pytest.mark.parametrize("seg, which", [("example_seg.nii.gz", "sm"),
                                        ("example_seg_fast.nii.gz", "sm"),
                                        ("example_seg_fast_force_split.nii.gz", "full")])
def test_multilabel_equals_nibabel(seg: str, which: str, ct_sm, ct) -> None:
    reference = ct_sm if which == "sm" else ct
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same grid, known labels: no warning at all
        labels = read_labels(TOTALSEG / seg, reference)
    assert labels.array.dtype == torch.int64
    assert np.array_equal(labels.array.numpy(), _nib_kji(seg))
    np.testing.assert_allclose(labels.ijk_to_ras, reference.ijk_to_ras, atol=1e-4)


def test_multilabel_resampled_onto_larger_ct(ct) -> None:
    """example_ct_sm is the first 30 slices of example_ct (same affine): the segmentation lands
    in those slices unchanged, zeros elsewhere."""
    with pytest.warns(RenderFMWarning, match="different grid"):
        labels = read_labels(TOTALSEG / "example_seg.nii.gz", ct)
    assert labels.shape == ct.shape
    assert np.array_equal(labels.array[:30].numpy(), _nib_kji("example_seg.nii.gz"))
    assert int(labels.array[30:].count_nonzero()) == 0


def test_multilabel_nrrd_and_unknown_labels(tmp_path: Path, ct_sm) -> None:
    expected = _nib_kji("example_seg.nii.gz")
    _write_like(expected, tmp_path / "seg.nrrd")  # a plain NRRD: not a Slicer segmentation
    assert np.array_equal(read_labels(tmp_path / "seg.nrrd", ct_sm).array.numpy(), expected)
    odd = np.where(expected == LIVER, 150, expected)
    _write_like(odd, tmp_path / "odd.nii.gz")
    with pytest.warns(RenderFMWarning, match="150.*'other'"):
        assert np.array_equal(read_labels(tmp_path / "odd.nii.gz", ct_sm).array.numpy(), odd)


def test_binary_mask(tmp_path: Path, ct_sm) -> None:
    liver = _nib_kji("example_seg.nii.gz") == LIVER
    _write_like(liver, tmp_path / "mask.nii.gz")
    with pytest.warns(RenderFMWarning, match="binary mask.*binary=False"):
        labels = read_labels(tmp_path / "mask.nii.gz", ct_sm)
    assert np.array_equal(labels.array.numpy(), liver * 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_spleen = read_labels(tmp_path / "mask.nii.gz", ct_sm, binary=False)
        forced = read_labels(TOTALSEG / "example_seg.nii.gz", ct_sm, binary=True)
    assert np.array_equal(as_spleen.array.numpy(), liver.astype(np.int64))
    assert np.array_equal(forced.array.numpy(), (_nib_kji("example_seg.nii.gz") != 0) * 255)


def test_missing_and_unreadable(tmp_path: Path, ct_sm) -> None:
    with pytest.raises(SegmentationError, match="nowhere.nii.gz"):
        read_labels(tmp_path / "nowhere.nii.gz", ct_sm)
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(VolumeError, match="junk.nii.gz"):
        read_labels(tmp_path / "junk.nii.gz", ct_sm)


def test_mask_folder(tmp_path: Path, ct_sm) -> None:
    full = _nib_kji("example_seg.nii.gz")
    chosen = {"spleen": SPLEEN, "kidney_left": KIDNEY_LEFT, "liver": LIVER, "vertebrae_L1": L1,
              "aorta": AORTA}
    folder = tmp_path / "segmentations"
    folder.mkdir()
    for name, label in chosen.items():
        _write_like(full == label, folder / f"{name}.nii.gz")
    (folder / "statistics.json").write_text("{}")  # not a mask: ignored
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the masks do not overlap
        labels = read_labels(folder, ct_sm)
    expected = np.where(np.isin(full, list(chosen.values())), full, 0)
    assert np.array_equal(labels.array.numpy(), expected)
    assert set(np.unique(expected)) == {0, *chosen.values()}


def test_mask_folder_overlap(tmp_path: Path, ct_sm) -> None:
    """A 'spleen' mask that also covers the liver: the liver (higher label) wins there."""
    full = _nib_kji("example_seg.nii.gz")
    _write_like((full == SPLEEN) | (full == LIVER), tmp_path / "spleen.nii.gz")
    _write_like(full == LIVER, tmp_path / "liver.nii")
    n_liver = int((full == LIVER).sum())
    with pytest.warns(RenderFMWarning, match=f"overlap in {n_liver} voxels"):
        labels = read_labels(tmp_path, ct_sm)
    assert np.array_equal(labels.array.numpy(), np.where(np.isin(full, [1, 5]), full, 0))


def test_mask_folder_errors(tmp_path: Path, ct_sm) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SegmentationError, match="empty.*no masks"):
        read_labels(empty, ct_sm)
    bad = tmp_path / "bad"
    bad.mkdir()
    full = _nib_kji("example_seg.nii.gz")
    _write_like(full == LIVER, bad / "liver.nii.gz")
    _write_like(full == SPLEEN, bad / "livr.nii.gz")
    with pytest.raises(SegmentationError, match="livr.nii.gz.*liver"):
        read_labels(bad, ct_sm)
    multi = tmp_path / "multi"
    multi.mkdir()
    _write_like(full, multi / "liver.nii.gz")
    with pytest.raises(SegmentationError, match="liver.nii.gz is not a binary mask"):
        read_labels(multi, ct_sm)


def _slicer_file(path: Path, full_ijk: np.ndarray, ijk_to_lps: np.ndarray, segments) -> dict:
    """Write a .seg.nrrd with slicerio: segments = [(name, mask [i, j, k], extra fields)]."""
    slicerio = pytest.importorskip("slicerio")
    segmentation = slicerio.create_segmentation(full_ijk.shape, ijk_to_lps)
    for name, mask, extra in segments:
        slicerio.add_segment(segmentation, mask, {"name": name, **extra})
    slicerio.write_segmentation(str(path), segmentation)
    return segmentation


def test_slicer_segmentation(tmp_path: Path, ct_sm) -> None:
    full = _nib_kji("example_seg.nii.gz").transpose(2, 1, 0)  # [I, J, K], slicerio's order
    box = np.zeros(full.shape, dtype=bool)
    box[40:60, 30:50, 10:20] = True  # overlaps other segments: slicerio puts it in a new layer
    kidney_terminology = {"terminology": {
        "contextName": "Segmentation category and type - 3D Slicer General Anatomy list",
        "category": ["SCT", "123037004", "Anatomical Structure"],
        "type": ["SCT", "64033007", "Kidney"], "typeModifier": ["SCT", "7771000", "Left"]}}
    segments = [("liver", full == LIVER, {}),
                ("Spleen", full == SPLEEN, {}),
                ("kidney right", full == KIDNEY_RIGHT, {}),
                ("Left kidney", full == KIDNEY_LEFT, kidney_terminology),  # matched by terminology
                ("Vertebrae L1", full == L1, {}),
                ("my odd region", box, {})]
    ijk_to_lps = LPS_TO_RAS @ ct_sm.ijk_to_ras
    written = _slicer_file(tmp_path / "seg.seg.nrrd", full, ijk_to_lps, segments)
    assert written["voxels"].ndim == 4  # the layered form is exercised
    expected = np.zeros(full.shape, dtype=np.int64)
    for (_, mask, _), label in zip(segments, [LIVER, SPLEEN, KIDNEY_RIGHT, KIDNEY_LEFT, L1, 1001]):
        expected[mask] = label  # later segments overwrite earlier ones
    overlap = int((box & (full != 0) & np.isin(full, [1, 2, 3, 5, 31])).sum())
    assert overlap > 0
    with pytest.warns(RenderFMWarning) as record:
        labels = read_labels(tmp_path / "seg.seg.nrrd", ct_sm)
    messages = " ".join(str(w.message) for w in record)
    assert "'my odd region' -> 1001" in messages
    assert f"overlap in {overlap} voxels" in messages
    assert "different grid" not in messages
    assert np.array_equal(labels.array.numpy(), expected.transpose(2, 1, 0))
    np.testing.assert_allclose(labels.ijk_to_ras, ct_sm.ijk_to_ras, atol=1e-6)


def test_slicer_segmentation_cropped_geometry(tmp_path: Path, ct_sm) -> None:
    """A .seg.nrrd holding only a sub-box of the CT grid (as Slicer crops to the segments'
    extent): after LPS -> RAS and resampling it lands on the same voxels of the CT."""
    full = _nib_kji("example_seg.nii.gz").transpose(2, 1, 0)
    lo, hi = np.array([20, 15, 3]), np.array([110, 90, 28])
    crop = full[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    ijk_to_ras = ct_sm.ijk_to_ras.copy()
    ijk_to_ras[:3, 3] = ct_sm.voxel_to_ras(lo)
    _slicer_file(tmp_path / "crop.seg.nrrd", crop, LPS_TO_RAS @ ijk_to_ras,
                 [("liver", crop == LIVER, {}), ("aorta", crop == AORTA, {})])
    with pytest.warns(RenderFMWarning, match="different grid"):
        labels = read_labels(tmp_path / "crop.seg.nrrd", ct_sm)
    expected = np.zeros(full.shape, dtype=np.int64)
    sub = expected[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    sub[crop == LIVER], sub[crop == AORTA] = LIVER, AORTA
    assert int((expected == AORTA).sum()) > 0
    assert np.array_equal(labels.array.numpy(), expected.transpose(2, 1, 0))


def test_slicer_bad_file(tmp_path: Path, ct_sm) -> None:
    pytest.importorskip("slicerio")
    (tmp_path / "bad.seg.nrrd").write_bytes(b"NRRD0004\ngarbage\n")
    with pytest.raises(SegmentationError, match="bad.seg.nrrd"):
        read_labels(tmp_path / "bad.seg.nrrd", ct_sm)
