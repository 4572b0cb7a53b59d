"""RenderFMLib never imports slicer, qt or vtk at module level.

The library runs in plain Python (CLI, benchmarks, tests) as well as inside 3D Slicer; only the
Slicer module may touch Slicer's Python packages, and only when it runs there. A fresh
interpreter imports every module of the package and reports which of those names were imported,
or even attempted (a module-level `try: import vtk` counts: it is still an import at load time).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "RenderFMLib"
FORBIDDEN = ("slicer", "qt", "PythonQt", "ctk", "vtk", "vtkmodules")

CHECK = r"""
import importlib, importlib.abc, json, pkgutil, sys

FORBIDDEN = FORBIDDEN_NAMES
def forbidden(name):
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)

class Watch(importlib.abc.MetaPathFinder):
    # Records every attempt to import a forbidden name, whether or not it would succeed.
    attempts = []
    def find_spec(self, name, path=None, target=None):
        if forbidden(name):
            Watch.attempts.append(name)
        return None

sys.meta_path.insert(0, Watch())
import RenderFMLib
imported = []
for info in pkgutil.walk_packages(RenderFMLib.__path__, "RenderFMLib."):
    if info.name.endswith(".__main__"):
        continue  # runs the command line
    importlib.import_module(info.name)
    imported.append(info.name)
print(json.dumps({
    "package_file": RenderFMLib.__file__,
    "imported": imported,
    "attempted": sorted(set(Watch.attempts)),
    "loaded": sorted(name for name in sys.modules if forbidden(name)),
}))
""".replace("FORBIDDEN_NAMES", repr(FORBIDDEN))


def _expected_modules() -> set[str]:
    """Dotted names of every module file in the package folder (package = __init__.py)."""
    names = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.add(".".join(parts))
    return {n for n in names if not n.endswith(".__main__")} - {"RenderFMLib"}


def test_no_slicer_qt_or_vtk_imports() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            cwd=PACKAGE_DIR.parent, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The walk covered this checkout's package, every module file in it.
    assert Path(report["package_file"]).resolve().parent == PACKAGE_DIR
    assert set(report["imported"]) == _expected_modules()
    assert report["loaded"] == [], report
    assert report["attempted"] == [], report


def test_the_check_sees_a_forbidden_import() -> None:
    """The same watch catches a guarded attempt: the test above can fail."""
    probe = CHECK.replace("import RenderFMLib\n", "import RenderFMLib\ntry:\n    import vtk.util\n"
                          "except ImportError:\n    pass\n", 1)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=PACKAGE_DIR.parent, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "vtk" in report["attempted"]


def test_the_package_exports_the_api_and_the_readme_lists_it() -> None:
    """RenderFMLib.__all__: every name resolves to the object of its module, api's names are all
    there, and the README's Python API section names exactly these."""
    import re

    import RenderFMLib
    from RenderFMLib import api

    for name in RenderFMLib.__all__:
        assert getattr(RenderFMLib, name) is not None, name
    assert RenderFMLib.prepare is api.prepare and set(api.__all__) <= set(RenderFMLib.__all__)
    readme = (PACKAGE_DIR.parent / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    (line,) = re.findall(r"`RenderFMLib` exports (.+?)\.(?:\s|$)", section.replace("\n", " "))
    assert sorted(re.findall(r"`(\w+)`", line)) == RenderFMLib.__all__
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(RenderFMLib, "no_such_name")  # noqa: B009 (the lookup is what is tested)


def test_the_preset_table_needs_no_pytorch() -> None:
    """The Slicer module fills its preset menu (RenderFMLib.resources) before PyTorch is there."""
    check = ("import sys, RenderFMLib.resources as r; names = [p['name'] for p in "
             "r.bundled_preset_records()]; assert r.DEFAULT_PRESET in names, names; "
             "print(sorted({'torch', 'numpy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            cwd=PACKAGE_DIR.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
