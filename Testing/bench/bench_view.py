"""Benchmark of `renderfm view` on the bundled sample, in headless Chromium (Playwright).

    python Testing/bench/bench_view.py [--runs 3] [--max-pixels 160000] [--screenshot PNG]

Each run starts a fresh server (Testing/web/view_server.py) and measures, as medians over runs:
- server ready: from starting the process to its ready line (imports, scene, views);
- page to first images: from page.goto to both views' images loaded;
- Render: from the click to the RenderFM view's first frame on the page (AGP + first frame);
- drag to draft / to full frame: a 150 px drag over Slicer's view in 10 mouse moves; from the
  first move to the first new RenderFM image, and from the mouse-up to the last new RenderFM image
  (the full-size frame once the camera has settled: 0.3 s);
- server memory: its peak resident set size (VmHWM) at the end.
The page records each image's load time itself (performance.now()). --screenshot saves the page
after the first run's drag and Measure (the README's picture, docs/renderfm_view.png).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from view_server import SAMPLE, Server  # noqa: E402

RECORD_LOADS = """() => { window.renderfmLoads = [];
  document.querySelector('#renderfm-view img').addEventListener('load',
    () => window.renderfmLoads.push(performance.now())); }"""
LOADED = ("() => ['#native-view img', '#renderfm-view img'].every(s => { "
          "const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })")


def _cpu() -> str:
    """The CPU's model name (Linux), else the machine type."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() \
            else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run(browser, max_pixels: int, screenshot: str | None) -> dict[str, float]:
    server = Server(str(SAMPLE / "ct.nii.gz"), "--seg", str(SAMPLE / "segmentation.nii.gz"),
                    "--max-pixels", str(max_pixels))
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 640})
        start = time.monotonic()
        page.goto(server.url)
        page.wait_for_function(LOADED, timeout=60_000)
        first_images = time.monotonic() - start
        page.evaluate(RECORD_LOADS)
        clicked = page.evaluate("performance.now()")
        page.click("#render")
        page.wait_for_function("window.renderfmLoads.length > 0", timeout=120_000)
        render_s = (page.evaluate("window.renderfmLoads[0]") - clicked) / 1000
        time.sleep(2.0)  # the full frame after Render
        drag = _drag(page)
        figures = {"server ready (s)": server.ready_s, "page to first images (s)": first_images,
                   "Render to RenderFM image (s)": render_s, **drag,
                   "server peak memory (MB)": _peak_mb(server.process.pid)}
        if screenshot:
            page.click("#measure")
            page.wait_for_function("document.querySelector('#measurement').textContent"
                                   ".includes('SSIM')", timeout=60_000)
            page.screenshot(path=screenshot)
        page.close()
        return figures
    finally:
        server.stop()


def _drag(page) -> dict[str, float]:
    box = page.locator("#native-view img").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    began = page.evaluate("(window.renderfmLoads = [], performance.now())")
    for step in range(1, 11):
        page.mouse.move(x + 15 * step, y)
    page.mouse.up()
    released = page.evaluate("performance.now()")
    time.sleep(4.0)  # drafts, then the full frame 0.3 s after the last change
    loads = page.evaluate("window.renderfmLoads")
    return {"drag to RenderFM draft (s)": (loads[0] - began) / 1000 if loads else float("nan"),
            "drag to full frame (s)": (loads[-1] - released) / 1000 if loads else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-pixels", type=int, default=160_000)
    parser.add_argument("--screenshot", help="save the page after the first run (PNG)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                             args=["--no-sandbox"])
        for run in range(args.runs):
            runs.append(_run(browser, args.max_pixels, args.screenshot if run == 0 else None))
        browser.close()
    print(f"{_cpu()}, {os.cpu_count()} CPUs, "
          f"{args.max_pixels:,} pixels per view, median of {args.runs} runs")
    for name in runs[0]:
        values = [run[name] for run in runs]
        print(f"| {name} | {statistics.median(values):.2f} | "
              f"{min(values):.2f}-{max(values):.2f} |")


if __name__ == "__main__":
    main()
