"""Experiment, from the repository root:

    python docs/network/experiments/partial_blocks_train.py RUN_DIR [MANIFEST [THREADS]]

(by default docs/network/manifest.json and 2 threads): the shipped config
(docs/network/train_config.json) trained on AGP with the blocks it leaves out added
(agp_probes.py partial: blocks whose mean HU is under the opacity threshold but one of whose
voxels is over it, with partial-volume opacity). Asked: does a network that sees those blocks in
training draw thin vessels and rims better than the shipped one, without the haze the untrained
network leaves around bone on the 3 mm CT? Score it with
`agp_probes.py partial SCAN PRESET ... --weights RUN_DIR/weights.safetensors`."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agp_probes  # noqa: E402

from RenderFMLib import build  # noqa: E402
from RenderFMLib.training import trainer  # noqa: E402
from RenderFMLib.training.config import read_config  # noqa: E402

agp_probes.VARIANT["on"] = True
build.prime = agp_probes.prime_with_partial_blocks
manifest = sys.argv[2] if len(sys.argv) > 2 else "docs/network/manifest.json"
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
config = read_config("docs/network/train_config.json")
result = trainer.train(manifest, config, sys.argv[1], progress=lambda f, m: None,
                       about={"command": "docs/network/experiments/partial_blocks_train.py "
                                         + " ".join(sys.argv[1:])})
print(result)
