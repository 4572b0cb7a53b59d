"""The `renderfm` command line, run as a user runs it: a separate process, real CT files.

Each case checks what the user sees: the exit status, the files written (PNG size, content,
framing), and stderr (one "renderfm: error: ..." line for a mistake, never a traceback).
The scans are the small real CT in ../shared/data/totalseg (122 x 101 x 30 voxels of 3 mm) and
the Slicer head CT (DICOM, stored without rescale); the demo uses the bundled sample.

Every run starts a Python that imports torch (about 1.5 s), so the module starts all runs at
once on a pool of cpu_count() workers (module fixture `runs`) and each test waits for and checks
its own run(s). Runs that need the prepared model start as soon as it is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from data_paths import SHARED_DATA as DATA  # noqa: E402
from PIL import Image

CT = DATA / "totalseg" / "example_ct_sm.nii.gz"
SEG = DATA / "totalseg" / "example_seg.nii.gz"
DICOM = DATA / "slicer_cthead_dicom"
if not CT.is_file() or not SEG.is_file():
    pytest.skip(f"shared test data not found at {DATA}", allow_module_level=True)

SIZE = 96
DEMO_SIZE = 64
BONE = ("--seg", SEG, "--preset", "CT-Bone", "--size", SIZE)
# One user-facing message: "renderfm: error: ..." from main(), or "renderfm render: error: ..."
# from argparse. Progress-bar updates end in "\r", so a message ends at "\r" or "\n".
MESSAGE = re.compile(r"renderfm(?: [a-z-]+)?: (error|warning): [^\r\n]*")
# A tqdm bar as cli._progress_bar draws it: "description   NN%|bar|".
PROGRESS = re.compile(r"[^\r\n|]*\d+%\|[^|\r\n]*\|")
BAD_OPTIONS = {"size-0": ["--size", "0"], "size-word": ["--size", "big"],
               "background-2": ["--background", "2,0,0"],
               "background-2-values": ["--background", "1,1"]}


# The runs go in parallel, one per core: one torch thread each, or they oversubscribe the cores
# (measured: 2 runs at once with 2 threads each on 2 cores took 2x longer than one after another).
SINGLE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def renderfm(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m RenderFMLib.cli ARGS` in cwd, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "RenderFMLib.cli", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=SINGLE_THREAD,
    )


def messages(stderr: str, kind: str) -> list[str]:
    """The "renderfm...: <kind>: ..." messages in stderr."""
    return [m.group(0) for m in MESSAGE.finditer(stderr) if m.group(1) == kind]


def leftover(stderr: str) -> str:
    """stderr without its messages and progress-bar drawing: what else the user would see."""
    return PROGRESS.sub("", MESSAGE.sub("", stderr)).strip()


def screen_lines(stderr: str) -> list[str]:
    """stderr as a terminal shows it: within a line, text after a "\\r" overwrites from column 0."""
    lines = []
    for line in stderr.split("\n"):
        visible = ""
        for segment in line.split("\r"):
            visible = segment + visible[len(segment):]
        lines.append(visible.rstrip())
    return lines


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and not messages(result.stderr, "error")
    return result


def assert_user_error(result: subprocess.CompletedProcess, argparse_level: bool = False) -> str:
    """A clean refusal: non-zero status, one error message, no traceback, nothing else printed.

    Returns the message. argparse-level mistakes print argparse's usage and
    "renderfm COMMAND: error: ..." with status 2 instead.
    """
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = messages(result.stderr, "error")
    assert len(errors) == 1, result.stderr
    if argparse_level:
        assert result.returncode == 2
        assert result.stderr.startswith("usage: renderfm"), result.stderr
        assert result.stderr.rstrip().splitlines()[-1] == errors[0]
    else:
        assert errors[0].startswith("renderfm: error: "), result.stderr
        assert leftover(result.stderr) == "", result.stderr
    return errors[0]


class Runs:
    """CLI runs started in the background, by name; runs[name] waits for one."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
        self.futures: dict[str, Future] = {}
        self.snapshots: dict[str, bytes] = {}  # file contents seen between runs

    def start(self, name: str, *args: str | Path) -> Future:
        self.futures[name] = self.pool.submit(renderfm, *args, cwd=self.cwd)
        return self.futures[name]

    def then(self, name: str, after: str, setup, *args: str | Path) -> None:
        """Start `name` once `after` has finished, calling setup() first (in a worker)."""
        def chained() -> subprocess.CompletedProcess:
            self.futures[after].result()
            setup()
            return renderfm(*args, cwd=self.cwd)
        self.futures[name] = self.pool.submit(chained)

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        if name not in self.futures:
            pytest.skip(f"run {name} was not started (its input is missing)")
        return self.futures[name].result()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def far_segmentation(work: Path) -> Path:
    """The CT's segmentation moved 10 m away, so that it cannot overlap the CT."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(SEG))
    image.SetOrigin(tuple(o + 10_000.0 for o in image.GetOrigin()))
    path = work / "far_seg.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


# A view other than the default one, so that a CLI that ignores --camera (or reads the wrong
# angle) renders another picture; azimuth and elevation differ so that swapping them shows.
ORBIT = (60.0, 20.0)


def _write_orbit_camera(model: Path, path: Path) -> None:
    """CAMERA.json holding api.default_camera(model, *ORBIT) of the prepared model."""
    from RenderFMLib.api import default_camera
    from RenderFMLib.gaussians import SixDGaussians

    path.write_text(json.dumps(default_camera(SixDGaussians.load(model), *ORBIT).to_dict()))


def _damage(model: Path, path: Path, how: str) -> None:
    data = model.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else bytes(range(256)) * 16)


@pytest.fixture(scope="module")
def runs(work: Path, far_segmentation: Path):
    """Every CLI run of this module, started at once (longest first)."""
    runs = Runs(work)
    w = work
    runs.start("demo", "demo", "-o", w / "demo", "--size", DEMO_SIZE)
    runs.start("prepare", "prepare", CT, *BONE[:4], "-o", w / "model.safetensors")
    runs.start("bone", "render", CT, *BONE, "-o", w / "bone.png")
    if DICOM.is_dir():
        runs.start("dicom-raw", "render", DICOM, "--size", SIZE, "-o", w / "head_raw.png")
        runs.start("dicom", "render", DICOM, "--hu-offset", -1024, "--size", SIZE,
                   "-o", w / "head.png")
    runs.start("side", "render", CT, *BONE, "--azimuth", 90, "-o", w / "side.png")
    runs.start("white", "render", CT, *BONE, "--background", "1,1,1", "-o", w / "white.png")
    runs.start("no-skeleton", "render", CT, *BONE, "--hide", "skeleton", "-o", w / "no_bone.png")
    runs.start("threshold", "render", CT, "--seg", "threshold", "--groups", "skeleton",
               "--group-colors", "--preset", "CT-Bone", "--size", SIZE, "-o", w / "thresh.png")
    runs.start("presets", "presets")

    # Runs on the prepared model, each started once `prepare` has written it.
    model = w / "model.safetensors"
    runs.then("camera", "prepare", lambda: _write_orbit_camera(model, w / "camera.json"),
              "render", model, "--size", SIZE, "--camera", w / "camera.json",
              "-o", w / "from_camera.png")
    runs.then("orbit", "prepare", lambda: None, "render", model, "--size", SIZE,
              "--azimuth", ORBIT[0], "--elevation", ORBIT[1], "-o", w / "orbit.png")
    runs.then("from-model", "prepare", lambda: None,
              "render", model, "--size", SIZE, "-o", w / "from_model.png")
    runs.then("ply", "prepare", lambda: None,
              "export-ply", model, "--azimuth", 30, "-o", w / "splats.ply")
    camera = w / "any_camera.json"
    runs.then("camera-and-azimuth", "prepare", lambda: camera.write_text(json.dumps(
        {"position": [0, -500, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, 1]})),
              "render", model, "--camera", camera, "--azimuth", 90, "--size", 32,
              "-o", w / "x.png")
    broken_json = w / "broken_camera.json"
    runs.then("invalid-json", "prepare", lambda: broken_json.write_text('{"position": [0, '),
              "render", model, "--camera", broken_json, "--size", 32, "-o", w / "x.png")
    runs.then("seg-with-model", "prepare", lambda: None,
              "render", model, "--seg", SEG, "--size", 32, "-o", w / "x.png")
    runs.then("spacing-with-model", "prepare", lambda: None,
              "render", model, "--spacing", 2, "--hu-offset", -1024, "-o", w / "x.png")
    for how in ("truncated", "garbage"):
        broken = w / f"{how}.safetensors"
        runs.then(f"model-{how}", "prepare", lambda b=broken, h=how: _damage(model, b, h),
                  "render", broken, "--size", 32, "-o", w / "x.png")
    runs.then("render-to-folder", "prepare", lambda: (w / "folder.png").mkdir(),
              "render", model, "--size", 32, "-o", w / "folder.png")

    # User mistakes on the CT.
    (w / "notes.txt").write_text("not a CT\n")
    runs.start("missing-ct", "render", w / "no_such_ct.nii.gz", "-o", w / "x.png")
    runs.start("text-ct", "render", w / "notes.txt", "-o", w / "x.png")
    keep = w / "keep.png"
    Image.new("RGB", (20, 10), (10, 200, 30)).save(keep)
    runs.snapshots["before"] = keep.read_bytes()
    runs.start("unknown-preset", "render", CT, "--preset", "CT-Bonez", "--size", 32, "-o", keep)
    # After the failed run on keep.png (and a look at what it left), a successful one.
    runs.then("overwrite", "unknown-preset",
              lambda: runs.snapshots.__setitem__("after failure", keep.read_bytes()),
              "render", CT, "--preset", "CT-Bone", "--size", 32, "-o", keep)
    runs.start("auto-seg-missing", "render", CT, "--auto-seg", "--size", 32, "-o", w / "x.png")
    runs.start("fast-alone", "render", CT, "--fast", "--size", 32, "-o", w / "x.png")
    runs.start("unknown-group", "render", CT, *BONE, "--hide", "skeletons", "-o", w / "x.png")
    runs.start("missing-camera", "render", CT, "--camera", w / "no_camera.json", "-o", w / "x.png")
    runs.start("no-overlap", "render", CT, "--seg", far_segmentation, "--size", 32,
               "-o", w / "x.png")
    runs.start("suffix-jpg", "render", CT, "-o", w / "x.jpg")
    runs.start("suffix-none", "render", CT, "-o", w / "x")
    runs.start("no-folder", "render", CT, "-o", w / "no_folder" / "x.png")
    for name, option in BAD_OPTIONS.items():
        runs.start(name, "render", CT, *option, "-o", w / "x.png")
    (w / "a_file").write_text("")
    runs.start("demo-to-file", "demo", "-o", w / "a_file", "--size", 32)
    yield runs
    runs.pool.shutdown(wait=True)


# --- listing presets ------------------------------------------------------------------------

def test_presets_lists_every_bundled_preset_and_marks_the_default(runs: Runs) -> None:
    from RenderFMLib.api import DEFAULT_PRESET
    from RenderFMLib.transfer import bundled_presets, preset_names

    lines = succeeded(runs["presets"]).stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == preset_names()
    for line, preset in zip(lines, bundled_presets().values()):
        # "NAME  opacity points N, HU LOW..HIGH": the opacity curve's point count and HU span,
        # printed to 6 significant digits.
        count, low, high = re.search(r"opacity points +(\d+), HU (\S+)\.\.([^ ]+)", line).groups()
        points = preset.scalar_opacity
        assert int(count) == len(points)
        assert (float(low), float(high)) == pytest.approx((points[0][0], points[-1][0]), rel=1e-5)
    assert len(lines) == 31  # Slicer's presets.xml ships 31 volume-rendering presets
    marked = [line.split()[0] for line in lines if "(default)" in line]
    assert marked == [DEFAULT_PRESET]


def test_installed_console_script_runs(work: Path) -> None:
    script = shutil.which("renderfm", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip(f"no renderfm console script beside {sys.executable} (not pip-installed)")
    result = subprocess.run([script, "--help"], cwd=work, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert all(c in result.stdout for c in ("demo", "render", "prepare", "export-ply", "presets"))
    # A command that reaches the library through the script's entry point, not just argparse.
    result = subprocess.run([script, "render", CT, "-o", work / "x.jpg"], cwd=work,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("renderfm: error: ")


# --- rendering ------------------------------------------------------------------------------

def test_render_writes_a_framed_image(runs: Runs, work: Path) -> None:
    result = succeeded(runs["bone"])
    assert f"wrote {work / 'bone.png'}" in result.stdout
    assert not messages(result.stderr, "warning")
    image = read_png(work / "bone.png")
    assert image.shape == (SIZE, SIZE, 3)
    lit = image.max(axis=2) > 0
    # Bone is visible: a real share of the picture, not a few stray pixels.
    assert lit.mean() > 0.02
    # The camera frames the CT's bounding sphere, which is larger than the body: the image border
    # is background (black) all round.
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert border.max() == 0


def test_azimuth_changes_the_view(runs: Runs, work: Path) -> None:
    succeeded(runs["bone"]), succeeded(runs["side"])
    front, side = read_png(work / "bone.png"), read_png(work / "side.png")
    assert side.shape == front.shape and side.max() > 0
    # The body is 366 mm wide (R-L) but 303 mm deep (A-P) in this CT, so the silhouette seen
    # from the left differs from the anterior one: well over 1% of the pixels change coverage.
    assert ((front.max(axis=2) > 0) != (side.max(axis=2) > 0)).mean() > 0.01


def test_camera_file_renders_the_view_of_the_matching_azimuth_and_elevation(
        runs: Runs, work: Path) -> None:
    succeeded(runs["camera"]), succeeded(runs["orbit"]), succeeded(runs["from-model"])
    orbit = read_png(work / "orbit.png")
    # The orbit view is not the default one (else an ignored --camera would go unnoticed).
    assert ((orbit.max(axis=2) > 0) != (read_png(work / "from_model.png").max(axis=2) > 0)
            ).mean() > 0.01
    # JSON round-trips the float64 terms exactly and rendering is deterministic: same pixels.
    np.testing.assert_array_equal(read_png(work / "from_camera.png"), orbit)


def test_background_colours_the_corners(runs: Runs, work: Path) -> None:
    succeeded(runs["white"])
    image = read_png(work / "white.png")
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all()
    assert image.min() < 255  # the bone is still drawn over the white


def test_prepared_model_renders_like_the_ct(runs: Runs, work: Path) -> None:
    assert "Gaussians" in succeeded(runs["prepare"]).stdout
    succeeded(runs["bone"]), succeeded(runs["from-model"])
    # The model stores the float32 parameters bit for bit and the geometry that frames the
    # default camera: rendering it is the same computation as rendering the CT directly.
    np.testing.assert_array_equal(read_png(work / "from_model.png"), read_png(work / "bone.png"))


def test_export_ply_writes_gaussians(runs: Runs, work: Path) -> None:
    result = succeeded(runs["ply"])
    data = (work / "splats.ply").read_bytes()
    header_end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:header_end].decode("ascii").splitlines()
    assert header[0] == "ply"
    count = [int(line.split()[-1]) for line in header if line.startswith("element vertex ")]
    assert len(count) == 1 and count[0] > 0
    properties = sum(line.startswith("property float ") for line in header)
    # Binary little-endian float32 rows: the body is exactly N rows of 4-byte properties.
    assert len(data) - header_end == count[0] * properties * 4
    assert f"({count[0]} Gaussians" in result.stdout


# --- DICOM stored without rescale -----------------------------------------------------------

def test_dicom_folder_with_hu_offset(runs: Runs, work: Path) -> None:
    result = succeeded(runs["dicom"])
    assert not messages(result.stderr, "warning"), result.stderr
    image = read_png(work / "head.png")
    assert image.shape == (SIZE, SIZE, 3) and image.max() > 0


def test_dicom_folder_without_hu_offset_warns_once(runs: Runs, work: Path) -> None:
    result = succeeded(runs["dicom-raw"])
    warned = messages(result.stderr, "warning")
    assert len(warned) == 1, result.stderr
    assert warned[0].startswith("renderfm: warning: ") and "without rescale" in warned[0]
    assert "--hu-offset -1024" in warned[0]
    assert leftover(result.stderr) == "", result.stderr
    assert read_png(work / "head_raw.png").shape == (SIZE, SIZE, 3)


# --- user mistakes --------------------------------------------------------------------------

def test_missing_ct(runs: Runs) -> None:
    message = assert_user_error(runs["missing-ct"])
    assert "no_such_ct.nii.gz" in message and "does not exist" in message


def test_text_file_as_ct(runs: Runs) -> None:
    assert "notes.txt" in assert_user_error(runs["text-ct"])


def test_unknown_preset_suggests_a_name(runs: Runs) -> None:
    message = assert_user_error(runs["unknown-preset"])
    assert "CT-Bonez" in message and "did you mean 'CT-Bone'" in message


@pytest.mark.parametrize("run, name", [("suffix-jpg", "x.jpg"), ("suffix-none", "x")])
def test_output_with_wrong_suffix(runs: Runs, work: Path, run: str, name: str) -> None:
    assert ".png" in assert_user_error(runs[run])
    assert not (work / name).exists()


def test_output_folder_missing(runs: Runs, work: Path) -> None:
    assert "no_folder" in assert_user_error(runs["no-folder"])
    assert not (work / "no_folder").exists()


def test_camera_and_azimuth_together(runs: Runs) -> None:
    message = assert_user_error(runs["camera-and-azimuth"])
    assert "--camera" in message and "--azimuth" in message


def test_camera_file_with_invalid_json(runs: Runs) -> None:
    message = assert_user_error(runs["invalid-json"])
    assert "broken_camera.json" in message and "JSON" in message


def test_segmentation_with_a_model(runs: Runs) -> None:
    assert "--seg" in assert_user_error(runs["seg-with-model"])


def test_hiding_the_skeleton_renders_the_gaussians_without_it(runs: Runs, work: Path,
                                                              without_groups) -> None:
    from RenderFMLib.api import default_camera, render
    from RenderFMLib.gaussians import SixDGaussians

    succeeded(runs["prepare"]), succeeded(runs["bone"]), succeeded(runs["no-skeleton"])
    # The model renders as the CT does (test_prepared_model_renders_like_the_ct).
    model = SixDGaussians.load(work / "model.safetensors")
    rest = without_groups(model, ["skeleton"])
    assert 0 < len(rest) < len(model)
    expected = render(rest, default_camera(model), SIZE).to_uint8()
    shown = read_png(work / "no_bone.png")
    assert not np.array_equal(shown, read_png(work / "bone.png"))
    # The same Gaussians and camera in this process: float sums may round differently with
    # another torch thread count, which moves a pixel by at most one 8-bit level.
    assert np.abs(shown.astype(int) - expected).max() <= 1


def test_threshold_segmentation_with_group_colours(runs: Runs, work: Path) -> None:
    from RenderFMLib.segmentation.classes import look_colors

    succeeded(runs["threshold"])
    image = read_png(work / "thresh.png").reshape(-1, 3).astype(float) / 255
    lit = image[image.max(axis=1) > 0.2]
    assert len(lit) > 50
    # Only skeleton Gaussians, all ivory: every lit pixel is a shade of that colour (shading
    # scales it, so compare the normalized colour; 0.05 allows 8-bit rounding).
    ivory = np.array(look_colors()["skeleton"])
    hues = lit / lit.max(axis=1, keepdims=True)
    assert np.abs(hues - ivory / ivory.max()).max() < 0.05


def test_auto_seg_without_totalsegmentator_says_how_to_get_it(runs: Runs) -> None:
    message = assert_user_error(runs["auto-seg-missing"])
    assert "totalsegmentator" in message.lower() and "--seg threshold" in message


def test_fast_needs_auto_seg(runs: Runs) -> None:
    assert "--auto-seg" in assert_user_error(runs["fast-alone"])


def test_unknown_group_lists_the_groups(runs: Runs) -> None:
    message = assert_user_error(runs["unknown-group"])
    assert "skeletons" in message and "heart_and_vessels" in message


def test_ct_options_with_a_model(runs: Runs) -> None:
    message = assert_user_error(runs["spacing-with-model"])
    assert "--spacing" in message and "--hu-offset" in message


def test_camera_file_is_checked_before_preparing(runs: Runs) -> None:
    result = runs["missing-camera"]
    assert "no_camera.json" in assert_user_error(result)
    assert "preparing" not in result.stderr  # no progress bar: nothing was read or prepared


def test_segmentation_that_does_not_overlap(runs: Runs) -> None:
    message = assert_user_error(runs["no-overlap"])
    assert "far_seg.nii.gz" in message and "overlap" in message


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_model(runs: Runs, damage: str) -> None:
    assert f"{damage}.safetensors" in assert_user_error(runs[f"model-{damage}"])


@pytest.mark.parametrize("name", list(BAD_OPTIONS))
def test_bad_option_values(runs: Runs, name: str) -> None:
    message = assert_user_error(runs[name], argparse_level=True)
    assert BAD_OPTIONS[name][0] in message


def test_failed_run_leaves_existing_output_untouched(runs: Runs, work: Path) -> None:
    assert_user_error(runs["unknown-preset"])
    succeeded(runs["overwrite"])
    # keep.png (a 20x10 PNG) as it was after the failed run, before the successful one started.
    assert runs.snapshots["after failure"] == runs.snapshots["before"]
    assert read_png(work / "keep.png").shape == (32, 32, 3)


# --- messages on their own line; unwritable outputs -------------------------------------------

@pytest.mark.parametrize("run, kind", [("unknown-preset", "error"), ("dicom-raw", "warning")])
def test_messages_start_their_own_line(runs: Runs, run: str, kind: str) -> None:
    shown = [line for line in screen_lines(runs[run].stderr) if f"renderfm: {kind}:" in line]
    assert len(shown) == 1 and shown[0].startswith(f"renderfm: {kind}: "), shown


@pytest.mark.parametrize("run", ["render-to-folder", "demo-to-file"])
def test_unwritable_output_is_a_user_error(runs: Runs, run: str) -> None:
    assert_user_error(runs[run])


# --- demo -----------------------------------------------------------------------------------

def test_demo_writes_images_and_an_animation(runs: Runs, work: Path) -> None:
    from RenderFMLib import demo

    result = succeeded(runs["demo"])
    folder = work / "demo"
    names = ["front.png", "organs.png", "orbit_strip.png", "orbit.gif"]
    assert [line for line in result.stdout.splitlines() if line.startswith("wrote ")] == [
        f"wrote {folder / name}" for name in names]
    front = read_png(folder / "front.png")
    assert front.shape == (DEMO_SIZE, DEMO_SIZE, 3) and front.max() > 0
    organs = read_png(folder / "organs.png")
    assert organs.shape == (DEMO_SIZE, DEMO_SIZE, 3) and organs.max() > 0
    strip = read_png(folder / "orbit_strip.png")
    frames_in_strip = demo.ORBIT_VIEWS // demo.STRIP_EVERY
    assert strip.shape == (demo.ORBIT_SIZE, demo.ORBIT_SIZE * frames_in_strip, 3)
    with Image.open(folder / "orbit.gif") as gif:
        assert gif.format == "GIF" and gif.is_animated
        assert gif.n_frames == demo.ORBIT_VIEWS
        assert gif.size == (demo.ORBIT_SIZE, demo.ORBIT_SIZE)
