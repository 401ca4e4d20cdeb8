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

from liverec.datasets.base import Dataset
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.evaluation.harness import Options, evaluate
from liverec.evaluation.report import write_report
from liverec.storage import open_key_store
from tests.service._server import Server, trained_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NONE_YET = ("/interests", "/admin/train")
SIGNED_OUT = "/session"  # a browser not signed in yet asks who it is and hears 401
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page")


@pytest.fixture(scope="module")
def store(root: Path, small_world: DemoWorld) -> str:
    return trained_store(root, small_world)


@pytest.fixture(scope="module")
def reports(root: Path) -> Path:
    """A real evaluation report (liverec against popularity on a small demo world), as
    ``liverec evaluate --out`` writes it."""
    world = build_demo_world(seed=5, n_items=280, n_users=40)
    out = root / "reports" / "demo-small"
    write_report(evaluate(Dataset("demo-small", world.items, world.events),
                          Options(protocols=("loo",), systems=("liverec", "pop")), out), out)
    return out.parent


def _serve(root: Path, store: str, **settings: Any) -> Server:
    server = Server(root, store, **settings)
    server.wait_healthy()
    while not httpx.get(f"{server.base}/healthz", timeout=10).json()["warm"]:
        time.sleep(0.1)
    return server


@pytest.fixture(scope="module")
def server(root: Path, store: str, reports: Path) -> Iterator[Server]:
    server = _serve(root, store, reports_dir=str(reports))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyed(root: Path, store: str) -> Iterator[tuple[Server, dict[str, str]]]:
    """A second service on the same store that asks for keys: one read key, one admin key."""
    keys = open_key_store(root / "keys.db")
    try:
        tokens = {scope: keys.create(f"page {scope}", [scope])[0] for scope in ("read", "admin")}
    finally:
        keys.close()
    server = _serve(root, store, keys_file=str(root / "keys.db"), feedback_file=str(root / "keyed-feedback.db"))
    try:
        yield server, tokens
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
    _search_in_chinese(page, small_world, "#query", "#results")
    _shoot(page, "search")


def _search_in_chinese(page: Any, world: DemoWorld, box: str, results: str) -> None:
    """Search for a Chinese item's title in ``box``: ``results`` must list English items too."""
    zh = next(i for i in world.items if i.language == "zh")
    page.fill(box, zh.title)
    page.press(box, "Enter")
    page.wait_for_function(f"document.querySelectorAll('{results} li').length > 0")
    languages = set(page.eval_on_selector_all(f"{results} li", "rows => rows.map(r => r.dataset.lang)"))
    assert {"en", "zh"} <= languages, languages


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


def test_an_items_page_says_why_it_is_or_is_not_in_the_list(server: Server, small_world: DemoWorld,
                                                             page: Any) -> None:
    user = sorted({e.user_id for e in small_world.events})[2]
    _open(page, server, user)
    listed = _cards(page)
    page.locator(f'#recs li.card[data-item="{listed[1]}"] a.title').click()
    page.wait_for_function(f"document.querySelector('#item').dataset.item === {listed[1]!r}"
                           " && document.querySelector('#verdict').dataset.recommended === 'true'")
    assert page.inner_text("#verdict-head").startswith("Recommended: #2 of 12")
    assert page.locator("#verdict-for li").count() >= 1 and page.locator("#verdict-against li").count() == 0
    page.wait_for_function("document.querySelectorAll('#similar li').length > 0")
    assert page.inner_text("#item-user") == user
    _shoot(page, "item")
    # An item the user already has: kept out, and the page says so.
    seen = next(e.item_id for e in reversed(small_world.events) if e.user_id == user and e.item_id)
    page.goto(f"{server.base}/?user={user}#item/{seen}")
    page.wait_for_function("document.querySelector('#verdict').dataset.recommended === 'false'")
    assert page.get_attribute("#verdict-against li", "data-kind") == "seen"
    # Another item, from the similar list: whatever the verdict, it comes with its reasons.
    page.locator("#similar li a").first.click()
    page.wait_for_function("document.querySelector('#verdict').dataset.recommended !== ''"
                           " && document.querySelectorAll('#verdict li').length > 0")


