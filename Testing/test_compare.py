"""`renderfm compare`: every renderer on the same cameras, scores against the target, outputs."""

import inspect
import json

import numpy as np
import pytest
from PIL import Image

from RenderFMLib.cli import main
from RenderFMLib.compare import (
    FOREGROUND_ALPHA,
    RENDERFM_MODES,
    CompareResult,
    compare,
    metrics_markdown,
    montage,
    renderer_names,
)
from RenderFMLib.errors import RenderFMError
from RenderFMLib.evaluation.metrics import image_metrics
from RenderFMLib.groundtruth.renderers import groundtruth_problem
from RenderFMLib.resources import resource_path

SAMPLE = resource_path("sample", "ct.nii.gz")
SEG = resource_path("sample", "segmentation.nii.gz")
SIZE = 48


@pytest.fixture(scope="module")
def renderfm_vs_dvr():
    return compare(SAMPLE, "CT-Bone", segmentation=SEG, views=2, size=SIZE,
                   renderers=["renderfm-agp", "dvr"], target="dvr")


def test_scores_are_against_the_target(renderfm_vs_dvr):
    result = renderfm_vs_dvr
    assert list(result.images) == ["dvr", "renderfm-agp"]
    assert list(result.scores) == ["renderfm-agp"]
    images, targets = result.images["renderfm-agp"], result.images["dvr"]
    assert len(images) == len(targets) == len(result.scores["renderfm-agp"]) == 2

    def metrics(image, target):  # masked to the target's foreground, as the module says
        return image_metrics(image.rgb, target.rgb, mask=target.alpha > FOREGROUND_ALPHA)

    # Each view against its own target (the same inputs, so the very same numbers).
    for image, target, score in zip(images, targets, result.scores["renderfm-agp"]):
        assert score == metrics(image, target)
    # Against the other view's target the scores differ, so a mix-up would show.
    assert metrics(images[0], targets[1])["psnr"] != result.scores["renderfm-agp"][0]["psnr"]
    # Two views from opposite sides of the CT are different pictures.
    first, second = (image.rgb for image in targets)
    assert np.abs(first - second).mean() > 0.01


def test_montage_and_table(renderfm_vs_dvr, tmp_path):
    sheet = montage(renderfm_vs_dvr)
    assert sheet.size == (2 * SIZE, 18 + 2 * (SIZE + 18))
    # Tiles: a column per renderer, a row per view under 18 px of labels, each the image in
    # 8 bits (rounded: within half a level).
    pixels = np.asarray(sheet, dtype=np.float64)
    for column, images in enumerate(renderfm_vs_dvr.images.values()):
        for row, image in enumerate(images):
            top = 18 + row * (SIZE + 18)
            tile = pixels[top: top + SIZE, column * SIZE: (column + 1) * SIZE]
            assert np.abs(tile - 255.0 * image.rgb).max() <= 0.5 + 1e-4  # float32 rgb
    table = metrics_markdown(renderfm_vs_dvr)
    assert "| renderfm-agp |" in table and "target dvr" in table


def test_renderfm_images_are_display_values():
    """CT-AAA's AGP shading lifts some colours above 1; compare scores what a screen shows."""
    result = compare(SAMPLE, "CT-AAA", views=1, size=32, renderers=["renderfm-agp", "dvr"],
                     target="dvr")
    image = result.images["renderfm-agp"][0].rgb
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5


def test_progress_rises_to_done_through_each_renderer():
    calls = []
    compare(SAMPLE, "CT-Bone", views=2, size=16, renderers=["renderfm-agp", "dvr"],
            target="dvr", progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] >= 0.0 and calls[-1] == (1.0, "done")
    # RenderFM first (half of the run for each of the two renderers): its preparation reports
    # through (a quarter), then its views; view 1 of 2 ends at (0.5 + 0.5 / 2) / 2.
    assert any(message == "renderfm-agp: priming Gaussians" and fraction < 0.25
               for fraction, message in calls)
    assert (0.375, "renderfm-agp: view 1/2") in calls and (0.5, "renderfm-agp: view 2/2") in calls
    assert any(message.startswith("dvr: ") and fraction > 0.5 for fraction, message in calls)


