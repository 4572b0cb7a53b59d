"""The module's panel: Resources/UI/RenderFM.ui kept in step with the parameter node
(parameters.py), Render, group visibility and the comparison; the work is RenderFMLogic's
(logic.py). Slicer finds RenderFMWidget through RenderFM.py, which imports it."""

import contextlib
import logging
import sys

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import library, views
from .logic import TICK_MS, RenderFMLogic
from .parameters import SegmentationSource, hidden_groups
from .preset_icons import ICON_SIZE, preset_icon


class RenderFMWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: inputs, Render, group visibility, the comparison. A timer drives the 3D views
    (RenderFMLogic.tick) and polls the preparation; it runs while RenderFM is shown, also when
    another module is selected."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._timer = None
        self._comparing = None  # (singleView, nativeMethod) of the running comparison
        self._showingNative = False
        self._previousLayout = None
        self._lastRenderError = None
        self._lastNote = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/RenderFM.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RenderFMLogic()
        self._fillPresets()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.presetComboBox.currentIndexChanged.connect(self.onPresetChanged)
        self.ui.renderButton.clicked.connect(self.onRender)
        self.ui.hideButton.clicked.connect(self.onHide)
        self.ui.cancelButton.clicked.connect(self.logic.cancelPrepare)
        self.ui.compareButton.toggled.connect(self.onCompareToggled)
        self.ui.toggleButton.clicked.connect(self.onToggleNative)
        self.ui.measureButton.clicked.connect(self.onMeasure)
        self._timer = qt.QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.onTick)
        self._setBusy(False)
        self.initializeParameterNode()

    def _fillPresets(self) -> None:
        combo = self.ui.presetComboBox
        combo.setIconSize(qt.QSize(*ICON_SIZE))
        try:
            for preset in library("RenderFMLib.resources").bundled_preset_records():
                combo.addItem(preset_icon(preset), preset["name"])
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            self._setStatus(f"RenderFM's presets could not be read: {error}", error=True)

    def cleanup(self) -> None:
        self._timer.stop()
        self.removeObservers()
        self.logic.dispose()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        # Only the panel lets go of the parameter node; the views keep following their cameras.
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self._timer.stop()
        self.logic.reset()
        self._comparing = None
        self._setCompareChecked(False)
        self._setBusy(False)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass(
                "vtkMRMLScalarVolumeNode")

    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.onParameterNodeModified)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                             self.onParameterNodeModified)
            self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """Widgets that depend on other choices; group visibility and comparison settings apply
        at once."""
        parameters = self._parameterNode
        self.ui.presetComboBox.currentText = parameters.preset
        byNode = parameters.segmentationSource is SegmentationSource.NODE
        self.ui.segmentationSelector.enabled = byNode
        self.ui.segmentationNodeLabel.enabled = byNode
        fineTune = parameters.quality.finetunes()
        self.ui.finetuneBudgetLabel.visible = fineTune
        self.ui.finetuneBudgetSpinBox.visible = fineTune
        self.ui.groupsCollapsibleButton.enabled = (
            parameters.segmentationSource is not SegmentationSource.NONE)
        preparing = self.logic.preparing()
        self.ui.renderButton.enabled = bool(parameters.inputVolume) and not preparing
        self.ui.compareButton.enabled = self.logic.gaussians is not None and not preparing
        self.ui.toggleButton.enabled = bool(self._comparing) and parameters.singleView
        self.ui.measureButton.enabled = bool(self._comparing)
        with self._userAction(_("RenderFM could not change the shown groups")):
            self.logic.setHiddenGroups(hidden_groups(parameters))
        if self._comparing and self._comparing != (parameters.singleView, parameters.nativeMethod):
            with self._userAction(_("RenderFM could not change the comparison")):
                self._startComparison()

    def onPresetChanged(self, index: int) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.preset = self.ui.presetComboBox.itemText(index)

    # --- preparing and showing ---------------------------------------------------------------

    def onRender(self) -> None:
        with self._userAction(_("RenderFM could not start")):
            if not self._installMissingPackages():
                return
            self.logic.startPrepare(self._parameterNode)
            self._setBusy(True)
            self._setStatus(self.logic.deviceMessage)
            self._timer.start()

    def _installMissingPackages(self) -> bool:
        """Ask, then install the Python packages RenderFM lacks; whether all are there now."""
        auto = self._parameterNode.segmentationSource in (SegmentationSource.AUTO,
                                                          SegmentationSource.AUTO_FAST)
        missing = self.logic.missingPackages(auto)
        if not missing:
            return True
        if not slicer.util.confirmOkCancelDisplay(
                _("RenderFM needs Python packages that Slicer does not have yet. They will be "
                  "downloaded and installed now, which can take several minutes (PyTorch is "
                  "large). Install them?"),
                _("RenderFM: install Python packages"), detailedText=", ".join(missing)):
            self._setStatus(_("Nothing rendered: the packages RenderFM needs are not installed."))
            return False
        with self._userAction(_("Installing RenderFM's packages failed")):
            self._setStatus(_("Installing {packages}...").format(packages=", ".join(missing)))
            slicer.app.processEvents()
            with slicer.util.WaitCursor():
                self.logic.installPackages(missing)
            self._setStatus(_("Installed {packages}.").format(packages=", ".join(missing)))
            return True
        return False

    def onTick(self) -> None:
        if self.logic.preparing():
            self._pollPreparation()
        self.logic.tick()
        if self.logic.preparing() and not self.ui.progressBar.visible:
            self._setBusy(True)  # a preset change or Shift in Volume Rendering prepares again
        error, note = self.logic.lastRenderError(), self.logic.lastNote()
        if error and error != self._lastRenderError:
            self._setStatus(error, error=True)
        elif note and note != self._lastNote:
            self._setStatus(note)
        self._lastRenderError, self._lastNote = error, note

    def _pollPreparation(self) -> None:
        fraction, message = self.logic.prepareProgress()
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.progressBar.format = f"{message} (%p%)"
        with self._userAction(_("Preparing RenderFM failed")):
            count = self.logic.finishPrepare()
            if count is None:
                return
            if self.logic.finetuned is None:
                self._setStatus(_("{count} Gaussians ready in {seconds:.1f} s; {device}.").format(
                    count=count, seconds=self.logic.prepareSeconds,
                    device=self.logic.deviceMessage))
            else:  # time, held-out PSNR before -> after, Gaussian counts
                self._setStatus(_("{summary}; {device}.").format(
                    summary=self.logic.finetuned.summary(), device=self.logic.deviceMessage))
            if self._comparing:
                self._startComparison()
            else:
                self._showInFirstView()
        if not self.logic.preparing():
            self._setBusy(False)

    def _showInFirstView(self) -> None:
        self.logic.show(views.first_view_target())
        self._timer.start()
        self.ui.hideButton.enabled = True

    def onHide(self) -> None:
        self._endComparison(restoreLayout=True)
        self.logic.hideAll()
        self._timer.stop()
        self.ui.hideButton.enabled = False
        self._setStatus(_("RenderFM hidden."))

    def _setBusy(self, busy: bool) -> None:
        self.ui.progressBar.visible = busy
        self.ui.cancelButton.visible = busy
        self.ui.progressBar.value = 0
        if self._parameterNode:
            self.onParameterNodeModified()

    def _setStatus(self, text: str, error: bool = False) -> None:
        self.ui.statusLabel.text = text
        self.ui.statusLabel.styleSheet = "color: #d33;" if error else ""

    @contextlib.contextmanager
    def _userAction(self, message: str):
        """Run something the user asked for: a failure goes to the status line, the log and a
        message box (a cancelled preparation only to the status line)."""
        try:
            yield
        except Exception as error:
            jobs = sys.modules.get("RenderFMLib.slicer.jobs")  # loaded before any preparation
            if jobs is not None and isinstance(error, jobs.Cancelled):
                self._setStatus(_("Preparation cancelled."))
                return
            logging.error("RenderFM: %s: %s", message, error, exc_info=error)
            self._setStatus(f"{message}: {error}", error=True)
            slicer.util.errorDisplay(f"{message}:\n\n{error}")

    # --- comparison with Slicer's volume rendering -----------------------------------------

    def onCompareToggled(self, checked: bool) -> None:
        with self._userAction(_("RenderFM could not set up the comparison")):
            if checked:
                self._previousLayout = slicer.app.layoutManager().layout
                self._startComparison()
            else:
                self._endComparison(restoreLayout=True)
                self._showInFirstView()
        if checked and not self._comparing:
            self._endComparison(restoreLayout=True)
        self.onParameterNodeModified()

    def _startComparison(self) -> None:
        """View 1: Slicer's volume rendering; view 2: RenderFM (or both in one view, in turn)."""
        parameters = self.logic.getParameterNode()  # also when the panel is not shown
        native, render = views.comparison_targets(parameters.singleView)
        self.logic.startComparison(native, render, parameters.nativeMethod)
        self._comparing = (parameters.singleView, parameters.nativeMethod)
        self._showingNative = False
        self._timer.start()
        self.ui.toggleButton.text = _("Show native")
        self.ui.hideButton.enabled = True

    def _endComparison(self, restoreLayout: bool) -> None:
        self._comparing = None
        self.logic.stopComparison()
        self._setCompareChecked(False)
        if restoreLayout and self._previousLayout is not None:
            slicer.app.layoutManager().setLayout(self._previousLayout)
        self._previousLayout = None
        self.ui.measureLabel.text = "-"

    def _setCompareChecked(self, checked: bool) -> None:
        wasBlocked = self.ui.compareButton.blockSignals(True)
        self.ui.compareButton.checked = checked
        self.ui.compareButton.blockSignals(wasBlocked)

    def onToggleNative(self) -> None:
        """Single view: switch between Slicer's volume rendering and RenderFM."""
        with self._userAction(_("RenderFM could not switch the view")):
            self.logic.showNativeOnly(not self._showingNative)
            self._showingNative = not self._showingNative
            self.ui.toggleButton.text = (_("Show RenderFM") if self._showingNative
                                         else _("Show native"))

    def onMeasure(self) -> None:
        with self._userAction(_("RenderFM could not measure")), slicer.util.WaitCursor():
            scores = self.logic.measure()
            self.ui.measureLabel.text = _("SSIM {ssim:.3f}, PSNR {psnr:.2f} dB against {native}, "
                                          "in this view").format(**scores)
