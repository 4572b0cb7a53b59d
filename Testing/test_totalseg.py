"""Running TotalSegmentator from RenderFM, tested without TotalSegmentator.

The `totalsegmentator` package cannot be installed here: its dependencies pull a multi-GB CUDA
torch. So its absence is simulated (None in sys.modules, which makes the import fail even where
it is installed), and its presence is a stand-in package whose python_api.totalsegmentator
records its arguments and returns the reference segmentation that the real TotalSegmentator
2.18 made of the same CT (shared/data/totalseg, see its README), as a nibabel image, as the
real function does when output is None.
"""

import json
import os
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from RenderFMLib.errors import SegmentationError
from RenderFMLib.segmentation.totalseg import (
    FAST_DATASETS,
    FULL_DATASETS,
    run_totalsegmentator,
    totalsegmentator_problem,
)
from RenderFMLib.volume import read_ct, read_segmentation

FALLBACK = "--seg threshold"


@pytest.fixture
def ct(shared_data):
    return read_ct(shared_data / "totalseg" / "example_ct_sm.nii.gz")


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """TotalSegmentator's home in a temporary folder, holding a user config that would upload
    usage statistics; no TOTALSEG_WEIGHTS_PATH. Returns the home folder."""
    home = tmp_path / "totalseg_home"
    home.mkdir()
    user_config = {"totalseg_id": "totalseg_USER1234", "send_usage_stats": True,
                   "prediction_counter": 7}
    (home / "config.json").write_text(json.dumps(user_config))
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    return home


class StandIn:
    """Installs a stand-in `totalsegmentator` package and records each call of its
    python_api.totalsegmentator: the arguments and what TotalSegmentator would see then."""

    def __init__(self, monkeypatch, respond):
        self.calls = []
        self.respond = respond
        package = types.ModuleType(
            "totalsegmentator",
            "stand-in for the totalsegmentator package, which cannot be installed here")
        api = types.ModuleType("totalsegmentator.python_api", "stand-in python_api")
        api.totalsegmentator = self._totalsegmentator
        package.python_api = api
        monkeypatch.setitem(sys.modules, "totalsegmentator", package)
        monkeypatch.setitem(sys.modules, "totalsegmentator.python_api", api)

    def _totalsegmentator(self, input, output=None, **kwargs):
        home = Path(os.environ["TOTALSEG_HOME_DIR"])
        config = json.loads((home / "config.json").read_text())
        self.calls.append({
            "input": input, "output": output, **kwargs,
            "config": config,
            "weights_path": os.environ.get("TOTALSEG_WEIGHTS_PATH"),
            "input_image": _read_now(input),
        })
        return self.respond(input, output, **kwargs)


def _read_now(path):
    """(affine, data) of the NIfTI at path, read now (the file is temporary), or None."""
    if not Path(path).exists():
        return None
    image = nib.load(path)
    return image.affine.copy(), np.asarray(image.dataobj).copy()


def reference_seg(shared_data, fast):
    name = "example_seg_fast.nii.gz" if fast else "example_seg.nii.gz"
    return shared_data / "totalseg" / name


def fake_weights(folder: Path, names) -> None:
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "plans.json").write_text("{}")  # not empty: a downloaded model


@pytest.mark.parametrize("fast", [False, True])
def test_package_absent_says_how_to_install_and_offers_threshold(monkeypatch, isolated_home, ct,
                                                                 fast):
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # import fails even if installed
    problem = totalsegmentator_problem(fast)
    assert problem is not None
    assert "not installed" in problem
    assert "pip install totalsegmentator" in problem
    assert f"totalseg_download_weights -t {'total_fast' if fast else 'total'}`" in problem
    assert FALLBACK in problem
    with pytest.raises(SegmentationError) as raised:
        run_totalsegmentator(ct, fast=fast)
    assert str(raised.value) == problem


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("variable", ["TOTALSEG_WEIGHTS_PATH", "TOTALSEG_HOME_DIR"])
def test_stand_in_with_missing_weights_names_folders_and_is_never_called(
        monkeypatch, tmp_path, isolated_home, ct, fast, variable):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(variable, str(empty))
    weights = empty if variable == "TOTALSEG_WEIGHTS_PATH" else empty / "nnunet" / "results"
    stand_in = StandIn(monkeypatch, respond=lambda *args, **kwargs: pytest.fail("called"))
    problem = totalsegmentator_problem(fast)
    assert problem is not None
    for name in FAST_DATASETS if fast else FULL_DATASETS:
        assert name in problem
    assert str(weights) in problem and variable in problem
    assert f"totalseg_download_weights -t {'total_fast' if fast else 'total'}`" in problem
    assert FALLBACK in problem
    with pytest.raises(SegmentationError, match="weights"):
        run_totalsegmentator(ct, fast=fast)
    assert stand_in.calls == []  # nothing ran, so nothing could download
    assert not (weights / FULL_DATASETS[0]).exists()


