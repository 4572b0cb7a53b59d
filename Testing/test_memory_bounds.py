"""Preparation in bounded memory gives the same Gaussians: AGP primed slab by slab equals AGP of
the whole CT, and the slicing terms cached chunk by chunk equal one precompute over all.

The slab size is forced down to a few block rows, so the bundled sample (56 block rows) is cut
into many slabs, odd last slices and slab edges included. Peak memory on a clinical-size CT is
measured by Testing/bench/bench_memory.py, not here.
"""

import pytest
import torch

from RenderFMLib import build, gaussians
from RenderFMLib.build import build_gaussians
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
