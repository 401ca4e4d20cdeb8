"""/docs and /redoc without internet (issue 13): the pages name only the service's own URLs, every
asset they name is served from the package with its content type and without a key, and (with
Chromium) the Swagger UI page renders the operations while every request outside the machine fails.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from liverec.engine import Engine
from liverec.service.app import create_app
from liverec.service.routes.docs import ASSETS, STATIC
from liverec.service.settings import ServiceSettings
from tests.service._api import assert_error
from tests.service.conftest import create_key, make_client

CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",),
                 ".json": ("application/json",)}
PAGES = ["/docs", "/redoc"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The service with keys on and no key sent: only public paths answer."""
    tmp = tmp_path_factory.mktemp("docs")
    create_key(tmp / "keys.db", "someone", ["admin"])
    with Engine.open("memory://") as engine, make_client(engine, tmp, require_keys=True) as client:
        yield client


def referenced(html: str) -> list[str]:
    """The URLs a page loads: scripts, styles, icons, and the spec it renders."""
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_names_no_url_outside_the_service(keyed: TestClient, page: str) -> None:
    response = keyed.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert not re.findall(r"https?://", response.text), "the page loads something from another host"
    urls = referenced(response.text)
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_a_page_names_is_served_without_a_key(keyed: TestClient, page: str) -> None:
    for url in referenced(keyed.get(page).text):
        response = keyed.get(url)
        assert response.status_code == 200, (url, response.text)
        kinds = CONTENT_TYPES[Path(url).suffix]
        assert response.headers["content-type"].split(";")[0] in kinds, (url, response.headers["content-type"])
        assert len(response.content) > 1000, url  # the real file, not an error page


def test_the_assets_are_the_packaged_swagger_ui_5_and_redoc_2(keyed: TestClient) -> None:
    js = keyed.get(f"{STATIC}/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in js and '"5.' in js  # Swagger UI 5 renders OpenAPI 3.1; version 4 did not
    assert "Redoc" in keyed.get(f"{STATIC}/redoc.standalone.js").text
    assert keyed.get(f"{STATIC}/swagger-ui.css").text.lstrip().startswith((".swagger-ui", "@charset", "/*"))
    assert keyed.get("/docs/oauth2-redirect").status_code == 200
    for name in ASSETS:
        assert keyed.get(f"{STATIC}/{name}").status_code == 200


def test_the_schemas_are_public_and_the_data_is_not(keyed: TestClient) -> None:
    for kind in ("items", "events"):
        assert keyed.get(f"/schemas/{kind}").status_code == 200
    assert_error(keyed.get("/users/u1/interests"), 401, "unauthorized", "authorization", "an API key is required")
    # Only the named assets are public: anything else under the static path still needs a key.
    assert_error(keyed.get(f"{STATIC}/swagger-ui.js"), 401, "unauthorized", "authorization")


def test_fastapis_cdn_pages_are_gone() -> None:
    app = create_app(ServiceSettings(store="memory://"))
    assert app.docs_url is None and app.redoc_url is None  # theirs would load from cdn.jsdelivr.net


# ---------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served() -> Iterator[str]:
    """The service on a free loopback port, in a thread of this process; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServiceSettings(store="memory://")), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        thread.join(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian package: chromium)")
@pytest.mark.parametrize(("page", "rendered"), [
    ("/docs", 'data-path="/events"'),  # Swagger UI's operation block for POST /events
    ("/redoc", "/schemas/{kind}"),
])
def test_a_browser_renders_the_operations_offline(served: str, page: str, rendered: str, tmp_path: Path) -> None:
    # Every request off this machine goes to a proxy that is not there (loopback bypasses it), so
    # a page needing a CDN would render nothing. Chromium alone, not Playwright: Playwright's
    # browsers are downloaded from its CDN, which this machine cannot reach.
    chromium = _chromium()
    assert chromium is not None
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=http://127.0.0.1:9",
               f"--user-data-dir={tmp_path}", "--virtual-time-budget=15000", "--dump-dom", served + page]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert rendered in dom, dom[-2000:]
    if page == "/docs":
        assert dom.count('class="opblock ') >= 10  # every operation, not only the first
