"""What routes depend on: the app's services and the caller's API key, as typed dependencies."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from liverec.engine import Engine
from liverec.experiments import Assignment
from liverec.generation.stage import Narrator
from liverec.service.errors import ServiceError
from liverec.service.ingest import Committer
from liverec.service.jobs import Syncer, Trainer
from liverec.service.limits import Pool, Shedder, header_value, queue_deadline
from liverec.service.metrics import Metrics
from liverec.service.privacy import Pseudonymizer
from liverec.service.sessions import CSRF_HEADER, SAFE_METHODS, Session, Sessions, cookie_of
from liverec.service.settings import ServiceSettings
from liverec.storage import ApiKey, FeedbackLog, KeyStore

T = TypeVar("T")


@dataclass
class Services:
    """Everything one app instance owns; built by ``create_app``, closed at shutdown."""

    settings: ServiceSettings
    engine: Engine
    keys: KeyStore
    pseudonyms: Pseudonymizer
    experiment: Assignment
    feedback: FeedbackLog
    committer: Committer
    trainer: Trainer
    syncer: Syncer
    metrics: Metrics
    sessions: Sessions
    narrator: Narrator
    started: float = field(default_factory=time.time)
    # Set once the start-up rebuild of user states is done (``/healthz`` says ``warm``).
    warmed: threading.Event = field(default_factory=threading.Event)
    closed: bool = False
    # One thread ranks while events are flowing (see routes.users.recommendations_body).
    ranking: Pool = field(default_factory=lambda: Pool(1, "liverec-rank"))
    # Heavier reads (a search's encoding, a user's rebuild from the log) queue here, not in an
    # unbounded pool: on 2 cores more threads only share the GIL, and a visible queue can be shed.
    workers: Pool = field(default_factory=lambda: Pool(4, "liverec-work"))

    _sizes: tuple[float, dict[str, Any]] | None = None

    def sizes(self) -> dict[str, Any]:
        """How big the store and the live states are, measured at most every SIZES_TTL seconds
        (counting a large event log takes a scan)."""
        cached = self._sizes
        if cached is None or time.monotonic() - cached[0] > SIZES_TTL:
            cached = self._sizes = (time.monotonic(), measure_sizes(self.engine))
        return cached[1]

    @property
    def auth_required(self) -> bool:
        # Once any key exists every caller needs one; before that only on request (or off loopback,
        # where the service refuses to start without keys). Off loopback keys stay required even
        # after the last one is revoked: revoking a leaked key must not open the service to all.
        return self.settings.require_keys or not self.settings.loopback or len(self.keys) > 0

    async def offload(self, scope: Scope, fn: Callable[[], T], pool: Pool | None = None) -> T:
        """``fn()`` on a thread of ``pool`` (default: ``workers``), refused with 503 if its turn comes
        more than ``max_queue_ms`` after the request arrived and the shedder says so (see
        :class:`limits.Shedder`: others wait behind it, or the service is shedding)."""
        deadline = queue_deadline(scope, self.settings.max_queue_ms / 1000)
        shedder = scope.get("state", {}).get("shedder") or Shedder(self.metrics)  # one per Guard
        return await (pool or self.workers).run(fn, deadline, shedder)

    def user_id(self, raw: str) -> str:
        """The id the store keeps for ``raw``: a keyed pseudonym when a secret is configured."""
        return self.pseudonyms.user_id(raw)


SIZES_TTL = 30.0
SIZE_SAMPLE = 200  # states whose encoded size estimates the average


def measure_sizes(engine: Engine) -> dict[str, Any]:
    """Items, events and live states, the states' encoded bytes (estimated from a sample) and
    the store's bytes on disk (None for a store that is not a file)."""
    states = engine.states.store
    users = states.user_ids()
    sample = [state.to_bytes() for uid in users[:SIZE_SAMPLE] if (state := states.get(uid)) is not None]
    state_bytes = round(sum(map(len, sample)) / len(sample) * len(users)) if sample else 0
    where = engine.store.location
    disk = None
    if where.directory is not None:
        files = [where.directory / f"{where.name}{suffix}" for suffix in ("", "-wal", "-shm")]
        disk = sum(f.stat().st_size for f in files if f.exists())
    return {"items": len(engine.items), "events": engine.store.events.count(), "live_users": len(users),
            "state_bytes": state_bytes, "store_bytes": disk}


