"""CPU benchmark of the 'dvr' reference renderer on the bundled sample CT.

    python Testing/bench/bench_dvr.py [--sizes 256 512] [--presets NAME ...] [--runs 3]
                                      [--threads N] [--device cpu]

For each preset and size: the fastest of --runs renders of the anterior orbit view at the default
step (half the smallest spacing: 1.5 mm on the sample's 3 mm voxels), as wall time and as the
process's CPU time (the steadier number on a shared machine), after one small warm-up render.
Prints the machine and a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from RenderFMLib.camera import orbit_camera
from RenderFMLib.groundtruth.dvr import render_dvr
from RenderFMLib.resources import resource_path
from RenderFMLib.volume import read_ct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--presets", nargs="+",
                        default=["CT-Bone", "CT-Chest-Contrast-Enhanced"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ct = read_ct(resource_path("sample", "ct.nii.gz"))
    camera = orbit_camera(ct.center_ras(), ct.bounding_radius(), 0.0, 0.0)
    render_dvr(ct, args.presets[0], camera, 32, device=args.device)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} threads, device {args.device}, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| preset | size | wall (s) | CPU (s) | opaque pixels |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        for size in args.sizes:
            best_wall = best_cpu = float("inf")
            for _ in range(args.runs):
                wall, cpu = time.perf_counter(), time.process_time()
                frame = render_dvr(ct, preset, camera, size, device=args.device)
                if args.device != "cpu":
                    torch.cuda.synchronize()
                best_wall = min(best_wall, time.perf_counter() - wall)
                best_cpu = min(best_cpu, time.process_time() - cpu)
            opaque = float((frame.alpha > 0.5).float().mean())
            print(f"| {preset} | {size} | {best_wall:.2f} | {best_cpu:.2f} | {opaque:.1%} |")


if __name__ == "__main__":
    main()
