"""`renderfm make-gt`: layout, resuming, bad scans skipped, nothing mixed or overwritten."""

import inspect
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from RenderFMLib.cli import main
from RenderFMLib.errors import PresetError, RenderFMError
from RenderFMLib.groundtruth.cache import make_ground_truth, scan_names, view_cameras
from RenderFMLib.groundtruth.renderers import groundtruth_problem
from RenderFMLib.resources import resource_path
from RenderFMLib.volume import read_ct

SAMPLE = resource_path("sample", "ct.nii.gz")
PRESET = "CT-Bone"
SIZE = 24
VIEW_FILES = ["view_000.json", "view_000.png", "view_000_alpha.png"]


@pytest.fixture
def bad_scan(tmp_path):
    path = tmp_path / "scans" / "broken.nii.gz"
    path.parent.mkdir()
    path.write_text("not an image")
    return path


def _dvr(out, **options):
    return make_ground_truth([SAMPLE], [PRESET], out, **{"renderer": "dvr", "size": SIZE,
                                                         **options})


def _views(out, scan="ct", preset=PRESET, setting=f"dvr-{SIZE}px"):
    return out / scan / preset / setting


def test_layout_cameras_and_resume(tmp_path):
    out = tmp_path / "gt"
    first = _dvr(out, views=2)
    assert (first.rendered, first.skipped, first.failed) == (2, 0, [])
    folder = _views(out)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["settings.json", *VIEW_FILES, *(name.replace("000", "001") for name in VIEW_FILES)])
    rgb = np.asarray(Image.open(folder / "view_001.png"))
    alpha = np.asarray(Image.open(folder / "view_001_alpha.png"))
    assert rgb.shape == (SIZE, SIZE, 3) and alpha.shape == (SIZE, SIZE)
    assert alpha.max() == 255 and alpha.min() == 0  # the CT and empty space
    assert rgb[alpha == 0].max() == 0  # RGB is the image over black
    record = json.loads((folder / "view_001.json").read_text())
    assert record["camera"] == view_cameras(read_ct(SAMPLE), 2, [0.0])[1].to_dict()
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["renderer"] == "dvr" and settings["views"] == 2

    stamp = (folder / "view_000.png").stat().st_mtime_ns
    (folder / "view_001.png").unlink()
    again = _dvr(out, views=2)
    assert (again.rendered, again.skipped) == (1, 1)
    assert (folder / "view_000.png").stat().st_mtime_ns == stamp  # left alone
    assert np.array_equal(np.asarray(Image.open(folder / "view_001.png")), rgb)


def test_other_settings_are_refused_not_mixed_in(tmp_path):
    """Four views into a folder of two would make view 1 a different camera than it was."""
    out = tmp_path / "gt"
    _dvr(out, views=2)
    refused = _dvr(out, views=4)
    assert refused.rendered == 0 and "other settings (views differ)" in refused.failed[0][1]
    assert len(list(_views(out).glob("view_*.json"))) == 2
    _dvr(out, size=SIZE + 8, views=1)  # another size is another folder
    assert (_views(out, setting=f"dvr-{SIZE + 8}px") / "view_000.png").is_file()


def test_scans_that_share_a_file_name_get_their_folder_name(tmp_path):
    scans = [tmp_path / "s0001" / "ct.nii.gz", tmp_path / "s0002" / "ct.nii.gz"]
    assert list(scan_names(scans).values()) == ["s0001_ct", "s0002_ct"]
    assert scan_names([SAMPLE]) == {SAMPLE: "ct"}
    twins = [tmp_path / "a" / "x" / "ct.nii.gz", tmp_path / "b" / "x" / "ct.nii.gz"]
    with pytest.raises(RenderFMError, match="share the folder 'x_ct'"):
        scan_names(twins)
    for scan in scans:
        scan.parent.mkdir()
        shutil.copy(SAMPLE, scan)
    summary = make_ground_truth(scans, [PRESET], tmp_path / "gt", renderer="dvr", size=SIZE,
                                views=1)
    assert summary.rendered == 2
    assert (_views(tmp_path / "gt", scan="s0002_ct") / "view_000.png").is_file()


def test_bad_scan_is_reported_and_the_batch_goes_on(tmp_path, bad_scan):
    out = tmp_path / "gt"
    summary = make_ground_truth([bad_scan, SAMPLE], [PRESET], out, renderer="dvr", size=SIZE,
                                views=1)
    assert summary.rendered == 1
    assert [scan for scan, _ in summary.failed] == [str(bad_scan)]
    assert not (out / "broken").exists()  # nothing made for a scan that cannot be read


def test_mistakes_stop_before_rendering(tmp_path):
    out = tmp_path / "gt"
    with pytest.raises(PresetError):
        make_ground_truth([SAMPLE], ["No-Such-Preset"], out, renderer="dvr", size=SIZE)
    with pytest.raises(RenderFMError, match="not 'slicer-cpu'"):
        make_ground_truth([SAMPLE], [PRESET], out, renderer="slicer-cpu", size=SIZE)
    with pytest.raises(RenderFMError, match="at least one preset"):
        make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", elevations=())
    assert not out.exists()


