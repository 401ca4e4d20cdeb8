"""The live page in a real browser (Debian's Chromium driven by Playwright) against a real ``liverec
serve`` on the small demo world, with every request off this machine sent to a proxy that is not
there: the page must work offline. Screenshots of each view, desktop and 360 px wide, are written
to ``tests/artifacts/`` (not committed; two are in the README, under docs/img)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from liverec.datasets.demo import DemoWorld
from tests.service._server import Server, trained_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NONE_YET = ("/interests", "/admin/train")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, small_world: DemoWorld) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("page")
    server = Server(root, trained_store(root, small_world))
    try:
        server.wait_healthy()
        while not httpx.get(f"{server.base}/healthz", timeout=10).json()["warm"]:
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        # Playwright's own browsers come from its CDN, which this machine cannot reach: Debian's Chromium.
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--proxy-server=http://127.0.0.1:9"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # The page's own policy forbids eval, which Playwright's wait_for_function needs: the tests
    # lift it; test_the_page_runs_under_its_own_policy loads the page with it enforced.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    errors = _watch(tab)
    yield tab
    context.close()
    assert errors == [], errors


def _watch(tab: Any) -> list[str]:
    """Script errors, console errors and failed requests of ``tab`` — but the two 404s that mean
    "none yet", which the page shows as such: a new visitor's interests, and the last training of
    a service that has not trained since it started."""
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error"
           and not m.text.startswith("Failed to load resource") else None)
    tab.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
           and not (r.status == 404 and r.url.split("?")[0].endswith(NONE_YET)) and r.status != 503 else None)
    tab.on("requestfailed", lambda r: errors.append(f"failed {r.url}"))
    return errors


def _user(world: DemoWorld) -> str:
    return sorted({e.user_id for e in world.events})[0]


def _cards(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#recs li.card", "cards => cards.map(c => c.dataset.item)"))


def _open(page: Any, server: Server, user: str) -> None:
    page.goto(f"{server.base}/?user={user}")
    page.wait_for_function("document.querySelectorAll('#recs li.card').length === 12")


def _shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height, suffix in ((1280, 900, "desktop"), (360, 780, "360px")):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"page-{name}-{suffix}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_page_and_its_assets_are_public_and_same_origin_only(server: Server) -> None:
    answer = httpx.get(f"{server.base}/", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in answer.text.replace("http-equiv", "")  # no absolute URL: nothing from elsewhere
    for asset in ("app.js", "app.css"):
        assert httpx.get(f"{server.base}/ui/{asset}", timeout=10).status_code == 200


def test_the_page_runs_under_its_own_policy(server: Server, small_world: DemoWorld, browser: Any) -> None:
    context = browser.new_context()
    tab = context.new_page()
    errors = _watch(tab)
    tab.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    tab.goto(f"{server.base}/?user={_user(small_world)}")
    tab.wait_for_selector("#recs li.card:nth-child(12)")
    tab.wait_for_selector("#interests li .bar")
    context.close()
    assert errors == [], errors  # nothing the policy refused, no script error


def test_a_click_changes_the_list_and_the_tags_within_a_second(server: Server, small_world: DemoWorld,
                                                                page: Any) -> None:
    user = _user(small_world)
    _open(page, server, user)
    page.wait_for_function("document.querySelector('#interests').dataset.tags !== undefined")
    before = _cards(page)
    assert len(before) == 12 and page.locator("#interests li").count() > 0
    _shoot(page, "live")
    clicked = before[3]
    started = time.monotonic()
    page.locator(f'#recs li.card[data-item="{clicked}"] button[data-act="click"]').click()
    page.wait_for_function(f"!document.querySelector('#recs li.card[data-item=\"{clicked}\"]')")
    page.wait_for_function("document.querySelectorAll('#interests li.changed').length > 0")
    took = time.monotonic() - started
    assert took < 1.0, took
    after = _cards(page)
    assert clicked not in after and after != before
    assert page.locator("#recs li.card.new").count() >= 1  # what came in is marked
    assert page.locator("#timeline li").first.inner_text().startswith("opened ")
    _shoot(page, "live-after-click")


def test_a_chinese_search_shows_english_and_chinese_results(server: Server, small_world: DemoWorld,
                                                           page: Any) -> None:
    _open(page, server, "page-searcher")
    zh = next(i for i in small_world.items if i.language == "zh")
    page.fill("#query", zh.title)
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    languages = set(page.eval_on_selector_all("#results li", "rows => rows.map(r => r.dataset.lang)"))
    assert {"en", "zh"} <= languages, languages
    _shoot(page, "search")


def test_dismiss_removes_the_card_and_similar_ones_do_not_gain(server: Server, small_world: DemoWorld,
                                                             page: Any) -> None:
    user = sorted({e.user_id for e in small_world.events})[1]
    _open(page, server, user)
    categories = dict(zip(_cards(page), page.eval_on_selector_all(
        "#recs li.card .category", "cs => cs.map(c => c.textContent)"), strict=True))
    dismissed = _cards(page)[0]
    same = sum(1 for c in categories.values() if c == categories[dismissed])
    page.locator(f'#recs li.card[data-item="{dismissed}"] button[data-act="dismiss"]').click()
    page.wait_for_function(f"!document.querySelector('#recs li.card[data-item=\"{dismissed}\"]')")
    after = page.eval_on_selector_all("#recs li.card .category", "cs => cs.map(c => c.textContent)")
    assert sum(1 for c in after if c == categories[dismissed]) < same


def test_the_operator_view_shows_a_retrain_finish(server: Server, page: Any) -> None:
    page.goto(f"{server.base}/#ops")
    page.wait_for_function("document.querySelectorAll('#health dd').length >= 4")
    page.wait_for_function("document.querySelectorAll('#latency tbody tr').length > 0")
    page.click("#retrain")
    page.wait_for_selector('#train-status[data-status="succeeded"]', timeout=180_000)
    assert "last training: succeeded" in page.inner_text("#train-status")
    page.wait_for_function("document.querySelector('#health dd').textContent.startsWith('v')")
    _shoot(page, "operator")
