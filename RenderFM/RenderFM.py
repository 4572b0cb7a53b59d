"""RenderFM for 3D Slicer: a CT rendered as 6D Gaussians in the 3D view, following the camera.

The module's name, category and credits. Its panel (RenderFMPanel.widget), logic
(RenderFMPanel.logic, over the headless RenderFMLib.slicer) and self-test (RenderFMPanel.selftest)
live in the RenderFMPanel package, the Qt side; RenderFMLib needs PyTorch, so it is imported only
when the user asks for a rendering, after the packages it needs are installed, never when Slicer
loads this module.
"""

from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

from RenderFMPanel.logic import RenderFMLogic  # noqa: F401 (Slicer's naming convention)
from RenderFMPanel.selftest import RenderFMTest  # noqa: F401 (Slicer runs RenderFM.RenderFMTest)
from RenderFMPanel.widget import RenderFMWidget  # noqa: F401 (Slicer shows RenderFM.RenderFMWidget)


class RenderFM(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("RenderFM")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Rendering")]
        self.parent.dependencies = []
        self.parent.contributors = ["RenderFM contributors"]
        self.parent.helpText = _(
            "Photorealistic, real-time rendering of a CT in the 3D view. The CT and a volume "
            "rendering preset become 6D Gaussians in seconds (Anatomy-Guided Priming), which can "
            "then be fine-tuned against renderings of the same CT for a time budget; they then "
            "follow the 3D view's camera, at reduced resolution while it moves. Segmentations "
            "(existing, thresholds or TotalSegmentator) let you hide anatomical groups, and a "
            "comparison shows Slicer's own volume rendering beside RenderFM with SSIM and PSNR. "
            "PyTorch is installed on first use. After \"Render-FM: A Foundation Model for "
            "Real-time Photorealistic Volumetric Rendering\" "
            '(<a href="https://arxiv.org/abs/2505.17338">arXiv 2505.17338</a>).')
        self.parent.acknowledgementText = _(
            "Presets are 3D Slicer's volume rendering presets; the bundled sample CT and its "
            "segmentation come from the TotalSegmentator project (Apache-2.0). The method follows "
            "the Render-FM paper by its authors.")
