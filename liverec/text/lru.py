"""A bounded least-recently-used map of vectors: the in-memory tier of the text caches.

Not locked: its owners (``CachedEncoder``, ``TextSpace``) hold their own lock around it, as they
update other state (hit counts, the centring in force) in the same critical section.

>>> lru = VectorLRU(2)
>>> lru.put({"a": np.ones(2), "b": np.zeros(2), "c": np.ones(2)})
>>> sorted(lru.get(["a", "b", "c"]))
['b', 'c']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["VectorLRU"]


class VectorLRU:
    """At most ``size`` vectors (0: keeps nothing), each a read-only float32 copy."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The vectors held of ``keys``, each marked as just used."""
        found: dict[str, np.ndarray] = {}
        for key in keys:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
                found[key] = vector
        return found

    def put(self, vectors: Mapping[str, np.ndarray]) -> None:
        if self.size == 0:
            return
        for key, vector in vectors.items():
            frozen = np.array(vector, dtype=np.float32, copy=True)
            frozen.setflags(write=False)
            self._items[key] = frozen
            self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
