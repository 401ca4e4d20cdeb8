"""Splits and protocols: no test event leaks into training, every system sees the same plan,
and the harness's answers on tiny data sets are the ones worked out by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.core.types import Event, Item
from liverec.datasets.base import Dataset, FixedSplit
from liverec.datasets.demo import build_demo_world
from liverec.evaluation import replay as replay_module
from liverec.evaluation.harness import Options, evaluate
from liverec.evaluation.protocols import (
    DIVERSITY_SWEEP,
    EXPOSURE_GRID,
    EXPOSURE_SWEEP,
    choose_config,
    coldstart_plan,
    loo_plan,
    run_system,
    temporal_plan,
)
from liverec.evaluation.replay import DAY, replay
from liverec.evaluation.report import write_report
from liverec.evaluation.splits import leave_one_out
from liverec.evaluation.systems import Liverec, grid_of, variants

T0 = 1_700_000_000.0


def ev(user: str, item: str | None, t: float, type_: str = "view") -> Event:
    if item is None:
        return Event.create(user, "search", text="boots", timestamp=T0 + t)
    return Event.create(user, type_, item, timestamp=T0 + t)


def tiny() -> Dataset:
    """Five items; three users with known sequences; one user too short to split."""
    items = [Item(f"i{n}", f"Item {n}", created_at=T0) for n in range(5)]
    events = [
        ev("u1", "i0", 1), ev("u1", "i1", 2), ev("u1", None, 2.5), ev("u1", "i2", 3), ev("u1", "i3", 4),
        ev("u2", "i0", 1.5), ev("u2", "i1", 5), ev("u2", "i4", 6),
        ev("u3", "i0", 2), ev("u3", "i1", 3.5), ev("u3", "i2", 7), ev("u3", None, 8),
        ev("short", "i0", 9), ev("short", "i1", 10),
    ]
    events.sort(key=lambda e: e.timestamp)
    return Dataset("tiny", items, events)


def test_leave_one_out_holds_out_the_last_two_item_events_and_never_trains_on_them() -> None:
    ds = tiny()
    split = leave_one_out(ds.events)
    assert {u: e.item_id for u, e in split.test.items()} == {"u1": "i3", "u2": "i4", "u3": "i2"}
    assert {u: e.item_id for u, e in split.valid.items()} == {"u1": "i2", "u2": "i1", "u3": "i1"}
    held = {e.event_id for e in [*split.test.values(), *split.valid.values()]}
    assert not held & {e.event_id for e in split.train}
    # u3's search after their test target would leak what came next; the short user trains only
    assert [(e.user_id, e.item_id) for e in split.train if e.user_id == "u3"] == [("u3", "i0")]
    assert [e.item_id for e in split.train if e.user_id == "short"] == ["i0", "i1"]
    # a validation user's history is their training events; a test user's adds the validation event
    assert [e.item_id for e in split.history("u1", "valid")] == ["i0", "i1", None]
    assert [e.item_id for e in split.history("u1", "test")] == ["i0", "i1", None, "i2"]
    assert [e.timestamp for e in split.train] == sorted(e.timestamp for e in split.train)


def test_a_shipped_split_must_match_the_events() -> None:
    ds = tiny()
    good = FixedSplit(valid={"u1": "i2", "u2": "i1", "u3": "i1"}, test={"u1": "i3", "u2": "i4", "u3": "i2"})
    assert leave_one_out(ds.events, good).test["u1"].item_id == "i3"
    with pytest.raises(InvalidInputError, match=r"user 'u2': the data set's test target is 'i0'"):
        leave_one_out(ds.events, FixedSplit(valid=good.valid, test={**good.test, "u2": "i0"}))
    with pytest.raises(InvalidInputError, match="validation users differ"):
        leave_one_out(ds.events, FixedSplit(valid={"u1": "i2"}, test=good.test))


def test_popularity_ranks_by_training_users_and_leaves_out_what_the_user_had() -> None:
    ds = tiny()
    plan = loo_plan(ds)
    result, lists = run_system("pop", ds, plan, ks=(1, 2, 5))
    # training: i0 by 4 users (u1, u2, u3, short), i1 by 2 (u1, short; u2's and u3's are validation
    # targets), the rest by nobody (ranked in catalog order after them)
    assert lists["u2"] == ["i2", "i3", "i4"]  # u2 had i0 (training) and i1 (validation, observed)
    assert lists["u1"] == ["i3", "i4"]  # u1 had i0, i1, i2
    assert result.users == ["u1", "u2", "u3"]
    # targets: u1 i3 at rank 0, u2 i4 at rank 2, u3 i2 at rank 0
    assert result.metrics["recall@1"].tolist() == [1.0, 0.0, 1.0]
    assert result.metrics["recall@5"].tolist() == [1.0, 1.0, 1.0]
    assert result.metrics["mrr@5"].tolist() == pytest.approx([1.0, 1 / 3, 1.0])
    assert result.history_length.tolist() == [3, 2, 2]


def test_temporal_targets_come_after_the_cut_and_training_before_it() -> None:
    world = build_demo_world(seed=3, n_items=280, n_users=30)
    ds = Dataset("demo", world.items, world.events)
    plan = temporal_plan(ds)
    assert plan.refit is not None
    cut_valid = max(e.timestamp for e in plan.train)
    cut_test = max(e.timestamp for e in plan.refit)
    assert all(plan.valid.now[u] > cut_valid for u in plan.valid.users)
    assert all(plan.test.now[u] > cut_test for u in plan.test.users)
    assert all(plan.valid.now[u] <= cut_test for u in plan.valid.users)
    had: dict[str, set[str]] = {}
    for e in plan.refit:
        had.setdefault(e.user_id, set()).add(e.item_id or "")
    # targets are items new to the user, and every scored user has a history
    assert all(not (plan.test.relevant[u] & had[u]) for u in plan.test.users)
    with pytest.raises(InvalidInputError, match="no spread of timestamps"):
        temporal_plan(Dataset("flat", ds.items, [Event.create("u", "view", "x", timestamp=1.0)]))


def test_cold_items_never_reach_training_and_each_stage_ranks_its_own() -> None:
    world = build_demo_world(seed=3, n_items=280, n_users=30)
    ds = Dataset("demo", world.items, world.events)
    plan = coldstart_plan(ds, fraction=0.2, seed=0)
    assert plan.valid.only is not None and plan.test.only is not None
    cold = plan.valid.only | plan.test.only
    assert not plan.valid.only & plan.test.only
    assert not {e.item_id for e in plan.train} & cold
    assert {i.item_id for i in plan.late_items} == cold
    assert all(plan.test.relevant[u] <= plan.test.only for u in plan.test.users)


@pytest.fixture(scope="module")
def small_world() -> Dataset:
    world = build_demo_world(seed=5, n_items=280, n_users=40)
    return Dataset("demo-small", world.items, world.events)


def test_end_to_end_loo_with_liverec_and_peers_writes_the_report(small_world: Dataset, tmp_path: Path) -> None:
    # sasrec's own run is covered in test_recbole_peers (slow); here it is only asked for under a
    # protocol it does not take part in, which the report must say
    options = Options(protocols=("loo", "coldstart"), systems=("liverec", "pop", "liverec-no-sequence"))
    runs = evaluate(small_world, options, tmp_path)
    loo = runs[0]
    assert [s.system for s in loo.systems] == ["liverec", "pop", "liverec-no-sequence"]
    liverec, pop, ablated = loo.systems
    # the ablation is tuned on validation like the full system, without the sequence model
    grid = [{"diversity": d, "ratings": r} for r in ("signed", "positive") for d in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)]
    assert grid == grid_of("liverec")
    assert [t["config"] for t in ablated.validation[: len(grid)]] == [t["config"] for t in liverec.validation][
        : len(grid)]
    # the accuracy–diversity curve: every swept λ, the chosen one equal to the reported result
    curve = {p["diversity_lambda"]: p for p in liverec.extra["tradeoff"]}
    assert sorted(curve) == sorted(DIVERSITY_SWEEP) and "tradeoff_lists" not in liverec.extra
    chosen = curve[liverec.config["diversity"]]
    assert chosen["ndcg@10"] == pytest.approx(liverec.mean("ndcg@10"))
    assert chosen["diversity@10"] == pytest.approx(liverec.beyond["diversity@10"])
    assert curve[0.7]["diversity@10"] > curve[0.0]["diversity@10"]
    assert liverec.users == pop.users and len(liverec.users) == 40
    # the engine reads text and sequences: it must beat popularity on its own demo world
    assert liverec.mean("ndcg@10") > pop.mean("ndcg@10")
    # the demo world has ratings, so how to read them is chosen on validation too (the engine is
    # fitted once per reading; its training chooses the interest threshold itself)
    assert [t["config"] for t in liverec.validation[: len(grid)]] == grid
    best = max(liverec.validation[: len(grid)], key=lambda t: t["valid_ndcg@10"])["config"]
    assert liverec.config["ratings"] == best["ratings"] and liverec.config["diversity"] >= best["diversity"]
    # then the exposure control's strengths, at the rest of the chosen configuration
    tried = liverec.validation[len(grid) :]
    assert [t["config"]["exposure"] for t in tried] == list(EXPOSURE_GRID)
    assert all(t["config"]["diversity"] == liverec.config["diversity"] for t in tried)
    assert liverec.config["exposure"] in EXPOSURE_GRID
    assert 0 < liverec.beyond["coverage@10"] <= 1 and liverec.beyond["diversity@10"] > 0
    # who is exposed, for every system: popularity shows everyone the same few items
    for system in (liverec, pop):
        assert {"gini@10", "long_tail@10", "miscalibration@10", "popularity_miscalibration@10"} <= set(system.beyond)
        shares = list(system.extra["category_exposure"].values())  # the catalog's largest categories first
        assert 0 < len(shares) <= 12 and sum(c["catalog"] for c in shares) <= 1.0001
        assert [c["catalog"] for c in shares] == sorted((c["catalog"] for c in shares), reverse=True)
    assert pop.beyond["gini@10"] > liverec.beyond["gini@10"] and pop.beyond["long_tail@10"] == 0.0
    # the exposure control's curve: calibration brings lists to their users' popularity mix
    exposure = {p["exposure"]: p for p in liverec.extra["exposure_tradeoff"]}
    assert sorted(exposure) == sorted(EXPOSURE_SWEEP) and "exposure_tradeoff_lists" not in liverec.extra
    assert exposure[liverec.config["exposure"]]["ndcg@10"] == pytest.approx(liverec.mean("ndcg@10"))
    assert exposure[1.0]["popularity_miscalibration@10"] < exposure[0.0]["popularity_miscalibration@10"]
    assert {"long_tail@10", "gini@10", "coverage@10"} <= set(exposure[0.5])
    files = write_report(runs, tmp_path)
    data = json.loads(files["json"].read_text())
    assert data["runs"][0]["paired_tests"]["liverec vs pop"]["ndcg@10"]["p_value"] > 0
    text = files["markdown"].read_text()
    assert "| liverec | 40 |" in text and "liverec vs pop" in text
    # what the engine's training chose on its own hold-out is in the report, beside the grid's choice
    assert liverec.notes and liverec.notes[0].startswith("training chose interest_similarity ")
    assert liverec.notes[0] in text and "hold-out NDCG@10 by threshold: 0.3: " in liverec.notes[0]
    # and how far the sequence model got, so a run cut by its time budget says so
    assert re.fullmatch(r"sequence model: [\d.]+ s; the first network \d+ passes, "
                        r"stopped by (its time budget|validation), best pass \d+ \(validation NDCG@10 [\d.]+\); "
                        r"(1 network|\d+ networks from as many seeds "
                        r"\(ensemble validation NDCG@10 [\d.]+\)); then \d+ passes on all events in [\d.]+ s",
                        liverec.notes[1])
    assert liverec.notes[1] in text
    assert "Exposure by category" in text and "exposure control on test" in text and "miscalibration@10" in text
    for kind in ("metrics", "history", "tradeoff", "exposure"):
        assert files[f"demo-small-loo-{kind}"].stat().st_size > 10_000  # a real PNG, not an empty file
    cold = runs[1]
    assert [s.system for s in cold.systems] == ["liverec", "pop", "liverec-no-sequence"]
    # new items are found by their text alone; popularity knows nothing of them
    assert cold.systems[0].mean("recall@10") > cold.systems[1].mean("recall@10")


def test_noise_protocol_runs_every_condition_and_cleaning_keeps_the_farm_out(small_world: Dataset,
                                                                              tmp_path: Path) -> None:
    runs = evaluate(small_world, Options(protocols=("noise",), systems=("liverec",), noise=("farm", "duplicates")),
                    tmp_path)
    systems = {s.system: s for s in runs[0].systems}
    assert list(systems) == ["liverec", "liverec farm, cleaning off", "liverec farm, cleaning on",
                             "liverec duplicates, cleaning off", "liverec duplicates, cleaning on"]
    clean = systems["liverec"].extra["noise"]
    assert clean["injected"] == 0 and clean["real_users_quarantined"] == 0  # the clean log loses nobody
    off, on = (systems[f"liverec farm, cleaning {x}"].extra["noise"] for x in ("off", "on"))
    assert off["injected"] == on["injected"] == 10_000
    assert off["targets_in_trending_top10"] >= 1 and off["quarantined_users"] == 0
    assert on["targets_in_trending_top10"] == 0 and on["noise_users_quarantined"] == 20
    assert on["real_users_quarantined"] == 0 and on["trending_overlap_with_clean"] == 10
    dup_on = systems["liverec duplicates, cleaning on"].extra["noise"]
    assert dup_on["not_learned"]["duplicate"] >= dup_on["injected"] > 10 * clean["not_learned"]["duplicate"]
    assert dup_on["real_users_quarantined"] == 0
    assert all(s.users == systems["liverec"].users for s in systems.values())
    text = write_report(runs, tmp_path)["markdown"].read_text()
    assert "| liverec farm, cleaning on | 10,000 |" in text and "liverec vs liverec farm, cleaning off" in text


def test_a_sequential_peer_is_reported_not_run_outside_leave_one_out(small_world: Dataset, tmp_path: Path) -> None:
    runs = evaluate(small_world, Options(protocols=("temporal",), systems=("pop", "sasrec")), tmp_path)
    assert [s.system for s in runs[0].systems] == ["pop"]
    assert any(n.startswith("sasrec: not run under temporal") for n in runs[0].notes)


def test_a_replay_cadence_must_be_positive(small_world: Dataset) -> None:
    with pytest.raises(InvalidInputError, match="cadence"):
        replay(small_world, cadence=0)


def test_replay_shows_realtime_each_event_at_once_and_frozen_only_at_trainings(
    small_world: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both modes score the same events. Before each request, the real-time engine has seen
    exactly the stream's earlier events; the frozen one only those before its last training — and
    neither the event being predicted. The frozen+seen ask leaves out exactly what the user had
    since that training. (One replay serves all of this: each costs ~40 s.)"""
    Ask = tuple[str, int, int, frozenset[str]]  # user, events shown, trainings, items left out
    asked: dict[str, list[Ask]] = {"realtime": [], "frozen": []}
    engines: list[Recording] = []

    class Recording(Liverec):
        def __init__(self, **config: Any) -> None:
            super().__init__(**config)
            self.mode = ("realtime", "frozen")[len(engines)]
            self.shown: list[Event] = []
            self.trainings = 0
            engines.append(self)

        def fit(self, items: Sequence[Item], events: Sequence[Event]) -> None:
            super().fit(items, events)
            real_train = self.engine.train

            def counted_train(*args: Any, **kwargs: Any) -> Any:
                self.trainings += 1
                return real_train(*args, **kwargs)

            self.engine.train = counted_train  # type: ignore[method-assign]

        def observe(self, events: Sequence[Event]) -> None:
            self.shown.extend(events)
            super().observe(events)

        def recommend(self, user_ids: Sequence[str], k: int, **kwargs: Any) -> dict[str, list[str]]:
            exclude = (kwargs.get("exclude") or {}).get(user_ids[0], ())
            asked[self.mode].append((user_ids[0], len(self.shown), self.trainings, frozenset(exclude)))
            return super().recommend(user_ids, k, **kwargs)

    monkeypatch.setattr(replay_module, "Liverec", Recording)
    realtime, frozen, filtered = replay(small_world, fraction=0.2, cadence=DAY, max_events=200)
    assert (realtime.mode, frozen.mode, filtered.mode) == ("realtime", "frozen", "frozen+seen")
    assert realtime.times.tolist() == frozen.times.tolist() == filtered.times.tolist()
    assert realtime.hits.size > 30
    assert realtime.trainings == frozen.trainings == filtered.trainings >= 1
    assert set(realtime.hits.tolist()) <= {0.0, 1.0}
    # Leaving out what the user had can only help a list that must find a new item.
    assert filtered.hits.sum() >= frozen.hits.sum()
    stream = small_world.events[int(len(small_world.events) * 0.8):][:200]
    assert engines[0].shown == stream  # one event at a time, in order
    assert engines[1].shown == stream[: len(engines[1].shown)]
    plain, seen_asks = asked["frozen"][0::2], asked["frozen"][1::2]  # the frozen engine is asked twice per event
    assert len(asked["realtime"]) == len(plain) == len(seen_asks) == realtime.hits.size == filtered.hits.size
    shown_at_training: dict[int, int] = {}
    warm_users = {e.user_id for e in small_world.events[: int(len(small_world.events) * 0.8)]}
    assert realtime.known_user.tolist() == frozen.known_user.tolist() == filtered.known_user.tolist()
    for (user, rt_shown, trainings, _), (_, fz_shown, fz_trainings, none), (_, fz_again, _, left_out), known in zip(
        asked["realtime"], plain, seen_asks, realtime.known_user.tolist(), strict=True
    ):
        # A user is "known" when the frozen engine was shown any event of theirs.
        assert known == (user in warm_users or any(e.user_id == user for e in stream[:fz_shown]))
        assert trainings == fz_trainings and fz_again == fz_shown and not none
        assert fz_shown <= rt_shown < len(stream)  # never the event being predicted, nor a later one
        # Frozen is shown everything up to a training at once, and nothing between trainings.
        assert shown_at_training.setdefault(trainings, fz_shown) == fz_shown
        had = {e.item_id for e in stream[fz_shown:rt_shown] if e.user_id == user and e.item_id is not None}
        assert left_out == had
    assert any(fz < rt for (_, rt, _, _), (_, fz, _, _) in zip(asked["realtime"], plain, strict=True))
    assert any(left_out for *_, left_out in seen_asks)


