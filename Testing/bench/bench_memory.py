"""Peak memory and time of `renderfm prepare` on a CT of clinical size (512 x 512 x 600 voxels).

    python Testing/bench/bench_memory.py [--slices 600] [--runs 3] [--seg none threshold]
        [--weights shipped none]

The CT is made from a real scan: ../shared/data/more_ct/lidc0314_chest (256 x 256 x 275 voxels
of 1.5625 x 1.5625 x 1 mm) resampled (linear, SimpleITK) onto 512 x 512 x --slices voxels over
the same extent, 0.78 x 0.78 x 0.46 mm for 600 slices, written as an int16 NIfTI into a
temporary folder. Each run is a fresh `renderfm prepare --preset CT-Bone` process; the figures
are its wall time and its peak resident set size (getrusage of the child), medians over --runs.
It prints the machine and a markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data_paths import SHARED_DATA  # noqa: E402

SOURCE = SHARED_DATA / "more_ct" / "lidc0314_chest" / "ct.nii.gz"
PRESET = "CT-Bone"


def make_ct(slices: int, folder: Path) -> Path:
    """The source scan resampled to 512 x 512 x slices voxels over its own extent (int16 HU)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(SOURCE))
    size = (512, 512, slices)
    spacing = [image.GetSpacing()[a] * image.GetSize()[a] / size[a] for a in range(3)]
    out = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                        spacing, image.GetDirection(), -1024, sitk.sitkInt16)
    path = folder / f"ct_512x512x{slices}.nii"
    sitk.WriteImage(out, str(path))
    return path


def run_once(ct: Path, segmentation: str, weights: str, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in GB) of one `renderfm prepare` child process."""
    command = [sys.executable, "-m", "RenderFMLib.cli", "prepare", str(ct), "--preset", PRESET,
               "--weights", weights, "-o", str(out)]
    if segmentation != "none":
        command += ["--seg", segmentation]
    pid, started = os.fork(), time.perf_counter()
    if pid == 0:  # the child: its own peak, not the parent's
        with open(os.devnull, "w") as quiet:
            os.dup2(quiet.fileno(), 1)
            os.dup2(quiet.fileno(), 2)
        os.execv(sys.executable, command)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"renderfm prepare failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1e6  # ru_maxrss is in kB on Linux


def _cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seg", nargs="+", default=["none", "threshold"],
                        choices=["none", "threshold"])
    parser.add_argument("--weights", nargs="+", default=["shipped"],
                        help="prepare's --weights: shipped (the network), none (AGP alone)")
    args = parser.parse_args()
    if not SOURCE.is_file():
        raise SystemExit(f"the source scan is missing: {SOURCE}")
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"machine: {_cpu_name()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; threads: {threads}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        ct = make_ct(args.slices, Path(folder))
        for segmentation in args.seg:
            for weights in args.weights:
                runs = [run_once(ct, segmentation, weights, Path(folder) / "model.safetensors")
                        for _ in range(args.runs)]
                seconds = statistics.median(r[0] for r in runs)
                peak = statistics.median(r[1] for r in runs)
                print(f"segmentation {segmentation}, weights {weights}: {seconds:.0f} s, peak "
                      f"RSS {peak:.2f} GB (runs: "
                      f"{', '.join(f'{s:.0f} s / {m:.2f} GB' for s, m in runs)})", flush=True)
                rows.append((segmentation, weights, seconds, peak))
    print(f"\n| CT 512 x 512 x {args.slices}, {PRESET} | weights | time | peak RSS |\n"
          "|---|---|---|---|")
    for segmentation, weights, seconds, peak in rows:
        print(f"| segmentation: {segmentation} | {weights} | {seconds:.0f} s | {peak:.2f} GB |")


if __name__ == "__main__":
    main()
