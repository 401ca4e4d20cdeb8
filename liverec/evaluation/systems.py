"""The systems the harness compares, behind one small interface.

Every system is fitted on training events, told about later events as they happen
(:meth:`EvalSystem.observe`, no retraining), and asked for a full-catalog top-K per user that
leaves out items the user already had (seen-item filtering is the same for every system in
the harness, see ``protocols``). Hyperparameters come from :func:`grid` and are chosen on
validation only.

* ``pop`` — most interacted-with items in training (RecBole's Pop).
* ``als`` — plain ``implicit`` ALS (Hu, Koren & Volinsky 2008) on the binary user-item matrix,
  users refolded (``recalculate_user``) from everything they did when asked.
* ``liverec`` — the engine itself: an in-memory store, the real encoder, ``train()`` with its
  own fusion tuning on a slice of training, live state updates for observed events.
* ``liverec-ABLATION`` — the engine with one part taken away (:func:`ablations`): ``no-text``,
  ``no-sequence``, ``one-interest``, ``linear`` (fusion instead of the learned ranker) and
  ``no-RECALL`` for each registered recall; tuned on validation like the full system.
* ``liverec-spark`` — the engine trained by the Spark engine (``local[2]`` unless ``--config``'s
  ``[engine.training]`` names a master): its NDCG against ``liverec``'s, paired, is the parity of
  the two training engines.

RecBole's SASRec and GRU4Rec (``sasrec``, ``gru4rec``; ``recbole_peers``) and RecTools' SASRec
configured as eSASRec (``rectools``; ``rectools_peers``) run in their own environments, not here.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType, Item

if TYPE_CHECKING:
    from liverec.core.settings import Settings

Progress = Any  # a callable (description, fraction) -> None, as in liverec.training


class EvalSystem(Protocol):
    name: str
    config: dict[str, Any]

    def fit(self, items: Sequence[Item], events: Sequence[Event]) -> None: ...

    def observe(self, events: Sequence[Event]) -> None: ...

    def recommend(
        self, user_ids: Sequence[str], k: int, *, now: Mapping[str, float] | None = None,
        only: Collection[str] | None = None,
    ) -> dict[str, list[str]]:
        """Top ``k`` item ids per user, best first, never an item the user already had.
        ``only`` restricts the ranking to those items (the cold-start protocol)."""
        ...


def item_events(events: Iterable[Event]) -> Iterable[Event]:
    """Events that name an item (every type but search)."""
    return (e for e in events if e.item_id is not None and e.type is not EventType.SEARCH)


class _Interactions:
    """Who had which item (training plus observed events), as index sets and a CSR matrix."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.item_ids = [i.item_id for i in items]
        self.item_index = {x: n for n, x in enumerate(self.item_ids)}
        self.user_index: dict[str, int] = {}
        self.had: list[set[int]] = []

    def add(self, events: Iterable[Event]) -> None:
        for e in item_events(events):
            col = self.item_index.get(e.item_id or "")
            if col is None:
                continue
            row = self.user_index.setdefault(e.user_id, len(self.had))
            if row == len(self.had):
                self.had.append(set())
            self.had[row].add(col)

    def matrix(self, rows: Sequence[int] | None = None) -> sp.csr_matrix:
        """Binary CSR of the given user rows (default: all), one column per catalog item."""
        rows = range(len(self.had)) if rows is None else rows
        indptr, indices = [0], []
        for r in rows:
            cols = sorted(self.had[r]) if r >= 0 else []
            indices.extend(cols)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(self.item_ids)))

    def mask(self, scores: np.ndarray, user_id: str, only: np.ndarray | None) -> np.ndarray:
        """``scores`` with the user's items (and items outside ``only``) set to −inf."""
        out = scores.astype(np.float64, copy=True)
        row = self.user_index.get(user_id)
        if row is not None and self.had[row]:
            out[list(self.had[row])] = -np.inf
        if only is not None:
            out[~only] = -np.inf
        return out

    def allowed(self, only: Collection[str] | None) -> np.ndarray | None:
        if only is None:
            return None
        mask = np.zeros(len(self.item_ids), dtype=bool)
        mask[[self.item_index[x] for x in only if x in self.item_index]] = True
        return mask

    def top(self, scores: np.ndarray, k: int) -> list[str]:
        finite = np.flatnonzero(np.isfinite(scores))
        if finite.size == 0:
            return []
        best = finite[np.argsort(-scores[finite], kind="stable")[:k]]
        return [self.item_ids[i] for i in best]


