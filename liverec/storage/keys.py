"""API keys: the token format, digests, scopes and validation every key store shares.

A key is handed out once as a token ``lr_<key_id>_<secret>``; a key store keeps its id, name,
scopes, creation time and the SHA-256 of the token, never the token itself, so a leaked key
database grants no access. Scopes:

* ``ingest`` — write items and events;
* ``read`` — ask for recommendations and read state;
* ``admin`` — manage keys, train, erase users; **admin implies ingest and read**.

Implementations (:class:`~liverec.storage.memory_keys.MemoryKeyStore`,
:class:`~liverec.storage.sqlite_keys.SqliteKeyStore`) keep :class:`KeyEntry` rows and answer
:func:`verify_token` from them, so every backend checks tokens the same way.

>>> token, entry = new_key("ingest bot", ["ingest"], taken=set())
>>> keys = {entry.key.key_id: entry}
>>> verify_token(token, keys.get) == entry.key, verify_token(token + "x", keys.get)
(True, None)
>>> entry.key.allows("ingest"), entry.key.allows("read")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Any

from liverec.core.errors import InvalidInputError, NotFoundError

__all__ = [
    "MAX_NAME_LENGTH",
    "SCOPES",
    "ApiKey",
    "KeyEntry",
    "check_name",
    "check_scopes",
    "new_key",
    "no_such_key",
    "oldest_first",
    "token_digest",
    "verify_token",
]

#: Every scope a key can hold; ``admin`` implies the other two.
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")

MAX_NAME_LENGTH = 100
TOKEN_PREFIX = "lr"
KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
# A real token is 55 characters; anything far longer is garbage and is not worth hashing in full.
_MAX_TOKEN_LENGTH = 256
# Compared against when the key id is unknown, so a miss costs the same as a wrong secret.
_DUMMY_DIGEST = hashlib.sha256(b"liverec: no such key").digest()


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key, without its secret."""

    key_id: str
    name: str
    scopes: frozenset[str]
    created: float

    def allows(self, scope: str) -> bool:
        """Whether this key may act in ``scope``; ``admin`` allows everything.

        Raises :class:`InvalidInputError` for a scope that does not exist, so a misspelt
        check in a route fails loudly instead of denying (or allowing) everyone.
        """
        if scope not in SCOPES:
            raise InvalidInputError(f"scope {scope!r} is not one of {', '.join(SCOPES)}", field="scope", value=scope)
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict[str, Any]:
        """The key as plain JSON-ready data (scopes sorted), e.g. for listing keys."""
        return {"key_id": self.key_id, "name": self.name, "scopes": sorted(self.scopes), "created": self.created}


@dataclass(frozen=True)
class KeyEntry:
    """What a key store keeps of one key: the key and the SHA-256 of its whole token."""

    key: ApiKey
    digest: bytes


def token_digest(token: str) -> bytes:
    """The SHA-256 of ``token``, the only form in which a store keeps it."""
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force,
    # unlike a password, and a slow KDF would only cost time on every request.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _key_id_of(token: str) -> str | None:
    """The key id of a well-formed token, else None."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    prefix, _, rest = token.partition("_")
    key_id, sep, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not sep or not secret or not KEY_ID_RE.fullmatch(key_id):
        return None
    return key_id


def check_name(name: object) -> str:
    """``name`` if it is a non-empty string of at most :data:`MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"key name {name!r} is empty; give the key a name", field="name", value=name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"key name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed",
            field="name",
            value=name,
        )
    return name


def check_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """``scopes`` as a set (a lone string is one scope); at least one, each in :data:`SCOPES`."""
    wanted = frozenset([scopes] if isinstance(scopes, str) else scopes)
    if not wanted:
        raise InvalidInputError(
            f"a key needs at least one scope; choose from {', '.join(SCOPES)}", field="scopes", value=[]
        )
    for scope in sorted(wanted, key=str):
        if scope not in SCOPES:
            raise InvalidInputError(f"scope {scope!r} is not one of {', '.join(SCOPES)}", field="scopes", value=scope)
    return wanted


def new_key(name: str, scopes: str | Iterable[str], taken: Container[str]) -> tuple[str, KeyEntry]:
    """A new key named ``name`` with ``scopes`` and an id not in ``taken``: ``(token, entry)``.

    Raises :class:`InvalidInputError` if ``name`` is empty or longer than 100 characters, or
    ``scopes`` is empty or holds a scope not in :data:`SCOPES`.
    """
    name = check_name(name)
    wanted = check_scopes(scopes)
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id=key_id, name=name, scopes=wanted, created=time.time())
    return token, KeyEntry(key=key, digest=token_digest(token))


def verify_token(token: object, lookup: Callable[[str], KeyEntry | None]) -> ApiKey | None:
    """The key ``token`` belongs to, looked up by its key id, or None; never raises.

    The comparison is constant-time, and an unknown key id or a malformed token still costs
    one comparison, so response times do not reveal which key ids exist.
    """
    text = token if isinstance(token, str) else ""
    key_id = _key_id_of(text)
    digest = token_digest(text if key_id is not None else "")
    entry = lookup(key_id) if key_id is not None else None
    if entry is None:
        hmac.compare_digest(digest, _DUMMY_DIGEST)
        return None
    return entry.key if hmac.compare_digest(digest, entry.digest) else None


def oldest_first(entries: Iterable[KeyEntry]) -> list[ApiKey]:
    """The keys of ``entries``, oldest first (ties by key id), as :meth:`KeyStore.list` returns them."""
    return sorted((entry.key for entry in entries), key=lambda k: (k.created, k.key_id))


def no_such_key(key_id: object) -> NotFoundError:
    """The error :meth:`KeyStore.revoke` raises for a key that does not exist."""
    return NotFoundError(f"no API key with id {key_id!r}", kind="api_key", key=str(key_id))
