"""Without slicer-core, the Slicer paths say what to install (no importorskip: this is the test
that matters where slicer-core is absent).

Stand-in: `import slicer` is made to fail by a None entry in sys.modules, since slicer-core cannot
be uninstalled for one test.
"""

import sys

import pytest

from RenderFMLib.camera import Camera
from RenderFMLib.errors import RenderFMError
from RenderFMLib.groundtruth.slicer_native import render_native
from RenderFMLib.slicer.context import SlicerContext, require_slicer


def test_missing_slicer_core_standin_blocked_import(monkeypatch, sample_ct) -> None:
    monkeypatch.setitem(sys.modules, "slicer", None)
    with pytest.raises(RenderFMError, match=r"install renderfm\[slicer\]"):
        require_slicer()
    with pytest.raises(RenderFMError, match=r"install renderfm\[slicer\]"):
        SlicerContext.headless()
    camera = Camera((0.0, 500.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    with pytest.raises(RenderFMError, match=r"install renderfm\[slicer\]"):
        render_native(sample_ct, "CT-Bone", camera, 64)
