"""The one place that finds the project's Resources/ folder (presets, the bundled sample, weights).

Resources/ lives at the top of the repository, as a Slicer extension expects. It is found:
- in a built wheel: packaged as RenderFMLib/Resources (see pyproject.toml);
- in a source checkout, an editable install or inside Slicer: beside the RenderFMLib folder.
"""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    """The Resources/ folder in use; raises FileNotFoundError if the installation lacks it."""
    for candidate in (_PACKAGE_DIR / "Resources", _PACKAGE_DIR.parent / "Resources"):
        if (candidate / "presets").is_dir():
            return candidate
    raise FileNotFoundError(
        f"RenderFM's Resources folder is missing (looked in {_PACKAGE_DIR / 'Resources'} and "
        f"{_PACKAGE_DIR.parent / 'Resources'}); reinstall RenderFM"
    )


def resource_path(*parts: str) -> Path:
    """Path of a file under Resources/, e.g. resource_path("presets", "presets.json")."""
    return resources_dir().joinpath(*parts)
