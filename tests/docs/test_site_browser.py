"""The built site in a real headless Chromium (Playwright with Debian's chromium, as the grid page's test):
served over http on localhost, its search finds a case page by the exception text it is about, and its
home page links the grid page, which opens with the committed grid."""

import functools
import http.server
import os
import subprocess
import sys
import threading

import pytest
from conftest import ROOT


class Quiet(http.server.SimpleHTTPRequestHandler):
    """A static file server that keeps its request log to itself."""

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The site built from the checkout (strict), served over http on a free localhost port; yields its URL."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def open_tab(browser, url):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(url)
    return tab, errors


def test_search_finds_the_case_page_by_its_exception_text(browser, served):
    tab, errors = open_tab(browser, served)
    tab.click("input.md-search__input")  # the header's search box, as a reader uses it
    tab.keyboard.type("seen_tokens")
    tab.wait_for_selector(".md-search-result__item a", timeout=20000)
    links = tab.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")
    assert any("/findings/phi3_generate/" in link for link in links), links
    tab.click(".md-search-result__item a[href*='findings/phi3_generate/']")
    tab.wait_for_url("**/findings/phi3_generate/**")
    assert "seen_tokens" in tab.inner_text("article")
    assert errors == []


def test_the_grid_page_is_linked_and_opens_with_the_committed_grid(browser, served):
    tab, errors = open_tab(browser, served)
    link = tab.locator("article a[href$='grid.html']").first
    assert link.count() == 1
    link.click()
    tab.wait_for_url("**/grid.html")
    tab.wait_for_selector("#grid")
    assert tab.title().startswith("ftcompat grid")
    assert "phi3_generate" in tab.inner_text("#grid")
    assert errors == []
