"""A training run's checkpoint: RUN/checkpoint.safetensors (the network's weights and Adam's
state) and RUN/checkpoint.json (the step, the training config, the manifest's SHA-256), written
whole or not at all, never pickled. Resuming restores both, so a resumed run takes the same
steps as one that never stopped (samples depend only on the seed and the step).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import RenderFMError
from ..files import write_atomic
from ..model_file import save_safetensors
from ..network.model import RenderFMNetwork

WEIGHTS = "checkpoint.safetensors"
STATE = "checkpoint.json"


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(run: Path, network: RenderFMNetwork, optimizer: torch.optim.Optimizer,
                    state: dict) -> None:
    """Write the checkpoint of a run (state: step, config, manifest checksum, seconds...)."""
    tensors = {f"network.{name}": value.detach().cpu().contiguous()
               for name, value in network.state_dict().items()}
    adam = optimizer.state_dict()
    for index, entry in adam["state"].items():
        for key, value in entry.items():
            tensors[f"adam.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    state = {**state, "param_groups": adam["param_groups"]}
    write_atomic(run / WEIGHTS, lambda partial: save_safetensors(tensors, partial, {}))
    write_atomic(run / STATE, lambda partial: partial.write_text(
        json.dumps(state, indent=2) + "\n", encoding="utf-8"))


def load_checkpoint(run: Path, network: RenderFMNetwork,
                    optimizer: torch.optim.Optimizer) -> dict:
    """Restore network and optimizer from run's checkpoint; its state dict (step...).
    RenderFMError when there is none or it cannot be read."""
    if not (run / STATE).is_file() or not (run / WEIGHTS).is_file():
        raise RenderFMError(f"--resume: {run} holds no checkpoint ({STATE} and {WEIGHTS})")
    try:
        state = json.loads((run / STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(run / WEIGHTS))
        network.load_state_dict({name[len("network."):]: value for name, value in
                                 tensors.items() if name.startswith("network.")})
        adam: dict = {"state": {}, "param_groups": state["param_groups"]}
        for name, value in tensors.items():
            if name.startswith("adam."):
                _, index, key = name.split(".", 2)
                adam["state"].setdefault(int(index), {})[key] = value
        optimizer.load_state_dict(adam)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as error:
        raise RenderFMError(f"--resume: the checkpoint in {run} cannot be read ({error})") \
            from None
    return state
