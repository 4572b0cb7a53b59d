"""Tests of RenderFMLib.gaussians (SixDGaussians: save/load, cached slicing terms, selection)
and RenderFMLib.channels (the 49-channel table and combine), on the small real TotalSegmentator
CT prepared with Anatomy-Guided Priming."""

import json
import math
import struct

import nibabel as nib
import numpy as np
import pytest
import torch
from data_paths import SHARED_DATA as DATA  # noqa: E402
from safetensors import safe_open
from safetensors.torch import save_file

from RenderFMLib import api
from RenderFMLib.channels import FIELDS, NUM_CHANNELS, STORED_FIELDS, combine
from RenderFMLib.errors import ModelFileError
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.model_file import CHECKSUM_KEY, checksums
from RenderFMLib.render.reference.precompute import precompute, precompute_direct
from RenderFMLib.volume import read_ct

CT = DATA / "totalseg" / "example_ct_sm.nii.gz"
SEG = DATA / "totalseg" / "example_seg.nii.gz"
PARAM_NAMES = ("means", "dir_means", "rgb", "sh", "opacity_logits", "log_scales", "corr_logits",
               "specular_sh")


@pytest.fixture(scope="module")
def gaussians() -> SixDGaussians:
    if not (CT.is_file() and SEG.is_file()):
        pytest.skip(f"shared test data not found at {DATA / 'totalseg'}")
    return api.prepare(CT, SEG, "CT-Bone")


def perturbed(gaussians: SixDGaussians, count: int = 3000, seed: int = 0) -> SixDGaussians:
    """The first `count` Gaussians with random residuals on scales and correlations, as a trained
    network would give: AGP alone has no correlations, which would make K = 0 and S_c diagonal."""
    gen = torch.Generator().manual_seed(seed)
    params = {name: value[:count].clone() for name, value in gaussians.params().items()}
    params["log_scales"] += 0.3 * torch.randn(params["log_scales"].shape, generator=gen)
    params["corr_logits"] += 1.5 * torch.randn(params["corr_logits"].shape, generator=gen)
    return SixDGaussians(params, gaussians.labels[:count].clone(), gaussians.ijk_to_ras,
                         gaussians.volume_shape, gaussians.preset)


def assert_same_gaussians(a: SixDGaussians, b: SixDGaussians) -> None:
    for name in PARAM_NAMES:
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.labels.dtype == b.labels.dtype and torch.equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.ijk_to_ras, b.ijk_to_ras)
    assert a.volume_shape == b.volume_shape
    assert a.preset == b.preset


# ---------------------------------------------------------------- save / load ----------------

def test_save_load_round_trip_is_exact_and_renders_identically(gaussians, tmp_path):
    path = tmp_path / "model.safetensors"
    gaussians.save(path)
    loaded = SixDGaussians.load(path)
    assert len(loaded) == len(gaussians) > 1000
    assert_same_gaussians(loaded, gaussians)
    assert loaded.preset["name"] == "CT-Bone"
    assert loaded.volume_shape == (30, 101, 122)  # the small CT: 122 x 101 x 30 voxels (I, J, K)
    camera = api.default_camera(gaussians, azimuth=40.0, elevation=15.0)
    original, reloaded = api.render(gaussians, camera, 64), api.render(loaded, camera, 64)
    assert original.alpha.max() > 0.5  # something is actually drawn, so equality means something
    # Identical values in the same memory layout (channels.combine makes every field contiguous,
    # as loading does) through the same code: the same frame bit for bit. With the fields left as
    # strided views into the 37-channel table, alpha differed by 3e-6 after compositing.
    assert torch.equal(reloaded.rgb, original.rgb)
    assert torch.equal(reloaded.alpha, original.alpha)
    assert torch.equal(reloaded.depth, original.depth)


def test_saved_file_is_plain_safetensors_with_metadata(gaussians, tmp_path):
    path = tmp_path / "model.safetensors"
    gaussians.save(path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # pickle protocol >= 2 opcode PROTO
    assert not raw.startswith(b"PK\x03\x04")  # zip, as torch.save writes
    # safetensors layout: u64 little-endian header length, then a JSON header, then raw data
    (header_length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_length])
    data_end = max(entry["data_offsets"][1] for key, entry in header.items()
                   if key != "__metadata__")
    assert len(raw) == 8 + header_length + data_end
    assert set(header) - {"__metadata__"} == set(PARAM_NAMES) | {"labels"}
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        assert torch.equal(handle.get_tensor("labels"), gaussians.labels)
    assert {"format", "ijk_to_ras", "preset"} <= set(metadata)
    assert metadata["format"] == "renderfm-6dgs"
    np.testing.assert_array_equal(np.array(json.loads(metadata["ijk_to_ras"])),
                                  gaussians.ijk_to_ras)
    assert json.loads(metadata["preset"]) == gaussians.preset


