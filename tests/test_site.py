"""The course website (`make book`) opened in a real headless browser.

Builds `_build/html` (incrementally, warnings as errors), serves it on 127.0.0.1 and drives the
distribution's Chromium with Playwright: the equations are typeset by the bundled MathJax, every
figure loads, the navigation from the front page reaches every lecture notebook and lab, and each
lecture links to its lab and says how long it takes. No page may request anything off the machine.
Two checks block MathJax or the images in the browser and assert that the checks then fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = Path("/usr/bin/chromium")
COURSE = tomllib.loads((ROOT / "docs" / "course.toml").read_text(encoding="utf-8"))
LECTURES = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LABS = sorted(p.stem for p in (ROOT / "solutions").glob("lab*.ipynb"))
# Sphinx prints typographic quotes in titles: compare them as the notebook's plain ones
SMART_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
FRONT = "docs/index.html"
DERIVATION = "notebooks/02_dec_derivation.html"
COMPARISON = "notebooks/09_comparison.html"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it)",
)


def title_of(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("# "):
                return line[2:].strip()
    raise AssertionError(f"{path} has no '# title'")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # the test output is not a server log
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """Build the site (incremental: seconds when it is fresh) and serve it on a free loopback port."""
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", "docs", "-W", "--keep-going", "-q", ".", str(HTML)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"`make book` fails (warnings are errors):\n{proc.stderr[-4000:]}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=HTML))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(site: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A fresh page that records every request leaving the served site."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.off_site = []  # type: ignore[attr-defined]
    page.on("request", lambda r: None if r.url.startswith((site, "data:")) else page.off_site.append(r.url))
    yield page
    context.close()


def skip_rendering(page: Page) -> None:
    """For the link checks: no MathJax typesetting and no images (their own tests check those), ~3x faster."""
    page.route("**/_static/mathjax/**", lambda route: route.abort())
    page.route("**/_images/**", lambda route: route.abort())


def open_page(page: Page, site: str, path: str) -> None:
    response = page.goto(urljoin(site, path), wait_until="load")
    assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"


MATHJAX_STATE = """async () => {
  if (!window.MathJax || !window.MathJax.startup) return {loaded: false};
  await window.MathJax.startup.promise;
  const math = [...document.querySelectorAll('span.math, div.math')];
  return {
    loaded: true,
    math: math.length,
    typeset: math.filter(m => m.querySelector('mjx-container')).length,
    containers: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
  };
}"""

IMAGES_STATE = """async () => {
  const images = [...document.images];
  for (const img of images) {
    img.loading = 'eager';
    try { await img.decode(); } catch (e) { /* a broken image: naturalWidth stays 0 */ }
  }
  return images.map(img => [img.getAttribute('src'), img.naturalWidth]);
}"""


def mathjax_state(page: Page) -> dict:
    """After the `load` event MathJax's deferred script has run, or failed to load."""
    return page.evaluate(MATHJAX_STATE)


def assert_equations_rendered(page: Page) -> None:
    state = mathjax_state(page)
    assert state["loaded"], "MathJax did not load (is _static/mathjax/tex-chtml.js there?)"
    assert state["math"] >= 20, f"expected a derivation page full of equations, found {state['math']} math elements"
    assert state["typeset"] == state["math"], f"only {state['typeset']} of {state['math']} equations were typeset"
    assert state["errors"] == 0, f"{state['errors']} equations have TeX errors"


def broken_images(page: Page) -> list:
    images = page.evaluate(IMAGES_STATE)
    assert images, "no <img> on the page"
    return [src for src, width in images if width == 0]


def test_equations_render_offline(page: Page, site: str) -> None:
    open_page(page, site, DERIVATION)
    assert_equations_rendered(page)
    page.locator("mjx-container").first.wait_for(state="attached")
    assert page.off_site == [], f"the page requested resources off the machine: {page.off_site[:5]}"


def test_equation_check_fails_without_mathjax(page: Page, site: str) -> None:
    """The check above can fail: with the bundled MathJax blocked, no equation is typeset."""
    page.route("**/_static/mathjax/**", lambda route: route.abort())
    open_page(page, site, DERIVATION)
    page.wait_for_timeout(500)
    with pytest.raises(AssertionError, match="MathJax did not load"):
        assert_equations_rendered(page)


@pytest.mark.parametrize("path", [FRONT, COMPARISON])
def test_figures_load(page: Page, site: str, path: str) -> None:
    open_page(page, site, path)
    assert broken_images(page) == []
    assert page.off_site == [], f"the page requested resources off the machine: {page.off_site[:5]}"


