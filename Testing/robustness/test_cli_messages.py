"""One clear message, never a traceback (issue 13, section 4, the command line).

Each bad input is refused with exit status 2 and one "renderfm: error: ..." line (argparse's
"renderfm COMMAND: error: ..." after its usage for a bad option value) that names the file or
argument; Ctrl-C during start-up exits 130 with one line. Checks that need no preparation run
before any work: no "preparing" progress on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_cli import SINGLE_THREAD, assert_user_error, messages

# A Ctrl-C while the module named by argv[1] is imported, in `renderfm ARGV[2:]` as __main__.
CTRL_C_DURING_IMPORT = """
import runpy, sys

class CtrlC:
    module = sys.argv.pop(1)

    def find_spec(self, name, path=None, target=None):
        if name == self.module:
            raise KeyboardInterrupt

sys.meta_path.insert(0, CtrlC())
runpy.run_module("RenderFMLib.cli", run_name="__main__", alter_sys=True)
"""


def _python(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """`python ARGS` in cwd; 60 s at most (a run that waits on a FIFO fails, not hangs)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=SINGLE_THREAD)


def _refused(result: subprocess.CompletedProcess, argparse_level: bool = False) -> str:
    """The one error message of a refusal with exit status 2, before any preparation."""
    message = assert_user_error(result, argparse_level)
    assert result.returncode == 2
    assert "preparing" not in result.stderr
    return message


# --- option values --------------------------------------------------------------------------

@pytest.mark.parametrize("command, option, value", [
    ("render", "--azimuth", "inf"), ("render", "--elevation", "nan"),
    ("export-ply", "--azimuth", "-inf"), ("render", "--hu-offset", "nan"),
    ("render", "--spacing", "0"), ("prepare", "--spacing", "-1.5"),
    ("finetune", "--spacing", "inf"), ("make-gt", "--elevations", "0,nan")])
def test_a_non_finite_or_non_positive_number_is_refused(phantom, cli, tmp_path: Path,
                                                        command: str, option: str,
                                                        value: str) -> None:
    """Was: a traceback (math domain error) or a misleading camera message after preparing."""
    suffix = {"render": ".png", "export-ply": ".ply", "make-gt": ""}.get(command, ".safetensors")
    result = cli(command, phantom.ct, f"{option}={value}", "-o", tmp_path / f"out{suffix}")
    message = _refused(result, argparse_level=True)
    assert f"argument {option}" in message and repr(value) in message
    assert list(tmp_path.iterdir()) == []


def test_a_spacing_coarser_than_the_ct_names_its_extent(phantom, cli, tmp_path: Path) -> None:
    """Was: a 1-voxel CT whose preset "makes nothing visible" (or a traceback)."""
    result = cli("render", phantom.ct, "--spacing", 1000, "-o", tmp_path / "out.png")
    message = assert_user_error(result)
    assert result.returncode == 2
    assert "1000 mm" in message and "72 x 72 x 72 mm" in message and "at most 36 mm" in message


def test_a_binary_preset_file_is_refused(phantom, cli, tmp_path: Path) -> None:
    """Was: a UnicodeDecodeError traceback."""
    preset = tmp_path / "look.json"
    preset.write_bytes(bytes(range(128, 256)) * 4)
    message = assert_user_error(cli("render", phantom.ct, "--preset",
                                    preset, "-o", tmp_path / "out.png"))
    assert str(preset) in message and "not JSON text" in message


@pytest.mark.parametrize("device", ["meta", "xpu", "mps", "cuda:99"])
def test_a_device_torch_cannot_compute_on_is_refused(phantom, cli, tmp_path: Path,
                                                     device: str) -> None:
    """Was: a traceback from torch (mps: "not linked with support", meta: "nonzero")."""
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    result = cli("render", phantom.ct, "--device", device, "-o", tmp_path / "out.png")
    message = _refused(result)
    assert f"device '{device}'" in message and "use cpu" in message


# --- Ctrl-C during start-up -----------------------------------------------------------------

