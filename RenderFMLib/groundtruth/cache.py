"""`renderfm make-gt`: ground-truth images for many (scan, preset, camera) triples, on disk.

Layout, one folder per scan, preset and renderer setting:

    OUT/<scan>/<preset>/<renderer>-<size>px[-<spp>spp]/settings.json   what made this folder
                                                        view_000.png    RGB over black
                                                        view_000_alpha.png  coverage (0..255)
                                                        view_000.json   camera (RAS mm)

<scan> is the file name without its image suffix (ct.nii.gz -> ct), prefixed with the parent
folder's name when scans of one batch share a file name (TotalSegmentator's s0001/ct.nii.gz ->
s0001_ct). settings.json holds the scan path, the cameras (views, elevations) and the path
tracer's seed, thread count and Mitsuba variant: a later run into the same folder with other
settings is refused rather than mixed in. Resumable: a view whose three files exist is skipped.
Every file is written under a hidden temporary name and renamed, so an interrupted run never
leaves a half-written image; stale temporary files are removed. A scan that cannot be read or
rendered is reported and skipped; the batch goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..camera import Camera, orbit
from ..errors import RenderFMError
from ..files import PARTIAL_SUFFIX, write_atomic
from ..frame import Progress
from ..transfer import load_preset
from ..volume import Volume, read_ct
from .renderers import GroundTruthImage, default_variant, groundtruth_problem, render_groundtruth

RENDERERS = ("dvr", "pathtraced")
PATH_TRACER_THREADS = 2
"""The path tracer's default thread count for ground truth: images depend on it, so it is fixed."""
SEED = 0
_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


@dataclass
class GroundTruthSummary:
    """What a make-gt run did: views rendered and skipped, scans that failed (path, reason)."""

    rendered: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _stem(path: Path) -> str:
    name = path.name
    suffix = next((s for s in _SUFFIXES if name.lower().endswith(s)), "")
    return name[: len(name) - len(suffix)]


def scan_names(scans: Sequence[Path]) -> dict[Path, str]:
    """Each scan's folder name (see the module docstring); RenderFMError if two scans would
    still share one."""
    stems = [_stem(scan) for scan in scans]
    names = {scan: (f"{scan.parent.name}_{stem}" if stems.count(stem) > 1 else stem)
             for scan, stem in zip(scans, stems)}
    seen: dict[str, Path] = {}
    for scan, name in names.items():
        if seen.setdefault(name, scan) != scan:
            raise RenderFMError(f"scans {seen[name]} and {scan} would share the folder '{name}': "
                                "rename one or run them separately")
    return names


def view_cameras(ct: Volume, views: int, elevations: Sequence[float]) -> list[Camera]:
    """`views` azimuths evenly spaced from the anterior view, at each elevation (degrees),
    framing the CT's bounding sphere."""
    return [camera for elevation in elevations
            for camera in orbit(ct.center_ras(), ct.bounding_radius(), views, elevation)]


def setting_name(renderer: str, size: int, spp: int) -> str:
    """The settings folder: renderer and size, plus samples per pixel for the path tracer."""
    return f"{renderer}-{size}px" + (f"-{spp}spp" if renderer == "pathtraced" else "")


