"""Preparation in bounded memory gives the same Gaussians: AGP primed slab by slab equals AGP of
the whole CT, and the slicing terms cached chunk by chunk equal one precompute over all. A
preparation that cannot fit is refused with one message naming the need and the way out, before
the work (resampling, segmentation), between slabs or after them (joining, with a network's
residuals), never left to the out-of-memory killer.

The slab size is forced down to a few block rows, so the bundled sample (56 block rows) is cut
into many slabs, odd last slices and slab edges included. Peak memory on a clinical-size CT is
measured by Testing/bench/bench_memory.py, not here.
"""

import pytest
import torch

from RenderFMLib import build, gaussians, memory
from RenderFMLib.api import prepare
from RenderFMLib.build import build_gaussians
from RenderFMLib.cli import main
from RenderFMLib.memory import MemoryNeedError
from RenderFMLib.render.reference.precompute import precompute
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import Volume

# Opacity logits come from (1 - a)^h on tensors of another shape: vectorised pow rounds the
# last bit differently in a handful of blocks (3.6e-7 measured on CT-Bone); everything else is
# bitwise equal.
LOGIT_ATOL = 1e-6


def _params(volume, labels, preset, **keywords):
    made = build_gaussians(volume, labels, preset, **keywords)
    return made.params(), made.labels


@pytest.mark.parametrize("preset", ["CT-Bone", "CT-AAA"])
def test_slab_by_slab_priming_equals_priming_the_whole_ct(monkeypatch, sample_ct, sample_labels,
                                                           preset):
    look = load_preset(preset)
    odd = Volume(sample_ct.array[:-1], sample_ct.ijk_to_ras)  # an odd slice count: 111
    odd_labels = Volume(sample_labels.array[:-1], sample_labels.ijk_to_ras)
    whole, whole_labels = _params(odd, odd_labels, look, groups=["skeleton",
                                                                  "heart_and_vessels"])
    rows = odd.shape[1] * odd.shape[2] * 2
    monkeypatch.setattr(build, "SLAB_VOXELS", 3 * rows)  # 3 block rows per slab, 19 slabs
    slabs, slab_labels = _params(odd, odd_labels, look, groups=["skeleton", "heart_and_vessels"])
    assert len(whole_labels) > 1000 and torch.equal(whole_labels, slab_labels)
    for name, value in whole.items():
        tolerance = LOGIT_ATOL if name == "opacity_logits" else 0.0
        assert torch.allclose(slabs[name], value, rtol=0.0, atol=tolerance), name


def test_a_ct_of_one_slice_has_no_block_and_says_so(sample_ct):
    from RenderFMLib.errors import RenderFMError

    thin = Volume(sample_ct.array[:1].contiguous(), sample_ct.ijk_to_ras)
    with pytest.raises(RenderFMError, match="makes nothing in this CT visible"):
        build_gaussians(thin, None, load_preset("CT-Bone"))


def test_slicing_terms_cached_in_chunks_equal_one_precompute(monkeypatch, sample_ct):
    made = build_gaussians(sample_ct, None, load_preset("CT-AAA"))
    monkeypatch.setattr(gaussians, "DERIVED_CHUNK", 1000)  # about 5 chunks, the last one short
    assert len(made) % 1000
    expected = precompute(made.log_scales, made.corr_logits)
    for cached, value in zip(made.derived(), expected):
        assert torch.equal(cached, value)


def test_free_memory_is_read_from_the_kernel():
    free = memory.available_bytes()
    assert free is None or 0 < free < 1 << 50


def test_a_resampling_that_cannot_fit_is_refused_before_it_starts(monkeypatch, sample_ct):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2_000_000_000)
    # 0.5 mm: 6^3 x 1.38 M voxels = 298 M voxels x 8 bytes = 2.4 GB > 2 GB
    with pytest.raises(MemoryNeedError, match=r"resampling this CT to 298 M voxels needs about "
                                              r"2\.4 GB of memory and 2\.0 GB is free: "
                                              r"resample it coarser \(--spacing 1\.5"):
        prepare(sample_ct, preset="CT-AAA", spacing_mm=0.5)