@pytest.mark.parametrize("module", ["torch", "RenderFMLib.cli.commands"])
def test_ctrl_c_during_start_up_exits_130(phantom, tmp_path: Path, module: str) -> None:
    """Was: a KeyboardInterrupt traceback (the parser imports torch for finetune's defaults)."""
    result = _python("-c", CTRL_C_DURING_IMPORT, module, "render", phantom.ct,
                     "-o", tmp_path / "out.png", cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "renderfm: interrupted\n"


# --- inputs that are not files --------------------------------------------------------------

@pytest.mark.parametrize("option", ["input", "--seg", "--camera", "--preset"])
def test_a_fifo_as_input_is_refused_not_waited_on(phantom, tmp_path: Path, option: str) -> None:
    """Was: waiting for ever for a writer (and Ctrl-C did not stop it)."""
    fifo = tmp_path / ("pipe.json" if option in ("--camera", "--preset") else "pipe.nii.gz")
    os.mkfifo(fifo)
    source = [fifo] if option == "input" else [phantom.ct, option, fifo]
    result = _python("-m", "RenderFMLib.cli", "render", *source, "-o", "out.png", cwd=tmp_path)
    message = _refused(result)
    assert str(fifo) in message and "not a regular file or a folder" in message


def test_a_dicom_folder_is_still_an_input(cli, tmp_path: Path) -> None:
    """Folders pass the check above: an empty one is refused by the reader, for being empty."""
    (tmp_path / "dicom").mkdir()
    message = assert_user_error(cli("render", tmp_path / "dicom", "-o", tmp_path / "out.png"))
    assert "not a regular file" not in message and "dicom" in message


# --- --hide and --groups --------------------------------------------------------------------

@pytest.mark.parametrize("command, output", [("render", "out.png"), ("export-ply", "out.ply")])
def test_hide_without_a_segmentation_is_refused(phantom, cli, tmp_path: Path, command: str,
                                                output: str) -> None:
    """Was: silently ignored (nothing hidden, exit 0)."""
    result = cli(command, phantom.ct, "--hide", "skeleton", "-o", tmp_path / output)
    assert "--hide" in _refused(result) and "--seg" in result.stderr
    result = cli(command, phantom.bare_model, "--hide", "skeleton", "-o", tmp_path / output)
    message = assert_user_error(result)
    assert "--hide" in message and str(phantom.bare_model) in message
    assert list(tmp_path.iterdir()) == []


def test_hide_with_a_segmentation_still_hides(phantom, cli, tmp_path: Path) -> None:
    from PIL import Image

    for name, hide in (("all.png", []), ("no_bone.png", ["--hide", "skeleton"])):
        assert cli("render", phantom.model, *hide, "--size", 32, "-o", tmp_path / name
                   ).returncode == 0
    images = [Image.open(tmp_path / name).tobytes() for name in ("all.png", "no_bone.png")]
    assert images[0] != images[1]


def test_an_unknown_hide_group_is_refused_before_preparing(phantom, cli, tmp_path: Path) -> None:
    """Was: found only after the preparation."""
    result = cli("render", phantom.ct, "--seg", phantom.seg, "--hide", "bones",
                 "-o", tmp_path / "out.png")
    message = _refused(result)
    assert "bones" in message and "skeleton" in message


def test_an_empty_segmentation_with_groups_blames_the_segmentation(phantom, cli,
                                                                   tmp_path: Path) -> None:
    """Was: "preset 'CT-Bone' makes nothing in this CT visible within groups skeleton"."""
    result = cli("render", phantom.ct, "--seg", phantom.empty_seg, "--groups", "skeleton",
                 "--preset", "CT-Bone", "-o", tmp_path / "out.png")
    message = assert_user_error(result)
    assert result.returncode == 2
    assert message == ("renderfm: error: the segmentation labels nothing in groups skeleton: "
                       "every voxel is 0 (empty)")
    result = cli("render", phantom.ct, "--seg", phantom.seg, "--groups", "lungs",
                 "--preset", "CT-Bone", "-o", tmp_path / "out.png")
    assert "labels nothing in groups lungs: it labels only muscles, skeleton" in messages(
        result.stderr, "error")[0]
