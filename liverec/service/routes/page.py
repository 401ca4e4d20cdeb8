"""The live page at ``/``: watch a user's interests and recommendations change as you act for them,
search the catalog in any language, and see what the service is running.

Static HTML, CSS and JavaScript from the package (``liverec/service/ui``): no build step, no CDN,
no request to any other origin (the Content-Security-Policy says so to the browser too). The page
calls the same public API as any client, so what it shows is what the API answers. The files are
public, like ``/docs``: they hold no data; every call the page makes needs what the API needs.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/ui"
UI_DIR = Path(str(files("liverec.service") / "ui"))
ASSETS = ("app.js", "app.css")
# The page and its assets come from this origin only; nothing may frame it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

#: The paths of this module that the load guard lets through without a key.
PUBLIC_PATHS = frozenset({"/", *(f"{STATIC}/{name}" for name in ASSETS)})

router = APIRouter()


def mount_assets(app: FastAPI) -> None:
    """Serve the page's script and style under :data:`STATIC`."""
    app.mount(STATIC, StaticFiles(directory=UI_DIR), name="ui")


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(UI_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": CSP})
