"""`renderfm finetune` and api.finetune on a small real CT: the bundled sample cropped to 32^3
voxels (96 mm) around a lumbar vertebra and the air behind the back, prepared with CT-Bone and its
segmentation (about 2500 Gaussians).

The command runs in this process (main([...])), so torch is imported once and the loop can be
interrupted by a patched step. Targets: dvr rendered on the fly (a window of a new random view
each step, 6 held-out views at 64 px), else a make-gt folder of 8 dvr views at 64 px (2 held out)
rendered once for the module.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from safetensors import safe_open

from RenderFMLib import api
from RenderFMLib.cli import main
from RenderFMLib.demo import sample_paths
from RenderFMLib.errors import RenderFMWarning
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.groundtruth import dvr
from RenderFMLib.groundtruth.cache import make_ground_truth
from RenderFMLib.optimize import density
from RenderFMLib.optimize import finetune as loop
from RenderFMLib.optimize.evaluate import Scores
from RenderFMLib.optimize.sampling import CachedViews, views_for
from RenderFMLib.optimize.views import View, downsample_view, heldout_cameras
from RenderFMLib.segmentation.readers import read_labels
from RenderFMLib.volume import Volume, read_ct, to_sitk

CORNER = (57, 8, 42)  # (k, j, i) of the sample CT: 32 voxels of 3 mm from behind the back
SIDE = 32
PRESET = "CT-Bone"
PARAM_NAMES = ("means", "dir_means", "rgb", "sh", "opacity_logits", "log_scales", "corr_logits",
               "specular_sh")


@dataclass
class Scan:
    """The files every test uses (see the module docstring)."""

    ct: Path
    seg: Path
    other_ct: Path  # the same CT shifted by 4 voxels: another grid position
    model: Path  # `renderfm prepare` of ct
    targets: Path  # make-gt folder: 8 dvr views of ct at 64 px, CT-Bone
    other_preset: Path  # make-gt folder: 1 dvr view of ct at 16 px, CT-AAA


def _crop(volume: Volume, corner: tuple[int, int, int]) -> Volume:
    """SIDE^3 voxels from `corner` (k, j, i), with the ijk_to_ras that keeps them in place."""
    k, j, i = corner
    ijk_to_ras = np.array(volume.ijk_to_ras)
    ijk_to_ras[:3, 3] = volume.voxel_to_ras(np.array([i, j, k], dtype=np.float64))
    return Volume(volume.array[k:k + SIDE, j:j + SIDE, i:i + SIDE].clone(), ijk_to_ras)


def _write(volume: Volume, path: Path) -> Path:
    sitk.WriteImage(to_sitk(volume), str(path))
    return path


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Scan:
    folder = tmp_path_factory.mktemp("finetune")
    ct_path, seg_path = sample_paths()
    ct = read_ct(ct_path)
    seg = read_labels(seg_path, ct)
    shifted = (CORNER[0] + 4, CORNER[1], CORNER[2])
    scan = Scan(_write(_crop(ct, CORNER), folder / "spine.nii.gz"),
                _write(_crop(seg, CORNER), folder / "spine_seg.nii.gz"),
                _write(_crop(ct, shifted), folder / "shifted.nii.gz"),
                folder / "spine.safetensors",
                folder / "gt" / "spine" / PRESET / "dvr-64px",
                folder / "gt" / "spine" / "CT-AAA" / "dvr-16px")
    assert main(["prepare", str(scan.ct), "--seg", str(scan.seg), "--preset", PRESET,
                 "-o", str(scan.model)]) == 0
    for preset, size, views in ((PRESET, 64, 8), ("CT-AAA", 16, 1)):
        summary = make_ground_truth([scan.ct], [preset], folder / "gt", renderer="dvr",
                                    size=size, views=views)
        assert (summary.rendered, summary.failed) == (views, [])
    return scan


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """`renderfm finetune ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        status = main(["finetune", *map(str, args)])
    except SystemExit as refusal:  # argparse's
        status = refusal.code
    out, err = capsys.readouterr()
    return status, out, err


def error_lines(stderr: str) -> list[str]:
    """The "renderfm...: error: ..." lines, progress-bar redraws ("\\r") split off."""
    return [line for line in re.split(r"[\r\n]", stderr) if re.match(r"renderfm[ a-z]*: error:",
                                                                        line)]


def same_file(a: Path, b: Path) -> bool:
    """Whether two .safetensors files hold the same metadata and bit-identical tensors."""
    contents = []
    for path in (a, b):
        with safe_open(str(path), framework="pt") as handle:
            contents.append(({name: handle.get_tensor(name) for name in handle.keys()},
                             handle.metadata()))
    (tensors_a, metadata_a), (tensors_b, metadata_b) = contents
    assert sorted(tensors_a) == sorted([*PARAM_NAMES, "labels"])
    return (metadata_a == metadata_b and tensors_a.keys() == tensors_b.keys()
            and all(torch.equal(tensors_a[name], tensors_b[name]) for name in tensors_a))


def assert_complete(path: Path, count: int | None = None) -> SixDGaussians:
    """A model file SixDGaussians.load reads, finite, with `count` Gaussians; no .partial left."""
    gaussians = SixDGaussians.load(path)
    assert all(torch.isfinite(value).all() for value in gaussians.params().values())
    assert count is None or len(gaussians) == count
    assert list(path.parent.glob(".*.partial")) == []
    return gaussians


def report(stdout: str) -> dict[str, str]:
    """The closing report's lines by their first word(s)."""
    lines = stdout.splitlines()
    keys = ["before", "after", "count", "steps", *(["kept"] if len(lines) == 6 else []), "wrote"]
    assert len(lines) == len(keys), stdout
    return dict(zip(keys, lines))


# --- the command on a CT and on a prepared model ---------------------------------------------

def test_zero_iterations_writes_exactly_the_prepared_model(scan: Scan, tmp_path: Path,
                                                           capsys) -> None:
    out = tmp_path / "tuned.safetensors"
    status, stdout, _ = run(capsys, scan.ct, "--seg", scan.seg, "--preset", PRESET,
                            "--target", scan.targets, "--iterations", 0, "-o", out)
    assert status == 0, stdout
    assert same_file(out, scan.model)
    lines = report(stdout)
    count = len(SixDGaussians.load(scan.model))
    assert lines["before"].replace("before:", "after: ") == lines["after"]
    assert lines["count"] == f"Gaussians: {count} -> {count}"
    assert re.fullmatch(r"0 steps in \d+\.\d s, stopped: all iterations done", lines["steps"])
    assert lines["wrote"] == f"wrote {out} ({count} Gaussians)"


def test_budget_stop_writes_a_complete_model(scan: Scan, tmp_path: Path, capsys) -> None:
    out = tmp_path / "budget.safetensors"
    status, stdout, _ = run(capsys, scan.model, "--target", scan.targets, "--budget-s", 1e-3,
                            "-o", out)
    assert status == 0, stdout
    assert re.fullmatch(r"0 steps in \d+\.\d s, stopped: time budget spent",
                        report(stdout)["steps"])
    assert_complete(out)
    assert same_file(out, scan.model)  # the budget went on the targets: no step taken


def test_ctrl_c_in_the_loop_writes_the_model_so_far_and_exits_130(
        scan: Scan, tmp_path: Path, capsys, monkeypatch) -> None:
    take_step = loop._State.take_step

    def interrupted_at_3(state, fraction: float) -> None:
        if state.step == 3:
            raise KeyboardInterrupt
        take_step(state, fraction)

    monkeypatch.setattr(loop._State, "take_step", interrupted_at_3)
    out = tmp_path / "interrupted.safetensors"
    status, stdout, _ = run(capsys, scan.model, "--target", scan.targets, "--crop", 32,
                            "-o", out)
    assert status == 130, stdout
    lines = report(stdout)
    assert re.fullmatch(r"3 steps in \d+\.\d s, stopped: interrupted \(Ctrl-C\)",
                        lines["steps"])
    assert_complete(out, len(SixDGaussians.load(scan.model)))
    # three steps' model, or the start when those did not lower the held-out loss
    assert same_file(out, scan.model) == ("kept" in lines)


@pytest.mark.parametrize("module, name", [(api, "prepare"), (dvr.DvrScene, "render")],
                         ids=["preparing", "rendering targets"])
def test_ctrl_c_outside_the_loop_writes_nothing(scan: Scan, tmp_path: Path, capsys,
                                                monkeypatch, module, name: str) -> None:
    def interrupt(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, interrupt)
    out = tmp_path / "never.safetensors"
    status, stdout, stderr = run(capsys, scan.ct, "--seg", scan.seg, "--preset", PRESET,
                                 "-o", out)
    assert (status, stdout) == (130, "")
    assert stderr.rstrip().endswith("renderfm: interrupted")
    assert list(tmp_path.iterdir()) == []


def test_every_option_reaches_api_finetune_and_its_defaults_are_the_apis(
        scan: Scan, tmp_path: Path, capsys, monkeypatch) -> None:
    api_defaults = {name: parameter.default
                    for name, parameter in inspect.signature(api.finetune).parameters.items()}
    calls = []

    @functools.wraps(api.finetune)  # its signature: the command takes its defaults from it
    def finetune(gaussians, ct, **options):
        calls.append((ct, options))
        scores = Scores(0.0, 30.0, 0.9, 0.8, ())
        return api.FinetuneResult(gaussians, scores, scores, 0, 0.0, "iterations")

    monkeypatch.setattr(api, "finetune", finetune)
    status, _, err = run(capsys, scan.model, "--ct", scan.ct, "--hu-offset", "5", "--spacing", "3",
                         "--target", "dvr", "--iterations", "7", "--budget-s", "9.5", "--size",
                         "20", "--heldout-size", "24", "--crop", "18", "--seed", "5", "--densify",
                         "-o", tmp_path / "a.safetensors")
    assert status == 0, err
    status, _, err = run(capsys, scan.model, "--ct", scan.ct, "-o", tmp_path / "b.safetensors")
    assert status == 0, err
    assert run(capsys, scan.model, "--ct", scan.ct)[0] == 2  # argparse: -o is required
    (ct, given), (_, defaults) = calls
    assert ct == str(scan.ct)
    assert callable(given.pop("progress")) and callable(defaults.pop("progress"))
    assert given == {"target": "dvr", "size": 20, "heldout_size": 24,
                     "iterations": 7, "budget_s": 9.5, "crop": 18, "densify": True, "seed": 5,
                     "hu_offset": 5.0, "spacing_mm": 3.0}
    assert defaults == {name: api_defaults[name] for name in defaults}


def test_a_ct_input_with_spacing_passes_the_ct_as_read(scan: Scan, tmp_path: Path, capsys,
                                                      monkeypatch) -> None:
    """`finetune CT --spacing 2`: prepared on the 2 mm grid, fine-tuned against the CT on its own
    3 mm grid (api.finetune gets that CT and spacing_mm 2, to check the Gaussians' grid)."""
    calls = []

    @functools.wraps(api.finetune)  # the command takes its defaults from the signature
    def finetune(gaussians, ct, **options):
        calls.append((gaussians, ct, options))
        scores = Scores(0.0, 30.0, 0.9, 0.8, ())
        return api.FinetuneResult(gaussians, scores, scores, 0, 0.0, "iterations")

    monkeypatch.setattr(api, "finetune", finetune)
    status, _, err = run(capsys, scan.ct, "--seg", scan.seg, "--preset", PRESET, "--weights",
                         "none", "--spacing", "2", "-o", tmp_path / "c.safetensors")
    assert status == 0, err
    ((gaussians, ct, options),) = calls
    assert tuple(gaussians.volume_shape) == (48, 48, 48)
    assert torch.equal(ct.array, read_ct(scan.ct).array.float())
    assert (options["spacing_mm"], options["hu_offset"]) == (2.0, None)


# --- mistakes: one line, status 2, nothing written --------------------------------------------

ARGPARSE = "renderfm finetune: error: argument "


@pytest.mark.parametrize("case, args, message", [
    ("negative iterations", ["--iterations", "-1"], ARGPARSE + "--iterations: expected at least "
                                                    "0, not -1"),
    ("zero budget", ["--budget-s", "0"], ARGPARSE + "--budget-s: expected a number of seconds "
                                                    "above 0, not '0'"),
    ("crop too small", ["--crop", "8"], ARGPARSE + "--crop: size must be 16..8192 pixels, not 8"),
    ("size too large", ["--size", "9000"], ARGPARSE + "--size: size must be 16..8192 pixels, "
                                                      "not 9000"),
    ("unknown target", ["--target", "nerf"], "renderfm: error: unknown target 'nerf': use dvr, "
                                             "or a make-gt folder"),
    ("pathtraced target", ["--target", "pathtraced"],
     "renderfm: error: the pathtraced target is read from a make-gt folder: run `renderfm make-gt "
     "--renderer pathtraced` and give its OUT/<scan>/<preset>/pathtraced-<size>px-<spp>spp "
     "folder as target"),
    ("model without --ct", [], "renderfm: error: the dvr target needs the CT this model was "
                               "prepared from: add --ct CT (with the --spacing and --hu-offset "
                               "used to prepare it)"),
    ("segmentation with a model", ["--seg", "threshold", "--ct", "CT"],
     "renderfm: error: --seg: only for a CT, not for a prepared model"),
])
def test_mistakes_with_a_model(scan: Scan, tmp_path: Path, capsys, case: str,
                               args: list[str], message: str) -> None:
    out = tmp_path / "x.safetensors"
    status, stdout, stderr = run(capsys, scan.model, *args, "-o", out)
    assert (status, stdout, error_lines(stderr)) == (2, "", [message]), case
    assert list(tmp_path.iterdir()) == []


