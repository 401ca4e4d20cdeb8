"""Browser sessions: an API key exchanged once for a cookie the page's scripts cannot read.

A page that kept the key in ``localStorage`` would hand it to any script that ever runs on the
origin; one that sent it as a plain cookie would let other sites' forms use it. So ``POST
/session`` takes the key and answers with an opaque session id in an ``HttpOnly``,
``SameSite=Strict`` cookie (``Secure`` under HTTPS) and a CSRF token the page keeps in memory
and sends as ``X-CSRF-Token`` on every state-changing call (OWASP's synchronizer-token pattern,
on top of SameSite, the JSON-only bodies and the Origin check of :mod:`liverec.service.limits`).

The session holds the key itself, in this process's memory only, and every request checks the
key again: revoking it ends its sessions at once, and a session never has more scopes than its
key. Sessions live in one process; a restart signs browsers out (a shared session store belongs
with the multi-worker deployment).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["COOKIE", "CSRF_HEADER", "SAFE_METHODS", "Session", "Sessions", "cookie_of"]

COOKIE = "liverec_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    token: str  # the API key the browser signed in with
    csrf: str
    expires: float  # epoch seconds

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


def _digest(session_id: str) -> bytes:
    # Sessions are found by the id's digest, so neither timing nor a memory dump gives the ids away.
    return hashlib.sha256(session_id.encode()).digest()


class Sessions:
    """Open browser sessions, each ending ``ttl`` seconds after sign-in; at most ``limit`` at once
    (the oldest goes first), so sign-ins cannot grow memory without bound. Thread-safe."""

    def __init__(self, ttl: float, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._open: OrderedDict[bytes, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._open)

    def open(self, token: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for ``token`` (checked by the caller): its id (the cookie's value) and itself."""
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), (now or time.time()) + self.ttl)
        with self._lock:
            self._open[_digest(session_id)] = session
            while len(self._open) > self.limit:
                self._open.popitem(last=False)
        return session_id, session

    def find(self, session_id: str, now: float | None = None) -> Session | None:
        """The open session with this id; None if there is none or it has expired (then it is dropped)."""
        digest = _digest(session_id)
        with self._lock:
            session = self._open.get(digest)
            if session is not None and session.expires <= (now or time.time()):
                del self._open[digest]
                return None
            return session

    def close(self, session_id: str) -> bool:
        with self._lock:
            return self._open.pop(_digest(session_id), None) is not None


def cookie_of(headers: Iterable[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in raw ASGI headers (the first one, as browsers send the most
    specific path first)."""
    prefix = f"{name}="
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            part = part.strip()
            if part.startswith(prefix):
                return part[len(prefix):] or None
    return None
