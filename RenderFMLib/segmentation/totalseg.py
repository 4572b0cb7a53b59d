"""Running TotalSegmentator (`--auto-seg [--fast]`), an optional dependency the user installs.

The `totalsegmentator` package (pip) brings its own torch build, so RenderFM does not depend on
it. Its weights come from the user's installation. TotalSegmentator 2.x looks for them in
TOTALSEG_WEIGHTS_PATH if that is set, else in TOTALSEG_HOME_DIR/nnunet/results, else in
~/.totalsegmentator/nnunet/results (totalsegmentator.config.get_weights_dir). The `total` task
needs one nnU-Net dataset folder per model there: five part models for the full 1.5 mm model
and one 3 mm model for `fast` (totalsegmentator.map_tasks_config). TotalSegmentator downloads a
missing folder silently when it runs, so RenderFM checks the folders first and never starts a
run that would download.

TotalSegmentator uploads anonymous usage statistics after each run unless `send_usage_stats` is
false in the config.json of its home folder. There is no argument or environment variable for
this. For the duration of the call, RenderFM points TOTALSEG_HOME_DIR at a temporary folder
whose config.json turns the upload off, and TOTALSEG_WEIGHTS_PATH at the user's weights folder,
so the user's own config is neither read nor changed. The environment of the whole process
changes during the call, so do not run TotalSegmentator from two threads at once.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ..errors import SegmentationError
from ..volume import Volume, align_labels, to_sitk

FULL_DATASETS = (
    "Dataset291_TotalSegmentator_part1_organs_1559subj",
    "Dataset292_TotalSegmentator_part2_vertebrae_1532subj",
    "Dataset293_TotalSegmentator_part3_cardiac_1559subj",
    "Dataset294_TotalSegmentator_part4_muscles_1559subj",
    "Dataset295_TotalSegmentator_part5_ribs_1559subj",
)
"""The weight folders of the full `total` model (task ids 291..295, TotalSegmentator 2.x)."""
FAST_DATASETS = ("Dataset297_TotalSegmentator_total_3mm_1559subj",)
"""The weight folder of the fast 3 mm `total` model (task id 297)."""

FALLBACK = ('--seg threshold (Python: segmentation="threshold"), an HU-threshold segmentation '
            "that needs no weights")


def totalseg_home() -> Path:
    """TotalSegmentator's home folder, as totalsegmentator.config.get_totalseg_dir finds it."""
    if "TOTALSEG_HOME_DIR" in os.environ:
        return Path(os.environ["TOTALSEG_HOME_DIR"])
    home = Path("/tmp") if str(Path.home()) == "/" else Path.home()
    return home / ".totalsegmentator"


def weights_dir() -> tuple[Path, str]:
    """(folder, how it was found) of TotalSegmentator's weights (config.get_weights_dir)."""
    if "TOTALSEG_WEIGHTS_PATH" in os.environ:
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"]), "from TOTALSEG_WEIGHTS_PATH"
    if "TOTALSEG_HOME_DIR" in os.environ:
        return totalseg_home() / "nnunet" / "results", "TOTALSEG_HOME_DIR/nnunet/results"
    return totalseg_home() / "nnunet" / "results", (
        "the default; set TOTALSEG_WEIGHTS_PATH or TOTALSEG_HOME_DIR to use another folder")


def missing_weights(fast: bool) -> list[str]:
    """The weight folders of the model that are absent or empty in weights_dir()."""
    folder = weights_dir()[0]
    return [name for name in (FAST_DATASETS if fast else FULL_DATASETS)
            if not _has_files(folder / name)]


