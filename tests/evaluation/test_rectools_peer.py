"""The RecTools peer path: split files, the way back to liverec's ids, the harness's handling, and
(slow) real runs of RecTools' SASRec.

The fast tests pin the exact files :func:`write_rectools_split` writes for a hand-made split and run
the runner only as far as its input checks (they need no RecTools). The slow ones train for real in
``.venv-rectools`` and skip, saying why, where it is not built.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from liverec.cli import app
from liverec.core.errors import InvalidInputError, LiveRecError
from liverec.core.types import Event, EventType
from liverec.evaluation import harness
from liverec.evaluation.metrics import per_user_metrics
from liverec.evaluation.recbole_peers import PeerRunError, peer_result
from liverec.evaluation.rectools_peers import (
    HEADER,
    RECTOOLS_RUNNER,
    SETTINGS,
    rectools_environment_problem,
    run_rectools,
    write_rectools_split,
)
from liverec.evaluation.splits import LeaveOneOut, leave_one_out
from liverec.evaluation.systems import SYSTEMS
from tests.evaluation.test_cli_evaluate import tiny_csv

_clock = iter(range(1_000_000))


def ev(user: str, item: str | None, type: str = "view", text: str | None = None) -> Event:
    return Event.create(user, type, item, text=text, timestamp=float(next(_clock)))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def runner_module() -> ModuleType:
    """peers/rectools_peer.py as a module: it imports RecTools only inside ``run``."""
    spec = importlib.util.spec_from_file_location("rectools_peer", RECTOOLS_RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_user_item_rows_for_a_known_split(tmp_path: Path) -> None:
    # ann: a b c | valid d | test e, with a search in between that must not enter the history;
    # bob: x y | valid a | test b; cy: too short to split, contributes only train rows.
    events = [
        ev("ann", "a"), ev("bob", "x"), ev("ann", "b"), ev("ann", None, "search", text="red shoes"),
        ev("bob", "y"), ev("ann", "c"), ev("cy", "y"), ev("cy", "x"), ev("bob", "a"), ev("ann", "d"),
        ev("bob", "b"), ev("ann", "e"),
    ]
    tokens = write_rectools_split(leave_one_out(events), tmp_path, "toy")

    # Users by first event (ann, bob, cy); items along each user's sequence, then the targets.
    assert tokens == {
        "u0": "ann", "u1": "bob", "u2": "cy",
        "i0": "a", "i1": "b", "i2": "c", "i3": "d", "i4": "e", "i5": "x", "i6": "y",
    }
    # Users one after another, each in time order: the runner reads the row order as the time.
    assert read(tmp_path / "toy.train.tsv") == HEADER + "u0\ti0\nu0\ti1\nu0\ti2\nu1\ti5\nu1\ti6\nu2\ti6\nu2\ti5\n"
    assert read(tmp_path / "toy.valid.tsv") == HEADER + "u0\ti3\nu1\ti0\n"
    assert read(tmp_path / "toy.test.tsv") == HEADER + "u0\ti4\nu1\ti1\n"
    kept = json.loads(read(tmp_path / "toy.tokens.json"))
    assert {**kept["users"], **kept["items"]} == tokens


def test_long_histories_are_written_whole(tmp_path: Path) -> None:
    # RecTools keeps the last 50 itself (session_max_len); cutting here would hide that from its config.
    items = [f"item {n}" for n in range(60)]
    tokens = write_rectools_split(leave_one_out([ev("long", i) for i in items]), tmp_path, "long")
    rows = [line.split("\t") for line in read(tmp_path / "long.train.tsv").splitlines()[1:]]
    assert [tokens[i] for _, i in rows] == items[:58]
    last = next(t for t, i in tokens.items() if i == items[59])
    assert read(tmp_path / "long.test.tsv") == HEADER + f"u0\t{last}\n"


def test_ids_with_spaces_and_tabs_round_trip_through_tokens(tmp_path: Path) -> None:
    users = ["user one", "user\ttwo", "ünï"]
    items = ["blue shirt", "tab\titem", "x", "y z", "a,b"]
    tokens = write_rectools_split(leave_one_out([ev(u, i) for u in users for i in items]), tmp_path, "odd")
    for part in ("train", "valid", "test"):
        for line in read(tmp_path / f"odd.{part}.tsv").splitlines()[1:]:
            user, item = line.split("\t")
            assert user in tokens and item in tokens and " " not in line
    valid = dict(line.split("\t") for line in read(tmp_path / "odd.valid.tsv").splitlines()[1:])
    assert {tokens[u]: tokens[i] for u, i in valid.items()} == dict.fromkeys(users, items[3])


def test_a_user_without_training_items_gets_no_target_rows(tmp_path: Path) -> None:
    split = LeaveOneOut(train=[ev("solo", "p"), ev("solo", "q")], valid={"new": ev("new", "p")},
                        test={"new": ev("new", "q"), "solo": ev("solo", "r")})
    tokens = write_rectools_split(split, tmp_path, "solo")
    assert read(tmp_path / "solo.valid.tsv") == HEADER
    assert read(tmp_path / "solo.test.tsv") == HEADER + "u0\ti2\n"
    assert tokens["i2"] == "r"


def test_a_bad_split_name_or_a_search_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="split name 'a b'"):
        write_rectools_split(LeaveOneOut(train=[], valid={}, test={}), tmp_path, "a b")
    split = LeaveOneOut(train=[ev("s", "a")], valid={"s": ev("s", None, EventType.SEARCH.value, text="q")}, test={})
    with pytest.raises(InvalidInputError, match="validation target is a search event"):
        write_rectools_split(split, tmp_path, "s")


def test_a_missing_environment_says_make_peers(tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    assert rectools_environment_problem(python=missing) == f"no peer environment at {missing}: run `make peers`"
    with pytest.raises(PeerRunError, match="run `make peers`") as caught:
        run_rectools("SASRec", tmp_path, "toy", tmp_path / "out.json", python=missing)
    assert isinstance(caught.value, LiveRecError)


def test_an_unknown_rectools_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="RecTools peer model 'BERT4Rec' is not one of SASRec"):
        run_rectools("BERT4Rec", tmp_path, "toy", tmp_path / "out.json")


def test_rankings_map_back_to_liverec_ids() -> None:
    result = {
        "model": "SASRec", "rectools_version": "0.19.0", "config": {"n_factors": 64}, "epochs_trained": 7,
        "best_epoch": 4, "budget_stopped": True, "valid_rectools": {"ndcg@10": 0.5},
        "test_rectools": {"ndcg@10": 0.25}, "seconds": {"train": 1.0}, "test": {"u0": ["i1", "i0"]},
    }
    run = peer_result(result, {"users": {"u0": "ann lee"}, "items": {"i0": "blue shirt", "i1": "x"}},
                      library="RecTools", settings=SETTINGS)
    assert run.ranked == {"ann lee": ["x", "blue shirt"]}
    assert (run.library, run.version, run.settings) == ("RecTools", "0.19.0", SETTINGS)
    assert (run.valid_metrics, run.test_metrics, run.epochs_trained, run.best_epoch, run.budget_stopped) == (
        {"ndcg@10": 0.5}, {"ndcg@10": 0.25}, 7, 4, True)
    assert "test" not in run.raw
    with pytest.raises(PeerRunError, match="RecTools peer's result .* 'rectools_version'"):
        peer_result({k: v for k, v in result.items() if k != "rectools_version"}, None, library="RecTools")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "BERT4Rec"], "argument --model: invalid choice: 'BERT4Rec'"),
        (["--patience", "0"], "--patience must be at least 1, got 0"),
        (["--dataset", "nope"], "missing input file"),
    ],
)
def test_the_runner_rejects_bad_arguments_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    # The runner checks its arguments and files before importing RecTools, so any Python can run this.
    base = {"--data-dir": str(tmp_path), "--dataset": "toy", "--out": str(tmp_path / "o.json")}
    args = [*args, *(part for key, value in base.items() if key not in args for part in (key, value))]
    done = subprocess.run([sys.executable, str(RECTOOLS_RUNNER), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"valid": "u0\ti1\nu0\ti2\n"}, "user u0 has more than one target"),
        ({"test": "u9\ti1\n"}, "user u9 has no training history"),
        ({"train": "u0 i0\n"}, "toy.train.tsv:2: expected user<TAB>item"),
        ({"valid": ""}, "has no rows: early stopping needs validation targets"),
    ],
)
def test_the_runner_rejects_bad_files_in_one_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    rows = {"train": "u0\ti0\nu0\ti1\n", "valid": "u0\ti2\n", "test": "u0\ti3\n", **files}
    for part, body in rows.items():
        (tmp_path / f"toy.{part}.tsv").write_text(HEADER + body, encoding="utf-8")
    done = subprocess.run([sys.executable, str(RECTOOLS_RUNNER), "--data-dir", str(tmp_path), "--dataset", "toy",
                           "--out", str(tmp_path / "o.json")], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


@pytest.mark.parametrize("rank", [0, 1, 4, 9, 19, 25])
def test_the_runners_metrics_agree_with_the_harness(rank: int) -> None:
    ranked = [f"x{n}" for n in range(30)]
    expected = per_user_metrics(ranked, {ranked[rank]})
    got = {name: float(values[0]) for name, values in runner_module().rank_metrics([rank]).items()}
    assert got == pytest.approx(expected)
    missed = runner_module().rank_metrics([math.inf])
    assert all(float(values[0]) == 0.0 for values in missed.values())


def test_the_harness_knows_rectools_and_reports_a_missing_environment(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert "rectools" in SYSTEMS and harness.PEERS["rectools"] == ("RecTools", "SASRec")
    _, write, run, folder = harness.PEER_LIBRARIES["RecTools"]
    monkeypatch.setitem(harness.PEER_LIBRARIES, "RecTools",
                        (lambda: "no peer environment at nowhere: run `make peers`", write, run, folder))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tiny_csv(tmp_path / "data")), "--format", "csv",
                                      "--protocol", "loo,temporal", "--systems", "pop,rectools", "--out", str(out)])
    assert result.exit_code == 0, result.output
    loo, temporal = json.loads((out / "results.json").read_text())["runs"]
    assert set(loo["systems"]) == {"pop"} and set(temporal["systems"]) == {"pop"}
    assert "rectools: could not run here — no peer environment at nowhere: run `make peers`" in loo["notes"]
    assert any(n.startswith("rectools: not run under temporal — RecTools's sequential") for n in temporal["notes"])


def _skip_without_rectools() -> None:
    problem = rectools_environment_problem()
    if problem is not None:
        pytest.skip(f"the RecTools peer cannot run here: {problem}")


def ring_split(users: int = 80, items: int = 40) -> LeaveOneOut:
    """Users walking a ring of items from their own start: the next item is always the one after."""
    events = []
    for n in range(users):
        events += [ev(f"user {n}", f"item {(n + k) % items}") for k in range(4 + n % 5)]
    return leave_one_out(events)


@pytest.mark.slow
def test_the_peer_learns_a_ring_and_ranks_known_items_for_every_test_user(tmp_path: Path) -> None:
    _skip_without_rectools()
    split = ring_split()  # 480 interactions, 40 items
    write_rectools_split(split, tmp_path, "ring")
    progress: list[str] = []
    out = tmp_path / "peer.json"
    # One batch of 80 users is one step per epoch: 15 steps at lr 1e-3 are what the ring takes to show.
    run = run_rectools("SASRec", tmp_path, "ring", out, topk=40, epochs=15, patience=15, on_progress=progress.append)

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["rectools_version"] == run.version == "0.19.0" and run.library == "RecTools"
    assert result["config"]["loss"] == "softmax" and result["config"]["transformer_layers_type"] == "LiGRLayers"
    assert result["config"]["speed"] == "exact"  # and its check against RecTools' own loss passed
    assert run.epochs_trained == 15 and 0 <= run.best_epoch < 15 and not run.budget_stopped
    assert len([line for line in progress if line.startswith("epoch ")]) == 15
    assert set(run.seconds) >= {"train", "eval", "predict", "total"}
    assert {f"{m}@{k}" for m in ("recall", "mrr", "ndcg") for k in (5, 10, 20)} <= set(run.valid_metrics)

    known = {f"item {k}" for k in range(40)}
    assert set(run.ranked) == set(split.test)
    for user, items in run.ranked.items():
        assert len(items) == 40 and set(items) == known, user  # every item, the seen ones too
    # Chance puts the target in the top 10 of 40 items a quarter of the time; the ring is learned.
    hits = sum(split.test[u].item_id in items[:10] for u, items in run.ranked.items())
    assert hits / len(run.ranked) > 0.6
    assert run.test_metrics["recall@10"] == pytest.approx(hits / len(run.ranked))


@pytest.mark.slow
def test_a_time_budget_stops_training_and_says_so(tmp_path: Path) -> None:
    _skip_without_rectools()
    write_rectools_split(ring_split(), tmp_path, "ring")
    lines: list[str] = []
    # A budget shorter than one epoch: the first epoch runs (there must be a best epoch), no second.
    run = run_rectools("SASRec", tmp_path, "ring", tmp_path / "peer.json", topk=10, epochs=50,
                       max_minutes=1e-4, on_progress=lines.append)
    assert run.budget_stopped and run.epochs_trained == 1 and run.best_epoch == 0
    assert any("time budget" in line for line in lines)
    assert len(run.ranked) == len(ring_split().test)


@pytest.mark.slow
def test_the_harness_scores_the_rectools_peer_like_the_recbole_ones(tmp_path: Path) -> None:
    _skip_without_rectools()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tiny_csv(tmp_path / "data")), "--format", "csv",
                                      "--protocol", "loo", "--systems", "rectools", "--peer-epochs", "3",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "results.json").read_text())["runs"][0]
    peer = run["systems"]["rectools"]
    assert peer["users"] == 12
    extra = peer["extra"]
    assert extra["rectools_version"] == "0.19.0" and extra["epochs_trained"] == 3
    assert extra["budget_stopped"] is False and set(extra["harness_unmasked"]) == {"ndcg@10", "recall@10"}
    # Unmasked, the harness and the runner score the same lists the same way.
    assert extra["harness_unmasked"]["ndcg@10"] == pytest.approx(extra["rectools_own_test"]["ndcg@10"], abs=1e-5)
    assert any(n.startswith("RecTools 0.19.0 SASRec (softmax loss, eSASRec's LiGR layers") for n in peer["notes"])
