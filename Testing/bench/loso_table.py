"""Leave-one-scan-out summary: the network against AGP on every scan, each scored by a model that
never trained on it, from bench_network.py's quality.json files (one per fold).

    python Testing/bench/loso_table.py docs/network/example_ct/quality.json \
        docs/network/popi00_thorax/quality.json docs/network/loso/fold_b/quality.json ...

Prints a markdown table: per scan and preset, against dvr and Slicer's CPU ray cast, PSNR and
foreground SSIM as AGP -> network (medians over held-out views), then per reference the
changes' range and mean, how many rows the network is worse on, and on how many it reaches the
targets (+1.5 dB and +0.05 foreground SSIM). Rows whose scan the weights trained on are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REFERENCES = (("dvr", "dvr"), ("slicer-cpu", "Slicer CPU"))
TARGET_PSNR_DB, TARGET_SSIM_FG = 1.5, 0.05  # the network issue's targets over AGP


def rows_of(paths: list[Path], trained_on: bool = False) -> list[dict]:
    """The rows of bench_network.py's quality.json files; rows of a scan the weights trained on
    are refused unless `trained_on` (an in-domain comparison, never a leave-one-out claim)."""
    rows = []
    for path in paths:
        try:
            written = json.loads(path.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}: not a bench_network.py quality.json ({error})") from None
        for row in written:
            if row["trained_on_scan"] and not trained_on:
                raise SystemExit(f"{path}: {row['scan']} was trained on; not leave-one-out")
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| Scan | Preset | Preset seen | vs | PSNR (dB) | Foreground SSIM |",
             "|---|---|---|---|---|---|"]
    changes: dict[str, list[tuple[float, float]]] = {label: [] for _, label in REFERENCES}
    for row in rows:
        for size in row["scores"].values():
            for reference, label in REFERENCES:
                if reference not in size:
                    continue
                agp, net = size[reference]["agp"], size[reference]["network"]
                changes[label].append((net["psnr"] - agp["psnr"], net["ssim_fg"] - agp["ssim_fg"]))
                lines.append(f"| {row['scan']} | {row['preset']} | "
                             f"{'yes' if row['trained_on_preset'] else 'no'} | {label} | "
                             f"{agp['psnr']:.2f} -> {net['psnr']:.2f} | "
                             f"{agp['ssim_fg']:.3f} -> {net['ssim_fg']:.3f} |")
    lines.append("")
    for label, pairs in changes.items():
        if not pairs:
            continue
        psnr, fg = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        both = sum(p >= TARGET_PSNR_DB and f >= TARGET_SSIM_FG for p, f in pairs)
        lines.append(
            f"Against {label}, {len(pairs)} rows: PSNR {min(psnr):+.2f} to {max(psnr):+.2f} dB "
            f"(mean {sum(psnr) / len(psnr):+.2f}, worse on {sum(v < 0 for v in psnr)}), "
            f"foreground SSIM {min(fg):+.3f} to {max(fg):+.3f} (mean {sum(fg) / len(fg):+.3f}, "
            f"worse on {sum(v < 0 for v in fg)}); +{TARGET_PSNR_DB} dB and "
            f"+{TARGET_SSIM_FG} together on {both}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("quality", nargs="+", type=Path,
                        help="bench_network.py quality.json files, one per fold")
    print(table(rows_of(parser.parse_args().quality)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
