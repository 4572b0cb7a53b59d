"""Cropping on the bundled sample CT: AGP against Slicer's CPU ray cast cropped by the same ROI,
the time to redraw after an ROI move, and the time to prepare again after a Shift.

    python Testing/bench/bench_crop.py [--size 256] [--views 4] [--runs 5] [--preset CT-Bone]

Per box (none, three boxes: one cutting the spine and ribs across, one keeping the patient's
right, one turned 30 degrees about S), from --views orbit views: SSIM and foreground SSIM (pixels
either image covers) of api.render(crop=box) against Slicer's CPU ray cast with an ROI node of
that box (groundtruth.slicer_native.render_native, crop=box), as medians over the views; also
for the Gaussians cut at their centres (kept whole when the centre is inside), the simpler rule
render/clip.py improves on. Redraw: median of --runs renders at --size after moving the box by
5 mm (no new preparation), beside the uncropped render (the camera-move time). Shift: median of
--runs prepare() calls with the preset's opacity and colour points moved by +100 HU
(transfer.shifted). Prints the machine and a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bench_quality import load, machine  # this folder is on sys.path when run as a script

from RenderFMLib.api import CropBox, default_camera, prepare, render
from RenderFMLib.evaluation.metrics import ssim
from RenderFMLib.groundtruth.slicer_native import render_native
from RenderFMLib.optimize.evaluate import foreground
from RenderFMLib.resources import resource_path
from RenderFMLib.transfer import load_preset, shifted
from RenderFMLib.volume import read_ct

SLICER_BLACK = 2.0 / 255.0  # Slicer's images have no alpha: foreground = max channel above this
SHIFT_HU = 100.0


def boxes(centre: np.ndarray) -> dict[str, CropBox | None]:
    """The measured boxes around the sample's centre (RAS mm)."""
    r, a, s = centre
    turn = np.radians(30.0)
    about_s = ((np.cos(turn), -np.sin(turn), 0.0), (np.sin(turn), np.cos(turn), 0.0),
               (0.0, 0.0, 1.0))
    return {
        "none": None,
        "upper half (cuts spine, ribs)": CropBox.from_bounds(
            [r - 250, r + 250, a - 250, a + 250, s - 10, s + 250]),
        "patient's right": CropBox.from_bounds(
            [r - 250, r + 15, a - 250, a + 250, s - 250, s + 250]),
        "turned 30 deg about S": CropBox(tuple(centre), (200.0, 150.0, 180.0), about_s),
    }


def centre_cut(gaussians, box: CropBox):
    """The Gaussians whose centres lie inside box, kept whole (the rule clipping replaces)."""
    inside = torch.from_numpy(box.contains(gaussians.means.detach().cpu().numpy()))
    return gaussians.select(inside.to(gaussians.device))


def scores(ours, native: np.ndarray) -> tuple[float, float]:
    """(SSIM, foreground SSIM) of a Frame against a Slicer uint8 image."""
    reference = native.astype(np.float32) / 255.0
    rgb = ours.rgb.clamp(0, 1).float().cpu().numpy()
    mask = foreground(ours.alpha.float().cpu()).numpy() | (reference.max(-1) > SLICER_BLACK)
    return ssim(rgb, reference), ssim(rgb, reference, mask)


def quality(gaussians, ct, preset: str, cameras: list, size: int) -> list[tuple]:
    """Per box: (name, [SSIM, fg SSIM] clipped, [SSIM, fg SSIM] centre-cut), medians."""
    rows = []
    for name, box in boxes(gaussians.center_ras()).items():
        natives = render_native(ct, preset, cameras, size, crop=box)
        clipped = [scores(render(gaussians, c, size, crop=box), n)
                   for c, n in zip(cameras, natives)]
        cut = gaussians if box is None else centre_cut(gaussians, box)
        centred = [scores(render(cut, c, size), n) for c, n in zip(cameras, natives)]
        rows.append((name, np.median(clipped, axis=0), np.median(centred, axis=0)))
    return rows


def timed(work, runs: int) -> float:
    """Median seconds of runs calls of work(), after one warm-up call."""
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def redraw_times(gaussians, camera, size: int, runs: int) -> tuple[float, float]:
    """(uncropped render, cropped render after a 5 mm ROI move) median seconds at size."""
    box = boxes(gaussians.center_ras())["upper half (cuts spine, ribs)"]
    moves = iter(range(10 ** 6))

    def moved() -> None:
        offset = 5.0 * (next(moves) % 2)
        render(gaussians, camera, size,
               crop=CropBox((box.center[0], box.center[1], box.center[2] + offset), box.size))

    return timed(lambda: render(gaussians, camera, size), runs), timed(moved, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--preset", default="CT-Bone")
    args = parser.parse_args()
    ct_path = resource_path("sample", "ct.nii.gz")
    seg_path = resource_path("sample", "segmentation.nii.gz")
    gaussians = prepare(ct_path, seg_path, args.preset)
    cameras = [default_camera(gaussians, azimuth) for azimuth in
               np.linspace(0.0, 360.0, args.views, endpoint=False)]
    print(f"machine: {machine()}, load {load()}; sample CT, {args.preset}, {len(gaussians)} "
          f"Gaussians, {args.views} views at {args.size} px")
    print("| box | SSIM clipped | fg SSIM clipped | SSIM centre-cut | fg SSIM centre-cut |")
    print("|---|---|---|---|---|")
    for name, clipped, centred in quality(gaussians, read_ct(ct_path), args.preset, cameras,
                                          args.size):
        print(f"| {name} | {clipped[0]:.3f} | {clipped[1]:.3f} | {centred[0]:.3f} | "
              f"{centred[1]:.3f} |")
    whole, cropped = redraw_times(gaussians, cameras[0], args.size, args.runs)
    print(f"redraw at {args.size} px: uncropped (camera move) {1000 * whole:.0f} ms, after an "
          f"ROI move {1000 * cropped:.0f} ms (medians of {args.runs})")
    look = shifted(load_preset(args.preset), SHIFT_HU)
    seconds = timed(lambda: prepare(ct_path, seg_path, look), args.runs)
    print(f"prepare again after a +{SHIFT_HU:g} HU shift: {seconds:.2f} s (median of "
          f"{args.runs}, reading the files included)")


if __name__ == "__main__":
    main()
