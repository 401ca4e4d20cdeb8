"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with exact fold-in for unseen users."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from liverec.core.errors import InvalidInputError
from liverec.models._common import (
    aggregate_history,
    check_k,
    exclusion_set,
    indices_of,
    read_ids,
    read_params,
    require_fitted,
    scored,
    top_k,
    write_ids,
    write_params,
)
from liverec.models.base import Ranked, ScoredItems, TrainingData, as_scored
from liverec.models.mips import INDEX_FILE, MaxInnerProduct


class ALSRecommender:
    """Matrix factorisation of the user-item matrix with confidence weights, trained by implicit.

    Confidence follows the paper, ``C = 1 + alpha · w`` with preference 1 for a positive summed
    weight ``w``. implicit 0.7.3 multiplies its input by its own ``alpha`` and uses the result
    *as* ``C`` (so a weight below ``1/alpha`` would get less than the unobserved confidence 1);
    we therefore hand it ``sign(w) · (1 + alpha · |w|)`` with its ``alpha`` left at 1 (a negative
    weight read as fold-in reads a dismissal, below). Training data holds positive sums only
    (:meth:`TrainingData.from_arrays`), as Spark's stage does, so training never sees one today.

    A user is never looked up: :meth:`user_vector` folds the user's history in at request time
    with the exact least-squares solve implicit's ``recalculate_user`` uses, so a user unseen at
    training time gets a vector after one event. A negative summed weight (a dismissal) enters
    as implicit's negative confidence does: preference 0 with confidence ``1 + alpha · |w|``.

    Items that had no positive interaction in training get zero factors: ALS can neither
    recommend them nor find items similar to them (content and fresh-item recalls cover them).

    Parameters
    ----------
    factors
        Latent dimensions.
    regularization
        L2 penalty ``λ`` on every factor vector.
    alpha
        Confidence gained per unit of event weight.
    iterations
        ALS sweeps (implicit's conjugate-gradient solver).
    seed
        Seeds implicit's random initial factors.
    threads
        Threads implicit trains with. BLAS is limited to one thread while training: implicit
        parallelises over users itself and warns (rightly) that nested BLAS threads slow it down.
    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 0,
        threads: int = 2,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.threads = threads

    # -- training -------------------------------------------------------------------------

    def _validate(self) -> None:
        for field in ("factors", "iterations", "threads"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{field} must be an integer >= 1, got {value!r}", field=field, value=value)
        for field in ("regularization", "alpha"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{field} must be a number >= 0, got {value!r}", field=field, value=value)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidInputError(f"seed must be an integer, got {self.seed!r}", field="seed", value=self.seed)

    def confidence_matrix(self, data: TrainingData) -> sp.csr_matrix:
        """The CSR ``[n_users, n_items]`` of confidences ``sign(w) · (1 + alpha · |w|)`` handed to
        implicit (a negative one is preference 0: ``1 + alpha · w`` would turn a mild dislike,
        ``-1/alpha < w < 0``, into a weak like)."""
        conf = data.user_items.tocsr().astype(np.float32, copy=True)
        conf.eliminate_zeros()
        conf.data = (np.sign(conf.data) * (1.0 + self.alpha * np.abs(conf.data))).astype(np.float32)
        return conf

    def fit(self, data: TrainingData) -> Self:
        """Train on ``data.user_items``; with no positive interaction at all every factor is zero."""
        self._validate()
        n_users, n_items = data.user_items.shape
        if n_items != len(data.item_ids):
            raise InvalidInputError(
                f"user_items has {n_items} columns but there are {len(data.item_ids)} item ids", field="user_items"
            )
        confidences = self.confidence_matrix(data)
        user_factors = np.zeros((n_users, self.factors), dtype=np.float32)
        item_factors = np.zeros((n_items, self.factors), dtype=np.float32)
        if confidences.nnz:
            # implicit is imported here so loading a saved model never needs it
            from implicit.cpu.als import AlternatingLeastSquares

            with threadpool_limits(limits=1, user_api="blas"):
                als = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=1.0,
                    iterations=self.iterations,
                    random_state=self.seed,
                    num_threads=self.threads,
                )
                als.fit(confidences, show_progress=False)
            # rows without data keep CG's leftovers of the random start: make them exactly zero
            item_seen = np.bincount(confidences.indices, minlength=n_items) > 0
            user_seen = np.diff(confidences.indptr) > 0
            item_factors[item_seen] = np.asarray(als.item_factors, dtype=np.float32)[item_seen]
            user_factors[user_seen] = np.asarray(als.user_factors, dtype=np.float32)[user_seen]
        self._set_state(list(data.item_ids), list(data.user_ids), item_factors, user_factors)
        return self

    def assign(self, item_ids: list[str], user_ids: list[str], item_factors: np.ndarray,
               user_factors: np.ndarray) -> Self:
        """Take factors trained elsewhere (the Spark engine's MLlib ALS): ``[items, factors]`` and
        ``[users, factors]``, rows in the order of the ids; fold-in and search work unchanged."""
        self._validate()
        if item_factors.shape != (len(item_ids), self.factors) or user_factors.shape != (len(user_ids), self.factors):
            raise InvalidInputError(f"factors {item_factors.shape} and {user_factors.shape} do not match "
                                    f"{len(item_ids)} items, {len(user_ids)} users and {self.factors} factors",
                                    field="factors")
        self._set_state(list(item_ids), list(user_ids), np.ascontiguousarray(item_factors, dtype=np.float32),
                        np.ascontiguousarray(user_factors, dtype=np.float32))
        return self

    def _set_state(
        self,
        item_ids: list[str],
        user_ids: list[str],
        item_factors: np.ndarray,
        user_factors: np.ndarray,
        index: Path | None = None,
    ) -> None:
        self.item_ids_: list[str] = item_ids
        self.item_index_: dict[str, int] = {item_id: i for i, item_id in enumerate(item_ids)}
        self.user_ids_: list[str] = user_ids
        self.item_factors_: np.ndarray = item_factors
        self.user_factors_: np.ndarray = user_factors
        y = item_factors.astype(np.float64)
        self.yty_: np.ndarray = y.T @ y
        norms = np.linalg.norm(item_factors, axis=1)
        self.item_known_: np.ndarray = norms > 0
        self._unit = item_factors / np.where(norms > 0, norms, 1.0)[:, None].astype(np.float32)
        # exact up to FLAT_MAX_ITEMS items, an inner-product graph beyond (liverec.models.mips)
        self.item_search_: MaxInnerProduct = MaxInnerProduct(item_factors, self.item_known_, index=index)

    # -- fold-in --------------------------------------------------------------------------

    def _normal_equations(self, history: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """``A = YᵀY + λI + Yᵤᵀ(Cᵤ − I)Yᵤ`` and ``b = Yᵤᵀ Cᵤ pᵤ`` for one history."""
        idx, weights = aggregate_history(history, self.item_index_)
        nonzero = weights != 0
        idx, weights = idx[nonzero], weights[nonzero]
        a = self.yty_ + self.regularization * np.eye(self.factors)
        if idx.size == 0:
            return a, np.zeros(self.factors)
        y_u = self.item_factors_[idx].astype(np.float64)
        c = 1.0 + self.alpha * np.abs(weights)
        a += (y_u.T * (c - 1.0)) @ y_u
        b = y_u[weights > 0].T @ c[weights > 0]
        return a, b

    def user_vector(self, history: Sequence[tuple[str, float]]) -> np.ndarray:
        """Fold a user in from their (item_id, weight) history: float32 ``[factors]``.

        Weights of repeated items are summed first, as in training. Costs
        O(n_u · f² + f³); the zero vector when no history item is known.
        """
        require_fitted(self, "item_factors_")
        a, b = self._normal_equations(history)
        if not b.any():
            # only dismissals (or nothing known): the solve would give 0 anyway, skip it
            return np.zeros(self.factors, dtype=np.float32)
        return np.linalg.solve(a, b).astype(np.float32)

    def user_vectors(self, histories: Sequence[Sequence[tuple[str, float]]]) -> np.ndarray:
        """:meth:`user_vector` for many users, solved as one batch: float32 ``[n, factors]``."""
        require_fitted(self, "item_factors_")
        if not histories:
            return np.zeros((0, self.factors), dtype=np.float32)
        systems = [self._normal_equations(h) for h in histories]
        a = np.stack([s[0] for s in systems])
        b = np.stack([s[1] for s in systems])
        return np.linalg.solve(a, b[:, :, None])[:, :, 0].astype(np.float32)

    # -- queries --------------------------------------------------------------------------

    def score(self, user_vec: np.ndarray, k: int = 10, exclude: Collection[str] = ()) -> ScoredItems:
        """Top ``k`` items by ``item_factors_ · user_vec`` (exact, or from an HNSW graph past
        FLAT_MAX_ITEMS items: see :mod:`liverec.models.mips`); items unseen in training never appear."""
        return as_scored(self.score_ranked(user_vec, k, exclude))

    def score_ranked(self, user_vec: np.ndarray, k: int = 10, exclude: Collection[str] = ()) -> Ranked:
        """:meth:`score` as an id list and a score array."""
        require_fitted(self, "item_factors_")
        check_k(k)
        vec = np.asarray(user_vec, dtype=np.float32)
        if vec.shape != (self.factors,):
            raise InvalidInputError(
                f"user vector has shape {vec.shape}, expected ({self.factors},)", field="user_vec", value=vec.shape
            )
        if not vec.any():
            return [], np.zeros(0)
        best, scores = self.item_search_.top(vec, k, indices_of(self.item_index_, exclusion_set(exclude)))
        ids = self.item_ids_
        return [ids[i] for i in best.tolist()], scores.astype(np.float64)

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """Fold ``history`` in, then :meth:`score`; history items are never returned."""
        vec = self.user_vector(history)
        banned = set(exclude)
        banned.update(item_id for item_id, _ in history)
        return self.score(vec, k, banned)

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        """Items by cosine similarity of their factors; [] for an unknown or never-trained item."""
        require_fitted(self, "item_factors_")
        check_k(k)
        i = self.item_index_.get(item_id)
        if i is None or not self.item_known_[i]:
            return []
        sims = self._unit @ self._unit[i]
        ranked = np.where(self.item_known_, sims, -np.inf)
        ranked[i] = -np.inf
        return scored(self.item_ids_, top_k(ranked, k), sims)

    # -- erasure --------------------------------------------------------------------------

    def known_users(self) -> list[str]:
        """Users with a factor row (kept for analysis only: serving folds users in from history)."""
        require_fitted(self, "item_factors_")
        return list(self.user_ids_)

    def forget_users(self, user_ids: Collection[str]) -> int:
        """Drop the factor rows and ids of ``user_ids``; how many were kept."""
        require_fitted(self, "item_factors_")
        erased = set(user_ids)
        keep = [u for u, user_id in enumerate(self.user_ids_) if user_id not in erased]
        removed = len(self.user_ids_) - len(keep)
        if removed:
            self.user_ids_ = [self.user_ids_[u] for u in keep]
            self.user_factors_ = self.user_factors_[keep]
        return removed

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        require_fitted(self, "item_factors_")
        path = Path(path)
        write_params(self, path)
        write_ids(path / "item_ids.json", self.item_ids_)
        write_ids(path / "user_ids.json", self.user_ids_)
        np.savez(path / "factors.npz", item_factors=self.item_factors_, user_factors=self.user_factors_)
        self.item_search_.save(path / INDEX_FILE)

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        model = cls(**read_params(cls, path))
        with np.load(path / "factors.npz", allow_pickle=False) as z:
            item_factors, user_factors = z["item_factors"], z["user_factors"]
        model._set_state(
            [str(x) for x in read_ids(path / "item_ids.json")],
            [str(x) for x in read_ids(path / "user_ids.json")],
            item_factors,
            user_factors,
            index=path / INDEX_FILE,
        )
        return model
