"""Inputs that are damaged but look fine (issue 13, section 3), made on the fly in tmp_path.

Each case asserts the exact outcome: the exception type and a message naming the file (API),
or exit status 2 and one "renderfm: error:" line (CLI). The CT cases start from the bundled
sample (Resources/sample/ct.nii.gz, 122 x 101 x 112 voxels of 3 mm, int32 HU) or tiny synthetic
volumes; the model cases from Gaussians built on a 16^3 synthetic CT.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import resource
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from RenderFMLib.errors import ModelFileError, RenderFMWarning, VolumeError
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.nifti_check import check_nifti
from RenderFMLib.resources import resource_path
from RenderFMLib.volume import Volume, read_ct, read_label_map

SAMPLE = resource_path("sample", "ct.nii.gz")


@pytest.fixture(scope="module")
def cli():
    """test_cli's helpers: renderfm(*args, cwd) runs the CLI, assert_user_error checks its one
    error line (the module skips where test_cli's shared data is missing)."""
    import test_cli

    return test_cli


def _renderfm_warnings(call, *args, **kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call(*args, **kwargs)
    return [str(w.message) for w in record if issubclass(w.category, RenderFMWarning)]


def _truncated_gz(tmp_path: Path, fraction: float = 0.5) -> Path:
    data = SAMPLE.read_bytes()
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _truncated_nii(tmp_path: Path) -> Path:
    data = gzip.decompress(SAMPLE.read_bytes())
    path = tmp_path / "truncated.nii"
    path.write_bytes(data[: len(data) - 101 * 122 * 4])  # one slice short
    return path


def _with_non_finite(tmp_path: Path, name: str) -> Path:
    """A float32 CT-like volume (-1000..1000 HU) with 3 NaN and 2 infinite voxels."""
    array = np.linspace(-1000, 1000, 8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10)
    array[0, 0, :3] = np.nan
    array[4, 4, :2] = [np.inf, -np.inf]
    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


# --- truncated and damaged NIfTI -------------------------------------------------------------


@pytest.mark.parametrize("make", [_truncated_gz, _truncated_nii], ids=["nii.gz", "nii"])
def test_truncated_nifti_is_refused(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(VolumeError, match="is truncated") as caught:
        read_ct(path)
    assert str(path) in str(caught.value) and "122x101x112" in str(caught.value)


def test_gzip_cut_in_its_trailer_is_refused(tmp_path: Path) -> None:
    """Every voxel is there, but the gzip stream ends before its length and CRC."""
    path = tmp_path / "no_trailer.nii.gz"
    path.write_bytes(SAMPLE.read_bytes()[:-4])
    with pytest.raises(VolumeError, match=f"{path} is truncated"):
        read_ct(path)


def test_corrupted_gzip_is_refused(tmp_path: Path) -> None:
    data = bytearray(SAMPLE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "flipped.nii.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(VolumeError, match=f"{path} is damaged"):
        read_ct(path)


def test_truncated_segmentation_is_refused(tmp_path: Path) -> None:
    data = resource_path("sample", "segmentation.nii.gz").read_bytes()
    path = tmp_path / "seg.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VolumeError, match=f"{path} is truncated"):
        read_label_map(path)


def test_whole_nifti_files_still_read(tmp_path: Path) -> None:
    """The check passes whole files: gzip, plain, big-endian NIfTI-1, NIfTI-2 (nibabel; SimpleITK
    does not read NIfTI-2, the check alone passes it)."""
    nibabel = pytest.importorskip("nibabel")
    plain = tmp_path / "plain.nii"
    plain.write_bytes(gzip.decompress(SAMPLE.read_bytes()))
    array = np.linspace(-1000, 1000, 8 * 9 * 10).reshape(10, 9, 8)
    big_endian = tmp_path / "big_endian.nii"
    nibabel.save(nibabel.Nifti1Image(array.astype(">f4"), np.eye(4)), big_endian)
    two = tmp_path / "two.nii.gz"
    nibabel.save(nibabel.Nifti2Image(array.astype("<i2"), np.eye(4)), two)
    for path in (SAMPLE, plain, big_endian):
        assert read_ct(path).shape[0] > 1
    check_nifti(two)


# --- NaN and infinity in NIfTI (SimpleITK reads them as 0) ------------------------------------


@pytest.mark.parametrize("name", ["nan.nii", "nan.nii.gz"])
def test_non_finite_nifti_is_refused(name: str, tmp_path: Path) -> None:
    path = _with_non_finite(tmp_path, name)
    with pytest.raises(VolumeError, match=f"{path} contains 5 non-finite"):
        read_ct(path)


def test_non_finite_big_endian_nifti2_is_refused(tmp_path: Path) -> None:
    nibabel = pytest.importorskip("nibabel")
    array = np.linspace(-1000, 1000, 8 * 9 * 10).reshape(10, 9, 8)
    array[1, 1, 1] = np.nan
    path = tmp_path / "nan2.nii"
    nibabel.save(nibabel.Nifti2Image(array.astype(">f8"), np.eye(4)), path)
    with pytest.raises(VolumeError, match=f"{path} contains 1 non-finite"):
        read_ct(path)


def test_non_finite_label_map_is_refused(tmp_path: Path) -> None:
    path = _with_non_finite(tmp_path, "labels.nii.gz")
    with pytest.raises(VolumeError, match=f"{path} contains 5 non-finite"):
        read_label_map(path)


# --- --hu-offset no longer turns the HU plausibility check off --------------------------------


def test_hu_offset_on_a_ct_already_in_hu_warns() -> None:
    messages = _renderfm_warnings(read_ct, SAMPLE, hu_offset=-1024)
    assert len(messages) == 1, messages
    assert str(SAMPLE) in messages[0] and "HU offset -1024" in messages[0]


def test_right_hu_offset_does_not_warn(tmp_path: Path) -> None:
    """The sample stored without rescale (HU + 1024), read back with -1024: no warning."""
    image = sitk.ReadImage(str(SAMPLE)) + 1024
    path = tmp_path / "raw.nii.gz"
    sitk.WriteImage(image, str(path))
    assert len(_renderfm_warnings(read_ct, path)) == 1  # without the offset: "without rescale"
    assert _renderfm_warnings(read_ct, path, hu_offset=-1024) == []
    assert _renderfm_warnings(read_ct, SAMPLE, hu_offset=0) == []


def test_hu_offset_that_leaves_no_air_warns() -> None:
    messages = _renderfm_warnings(read_ct, SAMPLE, hu_offset=2000)
    assert len(messages) == 1 and "no air" in messages[0] and "+2000" in messages[0]


# --- the CLI: one error line, exit 2 -----------------------------------------------------------


@pytest.mark.parametrize("make", [_truncated_gz, lambda d: _with_non_finite(d, "nan.nii.gz")],
                         ids=["truncated", "non-finite"])
def test_cli_refuses_damaged_ct(make, cli, tmp_path: Path) -> None:
    path = make(tmp_path)
    result = cli.renderfm("render", path, "--size", 32, "-o", tmp_path / "x.png", cwd=tmp_path)
    assert result.returncode == 2
    message = cli.assert_user_error(result)
    assert message.startswith(f"renderfm: error: {path} ")
    assert not (tmp_path / "x.png").exists()


# --- one huge label (4e8) costs no table of that size -----------------------------------------

HUGE_LABEL = 400_000_000
VERTEBRA = 31  # skeleton


@contextlib.contextmanager
def _address_space_limit(extra_bytes: int):
    """At most extra_bytes more address space for this process while inside (Linux): a 4e8-entry
    table (3.2 GB or more) fails to allocate instead of filling the machine."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the address space limit needs /proc (Linux)")
    status = Path("/proc/self/status").read_text()
    in_use = int(next(line for line in status.splitlines() if line.startswith("VmSize:"))
                 .split()[1]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (in_use + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module")
def huge_labels() -> tuple[Volume, Volume]:
    """A 24^3 CT (1 mm) of two bone blocks (1000 HU) in air, labelled VERTEBRA and HUGE_LABEL."""
    ct = torch.full((24, 24, 24), -1000.0)
    labels = torch.zeros((24, 24, 24), dtype=torch.int64)
    ct[4:10, 4:20, 4:20] = ct[14:20, 4:20, 4:20] = 1000.0
    labels[4:10, 4:20, 4:20] = VERTEBRA
    labels[14:20, 4:20, 4:20] = HUGE_LABEL
    return Volume(ct, np.eye(4)), Volume(labels, np.eye(4))


def test_huge_label_with_group_colors_and_hide(huge_labels) -> None:
    from RenderFMLib.api import default_camera, prepare, render
    from RenderFMLib.segmentation.classes import look_colors

    ct, labels = huge_labels
    with _address_space_limit(1 << 30):
        gaussians = prepare(ct, labels, "CT-Bone", group_colors=True)
        shown = render(gaussians, default_camera(gaussians), 16, hidden_groups=["skeleton"])
        everything = render(gaussians, default_camera(gaussians), 16)
    assert set(gaussians.labels.tolist()) == {VERTEBRA, HUGE_LABEL}
    ivory = torch.tensor(look_colors()["skeleton"])
    assert torch.allclose(gaussians.rgb[gaussians.labels == VERTEBRA], ivory)
    assert not torch.allclose(gaussians.rgb[gaussians.labels == HUGE_LABEL], ivory)
    assert 0 < float(shown.alpha.sum()) < float(everything.alpha.sum())


def test_huge_label_group_masks(huge_labels) -> None:
    from RenderFMLib.segmentation.classes import GROUPS, group_masks

    _, labels = huge_labels
    with _address_space_limit(1 << 30):
        masks = group_masks(labels.array)
    assert list(masks) == list(GROUPS)
    assert torch.equal(masks["other"], labels.array == HUGE_LABEL)
    assert torch.equal(masks["skeleton"], labels.array == VERTEBRA)


# --- model files: checksums and contents checked on load ---------------------------------------


@pytest.fixture(scope="module")
def model(huge_labels, tmp_path_factory) -> Path:
    """Gaussians of the 24^3 CT, saved."""
    from RenderFMLib.api import prepare

    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    prepare(*huge_labels, "CT-Bone").save(path)
    return path


def _contents(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata()


def _resaved(model: Path, path: Path, checksum: bool = False, **changes) -> Path:
    """model's tensors and metadata with `changes` (name -> function of the old value), saved
    as path, without the checksums (a file from before them) unless checksum."""
    tensors, metadata = _contents(model)
    if not checksum:
        metadata.pop("sha256", None)
    for name, change in changes.items():
        if name in tensors:
            tensors[name] = change(tensors[name].clone())
        else:
            metadata[name] = json.dumps(change(json.loads(metadata[name])))
    save_file(tensors, str(path), metadata=metadata)
    return path


def _set_first(value):
    def change(tensor: torch.Tensor) -> torch.Tensor:
        tensor.view(-1)[0] = value
        return tensor
    return change


def _tensor_bytes(path: Path, name: str) -> tuple[int, int]:
    """(start, end) byte offsets of a tensor's data in a safetensors file."""
    (header_length,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8:8 + header_length])
    start, end = header[name]["data_offsets"]
    return 8 + header_length + start, 8 + header_length + end


def test_model_with_a_flipped_byte_is_refused(model: Path, tmp_path: Path) -> None:
    """A bit flip in the stored opacities (+Inf where a logit was) fails the checksum."""
    data = bytearray(model.read_bytes())
    start, _ = _tensor_bytes(model, "opacity_logits")
    data[start:start + 4] = struct.pack("<f", float("inf"))
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksums saved with it do not match its "
                                             "opacity_logits;") as caught:
        SixDGaussians.load(path)
    assert str(path) in str(caught.value)


def test_model_with_changed_geometry_is_refused(model: Path, tmp_path: Path) -> None:
    """The checksums cover the metadata: a CT moved by 1 mm, or a damaged checksum entry."""
    path = _resaved(model, tmp_path / "moved.safetensors", checksum=True,
                    ijk_to_ras=lambda m: [[v + 1.0 if j == 3 else v for j, v in enumerate(row)]
                                          for row in m[:3]] + m[3:])
    with pytest.raises(ModelFileError, match=f"{path} is damaged: .* match its metadata;"):
        SixDGaussians.load(path)
    path = _resaved(model, tmp_path / "damaged_sum.safetensors", checksum=True)
    tensors, metadata = _contents(path)
    save_file(tensors, str(path), metadata={**metadata, "sha256": "{not json"})
    with pytest.raises(ModelFileError, match="checksum entry"):
        SixDGaussians.load(path)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [({"means": _set_first(float("nan"))}, "means holds 1 non-finite"),
     ({"opacity_logits": _set_first(float("inf"))}, "opacity_logits holds 1 non-finite"),
     ({"sh": _set_first(float("-inf"))}, "sh holds 1 non-finite"),
     ({"means": _set_first(1e6)}, "1 means lie far outside the CT's box"),
     ({"log_scales": _set_first(1e4)}, "log_scales reach 10000"),
     ({"labels": _set_first(-1)}, "labels must be >= 0"),
     ({"labels": lambda t: t.to(torch.float32)}, "labels must be integers"),
     ({"rgb": lambda t: t.to(torch.int32)}, "rgb must hold floating-point numbers"),
     ({"ijk_to_ras": lambda m: [[0.0] * 4] * 3 + [[0, 0, 0, 1]]}, "ijk_to_ras must be an "
                                                                   "invertible"),
     ({"ijk_to_ras": lambda m: m[:3] + [[0, 0, 1, 1]]}, "last row 0 0 0 1"),
     ({"ijk_to_ras": lambda m: m[:3]}, "ijk_to_ras must be"),
     ({"volume_shape": lambda s: [0, s[1], s[2]]}, "volume_shape must be 3 positive"),
     ({"volume_shape": lambda s: [s[0] + 0.5, s[1], s[2]]}, "volume_shape must be"),
     ({"volume_shape": lambda s: s[:2]}, "volume_shape must be")],
    ids=["nan-mean", "inf-opacity", "inf-sh", "far-mean", "huge-scale", "negative-label",
         "float-labels", "int-rgb", "singular-matrix", "last-row", "3x4-matrix", "zero-shape",
         "fractional-shape", "2d-shape"])
def test_damaged_model_without_checksums_is_refused(model: Path, tmp_path: Path, changes,
                                                    phrase: str) -> None:
    path = _resaved(model, tmp_path / "damaged.safetensors", **changes)
    with pytest.raises(ModelFileError, match=phrase) as caught:
        SixDGaussians.load(path)
    assert str(caught.value).startswith(f"{path} is damaged: ")


def test_models_without_checksums_still_load(model: Path, tmp_path: Path) -> None:
    """Files saved before checksums were stored load; so do huge (but valid) labels."""
    path = _resaved(model, tmp_path / "old.safetensors", labels=_set_first(3_000_000_000))
    loaded = SixDGaussians.load(path)
    assert int(loaded.labels.max()) == 3_000_000_000
    again = SixDGaussians.load(model)
    _, metadata = _contents(model)
    assert set(json.loads(metadata["sha256"])) == set(_contents(model)[0]) | {"metadata"}
    assert len(again) == len(loaded)


def test_cli_refuses_damaged_model(model: Path, cli, tmp_path: Path) -> None:
    path = _resaved(model, tmp_path / "nan.safetensors", means=_set_first(float("nan")))
    result = cli.renderfm("render", path, "--size", 16, "-o", tmp_path / "x.png", cwd=tmp_path)
    assert result.returncode == 2
    assert cli.assert_user_error(result) == (f"renderfm: error: {path} is damaged: means holds 1 "
                                             "non-finite (NaN or infinite) values")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("reader", ["read_ct", "read_label_map"])
def test_a_pipe_is_refused_by_the_readers_not_waited_on(tmp_path: Path, reader: str) -> None:
    """The API refuses a FIFO as the CLI does. In a child process with a timeout: a reader that
    opened the pipe would wait for a writer for ever."""
    import os
    import subprocess

    pipe = tmp_path / "ct.nii.gz"
    os.mkfifo(pipe)
    code = (f"from RenderFMLib.volume import {reader}\n"
            f"try:\n    {reader}({str(pipe)!r})\n"
            "except Exception as error:\n    print(type(error).__name__, error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.startswith(f"VolumeError {pipe} is not a file or a folder (a pipe")
