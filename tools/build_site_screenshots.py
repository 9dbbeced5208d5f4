"""Screenshots of the built website for the README: the front page and a derivation page.

Run after `make book`:  .venv/bin/python tools/build_site_screenshots.py
Serves `_build/html` on 127.0.0.1, opens it in the distribution's Chromium (Playwright, headless),
waits for MathJax, and writes docs/screenshot_front.png and docs/screenshot_derivation.png (1280×900).
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = {
    "docs/screenshot_front.png": ("docs/index.html", None),
    "docs/screenshot_derivation.png": ("notebooks/02_dec_derivation.html", "#the-gradients-by-hand"),
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    if not (HTML / "docs" / "index.html").is_file():
        raise SystemExit("no _build/html/docs/index.html: run `make book` first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=HTML))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for out, (path, anchor) in SHOTS.items():
                page.goto(base + path, wait_until="load")
                page.wait_for_function("() => !window.MathJax || window.MathJax.startup !== undefined")
                page.evaluate("async () => { if (window.MathJax) await window.MathJax.startup.promise; }")
                if anchor:
                    page.locator(anchor).scroll_into_view_if_needed()
                    page.evaluate("window.scrollBy(0, -70)")  # below the sticky header
                page.wait_for_timeout(300)
                page.screenshot(path=str(ROOT / out))
                print("wrote", out)
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
