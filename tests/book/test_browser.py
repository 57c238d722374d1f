"""Every page of the built book in headless Chromium, served on localhost, with the network cut off."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import REPO, toc_pages

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = REPO / "test-artifacts" / "screenshots"
# Flags for a root, offline, headless run (no sandbox as root; no background calls to Google's hosts).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def server(html_dir):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _visit(browser, url: str, shot: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, remote = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    def only_local(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    return page, problems, remote


@pytest.mark.parametrize("doc", toc_pages())
def test_page_loads_offline_without_errors_and_shows_its_figures(server, browser, doc):
    page, problems, remote = _visit(browser, f"{server}/{doc}.html", doc.replace("/", "_"))
    assert not remote, f"{doc} tried to reach the network: {remote}"
    assert not problems, "\n".join(problems)
    broken = page.evaluate(
        """() => [...document.querySelectorAll('article img')]
                 .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"""
    )
    assert not broken, f"{doc}: images that did not render: {broken}"
    page.close()


def test_explorer_shows_every_choice_without_a_kernel(server, browser):
    page, problems, _ = _visit(browser, f"{server}/book/invariance_equivariance.html", "explorer")
    assert not problems, "\n".join(problems)
    page.wait_for_selector(".widget-tab", timeout=15_000)
    images = page.locator("article .widget-image")
    n_choices = images.count()
    assert n_choices == 4 + 2 + 2 + 2 + 2, n_choices  # every element of every transformation, pre-rendered
    assert page.evaluate("() => [...document.querySelectorAll('article .widget-image')].every(i => i.naturalWidth > 0)")
    # Switch to another transformation and element: a different pre-rendered panel becomes visible.
    first = page.locator("article .widget-image:visible").first.get_attribute("src")
    page.locator("article .lm-TabBar-tab", has_text="colour inversion").first.click()
    page.locator("article .lm-TabBar-tab:visible", has_text="inverted").first.click()
    page.wait_for_timeout(300)
    shown = page.locator("article .widget-image:visible")
    assert shown.count() == 1 and shown.first.get_attribute("src") != first
    # The panel names its images' classes (also in its titles): a class-balanced sample, not six airplanes.
    classes = [c for c in shown.first.get_attribute("class").split() if c.startswith("essl-class-")]
    assert len(classes) > 1, classes
    page.screenshot(path=str(SHOTS / "explorer_inverted.png"), full_page=True)
    page.close()