def test_unknown_renderer_and_bad_target():
    with pytest.raises(RenderFMError, match="views must be at least 1"):
        compare(SAMPLE, renderers=["dvr"], views=0)
    with pytest.raises(RenderFMError, match="unknown renderer"):
        compare(SAMPLE, renderers=["dvr", "raytracer9000"])
    with pytest.raises(RenderFMError, match="target must be a ground-truth renderer"):
        compare(SAMPLE, renderers=["dvr"], target="renderfm-agp")


def test_cli_compare_writes_montage_and_metrics(tmp_path, capsys):
    out = tmp_path / "cmp"
    status = main(["compare", str(SAMPLE), "--seg", "threshold", "--preset", "CT-Bone",
                   "--views", "1", "--size", "32", "--renderers", "renderfm-agp,dvr",
                   "--target", "dvr", "-o", str(out)])
    assert status == 0
    assert Image.open(out / "montage.png").size == (64, 18 + 32 + 18)
    record = json.loads((out / "metrics.json").read_text())
    assert record["target"] == "dvr" and len(record["cameras"]) == 1
    assert set(record["scores"]) == {"renderfm-agp"}
    refused = tmp_path / "refused"
    assert main(["compare", str(SAMPLE), "--renderers", "nope", "-o", str(refused)]) == 2
    err = capsys.readouterr().err
    assert "renderfm: error: unknown renderer nope" in err and "Traceback" not in err
    assert not refused.exists()  # nothing made for a refused command


def test_cli_compare_passes_every_option_and_defaults_to_the_api(tmp_path, monkeypatch, capsys):
    from RenderFMLib import compare as module

    api_defaults = {name: parameter.default
                    for name, parameter in inspect.signature(compare).parameters.items()}
    calls = []

    def fake_compare(ct, preset, **options):
        calls.append((ct, preset, options))
        return CompareResult(preset, "dvr", [], skipped={"pathtraced": "no Mitsuba here"})

    monkeypatch.setattr(module, "compare", fake_compare)
    monkeypatch.setattr(module, "write_comparison", lambda result, folder: [folder / "a.png"])
    out = tmp_path / "cmp"
    assert main(["compare", str(SAMPLE), "--seg", "threshold", "--preset", "CT-Bone",
                 "--views", "3", "--size", "40", "--renderers", "renderfm-agp,dvr",
                 "--target", "dvr", "--spp", "5", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped pathtraced: no Mitsuba here" in captured.err and "skipped" not in captured.out
    assert f"wrote {out / 'a.png'}" in captured.out
    monkeypatch.chdir(tmp_path)  # the default output folder is ./renderfm_compare
    assert main(["compare", str(SAMPLE)]) == 0
    (ct, preset, given), (_, default_preset, defaults) = calls
    assert (ct, preset) == (str(SAMPLE), "CT-Bone")
    assert callable(given.pop("progress")) and callable(defaults.pop("progress"))
    assert given == {"segmentation": "threshold", "views": 3, "size": 40,
                     "renderers": ["renderfm-agp", "dvr"], "target": "dvr", "spp": 5}
    # Without options: the API's own defaults.
    assert defaults == {name: api_defaults[name] for name in defaults}
    assert default_preset == api_defaults["preset"]


@pytest.mark.slow
def test_every_renderer_runs_on_one_view():
    """All six renderers at 32 px, 4 samples per pixel: each either renders or says why not."""
    result = compare(SAMPLE, "CT-Bone", views=1, size=32, spp=4)
    for name in renderer_names():
        problem = groundtruth_problem(name) if name not in RENDERFM_MODES else None
        assert (name in result.skipped) == (problem is not None)
        if problem is None:
            image = result.images[name][0].rgb
            assert image.shape == (32, 32, 3) and image.max() > 0.2  # the CT is visible