class Popularity:
    """Items by how many training users had them (RecBole's Pop); ties by catalog order."""

    name = "pop"

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def fit(self, items: Sequence[Item], events: Sequence[Event]) -> None:
        self.interactions = _Interactions(items)
        self.interactions.add(events)
        counts = np.zeros(len(items))
        for had in self.interactions.had:
            counts[list(had)] += 1
        self.counts_ = counts

    def observe(self, events: Sequence[Event]) -> None:
        self.interactions.add(events)  # for seen-item filtering; the counts stay as trained

    def recommend(self, user_ids: Sequence[str], k: int, *, now: Mapping[str, float] | None = None,
                  only: Collection[str] | None = None) -> dict[str, list[str]]:
        allowed = self.interactions.allowed(only)
        return {u: self.interactions.top(self.interactions.mask(self.counts_, u, allowed), k) for u in user_ids}


class ImplicitALS:
    """Plain ``implicit`` ALS on the binary user-item matrix, as a practitioner would run it.

    A user's factors are recomputed from everything they had (training plus observed events)
    with implicit's own ``recalculate_user``, so a validation event counts at test time for ALS
    as it does for liverec and SASRec.
    """

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0) -> None:
        self.config: dict[str, Any] = {"factors": factors, "regularization": regularization, "alpha": alpha,
                       "iterations": iterations, "seed": seed}

    def fit(self, items: Sequence[Item], events: Sequence[Event]) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.interactions = _Interactions(items)
        self.interactions.add(events)
        with threadpool_limits(limits=1, user_api="blas"):  # implicit parallelises itself
            self.model_ = AlternatingLeastSquares(
                factors=self.config["factors"], regularization=self.config["regularization"],
                alpha=self.config["alpha"], iterations=self.config["iterations"],
                random_state=self.config["seed"], num_threads=2,
            )
            self.model_.fit(self.interactions.matrix(), show_progress=False)

    def observe(self, events: Sequence[Event]) -> None:
        self.interactions.add(events)

    def recommend(self, user_ids: Sequence[str], k: int, *, now: Mapping[str, float] | None = None,
                  only: Collection[str] | None = None) -> dict[str, list[str]]:
        allowed = self.interactions.allowed(only)
        rows = [self.interactions.user_index.get(u, -1) for u in user_ids]
        history = self.interactions.matrix(rows)
        out: dict[str, list[str]] = {}
        with threadpool_limits(limits=1, user_api="blas"):
            factors = np.asarray(self.model_.recalculate_user(np.arange(len(user_ids)), history))
        scores = factors.reshape(len(user_ids), -1) @ np.asarray(self.model_.item_factors).T
        for n, user in enumerate(user_ids):
            if history.indptr[n + 1] == history.indptr[n]:
                out[user] = []  # nothing known about this user: ALS has no opinion
                continue
            out[user] = self.interactions.top(self.interactions.mask(scores[n], user, allowed), k)
        return out


