"""The RecBole peer path: split files in UniSRec's format, and (slow) a real peer run.

The fast tests pin the exact files :func:`write_atomic_split` writes for a hand-made split; the
slow ones train RecBole for real in ``.venv-peers`` and skip, saying why, where it is not built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from liverec.core.errors import InvalidInputError, LiveRecError
from liverec.core.types import Event, EventType
from liverec.evaluation.recbole_peers import (
    HEADER,
    PEER_RUNNER,
    PeerRunError,
    peer_environment_problem,
    peer_result,
    run_recbole,
    write_atomic_split,
)
from liverec.evaluation.splits import LeaveOneOut, leave_one_out

_clock = iter(range(1_000_000))


def ev(user: str, item: str | None, type: str = "view", text: str | None = None) -> Event:
    return Event.create(user, type, item, text=text, timestamp=float(next(_clock)))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_writes_unisrec_rows_for_a_known_split(tmp_path: Path) -> None:
    # ann: a b c | valid d | test e, with a search in between that must not enter the history;
    # bob: x y | valid a | test b; cy: too short to split, contributes only train rows.
    events = [
        ev("ann", "a"), ev("bob", "x"), ev("ann", "b"), ev("ann", None, "search", text="red shoes"),
        ev("bob", "y"), ev("ann", "c"), ev("cy", "y"), ev("cy", "x"), ev("bob", "a"), ev("ann", "d"),
        ev("bob", "b"), ev("ann", "e"),
    ]
    split = leave_one_out(events)
    tokens = write_atomic_split(split, tmp_path, "toy")

    # Users by first event (ann, bob, cy); items numbered along each user's sequence in turn.
    assert tokens == {
        "u0": "ann", "u1": "bob", "u2": "cy",
        "i0": "a", "i1": "b", "i2": "c", "i3": "d", "i4": "e", "i5": "x", "i6": "y",
    }
    assert read(tmp_path / "toy.train.inter") == HEADER + (
        "u0\ti0 i1\ti2\n"
        "u0\ti0\ti1\n"
        "u1\ti5\ti6\n"
        "u2\ti6\ti5\n"
    )
    assert read(tmp_path / "toy.valid.inter") == HEADER + "u0\ti0 i1 i2\ti3\nu1\ti5 i6\ti0\n"
    assert read(tmp_path / "toy.test.inter") == HEADER + "u0\ti0 i1 i2 i3\ti4\nu1\ti5 i6 i0\ti1\n"
    kept = json.loads(read(tmp_path / "toy.tokens.json"))
    assert {**kept["users"], **kept["items"]} == tokens


def test_histories_keep_the_last_50_items(tmp_path: Path) -> None:
    items = [f"item {n}" for n in range(55)]  # 53 training items, then valid and test
    split = leave_one_out([ev("long", i) for i in items])
    tokens = write_atomic_split(split, tmp_path, "long")

    def rows(part: str) -> list[tuple[str, list[str], str]]:
        lines = read(tmp_path / f"long.{part}.inter").splitlines()[1:]
        return [(tokens[u], [tokens[t] for t in h.split(" ")], tokens[t]) for u, h, t in (r.split("\t") for r in lines)]

    train = rows("train")
    assert len(train) == 52  # positions 1..52 of the 53 training items
    assert train[0] == ("long", items[2:52], items[52])  # p = 52: the 50 items before it
    assert train[-1] == ("long", items[:1], items[1])
    assert max(len(h) for _, h, _ in train) == 50
    assert rows("valid") == [("long", items[3:53], items[53])]
    assert rows("test") == [("long", items[4:54], items[54])]


def test_ids_with_spaces_and_tabs_round_trip_through_tokens(tmp_path: Path) -> None:
    users = ["user one", "user\ttwo", "ünï"]
    items = ["blue shirt", "tab\titem", "x", "y z", "a,b"]
    events = [ev(u, i) for u in users for i in items]
    split = leave_one_out(events)
    tokens = write_atomic_split(split, tmp_path, "odd")
    assert sorted(v for k, v in tokens.items() if k.startswith("u")) == sorted(users)
    assert sorted(v for k, v in tokens.items() if k.startswith("i")) == sorted(items)
    for part in ("train", "valid", "test"):
        for line in read(tmp_path / f"odd.{part}.inter").splitlines()[1:]:
            user, history, item = line.split("\t")
            assert user in tokens and item in tokens
            assert all(t in tokens for t in history.split(" "))
    # The test row of "user one": its three training items and the validation item, then the target.
    first = read(tmp_path / "odd.test.inter").splitlines()[1].split("\t")
    assert [tokens[first[0]], [tokens[t] for t in first[1].split(" ")], tokens[first[2]]] == [
        "user one", items[:4], items[4]
    ]


def test_a_user_without_targets_contributes_only_train_rows(tmp_path: Path) -> None:
    split = LeaveOneOut(train=[ev("solo", "p"), ev("solo", "q"), ev("solo", "r")], valid={}, test={})
    tokens = write_atomic_split(split, tmp_path, "solo")
    assert read(tmp_path / "solo.train.inter") == HEADER + "u0\ti0 i1\ti2\nu0\ti0\ti1\n"
    assert read(tmp_path / "solo.valid.inter") == HEADER
    assert read(tmp_path / "solo.test.inter") == HEADER
    assert tokens == {"u0": "solo", "i0": "p", "i1": "q", "i2": "r"}


def test_a_bad_split_name_is_refused(tmp_path: Path) -> None:
    split = LeaveOneOut(train=[], valid={}, test={})
    with pytest.raises(InvalidInputError, match="split name 'a b'"):
        write_atomic_split(split, tmp_path, "a b")


def test_a_search_target_is_refused(tmp_path: Path) -> None:
    split = LeaveOneOut(
        train=[ev("s", "a")], valid={"s": ev("s", None, EventType.SEARCH.value, text="q")}, test={}
    )
    with pytest.raises(InvalidInputError, match="validation target is a search event"):
        write_atomic_split(split, tmp_path, "s")


def test_a_missing_peer_environment_says_make_peers(tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    assert peer_environment_problem(python=missing) == f"no peer environment at {missing}: run `make peers`"
    with pytest.raises(PeerRunError, match="run `make peers`") as caught:
        run_recbole("SASRec", tmp_path, "toy", tmp_path / "out.json", python=missing)
    assert isinstance(caught.value, LiveRecError)


def test_an_unknown_peer_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="peer model 'BERT4Rec' is not one of SASRec, GRU4Rec"):
        run_recbole("BERT4Rec", tmp_path, "toy", tmp_path / "out.json")


def test_peer_rankings_map_back_to_liverec_ids() -> None:
    result = {
        "model": "SASRec", "recbole_version": "1.2.1", "config": {"hidden_size": 64}, "epochs_trained": 3,
        "best_epoch": 1, "valid_recbole": {"ndcg@10": 0.5}, "test_recbole": {"ndcg@10": 0.25},
        "seconds": {"train": 1.0, "eval": 0.5}, "test": {"u0": ["i1", "i0"]},
    }
    run = peer_result(result, {"users": {"u0": "ann lee"}, "items": {"i0": "blue shirt", "i1": "x"}})
    assert run.ranked == {"ann lee": ["x", "blue shirt"]}
    assert (run.test_metrics, run.epochs_trained, run.best_epoch) == ({"ndcg@10": 0.25}, 3, 1)
    assert "test" not in run.raw
    with pytest.raises(PeerRunError, match="valid_recbole"):
        peer_result({k: v for k, v in result.items() if k != "valid_recbole"}, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "BERT4Rec"], "argument --model: invalid choice: 'BERT4Rec'"),
        (["--model", "SASRec", "--topk", "0"], "--topk must be at least 1, got 0"),
        (["--model", "SASRec", "--dataset", "nope"], "missing input file"),
    ],
)
def test_the_runner_rejects_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    # The runner checks its arguments and files before importing RecBole, so any Python can run this.
    base = {"--data-dir": str(tmp_path), "--dataset": "toy", "--out": str(tmp_path / "o.json")}
    for key, value in base.items():
        if key not in args:
            args = [*args, key, value]
    done = subprocess.run([sys.executable, str(PEER_RUNNER), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def synthetic_split() -> LeaveOneOut:
    """60 users walking a ring of 30 items from their own start: the next item is always predictable."""
    events = []
    for n in range(60):
        events += [ev(f"user {n}", f"item {(n + k) % 30}") for k in range(4 + n % 5)]
    return leave_one_out(events)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["SASRec", "GRU4Rec"])
def test_a_peer_ranks_topk_distinct_known_items_for_every_test_user(tmp_path: Path, model: str) -> None:
    problem = peer_environment_problem()
    if problem is not None:
        pytest.skip(f"RecBole peers cannot run here: {problem}")
    split = synthetic_split()
    write_atomic_split(split, tmp_path, "ring")
    progress: list[str] = []
    out = tmp_path / "peer.json"
    run = run_recbole(model, tmp_path, "ring", out, topk=10, epochs=2, on_progress=progress.append)

    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result) >= {
        "model", "recbole_version", "config", "epochs_trained", "best_epoch", "valid_recbole", "test_recbole",
        "seconds", "test",
    }
    assert result["recbole_version"] == run.version == "1.2.1"
    assert result["config"]["loss_type"] == "CE" and result["config"]["MAX_ITEM_LIST_LENGTH"] == 50
    assert run.epochs_trained == 2 and run.best_epoch in (0, 1)
    assert set(run.seconds) >= {"train", "eval"}
    for metrics in (run.valid_metrics, run.test_metrics):
        assert {f"{m}@{k}" for m in ("recall", "mrr", "ndcg") for k in (5, 10, 20)} <= set(metrics)
    assert len([line for line in progress if line.startswith("epoch ")]) == 2  # one progress line per epoch

    known = {f"item {k}" for k in range(30)}
    assert set(run.ranked) == set(split.test)
    for user, items in run.ranked.items():
        assert len(items) == 10 and len(set(items)) == 10, user
        assert set(items) <= known, user


@pytest.mark.slow
def test_a_time_budget_stops_training_and_says_so(tmp_path: Path) -> None:
    problem = peer_environment_problem()
    if problem is not None:
        pytest.skip(f"RecBole peers cannot run here: {problem}")
    write_atomic_split(synthetic_split(), tmp_path, "ring")
    lines: list[str] = []
    # A budget shorter than one epoch: the first epoch runs (there must be a best epoch), no second.
    run = run_recbole("SASRec", tmp_path, "ring", tmp_path / "peer.json", topk=10, epochs=50,
                      max_minutes=1e-4, on_progress=lines.append)
    assert run.budget_stopped and run.epochs_trained == 1 and run.best_epoch == 0
    assert any("time budget" in line for line in lines)
    assert len(run.ranked) > 0