# The dependencies are ``async def`` though they never await: FastAPI runs a plain ``def``
# dependency in the thread pool, a hop that cost more than the work (see benchmarks/serve_load.py).
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: <key>`")


#: Routes anyone may call, keys or not: liveness and the API's own description (the pages that
#: show it, their assets and the ingest schemas are ``routes.docs.PUBLIC_PATHS``).
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})


def token_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The API key in raw ASGI headers: a Bearer credential first, else ``X-API-Key``."""
    bearer = header = None
    for name, value in headers:
        if name == b"authorization" and bearer is None:
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            bearer = credentials.strip() if scheme.lower() == "bearer" else ""
        elif name == b"x-api-key" and header is None:
            header = value.decode("latin-1")
    return bearer or header or None


def authenticate(services: Services, token: str | None) -> ApiKey | None:
    """The caller's key, or None when keys are not required; 401 for a missing or unknown key.

    A SHA-256 and, at most once a second, a check of the key store for keys created or revoked
    by another process: cheap enough for the event loop, where the load guard calls it before
    any body is read."""
    if not services.auth_required:
        return None
    if not token:
        raise ServiceError(401, "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                           field="authorization", headers={"WWW-Authenticate": "Bearer"})
    key = services.keys.verify(token)
    if key is None:
        raise ServiceError(401, "the API key is unknown or revoked", field="authorization",
                           headers={"WWW-Authenticate": "Bearer"})
    return key


def authenticate_scope(scope: Scope) -> ApiKey | None:
    """:func:`authenticate` for a request, once: the load guard checks the key before the body is
    read and keeps the result in the request's state, where the routes' scope checks find it.

    A request without a key header may carry a browser session's cookie instead
    (:mod:`liverec.service.sessions`); a state-changing one must then also carry the session's
    CSRF token."""
    state = scope.setdefault("state", {})
    if "api_key" not in state:
        services: Services = scope["app"].state.services
        headers = scope["headers"]
        token = token_of(headers)
        if token is None and services.auth_required:
            token = session_token(services, headers, scope["method"])
        state["api_key"] = authenticate(services, token)
    key: ApiKey | None = state["api_key"]
    return key


def browser_session(services: Services, headers: Iterable[tuple[bytes, bytes]]) -> Session | None:
    """The open session the request's cookie names; None without the cookie, 401 for one that ended."""
    session_id = cookie_of(headers)
    if session_id is None:
        return None
    session = services.sessions.find(session_id)
    if session is None:
        raise ServiceError(401, "the browser session has ended; sign in again with a key (POST /session)",
                           field="session")
    return session


def session_token(services: Services, headers: Iterable[tuple[bytes, bytes]], method: str) -> str | None:
    """The key behind the request's session cookie, if it has one (see :func:`browser_session`);
    403 for a state-changing request without the session's CSRF token."""
    session = browser_session(services, headers)
    if session is None:
        return None
    if method not in SAFE_METHODS and not session.csrf_matches(header_value(headers, CSRF_HEADER.encode())):
        raise ServiceError(403, f"a request made with a session cookie must send the session's {CSRF_HEADER} header",
                           field=CSRF_HEADER)
    return session.token


def require(scope: str) -> Callable[..., Awaitable[ApiKey | None]]:
    """A dependency that lets the call through only with a key holding ``scope`` (when keys are on).

    The load guard has already refused a request without a valid key (before reading its body);
    this checks the scope, and documents the schemes in the OpenAPI schema."""

    async def check(
        request: Request,
        # Declared for the OpenAPI schema's security schemes; the key was read by the guard.
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        header: Annotated[str | None, Security(_header)] = None,
    ) -> ApiKey | None:
        key = authenticate_scope(request.scope)
        if key is not None and not key.allows(scope):
            raise ServiceError(403, f"key {key.key_id!r} lacks the {scope!r} scope", field="authorization")
        return key

    return check


ReadKey = Annotated[ApiKey | None, Depends(require("read"))]
IngestKey = Annotated[ApiKey | None, Depends(require("ingest"))]
AdminKey = Annotated[ApiKey | None, Depends(require("admin"))]
