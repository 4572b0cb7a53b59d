"""The RenderFM module's helpers: the native comparison, package installs and the preset menu.

`library(name)` imports a RenderFMLib module on demand: RenderFMLib needs PyTorch, which Slicer
installs only on first use, so nothing of the module imports it when Slicer loads.
"""

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def library(name: str) -> ModuleType:
    """The RenderFMLib module `name`, imported now.

    Inside an installed extension RenderFMLib sits beside RenderFM.py, on Slicer's module path; in
    a source checkout (its RenderFM folder added to Slicer's module paths) it sits one folder up
    from RenderFM.py, and that folder is added to sys.path. RuntimeError names a missing
    third-party package (installed on first use); a RenderFMLib that cannot be found at all is a
    broken installation and raises ModuleNotFoundError.
    """
    if importlib.util.find_spec("RenderFMLib") is None:
        checkout = Path(__file__).resolve().parents[2]
        if (checkout / "RenderFMLib" / "__init__.py").is_file():
            sys.path.append(str(checkout))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "RenderFMLib":
            raise
        raise RuntimeError(f"RenderFM cannot import the Python package '{error.name}': press "
                           "Render to install what is missing, or reinstall the extension"
                           ) from error
