"""The network (RenderFMLib/network/): zero-initialised it is AGP exactly, slab by slab it equals
the whole CT, its weights round-trip through .safetensors + .json and every damaged or mismatched
file is refused with one WeightsError naming it, never by loading pickle; prepare() uses the
shipped weights by default and AGP alone with weights=None.

The CT is the bundled sample (3 mm) cropped to 40 x 48 x 48 voxels around the spine, CT-Bone.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from RenderFMLib import api, build
from RenderFMLib.channels import NUM_CHANNELS
from RenderFMLib.cli import main
from RenderFMLib.errors import ArgumentTypeError, WeightsError
from RenderFMLib.network.model import (
    MAX_LOG_SCALE_STEP,
    MAX_OFFSET_VOXELS,
    MAX_OPACITY_STEP,
    NetworkConfig,
    RenderFMNetwork,
    bounded,
    stack_blocks,
)
from RenderFMLib.network.predict import block_residuals
from RenderFMLib.network.weights import SHIPPED, load_network, resolve_weights, save_network
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import Volume


@pytest.fixture(scope="module")
def crop(sample_ct) -> Volume:
    shift = np.eye(4)
    shift[:3, 3] = (37, 20, 40)  # (i, j, k) of the first voxel
    return Volume(sample_ct.array[40:80, 20:68, 37:85].contiguous(),
                  sample_ct.ijk_to_ras @ shift)


def _random(config: NetworkConfig, seed: int = 0) -> RenderFMNetwork:
    """A network with a non-zero last layer, as a trained one has."""
    torch.manual_seed(seed)
    network = RenderFMNetwork(config)
    torch.nn.init.normal_(network.head.weight, std=0.05)
    return network.eval()


def _params_equal(a, b, atol: float = 0.0) -> bool:
    return all(torch.allclose(a.params()[name], b.params()[name], rtol=0.0, atol=atol)
               for name in a.params())


@pytest.mark.parametrize("config", [NetworkConfig(), NetworkConfig(offsets=True),
                                    NetworkConfig(offsets=True, specular=True),
                                    NetworkConfig(offsets=True, spacing_input=True),
                                    NetworkConfig("unet", 8, 2)])
def test_zero_initialised_network_is_agp_exactly(crop, config):
    preset = load_preset("CT-Bone")
    agp = build.build_gaussians(crop, None, preset)
    with_network = build.build_gaussians(crop, None, preset, network=RenderFMNetwork(config))
    assert len(agp) > 500
    assert _params_equal(agp, with_network)
    # and a trained (non-zero) network changes them
    assert not _params_equal(agp, build.build_gaussians(crop, None, preset,
                                                        network=_random(config)), atol=1e-3)


def test_a_network_trained_with_partial_blocks_adds_them_and_zero_is_their_agp(crop):
    """A config with partial_blocks primes them under the network (as in its training); zero
    initialised, it renders AGP with them exactly; without the term, AGP as always."""
    preset = load_preset("CT-Chest-Contrast-Enhanced")
    agp = build.build_gaussians(crop, None, preset)
    partial = build.build_gaussians(crop, None, preset, partial_blocks=True)
    network = RenderFMNetwork(NetworkConfig(offsets=True, partial_blocks=True))
    assert len(partial) > len(agp) > 100
    assert _params_equal(partial, build.build_gaussians(crop, None, preset, network=network))
    assert len(build.build_gaussians(crop, None, preset, network=network,
                                     partial_blocks=False)) == len(agp)
    primed = build.prime_volume(crop, None, preset, partial_blocks=True)  # what training uses
    assert len(primed.labels) == len(partial)


def test_slabs_give_the_network_output_of_the_whole_ct(crop, monkeypatch):
    """The local network run slab by slab (with its halo) equals one run on the whole crop;
    4.8e-7 was measured (float32 convolutions summed in another order), 1e-5 allowed."""
    preset, network = load_preset("CT-Bone"), _random(NetworkConfig())
    whole = build.build_gaussians(crop, None, preset, network=network)
    monkeypatch.setattr(build, "SLAB_VOXELS", 4 * 48 * 48)  # 2 block rows a slab: 10 slabs
    slabs = build.build_gaussians(crop, None, preset, network=network)
    assert torch.equal(whole.means, slabs.means)
    assert _params_equal(whole, slabs, atol=1e-5)


def test_residuals_of_a_few_blocks_equal_those_of_the_whole_ct(crop):
    """block_residuals runs the network on the box around the blocks asked for (plus its halo):
    the same values as on the whole grid, within 1e-5."""
    preset, network = load_preset("CT-Bone"), _random(NetworkConfig())
    everything = torch.cartesian_prod(*(torch.arange(side // 2) for side in crop.shape))
    whole = block_residuals(network, crop, None, preset, everything)
    corner = torch.tensor([[3, 2, 20], [4, 3, 21], [5, 2, 23]])  # a 3 x 2 x 4-block box
    rows = [int(((everything == block).all(-1)).nonzero()) for block in corner]
    assert torch.allclose(block_residuals(network, crop, None, preset, corner), whole[rows],
                          rtol=0.0, atol=1e-5)
    assert not torch.allclose(whole[rows], torch.zeros_like(whole[rows]))


def test_stack_blocks_puts_each_blocks_voxels_in_its_channels():
    volume = torch.arange(2 * 4 * 6 * 8, dtype=torch.float32).reshape(1, 2, 4, 6, 8)
    stacked = stack_blocks(volume)
    assert stacked.shape == (1, 16, 2, 3, 4)
    # block (1, 2, 3) of channel 1 holds voxels k 2..3, j 4..5, i 6..7 of that channel
    expected = volume[0, 1, 2:4, 4:6, 6:8].reshape(-1).sort().values
    assert torch.equal(stacked[0, 8:16, 1, 2, 3].sort().values, expected)


def test_scale_opacity_and_offset_steps_are_bounded():
    raw = torch.full((1, NUM_CHANNELS, 1, 1, 1), 100.0)
    out = bounded(raw)
    assert float(out[0, 16:22].max()) <= MAX_LOG_SCALE_STEP
    assert float(out[0, 15]) <= MAX_OPACITY_STEP
    assert float(out[0, 37:40].max()) <= MAX_OFFSET_VOXELS
    assert float(out[0, 0]) == 100.0  # the direction mean is normalised later, not bounded
    assert torch.equal(bounded(torch.zeros_like(raw)), torch.zeros_like(raw))


def test_offsets_move_each_gaussian_within_its_block(crop):
    """A network that predicts only offsets (a large bias: +, -, + along the i, j, k of the LPS
    order it reads in, which are -, +, + along the i, j, k of the sample, stored in RAS order)
    moves every Gaussian by MAX_OFFSET_VOXELS voxels along each of the CT's axes and changes
    nothing else."""
    preset = load_preset("CT-Bone")
    network = RenderFMNetwork(NetworkConfig(width=8, depth=2, offsets=True)).eval()
    with torch.no_grad():
        network.head.bias[37:40] = torch.tensor([100.0, -100.0, 100.0])
    agp = build.build_gaussians(crop, None, preset)
    moved = build.build_gaussians(crop, None, preset, network=network)
    step = torch.tensor(crop.ijk_to_ras[:3, :3] @ [-1.0, 1.0, 1.0], dtype=torch.float32)
    # float32 RAS mm of a CT some 300 mm from the origin: ~3e-5 mm rounding
    torch.testing.assert_close(moved.means, agp.means + MAX_OFFSET_VOXELS * step,
                               rtol=0.0, atol=1e-4)
    assert all(torch.equal(agp.params()[name], moved.params()[name])
               for name in agp.params() if name != "means")


def test_weights_saved_before_offsets_existed_predict_none(saved, crop):
    """A config without the offsets term (every network trained before them) loads as a
    37-channel head whose Gaussians stay at their block centres."""
    side = saved.with_suffix(".json")
    description = json.loads(side.read_text())
    del description["config"]["offsets"], description["config"]["partial_blocks"]
    side.write_text(json.dumps(description))
    network = load_network(saved)
    assert not network.config.offsets and network.head.out_channels == 37
    assert not network.config.partial_blocks
    preset = load_preset("CT-Bone")
    assert torch.equal(build.build_gaussians(crop, None, preset, network=network).means,
                       build.build_gaussians(crop, None, preset).means)


def test_a_network_without_the_specular_term_leaves_it_at_agp(crop):
    """Every network trained before the white specular term (no "specular" in its config)
    predicts the 40 channels before it: a trained one moves the other fields and leaves
    specular_sh at AGP's base (0); one with the term predicts all 49. The term needs the offsets
    (they come before it in the table)."""
    preset = load_preset("CT-Bone")
    agp = build.build_gaussians(crop, None, preset)
    before = _random(NetworkConfig(width=8, depth=2, offsets=True))
    assert before.head.out_channels == 40
    old = build.build_gaussians(crop, None, preset, network=before)
    assert torch.equal(old.specular_sh, agp.specular_sh)  # AGP's: 0 (priming.py)
    assert not torch.allclose(old.sh, agp.sh, atol=1e-3)
    after = _random(NetworkConfig(width=8, depth=2, offsets=True, specular=True))
    assert after.head.out_channels == 49
    new = build.build_gaussians(crop, None, preset, network=after)
    assert not torch.allclose(new.specular_sh, agp.specular_sh, atol=1e-3)
    with pytest.raises(ValueError, match="offsets"):
        NetworkConfig(specular=True)


def test_network_refuses_inputs_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\[B, 6, K, J, I\]"):
        RenderFMNetwork(NetworkConfig())(torch.zeros(1, 5, 4, 4, 4))
    with pytest.raises(ValueError, match="even"):
        RenderFMNetwork(NetworkConfig())(torch.zeros(1, 6, 4, 5, 4))


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "net.safetensors"
    save_network(_random(NetworkConfig(width=8, depth=2)), path, {"note": "test"})
    return path


def test_weights_round_trip(saved, crop):
    network = _random(NetworkConfig(width=8, depth=2))
    loaded = load_network(saved)
    inputs = torch.rand(1, 6, 8, 8, 8)
    assert torch.equal(network(inputs), loaded(inputs))
    description = json.loads(saved.with_suffix(".json").read_text())
    assert description["config"] == {"kind": "local", "width": 8, "depth": 2, "offsets": False,
                                     "partial_blocks": False, "specular": False,
                                     "spacing_input": False}
    assert description["about"] == {"note": "test"}


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _other_width(path: Path) -> None:
    side = path.with_suffix(".json")
    description = json.loads(side.read_text())
    description["config"]["width"] = 16
    side.write_text(json.dumps(description))


def _unknown_term(path: Path) -> None:
    side = path.with_suffix(".json")
    description = json.loads(side.read_text())
    description["config"]["layers"] = 3
    side.write_text(json.dumps(description))


def _other_channels(path: Path) -> None:
    """Weights of a network with 36 output channels, saved with valid checksums."""
    network = RenderFMNetwork(NetworkConfig(width=8, depth=2))
    network.head = torch.nn.Conv3d(8, 36, 1)
    save_network(network, path)


@pytest.mark.parametrize("damage, message", [
    (_flip_last_byte, "checksums saved with it do not match"),
    (_truncate, "is not a network weights file"),
    (_other_width, "does not fit its config"),
    (_unknown_term, "unknown network config terms: layers"),
    (_other_channels, r"head.bias: file \(36,\), config \(37,\)"),
    (lambda path: path.with_suffix(".json").unlink(), "need their config"),
    (lambda path: path.write_bytes(b"\x80\x04K\x01."), "is not a network weights file"),
])
def test_damaged_or_mismatched_weights_are_refused(saved, damage, message):
    damage(saved)
    with pytest.raises(WeightsError, match=message) as raised:
        load_network(saved)
    assert str(saved.with_suffix("")) in str(raised.value)


def test_no_pickle_is_ever_loaded(saved, monkeypatch, crop):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was loaded")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    load_network(saved)
    api.prepare(crop, preset="CT-Bone", weights=saved)
    api.prepare(crop, preset="CT-Bone")  # the shipped weights


def test_prepare_uses_the_shipped_weights_unless_told_otherwise(crop):
    assert resolve_weights(SHIPPED).is_file()
    shipped = load_network(resolve_weights(SHIPPED))
    assert any(float(p.abs().max()) > 0 for p in shipped.head.parameters())  # trained
    agp = api.prepare(crop, preset="CT-Bone", weights=None)
    assert _params_equal(agp, build.build_gaussians(crop, None, load_preset("CT-Bone")))
    default = api.prepare(crop, preset="CT-Bone")
    # trained on AGP with its partial blocks, which it keeps
    primed = build.build_gaussians(crop, None, load_preset("CT-Bone"), partial_blocks=True)
    assert shipped.config.partial_blocks and len(default) == len(primed) > len(agp)
    # the shipped network moves Gaussians inside their blocks: at most MAX_OFFSET_VOXELS along
    # each of the CT's axes from AGP's block centres (float32 RAS mm: 1e-4 voxels of rounding)
    to_ijk = torch.tensor(np.linalg.inv(crop.ijk_to_ras[:3, :3]), dtype=torch.float64)
    moved = (default.means.double() - primed.means.double()) @ to_ijk.T
    assert shipped.config.offsets and float(moved.abs().max()) <= MAX_OFFSET_VOXELS + 1e-4
    assert float(moved.abs().mean()) > 0.01  # measured 0.13 voxels on this crop
    assert not _params_equal(default, primed, atol=1e-3)
    assert _params_equal(default, api.prepare(crop, preset="CT-Bone", weights=SHIPPED))
    assert _params_equal(agp, api.prepare(crop, preset="CT-Bone", weights="none"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_prepare_on_the_gpu_matches_the_cpu(crop):
    """The shipped network on a GPU gives the CPU's Gaussians: the same count, and every parameter
    within 2e-3 of the CPU's largest entry of it (float32 both sides; cuDNN may run the 3x3x3
    convolutions in TF32, about 1e-3 relative, and the bounded outputs squash that further)."""
    cpu = api.prepare(crop, preset="CT-Bone")
    gpu = api.prepare(crop, preset="CT-Bone", device="cuda")
    assert len(gpu) == len(cpu) and gpu.means.device.type == "cuda"
    for name, value in cpu.params().items():
        scale = float(value.abs().max()) or 1.0
        error = float((gpu.params()[name].cpu() - value).abs().max())
        assert error <= 2e-3 * scale, (name, error, scale)


def test_prepare_names_bad_weights(tmp_path, crop):
    with pytest.raises(WeightsError, match="do not exist"):
        api.prepare(crop, weights=tmp_path / "missing.safetensors")
    with pytest.raises(ArgumentTypeError, match="prepare: weights must be"):
        api.prepare(crop, weights=3)


def test_cli_weights_option(tmp_path, saved, capsys):
    ct = str(tmp_path / "ct.nii.gz")
    shutil.copy(resolve_weights(SHIPPED).parent.parent / "sample" / "ct.nii.gz", ct)
    model = tmp_path / "m.safetensors"
    assert main(["prepare", ct, "--preset", "CT-Bone", "--weights", "none",
                 "-o", str(model)]) == 0
    assert main(["render", str(model), "--weights", str(saved), "-o",
                 str(tmp_path / "x.png")]) == 2
    assert "--weights: only for a CT" in capsys.readouterr().err
    assert main(["prepare", ct, "--weights", str(tmp_path / "no.safetensors"), "-o",
                 str(model)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no.safetensors do not exist" in error
