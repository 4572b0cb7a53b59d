"""Time the CPU kernels' precompute stage (render/cpu/pipeline.py) on 70,000 Gaussians, forward
and forward + backward, beside torch's exp and sigmoid of the same log-scales and correlation
logits (what the stage's 21 transcendental functions per Gaussian cost when vectorised). Run it
under `perf record` to see where the stage's time goes.

    python docs/quality_probes/precompute_timing.py
"""

import time

import torch

from RenderFMLib.render.cpu import pipeline

torch.manual_seed(0)
n = 70_000
log_scales = (torch.rand(n, 6) * 1.5).requires_grad_()
corr_logits = torch.randn(n, 15).requires_grad_()
cotangents = [torch.randn(n, 3, 3) for _ in range(3)]


def timed(work, loops=50):
    for _ in range(3):
        work()
    started = time.perf_counter()
    for _ in range(loops):
        work()
    return (time.perf_counter() - started) / loops * 1e3


def forward_backward():
    torch.autograd.backward(pipeline.precompute(log_scales, corr_logits), cotangents)


with torch.no_grad():
    print(f"forward {timed(lambda: pipeline.precompute(log_scales, corr_logits)):.2f} ms")
print(f"forward and backward {timed(forward_backward):.2f} ms")
with torch.no_grad():
    vectorised = timed(lambda: (log_scales.exp(), corr_logits.sigmoid()))
    print(f"torch exp and sigmoid {vectorised:.2f} ms")
