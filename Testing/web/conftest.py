"""Fixtures for `renderfm view` in a real browser: the server on the bundled sample (a child
process on a free loopback port) and headless Chromium driven by Playwright.

Playwright cannot download its own browser here: it drives Debian's `chromium`
(.ci/system-packages installs it). Tests skip, saying why, where Chromium, Playwright or
trame-slicer are missing. A failing test leaves a screenshot of the page in
test-artefacts/web/ (or $RENDERFM_ARTEFACTS/web/).
"""

import os
import shutil
from pathlib import Path

import pytest
from view_server import REPO, SAMPLE, Server

ARTEFACTS = Path(os.environ.get("RENDERFM_ARTEFACTS", REPO / "test-artefacts")) / "web"
VIEWPORT = {"width": 1280, "height": 640}  # two views of ~640 x 540 px, capped to 160k pixels


def chromium() -> str:
    """The path of Debian's Chromium; skips the test where it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (.ci/system-packages installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("trame_slicer", reason="the web extra (trame-slicer) is not installed")
    try:
        server = Server(str(SAMPLE / "ct.nii.gz"), "--seg", str(SAMPLE / "segmentation.nii.gz"))
    except TimeoutError as error:
        pytest.fail(str(error))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (test extra)")
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, server):
    page = browser.new_page(viewport=VIEWPORT)
    yield page
    page.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep a screenshot of the page when a test that uses it fails."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and page is not None and not page.is_closed():
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"{item.name}.png"))
