"""The RenderFM module's Qt side: the panel and what only a running Slicer application has.

    widget.py        RenderFMWidget: the panel (Resources/UI/RenderFM.ui), its buttons and timer
    parameters.py    the parameter node: every choice on the panel, saved with the scene
    logic.py         RenderFMLogic: the parameter node mapped onto RenderFMLib.slicer
    views.py         Slicer's 3D views and layouts as RenderFM targets
    preset_icons.py  the preset menu's colour bars
    packages.py      installing PyTorch and TotalSegmentator into Slicer's Python
    selftest.py      RenderFMTest, run by Slicer's self-test

The headless side, everything that works on a bare MRML scene without Qt (preparation jobs, the
overlay in 3D views, the side-by-side comparison), is RenderFMLib.slicer: tested without Slicer's
application. `library(name)` imports a RenderFMLib module on demand: RenderFMLib needs PyTorch,
which Slicer installs only on first use, so nothing here imports it when Slicer loads.
"""

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what library() imports at run time, visible to readers and type checkers
    import RenderFMLib.api  # noqa: F401
    import RenderFMLib.resources  # noqa: F401
    import RenderFMLib.slicer.camera  # noqa: F401
    import RenderFMLib.slicer.context  # noqa: F401
    import RenderFMLib.slicer.dependencies  # noqa: F401
    import RenderFMLib.slicer.jobs  # noqa: F401
    import RenderFMLib.slicer.overlay  # noqa: F401
    import RenderFMLib.slicer.side_by_side  # noqa: F401
    import RenderFMLib.slicer.view  # noqa: F401


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
