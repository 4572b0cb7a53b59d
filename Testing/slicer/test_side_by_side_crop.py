"""The comparison stays honest while the user crops and shifts (issue 15): Slicer's side shares
the user's ROI node and volume property node, RenderFM's follows them (DisplayFollower), and
Measure scores only the pixels that see the box; stop() leaves the user's nodes in the scene.

The bundled sample CT, CT-Bone, views of 96 px.
"""

import numpy as np
import pytest

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib import api  # noqa: E402
from RenderFMLib.api import CropBox  # noqa: E402
from RenderFMLib.evaluation import metrics  # noqa: E402
from RenderFMLib.slicer.camera import camera_from_node  # noqa: E402
from RenderFMLib.slicer.display_follow import DisplayFollower  # noqa: E402
from RenderFMLib.slicer.jobs import prepare  # noqa: E402
from RenderFMLib.slicer.native import preset_from_property_node  # noqa: E402
from RenderFMLib.slicer.overlay import RenderFMOverlay, ViewTarget  # noqa: E402
from RenderFMLib.slicer.roi import roi_node, set_roi  # noqa: E402
from RenderFMLib.slicer.side_by_side import SideBySide  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView, read_pixels  # noqa: E402

SIZE = 96
BOX = CropBox((0.0, 120.0, 300.0), (300.0, 300.0, 120.0))  # a slab through the spine and ribs


def test_a_cropped_comparison_shares_the_users_nodes_and_scores_the_box(context, nodes,
                                                                       clock) -> None:
    volume = nodes[0]
    display = context.volume_rendering_logic.CreateDefaultVolumeRenderingNodes(volume)
    display.GetVolumePropertyNode().Copy(context.volume_rendering_logic.GetPresetByName("CT-Bone"))
    roi = roi_node(context.scene, BOX)
    display.SetAndObserveROINodeID(roi.GetID())
    display.SetCroppingEnabled(True)
    gaussians = prepare(context, volume, None, "CT-Bone", device="cpu")
    overlay = RenderFMOverlay(context, settle_s=0.25, clock=clock)
    follower = DisplayFollower(display, overlay, lambda preset: None, clock=clock)
    views = [OffscreenThreeDView(context, (SIZE, SIZE)) for _ in range(2)]
    views[0].set_camera(api.default_camera(gaussians, 30.0, 10.0))
    native, render = (ViewTarget.from_offscreen(view) for view in views)
    comparison = SideBySide(overlay, gaussians, volume,
                            preset_from_property_node(display.GetVolumePropertyNode()), "cpu",
                            follow=display)
    comparison.start(native, render)
    try:
        ours = comparison._display
        assert ours.GetROINode() is roi and ours.GetCroppingEnabled()
        assert ours.GetVolumePropertyNode() is display.GetVolumePropertyNode()
        scores = comparison.measure()
        mask = BOX.screen_mask(camera_from_node(render.camera_node), SIZE, SIZE)
        assert 0.05 < mask.mean() < 0.6  # the box covers part of the view only
        views[0].render()
        left = read_pixels(views[0].render_window)
        right = overlay.capture_renderfm(render)
        assert scores["ssim"] == pytest.approx(metrics.ssim(left, right, mask), abs=1e-6)
        assert scores["ssim"] != pytest.approx(metrics.ssim(left, right), abs=1e-3)
        set_roi(roi, CropBox((0.0, 120.0, 330.0), BOX.size))  # the user moves the box
        assert overlay.crop.center[2] == 330.0  # RenderFM follows; Slicer's side shares the node
    finally:
        comparison.stop()
        follower.close()
        overlay.dispose()
        for view in views:
            view.close()
    assert roi.GetScene() is not None and display.GetVolumePropertyNode().GetScene() is not None
    assert np.isfinite(scores["psnr"])
