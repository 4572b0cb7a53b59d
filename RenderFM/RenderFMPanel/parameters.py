"""The module's parameter node: every choice on the panel, saved with the scene.

Widgets in Resources/UI/RenderFM.ui carry the field names as their SlicerParameterName property,
so connectGui keeps both in step; the preset combo box is filled at run time (with icons) and
synced by the widget.
"""

import enum
from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import SingleStep, WithinRange, parameterNodeWrapper

from . import library

DEFAULT_PRESET = library("RenderFMLib.resources").DEFAULT_PRESET  # no PyTorch needed
GROUP_FIELDS = {  # parameter node field -> anatomical group (RenderFMLib.segmentation.GROUPS)
    "showSkeleton": "skeleton", "showOrgans": "organs", "showHeartAndVessels": "heart_and_vessels",
    "showMuscles": "muscles", "showLungs": "lungs", "showNervousSystem": "nervous_system",
    "showOther": "other"}


class SegmentationSource(enum.Enum):
    """Where the label map comes from; labels let the group checkboxes hide anatomy."""

    NONE = "No segmentation"
    NODE = "Segmentation node"
    THRESHOLD = "Threshold (bone, vessels, air; no model)"
    AUTO = "Auto-segment with TotalSegmentator"
    AUTO_FAST = "Auto-segment with TotalSegmentator (fast)"

    def label(self) -> str:
        return self.value

    def argument(self):
        """RenderFMOverlay.prepare's segmentation argument for the sources that are not a node."""
        return None if self is SegmentationSource.NONE else self.name.lower().replace("_", "-")


class Quality(enum.Enum):
    """How the Gaussians are made: AGP alone, or AGP refined by the bundled network's weights;
    either of them fine-tuned against renderings of this CT (for finetuneBudget seconds)."""

    AGP = "AGP (Anatomy-Guided Priming)"
    FINETUNE = "AGP + fine-tune"
    NETWORK = "Network"
    NETWORK_FINETUNE = "Network + fine-tune"

    def label(self) -> str:
        return self.value

    def weights(self):
        """api.prepare's weights: the bundled ones for the network qualities, else None."""
        return "shipped" if self in (Quality.NETWORK, Quality.NETWORK_FINETUNE) else None

    def finetunes(self) -> bool:
        return self in (Quality.FINETUNE, Quality.NETWORK_FINETUNE)


class Device(enum.Enum):
    """Where PyTorch prepares and renders; the argument is the enum name in lower case."""

    AUTO = "Auto (CUDA GPU if present)"
    CUDA = "CUDA GPU"
    CPU = "CPU"

    def label(self) -> str:
        return self.value


class NativeMethod(enum.Enum):
    """Slicer's native volume rendering to compare with (RenderFMLib.slicer.native's names)."""

    CPU = "CPU ray cast"
    GPU = "GPU ray cast"

    def label(self) -> str:
        return self.value


@parameterNodeWrapper
class RenderFMParameterNode:
    """The module's choices; finetuneBudget: seconds for fine-tuning, target renderings included;
    show<Group>: draw that anatomical group (GROUP_FIELDS)."""

    inputVolume: vtkMRMLScalarVolumeNode
    segmentationSource: SegmentationSource = SegmentationSource.NONE
    segmentationNode: vtkMRMLSegmentationNode
    preset: str = DEFAULT_PRESET
    quality: Quality = Quality.NETWORK
    finetuneBudget: Annotated[int, WithinRange(30, 3600), SingleStep(30)] = 300
    device: Device = Device.AUTO
    nativeMethod: NativeMethod = NativeMethod.CPU
    singleView: bool = False
    showSkeleton: bool = True
    showOrgans: bool = True
    showHeartAndVessels: bool = True
    showMuscles: bool = True
    showLungs: bool = True
    showNervousSystem: bool = True
    showOther: bool = True


def hidden_groups(parameters: RenderFMParameterNode) -> list:
    """The anatomical groups whose checkbox is off."""
    return [group for field, group in GROUP_FIELDS.items() if not getattr(parameters, field)]
