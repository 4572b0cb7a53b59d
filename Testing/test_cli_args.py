"""The `renderfm` commands' argument types, output checks and progress bar (cli/args.py), called
directly: what each type accepts and refuses, and which output paths pass."""

import argparse

import pytest

from RenderFMLib.cli.args import (
    UsageError,
    angles,
    background_rgb,
    image_side,
    names,
    non_negative,
    output_file,
    output_folder,
    positive,
    progress_bar,
    seconds,
)


@pytest.mark.parametrize("parse, text, value", [
    (names, " skeleton, organs ,", ["skeleton", "organs"]),
    (background_rgb, "0.2,0.4,0.6", (0.2, 0.4, 0.6)),
    (background_rgb, "0,1,0", (0.0, 1.0, 0.0)),
    (image_side, "16", 16), (image_side, "8192", 8192),
    (positive, "1", 1), (non_negative, "0", 0),
    (seconds, "0.5", 0.5),
    (angles, "-30,0,30", [-30.0, 0.0, 30.0]),
])
def test_accepted_values(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse, text", [
    (names, " , "),
    (background_rgb, "1,1"), (background_rgb, "1,1,1,1"), (background_rgb, "-0.1,0,0"),
    (background_rgb, "0,0,1.5"), (background_rgb, "red"),
    (image_side, "15"), (image_side, "8193"), (image_side, "1.5"),
    (positive, "0"), (positive, "two"), (non_negative, "-1"),
    (seconds, "0"), (seconds, "inf"), (seconds, "nan"), (seconds, "soon"),
    (angles, ""), (angles, "up"),
])
def test_refused_values(parse, text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_output_file(tmp_path):
    assert output_file(str(tmp_path / "a.PNG"), ".png") == tmp_path / "a.PNG"  # any case
    (tmp_path / "folder.png").mkdir()
    for path, message in [(tmp_path / "a.jpg", "must end in .png"),
                          (tmp_path / "missing" / "a.png", "does not exist"),
                          (tmp_path / "folder.png", "is a folder")]:
        with pytest.raises(UsageError, match=message):
            output_file(str(path), ".png")


def test_output_folder(tmp_path):
    assert output_folder(str(tmp_path)) == tmp_path  # an existing folder, as it is
    new = tmp_path / "a" / "b"
    assert output_folder(str(new), create=False) == new and not new.exists()
    assert output_folder(str(new)) == new and new.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        output_folder(str(tmp_path / "file"), create=False)


def test_progress_bar_shows_the_fraction_and_the_message(capsys):
    with progress_bar("preparing") as update:
        update(0.5, "priming Gaussians")
    err = capsys.readouterr().err
    assert "preparing: priming Gaussians" in err and " 50%|" in err
