"""Evaluation protocols: how events are split, what each system sees, and what it is asked.

Every protocol builds a :class:`Plan` — training events, a validation stage and a test stage
— and :func:`run_system` runs any system through it the same way:

1. for each configuration in the system's grid: fit on the plan's training events, rank for
   the validation users, score NDCG@10;
2. keep the best configuration (ties keep the earlier, i.e. default, one);
3. move it to the test stage — either by *observing* the validation events without
   retraining (leave-one-out: a test user's history is their training events plus their
   validation event, as in RecBole) or by refitting on everything before the test cut
   (temporal) — and rank for the test users **once**.

Ranking is over the full catalog (or the protocol's candidate set), and every system leaves
out items the user already had, so the systems differ only in their ranking.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType, Item
from liverec.datasets.base import Dataset
from liverec.evaluation.metrics import (
    KS,
    catalog_coverage,
    category_exposure,
    exposure_gini,
    head_items,
    intra_list_diversity,
    long_tail_share,
    metric_table,
    miscalibration,
    novelty,
    popularity_groups,
    popularity_miscalibration,
)
from liverec.evaluation.results import SystemResult
from liverec.evaluation.splits import LeaveOneOut, leave_one_out
from liverec.evaluation.systems import LAMBDAS, EvalSystem, build, grid_of, item_events

Progress = Callable[[str, int, int], None]  # (task, done, total)
SERVE_KEYS = frozenset({"diversity", "exposure"})  # configuration that changes serving only: no refit needed
CHUNK = 500
DIVERSITY_SWEEP = (*LAMBDAS, 0.7)  # MMR λ values the trade-off curve is drawn at: every one validation tries
# The exposure control's strengths tried on validation once the rest is chosen (the strongest whose
# NDCG@10 validation cannot tell from the best is taken), and those its trade-off curve is drawn at.
EXPOSURE_GRID = (0.0, 0.1, 0.2, 0.3, 0.5)
EXPOSURE_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
CATEGORIES_SHOWN = 12  # the catalog's largest categories a report lists exposure for


def _quiet(task: str, done: int, total: int) -> None:
    pass


@dataclass
class Stage:
    """Users to rank, the items each truly went on to have, and the moment of asking."""

    users: list[str]
    relevant: dict[str, set[str]]
    now: dict[str, float]
    history_length: dict[str, int]
    only: frozenset[str] | None = None  # candidate items (cold start); None: the whole catalog


@dataclass
class Plan:
    protocol: str
    train: list[Event]
    valid: Stage
    test: Stage
    observe: list[Event] | None = None  # shown to the chosen system between validation and test
    refit: list[Event] | None = None  # or: the chosen system is refitted on these for the test
    late_items: list[Item] = field(default_factory=list)  # cold start: added after training
    notes: list[str] = field(default_factory=list)
    split: LeaveOneOut | None = None  # leave-one-out: what the RecBole peers are given, as files


def _history_lengths(events: Sequence[Event], users: Collection[str]) -> dict[str, int]:
    wanted = set(users)
    out = dict.fromkeys(wanted, 0)
    for e in item_events(events):
        if e.user_id in wanted:
            out[e.user_id] += 1
    return out


def loo_plan(ds: Dataset) -> Plan:
    """Chronological leave-one-out with full ranking (the data set's own split when it ships one)."""
    split = leave_one_out(ds.events, ds.split)
    valid_users, test_users = sorted(split.valid), sorted(split.test)
    lengths = _history_lengths(split.train, test_users)
    valid = Stage(valid_users, {u: {split.valid[u].item_id or ""} for u in valid_users},
                  {u: split.valid[u].timestamp for u in valid_users}, lengths)
    test = Stage(test_users, {u: {split.test[u].item_id or ""} for u in test_users},
                 {u: split.test[u].timestamp for u in test_users}, {u: lengths[u] + 1 for u in test_users})
    observe = sorted(split.valid.values(), key=lambda e: e.timestamp)
    notes = [f"leave-one-out over {len(test_users)} users; " +
             ("the data set's own split (checked against the events)" if ds.split else "last item event = test, "
              "the one before = validation")]
    return Plan("loo", split.train, valid, test, observe=observe, notes=notes, split=split)


def _next_items(events: Sequence[Event], start: float, stop: float) -> tuple[dict[str, Event], set[str]]:
    """Per user, the first item event in [start, stop) on an item they had not had before it."""
    had: dict[str, set[str]] = {}
    first: dict[str, Event] = {}
    for e in item_events(events):
        if e.timestamp >= stop:
            break
        seen = had.setdefault(e.user_id, set())
        if e.timestamp >= start and e.user_id not in first and e.item_id not in seen:
            first[e.user_id] = e
        seen.add(e.item_id or "")
    before = {e.user_id for e in events if e.timestamp < start}
    return {u: e for u, e in first.items() if u in before}, before


def temporal_plan(ds: Dataset, valid_at: float = 0.7, test_at: float = 0.8) -> Plan:
    """A global temporal split: the next new item of each active user after a time cut.

    Validation: fit on events before the ``valid_at`` quantile of event times, predict each
    user's first new item before the test cut. Test: refit on everything before the
    ``test_at`` quantile, predict each user's first new item after it. Users with no event
    before a cut are not scored at that cut (no history: that is cold-start-user territory).
    """
    if not 0 < valid_at < test_at < 1:
        raise InvalidInputError("temporal cuts must satisfy 0 < valid < test < 1", field="cuts")
    times = np.array([e.timestamp for e in ds.events])
    if times.size == 0 or times.min() == times.max():
        raise InvalidInputError(f"{ds.name} has no spread of timestamps: a temporal split needs real times",
                                field="protocol", value="temporal")
    t_valid, t_test = (float(np.quantile(times, q)) for q in (valid_at, test_at))
    valid_targets, _ = _next_items(ds.events, t_valid, t_test)
    test_targets, _ = _next_items(ds.events, t_test, float("inf"))
    train = [e for e in ds.events if e.timestamp < t_valid]
    before_test = [e for e in ds.events if e.timestamp < t_test]

    def stage(targets: dict[str, Event], history: Sequence[Event]) -> Stage:
        users = sorted(targets)
        return Stage(users, {u: {targets[u].item_id or ""} for u in users}, {u: targets[u].timestamp for u in users},
                     _history_lengths(history, users))

    notes = [f"temporal: fit before the {valid_at:.0%} time quantile for validation, before {test_at:.0%} for test; "
             "target = each active user's next new item after the cut"]
    return Plan("temporal", train, stage(valid_targets, train), stage(test_targets, before_test),
                refit=before_test, notes=notes)


def coldstart_plan(ds: Dataset, fraction: float = 0.2, seed: int = 0) -> Plan:
    """Items never seen in training: the newest ``fraction`` of interacted items (by first
    interaction) lose all their events from training; half of them (at random) are the
    validation candidates, the other half the test candidates.

    A stage ranks only its own cold items (all systems alike), for every user who had one;
    the relevant items are the cold items that user had, their history everything else.
    """
    first_seen: dict[str, float] = {}
    for e in item_events(ds.events):
        first_seen.setdefault(e.item_id or "", e.timestamp)
    by_age = sorted(first_seen, key=lambda i: (first_seen[i], i))
    n_cold = max(2, int(len(by_age) * fraction))
    cold = by_age[-n_cold:]
    rng = random.Random(seed)
    rng.shuffle(cold)
    valid_items, test_items = frozenset(cold[: n_cold // 2]), frozenset(cold[n_cold // 2 :])
    cold_set = valid_items | test_items
    train = [e for e in ds.events if e.item_id not in cold_set]
    lengths = _history_lengths(train, {e.user_id for e in train})

    def stage(items: frozenset[str]) -> Stage:
        relevant: dict[str, set[str]] = {}
        now: dict[str, float] = {}
        for e in item_events(ds.events):
            if e.item_id in items and lengths.get(e.user_id, 0) > 0:
                relevant.setdefault(e.user_id, set()).add(e.item_id or "")
                now.setdefault(e.user_id, e.timestamp)
        users = sorted(relevant)
        return Stage(users, relevant, now, {u: lengths[u] for u in users}, only=items)

    late = [i for i in ds.items if i.item_id in cold_set]
    notes = [f"cold start: {len(cold_set)} newest items ({fraction:.0%}) unseen in training; each stage ranks its "
             "own half of them; systems with live item ingest get them after training"]
    return Plan("coldstart", train, stage(valid_items), stage(test_items), observe=[], late_items=late, notes=notes)


# noise: leave-one-out, its training events with noise added (liverec.evaluation.noise)
PLANS: dict[str, Callable[[Dataset], Plan]] = {"loo": loo_plan, "temporal": temporal_plan, "coldstart": coldstart_plan,
                                               "noise": loo_plan}


def _configs(name: str, ds_has_ratings: bool) -> list[dict[str, Any]]:
    grid = grid_of(name)
    if name.startswith("liverec") and not ds_has_ratings:  # "how to read ratings" means nothing without ratings
        grid = [{k: v for k, v in c.items() if k != "ratings"} for c in grid if c.get("ratings") == "signed"]
    return grid


def rank_stage(system: EvalSystem, stage: Stage, k: int, task: str, progress: Progress) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for start in range(0, len(stage.users), CHUNK):
        users = stage.users[start : start + CHUNK]
        lists.update(system.recommend(users, k, now=stage.now, only=stage.only))
        progress(task, min(start + CHUNK, len(stage.users)), len(stage.users))
    return lists


def fit_system(system: EvalSystem, items: Sequence[Item], late: Sequence[Item], events: Sequence[Event]) -> None:
    add_items = getattr(system, "add_items", None)
    if late and add_items is not None:
        late_ids = {i.item_id for i in late}
        system.fit([i for i in items if i.item_id not in late_ids], events)
        add_items(late)  # after training, as new items arrive in production
    else:
        system.fit(items, events)


def run_system(
    name: str, ds: Dataset, plan: Plan, *, ks: Sequence[int] = KS, seed: int = 0, progress: Progress = _quiet,
    engine: Mapping[str, Any] | None = None,
) -> tuple[SystemResult, dict[str, list[str]]]:
    """Choose ``name``'s configuration on validation, then rank the test users once (a liverec
    system with the engine settings ``engine``).

    Returns the result and the test lists (for beyond-accuracy measures and reports).
    """
    k = max(*ks, 10)
    has_ratings = any(e.type is EventType.RATE for e in ds.events[:1000])
    configs = _configs(name, has_ratings)
    tried: list[dict[str, Any]] = []
    fitted: dict[tuple[Any, ...], EvalSystem] = {}
    per_user: list[np.ndarray] = []
    t0 = time.perf_counter()
    for n, config in enumerate(configs):
        key = tuple(sorted((a, b) for a, b in config.items() if a not in SERVE_KEYS))
        system = fitted.get(key)
        if system is None:
            progress(f"{name}: fitting {n + 1}/{len(configs)}", 0, 1)
            system = build(name, config, seed, engine)
            fit_system(system, ds.items, plan.late_items, plan.train)
            fitted[key] = system
            progress(f"{name}: fitting {n + 1}/{len(configs)}", 1, 1)
        system.config.update({a: b for a, b in config.items() if a in SERVE_KEYS})
        lists = rank_stage(system, plan.valid, k, f"{name}: validation {n + 1}/{len(configs)}", progress)
        # Chosen on NDCG@10 whatever the reported Ks: one criterion for every system and run.
        values = metric_table(lists, plan.valid.relevant, plan.valid.users, (10,))["ndcg@10"] \
            if plan.valid.users else np.zeros(1)
        per_user.append(np.asarray(values, dtype=np.float64))
        tried.append({"config": dict(config), "valid_ndcg@10": round(float(per_user[-1].mean()), 5)})
    chosen = dict(configs[choose_config(configs, per_user)])
    key = tuple(sorted((a, b) for a, b in chosen.items() if a not in SERVE_KEYS))
    for other_key, other in fitted.items():
        if other_key != key:
            _close(other)
    system = fitted[key]
    system.config.update({a: b for a, b in chosen.items() if a in SERVE_KEYS})
    if "exposure" in system.config and plan.valid.users:  # the exposure control, at the chosen rest
        options = [{**chosen, "exposure": beta} for beta in EXPOSURE_GRID]
        ndcgs = []
        for n, option in enumerate(options):
            system.config["exposure"] = option["exposure"]
            lists = rank_stage(system, plan.valid, k, f"{name}: validation, exposure {n + 1}/{len(options)}", progress)
            ndcgs.append(metric_table(lists, plan.valid.relevant, plan.valid.users, (10,))["ndcg@10"])
            tried.append({"config": dict(option), "valid_ndcg@10": round(float(ndcgs[-1].mean()), 5)})
        chosen = options[choose_config(options, ndcgs, knob="exposure")]
        system.config["exposure"] = chosen["exposure"]
    seconds = {"tune": time.perf_counter() - t0}
    t1 = time.perf_counter()
    if plan.refit is not None:
        _close(system)
        system = build(name, chosen, seed, engine)
        progress(f"{name}: refitting for test", 0, 1)
        fit_system(system, ds.items, plan.late_items, plan.refit)
        progress(f"{name}: refitting for test", 1, 1)
    elif plan.observe:
        system.observe(plan.observe)
    lists = rank_stage(system, plan.test, k, f"{name}: test", progress)
    seconds["test"] = time.perf_counter() - t1
    result = score_lists(name, chosen, lists, plan.test, ks)
    result.notes += getattr(system, "training_notes", list)()
    if name == "liverec":  # the accuracy curves as MMR's λ and the exposure control move
        for knob, points, label in (("diversity", DIVERSITY_SWEEP, "tradeoff"),
                                    ("exposure", EXPOSURE_SWEEP, "exposure_tradeoff")):
            if knob in chosen:
                sweep = _sweep(system, plan.test, k, knob, points, chosen[knob], lists, name, progress)
                result.extra[label] = [
                    {knob if knob == "exposure" else "diversity_lambda": at,
                     "ndcg@10": float(metric_table(swept, plan.test.relevant, plan.test.users,
                                                   (10,))["ndcg@10"].mean())}
                    for at, swept in sorted(sweep.items())]
                result.extra[f"{label}_lists"] = sweep  # beyond_accuracy adds each point's beyond, then drops them
    _close(system)
    result.validation = tried
    result.seconds = seconds
    return result, lists


def _sweep(system: EvalSystem, stage: Stage, k: int, knob: str, values: Sequence[float], chosen: float,
           lists: dict[str, list[str]], name: str, progress: Progress) -> dict[float, dict[str, list[str]]]:
    """The test lists at each of ``values`` of a serving ``knob`` (``lists`` at the chosen one)."""
    sweep: dict[float, dict[str, list[str]]] = {}
    for value in values:
        system.config[knob] = value
        sweep[value] = lists if value == chosen else rank_stage(system, stage, k, f"{name}: test at {knob} {value:g}",
                                                           progress)
    system.config[knob] = chosen
    return sweep


def choose_config(configs: Sequence[Mapping[str, Any]], ndcg: Sequence[np.ndarray], knob: str = "diversity") -> int:
    """The index of the configuration to run on test, from each one's per-user validation NDCG@10.

    The best mean wins, except that among configurations that differ from it only in ``knob`` (MMR's
    λ, or the exposure control's strength), the one with the most of it whose validation NDCG@10 is
    within one standard error of the best (the paired per-user difference's) is taken: the
    one-standard-error rule, so that accuracy differences validation cannot tell apart are spent on
    broader lists rather than on noise.

    >>> import numpy as np
    >>> best, close = np.array([0.5, 0.4, 0.6, 0.5]), np.array([0.52, 0.38, 0.6, 0.5])
    >>> choose_config([{"diversity": 0.0}, {"diversity": 0.3}], [best, close])
    1
    >>> choose_config([{"diversity": 0.0}, {"diversity": 0.3}], [best, best - 0.2])
    0
    """
    means = [float(v.mean()) for v in ndcg]
    top = max(range(len(configs)), key=lambda n: (means[n], -n))  # the first of equal bests
    base = {k: v for k, v in configs[top].items() if k != knob}
    chosen = top
    for n, config in enumerate(configs):
        if n == top or {k: v for k, v in config.items() if k != knob} != base:
            continue
        diff = ndcg[top] - ndcg[n]
        se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
        if diff.mean() <= se and config.get(knob, 0.0) > configs[chosen].get(knob, 0.0):
            chosen = n
    return chosen


def score_lists(name: str, config: dict[str, Any], lists: dict[str, list[str]], stage: Stage,
                ks: Sequence[int] = KS) -> SystemResult:
    """A system's per-user test metrics from its ranked lists."""
    return SystemResult(
        system=name,
        config=config,
        users=list(stage.users),
        metrics=metric_table(lists, stage.relevant, stage.users, ks),
        history_length=np.array([stage.history_length.get(u, 0) for u in stage.users]),
    )


def beyond_accuracy(
    result: SystemResult, lists: dict[str, list[str]], ds: Dataset, train: Sequence[Event],
    vectors: Callable[[Sequence[str]], np.ndarray], n_items: int | None = None, k: int = 10,
) -> None:
    """Fill ``result.beyond`` with measures of the top ``k``: catalog coverage, intra-list diversity,
    novelty, and who is exposed: the Gini of item exposure, the long tail's share of the slots (items
    outside the top 20% by training users) and miscalibration (total variation between the categories'
    shares of the slots and of the catalog; each category's pair is in ``result.extra``) and popularity
    miscalibration (how far each list's mix of head, middle and tail items is from its user's history's)."""
    popularity: dict[str, set[str]] = {}
    for e in item_events(train):
        popularity.setdefault(e.item_id or "", set()).add(e.user_id)
    counts = {i: len(u) for i, u in popularity.items()}
    n_users = len({e.user_id for e in train}) or 1
    n = n_items or len(ds.items)
    head = head_items(counts, n)
    shares = category_exposure(lists, {i.item_id: i.categories for i in ds.items}, k)
    groups = popularity_groups(counts, [i.item_id for i in ds.items])
    histories: dict[str, list[str]] = {}
    for e in item_events(train):
        histories.setdefault(e.user_id, []).append(e.item_id or "")
    result.beyond = {
        f"coverage@{k}": catalog_coverage(lists, n, k),
        f"diversity@{k}": intra_list_diversity(lists, vectors, k),
        f"novelty@{k}": novelty(lists, counts, n_users, k),
        f"gini@{k}": exposure_gini(lists, n, k),
        f"long_tail@{k}": long_tail_share(lists, head, k),
        f"miscalibration@{k}": miscalibration(shares),
        f"popularity_miscalibration@{k}": popularity_miscalibration(lists, histories, groups, k),
    }
    top = sorted(shares.items(), key=lambda kv: -kv[1][1])[:CATEGORIES_SHOWN]
    result.extra["category_exposure"] = {c: {"exposure": round(e, 5), "catalog": round(s, 5)} for c, (e, s) in top}
    sweep = result.extra.pop("tradeoff_lists", None)
    if sweep:  # (λ, NDCG@10) from run_system; the diversity of each λ's lists needs the item vectors
        for point in result.extra["tradeoff"]:
            point[f"diversity@{k}"] = intra_list_diversity(sweep[point["diversity_lambda"]], vectors, k)
    sweep = result.extra.pop("exposure_tradeoff_lists", None)
    if sweep:
        for point in result.extra["exposure_tradeoff"]:
            at = sweep[point["exposure"]]
            point |= {f"long_tail@{k}": long_tail_share(at, head, k), f"gini@{k}": exposure_gini(at, n, k),
                      f"coverage@{k}": catalog_coverage(at, n, k),
                      f"popularity_miscalibration@{k}": popularity_miscalibration(at, histories, groups, k)}


def _close(system: EvalSystem) -> None:
    close = getattr(system, "close", None)
    if close is not None:
        close()
