"""Robustness to dirty data: noise injected into a real split's training events (issue 19).

Three kinds of noise a live shop sees, each added to the leave-one-out split's training events
(the validation and test events stay real, so every condition is scored on the same truth):

* ``farm`` — a click farm: bot accounts hammer a few long-tail items (outside the training top
  20%: a farm promotes what does not sell), with a tenth of their clicks on popular items so that
  "viewed together" pairs the two. Half the bots click in random bursts, half on a steady timer.
* ``duplicates`` — a share of real item events sent twice, the copy a few seconds later under a
  new id (a double submit, a client retry).
* ``spam`` — spam accounts each viewing and reviewing the farm's items with promotional text
  (links, codes, messenger handles), in English and Chinese.

Each noisy log is learned with cleaning off and on; the clean log with cleaning on is the
baseline. The injected events all fall in the last days before training ends, where they weigh
most in what is trending. Nothing here is tuned to the cleaning rules' defaults: the farm's sizes
are those of the issue (10,000 clicks) and its cadence is random.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType
from liverec.datasets.base import Dataset
from liverec.evaluation.metrics import KS, head_items
from liverec.evaluation.protocols import Plan, Progress, fit_system, rank_stage, score_lists
from liverec.evaluation.results import SystemResult
from liverec.evaluation.systems import item_events

__all__ = ["NOISE_DESCRIPTIONS", "NOISE_KINDS", "Noise", "inject", "noise_conditions", "run_noise"]

NOISE_KINDS = ("farm", "duplicates", "spam")
NOISE_DESCRIPTIONS = {
    "farm": "a click farm of 20 bots and 10,000 clicks on 3 long-tail items",
    "duplicates": "20% of item events sent twice",
    "spam": "50 spam accounts viewing and reviewing the farm's items",
}
FARM_BOTS = 20
FARM_CLICKS = 500  # per bot: 10,000 clicks in all
FARM_TARGETS = 3
WINDOW = 2 * 86400.0  # the injected events fall in the last two days of training
DUPLICATE_SHARE = 0.2
SPAM_ACCOUNTS = 50
SPAM_DOMAINS = ("best-deals-4u.biz", "cheap-stuff.shop", "promo-world.top", "gift-card.win", "vip-outlet.xyz")
SPAM_TEMPLATES = (
    "Amazing!!! Get it 70% cheaper at {domain}, use code {code}",
    "Best price guaranteed, order now at www.{domain} and get a free gift",
    "Works great. I sell the same one much cheaper, WhatsApp me +1 555 {number}",
    "Click here {domain}/{code} to claim your free gift card today!",
    "Make $300 a day from home like me, message me on Telegram @{code}",
    "好评返现{number}元，加微信 {code} 领取优惠券",
    "全场五折，点击链接 {domain} 免费领取会员",
    "刷单兼职日赚三百，有意者加QQ {number}",
)


def _quiet(task: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class Noise:
    """The events one kind of noise adds, and the items it promotes (empty for duplicates)."""

    kind: str
    events: list[Event]
    targets: tuple[str, ...] = ()


def inject(kind: str, train: Sequence[Event], seed: int = 0) -> Noise:
    """The noise events of ``kind`` for training events ``train`` (seeded: the same every run)."""
    rng = random.Random(f"{kind}-{seed}")
    end = max(e.timestamp for e in train)
    popularity: dict[str, set[str]] = {}
    for e in item_events(train):
        popularity.setdefault(e.item_id or "", set()).add(e.user_id)
    counts = {i: len(u) for i, u in popularity.items()}
    head = head_items(counts, len(counts))
    tail = sorted(set(counts) - head)
    popular = sorted(counts, key=lambda i: (-counts[i], i))[:20]
    targets = tuple(rng.sample(tail, min(FARM_TARGETS, len(tail))))
    if kind == "farm":
        return Noise(kind, _farm(rng, targets, popular, end), targets)
    if kind == "duplicates":
        return Noise(kind, _duplicates(rng, train))
    if kind == "spam":
        return Noise(kind, _spam(rng, targets, end), targets)
    raise ValueError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}")


def _farm(rng: random.Random, targets: Sequence[str], popular: Sequence[str], end: float) -> list[Event]:
    out: list[Event] = []
    for bot in range(FARM_BOTS):
        gaps = [30.0 if bot % 2 else rng.uniform(0.5, 8.0) for _ in range(FARM_CLICKS)]  # a timer, or bursts
        at = end - sum(gaps) - (WINDOW - sum(gaps)) * rng.random()
        for n, gap in enumerate(gaps):
            item = rng.choice(popular) if rng.random() < 0.1 else rng.choice(targets)
            out.append(Event.trusted(f"noise-farm-{bot}-{n}", f"noise-bot-{bot}", EventType.CLICK, item, None, None,
                                     at, None))
            at += gap
    return out


def _duplicates(rng: random.Random, train: Sequence[Event]) -> list[Event]:
    return [Event.trusted(f"{e.event_id}~dup", e.user_id, e.type, e.item_id, e.value, e.text,
                          e.timestamp + rng.uniform(0.2, 3.0), e.session_id)
            for e in item_events(train) if rng.random() < DUPLICATE_SHARE]


def _spam(rng: random.Random, targets: Sequence[str], end: float) -> list[Event]:
    out: list[Event] = []
    for account in range(SPAM_ACCOUNTS):
        user = f"noise-spammer-{account}"
        for n, item in enumerate(rng.sample(list(targets), len(targets))):
            at = end - 300.0 - (WINDOW - 300.0) * rng.random()
            text = rng.choice(SPAM_TEMPLATES).format(domain=rng.choice(SPAM_DOMAINS), number=rng.randrange(1000, 9999),
                                                      code=f"{rng.choice('abcdefghjk')}{rng.randrange(100, 999)}")
            out.append(Event.trusted(f"noise-spam-{account}-{n}-view", user, EventType.VIEW, item, None, None, at,
                                     None))
            out.append(Event.trusted(f"noise-spam-{account}-{n}", user, EventType.REVIEW, item, None, text,
                                     at + rng.uniform(20, 300), None))
    return out


def noise_conditions(kinds: Sequence[str]) -> list[tuple[str, str | None, bool]]:
    """(system name, noise kind or None, cleaning on) for every condition a noise run fits: the
    clean log with cleaning on (``liverec``, the baseline the paired tests compare against),
    then each kind with cleaning off and on."""
    out: list[tuple[str, str | None, bool]] = [("liverec", None, True)]
    for kind in kinds:
        out += [(f"liverec {kind}, cleaning off", kind, False), (f"liverec {kind}, cleaning on", kind, True)]
    return out


def run_noise(
    ds: Dataset, plan: Plan, config: Mapping[str, Any], kinds: Sequence[str] = NOISE_KINDS, *, ks: Sequence[int] = KS,
    seed: int = 0, progress: Progress = _quiet, log: Callable[[str], None] = print,
    engine: Mapping[str, Any] | None = None,
) -> list[tuple[SystemResult, dict[str, list[str]]]]:
    """liverec under every condition of :func:`noise_conditions`, with one configuration (``config``,
    liverec's chosen on the clean validation where it ran): test results, trending's top 10 after
    training, and what cleaning quarantined."""
    from liverec.evaluation.systems import Liverec

    for kind in kinds:
        if kind not in NOISE_KINDS:
            raise InvalidInputError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}", field="noise",
                                    value=kind)
    noises = {kind: inject(kind, plan.train, seed) for kind in kinds}
    k = max(*ks, 10)
    out: list[tuple[SystemResult, dict[str, list[str]]]] = []
    clean_trending: list[str] = []
    for name, noisy, cleaning in noise_conditions(kinds):
        t0 = time.perf_counter()
        noise = noises[noisy] if noisy else None
        settings = {**(engine or {}), **({} if cleaning else {"cleaning": {"enabled": False}})}
        system = Liverec(seed=seed, settings=settings, **config)
        progress(f"noise: fitting {name}", 0, 1)
        events = sorted([*plan.train, *noise.events], key=lambda e: e.timestamp) if noise else plan.train
        fit_system(system, ds.items, plan.late_items, events)
        progress(f"noise: fitting {name}", 1, 1)
        served = system.engine
        assert served.snapshot is not None
        trending = [item for item, _ in served.snapshot.models["trending"].recommend([], 10)]
        clean_trending = clean_trending or trending
        quarantined = served.quarantined()
        reasons: dict[str, int] = {}
        for entry in quarantined:
            rule = entry.reason.split(":")[0]
            reasons[rule] = reasons.get(rule, 0) + 1
        if plan.observe:
            system.observe(plan.observe)
        lists = rank_stage(system, plan.test, k, f"noise: test {name}", progress)
        system.close()
        result = score_lists(name, {**config, "cleaning": "on" if cleaning else "off"}, lists, plan.test, ks)
        targets = noise.targets if noise else ()
        result.extra["noise"] = {
            "kind": noisy or "none", "cleaning": cleaning, "injected": len(noise.events) if noise else 0,
            "targets": list(targets), "trending_top10": trending,
            "trending_overlap_with_clean": len(set(trending) & set(clean_trending)),
            "targets_in_trending_top10": sum(t in trending for t in targets),
            "quarantined_users": sum(q.kind == "user" for q in quarantined),
            "quarantined_events": sum(q.kind == "event" for q in quarantined),
            "quarantined_by_rule": reasons,
            "not_learned": {rule: n for rule, n in served.cleaning.snapshot_counts().items() if rule != "learned"},
            "noise_users_quarantined": len({q.user_id for q in quarantined if q.user_id.startswith("noise-")}),
            "real_users_quarantined": len({q.user_id for q in quarantined if not q.user_id.startswith("noise-")}),
        }
        result.seconds = {"total": time.perf_counter() - t0}
        log(f"  {name}: NDCG@10 {result.mean('ndcg@10'):.4f}, trending overlap with clean "
            f"{result.extra['noise']['trending_overlap_with_clean']}/10, quarantined {len(quarantined)}")
        out.append((result, lists))
    return out
