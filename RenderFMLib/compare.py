"""`renderfm compare`: RenderFM beside the ground-truth renderers, over an orbit, with metrics.

Every renderer sees the same CT, preset and cameras (an orbit from the anterior view). Each image
is scored against one target renderer (pathtraced by default, the photorealistic look; dvr when
Mitsuba is missing) with PSNR, SSIM, MS-SSIM and LPIPS where available, over the whole image and
over the foreground ("masked": pixels the target covers with alpha > FOREGROUND_ALPHA). Results:
a montage PNG (rows = views, columns = renderers, scores under each tile), metrics.md and
metrics.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .api import DEFAULT_PRESET, Progress, prepare, render
from .camera import Camera, orbit
from .errors import RenderFMError
from .evaluation.metrics import image_metrics
from .files import write_atomic
from .groundtruth.renderers import (
    GROUNDTRUTH_RENDERERS,
    GroundTruthImage,
    groundtruth_problem,
    render_groundtruth,
)
from .transfer import Preset, load_preset
from .volume import Volume, read_ct

RENDERFM_MODES = {"renderfm-agp": "RenderFM, Anatomy-Guided Priming alone",
                  "renderfm": "RenderFM, AGP refined by the bundled network"}
_WEIGHTS = {"renderfm-agp": None, "renderfm": "shipped"}  # prepare()'s weights for each mode
FOREGROUND_ALPHA = 0.05
LABEL_HEIGHT = 18



@dataclass
class CompareResult:
    """Images and scores of one comparison. images[name][view], scores[name][view] (a metrics
    dict; the target has none); skipped: renderers that could not run here, with the reason."""

    preset: str
    target: str
    cameras: list[Camera]
    images: dict[str, list[GroundTruthImage]] = field(default_factory=dict)
    scores: dict[str, list[dict]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def renderer_names() -> list[str]:
    """Every renderer compare knows: RenderFM's modes, then the ground-truth renderers."""
    return [*RENDERFM_MODES, *GROUNDTRUTH_RENDERERS]


def _renderfm_images(mode: str, ct: Volume, segmentation, preset: Preset,
                     cameras: Sequence[Camera], size: int,
                     progress: Progress) -> list[GroundTruthImage]:
    gaussians = prepare(ct, segmentation, preset, weights=_WEIGHTS[mode],
                        progress=lambda f, m: progress(0.5 * f, m))
    images = []
    for number, camera in enumerate(cameras):
        frame = render(gaussians, camera, size)
        images.append(GroundTruthImage(frame.rgb.detach().clamp(0.0, 1.0).numpy(),  # display
                                     frame.alpha.detach().numpy()))
        progress(0.5 + 0.5 * (number + 1) / len(cameras), f"view {number + 1}/{len(cameras)}")
    return images


def _choose(renderers: Sequence[str] | None, target: str | None) -> tuple[list[str], str]:
    names = list(renderers) if renderers else renderer_names()
    unknown = [name for name in names if name not in renderer_names()]
    if unknown:
        raise RenderFMError(f"unknown renderer {', '.join(unknown)}; choose from "
                            f"{', '.join(renderer_names())}")
    if target is None:
        path_traced = "pathtraced" in names and groundtruth_problem("pathtraced") is None
        target = "pathtraced" if path_traced else "dvr"
    if target not in GROUNDTRUTH_RENDERERS:
        raise RenderFMError("the target must be a ground-truth renderer "
                            f"({', '.join(GROUNDTRUTH_RENDERERS)}), not '{target}'")
    if groundtruth_problem(target) is not None:
        raise RenderFMError(f"target {target}: {groundtruth_problem(target)}")
    return [target] + [name for name in names if name != target], target


def _score(image: GroundTruthImage, target: GroundTruthImage) -> dict:
    """image_metrics against the target, masked to the target's foreground where it has alpha
    (the Slicer renderers have none) and that foreground is not all at the border."""
    mask = None if target.alpha is None else target.alpha > FOREGROUND_ALPHA
    try:
        return image_metrics(image.rgb, target.rgb, mask=mask)
    except ValueError:  # a foreground SSIM cannot see (within 5 px of the border)
        return image_metrics(image.rgb, target.rgb)