def _save_view(folder: Path, index: int, image: GroundTruthImage, camera: Camera) -> None:
    def png(pixels: np.ndarray) -> Callable[[Path], None]:
        return lambda path: Image.fromarray(pixels).save(path, "PNG")

    rgb = (np.clip(image.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    alpha = np.ones(rgb.shape[:2]) if image.alpha is None else np.clip(image.alpha, 0.0, 1.0)
    write_atomic(folder / f"view_{index:03d}.png", png(rgb))
    write_atomic(folder / f"view_{index:03d}_alpha.png",
                 png((alpha * 255.0 + 0.5).astype(np.uint8)))
    write_atomic(folder / f"view_{index:03d}.json",
                 lambda path: path.write_text(json.dumps({"camera": camera.to_dict()}, indent=2)))


def _missing(folder: Path, count: int) -> list[int]:
    names = ("{:03d}.png", "{:03d}_alpha.png", "{:03d}.json")
    return [i for i in range(count)
            if not all((folder / ("view_" + name.format(i))).is_file() for name in names)]


def _check_settings(folder: Path, settings: dict) -> None:
    """RenderFMError if folder was made with other settings than these."""
    path = folder / "settings.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())
    if before != settings:
        changed = sorted(k for k in settings.keys() | before.keys()
                         if before.get(k) != settings.get(k))
        raise RenderFMError(f"{folder} was made with other settings ({', '.join(changed)} "
                            "differ); use another output folder or the same settings")


def _start(folder: Path, settings: dict) -> None:
    """Make folder with its settings.json, and remove temporary files an earlier run left."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".*{PARTIAL_SUFFIX}"):  # left by a killed run
        stale.unlink()
    write_atomic(folder / "settings.json", lambda p: p.write_text(json.dumps(settings, indent=2)))


@dataclass(frozen=True)
class _Job:
    """One make-gt run's settings (see make_ground_truth)."""

    out: Path
    renderer: str
    size: int
    views: int
    elevations: tuple[float, ...]
    spp: int
    threads: int
    variant: str | None

    def settings(self, scan: Path, preset: str) -> dict:
        settings = {"scan": str(scan.resolve()), "preset": preset, "renderer": self.renderer,
                    "size": self.size, "views": self.views, "elevations": list(self.elevations)}
        if self.renderer == "pathtraced":
            settings.update(spp=self.spp, threads=self.threads, variant=self.variant, seed=SEED)
        return settings


def _scan_views(job: _Job, scan: Path, name: str, presets: Sequence[str],
                summary: GroundTruthSummary, progress: Progress) -> None:
    ct = None
    count = job.views * len(job.elevations)
    for preset_name in presets:
        preset = load_preset(preset_name)
        folder = job.out / name / preset.name / setting_name(job.renderer, job.size, job.spp)
        settings = job.settings(scan, preset.name)
        _check_settings(folder, settings)
        todo = _missing(folder, count)
        summary.skipped += count - len(todo)
        if not todo:
            continue
        ct = ct if ct is not None else read_ct(scan)
        _start(folder, settings)
        cameras = view_cameras(ct, job.views, job.elevations)
        for done, index in enumerate(todo):
            progress(done / len(todo), f"{name} {preset.name} view {index + 1}")
            image = render_groundtruth(job.renderer, ct, preset, [cameras[index]], job.size,
                                     spp=job.spp, threads=job.threads, variant=job.variant)[0]
            _save_view(folder, index, image, cameras[index])
            summary.rendered += 1


def read_views(folder: str | Path) -> tuple[dict, list[tuple[Camera, GroundTruthImage]]]:
    """(settings, [(camera, image)]) of one settings folder (OUT/<scan>/<preset>/<setting>), its
    complete views in order; RenderFMError when it is not such a folder or holds no view."""
    folder = Path(folder)
    if not (folder / "settings.json").is_file():
        raise RenderFMError(f"{folder} is not a make-gt folder (no settings.json); give "
                            "OUT/<scan>/<preset>/<renderer>-<size>px[-<spp>spp]")
    settings = json.loads((folder / "settings.json").read_text())
    count = settings["views"] * len(settings["elevations"])
    views = []
    for index in sorted(set(range(count)) - set(_missing(folder, count))):
        stem = folder / f"view_{index:03d}"
        camera = Camera.from_dict(json.loads(stem.with_suffix(".json").read_text())["camera"])
        rgb = np.asarray(Image.open(stem.with_suffix(".png")).convert("RGB"), np.float32) / 255.0
        alpha = np.asarray(Image.open(f"{stem}_alpha.png").convert("L"), np.float32) / 255.0
        views.append((camera, GroundTruthImage(rgb, alpha)))
    if not views:
        raise RenderFMError(f"{folder} holds no complete view yet (run make-gt to the end)")
    return settings, views


def _check(renderer: str, presets: Sequence[str], views: int,
           elevations: Sequence[float]) -> None:
    if renderer not in RENDERERS:
        raise RenderFMError(f"make-gt renders with {' or '.join(RENDERERS)}, not '{renderer}'")
    if (problem := groundtruth_problem(renderer)) is not None:
        raise RenderFMError(f"{renderer}: {problem}")
    if not presets or views < 1 or not elevations:
        raise RenderFMError("make-gt needs at least one preset, one view and one elevation")
    for name in presets:
        load_preset(name)


def make_ground_truth(
    scans: Sequence[Path], presets: Sequence[str], out: Path, *, renderer: str = "pathtraced",
    size: int = 256, views: int = 8, elevations: Sequence[float] = (0.0,), spp: int = 64,
    threads: int = PATH_TRACER_THREADS, variant: str | None = None,
    progress: Progress = lambda fraction, message: None,
) -> GroundTruthSummary:
    """Render ground truth for every scan x preset x view into `out` (layout above).

    renderer: "pathtraced" or "dvr"; views azimuths at each of elevations (degrees); spp, threads,
    variant: the path tracer's samples per pixel, CPU threads and Mitsuba variant (None: the one
    this machine uses, renderers.default_variant), fixed per folder since its images depend on
    them. Renderer, presets and scan names are checked before anything renders (RenderFMError);
    a scan that fails later is recorded in the summary with its reason and the batch goes on.
    """
    scans = [Path(scan) for scan in scans]
    names = scan_names(scans)
    _check(renderer, presets, views, elevations)
    if renderer == "pathtraced" and variant is None:
        variant = default_variant()
    job = _Job(Path(out), renderer, size, views, tuple(elevations), spp, threads, variant)
    summary = GroundTruthSummary()
    for number, scan in enumerate(scans):
        def scan_progress(fraction: float, message: str, number: int = number) -> None:
            progress((number + fraction) / len(scans), message)
        try:
            _scan_views(job, scan, names[scan], presets, summary, scan_progress)
        except RenderFMError as error:
            summary.failed.append((str(scan), str(error)))
    progress(1.0, "done")
    return summary
