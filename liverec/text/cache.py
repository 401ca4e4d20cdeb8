"""An encoder wrapper that never encodes the same text twice.

Vectors are keyed by (encoder name, :func:`text_key`) and looked up first in a bounded in-process
LRU, then in a :class:`~liverec.storage.base.VectorCache` (which survives restarts and is shared
between workers); only the misses reach the model, in one batch. The key is a hash keyed with the
cache's random salt (``VectorCache.key_salt``), so a guessed text cannot be confirmed from a
copied key alone.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.storage.base import VectorCache
from liverec.text.base import Encoder, TextKind
from liverec.text.encoders import check_texts, normalize_rows
from liverec.text.lru import VectorLRU

__all__ = ["CachedEncoder", "text_key"]


def text_key(text: str, kind: TextKind = "passage", salt: bytes = b"") -> str:
    """A stable 32-hex-digit key for ``text`` encoded as ``kind``, keyed with ``salt``.

    The kind is part of the key because asymmetric encoders give a query and a passage with the
    same words different vectors. The salt (up to 64 bytes) makes the key a keyed hash: without it
    a key says nothing about its text.

    >>> text_key("hello") == text_key("hello", "passage") != text_key("hello", "query")
    True
    >>> text_key("hello", salt=b"one") != text_key("hello", salt=b"two")
    True
    >>> len(text_key("hello"))
    32
    """
    digest = hashlib.blake2b(digest_size=16, key=salt)
    digest.update(kind.encode("ascii"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


class CachedEncoder:
    """An :class:`~liverec.text.base.Encoder` that caches another one's vectors.

    It has the wrapped encoder's ``name`` and ``dim``, so it can stand wherever that encoder
    stands, and returns exactly the vectors the wrapped encoder returned when each text was
    first seen.

    Parameters
    ----------
    encoder
        The encoder doing the work on a miss.
    cache
        Durable second level, keyed by ``encoder.name``; ``None`` keeps only the in-process LRU
        (whose keys are then salted with random bytes of this instance).
    memory_items
        Capacity of the in-process LRU in vectors (0 disables it); 100,000 512-d vectors take
        about 200 MB.

    Attributes
    ----------
    hits
        Distinct texts per call served from memory or from ``cache``, summed over calls.
    misses
        Distinct texts per call that had to be encoded, summed over calls.
    """

    def __init__(self, encoder: Encoder, cache: VectorCache | None = None, memory_items: int = 100_000) -> None:
        if isinstance(memory_items, bool) or not isinstance(memory_items, int) or memory_items < 0:
            raise InvalidInputError(
                f"memory_items must be a non-negative integer, got {memory_items!r}",
                field="memory_items",
                value=memory_items,
            )
        self.encoder = encoder
        self.cache = cache
        self.salt = cache.key_salt if cache is not None else os.urandom(32)
        self.memory_items = memory_items
        self.name: str = encoder.name
        self.dim: int = encoder.dim
        self.hits = 0
        self.misses = 0
        self._memory = VectorLRU(memory_items)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, hits={self.hits}, misses={self.misses})"

    def __len__(self) -> int:
        """Vectors held in the in-process LRU."""
        return len(self._memory)

    def clear_memory(self) -> None:
        """Empty the in-process LRU (the durable cache is left alone)."""
        with self._lock:
            self._memory.clear()

    def key(self, text: str, kind: TextKind = "passage") -> str:
        """The key ``text`` encoded as ``kind`` is cached under."""
        return text_key(text, kind, self.salt)

    def forget(self, texts: Iterable[tuple[str, TextKind]]) -> int:
        """Drop the vectors of these (text, kind) pairs from the LRU and the durable cache (an
        erasure); how many the durable cache held. Another text with the same words is simply
        encoded again when next asked for."""
        keys = list(dict.fromkeys(self.key(text, kind) for text, kind in texts))
        with self._lock:
            self._memory.pop(keys)
        return self.cache.delete(keys) if self.cache is not None and keys else 0

    def encode(self, texts: Sequence[str], *, kind: TextKind = "passage") -> np.ndarray:
        """Embed ``texts`` like the wrapped encoder, encoding only texts never seen before.

        Parameters
        ----------
        texts
            The strings to embed; duplicates are encoded once.
        kind
            ``"query"`` or ``"passage"``; part of the cache key.
        """
        batch = check_texts(texts, kind)
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        if not batch:
            return out
        keys = [text_key(text, kind, self.salt) for text in batch]
        unique: dict[str, str] = dict(zip(keys, batch, strict=True))

        found = self._from_memory(unique)
        pending = [key for key in unique if key not in found]
        if pending and self.cache is not None:
            stored = self._from_store(pending)
            found.update(stored)
            self._remember(stored)
            pending = [key for key in pending if key not in stored]

        if pending:
            encoded = normalize_rows(
                self.encoder.encode([unique[key] for key in pending], kind=kind), len(pending), self.dim
            )
            fresh = {key: encoded[i] for i, key in enumerate(pending)}
            if self.cache is not None:
                self.cache.put_many(self.name, fresh)
            found.update(fresh)
            self._remember(fresh)

        with self._lock:
            self.hits += len(unique) - len(pending)
            self.misses += len(pending)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def _from_memory(self, unique: dict[str, str]) -> dict[str, np.ndarray]:
        with self._lock:
            return self._memory.get(unique)

    def _from_store(self, keys: list[str]) -> dict[str, np.ndarray]:
        assert self.cache is not None
        stored = self.cache.get_many(self.name, keys)
        usable: dict[str, np.ndarray] = {}
        for key in keys:
            vector = stored.get(key)
            if vector is None:
                continue
            arr = np.asarray(vector, dtype=np.float32).reshape(-1)
            # A vector of another size was written under this name by a different model version;
            # re-encode (and overwrite) rather than return it.
            if arr.shape[0] == self.dim:
                usable[key] = arr
        return usable

    def _remember(self, vectors: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._memory.put(vectors)
