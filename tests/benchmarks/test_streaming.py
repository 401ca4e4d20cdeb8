"""The streaming benchmark's split and the rtrec peer's input, on a hand-made stream (no rtrec needed).

``benchmarks/`` and ``peers/`` are scripts, not packages, so both are loaded from their files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from liverec.core.types import Event

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


streaming = _load("streaming_benchmark", ROOT / "benchmarks" / "streaming.py")
rtrec_peer = _load("rtrec_peer", ROOT / "peers" / "rtrec_peer.py")


def rate(user: str, item: str, t: float, value: float = 4.0) -> Event:
    return Event.create(user, "rate", item, value=value, timestamp=T0 + t)


def stream() -> list[Event]:
    """a, b, c end on i4, i3, i5; d has one rating only; a searches after their last rating."""
    return [
        rate("a", "i1", 1), rate("b", "i1", 2), rate("a", "i2", 3), rate("c", "i3", 4), rate("b", "i2", 5),
        rate("a", "i3", 6), rate("c", "i4", 7), rate("b", "i5", 8), rate("d", "i1", 9), rate("a", "i4", 10, 5.0),
        Event.create("a", "search", text="space westerns", timestamp=T0 + 10.5),
        rate("c", "i5", 11, 2.0), rate("b", "i3", 12),
    ]


def times(events: list[Event]) -> list[float]:
    return [e.timestamp - T0 for e in events]


def test_last_rating_of_each_user_is_held_out_and_the_rest_cut_at_the_fraction() -> None:
    split = streaming.split_stream(stream(), fraction=0.2)
    assert {u: (e.item_id, e.timestamp - T0) for u, e in split.test.items()} == {
        "a": ("i4", 10), "c": ("i5", 11), "b": ("i3", 12),
    }
    # 10 events remain (d's only rating and a's search stay); int(10 * 0.2) = 2 are trained on once.
    assert times(split.train) == [1, 2]
    assert times(split.stream) == [3, 4, 5, 6, 7, 8, 9, 10.5]
    assert split.had() == {"a": {"i1", "i2", "i3"}, "b": {"i1", "i2", "i5"}, "c": {"i3", "i4"}, "d": {"i1"}}


def test_a_larger_fraction_moves_the_cut_and_nothing_else() -> None:
    split = streaming.split_stream(stream(), fraction=0.5)
    assert times(split.train) == [1, 2, 3, 4, 5]
    assert times(split.stream) == [6, 7, 8, 9, 10.5]
    assert sorted(split.test) == ["a", "b", "c"]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_fraction_must_lie_strictly_between_0_and_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        streaming.split_stream(stream(), fraction=fraction)


def test_events_out_of_time_order_are_refused() -> None:
    events = stream()
    events[0], events[1] = events[1], events[0]
    with pytest.raises(ValueError, match="sorted by timestamp"):
        streaming.split_stream(events)


def test_the_peer_reads_back_train_and_stream_in_order_and_never_a_held_out_item(tmp_path: Path) -> None:
    split = streaming.split_stream(stream(), fraction=0.2)
    path = tmp_path / "events.tsv"
    streaming.write_peer_input(split, path)
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r[0] for r in rows] == ["train"] * 2 + ["stream"] * 7 + ["test"] * 3  # the search is not written
    assert [r[2:] for r in rows if r[0] == "test"] == [["", repr(split.test[u].timestamp), ""] for u in "abc"]

    data = rtrec_peer.read_events(path)
    assert data.train == [("a", "i1", T0 + 1, 4.0), ("b", "i1", T0 + 2, 4.0)]
    assert [(u, i, t - T0) for u, i, t, _ in data.stream] == [
        ("a", "i2", 3), ("c", "i3", 4), ("b", "i2", 5), ("a", "i3", 6), ("c", "i4", 7), ("b", "i5", 8), ("d", "i1", 9),
    ]
    assert data.test_users == ["a", "b", "c"]


def test_the_peer_refuses_a_test_row_that_carries_an_item(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    path.write_text(f"train\ta\ti1\t{T0}\t4.0\ntest\ta\ti2\t{T0 + 1}\t\n", encoding="utf-8")
    with pytest.raises(rtrec_peer.BadInput, match="test row must leave item_id"):
        rtrec_peer.read_events(path)


def test_a_synthetic_stream_is_in_time_order_over_its_own_catalog_and_splits_like_movielens() -> None:
    items, events = streaming.synthetic_stream(300, 4000, seed=2)
    assert len(items) == 300 and len(events) == 4000
    assert times(events) == sorted(times(events))
    catalog = {item.item_id for item in items}
    assert {e.item_id for e in events if e.item_id is not None} <= catalog
    split = streaming.split_stream(events, 0.2)
    assert split.test and len(split.train) + len(split.stream) + len(split.test) == 4000
    assert streaming.synthetic_stream(300, 4000, seed=2)[1] == events  # seeded


@pytest.mark.parametrize("text", ["10000", "0:5", "a:b", "10:-1", ":"])
def test_a_synthetic_size_must_be_two_positive_integers(text: str) -> None:
    with pytest.raises(streaming.argparse.ArgumentTypeError, match="ITEMS:EVENTS"):
        streaming._synthetic_size(text)
    assert streaming._synthetic_size("10:20") == (10, 20)