def _has_files(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def totalsegmentator_problem(fast: bool) -> str | None:
    """None when the package imports and the weights of the model (fast or full) are on disk;
    otherwise one sentence saying what is missing, how to get it, and the threshold fallback."""
    task = "total_fast" if fast else "total"
    get_weights = f"`totalseg_download_weights -t {task}`"
    try:
        importlib.import_module("totalsegmentator")
    except ImportError as error:
        detail = "" if getattr(error, "name", None) == "totalsegmentator" else f" ({error})"
        return (f"TotalSegmentator is not installed: the Python package `totalsegmentator` cannot "
                f"be imported{detail}; install it with `pip install totalsegmentator` and its "
                f"weights with {get_weights}, or install both through 3D Slicer's "
                f"TotalSegmentator extension; or use {FALLBACK}")
    version = _installed_version()
    major = version.split(".")[0] if version else ""
    if major.isdigit() and int(major) < 2:
        return (f"TotalSegmentator {version} is too old (RenderFM uses the `total` classes of "
                f"2.x); upgrade with `pip install -U totalsegmentator`, then run {get_weights}; "
                f"or use {FALLBACK}")
    missing = missing_weights(fast)
    if not missing:
        return None
    folder, origin = weights_dir()
    model = "fast (3 mm)" if fast else "full (1.5 mm)"
    return (f"TotalSegmentator's weights for its {model} `total` model are missing: no "
            f"{'folder' if len(missing) == 1 else 'folders'} {', '.join(missing)} in {folder} "
            f"({origin}); download them with {get_weights} (it uses the same folder) or by "
            f"running 3D Slicer's TotalSegmentator extension once with this model; or use "
            f"{FALLBACK}")


def run_totalsegmentator(ct: Volume, fast: bool = False, device: str = "cpu") -> Volume:
    """TotalSegmentator's multilabel `total` segmentation of a CT, as int64 labels on its grid.

    fast: the 3 mm model instead of the full 1.5 mm one. device: "cpu", "cuda" / "cuda:N" (or
    TotalSegmentator's "gpu" / "gpu:N") or "mps". Raises SegmentationError when the package or
    the weights are missing (checked before anything is imported or run, so nothing is ever
    downloaded), and when TotalSegmentator fails.
    """
    ts_device = _ts_device(device)
    problem = totalsegmentator_problem(fast)
    if problem:
        raise SegmentationError(problem)
    try:
        python_api = importlib.import_module("totalsegmentator.python_api")
    except Exception as error:  # a broken installation (missing nnunetv2, wrong torch...)
        raise SegmentationError(
            f"TotalSegmentator is installed but its Python API cannot be imported "
            f"({_one_line(error)}); reinstall it with `pip install --force-reinstall "
            f"totalsegmentator`, or use {FALLBACK}") from error
    with tempfile.TemporaryDirectory(prefix="renderfm_totalseg_") as temporary_dir:
        temporary = Path(temporary_dir)
        image = to_sitk(Volume(ct.array.detach().float(), ct.ijk_to_ras))
        input_path = temporary / "ct.nii"
        sitk.WriteImage(image, str(input_path))
        with _usage_statistics_off(temporary / "home"):
            try:
                result = python_api.totalsegmentator(
                    input=str(input_path), output=None, ml=True, fast=fast, task="total",
                    device=ts_device, quiet=True, statistics=False)
            except (Exception, SystemExit) as error:  # it calls sys.exit on some errors
                raise SegmentationError(
                    f"TotalSegmentator failed: {_one_line(error)}; try {FALLBACK}") from error
    labels = _labels_from_nifti(result[0] if isinstance(result, tuple) else result)
    labels = align_labels(labels, ct, "TotalSegmentator's segmentation")
    return Volume(labels.array.to(ct.array.device), labels.ijk_to_ras)


def _installed_version() -> str | None:
    try:
        return importlib.metadata.version("TotalSegmentator")
    except importlib.metadata.PackageNotFoundError:
        return None


def _ts_device(device: str | torch.device) -> str:
    """A torch device name as TotalSegmentator spells it (cpu, gpu, gpu:N, mps)."""
    name = str(device).strip().lower()
    match = re.fullmatch(r"(cuda|gpu)(?::(\d+))?", name)
    if match:
        return "gpu" if match.group(2) is None else f"gpu:{match.group(2)}"
    if name in ("cpu", "mps"):
        return name
    raise SegmentationError(
        f"TotalSegmentator runs on cpu, cuda (or cuda:N) or mps, not on device {str(device)!r}")


@contextlib.contextmanager
def _usage_statistics_off(home: Path) -> Iterator[None]:
    """TOTALSEG_HOME_DIR -> home, whose config.json turns the upload (and its notice) off, and
    TOTALSEG_WEIGHTS_PATH -> the user's weights folder, until the block ends."""
    weights = weights_dir()[0].absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = {"totalseg_id": "totalseg_renderfm", "send_usage_stats": False,
              "prediction_counter": 0, "statistics_disclaimer_shown": True}
    (home / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    saved = {name: os.environ.get(name) for name in ("TOTALSEG_HOME_DIR", "TOTALSEG_WEIGHTS_PATH")}
    os.environ["TOTALSEG_HOME_DIR"] = str(home)
    os.environ["TOTALSEG_WEIGHTS_PATH"] = str(weights)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _labels_from_nifti(image) -> Volume:
    """An int64 label Volume from the nibabel image TotalSegmentator returns (data [i, j, k],
    affine ijk -> RAS)."""
    if not hasattr(image, "affine") or not hasattr(image, "dataobj"):
        raise SegmentationError(
            f"TotalSegmentator returned {type(image).__name__} instead of a NIfTI image; "
            f"check its version, or use {FALLBACK}")
    data = np.asarray(image.dataobj)
    if data.ndim != 3:
        raise SegmentationError(f"TotalSegmentator returned a {data.ndim}D image instead of a "
                                f"3D label map; use {FALLBACK}")
    labels = np.rint(data).astype(np.int64) if data.dtype.kind == "f" else data.astype(np.int64)
    array = torch.from_numpy(np.ascontiguousarray(labels.transpose(2, 1, 0)))
    return Volume(array, np.asarray(image.affine, dtype=np.float64))


def _one_line(error: BaseException) -> str:
    """An exception as one short line ("it exited with code N" for sys.exit(N))."""
    if isinstance(error, SystemExit) and (error.code is None or isinstance(error.code, int)):
        return f"it exited with code {error.code or 0}"
    text = " ".join(str(error).split()) or type(error).__name__
    text = text if len(text) <= 300 else text[:297] + "..."
    return text if isinstance(error, SystemExit) else f"{type(error).__name__}: {text}"
