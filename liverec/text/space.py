"""The text space the engine serves in: an encoder, its cache and the language centring.

Item, query and review vectors are encoded (each text once, :class:`CachedEncoder`), then
language-centred (:class:`LanguageCentering`) so that meaning, not language, is near. Training
refits the centring; everything encoded under the old one must then be recomputed, which is
why the space, not each caller, owns the query cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from liverec.core.types import Item
from liverec.storage.base import VectorCache
from liverec.text.base import TextKind
from liverec.text.cache import CachedEncoder
from liverec.text.centering import LanguageCentering
from liverec.text.encoders import get_encoder
from liverec.text.enrich import item_language
from liverec.text.keywords import Language, detect_language

__all__ = ["QUERY_CACHE", "TextSpace"]

QUERY_CACHE = 50_000  # query vectors kept; explanations and session vectors ask on every request


class TextSpace:
    """Encodes texts into the served (language-centred) vector space.

    Parameters
    ----------
    encoder
        Encoder name (``use``, ``e5``, ``minilm``; see :func:`liverec.text.get_encoder`).
    threads
        Threads the encoder may use.
    cache
        The durable vector cache (the store's), so re-training never re-encodes unchanged text.
    centering
        The language centring in force (from the served snapshot; none before any training).
    """

    def __init__(
        self, encoder: str, threads: int, cache: VectorCache | None, centering: LanguageCentering | None = None
    ) -> None:
        self.encoder = CachedEncoder(get_encoder(encoder, threads=threads), cache)
        self.centering = centering or LanguageCentering()
        self._queries: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.encoder.name

    def raw_item_vectors(self, items: Sequence[Item]) -> np.ndarray:
        """The items' vectors before centring (cached, so computing them twice costs a lookup)."""
        return self.encoder.encode([i.text for i in items], kind="passage")

    def item_vectors(self, items: Sequence[Item]) -> np.ndarray:
        return self.centering.apply(self.raw_item_vectors(items), [item_language(i) for i in items])

    def text_vectors(self, texts: Sequence[str], kind: TextKind) -> np.ndarray:
        raw = self.encoder.encode(texts, kind=kind)
        return self.centering.apply(raw, [detect_language(t) for t in texts])

    def query_vector(self, text: str) -> np.ndarray:
        """A query's centred vector; cached, as explanations and session vectors ask on every request."""
        vec = self._queries.get(text)
        if vec is None:
            vec = self.text_vectors([text], "query")[0]
            with self._lock:
                if len(self._queries) >= QUERY_CACHE:
                    self._queries.clear()  # crude but O(1); hot queries come straight back
                self._queries[text] = vec
        return vec

    def fit_centering(self, raw: np.ndarray, languages: Sequence[Language]) -> LanguageCentering:
        """A centring fitted on the catalog's raw vectors (not yet in force: see :meth:`recentre`)."""
        return LanguageCentering().fit(raw, languages)

    def recentre(self, centering: LanguageCentering) -> None:
        """Serve ``centering`` from now on; query vectors of the old space are dropped."""
        with self._lock:
            self.centering = centering
            self._queries.clear()
