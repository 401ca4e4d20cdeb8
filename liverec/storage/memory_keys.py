"""API keys held in this process: the reference key store, and what a ``memory://`` store opens.

Nothing is written anywhere; the keys last as long as the object (a memory store hands out the
same one on every :meth:`~liverec.storage.memory.MemoryStore.key_store` call).

>>> keys = MemoryKeyStore()
>>> token, key = keys.create("ingest bot", ["ingest"])
>>> keys.verify(token) == key, keys.verify(token + "x"), len(keys)
(True, None, 1)
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable

from liverec.storage.keys import ApiKey, KeyEntry, new_key, no_such_key, oldest_first, verify_token

__all__ = ["MemoryKeyStore"]


class MemoryKeyStore:
    """Keys in a dict, thread-safe. Writers replace the dict whole, so :meth:`verify` takes no lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, KeyEntry] = {}

    def create(self, name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
        with self._lock:
            token, entry = new_key(name, scopes, taken=self._entries)
            self._entries = {**self._entries, entry.key.key_id: entry}
        return token, entry.key

    def verify(self, token: str) -> ApiKey | None:
        return verify_token(token, self._entries.get)

    def list(self) -> builtins.list[ApiKey]:
        return oldest_first(self._entries.values())

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            entry = self._entries.get(key_id) if isinstance(key_id, str) else None
            if entry is None:
                raise no_such_key(key_id)
            self._entries = {k: e for k, e in self._entries.items() if k != key_id}
        return entry.key

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Nothing to release: the keys stay, as long as the object (and its memory store) lives."""

    def __repr__(self) -> str:
        return f"MemoryKeyStore(keys={len(self._entries)})"
