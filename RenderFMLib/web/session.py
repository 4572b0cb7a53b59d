"""What `renderfm view` does to the scene, without the web page: one CT, Slicer's volume rendering
of it in one 3D view and RenderFM in another, through RenderFMLib.slicer.

Before the first Render the native view shows Slicer's CPU ray cast of the chosen preset; Render
prepares Gaussians in a worker thread (jobs.py), then a SideBySide shows them beside a fresh
native rendering of the same preset, the two cameras kept equal. poll(), called from the server's
timer, shows finished frames and collects the preparation. No trame here: the views are ViewTargets.

Crop and Shift act as in Slicer's Volume Rendering module: on the CT's own display node (its ROI
node and Crop checkbox, its volume property node), which Slicer's side of the comparison shares
(SideBySide(follow=...)) and a DisplayFollower follows for RenderFM: a crop redraws at once (drafts
while it keeps changing), a burst of shifts prepares again once, in the background.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import arguments as check
from ..crop import CropBox, crop_box
from ..errors import ArgumentError, RenderFMError
from ..gaussians import SixDGaussians
from ..slicer.context import SlicerContext
from ..slicer.display_follow import DisplayFollower
from ..slicer.jobs import Cancelled, FinetuneSettings, PrepareJob, start_prepare
from ..slicer.native import (
    preset_from_property_node,
    remove_volume_rendering,
    show_volume_rendering,
    volume_property_node,
)
from ..slicer.nodes import segmentation_node, volume_node
from ..slicer.overlay import RenderFMOverlay, ViewTarget
from ..slicer.roi import set_roi
from ..slicer.side_by_side import SideBySide
from ..transfer import Preset, shifted
from ..volume import Volume

NATIVE_METHOD = "cpu"  # Slicer's CPU ray cast: the GPU one runs on llvmpipe at 0.5-2.9 s a frame
FINETUNE_BUDGET_S = 120.0  # seconds of fine-tuning for the "+ fine-tune" qualities
QUALITIES = {"Network": ("shipped", None),
             "Network + fine-tune": ("shipped", FinetuneSettings(FINETUNE_BUDGET_S)),
             "AGP": (None, None), "AGP + fine-tune": (None, FinetuneSettings(FINETUNE_BUDGET_S))}
"""The qualities Render offers: prepare()'s weights (the bundled network, or AGP alone) and the
fine-tuning after it."""
SHIFT_LIMIT_HU = 500.0  # the Shift slider's range, -500..500 HU, as Slicer's for a CT
SHIFT_DEBOUNCE_S = 0.5  # seconds a shift must be still before RenderFM prepares again


@dataclass(frozen=True)
class Inputs:
    """What the page shows: the CT (HU, RAS mm), its labels (a Volume on the CT's grid,
    "threshold" or None), the preset's name, and Gaussians to show at once (a prepared model)."""

    ct: Volume
    labels: Volume | str | None
    preset: str
    gaussians: SixDGaussians | None = None