def test_the_threshold_segmentation_counts_in_the_need(monkeypatch, sample_ct, sample_labels):
    voxels = sample_ct.array.numel()  # one slab
    labels = (memory.SLAB_BYTES_PER_VOXEL + memory.LABEL_BYTES) * voxels + memory.HEADROOM_BYTES
    monkeypatch.setattr(memory, "available_bytes", lambda: labels + 1)  # labels fit, masks not
    assert len(prepare(sample_ct, sample_labels, "CT-AAA")) > 1000
    with pytest.raises(MemoryNeedError, match=r"preparing this CT \(1 M voxels\) needs about "
                                              r"0\.5 GB of memory and 0\.5 GB is free"):
        prepare(sample_ct, "threshold", "CT-AAA")


def test_priming_stops_with_a_message_when_memory_runs_short(monkeypatch, sample_ct):
    monkeypatch.setattr(build, "SLAB_VOXELS", 5 * 2 * sample_ct.shape[1] * sample_ct.shape[2])
    free = iter([10**12, 10**12, 0])  # the preparation's check, the first slab, then nothing

    monkeypatch.setattr(memory, "available_bytes", lambda: next(free, 0))
    with pytest.raises(MemoryNeedError, match=r"memory ran short after priming 9% of the CT "
                                              r"\([0-9,]+ Gaussians so far, 0\.0 GB free\)"):
        prepare(sample_ct, preset="CT-Bone")


def test_finishing_counts_the_network_residuals(monkeypatch, sample_ct):
    agp = len(prepare(sample_ct, preset="CT-AAA", weights=None))
    count = len(prepare(sample_ct, preset="CT-AAA"))  # the shipped network's: partial blocks too
    monkeypatch.setattr(memory, "SLAB_BYTES_PER_VOXEL", 0)  # only the finish can run short
    monkeypatch.setattr(memory, "HEADROOM_BYTES", 0)
    free = (memory.FINISH_BYTES + memory.NETWORK_FINISH_BYTES // 2) * count
    monkeypatch.setattr(memory, "available_bytes", lambda: free)
    assert len(prepare(sample_ct, preset="CT-AAA", weights=None)) == agp  # AGP fits
    with pytest.raises(MemoryNeedError, match=rf"finishing the {count:,} Gaussians primed from "
                                              rf"this CT needs about 0\.0 GB of memory and 0\.0 "
                                              rf"GB is free: resample it coarser"):
        prepare(sample_ct, preset="CT-AAA")  # the shipped network: its residuals do not


def test_unknown_free_memory_refuses_nothing(monkeypatch, sample_ct):
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert len(prepare(sample_ct, preset="CT-AAA")) > 1000


def test_the_command_line_says_it_in_one_line(monkeypatch, capsys, tmp_path):
    from RenderFMLib.demo import sample_paths

    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000_000)
    out = tmp_path / "model.safetensors"
    status = main(["prepare", str(sample_paths()[0]), "--spacing", "0.5", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and not out.exists()
    assert err.startswith("renderfm: error: resampling this CT to 298 M voxels needs about 2.4 GB")


@pytest.mark.parametrize("label", [7, 1000, 70_000])  # held in uint8, int16, int32
def test_labels_are_held_compactly_and_come_out_whole(sample_ct, sample_labels, label):
    """prepare keeps the label map in the smallest integer type while priming; the Gaussians
    still carry the labels themselves (int64)."""
    relabelled = Volume(torch.where(sample_labels.array > 0, label, 0), sample_labels.ijk_to_ras)
    made = prepare(sample_ct, relabelled, "CT-AAA")
    assert made.labels.dtype == torch.int64
    assert set(torch.unique(made.labels).tolist()) == {0, label}
