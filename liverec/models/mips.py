"""The rows of a fixed table with the largest inner product with a query (maximum inner-product search).

ALS and the sequence model score a user by ``table @ user_vector`` over every item: one pass over
n × d floats per request, which at 1M items × 64 factors is 256 MB read (~25 ms on this machine),
more than a whole recommendation's budget. Up to :data:`~liverec.models.content.FLAT_MAX_ITEMS`
rows the pass stays (exact, and cheaper than a graph); beyond, an HNSW graph answers it.

The graph is built on the inner product itself (ip-NSW, Morozov & Babenko, NeurIPS 2018), not on
L2 after the usual reduction (one more coordinate ``sqrt(M² − |x|²)`` so that every row has one
length, Bachrach et al. 2014): on rows of lognormal lengths, 30,000 × 32, the reduction's graph
found 0.64 (efSearch 128) and 0.83 (256) of the exact top 100, the inner-product graph 0.96 and
0.99 at the same cost. The graph is built with efConstruction 200 (faiss's default is 40): on
the sequence model's 100,000 × 64 item table of the synthetic world, the top 100 found at
efSearch 256 went from 0.59 to 0.99 for 5.8 s of build instead of 2.2 (2 threads). ALS factors,
whose lengths spread over a factor of 6, are harder: 0.92 at M 32 / efSearch 256, 0.977 at the
defaults here (M 48, efSearch 512; ~0.5 ms a search at 100k items), where an IVF index with 1,024
lists found 0.80-0.87. Hits are re-scored exactly, so a score never carries the graph's error.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.models._common import top_k
from liverec.models.content import FLAT_MAX_ITEMS, INDEX_KINDS, one_omp_thread

__all__ = ["INDEX_FILE", "MaxInnerProduct"]

INDEX_FILE = "ip-index.faiss"  # a model's saved graph, beside its weights (none for an exact search)


class MaxInnerProduct:
    """Top-k rows of ``table`` by inner product, never a row that is not ``usable`` or is banned.

    Parameters
    ----------
    table
        The rows (float32; kept as given, not copied).
    usable
        A boolean mask of the rows that may be returned (None: all).
    kind
        ``"flat"`` (exact), ``"hnsw"`` or ``"auto"`` (flat up to ``FLAT_MAX_ITEMS`` rows).
    index
        A graph :meth:`save` wrote for this very table, instead of building one.
    """

    def __init__(
        self,
        table: np.ndarray,
        usable: np.ndarray | None = None,
        *,
        kind: str = "auto",
        hnsw_m: int = 48,
        hnsw_ef_search: int = 512,
        hnsw_ef_construction: int = 200,
        index: Path | None = None,
    ) -> None:
        if kind not in INDEX_KINDS:
            raise InvalidInputError(f"index must be one of {', '.join(INDEX_KINDS)}, got {kind!r}",
                                    field="index", value=kind)
        self.table = table
        self.usable = usable
        self.ef_search = hnsw_ef_search
        n = table.shape[0]
        self.kind = "hnsw" if kind == "hnsw" or (kind == "auto" and n > FLAT_MAX_ITEMS) else "flat"
        self._graph: faiss.Index | None = None
        if self.kind == "hnsw":
            # The graph holds only usable rows; key k is row _rows[k].
            self._rows = np.flatnonzero(usable) if usable is not None else np.arange(n)
            if index is not None and index.exists():
                graph = faiss.read_index(str(index))
                if graph.ntotal != self._rows.size or graph.d != table.shape[1]:
                    raise InvalidInputError(f"{index} was built for another table", field="index", value=str(index))
                self._graph = graph
            else:
                self._graph = self._build(hnsw_m, hnsw_ef_construction)

    def _build(self, m: int, ef_construction: int) -> faiss.Index:
        graph = faiss.IndexHNSWFlat(self.table.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ef_construction
        graph.add(np.ascontiguousarray(self.table[self._rows], dtype=np.float32))
        return graph

    def save(self, path: Path) -> None:
        """Write the graph (nothing for an exact search) for ``index=`` of a later load."""
        if self._graph is not None:
            faiss.write_index(self._graph, str(path))

    def top(self, query: np.ndarray, k: int, banned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the best ``k`` (best first) and their exact scores (float32).

        ``banned`` are row indices never returned. Fewer than ``k`` come back only when fewer
        rows qualify, or, from the graph, when more than its candidate list were banned.
        """
        vector = np.asarray(query, dtype=np.float32)
        if self._graph is None:
            scores = self.table @ vector
            if self.usable is not None:
                scores = np.where(self.usable, scores, np.float32(-np.inf))
            if banned.size:
                scores[banned] = -np.inf
            best = top_k(scores, k)
            return best, scores[best]
        one_omp_thread()
        fetch = min(self._rows.size, k + banned.size)
        if fetch <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = max(self.ef_search, fetch)
        _, keys = self._graph.search(vector[None, :], fetch, params=params)
        rows = self._rows[keys[0][keys[0] >= 0]]
        if banned.size:
            rows = rows[~np.isin(rows, banned)]
        scores = self.table[rows] @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order], scores[order]
