"""Engine settings: one validated dataclass, built from keyword arguments.

Unknown keys are errors, so a misspelt setting never silently does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from liverec.core.errors import InvalidInputError
from liverec.core.params import check_share
from liverec.core.types import DEFAULT_EVENT_WEIGHTS, EventType, parse_event_type, parse_timestamp


@dataclass(frozen=True)
class Settings:
    """How an :class:`~liverec.engine.Engine` behaves.

    Parameters
    ----------
    encoder
        Text encoder by name: ``use`` (multilingual USE, default), ``e5`` (multilingual-e5-small)
        or ``minilm`` (English all-MiniLM-L6-v2).
    event_weights
        Strength of each event type; dismiss is negative.
    short_term_half_life
        Seconds after which an event counts half in the short-term interest vector.
    tag_half_life
        Seconds after which an event counts half in the interest tags.
    recent_length
        How many recent items a user's state keeps (L).
    max_tags
        Interest tags a user's state keeps (the weakest are pruned past twice this).
    model_dir
        Where model snapshots are written; default: beside the store (``<db>.models``) or a
        temporary directory for ``memory://``.
    encoder_threads
        Threads the text encoder may use.
    enrich_workers
        Processes that extract the keywords of a batch of 1,000 items or more (an import of a
        catalog): 0 (the default) starts one per core, 1 keeps the work in this process. Smaller
        batches (a shop editing an item) always stay in this process.
    models
        Hyperparameters per model, a ``[models.NAME]`` table each (``{"als": {"factors": 128}}``);
        the names and parameters are the models' own (their ``__init__`` signatures), checked
        when the engine opens. A model not named keeps its defaults.
    scorer
        How candidates are scored: ``{"kind": "gbdt"}`` (linear fusion, then boosted trees over
        its best candidates when validation says they help) or ``{"kind": "linear"}`` (recall
        weights tuned on validation), with the kind's parameters.
    seed
        Seed of training's validation sample and of every model with a ``seed`` parameter not
        set in ``models``.
    validation_users
        Users whose next event is held out to tune the scorer at each training.
    state_store
        Where live user states are kept, by URL (``memory://``: this process; see
        :func:`liverec.realtime.open_state_store`).
    models_off
        Registered models not to train or serve (``["sequential"]``): their recalls and features
        fall silent, the rest of the pipeline is unchanged. For ablations and for a model too slow
        for a machine.
    recalls_off
        Registered recalls not to run (their features are zero for every candidate).
    interests
        How many interests a user's state keeps apart (0: none), each a decayed vector with tags.
    interest_similarity
        The cosine an action's text needs with an interest to join it rather than start another,
        before training has chosen one (see ``interest_similarities``). 0.3: with the default
        encoder, on the demo world, an item joins an interest of three of its category 88% of the
        time and one of another category 0.6% (0.5 split categories: 62% of such items started an
        interest of their own, and the interests ran out).
    interest_similarities
        The thresholds training chooses ``interest_similarity`` among, by its own hold-out's
        NDCG@10 (each builds the validation users' states and tunes the scorer once more; the
        models are fitted once). The best one depends on the catalog: on Amazon Scientific the
        hold-out scored NDCG@10 0.0851 at 0.3 and 0.0933 at 0.5. Empty keeps ``interest_similarity``.
    interest_half_life
        Seconds after which an action counts half in its interest.
    similar_min_similarity
        The cosine an item's text needs with another's for ``similar_items`` to list it as
        described like it: fewer results rather than unrelated ones (issue 13). Items viewed
        alongside it (co-visitation) stay whatever their texts. The default, 0.25, is read off the
        demo world with the default encoder: from about 0.23 a pair of items is more likely of one
        category than of two, and 99% of pairs of different categories lie below 0.25 while an
        item's 40 nearest same-category neighbours almost never do (0.04%). Other encoders have
        other scales: check the threshold when you change ``encoder``.
    timestamp_future_skew
        Seconds an event's ``timestamp`` may lie ahead of the wall clock when it is ingested (a
        client's clock running fast); later is refused. ``inf`` turns the bound off. The bound is
        the wall clock's, not the log's: a replay of years-old data passes it.
    training
        Where training's batch stages run, a ``[training]`` table: ``{"engine": "local"}`` (this
        process, the default) or ``{"engine": "spark", "master": "local[2]", "conf": {...},
        "source": "auto"}`` (Apache Spark; see :mod:`liverec.training.spark` and docs/deployment.md).
        Checked when the engine opens.
    cleaning
        What ingest keeps from learning, a ``[cleaning]`` table: duplicates, robotic users, spam
        reviews (:class:`liverec.cleaning.CleaningSettings`; ``{"enabled": false}`` learns from
        every event). Checked when the engine opens.
    exposure
        Exposure control, in [0, 1]: how strongly each list's mix of head, middle and tail items
        (by what trends now) is drawn to the mix of its user's recent actions
        (:mod:`liverec.ranking.exposure`). 0 (the default) is off; choose it on validation
        (``liverec evaluate`` reports the accuracy it costs).
    timestamp_floor
        The earliest ``timestamp`` an event may carry: seconds since the epoch or an ISO-8601
        time (default 1990-01-01, before any research data set's first event); 0 turns it off.
    """

    encoder: str = "use"
    event_weights: Mapping[EventType, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    short_term_half_life: float = 6 * 3600.0
    tag_half_life: float = 3 * 86400.0
    recent_length: int = 50
    max_tags: int = 64
    model_dir: str | None = None
    encoder_threads: int = 2
    enrich_workers: int = 0
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    scorer: Mapping[str, Any] = field(default_factory=lambda: {"kind": "gbdt"})
    seed: int = 0
    validation_users: int = 2000
    state_store: str = "memory://"
    models_off: tuple[str, ...] = ()
    recalls_off: tuple[str, ...] = ()
    interests: int = 4
    interest_similarity: float = 0.3
    interest_similarities: tuple[float, ...] = (0.3, 0.4, 0.5)
    interest_half_life: float = 14 * 86400.0
    similar_min_similarity: float = 0.25
    # One event dated 1e12 (a millisecond timestamp read as seconds) was once every user's "now"
    # (issue 12): a day of skew admits any real clock, and nothing the web sends predates 1990.
    timestamp_future_skew: float = 86400.0
    timestamp_floor: float = 631_152_000.0  # 1990-01-01T00:00:00Z
    training: Mapping[str, Any] = field(default_factory=dict)
    cleaning: Mapping[str, Any] = field(default_factory=dict)
    exposure: float = 0.0

    def __post_init__(self) -> None:
        weights = dict(DEFAULT_EVENT_WEIGHTS)
        for key, value in dict(self.event_weights).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(
                    f"event weight for {key!r} must be a number, got {value!r}", field="event_weights", value=value
                )
            weights[parse_event_type(key)] = float(value)
        object.__setattr__(self, "event_weights", weights)
        if isinstance(self.interests, bool) or not isinstance(self.interests, int) or self.interests < 0:
            raise InvalidInputError("interests must be an integer >= 0", field="interests", value=self.interests)
        object.__setattr__(self, "exposure", check_share(self.exposure, "exposure"))
        for name in ("interest_similarity", "similar_min_similarity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be a cosine between -1 and 1", field=name, value=value)
        chosen = self.interest_similarities
        if not isinstance(chosen, list | tuple) or not all(
                not isinstance(v, bool) and isinstance(v, int | float) and -1.0 <= v <= 1.0 for v in chosen):
            raise InvalidInputError("interest_similarities must be a list of cosines between -1 and 1",
                                    field="interest_similarities", value=chosen)
        object.__setattr__(self, "interest_similarities", tuple(sorted({float(v) for v in chosen})))
        for name in ("short_term_half_life", "tag_half_life", "interest_half_life"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"{name} must be positive", field=name, value=getattr(self, name))
        skew = self.timestamp_future_skew
        if isinstance(skew, bool) or not isinstance(skew, int | float) or math.isnan(skew) or skew < 0:
            raise InvalidInputError(f"timestamp_future_skew must be seconds >= 0 (inf: no bound), got {skew!r}",
                                    field="timestamp_future_skew", value=skew)
        object.__setattr__(self, "timestamp_future_skew", float(skew))
        object.__setattr__(self, "timestamp_floor", parse_timestamp(self.timestamp_floor, "timestamp_floor"))
        for name in ("recent_length", "max_tags", "encoder_threads", "validation_users"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer", field=name, value=value)
        if isinstance(self.enrich_workers, bool) or not isinstance(self.enrich_workers, int) or self.enrich_workers < 0:
            raise InvalidInputError("enrich_workers must be an integer >= 0 (0: one per core)", field="enrich_workers",
                                    value=self.enrich_workers)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidInputError("seed must be an integer", field="seed", value=self.seed)
        for name in ("models_off", "recalls_off"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise InvalidInputError(f"{name} must be a list of names", field=name, value=value)
            object.__setattr__(self, name, tuple(value))
        for name in ("models", "scorer", "training", "cleaning"):
            if not isinstance(getattr(self, name), Mapping):
                raise InvalidInputError(f"{name} must be a table", field=name, value=getattr(self, name))
        # Which models and scorers exist is known only above core (their registries): the engine
        # checks ``models``, ``models_off``, ``recalls_off`` and ``scorer`` against them when it opens.

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        return from_table(cls, values)


S = TypeVar("S")


def from_table(cls: type[S], values: Any, table: str | None = None) -> S:
    """``cls(**values)`` for a dataclass of settings, refusing a key it has no field for: a
    misspelt setting never silently does nothing. ``table`` names the settings file's table."""
    where = f"{table} " if table else ""
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"[{table}] must be a table", field=table, value=values)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(f"unknown {where}setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                                field=f"{table}.{unknown[0]}" if table else unknown[0])
    return cls(**values)
