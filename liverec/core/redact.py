"""Credentials kept out of messages and logs.

A store or state-store URL may carry a password (``postgres://ann:secret@db/shop``); every message
that names a URL passes it through :func:`redact` first, so an error, a log line or a startup
banner never repeats it. A user name alone is kept (it helps to find the account), but a userinfo
without a colon is masked whole, since services often take a bare token there
(``redis://token@cache``).

>>> redact("postgres://ann:hunter2@db.example:5432/shop")
'postgres://ann:***@db.example:5432/shop'
>>> redact("cannot reach redis://s3cr3t@cache/0 (timed out); sqlite:///data/shop.db is fine")
'cannot reach redis://***@cache/0 (timed out); sqlite:///data/shop.db is fine'
"""

from __future__ import annotations

import re

__all__ = ["redact"]

# scheme://userinfo@ — userinfo runs up to the last "@" before the path (a password may hold an
# unescaped "@") and holds no "/", so a path is never taken for it (sqlite:///x@y.db has an empty
# authority); nor quotes or spaces, so it never runs past the URL a message quotes.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#'\"]*)@")


def _mask(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"


def redact(text: str) -> str:
    """``text`` with the password (or bare token) of every URL in it replaced by ``***``."""
    return _USERINFO.sub(_mask, text)
