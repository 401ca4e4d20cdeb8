"""API keys with scopes, stored only as hashes.

A key is handed out once as a token ``lr_<key_id>_<secret>``; the key ring keeps its id, name,
scopes, creation time and the SHA-256 of the token, never the token itself, so a leaked keys
file grants no access. Scopes:

* ``ingest`` — write items and events;
* ``read`` — ask for recommendations and read state;
* ``admin`` — manage keys, train, erase users; **admin implies ingest and read**.

The ring lives in a JSON file (``None`` keeps it in memory) written atomically with mode 0o600.
A running server sees keys created or revoked by another process (``liverec keys create``)
because it re-reads the file when its stat changes, checked at most once per
``reload_interval`` seconds so the request path stays cheap.

>>> ring = KeyRing(None)
>>> token, key = ring.create("ingest bot", ["ingest"])
>>> ring.verify(token) == key, ring.verify(token + "x")
(True, None)
>>> key.allows("ingest"), key.allows("read")
(True, False)
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError

if sys.platform != "win32":
    import fcntl

__all__ = ["SCOPES", "ApiKey", "KeyRing", "default_keys_path"]

logger = logging.getLogger(__name__)

#: Every scope a key can hold; ``admin`` implies the other two.
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")

MAX_NAME_LENGTH = 100
_FORMAT_VERSION = 1
_TOKEN_PREFIX = "lr"
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
_HASH_RE = re.compile(r"[0-9a-f]{64}")
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
class _Entry:
    key: ApiKey
    digest: bytes  # SHA-256 of the whole token


def _token_digest(token: str) -> bytes:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force,
    # unlike a password, and a slow KDF would only cost time on every request.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _parse_token(token: object) -> str | None:
    """The key id of a well-formed token, else None."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    prefix, _, rest = token.partition("_")
    key_id, sep, secret = rest.partition("_")
    if prefix != _TOKEN_PREFIX or not sep or not secret or not _KEY_ID_RE.fullmatch(key_id):
        return None
    return key_id


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"key name {name!r} is empty; give the key a name", field="name", value=name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"key name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed",
            field="name",
            value=name,
        )
    return name


def _validate_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    wanted = frozenset([scopes] if isinstance(scopes, str) else scopes)
    if not wanted:
        raise InvalidInputError(
            f"a key needs at least one scope; choose from {', '.join(SCOPES)}", field="scopes", value=[]
        )
    for scope in sorted(wanted, key=str):
        if scope not in SCOPES:
            raise InvalidInputError(f"scope {scope!r} is not one of {', '.join(SCOPES)}", field="scopes", value=scope)
    return wanted


