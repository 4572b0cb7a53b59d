"""Leave-one-scan-out summary: the network against AGP on every scan, each scored by a model that
never trained on it, from bench_network.py's quality.json files (one per fold).

    python Testing/bench/loso_table.py docs/network/example_ct/quality.json \
        docs/network/popi00_thorax/quality.json docs/network/loso/fold_b/quality.json ...

Prints a markdown table: per scan and preset, against dvr and Slicer's CPU ray cast, PSNR and
foreground SSIM as AGP -> network (medians over held-out views), then the changes' range and
how many rows the network is worse on. Rows whose scan the weights trained on are refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REFERENCES = (("dvr", "dvr"), ("slicer-cpu", "Slicer CPU"))


def rows_of(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
            if row["trained_on_scan"]:
                raise SystemExit(f"{path}: {row['scan']} was trained on; not leave-one-out")
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| Scan | Preset | Preset seen | vs | PSNR (dB) | Foreground SSIM |",
             "|---|---|---|---|---|---|"]
    changes: dict[str, list[float]] = {"psnr": [], "ssim_fg": []}
    for row in rows:
        for size in row["scores"].values():
            for reference, label in REFERENCES:
                if reference not in size:
                    continue
                agp, net = size[reference]["agp"], size[reference]["network"]
                for score in changes:
                    changes[score].append(net[score] - agp[score])
                lines.append(f"| {row['scan']} | {row['preset']} | "
                             f"{'yes' if row['trained_on_preset'] else 'no'} | {label} | "
                             f"{agp['psnr']:.2f} -> {net['psnr']:.2f} | "
                             f"{agp['ssim_fg']:.3f} -> {net['ssim_fg']:.3f} |")
    psnr, fg = changes["psnr"], changes["ssim_fg"]
    lines += ["", f"{len(psnr)} rows: PSNR {min(psnr):+.2f} to {max(psnr):+.2f} dB "
              f"(worse on {sum(value < 0 for value in psnr)}), foreground SSIM "
              f"{min(fg):+.3f} to {max(fg):+.3f} (worse on {sum(value < 0 for value in fg)})"]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    print(table(rows_of([Path(arg) for arg in sys.argv[1:]])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
