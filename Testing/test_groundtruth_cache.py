"""`renderfm make-gt`: layout, resuming, bad scans skipped, nothing overwritten."""

import json

import numpy as np
import pytest
from PIL import Image

from RenderFMLib.cli import main
from RenderFMLib.errors import PresetError, RenderFMError
from RenderFMLib.groundtruth import cache
from RenderFMLib.groundtruth.cache import make_ground_truth, view_cameras
from RenderFMLib.resources import resource_path
from RenderFMLib.volume import read_ct

SAMPLE = resource_path("sample", "ct.nii.gz")
PRESET = "CT-Bone"
SIZE = 24


@pytest.fixture
def bad_scan(tmp_path):
    path = tmp_path / "scans" / "broken.nii.gz"
    path.parent.mkdir()
    path.write_text("not an image")
    return path


def _views(out, scan="ct", preset=PRESET, setting=f"dvr-{SIZE}px"):
    return out / scan / preset / setting


def test_layout_cameras_and_resume(tmp_path):
    out = tmp_path / "gt"
    first = make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE, views=2)
    assert (first.rendered, first.skipped, first.failed) == (2, 0, [])
    folder = _views(out)
    assert sorted(p.name for p in folder.iterdir()) == [
        "view_000.json", "view_000.png", "view_001.json", "view_001.png"]
    rgba = np.asarray(Image.open(folder / "view_001.png"))
    assert rgba.shape == (SIZE, SIZE, 4)
    assert rgba[..., 3].max() == 255 and rgba[..., 3].min() == 0  # the CT and empty space
    record = json.loads((folder / "view_001.json").read_text())
    expected = view_cameras(read_ct(SAMPLE), 2, [0.0])[1].to_dict()
    assert record["camera"] == expected and record["renderer"] == "dvr"

    stamp = (folder / "view_000.png").stat().st_mtime_ns
    (folder / "view_001.png").unlink()
    again = make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE, views=2)
    assert (again.rendered, again.skipped) == (1, 1)
    assert (folder / "view_000.png").stat().st_mtime_ns == stamp  # left alone
    assert np.array_equal(np.asarray(Image.open(folder / "view_001.png")), rgba)


def test_other_settings_go_to_their_own_folder(tmp_path):
    out = tmp_path / "gt"
    make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE, views=1)
    make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE + 8, views=1)
    assert (_views(out) / "view_000.png").is_file()
    assert (_views(out, setting=f"dvr-{SIZE + 8}px") / "view_000.png").is_file()


def test_bad_scan_is_reported_and_the_batch_goes_on(tmp_path, bad_scan):
    out = tmp_path / "gt"
    summary = make_ground_truth([bad_scan, SAMPLE], [PRESET], out, renderer="dvr", size=SIZE,
                                views=1)
    assert summary.rendered == 1
    assert [scan for scan, _ in summary.failed] == [str(bad_scan)]
    assert not (out / "broken").exists()


def test_mistakes_stop_before_rendering(tmp_path, bad_scan):
    out = tmp_path / "gt"
    with pytest.raises(PresetError):
        make_ground_truth([SAMPLE], ["No-Such-Preset"], out, renderer="dvr", size=SIZE)
    twin = tmp_path / "ct.nii.gz"
    twin.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(RenderFMError, match="share the folder"):
        make_ground_truth([SAMPLE, twin], [PRESET], out, renderer="dvr", size=SIZE)
    assert not out.exists()


def test_an_interrupted_write_leaves_no_image_to_skip(tmp_path, monkeypatch):
    """A crash while a PNG is written must not leave a file that the next run would skip."""
    def crash(self, path, *args, **kwargs):
        path.write_bytes(b"half a png")
        raise KeyboardInterrupt

    out = tmp_path / "gt"
    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE, views=1)
    monkeypatch.undo()
    assert not (_views(out) / "view_000.png").exists()
    assert make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE,
                             views=1).rendered == 1


def test_cli_make_gt(tmp_path, bad_scan, capsys):
    listing = tmp_path / "scans.txt"
    listing.write_text(f"# training scans\n{SAMPLE}\n\n")
    out = tmp_path / "gt"
    status = main(["make-gt", str(bad_scan), "--scans-file", str(listing), "--renderer", "dvr",
                   "--presets", PRESET, "--views", "2", "--elevations", "0,30",
                   "--size", str(SIZE), "-o", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "4 views rendered, 0 already there, 1 of 2 scans failed" in captured.out
    assert f"failed: {bad_scan}" in captured.err and "Traceback" not in captured.err
    assert len(list(_views(out).glob("*.png"))) == 4
    assert main(["make-gt", "-o", str(out)]) == 2
    assert "at least one scan" in capsys.readouterr().err


def test_partial_names_are_cleaned_up(tmp_path):
    out = tmp_path / "gt"
    make_ground_truth([SAMPLE], [PRESET], out, renderer="dvr", size=SIZE, views=1)
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
    assert cache.scan_name(SAMPLE) == "ct"


def test_path_traced_ground_truth_records_its_settings(tmp_path):
    from RenderFMLib.groundtruth.references import reference_problem

    if reference_problem("pathtraced") is not None:
        pytest.skip(reference_problem("pathtraced"))
    out = tmp_path / "gt"
    summary = make_ground_truth([SAMPLE], [PRESET], out, renderer="pathtraced", size=16,
                                views=1, spp=2, threads=1)
    folder = _views(out, setting="pathtraced-16px-2spp")
    record = json.loads((folder / "view_000.json").read_text())
    assert summary.rendered == 1 and (record["spp"], record["threads"], record["seed"]) == (2, 1, 0)
    first = np.asarray(Image.open(folder / "view_000.png"))
    assert first[..., 3].max() > 0  # the CT was hit
    (folder / "view_000.png").unlink()
    make_ground_truth([SAMPLE], [PRESET], out, renderer="pathtraced", size=16, views=1, spp=2,
                      threads=1)
    assert np.array_equal(np.asarray(Image.open(folder / "view_000.png")), first)  # reproducible