def test_targets_of_another_preset(scan: Scan, tmp_path: Path, capsys) -> None:
    status, _, stderr = run(capsys, scan.model, "--target", scan.other_preset,
                            "-o", tmp_path / "x.safetensors")
    assert (status, error_lines(stderr)) == (2, [
        f"renderfm: error: {scan.other_preset} holds views of preset 'CT-AAA', but the "
        f"Gaussians were made with '{PRESET}'"])


def test_targets_of_another_ct(scan: Scan, tmp_path: Path, capsys) -> None:
    summary = make_ground_truth([scan.other_ct], [PRESET], tmp_path, renderer="dvr", size=16,
                                views=2)
    assert (summary.rendered, summary.failed) == (2, [])
    folder = tmp_path / "shifted" / PRESET / "dvr-16px"
    status, _, stderr = run(capsys, scan.model, "--target", folder,
                            "-o", tmp_path / "x.safetensors")
    assert status == 2
    assert error_lines(stderr)[0].startswith(f"renderfm: error: {folder} holds views of another "
                                             "CT (centred at ")


def test_ct_of_another_position_leaves_an_existing_output_as_it_was(scan: Scan, tmp_path: Path,
                                                                    capsys) -> None:
    out = tmp_path / "kept.safetensors"
    out.write_bytes(b"an earlier model")
    status, _, stderr = run(capsys, scan.model, "--ct", scan.other_ct, "-o", out)
    assert (status, error_lines(stderr)) == (2, [
        f"renderfm: error: the CT (grid [{SIDE}, {SIDE}, {SIDE}]) is not the one these Gaussians "
        f"were prepared from (grid [{SIDE}, {SIDE}, {SIDE}], or another position); give that "
        "CT, with the same --spacing"])
    assert out.read_bytes() == b"an earlier model"
    assert [path.name for path in tmp_path.iterdir()] == [out.name]