def test_load_missing_file(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(ModelFileError, match="does not exist") as raised:
        SixDGaussians.load(path)
    assert str(path) in str(raised.value)


def test_load_text_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are notes, not Gaussians\n" * 10)
    with pytest.raises(ModelFileError, match="is not a RenderFM Gaussians file") as raised:
        SixDGaussians.load(path)
    assert str(path) in str(raised.value)


def test_load_safetensors_without_renderfm_metadata(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ModelFileError, match="no RenderFM metadata") as raised:
        SixDGaussians.load(path)
    assert str(path) in str(raised.value)


def _metadata_of(gaussians, tmp_path) -> dict:
    path = tmp_path / "reference.safetensors"
    gaussians.save(path)
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


@pytest.mark.parametrize("missing", ["rgb", "corr_logits", "labels"])
def test_load_file_with_a_missing_tensor(gaussians, tmp_path, missing):
    metadata = _metadata_of(gaussians, tmp_path)
    tensors = {name: value.contiguous() for name, value in gaussians.params().items()}
    tensors["labels"] = gaussians.labels
    del tensors[missing]
    path = tmp_path / "partial.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelFileError, match="is not a RenderFM Gaussians file") as raised:
        SixDGaussians.load(path)
    assert missing in str(raised.value)  # the message names what is missing


def test_load_file_with_a_wrong_shape_or_version(gaussians, tmp_path):
    metadata = _metadata_of(gaussians, tmp_path)
    tensors = {name: value.contiguous() for name, value in gaussians.params().items()}
    tensors["labels"] = gaussians.labels
    bad_shape = {**tensors, "sh": tensors["sh"][:, :8].contiguous()}
    path = tmp_path / "bad_shape.safetensors"
    save_file(bad_shape, str(path), metadata=metadata)
    with pytest.raises(ModelFileError, match="sh"):
        SixDGaussians.load(path)
    path = tmp_path / "future.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "version": "99"})
    with pytest.raises(ModelFileError, match="version"):
        SixDGaussians.load(path)


def test_version_1_file_loads_without_white_light(gaussians, tmp_path):
    """A file from before specular_sh (format version 1) has none: it is read as 0, so it renders
    as it did; a version 2 file without it is refused."""
    metadata = _metadata_of(gaussians, tmp_path)
    tensors = {name: value.contiguous() for name, value in gaussians.params().items()
               if name != "specular_sh"}
    tensors["labels"] = gaussians.labels
    old = {key: value for key, value in metadata.items() if key != CHECKSUM_KEY}
    old["version"] = "1"
    old[CHECKSUM_KEY] = checksums(tensors, old)
    path = tmp_path / "version1.safetensors"
    save_file(tensors, str(path), metadata=old)
    loaded = SixDGaussians.load(path)
    assert torch.equal(loaded.specular_sh, torch.zeros(len(gaussians), 9))
    assert torch.equal(loaded.sh, gaussians.sh)
    current = {**old, "version": "2"}
    current[CHECKSUM_KEY] = checksums(tensors, {k: v for k, v in current.items()
                                                if k != CHECKSUM_KEY})
    save_file(tensors, str(path), metadata=current)
    with pytest.raises(ModelFileError, match="specular_sh"):
        SixDGaussians.load(path)


# ---------------------------------------------------------------- derived terms --------------

def test_derived_is_cached(gaussians):
    first, second = gaussians.derived(), gaussians.derived()
    assert len(first) == 3
    for a, b in zip(first, second):
        assert a is b
        assert a.shape == (len(gaussians), 3, 3)


def test_derived_with_gradients_is_recomputed_and_differentiable(gaussians):
    small = perturbed(gaussians, count=400, seed=1)
    reference = [t.clone() for t in small.derived()]  # cached, no grad
    small.log_scales = small.log_scales.detach().clone().requires_grad_(True)
    first, second = small.derived(), small.derived()
    assert all(t.requires_grad for t in first)
    assert first[0] is not second[0]  # not served from the cache
    for term, expected in zip(first, reference):
        torch.testing.assert_close(term.detach(), expected, rtol=0, atol=0)
    # Raising all six log-scales by 0.1 scales L by e^0.1, Sigma by e^0.2: S_c by e^0.2,
    # S_dd^-1 by e^-0.2, and K = S_pd S_dd^-1 is unchanged. The recomputed terms must show it.
    with torch.no_grad():
        small.log_scales += 0.1
    s_c, gains, s_dd_inv = small.derived()
    # float32: ~1e-6 relative per value; 1e-5 leaves room for the 3x3 inverses' conditioning
    torch.testing.assert_close(s_c.detach(), reference[0] * math.exp(0.2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gains.detach(), reference[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_dd_inv.detach(), reference[2] * math.exp(-0.2), rtol=1e-5,
                               atol=1e-6)
    # Gradient: d/dt sum(S_c(log_scales + t)) at t = 0 is 2 sum(S_c) per Gaussian, i.e. the
    # gradient summed over each Gaussian's six log-scales equals 2 * sum of its S_c entries.
    s_c.sum().backward()
    grad = small.log_scales.grad
    assert grad is not None and torch.isfinite(grad).all()
    torch.testing.assert_close(grad.sum(-1), 2.0 * s_c.detach().sum((-1, -2)), rtol=1e-4, atol=1e-4)


def test_derived_matches_the_direct_form(gaussians):
    """The cached terms are the Schur-complement slicing terms (float64 textbook form)."""
    small = perturbed(gaussians, count=500, seed=2)
    direct = precompute_direct(small.log_scales.double(), small.corr_logits.double())
    for name, term, expected in zip(("S_c", "K", "S_dd_inv"), small.derived(), direct):
        # float32 against float64 with correlations up to |l| ~ 0.99: 1e-3 relative to each
        # matrix's largest entry bounds the float32 conditioning loss
        scale = expected.abs().amax((-1, -2), keepdim=True).clamp_min(1e-6)
        assert ((term.double() - expected).abs() / scale).max() < 1e-3, name


def test_select_keeps_the_cached_terms_consistent(gaussians):
    small = perturbed(gaussians, count=2000, seed=3)
    cached = small.derived()
    mask = torch.rand(len(small), generator=torch.Generator().manual_seed(4)) < 0.3
    picked = small.select(mask)
    assert len(picked) == int(mask.sum())
    for name in PARAM_NAMES:
        assert torch.equal(getattr(picked, name), getattr(small, name)[mask]), name
    assert torch.equal(picked.labels, small.labels[mask])
    picked_terms = picked.derived()
    recomputed = precompute(picked.log_scales, picked.corr_logits)
    for term, full, fresh in zip(picked_terms, cached, recomputed):
        assert torch.equal(term, full[mask])
        # the same float32 code on a smaller batch: equal up to batched-linalg rounding
        torch.testing.assert_close(term, fresh, rtol=1e-5, atol=1e-6)
    assert picked.volume_shape == small.volume_shape and picked.preset == small.preset
    # selecting before anything is cached computes the terms on demand, with the same values
    fresh_pick = perturbed(gaussians, count=2000, seed=3).select(mask)
    for term, expected in zip(fresh_pick.derived(), picked_terms):
        torch.testing.assert_close(term, expected, rtol=1e-5, atol=1e-6)


def test_select_by_label(gaussians):
    labels = gaussians.labels
    assert (labels > 0).any() and (labels == 0).any()
    picked = gaussians.select(labels > 0)
    assert len(picked) == int((labels > 0).sum()) and bool((picked.labels > 0).all())


def test_to_cpu_copies(gaussians):
    copy = gaussians.to("cpu")
    assert copy is not gaussians and copy.device == torch.device("cpu")
    assert_same_gaussians(copy, gaussians)
    copy = gaussians.to(torch.device("cpu"))
    assert len(copy) == len(gaussians)


@pytest.mark.parametrize(
    "name, bad",
    [("rgb", lambda t: t[:-1]),
     ("sh", lambda t: t[:, :8]),
     ("specular_sh", lambda t: t[:, :8]),
     ("opacity_logits", lambda t: t[:, None]),
     ("log_scales", lambda t: t[:, :3]),
     ("corr_logits", lambda t: t[:, :14]),
     ("means", lambda t: t[:, :2]),
     ("labels", lambda t: t[:-1])],
)
def test_mismatched_shapes_raise_value_error(gaussians, name, bad):
    params = {key: value[:10] for key, value in gaussians.params().items()}
    labels = gaussians.labels[:10]
    if name == "labels":
        labels = bad(labels)
    else:
        params[name] = bad(params[name])
    with pytest.raises(ValueError, match=name):
        SixDGaussians(params, labels, gaussians.ijk_to_ras, gaussians.volume_shape)


# ---------------------------------------------------------------- geometry -------------------

def test_center_and_radius_match_the_volume_and_nibabel(gaussians):
    volume = read_ct(CT)
    np.testing.assert_allclose(gaussians.center_ras(), volume.center_ras(), atol=1e-9)
    assert gaussians.bounding_radius() == pytest.approx(volume.bounding_radius(), abs=1e-9)
    # Independent: NIfTI's affine maps voxel (i, j, k) to RAS directly. The grid centre is voxel
    # (n - 1) / 2; the grid spans n voxels per axis, so the enclosing radius is half the box
    # diagonal |A n| / 2 (A = the direction-times-spacing columns; exact for an orthogonal A).
    image = nib.load(str(CT))
    affine, shape = image.affine, np.array(image.shape[:3], dtype=np.float64)
    np.testing.assert_allclose(gaussians.center_ras(), affine[:3, :3] @ ((shape - 1) / 2)
                               + affine[:3, 3], atol=1e-4)  # nibabel vs SimpleITK: float32 header
    assert gaussians.bounding_radius() == pytest.approx(
        0.5 * np.linalg.norm(affine[:3, :3] @ shape), abs=1e-4)
    # and all Gaussian centres (block centres) lie inside that sphere
    distances = np.linalg.norm(gaussians.means.double().numpy() - gaussians.center_ras(), axis=1)
    assert distances.max() < gaussians.bounding_radius()


# ---------------------------------------------------------------- channels -------------------

def test_channel_table_tiles_0_to_49():
    ordered = sorted(FIELDS, key=lambda f: f.start)
    assert ordered[0].start == 0 and ordered[-1].stop == NUM_CHANNELS == 49
    for before, after in zip(ordered, ordered[1:]):
        assert before.stop == after.start, (before, after)  # no gap, no overlap
    assert all(f.stop > f.start for f in FIELDS)
    # the layout of DESIGN.md section 5, the position offsets its section 11 foresees and the
    # white specular term its section 5 foresees
    assert {f.name: (f.start, f.stop, f.combine) for f in FIELDS} == {
        "dir_means": (0, 3, "normalize"), "rgb": (3, 6, "clamp01"), "sh": (6, 15, "add"),
        "opacity_logits": (15, 16, "add"), "log_scales": (16, 22, "add"),
        "corr_logits": (22, 37, "add"), "offsets": (37, 40, "add"),
        "specular_sh": (40, 49, "add")}
    # a model stores every field but the offsets, which become its means
    assert [f.name for f in STORED_FIELDS] == [f.name for f in FIELDS if f.name != "offsets"]


def test_combine_applies_each_field_rule():
    gen = torch.Generator().manual_seed(5)
    base = 1.5 * torch.randn(200, 49, generator=gen, dtype=torch.float64)
    residual = torch.randn(200, 49, generator=gen, dtype=torch.float64)
    total = (base + residual).numpy()
    params = combine(base, residual)
    assert set(params) == {f.name for f in FIELDS}
    direction = total[:, 0:3] / np.linalg.norm(total[:, 0:3], axis=1, keepdims=True)
    np.testing.assert_allclose(params["dir_means"].numpy(), direction, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(params["dir_means"].norm(dim=-1).numpy(), 1.0, atol=1e-12)
    raw_rgb = total[:, 3:6]
    assert (raw_rgb < 0).any() and (raw_rgb > 1).any()  # the clamp has work to do
    np.testing.assert_array_equal(params["rgb"].numpy(), np.clip(raw_rgb, 0.0, 1.0))
    np.testing.assert_array_equal(params["sh"].numpy(), total[:, 6:15])
    assert params["opacity_logits"].shape == (200,)
    np.testing.assert_array_equal(params["opacity_logits"].numpy(), total[:, 15])
    np.testing.assert_array_equal(params["log_scales"].numpy(), total[:, 16:22])
    np.testing.assert_array_equal(params["corr_logits"].numpy(), total[:, 22:37])
    np.testing.assert_array_equal(params["offsets"].numpy(), total[:, 37:40])
    np.testing.assert_array_equal(params["specular_sh"].numpy(), total[:, 40:49])
    # without a residual, the base alone
    alone = combine(base)
    np.testing.assert_array_equal(alone["sh"].numpy(), base[:, 6:15].numpy())
    np.testing.assert_array_equal(alone["rgb"].numpy(), np.clip(base[:, 3:6].numpy(), 0, 1))


@pytest.mark.parametrize(
    "base_shape, residual_shape",
    [((10, 40), None), ((10, 50), None), ((10, 49), (10, 40)), ((10, 49), (9, 49))],
)
def test_combine_rejects_wrong_widths(base_shape, residual_shape):
    base = torch.zeros(base_shape)
    residual = None if residual_shape is None else torch.zeros(residual_shape)
    with pytest.raises(ValueError, match="49"):
        combine(base, residual)
