"""RenderFMLogic: what the module does, without GUI calls (Slicer's ScriptedLoadableModuleLogic).

It maps the parameter node onto RenderFMLib.slicer, which does the work over Slicer's scene:
preparation in a worker thread (jobs.py), the layer in each 3D view that follows its camera and
group visibility (overlay.py), the CT's volume rendering settings (display_follow.py: its ROI
and Crop checkbox redraw, a preset change or Shift prepares again in the background, the old
picture kept until then), the side-by-side comparison (side_by_side.py). RenderFMLib (and so
PyTorch) is imported on first use, through library().
"""

import time

from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from . import library, packages
from .parameters import NativeMethod, RenderFMParameterNode, SegmentationSource

TICK_MS = 30  # how often the widget's timer calls tick() and polls the preparation


class RenderFMLogic(ScriptedLoadableModuleLogic):
    """What the module does, without GUI calls: the parameter node mapped onto RenderFMLib's
    RenderFMOverlay (created on first use, over Slicer's scene), package installs, and one
    comparison with Slicer's volume rendering at a time."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._overlay = None
        self._job = None
        self._pending = None  # (volume node, preset) of the running preparation
        self._started = 0.0
        self._comparison = None
        self.gaussians = None  # the latest prepared SixDGaussians
        self.finetuned = None  # their fine-tuning's report (RenderFMLib.slicer.jobs.Finetuned)
        self.preparedFrom = None  # (volume node, preset) they were prepared from
        self.prepareSeconds = 0.0
        self.deviceMessage = ""
        self._hiddenGroups = []
        self._request = None  # (volume, segmentation, device, finetune) of the last preparation
        self._follower = None  # DisplayFollower of the CT's volume rendering display node
        self.note = None  # what the status line should say about the followed settings

    def getParameterNode(self) -> RenderFMParameterNode:
        return RenderFMParameterNode(super().getParameterNode())

    def missingPackages(self, autoSegmentation: bool) -> list:
        """pip requirements RenderFM still needs here (RenderFMLib.slicer.dependencies)."""
        return library("RenderFMLib.slicer.dependencies").missing_packages(autoSegmentation)

    def installPackages(self, requirements: list) -> None:
        dependencies = library("RenderFMLib.slicer.dependencies")
        packages.install(requirements, dependencies.TORCH, dependencies.TOTALSEGMENTATOR)

    @property
    def overlay(self):
        """The RenderFMOverlay over the running application's scene and module logics."""
        if self._overlay is None:
            context = library("RenderFMLib.slicer.context").SlicerContext.from_application()
            overlay = library("RenderFMLib.slicer.overlay")
            self._overlay = overlay.RenderFMOverlay(context, background=True)
            self._overlay.set_hidden_groups(self._hiddenGroups)
        return self._overlay

    # --- preparation, in a worker thread --------------------------------------------------

    def startPrepare(self, parameters: RenderFMParameterNode) -> None:
        """Start preparing Gaussians for the parameters (AGP, then fine-tuning for the budget if
        chosen); ValueError for a choice that cannot work (no volume, no segmentation node)."""
        if self.preparing():
            raise ValueError("a preparation is already running")
        if parameters.inputVolume is None:
            raise ValueError("choose an input volume")
        source = parameters.segmentationSource
        if source is SegmentationSource.NODE and parameters.segmentationNode is None:
            raise ValueError("choose a segmentation node, or another segmentation source")
        segmentation = (parameters.segmentationNode if source is SegmentationSource.NODE
                        else source.argument())
        device = parameters.device.name.lower()
        _, self.deviceMessage = library("RenderFMLib.slicer.dependencies").resolve_device(device)
        jobs = library("RenderFMLib.slicer.jobs")
        finetune = None
        if parameters.quality.finetunes():
            finetune = jobs.FinetuneSettings(float(parameters.finetuneBudget))
        self._request = (parameters.inputVolume, segmentation, device, finetune,
                         parameters.quality.weights())
        self._start(parameters.preset)

    def _start(self, preset) -> None:
        """Start preparing the last request's CT with preset (a name or a Preset)."""
        volume, segmentation, device, finetune, weights = self._request
        jobs = library("RenderFMLib.slicer.jobs")
        self._pending = (volume, preset)
        self._started = time.monotonic()
        self._job = jobs.start_prepare(self.overlay.context, volume, segmentation, preset,
                                       device=device, finetune=finetune, weights=weights)

    def _reprepare(self, preset) -> None:
        """The followed display node's transfer function changed (preset or Shift): prepare
        again with it (AGP or the network: seconds), cancelling a preparation still running; the
        shown picture stays until the new one is ready. A fine-tuned model is not redone unasked
        (minutes of work)."""
        if self._request is None:
            return
        if self._request[3] is not None:
            self.note = ("the fine-tuned model was made for another transfer function: press "
                         "Render to redo it")
            return
        if self._job is not None:
            self._job.cancel()
        self.note = None
        self._start(preset)

    def preparing(self) -> bool:
        return self._job is not None

    def prepareProgress(self) -> tuple:
        """(fraction in [0, 1], message) of the running preparation."""
        return self._job.progress if self._job else (0.0, "")

    def cancelPrepare(self) -> None:
        if self._job:
            self._job.cancel()

    def finishPrepare(self):
        """The number of Gaussians once the preparation has ended, else None; re-raises its
        error (Cancelled after cancelPrepare), leaving the shown Gaussians as they were."""
        if self._job is None or not self._job.done():
            return None
        job, self._job = self._job, None
        self.gaussians = job.result()
        self.finetuned = job.finetuned
        self.preparedFrom = self._pending
        self.prepareSeconds = time.monotonic() - self._started
        return len(self.gaussians)

    # --- showing ------------------------------------------------------------------------

    def show(self, target) -> None:
        """RenderFM over target's view (a ViewTarget), following its camera."""
        if self.gaussians is None:
            raise ValueError("press Render first")
        self.overlay.show(target, self.gaussians)
        self._followDisplay()

    def _followDisplay(self) -> None:
        """Follow the prepared CT's first volume rendering display node, if it has one."""
        volume = self.preparedFrom[0] if self.preparedFrom else None
        display = self._volumeRendering(volume)
        if self._follower is not None and self._follower.display is display:
            return
        self._stopFollowing()
        if display is not None:
            follow = library("RenderFMLib.slicer.display_follow")
            self._follower = follow.DisplayFollower(display, self.overlay, self._reprepare)

    @staticmethod
    def _volumeRendering(volume):
        """volume's first volume rendering display node, or None."""
        for index in range(volume.GetNumberOfDisplayNodes() if volume is not None else 0):
            node = volume.GetNthDisplayNode(index)
            if node is not None and node.IsA("vtkMRMLVolumeRenderingDisplayNode"):
                return node
        return None

    def _stopFollowing(self) -> None:
        if self._follower is not None:
            self._follower.close()
            self._follower = None

    def hideAll(self) -> None:
        self.stopComparison()
        self._stopFollowing()
        if self._overlay:
            self._overlay.close()

    def tick(self) -> int:
        """Let the shown views catch up with their cameras and crop, and prepare again after a
        change of the followed transfer function; the number of renders."""
        if self._follower is not None:
            self._follower.tick()
        return self._overlay.tick() if self._overlay else 0

    def lastRenderError(self):
        return self._overlay.last_error if self._overlay else None

    def lastNote(self):
        """What to say about the followed settings (an empty crop box, a model made for another
        transfer function), or None."""
        return self.note or (self._overlay.last_note if self._overlay else None)

    def setHiddenGroups(self, groups: list) -> None:
        """Leave these anatomical groups out of every view, redrawing the shown ones when the
        set changes (it is kept until RenderFMLib is loaded)."""
        if groups != self._hiddenGroups and self._overlay is not None:
            self._overlay.set_hidden_groups(groups)
        self._hiddenGroups = list(groups)

    # --- comparison ---------------------------------------------------------------------

    def startComparison(self, nativeTarget, renderTarget, method: NativeMethod) -> None:
        """Slicer's volume rendering of the prepared CT and preset in nativeTarget's view,
        RenderFM in renderTarget's (the same view: shown in turn)."""
        if self.gaussians is None:
            raise ValueError("press Render first: the comparison uses the prepared Gaussians")
        self.stopComparison()
        volume, preset = self.preparedFrom
        comparison = library("RenderFMLib.slicer.side_by_side")
        self._comparison = comparison.SideBySide(self.overlay, self.gaussians, volume, preset,
                                                 method.name.lower(),
                                                 follow=self._volumeRendering(volume))
        self._comparison.start(nativeTarget, renderTarget)

    def stopComparison(self) -> None:
        if self._comparison:
            self._comparison.stop()
            self._comparison = None

    def showNativeOnly(self, native: bool) -> None:
        self._comparison.show_native_only(native)

    def measure(self) -> dict:
        """SSIM and PSNR between the two sides of the comparison, naming the native mapper."""
        if self._comparison is None:
            raise ValueError("start a comparison first")
        return self._comparison.measure()

    def reset(self) -> None:
        """Forget what belongs to the scene (it is closing): the running preparation is
        cancelled and abandoned, the views cleared, the Gaussians dropped."""
        self.cancelPrepare()
        self._job = None
        self.hideAll()
        self.gaussians = self.preparedFrom = self.finetuned = None

    def dispose(self) -> None:
        """reset(), and stop observing the scene (the module goes away)."""
        self.reset()
        if self._overlay:
            self._overlay.dispose()