def test_ct_input_refuses_ct_and_checks_the_output_first(scan: Scan, tmp_path: Path,
                                                         capsys) -> None:
    status, _, stderr = run(capsys, scan.ct, "--ct", scan.ct, "-o", tmp_path / "x.safetensors")
    assert (status, error_lines(stderr)) == (
        2, ["renderfm: error: --ct: only for a prepared model; INPUT is the CT here"])
    status, _, stderr = run(capsys, scan.ct, "-o", tmp_path / "x.ply")
    assert (status, error_lines(stderr)) == (
        2, [f"renderfm: error: output {tmp_path / 'x.ply'} must end in .safetensors"])


# --- the optimisation ------------------------------------------------------------------------

def test_short_finetune_lowers_the_heldout_loss(scan: Scan) -> None:
    """From AGP alone, 24 steps on windows of new random views lower the held-out loss."""
    gaussians = api.prepare(scan.ct, scan.seg, PRESET, weights=None)
    result = api.finetune(gaussians, scan.ct, size=64, heldout_size=64, crop=32, iterations=24,
                          budget_s=None)
    assert (result.steps, result.stopped, result.kept_start) == (24, "iterations", False)
    assert result.after.loss < result.before.loss
    assert len(result.before.per_view) == len(result.after.per_view) == 6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("target", ["dvr", "cache"])