def _stat_signature(path: Path) -> tuple[int, int, int, int] | None:
    """What tells a changed file apart without reading it; None when the file does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def _decode(path: Path, raw: bytes) -> dict[str, _Entry]:
    """The entries in a keys file's bytes; :class:`StorageError` naming ``path`` if they are not valid."""

    def bad(why: str) -> StorageError:
        return StorageError(f"keys file {path} is corrupt: {why}; restore it from a backup or remove it")

    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise bad(f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION or not isinstance(data.get("keys"), list):
        raise bad(f'expected {{"version": {_FORMAT_VERSION}, "keys": [...]}}')
    entries: dict[str, _Entry] = {}
    for i, item in enumerate(data["keys"]):
        if not isinstance(item, dict):
            raise bad(f"keys[{i}] is not an object")
        key_id, name, scopes = item.get("key_id"), item.get("name"), item.get("scopes")
        created, digest = item.get("created"), item.get("token_sha256")
        if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
            raise bad(f"keys[{i}].key_id {key_id!r} is not 8 hex digits")
        if key_id in entries:
            raise bad(f"key id {key_id!r} appears twice")
        if not isinstance(name, str):
            raise bad(f"keys[{i}].name is not a string")
        if not isinstance(scopes, list) or not scopes or not all(s in SCOPES for s in scopes):
            raise bad(f"keys[{i}].scopes {scopes!r} is not a non-empty list drawn from {', '.join(SCOPES)}")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise bad(f"keys[{i}].created is not a number")
        if not isinstance(digest, str) or not _HASH_RE.fullmatch(digest):
            raise bad(f"keys[{i}].token_sha256 is not 64 hex digits")
        key = ApiKey(key_id=key_id, name=name, scopes=frozenset(scopes), created=float(created))
        entries[key_id] = _Entry(key=key, digest=bytes.fromhex(digest))
    return entries


def _encode(entries: dict[str, _Entry]) -> bytes:
    keys = [
        {**entry.key.as_dict(), "token_sha256": entry.digest.hex()}
        for entry in sorted(entries.values(), key=lambda e: (e.key.created, e.key.key_id))
    ]
    return json.dumps({"version": _FORMAT_VERSION, "keys": keys}, indent=2).encode("utf-8") + b"\n"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the file itself is already synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class KeyRing:
    """The API keys a service accepts, kept in a JSON file at ``path`` (``None``: in memory only).

    Thread-safe. Construction raises :class:`StorageError` naming the path if the file exists
    but cannot be read or is corrupt. Later, if a re-read fails (someone hand-edited the file
    badly), the last good keys stay in force and a warning is logged, so a typo does not take
    the service down; the file is retried at the next check.

    Parameters
    ----------
    path
        The keys file; created (with its directory) on the first :meth:`create`.
    reload_interval
        Seconds between checks of the file's stat for changes made by another process.
    """

    def __init__(self, path: str | Path | None, *, reload_interval: float = 1.0) -> None:
        self.path = Path(path) if path is not None else None
        self.reload_interval = reload_interval
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._signature: tuple[int, int, int, int] | None = None
        self._rejected: tuple[int, int, int, int] | None = None  # a bad file already warned about
        self._checked = time.monotonic()
        if self.path is not None:
            self._reload(strict=True)

    def __repr__(self) -> str:
        return f"KeyRing({str(self.path) if self.path else None!r}, keys={len(self._entries)})"

    # -- reading -------------------------------------------------------------------------------

    def _reload(self, *, strict: bool) -> None:
        """Re-read the file if its stat changed since the last read. Call with the lock held.

        ``strict``: raise :class:`StorageError` on a bad file; otherwise keep the keys read before
        and warn once per bad version of the file, not at every check.
        """
        assert self.path is not None
        self._checked = time.monotonic()
        signature: tuple[int, int, int, int] | None = None
        try:
            signature = _stat_signature(self.path)
            if signature == self._signature:
                return
            if not strict and self._rejected is not None and signature == self._rejected:
                return
            if signature is None:  # removed: no keys are valid any more
                self._entries, self._signature = {}, None
                return
            entries = _decode(self.path, self.path.read_bytes())
        except OSError as exc:
            self._refuse(StorageError(f"could not read keys file {self.path}: {exc}"), signature, strict, exc)
            return
        except StorageError as exc:
            self._refuse(exc, signature, strict, None)
            return
        self._entries, self._signature, self._rejected = entries, signature, None

    def _refuse(
        self, error: StorageError, signature: tuple[int, int, int, int] | None, strict: bool, cause: OSError | None
    ) -> None:
        if strict:
            raise error from cause
        self._rejected = signature
        logger.warning("%s; keeping the %d keys read before", error, len(self._entries))

    def _maybe_reload(self) -> None:
        if self.path is not None and time.monotonic() - self._checked >= self.reload_interval:
            self._reload(strict=False)

    def verify(self, token: str) -> ApiKey | None:
        """The key ``token`` belongs to, or None; never raises, whatever string it is given.

        The comparison is constant-time, and an unknown key id or a malformed token still costs
        one comparison, so response times do not reveal which key ids exist.
        """
        key_id = _parse_token(token)
        digest = _token_digest(token if key_id is not None else "")
        with self._lock:
            self._maybe_reload()
            entry = self._entries.get(key_id) if key_id is not None else None
        if entry is None:
            hmac.compare_digest(digest, _DUMMY_DIGEST)
            return None
        return entry.key if hmac.compare_digest(digest, entry.digest) else None

    def list(self) -> builtins.list[ApiKey]:
        """Every key, oldest first."""
        with self._lock:
            self._maybe_reload()
            keys = [entry.key for entry in self._entries.values()]
        return sorted(keys, key=lambda k: (k.created, k.key_id))

    def __len__(self) -> int:
        with self._lock:
            self._maybe_reload()
            return len(self._entries)

    # -- writing -------------------------------------------------------------------------------

    def create(self, name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
        """Make a key; returns ``(token, key)``. The token is shown this once and never stored.

        Raises :class:`InvalidInputError` if ``name`` is empty or longer than 100 characters, or
        ``scopes`` is empty or holds a scope not in :data:`SCOPES` (a lone string is one scope).
        """
        name = _validate_name(name)
        wanted = _validate_scopes(scopes)
        with self._mutating() as entries:
            key_id = secrets.token_hex(4)
            while key_id in entries:
                key_id = secrets.token_hex(4)
            token = f"{_TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            key = ApiKey(key_id=key_id, name=name, scopes=wanted, created=time.time())
            entries[key_id] = _Entry(key=key, digest=_token_digest(token))
        return token, key

    def revoke(self, key_id: str) -> ApiKey:
        """Delete the key ``key_id`` so its token stops working; returns what it was.

        Raises :class:`NotFoundError` (kind ``"api_key"``) if there is no such key.
        """
        with self._mutating() as entries:
            entry = entries.pop(key_id, None) if isinstance(key_id, str) else None
            if entry is None:
                raise NotFoundError(f"no API key with id {key_id!r}", kind="api_key", key=str(key_id))
        return entry.key

    @contextmanager
    def _mutating(self) -> Iterator[dict[str, _Entry]]:
        """Yield a copy of the current keys to change; on success, store it (file first, then memory).

        The file is re-read under an exclusive lock before the change, so a key another process
        created a moment ago is not lost by writing over it.
        """
        with self._lock:
            if self.path is None:
                entries = dict(self._entries)
                yield entries
                self._entries = entries
                return
            with self._file_lock():
                self._reload(strict=True)
                entries = dict(self._entries)
                yield entries
                self._write(entries)
                self._entries = entries

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes (a sidecar ``.lock`` file), so concurrent writers take turns."""
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"could not lock keys file {self.path}: {exc}") from exc
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, entries: dict[str, _Entry]) -> None:
        """Replace the file atomically: temp file in the same directory, fsync, os.replace."""
        assert self.path is not None
        directory = self.path.parent
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            # mkstemp creates the file with mode 0o600, and os.replace keeps it: only the owner reads hashes.
            with os.fdopen(fd, "wb") as fh:
                fh.write(_encode(entries))
                fh.flush()
                os.fsync(fh.fileno())
            # A strictly later mtime, so readers notice the change even when coarse file
            # timestamps, an equal size and a reused inode would otherwise hide it.
            previous = self._signature[0] if self._signature else 0
            stamp = max(time.time_ns(), previous + 1)
            os.utime(tmp, ns=(stamp, stamp))
            os.replace(tmp, self.path)
            tmp = None
            _fsync_dir(directory)
            self._signature = _stat_signature(self.path)
        except OSError as exc:
            raise StorageError(f"could not write keys file {self.path}: {exc}") from exc
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def default_keys_path(store_url: str) -> Path | None:
    """Where the keys of the store at ``store_url`` live: next to its database, or nowhere.

    Follows :func:`liverec.storage.open_store`'s URL convention (a third slash before the path,
    so four slashes mean an absolute one).

    >>> default_keys_path("sqlite:///data/liverec.db").as_posix()
    'data/liverec.db.keys.json'
    >>> default_keys_path("sqlite:////var/lib/liverec.db").as_posix()
    '/var/lib/liverec.db.keys.json'
    >>> default_keys_path("memory://") is None
    True
    """
    scheme, separator, rest = store_url.partition("://") if isinstance(store_url, str) else ("", "", "")
    scheme = scheme.lower()
    if separator and scheme == "memory":
        return None
    if separator and scheme == "sqlite" and rest.startswith("/") and rest not in ("/", "/:memory:"):
        path = rest[1:]
        return Path(path + ".keys.json")
    raise InvalidInputError(
        f"no default keys file for store URL {store_url!r}; expected sqlite:///path.db or memory://, "
        "or give the keys file path explicitly",
        field="url",
        value=store_url,
    )
