"""CPU benchmark of RenderFM on the bundled sample CT: preparation time, time per frame, memory.

    python Testing/bench/bench_cpu.py [--size 512] [--presets NAME ...] [--runs 5]

For each preset, a fresh Python process (so that one preset does not inherit another's peak
memory) reads the bundled sample (CT + segmentation) and measures, through the public API only
(RenderFMLib.api: prepare, render, default_camera, DEFAULT_PRESET):

- preparation: median wall time of --runs calls of prepare(ct_path, seg_path, preset), which
  includes reading and decompressing both files, with the shipped network (the default) and
  with weights=None (AGP alone), taking turns;
- time per frame: median over 8 orbit views (azimuth 0, 45, ... 315) of render(...) at
  --size x --size pixels, after one warm-up frame, with the network's Gaussians and AGP's in
  turn (the ratio is what the network's larger Gaussians cost per frame);
- the Gaussian count and the mean position scale (mm) of each;
- peak resident set size of that process (getrusage ru_maxrss), and its resident set size right
  after `import torch`, for reference (what any torch program costs before doing anything).

It prints the machine, one line per preset, and a markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ORBIT_VIEWS = 8


def _rss_mb() -> float:
    """Current resident set size in MB (VmRSS), or the peak so far where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _peak_rss_mb()


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(preset: str, size: int, runs: int) -> dict:
    """Run in a fresh process: everything the table reports for one preset."""
    import torch

    rss_after_torch = _rss_mb()
    from RenderFMLib.api import default_camera, prepare, render
    from RenderFMLib.demo import sample_paths

    ct_path, seg_path = sample_paths()
    prepare_s, agp_s = [], []
    for _ in range(runs):
        start = time.perf_counter()
        agp = prepare(ct_path, seg_path, preset, weights=None)
        agp_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        gaussians = prepare(ct_path, seg_path, preset)
        prepare_s.append(time.perf_counter() - start)

    render(gaussians, default_camera(gaussians), size)  # warm-up
    render(agp, default_camera(agp), size)
    frame_s, agp_frame_s = [], []
    for view in range(ORBIT_VIEWS):
        for model, times in ((gaussians, frame_s), (agp, agp_frame_s)):
            camera = default_camera(model, azimuth=360.0 * view / ORBIT_VIEWS)
            start = time.perf_counter()
            render(model, camera, size)
            times.append(time.perf_counter() - start)

    return {
        "preset": preset,
        "gaussians": len(gaussians),
        "voxels": "x".join(str(n) for n in gaussians.volume_shape[::-1]),
        "prepare_s": statistics.median(prepare_s),
        "prepare_all_s": prepare_s,
        "prepare_agp_s": statistics.median(agp_s),
        "frame_s": statistics.median(frame_s),
        "frame_all_s": frame_s,
        "frame_agp_s": statistics.median(agp_frame_s),
        "scale_mm": _mean_position_scale(gaussians),
        "scale_agp_mm": _mean_position_scale(agp),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_torch_mb": rss_after_torch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def _mean_position_scale(gaussians) -> float:
    """Mean over Gaussians and the three position axes of the scale (a standard deviation before
    correlations), in mm."""
    return float(gaussians.log_scales[:, :3].exp().mean())


def _machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    from RenderFMLib.api import DEFAULT_PRESET

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (512)")
    parser.add_argument("--presets", nargs="+", default=[DEFAULT_PRESET, "CT-Bone"],
                        help=f"presets to measure ({DEFAULT_PRESET} and CT-Bone)")
    parser.add_argument("--runs", type=int, default=5, help="preparations per preset (5)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one preset, JSON out
    args = parser.parse_args()
    if args.runs < 1 or args.size < 1:
        parser.error("--runs and --size must be positive")

    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.size, args.runs)))
        return 0

    machine = _machine()
    print(f"machine: {machine['platform']}, Python {machine['python']}")
    print(f"CPU:     {machine['cpu']}; torch {machine['torch']} with "
          f"{machine['threads']} threads (torch.get_num_threads())")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        print(f"load:    {load:.2f} (1-minute average on {os.cpu_count()} CPUs; other work on "
              "the machine slows the timings)")
    print(f"sample:  bundled CT + segmentation, {args.size}x{args.size} px, prepare median of "
          f"{args.runs}, frame median of {ORBIT_VIEWS} orbit views after 1 warm-up\n")

    rows = []
    for preset in args.presets:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", preset,
             "--size", str(args.size), "--runs", str(args.runs)],
            capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{preset}: failed\n{result.stderr.strip()}", file=sys.stderr)
            return 1
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{preset}: {row['gaussians']} Gaussians; prepare {row['prepare_s']:.2f} s "
              f"(AGP alone {row['prepare_agp_s']:.2f} s) "
              f"(runs {', '.join(f'{t:.2f}' for t in row['prepare_all_s'])}); "
              f"frame {1000 * row['frame_s']:.0f} ms "
              f"(views {min(row['frame_all_s']) * 1000:.0f}..{max(row['frame_all_s']) * 1000:.0f}"
              f" ms; AGP alone {1000 * row['frame_agp_s']:.0f} ms); mean position scale "
              f"{row['scale_mm']:.2f} mm (AGP {row['scale_agp_mm']:.2f}); "
              f"peak RSS {row['peak_rss_mb']:.0f} MB "
              f"(after import torch: {row['rss_after_torch_mb']:.0f} MB)")

    print()
    print(f"CPU: {machine['cpu']}, {machine['threads']} torch threads, torch {machine['torch']}, "
          f"{args.size}x{args.size} px, bundled sample CT ({rows[0]['voxels']} voxels) "
          "with its segmentation")
    print()
    print("| Preset | Gaussians | Prepare, network (AGP alone) (s) | "
          f"Frame {args.size}x{args.size}, network (AGP alone) (ms) | Peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['preset']} | {row['gaussians']:,} | {row['prepare_s']:.2f} "
              f"({row['prepare_agp_s']:.2f}) | "
              f"{1000 * row['frame_s']:.0f} ({1000 * row['frame_agp_s']:.0f}) | "
              f"{row['peak_rss_mb']:.0f} |")
    after_torch = max(row["rss_after_torch_mb"] for row in rows)
    print(f"\nPeak RSS is the whole process; `import torch` alone takes {after_torch:.0f} MB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
