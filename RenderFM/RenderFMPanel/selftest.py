"""RenderFMTest: the module's self-test, run inside Slicer (Reload and Test, or `--testing`).

RenderFM.py imports it, so Slicer finds it as RenderFM.RenderFMTest. The rendering part needs
PyTorch and skips with the reason where it is not installed (e.g. a build machine).
"""

import time

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from . import library
from .logic import TICK_MS, RenderFMLogic
from .parameters import DEFAULT_PRESET, Device, NativeMethod, Quality, SegmentationSource
from .views import comparison_targets


class RenderFMTest(ScriptedLoadableModuleTest):
    """In Slicer (Reload and Test, or `Slicer --testing`): the panel loads; the bundled sample CT
    goes through the logic into the first 3D view, follows its camera, compares with Slicer's CPU
    ray cast and leaves again. The rendering part skips where PyTorch is not installed."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_Panel()
        self.setUp()
        self.test_RenderInThreeDView()

    def test_Panel(self) -> None:
        """The .ui loads, the parameter node drives it, presets and qualities are listed, the
        fine-tuning budget shows with its quality."""
        slicer.util.selectModule("RenderFM")
        widget = slicer.util.getModuleWidget("RenderFM")
        records = library("RenderFMLib.resources").bundled_preset_records()
        presets = [preset["name"] for preset in records]
        self.assertEqual(widget.ui.presetComboBox.count, len(presets))
        self.assertEqual(widget.ui.presetComboBox.currentText, DEFAULT_PRESET)
        widget.ui.presetComboBox.currentText = presets[0]
        self.assertEqual(widget.logic.getParameterNode().preset, presets[0])
        model = widget.ui.qualityComboBox.model()  # every quality can be chosen
        self.assertEqual([model.item(i).isEnabled() for i in range(len(Quality))],
                         [True] * len(Quality))
        parameters = widget.logic.getParameterNode()
        for quality in Quality:  # the budget is shown for fine-tuning only
            parameters.quality = quality
            self.assertEqual(widget.ui.finetuneBudgetSpinBox.isHidden(),
                             not quality.finetunes())
        parameters.quality = Quality.NETWORK  # the default again

    def test_RenderInThreeDView(self) -> None:
        try:
            api = library("RenderFMLib.api")
            view = library("RenderFMLib.slicer.view")
            cameras = library("RenderFMLib.slicer.camera")
        except RuntimeError as error:  # RenderFMLib's packages are not installed yet
            # Slicer's Reload and Test calls the test directly: skipTest would show as a failure.
            slicer.util.delayDisplay(f"Skipped the rendering test: {error}")
            return
        logic = RenderFMLogic()
        sample = library("RenderFMLib.resources").resource_path("sample", "ct.nii.gz")
        parameters = logic.getParameterNode()
        parameters.inputVolume = slicer.util.loadVolume(str(sample))
        parameters.segmentationSource = SegmentationSource.THRESHOLD
        parameters.device = Device.CPU
        logic.startPrepare(parameters)
        while logic.finishPrepare() is None:
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertGreater(len(logic.gaussians), 1000)

        target, _ = comparison_targets(single_view=True)
        front = api.default_camera(logic.gaussians)
        cameras.set_camera_node(target.camera_node, front)
        target.render()
        before = view.read_pixels(target.render_window).astype(int)
        logic.show(target)
        shown = view.read_pixels(target.render_window).astype(int)
        changed = (shown != before).any(axis=2)
        # The CT fills about a third of the default camera's frame; the corners stay empty.
        self.assertGreater(changed.mean(), 0.05)
        self.assertFalse(changed[:8, :8].any() or changed[-8:, -8:].any())

        # One camera change: a draft while it is fresh, then one full render (or only the full
        # one when the first tick comes after the settle time).
        cameras.set_camera_node(target.camera_node, api.default_camera(logic.gaussians, 60.0))
        self.assertIn(self._tickFor(logic), (1, 2))
        self.assertIsNone(logic.lastRenderError())
        self.assertTrue((view.read_pixels(target.render_window) != shown).any())
        cameras.set_camera_node(target.camera_node, front)
        self._tickFor(logic)

        logic.startComparison(target, target, NativeMethod.CPU)
        scores = logic.measure()
        self.assertIn("CPU ray cast", scores["native"])
        self.assertGreater(scores["ssim"], 0.5)  # the same CT from the same camera, not noise

        logic.hideAll()
        self.assertIsNone(slicer.mrmlScene.GetFirstNodeByClass(
            "vtkMRMLCPURayCastVolumeRenderingDisplayNode"))
        target.render()
        after = view.read_pixels(target.render_window).astype(int)
        self.assertLessEqual(abs(after - before).max(), 1)  # the layer is gone, nothing else moved
        logic.dispose()

    @staticmethod
    def _tickFor(logic: RenderFMLogic, seconds: float = 3.0) -> int:
        """Tick like the widget's timer for longer than the follower's settle time (0.3 s), so the
        last render is at full resolution; the number of renders."""
        renders = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            slicer.app.processEvents()
            time.sleep(TICK_MS / 1000)
            renders += logic.tick()
        return renders