def test_stand_in_with_some_weights_names_only_the_missing_ones(monkeypatch, tmp_path,
                                                                  isolated_home):
    weights = tmp_path / "weights"
    fake_weights(weights, FULL_DATASETS[:3])
    (weights / FULL_DATASETS[3]).mkdir()  # an empty folder is no model (an interrupted unzip)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(weights))
    StandIn(monkeypatch, respond=lambda *args, **kwargs: None)
    problem = totalsegmentator_problem(fast=False)
    assert FULL_DATASETS[3] in problem and FULL_DATASETS[4] in problem
    assert not any(name in problem for name in FULL_DATASETS[:3])
    assert totalsegmentator_problem(fast=True) is not None  # the fast model is another folder
    fake_weights(weights, FAST_DATASETS)
    assert totalsegmentator_problem(fast=True) is None


@pytest.mark.parametrize(("fast", "device", "ts_device"),
                         [(False, "cpu", "cpu"), (True, "cuda:1", "gpu:1"), (True, "cuda", "gpu")])
def test_stand_in_called_once_and_result_equals_reference(monkeypatch, tmp_path, isolated_home,
                                                          shared_data, ct, fast, device, ts_device):
    weights = tmp_path / "weights"
    fake_weights(weights, FAST_DATASETS if fast else FULL_DATASETS)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(weights))
    user_config = (isolated_home / "config.json").read_text()
    reference = reference_seg(shared_data, fast)
    stand_in = StandIn(monkeypatch, respond=lambda *args, **kwargs: nib.load(reference))
    assert totalsegmentator_problem(fast) is None

    labels = run_totalsegmentator(ct, fast=fast, device=device)

    assert len(stand_in.calls) == 1
    call = stand_in.calls[0]
    assert call["ml"] is True and call["fast"] is fast and call["device"] == ts_device
    assert call["task"] == "total" and call["statistics"] is False and call["quiet"] is True
    assert call["output"] is None
    # it got the CT: a NIfTI of the same grid and values
    assert call["input_image"] is not None
    affine, data = call["input_image"]
    assert data.shape == (122, 101, 30)
    np.testing.assert_allclose(affine, ct.ijk_to_ras, atol=1e-3)
    np.testing.assert_allclose(data.transpose(2, 1, 0), ct.array.numpy())
    # usage statistics were off during the call, the user's weights were used, and the user's
    # own config and environment are as before
    assert call["config"]["send_usage_stats"] is False
    assert Path(call["weights_path"]) == weights
    assert os.environ["TOTALSEG_HOME_DIR"] == str(isolated_home)
    assert os.environ["TOTALSEG_WEIGHTS_PATH"] == str(weights)
    assert (isolated_home / "config.json").read_text() == user_config
    # the result is the reference segmentation, on the CT's grid
    expected = read_segmentation(reference, ct)
    assert labels.array.dtype == torch.int64 and labels.shape == ct.shape
    np.testing.assert_allclose(labels.ijk_to_ras, ct.ijk_to_ras, atol=1e-3)
    assert torch.equal(labels.array, expected.array)
    assert len(torch.unique(labels.array)) == (41 if fast else 42)  # 40 / 41 classes + background


@pytest.mark.parametrize("failure", [
    RuntimeError("CUDA out of memory"),
    SystemExit("ERROR: The input file or directory does not exist.")])
def test_stand_in_failure_becomes_segmentation_error_with_fallback(monkeypatch, tmp_path,
                                                                   isolated_home, ct, failure):
    weights = tmp_path / "weights"
    fake_weights(weights, FAST_DATASETS)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(weights))

    def fail(*args, **kwargs):
        raise failure

    stand_in = StandIn(monkeypatch, respond=fail)
    with pytest.raises(SegmentationError) as raised:
        run_totalsegmentator(ct, fast=True)
    message = str(raised.value)
    assert message.startswith("TotalSegmentator failed: ")
    assert str(failure) in message and FALLBACK in message
    assert len(stand_in.calls) == 1
    assert os.environ["TOTALSEG_HOME_DIR"] == str(isolated_home)  # restored after the failure


def test_stand_in_returning_no_image_and_unknown_device_are_errors(monkeypatch, tmp_path,
                                                                   isolated_home, ct):
    weights = tmp_path / "weights"
    fake_weights(weights, FAST_DATASETS)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(weights))
    stand_in = StandIn(monkeypatch, respond=lambda *args, **kwargs: None)
    with pytest.raises(SegmentationError, match="instead of a NIfTI image"):
        run_totalsegmentator(ct, fast=True)
    with pytest.raises(SegmentationError, match="not on device 'tpu'"):
        run_totalsegmentator(ct, fast=True, device="tpu")
    assert len(stand_in.calls) == 1  # the bad device was refused before any call
