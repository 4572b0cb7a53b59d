"""`renderfm make-gt`: ground-truth images for many (scan, preset, camera) triples, on disk.

Layout, one folder per scan, preset and renderer setting, so that a run with other settings
never overwrites an earlier one:

    OUT/<scan>/<preset>/<renderer>-<size>px[-<spp>spp]/view_000.png   RGBA, alpha = coverage
                                                        view_000.json  camera (RAS mm) + settings

Resumable: a view whose PNG and JSON both exist is skipped. Every file is written to a temporary
name and renamed, so an interrupted run never leaves a half-written image that a later run
would skip. A scan that cannot be read or rendered is reported and skipped; the batch goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..camera import Camera, orbit_camera
from ..errors import RenderFMError
from ..transfer import load_preset
from ..volume import Volume, read_ct
from .references import ReferenceImage, render_reference

Progress = Callable[[float, str], None]
PATH_TRACER_THREADS = 2
"""The path tracer's default thread count for ground truth: images depend on it, so it is fixed."""


@dataclass
class GroundTruthSummary:
    """What a make-gt run did: views rendered and skipped, scans that failed (path, reason)."""

    rendered: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def scan_name(path: Path) -> str:
    """A scan's folder name: its file name without image suffixes (ct.nii.gz -> ct)."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_scan_names(scans: Sequence[Path]) -> None:
    """RenderFMError if two scans would share a folder (same name in different places)."""
    seen: dict[str, Path] = {}
    for scan in scans:
        other = seen.setdefault(scan_name(scan), scan)
        if other != scan:
            raise RenderFMError(f"scans {other} and {scan} would share the folder "
                                f"'{scan_name(scan)}': rename one or run them separately")


def view_cameras(ct: Volume, views: int, elevations: Sequence[float]) -> list[Camera]:
    """`views` azimuths evenly spaced from the anterior view, at each elevation (degrees),
    framing the CT's bounding sphere."""
    return [orbit_camera(ct.center_ras(), ct.bounding_radius(), 360.0 * i / views, elevation)
            for elevation in elevations for i in range(views)]


def setting_name(renderer: str, size: int, spp: int) -> str:
    """The settings folder: renderer and size, plus samples per pixel for the path tracer."""
    return f"{renderer}-{size}px" + (f"-{spp}spp" if renderer == "pathtraced" else "")


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    partial = path.with_name(path.name + ".partial" + path.suffix)
    write(partial)
    os.replace(partial, path)


def _save_view(folder: Path, index: int, image: ReferenceImage, record: dict) -> None:
    rgb = np.clip(image.rgb, 0.0, 1.0)
    alpha = np.ones(rgb.shape[:2]) if image.alpha is None else np.clip(image.alpha, 0.0, 1.0)
    rgba = (np.dstack([rgb, alpha]) * 255.0 + 0.5).astype(np.uint8)
    _write_atomic(folder / f"view_{index:03d}.png", lambda p: Image.fromarray(rgba).save(p, "PNG"))
    _write_atomic(folder / f"view_{index:03d}.json",
                  lambda p: p.write_text(json.dumps(record, indent=2)))


def _missing(folder: Path, count: int) -> list[int]:
    return [i for i in range(count) if not ((folder / f"view_{i:03d}.png").is_file()
                                            and (folder / f"view_{i:03d}.json").is_file())]


def _scan_views(scan: Path, presets: Sequence[str], out: Path, renderer: str, size: int,
                spp: int, threads: int, cameras: Callable[[Volume], list[Camera]],
                summary: GroundTruthSummary, progress: Progress) -> None:
    ct = None
    for preset_name in presets:
        preset = load_preset(preset_name)
        folder = out / scan_name(scan) / preset.name / setting_name(renderer, size, spp)
        if ct is None:
            ct = read_ct(scan)
        views = cameras(ct)
        todo = _missing(folder, len(views))
        summary.skipped += len(views) - len(todo)
        if not todo:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for done, index in enumerate(todo):
            progress(done / len(todo), f"{scan_name(scan)} {preset.name} view {index + 1}")
            image = render_reference(renderer, ct, preset, [views[index]], size, spp=spp,
                                     threads=threads)[0]
            record = {"scan": str(scan), "preset": preset.name, "renderer": renderer,
                      "size": size, "camera": views[index].to_dict()}
            if renderer == "pathtraced":
                record.update(spp=spp, threads=threads, seed=0)
            _save_view(folder, index, image, record)
            summary.rendered += 1


def make_ground_truth(
    scans: Sequence[Path], presets: Sequence[str], out: Path, *, renderer: str = "dvr",
    size: int = 256, views: int = 8, elevations: Sequence[float] = (0.0,), spp: int = 64,
    threads: int = PATH_TRACER_THREADS, progress: Progress = lambda fraction, message: None,
) -> GroundTruthSummary:
    """Render ground truth for every scan x preset x view into `out` (layout above).

    threads: the path tracer's CPU threads: fixed, since its images are identical only for the
    same seed, samples per pixel and thread count.

    Presets are checked and scan names made unique before anything renders (RenderFMError);
    a scan that fails later is recorded in the summary with its reason and the batch goes on.
    """
    scans = [Path(scan) for scan in scans]
    check_scan_names(scans)
    for name in presets:
        load_preset(name)
    summary = GroundTruthSummary()
    for number, scan in enumerate(scans):
        def scan_progress(fraction: float, message: str, number: int = number) -> None:
            progress((number + fraction) / len(scans), message)
        try:
            _scan_views(scan, presets, out, renderer, size, spp, threads,
                        lambda ct: view_cameras(ct, views, elevations), summary, scan_progress)
        except RenderFMError as error:
            summary.failed.append((str(scan), str(error)))
    progress(1.0, "done")
    return summary
