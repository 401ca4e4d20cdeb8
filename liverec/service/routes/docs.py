"""The API's own description, readable offline: Swagger UI at /docs, ReDoc at /redoc, and the
JSON Schemas of an item and an event.

FastAPI's own pages load Swagger UI's and ReDoc's scripts from a CDN, so on a machine without
internet /docs was a blank page (issue 13). These pages load them from the service itself, under
``/docs/static``: the files come with the ``fastapi-offline`` package (Swagger UI under Apache
2.0, ReDoc under MIT, as its licence file says). Everything here is public, like /openapi.json:
it describes the API, not anyone's data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from liverec.service.errors import ERROR_RESPONSES
from liverec.service.formats import KINDS, ingest_schema

STATIC = "/docs/static"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
SCHEMA_MEDIA_TYPE = "application/schema+json"

#: The paths of this module that the load guard lets through without a key.
PUBLIC_PATHS = frozenset({"/docs", OAUTH2_REDIRECT, "/redoc", *(f"/schemas/{kind}" for kind in KINDS),
                          *(f"{STATIC}/{name}" for name in ASSETS)})

router = APIRouter()


def mount_assets(app: FastAPI) -> None:
    """Serve the pages' scripts, style and icon under :data:`STATIC`; call with ``docs_url=None``
    and ``redoc_url=None`` given to FastAPI, so its CDN pages are not registered."""
    app.mount(STATIC, StaticFiles(directory=ASSETS_DIR), name="docs-static")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json", title=f"{request.app.title} - API",
        swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC}/favicon.png", oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
    )


@router.get(OAUTH2_REDIRECT, include_in_schema=False)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json", title=f"{request.app.title} - API",
        redoc_js_url=f"{root}{STATIC}/redoc.standalone.js", redoc_favicon_url=f"{root}{STATIC}/favicon.png",
        with_google_fonts=False,
    )


@router.get(
    "/schemas/{kind}", tags=["system"], response_class=JSONResponse,
    responses={200: {"content": {SCHEMA_MEDIA_TYPE: {"schema": {"type": "object"}}},
                     "description": "a JSON Schema, draft 2020-12"}, 422: ERROR_RESPONSES[422]},
    summary="The JSON Schema of one item or one event, as files and POST bodies hold them (no key needed)",
)
async def schema(kind: Annotated[Literal["items", "events"], PathParam()]) -> Any:
    """The same schema ``liverec ingest --schema KIND`` prints."""
    return JSONResponse(ingest_schema(kind), media_type=SCHEMA_MEDIA_TYPE)
