"""Packaging: Resources/ is found in a source checkout and inside a built wheel.

Resources/ sits at the top of the repository (a Slicer extension expects it there) and the wheel
ships it as RenderFMLib/Resources (pyproject.toml maps the package dir). These tests build the
wheel from a copy of this checkout, look inside it, and import RenderFM from the unpacked wheel
alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from RenderFMLib import resources

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "RenderFMLib"
MIN_SETUPTOOLS = 77  # pyproject.toml's [build-system] requires setuptools>=77


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_resources_found_in_checkout() -> None:
    found = resources.resources_dir()
    assert found.resolve() == (REPO / "Resources").resolve()
    assert (found / "presets" / "presets.json").is_file()
    assert (found / "sample" / "ct.nii.gz").is_file()
    assert resources.resource_path("sample", "segmentation.nii.gz").is_file()


def test_missing_resources_is_reported(tmp_path: Path) -> None:
    """A package without Resources/ beside or inside it raises FileNotFoundError naming both."""
    package = tmp_path / "RenderFMLib"
    package.mkdir()
    for name in ("__init__.py", "resources.py"):
        shutil.copy(PACKAGE_DIR / name, package / name)
    code = ("import RenderFMLib.resources as r\ntry:\n    r.resources_dir()\n"
            "except FileNotFoundError as e:\n    print('missing:', e)\n")
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("missing:")
    assert str(package / "Resources") in result.stdout
    assert str(tmp_path / "Resources") in result.stdout


def _setuptools_major() -> int | None:
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built without build isolation from a copy of this checkout."""
    major = _setuptools_major()
    if major is None or major < MIN_SETUPTOOLS:
        pytest.skip(f"building without isolation needs setuptools>={MIN_SETUPTOOLS} in this "
                    f"environment (found {major}); install the 'test' extra")
    tmp = tmp_path_factory.mktemp("wheel")
    # A copy, so the build's build/ and *.egg-info never land in the working tree.
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        "renderfm_demo", "Testing"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and "setuptools" in result.stderr and "requirement" in result.stderr:
        pytest.skip(f"the build backend is unavailable without isolation: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheels = list((tmp / "dist").glob("renderfm-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        read = archive.read

        for required in ("presets/presets.json", "sample/ct.nii.gz", "sample/segmentation.nii.gz"):
            source = (REPO / "Resources" / required).read_bytes()
            assert _sha256(read(f"RenderFMLib/Resources/{required}")) == _sha256(source), required

        # Licence files: the bundled data's licences travel beside the data, the project's in
        # the dist-info.
        resource_licences = sorted((REPO / "Resources").rglob("LICENSE*"))
        assert resource_licences, "Resources/ holds no licence file"
        for path in resource_licences:
            inside = path.relative_to(REPO / "Resources").as_posix()
            assert f"RenderFMLib/Resources/{inside}" in names
        dist_infos = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        assert len(dist_infos) == 1, dist_infos
        dist_info = dist_infos.pop()
        top_licences = sorted(REPO.glob("LICENSE*"))
        assert top_licences, "the repository has no top-level LICENSE"
        for path in top_licences:
            assert f"{dist_info}/licenses/{path.name}" in names

        # Every module of the package (a subpackage missing from pyproject's list would be lost).
        sources = sorted(p.relative_to(REPO).as_posix() for p in PACKAGE_DIR.rglob("*.py")
                         if "__pycache__" not in p.parts)
        missing = [p for p in sources if p not in names]
        assert not missing, f"modules not in the wheel: {missing}"

        entry_points = read(f"{dist_info}/entry_points.txt").decode()
        assert "renderfm = RenderFMLib.cli:main" in entry_points


@pytest.mark.slow
def test_unpacked_wheel_finds_its_resources(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    # -S: no site-packages, so neither the editable install nor anything else can answer.
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import RenderFMLib.resources as r; print(r.__file__); "
         "print(r.resources_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    module_file, found = (Path(line) for line in result.stdout.strip().splitlines())
    assert module_file.is_relative_to(unpacked)
    assert found == unpacked / "RenderFMLib" / "Resources"

    # With site-packages (torch...) too: PYTHONPATH comes first, and the packaged presets parse.
    from RenderFMLib.transfer import preset_names

    code = ("import json, RenderFMLib, RenderFMLib.transfer as t, RenderFMLib.resources as r; "
            "print(json.dumps([RenderFMLib.__file__, str(r.resources_dir()), t.preset_names()]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    package_file, found, names = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(package_file).is_relative_to(unpacked)
    assert Path(found) == unpacked / "RenderFMLib" / "Resources"
    assert names == preset_names()


def test_readme_layout_names_every_package() -> None:
    """Each package folder (RenderFMLib's and the module's) has its line in the README's Layout."""
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\s+([\w]+)/\s", layout, flags=re.M))
    packages = {p.parent.name for root in (PACKAGE_DIR, REPO / "RenderFM")
                for p in root.rglob("__init__.py") if "__pycache__" not in p.parts}
    packages -= {"reference", "cpu", "cuda"}  # named on render/'s line
    assert packages <= named, f"not in the README's Layout: {sorted(packages - named)}"
    assert all(f"{name}/" in layout for name in ("reference", "cpu", "cuda"))
