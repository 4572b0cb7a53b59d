"""Fixtures for the headless Slicer tests: EGL offscreen windows, the bundled sample scan's nodes
(the scan itself: ../conftest.py), a clock the test moves by hand.

Every test module here builds its own SlicerContext once (module scope) from slicer-core;
modules skip as a whole where slicer-core is not installed.
"""

import os

import pytest

# Read by VTK whenever a render window is created; EGL renders offscreen without a display.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


@pytest.fixture(scope="module")
def context():
    """One headless scene with Slicer's logics per test module."""
    from RenderFMLib.slicer.context import SlicerContext

    return SlicerContext.headless()


@pytest.fixture(scope="module")
def nodes(context, sample_ct, sample_labels):
    """(CT volume node, segmentation node) of the bundled sample in the module's scene."""
    from RenderFMLib.slicer.nodes import segmentation_node, volume_node

    return (volume_node(context, sample_ct, "sample CT"),
            segmentation_node(context, sample_labels, "sample segmentation"))


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1024.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()