def compare(
    ct: Volume | str | Path, preset: Preset | str = DEFAULT_PRESET, *, segmentation=None,
    views: int = 4, size: int = 256, renderers: Sequence[str] | None = None,
    target: str | None = None, spp: int = 16, progress: Progress = lambda f, m: None,
) -> CompareResult:
    """Render the CT with each renderer from `views` orbit cameras at size x size pixels and
    score every image against `target` (see the module docstring). Renderers that cannot run
    here (a missing optional package) are skipped with their reason; unknown names and an
    unusable target are a RenderFMError before any rendering."""
    if views < 1:
        raise RenderFMError(f"views must be at least 1, not {views}")
    names, target = _choose(renderers, target)
    ct = ct if isinstance(ct, Volume) else read_ct(ct)
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    cameras = orbit(ct.center_ras(), ct.bounding_radius(), views)
    result = CompareResult(preset.name, target, cameras)
    # RenderFM first: a bad segmentation shows before minutes of path tracing.
    for number, name in enumerate(sorted(names, key=lambda n: n not in RENDERFM_MODES)):
        def step(fraction: float, message: str, number: int = number, name: str = name) -> None:
            progress((number + fraction) / len(names), f"{name}: {message}")
        if name in RENDERFM_MODES:
            result.images[name] = _renderfm_images(name, ct, segmentation, preset, cameras, size,
                                                   step)
        elif (problem := groundtruth_problem(name)) is not None:
            result.skipped[name] = problem
        else:
            result.images[name] = render_groundtruth(name, ct, preset, cameras, size, spp=spp,
                                                   progress=step)
    result.images = {name: result.images[name] for name in names if name in result.images}
    for name, images in result.images.items():
        if name != target:
            result.scores[name] = [_score(image, goal)
                                   for image, goal in zip(images, result.images[target])]
    progress(1.0, "done")
    return result


def _format(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.3f}"


def _tile_label(comparison: CompareResult, name: str, view: int) -> str:
    if name == comparison.target:
        return "target"
    score = comparison.scores[name][view]
    return f"SSIM {_format(score['ssim'])}  PSNR {_format(score['psnr'])}"


def montage(comparison: CompareResult) -> Image.Image:
    """Rows = views, columns = renderers; renderer names on top, scores under every tile."""
    names = list(comparison.images)
    side = next(iter(comparison.images.values()))[0].rgb.shape[0]
    font = ImageFont.load_default()
    rows = len(comparison.cameras)
    sheet = Image.new("RGB", (side * len(names), LABEL_HEIGHT + rows * (side + LABEL_HEIGHT)),
                      (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for column, name in enumerate(names):
        draw.text((column * side + 4, 3), name, fill=(255, 255, 255), font=font)
        for view, image in enumerate(comparison.images[name]):
            top = LABEL_HEIGHT + view * (side + LABEL_HEIGHT)
            pixels = (np.clip(image.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            sheet.paste(Image.fromarray(pixels), (column * side, top))
            draw.text((column * side + 4, top + side + 3), _tile_label(comparison, name, view),
                      fill=(220, 220, 220), font=font)
    return sheet


def metrics_markdown(comparison: CompareResult) -> str:
    """A markdown table: one row per renderer, medians over the views of each metric."""
    keys = ["psnr", "ssim", "ms_ssim", "lpips", "psnr_masked", "ssim_masked"]
    lines = [f"Preset {comparison.preset}, {len(comparison.cameras)} orbit views, target "
             f"{comparison.target}; medians over views.", "",
             "| renderer | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, scores in comparison.scores.items():
        cells = []
        for key in keys:
            values = [value for s in scores if (value := s.get(key)) is not None]
            cells.append(_format(float(np.median(values))) if values else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [f"\nSkipped {name}: {reason}" for name, reason in comparison.skipped.items()]
    return "\n".join(lines) + "\n"


def write_comparison(comparison: CompareResult, folder: Path) -> list[Path]:
    """montage.png, metrics.md and metrics.json (per-view scores and cameras) in `folder`, each
    whole or not at all (files.write_atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "montage.png", folder / "metrics.md", folder / "metrics.json"]
    picture = montage(comparison)
    write_atomic(paths[0], lambda partial: picture.save(partial, "PNG"))
    write_atomic(paths[1], lambda partial: partial.write_text(metrics_markdown(comparison)))
    record = {"preset": comparison.preset, "target": comparison.target,
              "cameras": [camera.to_dict() for camera in comparison.cameras],
              "scores": comparison.scores, "skipped": comparison.skipped,
              "renderers": {name: RENDERFM_MODES.get(name) or GROUNDTRUTH_RENDERERS[name]
                            for name in comparison.images}}
    text = json.dumps(record, indent=2, default=_json_number)
    write_atomic(paths[2], lambda partial: partial.write_text(text))
    return paths


def _json_number(value):
    return float(value)