class Liverec:
    """The liverec engine under test, on an in-memory store with its default models."""

    name = "liverec"

    def __init__(self, diversity: float = 0.0, encoder: str = "use", ratings: str = "signed",
                 validation_users: int = 2000, seed: int = 0, settings: Mapping[str, Any] | None = None,
                 exposure: float = 0.0, interest_similarity: float | None = None) -> None:
        if ratings not in ("signed", "positive"):
            raise InvalidInputError(f"ratings {ratings!r} is not one of signed, positive", field="ratings")
        self.config: dict[str, Any] = {"diversity": diversity, "exposure": exposure, "encoder": encoder,
                                       "ratings": ratings, "validation_users": validation_users, "seed": seed}
        if interest_similarity is not None:
            self.config["interest_similarity"] = interest_similarity
        self.settings = dict(settings or {})  # engine settings beyond the defaults (an ablation's)

    def _events(self, events: Iterable[Event]) -> list[Event]:
        if self.config["ratings"] == "signed":
            return list(events)
        # "positive": a rating says only that the user watched it (what the peers see).
        return [Event.trusted(e.event_id, e.user_id, EventType.VIEW, e.item_id, None, None, e.timestamp, e.session_id)
                if e.type is EventType.RATE else e for e in events]

    def engine_settings(self, model_dir: str) -> Settings:
        """The engine's settings: this configuration's (an interest threshold given here is pinned),
        then the engine settings given (``--config``, an ablation's), which win over it."""
        from liverec.core.settings import Settings

        # A data set is replayed in its own time (MovieLens from 1997, synthetic clocks from 0): the
        # ingest bounds on event times guard a live service's clients, not a replay.
        replay: dict[str, Any] = {"timestamp_floor": 0.0, "timestamp_future_skew": math.inf}
        if "interest_similarity" in self.config:  # pinned: training does not choose it
            replay.update(interest_similarity=self.config["interest_similarity"], interest_similarities=())
        own = {name: self.config[name] for name in ("encoder", "validation_users", "seed")}
        return Settings(model_dir=model_dir, **{**own, **replay, **self.settings})

    def fit(self, items: Sequence[Item], events: Sequence[Event]) -> None:
        from liverec.engine import Engine
        from liverec.storage import open_store

        self._tmp = tempfile.TemporaryDirectory(prefix="liverec-eval-")
        self.engine = Engine(open_store("memory://"), self.engine_settings(self._tmp.name))
        self.engine.ingest_items(items)
        batch = self._events(events)
        for start in range(0, len(batch), 10_000):
            self.engine.ingest_events(batch[start : start + 10_000])
        self.trained = self.engine.train()
        self.catalog = frozenset(i.item_id for i in items)

    def training_notes(self) -> list[str]:
        """What the engine's own training chose on its hold-out, which the harness's grid does not show."""
        report = self.trained
        if report.interest_similarity is None:
            return []
        scores = report.validation.get("ndcg@10_by_interest_similarity")
        tried = f" (hold-out NDCG@10 by threshold: {', '.join(f'{t}: {v:.4f}' for t, v in scores.items())})" \
            if scores else " (pinned)"
        notes = [f"training chose interest_similarity {report.interest_similarity:g}{tried}, "
                 f"scorer {report.scorer} (validation NDCG@10 {report.validation.get('ndcg@10', 0.0):.4f})"]
        # A model stopped by its time budget scores what the machine's speed (and its neighbours) let it learn:
        # the note says so, since the same run on a busier machine ranks differently.
        sequence = report.models.get("sequential", {})
        if sequence:
            stopped = "stopped by its time budget" if sequence.get("stopped_by_time") else "stopped by validation"
            members = sequence.get("members", 1)
            ensemble = (f"; {members} networks from as many seeds (ensemble validation NDCG@10 "
                        f"{sequence.get('ensemble_ndcg@10')})" if members > 1 else "; 1 network")
            notes.append(f"sequence model: {sequence.get('seconds')} s; the first network {sequence.get('epochs_run')} "
                         f"passes, {stopped}, best pass {sequence.get('best_epoch')} (validation NDCG@10 "
                         f"{sequence.get('validation_ndcg@10')}){ensemble}; then {sequence.get('resumed_passes', 0)} "
                         f"passes on all events in {sequence.get('resumed_seconds', 0)} s")
        return notes

    def add_items(self, items: Sequence[Item]) -> None:
        """Items that arrive after training (the cold-start protocol): live at once, untrained."""
        self.engine.ingest_items(items)
        self.catalog = self.catalog | {i.item_id for i in items}

    def observe(self, events: Sequence[Event]) -> None:
        batch = self._events(events)
        for start in range(0, len(batch), 10_000):
            self.engine.ingest_events(batch[start : start + 10_000])

    def recommend(self, user_ids: Sequence[str], k: int, *, now: Mapping[str, float] | None = None,
                  only: Collection[str] | None = None,
                  exclude: Mapping[str, Collection[str]] | None = None) -> dict[str, list[str]]:
        """``exclude``: items to leave out per user, beyond those the engine knows they had."""
        left_out = sorted(self.catalog - set(only)) if only is not None else []
        out = {}
        for user in user_ids:
            extra = sorted(exclude.get(user, ())) if exclude is not None else []
            filters: dict[str, Any] = {"exclude_seen": True}
            if left_out or extra:
                filters["exclude_items"] = left_out + extra
            when = None if now is None else now.get(user)
            recs = self.engine.recommend(user, k, filters, diversity=self.config["diversity"], now=when,
                                         exposure=self.config["exposure"])
            out[user] = [r.item_id for r in recs]
        return out

    def close(self) -> None:
        self.engine.close()
        self._tmp.cleanup()


