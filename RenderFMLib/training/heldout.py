"""Held-out scoring during training: the manifest's held-out scans, with each of their presets,
at one spacing; views never trained on (optimize.views.heldout_cameras: 4 orbit views and 2
close-ups) with dvr targets rendered once. AGP's scores are the baseline the network must beat.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ..build import build_gaussians
from ..network.model import RenderFMNetwork
from ..optimize.evaluate import Scores, heldout_scores
from ..optimize.views import View, dvr_target, heldout_cameras
from ..transfer import Preset
from ..volume import Volume
from .samples import ScanGrids


@dataclass(frozen=True)
class HeldoutCase:
    name: str
    volume: Volume
    labels: Volume | None
    preset: Preset
    views: list[View]
    agp: Scores


def heldout_cases(scans: list[ScanGrids], spacing: float, size: int) -> list[HeldoutCase]:
    """Every (held-out scan, preset) pair with its targets and AGP's scores."""
    cases = []
    for scan in scans:
        volume, labels = scan.grids[spacing]
        for preset in scan.entry.presets:
            agp = build_gaussians(volume, labels, preset)
            render = dvr_target(volume, preset)
            views = [render(camera, size) for camera in heldout_cameras(agp)]
            cases.append(HeldoutCase(f"{scan.entry.name}/{preset.name}", volume, labels, preset,
                                     views, heldout_scores(agp, views)))
    return cases


def network_scores(network: RenderFMNetwork, cases: list[HeldoutCase]) -> list[Scores]:
    """The network's scores on each case."""
    with torch.no_grad():
        return [heldout_scores(build_gaussians(case.volume, case.labels, case.preset,
                                               network=network), case.views) for case in cases]


def summary(scores: list[Scores]) -> dict[str, float]:
    """Means over cases of the loss, median PSNR, SSIM and foreground SSIM (nan without
    cases)."""
    if not scores:
        return dict.fromkeys(("loss", "psnr", "ssim", "ssim_fg"), float("nan"))
    return {"loss": statistics.fmean(s.loss for s in scores),
            "psnr": statistics.fmean(s.psnr for s in scores),
            "ssim": statistics.fmean(s.ssim for s in scores),
            "ssim_fg": statistics.fmean(s.ssim_fg for s in scores)}
