"""GPU benchmark of the CUDA renderer: time per frame by stage, peak GPU memory, preparation.

    python Testing/bench/bench_gpu.py [--gaussians 0.1 0.5 1 2 4] [--sizes 512x512 ...]
                                      [--runs 10] [--backward] [--no-prepare]

For each number of Gaussians (millions) and image size, renders --runs frames from an orbit
around a CT-sized box of random AGP-like Gaussians (6 mm blocks: sigma 2.1 mm, the direction
scales of DESIGN.md section 5) after 2 warm-up frames, timing each stage on the GPU with CUDA
events (slice_project, tile_keys including its sort and its one 8-byte read-back, blend; with
--backward also the backward pass), and reports medians, the instances (Gaussian x tile) per
frame and torch's peak allocated GPU memory (CuPy allocates nothing: every buffer is a torch
tensor). Also the time to compile the kernels (NVRTC, or CuPy's disk cache on later runs) and,
unless --no-prepare, prepare() of the bundled CT resampled to 512x512x300 (--slices) on the GPU
(two presets, with the shipped network and with AGP alone; median of 3 after one untimed run;
the volume already on the GPU, so no file reading) and its peak GPU memory.

Prints the GPU, one line per configuration and a markdown table for the README. Exits with a
message (status 1) where there is no GPU or CuPy.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time

STAGES = ("slice_project", "tile_keys", "blend")
BOX_MM = 300.0  # side of the cube the Gaussians fill, about a CT's field of view


def _scene(n: int, device):
    """n random Gaussians (float32 on device) in a BOX_MM cube centred at the origin, as AGP
    makes them for 6 mm blocks (DESIGN.md section 5), with the slicing terms precomputed."""
    import torch

    from RenderFMLib.render.reference import precompute

    gen = torch.Generator(device=device).manual_seed(0)
    rand = functools.partial(torch.rand, generator=gen, device=device)
    log_scales = torch.cat([torch.full((n, 3), math.log(0.35 * 6.0), device=device),
                            torch.full((n, 3), math.log(3.0), device=device)], dim=1)
    log_scales += 0.2 * (rand(n, 6) - 0.5)
    corr_logits = 0.5 * (rand(n, 15) - 0.5)
    with torch.no_grad():
        s_c, gains, s_dd_inv = precompute(log_scales, corr_logits)
    dirs = torch.nn.functional.normalize(rand(n, 3) - 0.5, dim=1)
    sh = torch.cat([torch.full((n, 1), 2.0, device=device), 0.3 * (rand(n, 8) - 0.5)], dim=1)
    specular_sh = 0.1 * (rand(n, 9) - 0.5)  # white light, negative from some directions
    return [BOX_MM * (rand(n, 3) - 0.5), dirs, s_c, gains, s_dd_inv, 4.0 * rand(n) - 3.0,
            rand(n, 3), sh, specular_sh]


def _views(width: int, height: int, device, count: int) -> list:
    """World_to_camera, intrinsics, centre of `count` orbit views around the box."""
    import torch

    from RenderFMLib.camera import Camera, camera_tensors

    views = []
    for k in range(count):
        angle = 2.0 * math.pi * k / count
        position = (450.0 * math.cos(angle), 450.0 * math.sin(angle), 120.0)
        cam = Camera(position=position, focal_point=(0.0, 0.0, 0.0), view_up=(0.0, 0.0, 1.0),
                     view_angle=40.0)
        views.append(camera_tensors(cam, width, height, device, torch.float32))
    return views


def _frame(gaussians, view, width, height, background, backward: bool) -> tuple[dict, int]:
    """One frame; returns (GPU ms per stage, instances)."""
    import torch

    from RenderFMLib.render.cuda.stages import blend, slice_project, tile_keys

    events = [torch.cuda.Event(enable_timing=True) for _ in range(5)]
    events[0].record()
    projected = slice_project(*gaussians, *view, width, height)
    events[1].record()
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height)
    events[2].record()
    outputs = blend(projected["means2d"], projected["conics"], projected["colors"],
                    projected["opacities"], projected["depths"], ids, ranges, width, height,
                    background)
    events[3].record()
    if backward:
        sum(o.sum() for o in outputs).backward()
    events[4].record()
    torch.cuda.synchronize()
    times = {stage: events[k].elapsed_time(events[k + 1]) for k, stage in enumerate(STAGES)}
    times["frame"] = events[0].elapsed_time(events[3])
    if backward:
        times["backward"] = events[3].elapsed_time(events[4])
    return times, len(ids)


def measure(millions: float, width: int, height: int, runs: int, backward: bool) -> dict:
    """Medians over `runs` orbit views after 2 warm-up frames, and the peak memory."""
    import torch

    device = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    gaussians = _scene(int(millions * 1e6), device)
    if backward:
        for tensor in gaussians:
            tensor.requires_grad_()
    background = torch.zeros(3, device=device)
    views = _views(width, height, device, runs + 2)
    samples = []
    for k, view in enumerate(views):
        with torch.set_grad_enabled(backward):
            times, instances = _frame(gaussians, view, width, height, background, backward)
        if k >= 2:
            samples.append((times, instances))
    result = {key: statistics.median(t[key] for t, _ in samples) for key in samples[0][0]}
    result["instances"] = statistics.median(m for _, m in samples)
    result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


def _compile_seconds() -> float:
    import torch

    from RenderFMLib.render.cuda.loader import kernels

    start = time.perf_counter()
    kernels(torch.device("cuda", torch.cuda.current_device()))
    return time.perf_counter() - start


def _prepare_seconds(runs: int, preset: str, weights: str | None,
                     slices: int) -> tuple[float, int, float]:
    """(median seconds, Gaussians, peak GB) of prepare() on the bundled CT resampled to 512 x 512
    x slices (on the GPU), with the shipped network (weights="shipped") or AGP alone (None); one
    untimed run first; peak: torch.cuda.max_memory_allocated during the runs."""
    import torch

    from RenderFMLib.api import prepare
    from RenderFMLib.demo import sample_paths
    from RenderFMLib.volume import Volume, read_ct

    ct = read_ct(sample_paths()[0])
    shape = (slices, 512, 512)  # K, J, I
    array = torch.nn.functional.interpolate(ct.array[None, None].cuda(), size=shape,
                                            mode="trilinear", align_corners=True)[0, 0]
    scale = [(old - 1) / (new - 1) for old, new in zip(ct.array.shape[::-1], shape[::-1])]
    ijk_to_ras = ct.ijk_to_ras.copy()
    ijk_to_ras[:3, :3] = ijk_to_ras[:3, :3] * scale
    volume = Volume(array, ijk_to_ras)
    seconds, count = [], 0
    torch.cuda.reset_peak_memory_stats()
    for run in range(runs + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        count = len(prepare(volume, preset=preset, weights=weights, device="cuda"))
        torch.cuda.synchronize()
        if run:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), count, torch.cuda.max_memory_allocated() / 1e9


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gaussians", type=float, nargs="+", default=[0.1, 0.5, 1, 2, 4],
                        help="millions of Gaussians (0.1 0.5 1 2 4)")
    parser.add_argument("--sizes", type=_size, nargs="+",
                        default=[(512, 512), (1024, 1024), (1920, 1080)],
                        help="image sizes WxH (512x512 1024x1024 1920x1080)")
    parser.add_argument("--runs", type=int, default=10, help="timed frames per setting (10)")
    parser.add_argument("--backward", action="store_true", help="also time the backward pass")
    parser.add_argument("--no-prepare", action="store_true", help="skip timing prepare()")
    parser.add_argument("--slices", type=int, default=300,
                        help="slices of the 512x512 CT that prepare() is timed on (300)")
    args = parser.parse_args()

    from RenderFMLib.render.cuda.loader import available

    reason = available()
    if reason is not None:
        print(f"bench_gpu: the CUDA renderer cannot run here: {reason}", file=sys.stderr)
        return 1
    import torch

    print(f"GPU:   {torch.cuda.get_device_name()}; torch {torch.__version__}, "
          f"CuPy {__import__('cupy').__version__}")
    print(f"setup: medians of {args.runs} orbit views after 2 warm-ups; CUDA events; "
          "peak = torch.cuda.max_memory_allocated")
    print(f"kernels compiled (or loaded from CuPy's cache) in {_compile_seconds():.2f} s")
    if not args.no_prepare:
        for preset in ("CT-Chest-Contrast-Enhanced", "CT-Bone"):
            for weights, label in (("shipped", "network"), (None, "AGP alone")):
                seconds, count, peak = _prepare_seconds(3, preset, weights, args.slices)
                print(f"prepare() of a 512x512x{args.slices} CT on the GPU, {preset}, {label}: "
                      f"{seconds:.2f} s ({count:,} Gaussians, peak {peak:.1f} GB)", flush=True)
    header = ("| Gaussians | Image | Instances | slice+project (ms) | tile keys+sort (ms) | "
              "blend (ms) | frame (ms) | FPS |" + (" backward (ms) |" if args.backward else "")
              + " peak GPU memory (GB) |")
    rows = []
    for millions in args.gaussians:
        for width, height in args.sizes:
            r = measure(millions, width, height, args.runs, args.backward)
            row = (f"| {millions:g} M | {width}x{height} | {r['instances'] / 1e6:.1f} M | "
                   f"{r['slice_project']:.2f} | {r['tile_keys']:.2f} | {r['blend']:.2f} | "
                   f"{r['frame']:.2f} | {1000.0 / r['frame']:.0f} |"
                   + (f" {r['backward']:.2f} |" if args.backward else "")
                   + f" {r['peak_gb']:.2f} |")
            print(row, flush=True)
            rows.append(row)
    print("\n" + header + "\n|" + "---|" * (header.count("|") - 1) + "\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