SYSTEMS = ("liverec", "sasrec", "gru4rec", "rectools", "als", "pop")
RECBOLE_MODELS = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
RECTOOLS_MODELS = {"rectools": "SASRec"}

# MMR's λ values validation tries: steps of 0.1, so the one-standard-error rule can stop where
# diversity starts to cost accuracy (on Scientific that lay between 0.3, free, and 0.5, −4%).
LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
# Small grids, chosen on validation NDCG@10; the first entry is the default.
GRIDS: dict[str, list[dict[str, Any]]] = {
    "pop": [{}],
    "als": [dict(zip(("factors", "regularization", "alpha"), values, strict=True))
            for values in itertools.product((64, 128), (0.01, 0.1), (1.0, 10.0))],
    # MMR's λ costs no refit; run_system takes the most diverse within one standard error of the best.
    # The interest threshold is not here: the engine's training chooses it on its own hold-out
    # (Settings.interest_similarities), as it does for any user, without a fit per value.
    "liverec": [{"diversity": d, "ratings": r} for r in ("signed", "positive") for d in LAMBDAS],
}


def ablations() -> dict[str, dict[str, Any]]:
    """liverec with one part taken away, by name: the engine settings each changes.

    ``no-text`` drops what reads item texts (the text recalls and the sequence model's text input);
    ``no-RECALL`` turns one registered recall off, whatever registered it.
    """
    from liverec.ranking.recalls import recall_names

    out: dict[str, dict[str, Any]] = {
        "no-text": {"models": {"sequential": {"text": False}}, "recalls_off": ("content", "session", "interests")},
        "no-sequence": {"models_off": ("sequential",)},
        "one-interest": {"interests": 1, "interest_similarities": ()},  # one interest: no threshold to choose
        "linear": {"scorer": {"kind": "linear"}},
    }
    out.update({f"no-{name}": {"recalls_off": (name,)} for name in recall_names()})
    return out


def variants(engine: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """liverec-VARIANT systems, by name: every ablation, and ``spark`` (the Spark training engine,
    on ``engine``'s ``training`` master and conf when it gives them): the settings each changes."""
    training = dict((engine or {}).get("training") or {})
    spark = {"training": {"master": "local[2]", **training, "engine": "spark"}}
    return {**ablations(), "spark": spark}


def grid_of(name: str) -> list[dict[str, Any]]:
    """The validation grid of system ``name`` (an ablation of liverec shares liverec's)."""
    return GRIDS["liverec" if name.startswith("liverec-") else name]


def check_system(name: str) -> None:
    """Refuse a system the harness cannot build or run (naming what it can)."""
    if name in SYSTEMS or (name.startswith("liverec-") and name.removeprefix("liverec-") in variants()):
        return
    known = [*SYSTEMS, *(f"liverec-{a}" for a in variants())]
    raise InvalidInputError(f"system {name!r} is not one of {', '.join(known)}", field="systems", value=name)


def build(name: str, config: Mapping[str, Any], seed: int = 0, engine: Mapping[str, Any] | None = None) -> EvalSystem:
    """A fresh system ``name`` with ``config`` (one entry of its grid, :func:`grid_of`); a liverec
    system's engine also gets the settings ``engine`` (``liverec evaluate --config``), a variant's on top."""
    if name == "pop":
        return Popularity()
    if name == "als":
        return ImplicitALS(seed=seed, **config)
    if name == "liverec":
        return Liverec(seed=seed, settings=engine, **config)
    check_system(name)
    if name.startswith("liverec-"):
        return Liverec(seed=seed, settings={**(engine or {}), **variants(engine)[name.removeprefix("liverec-")]},
                       **config)
    raise InvalidInputError(f"system {name!r} is not built in this process", field="systems", value=name)
