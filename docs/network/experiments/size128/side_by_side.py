"""Experiment table (python docs/network/experiments/size128/side_by_side.py > loso_table.md, from
the repository root): gain over AGP, PSNR (dB) / foreground SSIM, of the networks in use and of
those trained on 128 px views, on the 24 leave-one-scan-out rows (bold: both targets met). Reads
the quality.json files with Testing/bench/loso_table.py, which refuses rows of a trained-on scan."""
import sys
from pathlib import Path

sys.path.insert(0, "Testing/bench")
from loso_table import TARGET_PSNR_DB, TARGET_SSIM_FG, rows_of  # noqa: E402

HERE = "docs/network/experiments/size128"
PAIRS = [("docs/network/voxel_order/fold_a", f"{HERE}/fold_a"),
         ("docs/network/voxel_order/fold_b", f"{HERE}/fold_b"),
         ("docs/network/coarse_grid/fold_c", f"{HERE}/fold_c")]  # fold C: scored on 2 mm


def gains(folder: str, reference: str) -> dict:
    """(scan, preset, preset seen) -> (PSNR gain, foreground SSIM gain) over AGP at 256 px."""
    out = {}
    for row in rows_of([Path(folder) / "quality.json"]):
        score = row["scores"]["256"][reference]
        net, agp = score["network"], score["agp"]
        out[(row["scan"], row["preset"], row["trained_on_preset"])] = (
            net["psnr"] - agp["psnr"], net["ssim_fg"] - agp["ssim_fg"])
    return out


def met(gain: tuple[float, float]) -> bool:
    return gain[0] >= TARGET_PSNR_DB and gain[1] >= TARGET_SSIM_FG


def cell(gain: tuple[float, float]) -> str:
    text = f"{gain[0]:+.2f} / {gain[1]:+.3f}"
    return f"**{text}**" if met(gain) else text


def summary(reference: str) -> str:
    """How many of the rows meet both targets, the mean gains, how many are below AGP."""
    columns: list[list[tuple[float, float]]] = [[], []]
    for old, new in PAIRS:
        before, after = gains(old, reference), gains(new, reference)
        columns[0] += before.values()
        columns[1] += [after[key] for key in before]
    text = []
    for column in columns:
        psnr = sum(gain[0] for gain in column) / len(column)
        ssim = sum(gain[1] for gain in column) / len(column)
        below = sum(gain[0] < 0 or gain[1] < 0 for gain in column)
        text.append(f"{sum(map(met, column))} of {len(column)} rows meet both targets, mean "
                    f"{psnr:+.2f} dB / {ssim:+.3f}, {below} below AGP")
    return f"Against {reference}: in use {text[0]}; 128 px {text[1]}."


print("| Scan | Preset | Weights in use (96 px), vs `dvr` | 128 px, vs `dvr` |")
print("|---|---|---|---|")
for old, new in PAIRS:
    before, after = gains(old, "dvr"), gains(new, "dvr")
    for (scan, preset, seen), gain in before.items():
        name = preset if seen else f"{preset} (unseen)"
        print(f"| `{scan}` | {name} | {cell(gain)} | {cell(after[(scan, preset, seen)])} |")
for reference in ("dvr", "slicer-cpu"):
    print()
    print(summary(reference))
print()
