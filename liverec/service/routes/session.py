"""Browser sign-in: ``POST /session`` exchanges an API key for an HttpOnly, SameSite=Strict cookie
and a CSRF token; ``GET /session`` says who the browser is; ``DELETE /session`` signs it out.

Public paths (a browser has no key to send yet); the key check happens here. See
:mod:`liverec.service.sessions` for why a cookie and a token, and not the key in the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from liverec.service.deps import Services, ServicesDep, authenticate, browser_session, token_of
from liverec.service.errors import ERROR_RESPONSES, ServiceError
from liverec.service.schemas import SessionIn, SessionOut
from liverec.service.sessions import COOKIE, Session, cookie_of
from liverec.storage import ApiKey
from liverec.storage.keys import SCOPES

PATH = "/session"
#: The paths of this module that the load guard lets through without a key.
PUBLIC_PATHS = frozenset({PATH})

router = APIRouter(tags=["session"])


def _answer(services: Services, key: ApiKey | None, session: Session | None = None) -> dict[str, Any]:
    if not services.auth_required:
        return {"auth_required": False, "scopes": sorted(SCOPES)}
    assert key is not None
    scopes = sorted(SCOPES) if "admin" in key.scopes else sorted(key.scopes)
    return {"auth_required": True, "key_id": key.key_id, "name": key.name, "scopes": scopes,
            "csrf_token": session.csrf if session else None, "expires": session.expires if session else None}


def _cookie(response: Response, request: Request, services: Services, value: str, max_age: int) -> None:
    # Secure whenever the browser reached us over TLS (ours, or a proxy's in front).
    secure = request.url.scheme == "https" or services.settings.behind_proxy
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure)


@router.post(PATH, response_model=SessionOut, responses=ERROR_RESPONSES,
             summary="Sign a browser in: an API key for a session cookie (HttpOnly, SameSite=Strict) and a CSRF token")
def sign_in(body: SessionIn, request: Request, response: Response, services: ServicesDep) -> Any:
    if not services.auth_required:
        return _answer(services, None)
    token = body.key.strip()
    key = authenticate(services, token)
    session_id, session = services.sessions.open(token)
    _cookie(response, request, services, session_id, int(services.sessions.ttl))
    return _answer(services, key, session)


@router.get(PATH, response_model=SessionOut, responses=ERROR_RESPONSES,
            summary="Whether keys are needed, and this browser's session: key, scopes and CSRF token")
def who(request: Request, services: ServicesDep) -> Any:
    if not services.auth_required:
        return _answer(services, None)
    token = token_of(request.scope["headers"])
    if token is not None:  # a client with a key header: no session, no CSRF token needed
        return _answer(services, authenticate(services, token))
    session = browser_session(services, request.scope["headers"])
    if session is None:
        raise ServiceError(401, "not signed in: POST /session with an API key", field="session")
    return _answer(services, authenticate(services, session.token), session)


@router.delete(PATH, status_code=204, responses=ERROR_RESPONSES, summary="Sign this browser out")
def sign_out(request: Request, services: ServicesDep) -> Response:
    session_id = cookie_of(request.scope["headers"])
    if session_id is not None:
        services.sessions.close(session_id)
    response = Response(status_code=204)
    _cookie(response, request, services, "", 0)
    return response