def test_a_finetune_on_the_gpu_lowers_the_heldout_loss(scan: Scan, target: str) -> None:
    """On a GPU (the CUDA kernels), from dvr views rendered there or from a make-gt cache read to
    the CPU: the Gaussians stay on the GPU and the held-out loss falls."""
    gaussians = api.prepare(scan.ct, scan.seg, PRESET, weights=None, device="cuda")
    result = api.finetune(gaussians, scan.ct, target=str(scan.targets) if target == "cache"
                          else "dvr", size=64, heldout_size=64, crop=32, iterations=24,
                          budget_s=None)
    assert result.steps == 24 and result.gaussians.means.device.type == "cuda"
    assert result.after.loss < result.before.loss


def test_dvr_targets_come_from_the_ct_as_read(scan: Scan, monkeypatch) -> None:
    """Gaussians prepared on a resampled grid (spacing_mm 2 on the 3 mm crop) are fine-tuned
    against dvr views of the CT on its own grid, the look Slicer draws: the targets' CT has the
    file's shape and values, while the CT check still uses the resampled grid."""
    with pytest.warns(RenderFMWarning, match="different grid"):  # the segmentation follows
        gaussians = api.prepare(scan.ct, scan.seg, PRESET, weights=None, spacing_mm=2.0)
    seen = []

    def capture(gaussians, ct, target, **kwargs):
        seen.append(ct)
        raise KeyboardInterrupt  # enough: the targets' CT is known

    monkeypatch.setattr(api, "views_for", capture)
    with pytest.raises(KeyboardInterrupt):
        api.finetune(gaussians, scan.ct, spacing_mm=2.0, budget_s=None)
    as_read = read_ct(scan.ct)
    assert tuple(gaussians.volume_shape) == (48, 48, 48) != tuple(as_read.shape)
    assert torch.equal(seen[0].array, as_read.array.float())
    with pytest.raises(api.RenderFMError, match="not the one these Gaussians were prepared from"):
        api.finetune(gaussians, scan.ct, budget_s=None)  # without the spacing: another grid