def test_a_catalog_search_is_nobodys_search(server: Server, small_world: DemoWorld, page: Any) -> None:
    _open(page, server, "page-browser")
    page.goto(f"{server.base}/?user=page-browser#catalog")
    _search_in_chinese(page, small_world, "#catalog-query", "#catalog-results")
    _shoot(page, "catalog")
    assert httpx.get(f"{server.base}/users/page-browser/interests", timeout=10).status_code == 404  # nothing recorded


def test_the_operator_view_plots_the_last_minutes_and_the_latest_evaluation(server: Server, page: Any) -> None:
    for n in range(6):  # some traffic of our own to plot: in two 5-second windows at least, so a line
        if n == 3:
            time.sleep(5.1)
        httpx.get(f"{server.base}/users/page-ops/recommendations", timeout=10)
    page.goto(f"{server.base}/#ops")
    page.wait_for_function("Number(document.querySelector('#chart-events').dataset.windows) > 0")
    assert page.locator("#chart-latency path.series.p99").count() == 1
    assert page.get_attribute("#chart-requests path.series.ok", "d").count("L") >= 1
    sizes = page.inner_text("#sizes")
    assert "events stored" in sizes and "store on disk" in sizes and "B" in sizes
    page.wait_for_function("document.querySelectorAll('#report table.report tbody tr').length === 2")
    assert page.inner_text("#report h3").startswith("demo-small — loo")
    page.wait_for_function("[...document.querySelectorAll('#report img')].every(i => i.complete && i.naturalWidth > 0)"
                           " && document.querySelectorAll('#report img').length >= 2")
    _shoot(page, "operator-report")


def test_with_keys_the_page_signs_in_and_a_read_key_cannot_send_events(keyed: tuple[Server, dict[str, str]],
                                                                        small_world: DemoWorld, browser: Any) -> None:
    server, tokens = keyed
    user = _user(small_world)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    errors = _watch(tab)
    tab.goto(f"{server.base}/?user={user}")
    tab.wait_for_selector("#signin:not([hidden])")
    _shoot(tab, "sign-in")
    tab.fill("#key", "lr_wrong_key")
    tab.press("#key", "Enter")
    tab.wait_for_function("document.querySelector('#signin-error').textContent.includes('unknown')")
    tab.fill("#key", tokens["read"])
    tab.press("#key", "Enter")
    tab.wait_for_function("document.querySelectorAll('#recs li.card').length === 12")
    assert "page read (read)" in tab.inner_text("#who")
    cookie = next(c for c in context.cookies() if c["name"] == "liverec_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert tab.evaluate("document.cookie") == ""  # the page's scripts cannot read it
    assert tab.locator('#recs button[data-act="click"]:disabled').count() == 12
    assert tab.is_disabled("#retrain")
    # Even sent by hand from the page, with the session's CSRF token, an event is refused.
    status = tab.evaluate("""async () => {
        const who = await (await fetch('/session')).json();
        const r = await fetch('/events', {method: 'POST', headers: {'content-type': 'application/json',
            'x-csrf-token': who.csrf_token}, body: JSON.stringify({user_id: 'page-read-key', type: 'click',
            item_id: document.querySelector('#recs li.card').dataset.item})});
        return r.status;
    }""")
    assert status == 403
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    assert httpx.get(f"{server.base}/users/page-read-key/interests", headers=headers, timeout=10).status_code == 404
    tab.click("#sign-out")
    tab.wait_for_selector("#signin:not([hidden])")
    # An admin key may act, through the cookie and the CSRF token the page sends.
    tab.fill("#key", tokens["admin"])
    tab.press("#key", "Enter")
    tab.wait_for_function("document.querySelectorAll('#recs li.card').length === 12")
    assert not tab.is_disabled("#retrain")
    clicked = _cards(tab)[0]
    tab.locator(f'#recs li.card[data-item="{clicked}"] button[data-act="click"]').click()
    tab.wait_for_function(f"!document.querySelector('#recs li.card[data-item=\"{clicked}\"]')")
    context.close()
    # The only failures: "not signed in" (twice: at the start and after signing out), the wrong key, the refused event.
    assert set(errors) <= {f"401 {server.base}/session", f"403 {server.base}/events"}, errors