def test_figure_check_fails_on_a_missing_image(page: Page, site: str) -> None:
    page.route("**/_images/**", lambda route: route.abort())
    open_page(page, site, COMPARISON)
    assert broken_images(page), "blocked images were reported as loaded"


def test_front_page_shows_the_comparison(page: Page, site: str) -> None:
    open_page(page, site, FRONT)
    text = page.inner_text("article")
    for needed in ("The map of methods", "The path through the notebooks", "make demo", "make test"):
        assert needed in text, f"front page lacks {needed!r}"
    assert page.locator("article img[src*='comparison']").count() == 1
    table = page.locator("article .comparison-table table")
    assert table.count() == 1 and "dec" in table.inner_text().lower()
    for family in ("autoencoder-based", "generative", "adversarial", "direct / discriminative", "structure-based"):
        assert family in text


def test_root_opens_the_front_page(page: Page, site: str) -> None:
    open_page(page, site, "index.html")
    page.wait_for_url("**/" + FRONT, timeout=10000)


def test_navigation_reaches_every_notebook(page: Page, site: str) -> None:
    """Follow the table of contents of the front page to every lecture, exercise and solution."""
    skip_rendering(page)
    open_page(page, site, FRONT)
    hrefs = page.eval_on_selector_all(".bd-sidebar-primary nav a[href]", "as => as.map(a => a.href)")
    targets = {urlparse(h).path.lstrip("/"): h for h in hrefs}
    expected = {f"notebooks/{stem}.html": ROOT / "notebooks" / f"{stem}.ipynb" for stem in LECTURES}
    for kind in ("exercises", "solutions"):
        expected |= {f"{kind}/{lab}.html": ROOT / kind / f"{lab}.ipynb" for lab in LABS}
    missing = sorted(set(expected) - set(targets))
    assert not missing, f"the navigation does not reach {missing}"
    for path, source in expected.items():
        open_page(page, site, targets[path])
        shown = page.inner_text("article h1").strip().rstrip("#").strip()
        assert shown.translate(SMART_QUOTES) == title_of(source), path
    assert page.off_site == []


@pytest.mark.parametrize("stem", LECTURES)
def test_lecture_banner_links_its_lab(page: Page, site: str, stem: str) -> None:
    skip_rendering(page)
    open_page(page, site, f"notebooks/{stem}.html")
    banner = page.locator("article .admonition").first
    text = banner.inner_text()
    assert "CPU:" in text and "GPU:" in text, f"{stem}: no time banner"
    entry = COURSE["lectures"].get(stem)
    if entry is not None:
        assert f"≈{entry['cpu_min']:g} min" in text
        assert entry["gpu"] in text
    hrefs = banner.locator("a[href]").evaluate_all("as => as.map(a => a.href)")
    for lab in (entry or {}).get("labs", []):
        for kind in ("exercises", "solutions"):
            link = next((h for h in hrefs if urlparse(h).path.endswith(f"/{kind}/{lab}.html")), None)
            assert link is not None, f"{stem} does not link to {kind}/{lab}"
            assert page.request.get(link).ok, link
    assert page.locator("button.copybtn").count() > 0, f"{stem}: code cells have no copy button"


@pytest.mark.parametrize("lab", LABS)
def test_lab_pages_link_lecture_and_each_other(page: Page, site: str, lab: str) -> None:
    skip_rendering(page)
    lecture = next(stem for stem, entry in COURSE["lectures"].items() if lab in entry.get("labs", []))
    for kind, other in (("exercises", "solutions"), ("solutions", "exercises")):
        open_page(page, site, f"{kind}/{lab}.html")
        banner = page.locator("article .admonition").first
        assert "CPU:" in banner.inner_text() and "GPU:" in banner.inner_text(), f"{kind}/{lab}: no time banner"
        paths = [urlparse(h).path for h in banner.locator("a[href]").evaluate_all("as => as.map(a => a.href)")]
        assert any(p.endswith(f"/notebooks/{lecture}.html") for p in paths), f"{kind}/{lab} does not link {lecture}"
        assert any(p.endswith(f"/{other}/{lab}.html") for p in paths), f"{kind}/{lab} does not link {other}/{lab}"


def test_every_lab_belongs_to_a_lecture() -> None:
    listed = {lab for entry in COURSE["lectures"].values() for lab in entry.get("labs", [])}
    assert listed == set(LABS), f"docs/course.toml labs {sorted(listed)} != solutions/ {LABS}"