def test_should_stop_cancels_with_a_complete_model(scan: Scan, tmp_path: Path) -> None:
    asked = []

    def stop_on_fifth_call() -> bool:
        asked.append(True)
        return len(asked) == 5

    gaussians = SixDGaussians.load(scan.model)
    result = api.finetune(gaussians, target=scan.targets, crop=32, budget_s=None,
                          should_stop=stop_on_fifth_call)
    assert (result.steps, result.stopped) == (4, "cancelled")
    result.gaussians.save(tmp_path / "cancelled.safetensors")
    assert_complete(tmp_path / "cancelled.safetensors", len(gaussians))


def test_densification_grows_the_count_and_keeps_labels(scan: Scan, monkeypatch) -> None:
    monkeypatch.setattr(loop, "DENSIFY_FROM", 4)
    monkeypatch.setattr(loop, "DENSIFY_EVERY", 4)
    calls = []

    def improving(gaussians: SixDGaussians, heldout: list) -> Scores:
        """Each score better than the last, so the tuned Gaussians come back."""
        calls.append(len(gaussians))
        return Scores(-len(calls), math.nan, math.nan, math.nan, ())

    monkeypatch.setattr(loop, "heldout_scores", improving)
    gaussians = api.prepare(scan.ct, scan.seg, PRESET, weights=None)  # AGP: no faint Gaussian
    result = api.finetune(gaussians, target=scan.targets, iterations=12, budget_s=None, crop=32,
                          densify=True)
    tuned = result.gaussians
    assert (result.steps, result.kept_start, calls) == (12, False, [len(gaussians), len(tuned)])
    # densified after steps 4 and 8 (fraction below DENSIFY_UNTIL): SPLIT_FRACTION of the count
    # split into two each time; none faded (AGP's least opacity is 0.06, the prune limit 0.005)
    count = len(gaussians)
    for _ in range(2):
        count += int(loop.SPLIT_FRACTION * count)
    assert len(gaussians) < count == len(tuned)
    # children carry their parent's label: no label lost a Gaussian, none is new
    before, after = Counter(gaussians.labels.tolist()), Counter(tuned.labels.tolist())
    assert after.keys() == before.keys() and not before - after
    assert all(torch.isfinite(value).all() for value in tuned.params().values())


