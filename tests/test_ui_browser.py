"""One real person's flow in headless Chromium: upload two files, ask, see the cited answer; screenshot it.

Also checks the page talks only to the app on 127.0.0.1 (no fonts, analytics or CDNs from outside).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest
from conftest import DOCS, docs_image
from ui_server import running_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
QUESTION = "In what country is Normandy located?"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("ui-browser") / "indexes"
    with running_app(root / "demo", root) as demo:
        yield demo.local_url


def test_upload_ask_and_see_the_cited_answer(app_url: str, browser: Browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).hostname or r.url.split(":")[0]))
    page.goto(app_url)

    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files([str(DOCS / "normans_latin1.txt"),
                                                              str(DOCS / "oxygen.html")])
    status = page.locator("#upload-status")
    status.get_by_text("The index now holds 2 documents").wait_for(timeout=240_000)
    assert "normans_latin1.txt" in page.locator("#documents").inner_text()

    page.get_by_role("tab", name="Ask").click()
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#question textarea").press("Enter")
    answer = page.locator("#chat .rag-answer").last
    answer.wait_for(timeout=120_000)
    assert "France" in answer.locator(".answer").inner_text()
    assert "reader: extractive" in answer.inner_text()
    card = answer.locator("details.source-card").first
    assert "normans_latin1.txt" in card.locator("summary").inner_text()
    assert "France" in card.locator("mark").first.inner_text()  # the answer span, highlighted in its passage

    shot = docs_image("screenshot.png", tmp_path)  # docs/ only with RAGQA_REFRESH_DOCS=1
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    outside = {h for h in hosts if h not in {"127.0.0.1", "localhost", "data", "blob"}}
    assert not outside, f"the page contacted hosts other than the app: {outside}"
    page.close()
