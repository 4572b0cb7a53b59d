"""Experiment tables: gain over AGP, PSNR (dB) / foreground SSIM against `dvr`, of several sets of
weights on the same rows (bold: both of the network issue's targets met), then per column and
reference how many rows meet both, the mean gains and how many rows are below AGP.

    python docs/network/experiments/side_by_side.py \
        "in use=docs/network/voxel_order/fold_a,docs/network/coarse_grid/fold_c" \
        "128 px=docs/network/experiments/size128/fold_a,docs/network/experiments/size128/fold_c"

Each column is LABEL=FOLDER[,FOLDER...], each folder a bench_network.py output (quality.json).
The rows are the first column's; Testing/bench/loso_table.py reads them and refuses rows of a
scan the weights trained on, except in the columns named by --trained-on (in-domain runs).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "Testing" / "bench"))
from loso_table import TARGET_PSNR_DB, TARGET_SSIM_FG, rows_of  # noqa: E402

Gain = tuple[float, float]


def gains(folders: list[str], reference: str, trained_on: bool) -> dict[tuple, Gain]:
    """(scan, preset, preset seen) -> (PSNR gain, foreground SSIM gain) over AGP at 256 px."""
    out = {}
    for row in rows_of([Path(folder) / "quality.json" for folder in folders], trained_on):
        score = row["scores"]["256"][reference]
        net, agp = score["network"], score["agp"]
        out[(row["scan"], row["preset"], row["trained_on_preset"])] = (
            net["psnr"] - agp["psnr"], net["ssim_fg"] - agp["ssim_fg"])
    return out


def met(gain: Gain) -> bool:
    return gain[0] >= TARGET_PSNR_DB and gain[1] >= TARGET_SSIM_FG


def cell(gain: Gain | None) -> str:
    if gain is None:
        return "-"
    text = f"{gain[0]:+.2f} / {gain[1]:+.3f}"
    return f"**{text}**" if met(gain) else text


def summary(label: str, column: list[Gain]) -> str:
    psnr = sum(gain[0] for gain in column) / len(column)
    ssim = sum(gain[1] for gain in column) / len(column)
    below = sum(gain[0] < 0 or gain[1] < 0 for gain in column)
    return (f"{label} {sum(map(met, column))} of {len(column)} rows meet both targets, mean "
            f"{psnr:+.2f} dB / {ssim:+.3f}, {below} below AGP")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("columns", nargs="+", help="LABEL=FOLDER[,FOLDER...]")
    parser.add_argument("--trained-on", nargs="*", default=[],
                        help="labels of columns whose weights trained on the scans")
    args = parser.parse_args()
    if not all("=" in column for column in args.columns):
        parser.error("each column is LABEL=FOLDER[,FOLDER...]")
    columns = [(label, folders.split(",")) for label, _, folders in
               (column.partition("=") for column in args.columns)]
    unknown = set(args.trained_on) - {label for label, _ in columns}
    if unknown:
        parser.error(f"--trained-on names no column: {', '.join(sorted(unknown))}")
    tables = {reference: [gains(folders, reference, label in args.trained_on)
                          for label, folders in columns] for reference in ("dvr", "slicer-cpu")}
    print("| Scan | Preset | " + " | ".join(f"{label}, vs `dvr`" for label, _ in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (scan, preset, seen) in tables["dvr"][0]:
        name = preset if seen else f"{preset} (unseen)"
        cells = [cell(table.get((scan, preset, seen))) for table in tables["dvr"]]
        print(f"| `{scan}` | {name} | " + " | ".join(cells) + " |")
    for reference, table in tables.items():
        keys = table[0].keys()
        parts = [summary(label, [column[key] for key in keys if key in column])
                 for (label, _), column in zip(columns, table, strict=True)]
        print(f"\nAgainst {reference}: " + "; ".join(parts) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