def test_split_children_keep_labels_and_adam_state_follows() -> None:
    count = 4
    generator = torch.Generator().manual_seed(0)
    params = {"means": torch.randn(count, 3, generator=generator) * 10,
              "dir_means": torch.nn.functional.normalize(torch.randn(count, 3, generator=generator),
                                                         dim=-1),
              "rgb": torch.rand(count, 3, generator=generator),
              "sh": torch.randn(count, 9, generator=generator),
              "opacity_logits": torch.tensor([2.0, 1.0, 0.5, -8.0]),  # the last one has faded
              "log_scales": torch.full((count, 6), math.log(3.0)),
              "corr_logits": torch.zeros(count, 15)}
    params = {name: value.requires_grad_(True) for name, value in params.items()}
    labels = torch.tensor([11, 22, 33, 44])
    optimizer = torch.optim.Adam([{"params": [value], "lr": 0.01, "name": name}
                                  for name, value in params.items()])
    sum((value * torch.randn(value.shape, generator=generator)).sum()
        for value in params.values()).backward()
    optimizer.step()
    moments = {name: {key: optimizer.state[value][key].clone() for key in ("exp_avg", "exp_avg_sq")}
               for name, value in params.items()}

    new, new_labels = density.densify(params, labels, optimizer, torch.tensor([1]), generator)

    # kept: 0 and 2 (1 is split, 3 has faded), then the two children of 1
    assert new_labels.tolist() == [11, 33, 22, 22]
    kept, parent = torch.tensor([0, 2]), 1
    for group, (name, value) in zip(optimizer.param_groups, new.items()):
        assert group["params"] == [value] and value.requires_grad and value.is_leaf
        assert torch.equal(value[:2], params[name].detach()[kept]), name
        for key, moment in moments[name].items():
            state = optimizer.state[value][key]
            assert torch.equal(state[:2], moment[kept]), (name, key)
            assert torch.equal(state[2:], torch.zeros_like(state[2:])), (name, key)
        if name not in ("means", "log_scales"):
            assert torch.equal(value[2:], params[name].detach()[[parent, parent]]), name
    shrunk = params["log_scales"].detach()[parent].clone()
    shrunk[:3] -= math.log(density.SPLIT_SHRINK)
    assert torch.allclose(new["log_scales"][2:], shrunk.expand(2, 6))
    assert not torch.equal(new["means"][2], new["means"][3])
    # children are drawn from the parent's position marginal: within 5 sigma (3 mm scales)
    assert (new["means"][2:] - params["means"].detach()[parent]).abs().max() < 15.0


def test_fixed_positions_keep_every_mean_and_train_the_rest(scan: Scan) -> None:
    """The network's teachers (training/teachers.py) fine-tune with positions fixed: the means
    come back bit for bit while the other fields move (12 steps of Adam at learning rates of
    5e-3 to 0.05 move them by far more than the 1e-4 asked)."""
    gaussians = SixDGaussians.load(scan.model)
    train, heldout = views_for(gaussians, None, str(scan.targets), size=64, crop=32,
                               heldout_size=64)
    options = loop.FinetuneOptions(iterations=12, budget_s=None, fixed_positions=True)
    result = loop.finetune(gaussians, train, heldout, options)
    assert result.steps == 12 and not result.kept_start
    start, tuned = gaussians.params(), result.gaussians.params()
    assert torch.equal(start["means"], tuned["means"])
    for name in ("opacity_logits", "log_scales", "sh"):
        assert float((start[name] - tuned[name]).abs().max()) > 1e-4, name


def test_fixed_positions_refuse_densify() -> None:
    with pytest.raises(ValueError, match="densify .* fixed_positions"):
        loop.FinetuneOptions(densify=True, fixed_positions=True)


def test_learning_rates_grow_with_the_window_beyond_128_px(scan: Scan) -> None:
    """Every field's learning rate is its table value up to 128 px windows and
    (side / 128) ** LR_WINDOW_POWER times it beyond; the side is the largest window the views
    allow (a crop larger than the views gives the views' side)."""
    assert loop.window_lr_scale(64) == loop.window_lr_scale(128) == 1.0
    assert loop.window_lr_scale(512) == pytest.approx(4.0 ** loop.LR_WINDOW_POWER, rel=1e-12)
    assert loop.window_lr_scale(256) < loop.window_lr_scale(512)
    gaussians = SixDGaussians.load(scan.model)
    camera = heldout_cameras(gaussians)[0]
    blank = View(camera, torch.zeros(256, 256, 3), torch.zeros(256, 256))
    options = loop.FinetuneOptions(iterations=1, budget_s=None)
    for crop, views, scale in ((512, [blank, blank], 2.0 ** loop.LR_WINDOW_POWER),
                               (96, [blank, blank], 1.0),
                               (512, [downsample_view(blank, 4)] * 2, 1.0)):
        state = loop._State(gaussians, CachedViews(views, crop), options)
        state._set_lr(0.0)
        rates = {group["name"]: group["lr"] for group in state.optimizer.param_groups}
        assert rates["opacity_logits"] == pytest.approx(scale * loop.LR["opacity_logits"])
        assert rates["means"] == pytest.approx(scale * loop.LR_MEANS * state.block_mm)
