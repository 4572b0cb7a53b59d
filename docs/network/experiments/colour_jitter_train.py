"""Experiment (python docs/network/experiments/colour_jitter_train.py RUN_DIR, from the repository
root): the shipped config (docs/network/train_config.json, with position offsets) with each
training sample's preset colours also jittered: every colour point's RGB scaled by one
brightness gain in [1 - JITTER, 1 + JITTER] and each channel by its own tint gain in
[1 - JITTER / 2, 1 + JITTER / 2] (clipped to [0, 1]). The `dvr` target uses the same jittered
preset, so the network must read colour from its input channels instead of learning the
training presets' colours. Asked: does the unseen preset (CT-Muscle) stop being darker than
`dvr` on example_ct?"""
import sys
from dataclasses import replace

import torch

from RenderFMLib.training import samples, trainer
from RenderFMLib.training.config import read_config

JITTER = 0.2
shipped_perturbed = samples.perturbed


def colour_jittered(preset, generator):
    """samples.perturbed, then the colour points' brightness and tint scaled."""
    moved = shipped_perturbed(preset, generator)
    gain = generator.uniform(1.0 - JITTER, 1.0 + JITTER)
    tint = generator.uniform(1.0 - JITTER / 2, 1.0 + JITTER / 2, 3)
    color = tuple((hu, *(min(1.0, max(0.0, value * gain * t)) for value, t in zip(rgb, tint)))
                  for hu, *rgb in moved.color)
    return replace(moved, color=color)


samples.perturbed = colour_jittered
torch.set_num_threads(2)
config = read_config("docs/network/train_config.json")
result = trainer.train("docs/network/manifest.json", config, sys.argv[1],
                       progress=lambda f, m: None,
                       about={"command": "docs/network/experiments/colour_jitter_train.py "
                                         + sys.argv[1]})
print(result)
