"""The text space the engine serves in: an encoder, its cache and the language centring.

Item, query and review vectors are encoded (each text once, :class:`CachedEncoder`), then
language-centred (:class:`LanguageCentering`) so that meaning, not language, is near. Training
refits the centring; everything encoded under the old one must then be recomputed, which is
why the space, not each caller, owns the query cache.

Item and review texts (passages) are cached durably in the store, so retraining never encodes
them again. Queries are not: every distinct search would otherwise write a row to disk (and
fsync it), so a stream of distinct queries grew the store without bound; their vectors live in a
bounded in-memory LRU instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from liverec.core.types import Item
from liverec.storage.base import VectorCache
from liverec.text.base import TextKind
from liverec.text.cache import CachedEncoder
from liverec.text.centering import LanguageCentering
from liverec.text.encoders import get_encoder
from liverec.text.enrich import item_language
from liverec.text.keywords import Language, detect_language
from liverec.text.lru import VectorLRU

__all__ = ["QUERY_CACHE", "TextSpace"]

# Query vectors kept (LRU); explanations and session vectors ask on every request. 10,000 512-d
# vectors take 20 MB, and a user's recent searches (what requests ask for) stay hot in it.
QUERY_CACHE = 10_000


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
    query_cache
        Centred query vectors kept in memory (least recently used dropped first).
    """

    def __init__(
        self, encoder: str, threads: int, cache: VectorCache | None, centering: LanguageCentering | None = None,
        query_cache: int = QUERY_CACHE,
    ) -> None:
        raw = get_encoder(encoder, threads=threads)
        self.encoder_name = encoder  # as settings name it (``use``): what another process loads it by
        self.encoder = CachedEncoder(raw, cache)
        self._query_encoder = CachedEncoder(raw, None, memory_items=0)  # cached centred, below
        self.centering = centering or LanguageCentering()
        self.query_cache = query_cache
        self._queries = VectorLRU(query_cache)
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
        """Centred vectors of ``texts``; queries come from (and go to) the in-memory query cache only."""
        if kind == "query":
            return self._query_vectors(texts)
        return _centre(self.centering, self.encoder.encode(texts, kind=kind), texts)

    def _query_vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = self._queries.get(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            centering = self.centering  # the space the vectors are computed in, as recentre may swap it
            fresh = _centre(centering, self._query_encoder.encode(missing, kind="query"), missing)
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                if centering is self.centering:
                    self._queries.put(dict(zip(missing, fresh, strict=True)))
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def query_vector(self, text: str) -> np.ndarray:
        """A query's centred vector; cached, as explanations and session vectors ask on every request."""
        return self._query_vectors([text])[0]

    def forget_texts(self, texts: Iterable[tuple[str, TextKind]]) -> int:
        """Drop every vector kept of these (text, kind) pairs, in memory and in the store (an
        erasure); how many the store held."""
        pairs = list(texts)
        with self._lock:
            self._queries.pop(text for text, kind in pairs if kind == "query")
        return self.encoder.forget(pairs)

    def fit_centering(self, raw: np.ndarray, languages: Sequence[Language]) -> LanguageCentering:
        """A centring fitted on the catalog's raw vectors (not yet in force: see :meth:`recentre`)."""
        return LanguageCentering().fit(raw, languages)

    def recentre(self, centering: LanguageCentering) -> None:
        """Serve ``centering`` from now on; query vectors of the old space are dropped."""
        with self._lock:
            self.centering = centering
            self._queries.clear()


def _centre(centering: LanguageCentering, raw: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    return centering.apply(raw, [detect_language(t) for t in texts])
