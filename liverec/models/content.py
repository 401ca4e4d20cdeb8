"""Content recall: nearest item text vectors in a faiss index that takes live updates."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.locks import ReadWriteLock
from liverec.models._common import (
    aggregate_history,
    check_k,
    read_ids,
    read_params,
    require_fitted,
    top_k,
    write_ids,
    write_params,
)
from liverec.models.base import Ranked, ScoredItems, TrainingData, as_scored

# Requests search one vector at a time; faiss's OpenMP threads only add spin-up and contention
# there (measured on 2 cores under load: 1.5-6 ms per search with 2 threads, 0.25 ms with 1).
# Parallelism belongs to request workers, not to one search. OpenMP's thread count is per
# calling thread, so each thread that searches sets it once (a service's worker threads too:
# without it each got a spinning 2-thread team, measured 9.0 -> 4.9 ms CPU per recommendation).
_omp = threading.local()


def one_omp_thread() -> None:
    if not getattr(_omp, "set", False):
        faiss.omp_set_num_threads(1)
        _omp.set = True


one_omp_thread()

INDEX_KINDS = ("auto", "flat", "hnsw")
# "auto" is exact up to here and HNSW beyond: a flat scan reads n × d floats per query (measured
# on 2 cores at 512-d: 0.2 ms at 2,400 items, ~2 ms at 20k, ~20 ms at 200k), HNSW's cost grows
# with log n (benchmarks/scale.py reports its recall@100 against exact search at each size).
FLAT_MAX_ITEMS = 20_000
FLAT_BLOCK = 2048  # catalog rows every query of a request scans while they are in cache (4 MB at 512-d)


class ContentModel:
    """Items whose text vectors are nearest (inner product = cosine) to a query vector.

    The catalog changes without retraining: :meth:`add_items` upserts, :meth:`remove_items`
    deletes, and the next query sees it. Each item has an integer key in a
    ``faiss.IndexIDMap2``. ``"flat"`` (exact) replaces a vector by ``remove_ids`` + add under
    the same key. ``"hnsw"`` cannot remove, so an upserted or removed item's old key becomes a
    tombstone that searches over-fetch past and drop; refit now and then to reclaim them.

    Vectors are L2-normalised on the way in, so scores are cosines. faiss's OpenMP thread
    count is left alone: faiss 1.15 runs a single query single-threaded anyway (measured on
    2,400 × 512: 0.22 ms flat, 0.04 ms HNSW at efSearch 16, the same with 1 or 2 threads), and
    it is a process-wide setting this class has no business changing.

    Parameters
    ----------
    index
        ``"flat"`` (exact, O(n·d) per query), ``"hnsw"`` (approximate, sub-linear) or ``"auto"``
        (the default: flat up to :data:`FLAT_MAX_ITEMS` items at fit time, HNSW beyond; an index
        keeps its kind as the catalog grows until it is fitted again).
    hnsw_m
        HNSW graph degree.
    hnsw_ef_search
        HNSW candidate list size per query (raised to the number of results a query fetches).
    """

    name: ClassVar[str] = "content"

    def __init__(self, index: str = "auto", hnsw_m: int = 32, hnsw_ef_search: int = 128) -> None:
        self.index = index
        self.hnsw_m = hnsw_m
        self.hnsw_ef_search = hnsw_ef_search

    # -- building -------------------------------------------------------------------------

    def _validate(self) -> None:
        if self.index not in INDEX_KINDS:
            raise InvalidInputError(
                f"index {self.index!r} is not one of {', '.join(INDEX_KINDS)}", field="index", value=self.index
            )
        for field in ("hnsw_m", "hnsw_ef_search"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise InvalidInputError(f"{field} must be an integer >= 2, got {value!r}", field=field, value=value)

    def _new_index(self, dim: int, n: int) -> Any:
        if self.index == "flat" or (self.index == "auto" and n <= FLAT_MAX_ITEMS):
            return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        return faiss.IndexIDMap2(faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT))

    def _unit_rows(self, item_ids: Sequence[str], vectors: np.ndarray, dim: int | None) -> np.ndarray:
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(item_ids) or (dim is not None and vecs.shape[1] != dim):
            expected = f"({len(item_ids)}, {dim if dim is not None else 'd'})"
            raise InvalidInputError(
                f"vectors have shape {vecs.shape}, expected {expected}", field="vectors", value=vecs.shape
            )
        if len(set(item_ids)) != len(item_ids):
            raise InvalidInputError("item ids are not unique", field="item_ids")
        norms = np.linalg.norm(vecs, axis=1)
        bad = ~np.isfinite(norms) | (norms == 0)
        if bad.any():
            first = item_ids[int(np.flatnonzero(bad)[0])]
            raise InvalidInputError(f"item {first!r} has a zero or non-finite vector", field="vectors", value=first)
        return np.ascontiguousarray(vecs / norms[:, None], dtype=np.float32)

    def fit(self, data: TrainingData) -> Self:
        """Index ``data.item_vectors`` under ``data.item_ids``; events are not used."""
        self._validate()
        vectors = self._unit_rows(data.item_ids, data.item_vectors, None)
        index = self._new_index(vectors.shape[1], len(vectors))
        index.add_with_ids(vectors, np.arange(len(data.item_ids), dtype=np.int64))
        self._set_state(index, list(data.item_ids))
        return self

    def _set_state(self, index: Any, ids_by_key: list[str | None]) -> None:
        # Searches (faiss releases the GIL) run concurrently; upserts and removals exclude them.
        self._rw = ReadWriteLock()
        self.index_: Any = index
        self.dim_: int = int(index.d)
        # What the index is, whatever was asked ("auto" resolves at fit; a loaded index says itself).
        self.kind_: str = "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW) else "flat"
        # key -> item id; None marks a removed key (an HNSW tombstone, or a key freed in a flat index)
        self.ids_by_key_: list[str | None] = ids_by_key
        self.key_of_: dict[str, int] = {x: key for key, x in enumerate(ids_by_key) if x is not None}
        self.tombstones_: int = sum(x is None for x in ids_by_key) if self.kind_ == "hnsw" else 0
        self._layout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _flat_layout

    # -- live updates ---------------------------------------------------------------------

    def _drop_keys(self, keys: list[int]) -> None:
        if not keys:
            return
        if self.kind_ == "flat":
            self.index_.remove_ids(np.asarray(keys, dtype=np.int64))
        else:
            self.tombstones_ += len(keys)

    def add_items(self, item_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace items; they are searchable as soon as this returns."""
        require_fitted(self, "index_")
        item_ids = list(item_ids)
        if not item_ids:
            return
        vecs = self._unit_rows(item_ids, vectors, self.dim_)
        with self._rw.write():
            self._upsert(item_ids, vecs)
            self._layout = None

    def _upsert(self, item_ids: list[str], vecs: np.ndarray) -> None:
        existing = [self.key_of_[x] for x in item_ids if x in self.key_of_]
        self._drop_keys(existing)
        keys = []
        for item_id in item_ids:
            key = self.key_of_.get(item_id)
            if key is None or self.kind_ == "hnsw":
                if key is not None:
                    self.ids_by_key_[key] = None
                key = len(self.ids_by_key_)
                self.ids_by_key_.append(item_id)
                self.key_of_[item_id] = key
            keys.append(key)
        self.index_.add_with_ids(vecs, np.asarray(keys, dtype=np.int64))

    def remove_items(self, item_ids: Collection[str]) -> int:
        """Remove items from search; unknown ids are skipped. Returns how many were removed."""
        require_fitted(self, "index_")
        with self._rw.write():
            keys = [self.key_of_.pop(x) for x in set(item_ids) if x in self.key_of_]
            for key in keys:
                self.ids_by_key_[key] = None
            self._drop_keys(keys)
            self._layout = None
        return len(keys)

    def __contains__(self, item_id: object) -> bool:
        return item_id in getattr(self, "key_of_", {})

    def vector(self, item_id: str) -> np.ndarray | None:
        """The item's (unit) vector, or None if it is not in the index."""
        require_fitted(self, "index_")
        if item_id not in self.key_of_:
            return None
        return self.vectors_of([item_id])[0]

    def vectors_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(item_ids), d]``; a row of zeros for an item not in the index."""
        require_fitted(self, "index_")
        out = np.zeros((len(item_ids), self.dim_), dtype=np.float32)
        key_of = self.key_of_
        with self._rw.read():
            rows = [(j, key_of[x]) for j, x in enumerate(item_ids) if x in key_of]
            if rows:
                where, keys = (np.asarray(v, dtype=np.int64) for v in zip(*rows, strict=True))
                if self.kind_ == "flat":  # straight from the storage (a copy), without faiss's per-call overhead
                    storage, _, position = self._flat_layout()
                    out[where] = storage[position[keys]]
                else:
                    out[where] = self.index_.reconstruct_batch(keys)
        return out

    # -- queries --------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int = 10, exclude: Collection[str] = ()) -> ScoredItems:
        """Top ``k`` items by cosine to ``vector``, skipping ``exclude``; [] for a zero vector."""
        return self.search_many([vector], k, exclude)[0]

    def search_many(
        self, vectors: Sequence[np.ndarray], k: int = 10, exclude: Collection[str] = ()
    ) -> list[ScoredItems]:
        """:meth:`search` for several query vectors in one index pass (a request's interest and
        session queries share one scan of the catalog)."""
        return [as_scored(found) for found in self.search_ranked(vectors, k, exclude)]

    def search_ranked(
        self, vectors: Sequence[np.ndarray], k: int = 10, exclude: Collection[str] = ()
    ) -> list[Ranked]:
        """:meth:`search_many`, each result as an id list and a score array."""
        require_fitted(self, "index_")
        check_k(k)
        one_omp_thread()
        queries = np.zeros((len(vectors), self.dim_), dtype=np.float32)
        for row, vector in enumerate(vectors):
            query = np.asarray(vector, dtype=np.float32).reshape(-1)
            if query.shape != (self.dim_,) or not np.isfinite(query).all():
                raise InvalidInputError(
                    f"query vector must be {self.dim_} finite numbers, got shape {query.shape}",
                    field="vector",
                    value=query.shape,
                )
            norm = float(np.linalg.norm(query))
            if norm > 0:
                queries[row] = query / norm
        live = np.flatnonzero(queries.any(axis=1))  # a zero vector finds nothing
        out: list[Ranked] = [([], np.zeros(0)) for _ in vectors]
        if k == 0 or live.size == 0:
            return out
        with self._rw.read():
            banned = np.fromiter((self.key_of_[x] for x in exclude if x in self.key_of_), dtype=np.int64)
            if self.kind_ == "flat":
                found = self._flat_search(queries[live], k, banned)
            else:
                found = self._hnsw_search(queries[live], k, banned)
        for row, hits in zip(live.tolist(), found, strict=True):
            out[row] = hits
        return out

    def _flat_search(self, queries: np.ndarray, k: int, banned: np.ndarray) -> list[Ranked]:
        """Exact search: inner products over a zero-copy view of the flat index's storage, then a
        vectorised top k. Measured on the demo catalog (2,400 × 512, 2 queries, 200 results each):
        0.5 ms, against 1.0 ms for faiss's own search plus mapping its keys back to ids.
        """
        storage, names, position = self._flat_layout()
        if names.size == 0:
            return [([], np.zeros(0)) for _ in queries]
        # faiss's SIMD kernel, one query at a time: single-threaded whatever the process's BLAS
        # settings (numpy's product ran 2 OpenBLAS threads unless limited, 0.5 ms -> 2.2 ms on a
        # busy machine). A pass over the catalog is bound by memory, not arithmetic, so every query
        # scans one block of rows while it is in cache (a request has ~5 queries): 5 queries over
        # 10,000 × 512 took 3.9 ms instead of 7.8 one query at a time (benchmarks/scale.py, issue 16).
        n = len(names)
        scores = np.empty((len(queries), n), dtype=np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        for start in range(0, n, FLAT_BLOCK):
            m = min(FLAT_BLOCK, n - start)
            block = faiss.swig_ptr(storage[start : start + m])
            for q in range(len(queries)):
                faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]  # missing from faiss's stubs
                    faiss.swig_ptr(scores[q, start : start + m]), faiss.swig_ptr(queries[q]), block, self.dim_, m)
        if banned.size:
            scores[:, position[banned]] = -np.inf
        out = []
        for found in scores:
            best = top_k(found, k)
            out.append((names[best].tolist(), found[best].astype(np.float64)))
        return out

    def _flat_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The flat index's vectors (a view, rows by storage position), each position's item id (an
        object array, so a result's ids are one fancy index), and each key's position; cached until
        the index changes. Call with the read lock held."""
        cached = self._layout
        if cached is None:
            flat = faiss.downcast_index(self.index_.index)
            n = int(flat.ntotal)
            xb = flat.get_xb()  # type: ignore[attr-defined]  # missing from faiss's stubs
            storage = (faiss.rev_swig_ptr(xb, n * self.dim_).reshape(n, self.dim_) if n
                       else np.zeros((0, self.dim_), dtype=np.float32))
            keys = faiss.vector_to_array(self.index_.id_map).astype(np.int64)
            names = np.empty(n, dtype=object)
            names[:] = [self.ids_by_key_[key] for key in keys.tolist()]
            position = np.zeros(len(self.ids_by_key_), dtype=np.int64)
            position[keys] = np.arange(n)
            cached = self._layout = (storage, names, position)
        return cached

    def _hnsw_search(self, queries: np.ndarray, k: int, banned: np.ndarray) -> list[Ranked]:
        """faiss's HNSW search, over-fetching past banned keys and tombstones."""
        fetch = min(int(self.index_.ntotal), k + banned.size + self.tombstones_)
        if fetch <= 0:
            return [([], np.zeros(0)) for _ in queries]
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = max(self.hnsw_ef_search, fetch)
        scores, keys = self.index_.search(queries, fetch, params=params)
        skip = set(banned.tolist())
        out = []
        for query_keys, query_scores in zip(keys.tolist(), scores.tolist(), strict=True):
            hits: ScoredItems = []
            for key, score in zip(query_keys, query_scores, strict=True):
                item_id = self.ids_by_key_[key] if key >= 0 and key not in skip else None
                if item_id is not None:
                    hits.append((item_id, score))
                    if len(hits) == k:
                        break
            out.append(([i for i, _ in hits], np.array([x for _, x in hits], dtype=np.float64)))
        return out

    def history_vector(self, history: Sequence[tuple[str, float]]) -> np.ndarray | None:
        """Weighted (signed) mean of the history items' vectors; None if no history item is indexed."""
        require_fitted(self, "index_")
        with self._rw.read():
            keys, weights = aggregate_history(history, self.key_of_)
            total = float(np.abs(weights).sum())
            if total == 0:
                return None
            vecs = self.index_.reconstruct_batch(keys)
        return np.asarray((weights / total) @ vecs, dtype=np.float32)

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """Search with :meth:`history_vector`; history items are never returned."""
        require_fitted(self, "index_")
        check_k(k)
        query = self.history_vector(history)
        if query is None:
            return []
        banned = set(exclude)
        banned.update(item_id for item_id, _ in history)
        return self.search(query, k, banned)

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        vec = self.vector(item_id)
        check_k(k)
        return [] if vec is None else self.search(vec, k, {item_id})

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        require_fitted(self, "index_")
        path = Path(path)
        with self._rw.read():
            write_params(self, path)
            write_ids(path / "ids_by_key.json", self.ids_by_key_)
            faiss.write_index(self.index_, str(path / "index.faiss"))

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        model = cls(**read_params(cls, path))
        index = faiss.read_index(str(path / "index.faiss"))
        model._set_state(index, [None if x is None else str(x) for x in read_ids(path / "ids_by_key.json")])
        return model