class ViewerSession:
    """Slicer's volume rendering in native's view, RenderFM in renderfm's (ViewTargets of one
    SlicerContext's scene)."""

    def __init__(self, context: SlicerContext, native: ViewTarget, renderfm: ViewTarget,
                 inputs: Inputs) -> None:
        self.context, self._native, self._renderfm = context, native, renderfm
        self._volume = volume_node(context, inputs.ct, "CT")
        self._segmentation: Any = inputs.labels
        if isinstance(inputs.labels, Volume):
            self._segmentation = segmentation_node(context, inputs.labels, "segmentation")
        self.overlay = RenderFMOverlay(context, background=True)
        self.preset = inputs.preset
        self._own = show_volume_rendering(context, native, self._volume, self.preset,
                                          NATIVE_METHOD, CropBox.from_bounds(self.bounds))
        self._own.SetCroppingEnabled(False)  # the ROI node stays: the Crop switch turns it on
        self._roi = self._own.GetROINode()
        self.shift = 0.0  # HU, the Shift slider
        self._base = preset_from_property_node(self._own.GetVolumePropertyNode())
        self._follower = DisplayFollower(self._own, self.overlay, self._reprepare,
                                         debounce_s=SHIFT_DEBOUNCE_S)
        self._job: PrepareJob | None = None
        self._job_label = ""  # what the status line says of a re-preparation
        self._quality: str | None = None  # of the last Render
        self._started = 0.0
        self._comparison: SideBySide | None = None
        self.gaussians: SixDGaussians | None = None
        self.prepare_s: float | None = None  # seconds the last preparation took
        self.message = "press Render to prepare RenderFM"
        if inputs.gaussians is not None:
            self._show(inputs.gaussians)

    # --- preparation ------------------------------------------------------------------------

    def render(self, quality: str) -> None:
        """Start preparing Gaussians of the CT with the preset at quality (a QUALITIES key)."""
        if self._job is not None:
            raise RenderFMError("a preparation is already running: wait, or cancel it")
        if quality not in QUALITIES:
            raise RenderFMError(f"quality '{quality}' is not available: choose one of "
                                f"{', '.join(QUALITIES)}")
        look = self.preset if self.shift == 0 else \
            preset_from_property_node(self._own.GetVolumePropertyNode())
        self._start(quality, look, "")
        self._follower.prepared()  # a shift made before Render is in this preparation

    def _start(self, quality: str, preset: str | Preset, label: str) -> None:
        """Prepare the CT with preset at quality in a worker; label: what the status line says
        while it runs ("" for a plain Render)."""
        weights, finetune = QUALITIES[quality]
        self._started = time.monotonic()
        self._job = start_prepare(self.context, self._volume, self._segmentation, preset,
                                  device="cpu", finetune=finetune, weights=weights)
        self._quality, self._job_label = quality, label
        self.message = label or "preparing"

    def _reprepare(self, preset: Preset) -> None:
        """The DisplayFollower's call once a burst of shifts is over: prepare RenderFM again with
        preset (cancelling a preparation still running); the old picture stays until then. A
        fine-tuned model is not redone unasked (minutes of work)."""
        if self._quality is None or (self.gaussians is None and self._job is None):
            return  # nothing rendered yet: Render takes the shifted transfer function
        if QUALITIES[self._quality][1] is not None:
            self.message = (f"the fine-tuned model was made for another shift: press Render "
                            f"to redo it for {self.shift:+g} HU")
            return
        if self._job is not None:
            self._job.cancel()
        self._start(self._quality, preset,
                    f"re-preparing RenderFM for the shift of {self.shift:+g} HU")

    def cancel(self) -> None:
        """Stop the running preparation at its next step (the shown Gaussians stay)."""
        if self._job is not None:
            self._job.cancel()

    @property
    def preparing(self) -> bool:
        return self._job is not None

    @property
    def progress(self) -> tuple[float, str]:
        """(fraction in [0, 1], message) of the running preparation; a re-preparation for a
        shift says so."""
        if self._job is None:
            return (0.0, "")
        fraction, message = self._job.progress
        return fraction, f"{self._job_label}: {message}" if self._job_label else message

    def poll(self) -> None:
        """Show finished RenderFM frames and collect a finished preparation (the server's timer
        calls this; errors land in message)."""
        try:
            self._follower.tick()
        except RenderFMError as error:
            self.message = f"re-preparation failed: {error}"
        self.overlay.tick()
        if self._job is None or not self._job.done():
            return
        job, self._job = self._job, None
        try:
            gaussians = job.result()
        except Cancelled:
            self.message = "preparation cancelled"
            return
        except RenderFMError as error:
            self.message = f"preparation failed: {error}"
            return
        self.prepare_s = time.monotonic() - self._started
        self.message = job.finetuned.summary() if job.finetuned is not None else \
            f"ready for a shift of {self.shift:+g} HU" if self.shift else "ready"
        self._show(gaussians)

    def _show(self, gaussians: SixDGaussians) -> None:
        """RenderFM of gaussians beside Slicer's rendering of the preset (one comparison)."""
        self._stop_comparison()
        self.gaussians = gaussians
        self._comparison = SideBySide(self.overlay, gaussians, self._volume, self.preset,
                                      NATIVE_METHOD, follow=self._own)
        self._comparison.start(self._native, self._renderfm)

    # --- choices ------------------------------------------------------------------------------

    def set_preset(self, preset: str) -> None:
        """Slicer's rendering with another preset; RenderFM needs Render again for it."""
        if preset == self.preset:
            return
        if self._job is not None:
            raise RenderFMError("wait for the preparation (or cancel it) before changing preset")
        display = show_volume_rendering(self.context, self._native, self._volume, preset,
                                        NATIVE_METHOD)  # PresetError for an unknown name
        self._stop_comparison()
        self._follower.close()
        display.SetAndObserveROINodeID(self._roi.GetID())  # the crop stays as it was
        display.SetCroppingEnabled(self._own.GetCroppingEnabled())
        remove_volume_rendering(self._own, keep=[self._roi])
        self._own, self.preset, self.gaussians, self.shift = display, preset, None, 0.0
        self._base = preset_from_property_node(display.GetVolumePropertyNode())
        self._follower = DisplayFollower(display, self.overlay, self._reprepare,
                                         debounce_s=SHIFT_DEBOUNCE_S)
        self.message = f"press Render to prepare RenderFM with {preset}"

    def set_hidden_groups(self, groups: list[str]) -> None:
        """Leave these anatomical groups out of RenderFM (redraws now)."""
        self.overlay.set_hidden_groups(groups)

    @property
    def bounds(self) -> list[float]:
        """The CT's extent R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX (RAS mm, voxel edges): the
        crop sliders' range and first box."""
        bounds = [0.0] * 6
        self._volume.GetRASBounds(bounds)
        return bounds

    def set_crop(self, bounds: Sequence[float] | None) -> None:
        """Crop both views to the box R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX (RAS mm), or show
        everything (None), through the ROI node and Crop checkbox: Slicer's rendering at once,
        RenderFM redrawn (drafts while the box keeps moving) with no new preparation.
        ArgumentError for an inverted or non-finite box; a box that holds nothing is a note."""
        if bounds is None:
            self._own.SetCroppingEnabled(False)
            return
        set_roi(self._roi, crop_box("Crop", "the box", bounds))
        self._own.SetCroppingEnabled(True)

    def set_shift(self, hu: float) -> None:
        """Move the preset's opacity and colour points by hu (HU, within +-SHIFT_LIMIT_HU), as
        Slicer's Shift slider: Slicer's rendering at once, RenderFM prepared again in the
        background once the shift has been still for SHIFT_DEBOUNCE_S."""
        accepted = f"a number of HU from {-SHIFT_LIMIT_HU:g} to {SHIFT_LIMIT_HU:g}"
        value = check.number("Shift", "the shift", hu, accepted)
        if abs(value) > SHIFT_LIMIT_HU:
            raise ArgumentError(f"Shift: the shift must be {accepted}, not {value:g}")
        if value == self.shift:
            return
        node = self._own.GetVolumePropertyNode()
        name = node.GetName()
        node.Copy(volume_property_node(shifted(self._base, value)))
        node.SetName(name)
        self.shift = value

    def measure(self) -> str:
        """SSIM and PSNR of RenderFM against Slicer's rendering for the current camera, as one
        line naming the native renderer."""
        if self._comparison is None:
            raise RenderFMError("press Render first: the measurement compares RenderFM's view")
        scores = self._comparison.measure()
        return (f"SSIM {scores['ssim']:.3f}, PSNR {scores['psnr']:.1f} dB against "
                f"{scores['native']}")

    def cameras(self) -> dict[str, list[float]]:
        """Each view's camera as position, focal point and view up (RAS mm, 9 numbers), by view
        ("native", "renderfm"): what the page's checks compare."""
        return {name: [*node.GetPosition(), *node.GetFocalPoint(), *node.GetViewUp()]
                for name, node in (("native", self._native.camera_node),
                                   ("renderfm", self._renderfm.camera_node))}

    def status(self) -> str:
        """The status line: Gaussians, preparation time, the last RenderFM frame's time."""
        parts = [self.message]
        if self.gaussians is not None:
            parts.append(f"{len(self.gaussians):,} Gaussians")
        if self.prepare_s is not None:
            parts.append(f"prepared in {self.prepare_s:.1f} s")
        if self.overlay.last_render_s is not None:
            parts.append(f"frame {1000 * self.overlay.last_render_s:.0f} ms")
        if self._follower.look_pending and self.gaussians is not None:
            parts.append(f"shift {self.shift:+g} HU: RenderFM prepares again when it stops")
        if self.overlay.last_note:
            parts.append(self.overlay.last_note)
        if self.overlay.last_error:
            parts.append(f"render error: {self.overlay.last_error}")
        return " · ".join(parts)

    def close(self) -> None:
        """Cancel the preparation, remove RenderFM and the native renderings."""
        self.cancel()
        self._follower.close()
        self._stop_comparison()
        remove_volume_rendering(self._own)
        self.overlay.dispose()

    def _stop_comparison(self) -> None:
        if self._comparison is not None:
            self._comparison.stop()
            self._comparison = None
