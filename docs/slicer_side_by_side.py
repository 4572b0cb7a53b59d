"""Make docs/slicer_side_by_side.png: the module's comparison, headless on slicer-core.

    VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow python docs/slicer_side_by_side.py

Slicer's CPU ray cast and RenderFM's layer in two offscreen Slicer 3D views with one camera
(CT-AAA on the bundled sample); prints what Measure reports for that view.
"""

import numpy as np
from PIL import Image

from RenderFMLib.camera import orbit_camera
from RenderFMLib.resources import resource_path
from RenderFMLib.slicer.comparison import Comparison
from RenderFMLib.slicer.context import SlicerContext
from RenderFMLib.slicer.logic import RenderFMCore, ViewTarget
from RenderFMLib.slicer.nodes import segmentation_node, volume_node
from RenderFMLib.slicer.view import OffscreenThreeDView, read_pixels
from RenderFMLib.volume import read_ct, read_label_map

PRESET, SIDE, BACKGROUND = "CT-AAA", 384, (0.1, 0.1, 0.15)


def main() -> None:
    ct = read_ct(resource_path("sample", "ct.nii.gz"))
    labels = read_label_map(resource_path("sample", "segmentation.nii.gz"))
    context = SlicerContext.headless()
    volume = volume_node(context, ct, "CT")
    core = RenderFMCore(context)
    gaussians = core.prepare(volume, segmentation_node(context, labels, "segmentation"), PRESET,
                             device="cpu")
    native, ours = (OffscreenThreeDView(context, (SIDE, SIDE), BACKGROUND) for _ in range(2))
    camera = orbit_camera(ct.center_ras(), ct.bounding_radius() * 0.8, 25.0, 10.0)
    for view in (native, ours):
        view.set_camera(camera)
    comparison = Comparison(core, gaussians, volume, PRESET, "cpu")
    comparison.start(ViewTarget.from_offscreen(native), ViewTarget.from_offscreen(ours))
    print(comparison.measure())
    left = native.capture()
    ours.render()
    gap = np.full((SIDE, 6, 3), 255, np.uint8)
    picture = np.concatenate([left, gap, read_pixels(ours.render_window)], axis=1)
    Image.fromarray(picture).save("docs/slicer_side_by_side.png")
    comparison.stop()
    core.dispose()
    native.close()
    ours.close()


if __name__ == "__main__":
    main()