def test_validation_spends_only_noise_on_diversity() -> None:
    rng = np.random.default_rng(0)
    best = rng.random(2000)
    configs = [{"diversity": 0.0, "ratings": "signed"}, {"diversity": 0.3, "ratings": "signed"},
               {"diversity": 0.5, "ratings": "signed"}, {"diversity": 0.5, "ratings": "positive"}]
    noise = np.where(np.arange(best.size) % 2, 0.01, -0.01)  # the paired difference's standard error: 0.00022
    tiny_loss = best - noise - 0.0001  # worse by less than one standard error
    real_loss = best - 0.05  # clearly worse
    # the most diverse λ within noise of the best is taken; another reading of ratings never is
    assert choose_config(configs, [best, tiny_loss, real_loss, tiny_loss]) == 1
    assert choose_config(configs, [best, real_loss, real_loss, best - 0.0001]) == 0
    # without λ in the grid the best mean wins, the first of equals
    assert choose_config([{"factors": 64}, {"factors": 128}], [best, best]) == 0
    assert choose_config([{"factors": 64}, {"factors": 128}], [best, best + 0.01]) == 1


def test_training_chooses_the_interest_threshold_unless_the_system_pins_it() -> None:
    from liverec.evaluation.protocols import _configs

    full = _configs("liverec", False)  # no ratings: nothing to read them as
    assert full and all(set(c) == {"diversity"} for c in full)  # no fit per threshold: training chooses
    settings = Liverec().engine_settings("m")
    assert settings.interest_similarities == Settings().interest_similarities
    assert len(settings.interest_similarities) > 1
    # a threshold given to the system is pinned; one the engine settings give wins over it
    pinned = Liverec(interest_similarity=0.5).engine_settings("m")
    assert pinned.interest_similarity == 0.5 and pinned.interest_similarities == ()
    assert Liverec(interest_similarity=0.5, settings={"interest_similarity": 0.4}).engine_settings(
        "m").interest_similarity == 0.4
    one = Liverec(settings=variants()["one-interest"]).engine_settings("m")
    assert one.interests == 1 and one.interest_similarities == ()
    # so do the system's own engine settings (`evaluate --config` once failed on them with a TypeError)
    given = Liverec(settings={"validation_users": 50, "seed": 3, "encoder": "e5"}).engine_settings("m")
    assert (given.validation_users, given.seed, given.encoder) == (50, 3, "e5")