def test_an_interrupted_write_leaves_no_image_to_skip(tmp_path, monkeypatch):
    """A crash while a PNG is written must not leave a file that the next run would skip."""
    def crash(self, path, *args, **kwargs):
        path.write_bytes(b"half a png")
        raise KeyboardInterrupt

    out = tmp_path / "gt"
    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _dvr(out, views=1)
    monkeypatch.undo()
    folder = _views(out)
    assert not (folder / "view_000.png").exists()
    assert not list(folder.glob(".*.partial"))  # write_atomic removed its temporary file
    (folder / ".view_000.png.0badf00d.partial").write_bytes(b"left by a killed run")
    assert _dvr(out, views=1).rendered == 1
    assert not list(folder.glob(".*.partial"))  # the stale temporary file is gone


def test_cli_make_gt(tmp_path, bad_scan, capsys):
    listing = tmp_path / "scans.txt"
    listing.write_text(f"# training scans\n{SAMPLE}\n\n")
    out = tmp_path / "gt"
    status = main(["make-gt", str(bad_scan), "--scans-file", str(listing), "--renderer", "dvr",
                   "--presets", PRESET, "--views", "2", "--elevations=-30,30",
                   "--size", str(SIZE), "-o", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "4 views rendered, 0 already there, 1 of 2 scans failed" in captured.out
    assert f"failed: {bad_scan}" in captured.err and "Traceback" not in captured.err
    assert len(list(_views(out).glob("view_???.png"))) == 4
    assert main(["make-gt", "-o", str(out)]) == 2
    assert "at least one scan" in capsys.readouterr().err
    assert main(["make-gt", str(SAMPLE), "--presets", "Nope", "-o", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()  # nothing made for a refused command


def test_cli_make_gt_passes_every_option_and_defaults_to_the_api(tmp_path, monkeypatch, capsys):
    from RenderFMLib.api import DEFAULT_PRESET
    from RenderFMLib.groundtruth import cache

    api_defaults = {name: parameter.default for name, parameter
                    in inspect.signature(cache.make_ground_truth).parameters.items()}
    calls = []

    def make_ground_truth(scans, presets, out, **options):
        calls.append((scans, presets, out, options))
        return cache.GroundTruthSummary(rendered=3)

    monkeypatch.setattr(cache, "make_ground_truth", make_ground_truth)
    out = tmp_path / "gt"
    assert main(["make-gt", str(SAMPLE), "--renderer", "pathtraced", "--presets", "CT-Bone,CT-AAA",
                 "--views", "5", "--elevations=-10,20", "--size", "32", "--spp", "3",
                 "--threads", "4", "--variant", "scalar_rgb", "-o", str(out)]) == 0
    assert "3 views rendered, 0 already there, 0 of 1 scans failed" in capsys.readouterr().out
    assert main(["make-gt", str(SAMPLE), "-o", str(out)]) == 0
    with pytest.raises(SystemExit) as refused:  # argparse: -o is required
        main(["make-gt", str(SAMPLE)])
    assert refused.value.code == 2 and "-o/--output" in capsys.readouterr().err
    (scans, presets, folder, given), (_, default_presets, _, defaults) = calls
    assert scans == [SAMPLE] and presets == ["CT-Bone", "CT-AAA"] and folder == out
    assert callable(given.pop("progress")) and callable(defaults.pop("progress"))
    assert given == {"renderer": "pathtraced", "size": 32, "views": 5, "elevations": [-10.0, 20.0],
                     "spp": 3, "threads": 4, "variant": "scalar_rgb"}
    # Without options: the API's own defaults (elevations as a list), Slicer's default preset.
    assert {**defaults, "elevations": tuple(defaults["elevations"])} == {
        name: api_defaults[name] for name in defaults}
    assert default_presets == [DEFAULT_PRESET]


def test_path_traced_ground_truth_records_its_settings(tmp_path):
    if groundtruth_problem("pathtraced") is not None:
        pytest.skip(groundtruth_problem("pathtraced"))
    out = tmp_path / "gt"
    options = dict(renderer="pathtraced", size=16, views=1, spp=2, threads=1)
    summary = make_ground_truth([SAMPLE], [PRESET], out, **options)
    folder = _views(out, setting="pathtraced-16px-2spp")
    settings = json.loads((folder / "settings.json").read_text())
    assert summary.rendered == 1
    assert (settings["spp"], settings["threads"], settings["seed"]) == (2, 1, 0)
    assert settings["variant"] in ("llvm_ad_rgb", "cuda_ad_rgb")
    first = np.asarray(Image.open(folder / "view_000.png"))
    assert np.asarray(Image.open(folder / "view_000_alpha.png")).max() > 0  # the CT was hit
    (folder / "view_000.png").unlink()
    make_ground_truth([SAMPLE], [PRESET], out, **options)
    assert np.array_equal(np.asarray(Image.open(folder / "view_000.png")), first)  # reproducible
    refused = make_ground_truth([SAMPLE], [PRESET], out, **{**options, "threads": 2})
    assert "threads differ" in refused.failed[0][1]
