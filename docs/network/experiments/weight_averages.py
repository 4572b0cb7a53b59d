"""Probe (2026-12-06, not adopted): the shipped training run, plus exponential moving averages
(decays DECAYS) and a uniform average over the last TAIL steps of the network's weights, saved
beside the final weights and scored on the held-out scans (paired: the same run, the same draws).
Usage: OMP_NUM_THREADS=1 python docs/network/experiments/weight_averages.py MANIFEST OUT"""
import copy
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from RenderFMLib.network.weights import save_network
from RenderFMLib.training import trainer
from RenderFMLib.training.config import read_config
from RenderFMLib.training.heldout import heldout_cases, network_scores, summary
from RenderFMLib.training.manifest import read_manifest
from RenderFMLib.training.samples import load_grids

DECAYS = (0.98, 0.995)
TAIL = int(os.environ.get('TAIL', 200))
manifest, out = sys.argv[1], Path(sys.argv[2])
config = read_config("docs/network/train_config.json")
if os.environ.get("STEPS"):
    steps = int(os.environ["STEPS"])  # a smoke run
    config = dataclasses.replace(config, steps=steps, eval_every=steps)
held = {}
original = trainer._step


def step(network, optimizer, loss_of, config, index, lr, rank, world):
    loss = original(network, optimizer, loss_of, config, index, lr, rank, world)
    with torch.no_grad():
        now = [p.detach().clone() for p in network.parameters()]
        held["net"] = network
        for d in DECAYS:
            if d not in held:
                held[d] = [p.clone() for p in now]
            else:
                for e, p in zip(held[d], now):
                    e.mul_(d).add_(p, alpha=1 - d)
        if index >= config.steps - TAIL:
            tail = held.setdefault("tail", [torch.zeros_like(p) for p in now])
            for t, p in zip(tail, now):
                t.add_(p, alpha=1 / TAIL)
    return loss


trainer._step = step
started = time.monotonic()
result = trainer.train(manifest, config, out, about={"probe": "weight_averages.py"})
print("final", result.network, f"{time.monotonic() - started:.0f} s", flush=True)
nets = {}
for name in [*DECAYS, "tail"]:
    net = copy.deepcopy(held["net"])
    with torch.no_grad():
        for p, v in zip(net.parameters(), held[name]):
            p.copy_(v)
    save_network(net, out / f"weights_{name}.safetensors", {"probe": f"average {name}"})
    nets[name] = net
entries = read_manifest(manifest)
cases = heldout_cases([load_grids(e, (config.eval_spacing_mm,)) for e in entries if e.heldout],
                      config.eval_spacing_mm, config.eval_size)
for name, net in nets.items():
    print("average", name, summary(network_scores(net, cases)), flush=True)
