"""Two probes of AGP's base, each scored with the shipped network on top, against dvr on the
held-out views of bench_network.py (4 orbit + 2 close-ups, 256 px; medians of PSNR dB and
foreground SSIM). Run from the repository root:

    python docs/network/experiments/agp_probes.py ambient SCAN PRESET ...
    python docs/network/experiments/agp_probes.py partial SCAN PRESET ... [--weights FILE]
        [--baseline FILE]

ambient: AGP's shading as now (ambient + diffuse |n.v| + specular |n.v|^p) against the same
without the preset's ambient term (Slicer's headlight has a black ambient colour, so dvr leaves
it out).
partial: AGP as now against AGP plus the blocks it leaves out whose mean HU is under
MIN_OPACITY but one of whose voxels is over it (thin vessels, the rims of bone), given the
partial-volume opacity (the mean of the 8 voxels' opacity per mm) and the colour of the
opacity-weighted mean HU (priming's partial blocks); --weights adds a network trained with them
(`renderfm train` with "partial_blocks" in its config), scored on AGP with them; --baseline: the
network of the other rows (the shipped one by default; a leave-one-scan-out fold's weights for a
scan the shipped network trained on). The tables of the experiments README were made with the
networks shipped before the partial blocks (git a802e9a); today's shipped network keeps them
itself, so its "network" rows have them too.
Both patch the library's functions in this process only.
"""

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "Testing" / "bench"))

from bench_quality import evaluate, find_scan  # noqa: E402

import RenderFMLib.build as build  # noqa: E402
import RenderFMLib.priming as priming  # noqa: E402
from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.network.weights import SHIPPED  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

VARIANT = {"on": False}
_shading_sh, _prime = priming._shading_sh, priming.prime


def shading_without_ambient(preset, gradients, weights):
    if VARIANT["on"]:
        preset = dataclasses.replace(preset, ambient=0.0)
    return _shading_sh(preset, gradients, weights)


def prime_with_partial_blocks(ct, preset, inputs, gradient, labels=None, keep_labels=None,
                              group_colors=False, partial_blocks=False):
    """priming.prime with its partial blocks while VARIANT is on (the library's option since;
    this probe patched them in before it existed)."""
    return _prime(ct, preset, inputs, gradient, labels, keep_labels, group_colors,
                  partial_blocks or VARIANT["on"])


def main(probe: str, scan_name: str, presets: list[str], weights: str | None,
         baseline: str = SHIPPED) -> None:
    if probe == "ambient":
        priming._shading_sh = shading_without_ambient
    elif probe == "partial":
        build.prime = prime_with_partial_blocks
    else:
        raise SystemExit(f"probe must be ambient or partial, not {probe!r}")
    scan = find_scan(scan_name)
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    for preset in presets:
        models = {}
        for on in (False, True):
            VARIANT["on"] = on
            for start in (None, baseline):
                name = f"{'network' if start else 'AGP'}{' + ' + probe if on else ''}"
                models[name] = prepare(ct, scan.seg, preset, weights=start)
        if weights:
            models["trained network + partial"] = prepare(ct, scan.seg, preset, weights=weights)
        cameras = heldout_cameras(models["AGP"], 4, 2)
        scored, _ = evaluate(ct, preset, models, cameras, [256], "cpu", False, preset)
        for model, score in scored[256]["dvr"].items():
            print(f"{scan.name} | {preset} | {model} | {len(models[model]):,} Gaussians | "
                  f"{score['psnr']:.2f} dB / {score['ssim_fg']:.3f}", flush=True)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    options = {"--weights": None, "--baseline": SHIPPED}
    for option in options:
        if option in arguments:
            at = arguments.index(option)
            options[option] = arguments[at + 1]
            del arguments[at:at + 2]
    main(arguments[0], arguments[1], arguments[2:], options["--weights"], options["--baseline"])
