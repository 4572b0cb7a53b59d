"""`renderfm demo`: the bundled sample CT, prepared and rendered (a front view and an orbit)."""

from pathlib import Path

from PIL import Image

from .api import DEFAULT_PRESET, Progress, default_camera, prepare, render
from .files import write_atomic
from .resources import resource_path
from .segmentation.readers import read_labels
from .volume import read_ct

ORBIT_VIEWS = 16
STRIP_EVERY = 2
ORBIT_SIZE = 256
ORGANS_PRESET = "CT-Muscle"
# Leaving out muscles and everything unlabelled (skin, fat, body wall) bares the organs.
ORGAN_GROUPS = ("skeleton", "organs", "heart_and_vessels")


def sample_paths() -> tuple[Path, Path]:
    """(CT, segmentation) of the bundled sample (see Resources/sample/README.md)."""
    return resource_path("sample", "ct.nii.gz"), resource_path("sample", "segmentation.nii.gz")


def run_demo(folder: Path, size: int, progress: Progress) -> list[Path]:
    """Render the sample into `folder`: front.png (the default preset, size px), organs.png
    (the segmented organs, vessels and bones, CT-Muscle's opacity with group colours),
    orbit_strip.png and orbit.gif; each written whole or not at all (files.write_atomic)."""
    ct_path, seg_path = sample_paths()
    ct = read_ct(ct_path)
    seg = read_labels(seg_path, ct)
    gaussians = prepare(ct, seg, DEFAULT_PRESET, progress=lambda f, m: progress(0.2 * f, m))
    front = folder / "front.png"
    render(gaussians, default_camera(gaussians), size).save_png(front)
    organs = prepare(ct, seg, ORGANS_PRESET, groups=ORGAN_GROUPS, group_colors=True,
                     progress=lambda f, m: progress(0.2 + 0.15 * f, m))
    organs_path = folder / "organs.png"
    render(organs, default_camera(organs), size).save_png(organs_path)
    frames = []
    for view in range(ORBIT_VIEWS):
        progress(0.35 + 0.65 * view / ORBIT_VIEWS, f"orbit view {view + 1}/{ORBIT_VIEWS}")
        camera = default_camera(gaussians, azimuth=360.0 * view / ORBIT_VIEWS)
        frames.append(Image.fromarray(render(gaussians, camera, ORBIT_SIZE).to_uint8()))
    progress(1.0, "done")
    strip_frames = frames[::STRIP_EVERY]
    strip = Image.new("RGB", (ORBIT_SIZE * len(strip_frames), ORBIT_SIZE))
    for index, frame in enumerate(strip_frames):
        strip.paste(frame, (index * ORBIT_SIZE, 0))
    strip_path, gif_path = folder / "orbit_strip.png", folder / "orbit.gif"
    write_atomic(strip_path, lambda partial: strip.save(partial, "PNG"))
    write_atomic(gif_path, lambda partial: frames[0].save(
        partial, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0))
    return [front, organs_path, strip_path, gif_path]
