"""The user-state codec: exact round trips of any state, and refusals that name the problem."""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.types import EVENT_TYPE_NAMES, EventType
from liverec.realtime.codec import FORMAT_VERSION, MAGIC, decode_state, encode_state
from liverec.realtime.state import Interest, RecentAction, UserState

# Offsets of the fixed fields the tests below change (see the codec's layout table).
VERSION_AT, MAXLEN_AT, SEPARATOR_AT, HEADER = 4, 54, 86, 94

texts = st.text(max_size=12) | st.sampled_from(["", "用户", "雨伞和帐篷", "\x00", "a\x00b\x01"])
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([-0.0, 5e-324, -1.7976931348623157e308])
int64s = st.integers(-(2**63), 2**63 - 1)
vectors = st.none() | hnp.arrays(
    np.float32, st.integers(0, 8), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)
)


@st.composite
def actions(draw: st.DrawFn) -> RecentAction:
    return RecentAction(
        draw(texts),
        draw(st.sampled_from(EventType)),
        draw(st.none() | texts),
        draw(st.none() | texts),
        draw(floats),
        draw(floats),
    )


@st.composite
def interests(draw: st.DrawFn) -> Interest:
    vector = draw(hnp.arrays(np.float32, st.integers(0, 8), elements=st.floats(width=32, allow_nan=False,
                                                                               allow_infinity=False)))
    return Interest(vector, draw(floats), draw(st.dictionaries(texts, floats, max_size=4)))


@st.composite
def user_states(draw: st.DrawFn) -> UserState:
    maxlen = draw(st.integers(1, 100))
    return UserState(
        user_id=draw(texts),
        recent=deque(draw(st.lists(actions(), max_size=min(maxlen, 8))), maxlen=maxlen),
        short_vec=draw(vectors),
        short_ts=draw(floats),
        neg_vec=draw(vectors),
        neg_ts=draw(floats),
        tags=draw(st.dictionaries(texts, floats, max_size=6)),
        tags_ts=draw(floats),
        interactions=draw(st.dictionaries(texts, floats, max_size=6)),
        seen=draw(st.sets(texts, max_size=6)),
        dismissed=draw(st.sets(texts, max_size=6)),
        last_ts=draw(floats),
        n_events=draw(int64s),
        version=draw(int64s),
        interests=draw(st.lists(interests(), max_size=4)),
        shown=draw(st.dictionaries(texts, st.integers(0, 2**32 - 1), max_size=5)),
    )


def action(event_id: str = "e1", type_: EventType = EventType.VIEW, item_id: str | None = "i1") -> RecentAction:
    return RecentAction(event_id, type_, item_id, None, 1.0, 1.0)


def small_state() -> UserState:
    """One action of every kind of None, a vector, a tag, a seen and a dismissed item."""
    return UserState(
        "u1",
        deque([action(), RecentAction("e2", EventType.SEARCH, None, "红色的鞋", 2.0, 2.0)], maxlen=5),
        short_vec=np.array([1.0, -0.0, 2.5], dtype=np.float32),
        short_ts=2.0,
        tags={"shoes": 3.0},
        interactions={"i1": 1.0},
        seen={"i1", "i2"},
        dismissed={"i2"},
        last_ts=2.0,
        n_events=2,
        version=2,
    )


def bits(state: UserState) -> list[int]:
    """The bit patterns of every float of a state, so -0.0 and 0.0 differ."""
    values = [state.short_ts, state.neg_ts, state.tags_ts, state.last_ts]
    values += [x for a in state.recent for x in (a.timestamp, a.weight)]
    values += [*state.tags.values(), *state.interactions.values()]
    values += [x for i in state.interests for x in (i.ts, *i.tags.values())]
    return [struct.unpack("<q", struct.pack("<d", x))[0] for x in values]


# --- round trips ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(user_states())
@example(UserState.empty("", recent_length=1))
@example(small_state())
def test_any_state_round_trips_exactly(state: UserState) -> None:
    data = encode_state(state)
    decoded = decode_state(data)
    assert decoded == state
    assert bits(decoded) == bits(state)
    assert encode_state(decoded) == data
    assert decode_state(bytearray(data)) == state  # any bytes-like object reads
    assert decode_state(memoryview(data)) == state
    for vec, original in ((decoded.short_vec, state.short_vec), (decoded.neg_vec, state.neg_vec)):
        if vec is not None:
            assert vec.dtype == np.float32 and vec.flags.writeable
            assert vec.tobytes() == np.asarray(original).tobytes()  # -0.0 stays -0.0
    assert all(type(a.type) is EventType for a in decoded.recent)


def test_the_header_starts_with_magic_and_version() -> None:
    data = encode_state(small_state())
    assert data[:4] == MAGIC == b"LRUS"
    assert struct.unpack_from("<H", data, VERSION_AT) == (FORMAT_VERSION,) == (2,)
    assert struct.unpack_from("<i", data, MAXLEN_AT) == (5,)


def test_equal_states_give_equal_bytes_whatever_their_sets_history() -> None:
    many = {f"i{n}" for n in range(100)}
    grown = small_state()
    grown.seen |= many
    grown.seen -= many
    grown.seen |= many
    built = small_state()
    built.seen = {f"i{n}" for n in reversed(range(100))} | {"i1", "i2"}
    assert grown == built
    assert encode_state(grown) == encode_state(built)


def test_the_separator_is_the_lowest_code_point_no_string_holds() -> None:
    state = small_state()
    assert struct.unpack_from("<I", encode_state(state), SEPARATOR_AT) == (0,)
    state.tags = {"a\x00b": 1.0}
    assert struct.unpack_from("<I", encode_state(state), SEPARATOR_AT) == (1,)
    state.seen.add("\x01")
    data = encode_state(state)
    assert struct.unpack_from("<I", data, SEPARATOR_AT) == (2,)
    assert decode_state(data) == state


def test_an_unbounded_recent_sequence_round_trips() -> None:
    state = UserState("u1", deque([action()]))
    decoded = decode_state(encode_state(state))
    assert decoded.recent.maxlen is None and decoded == state


def test_to_bytes_and_from_bytes_use_the_codec() -> None:
    state = small_state()
    assert state.to_bytes() == encode_state(state)
    assert UserState.from_bytes(state.to_bytes()) == state


# --- equality ------------------------------------------------------------------------------------


def test_copy_is_equal_and_not_the_same_object() -> None:
    state = small_state()
    copy = state.copy()
    assert copy == state and copy is not state
    assert copy.short_vec is not state.short_vec and copy.recent is not state.recent


@pytest.mark.parametrize(
    "change",
    [
        lambda s: setattr(s, "user_id", "u2"),
        lambda s: setattr(s, "recent", deque(s.recent, maxlen=6)),
        lambda s: s.recent.pop(),
        lambda s: setattr(s, "short_vec", None),
        lambda s: setattr(s, "neg_vec", np.zeros(3, dtype=np.float32)),
        lambda s: setattr(s, "short_vec", s.short_vec.astype(np.float64)),
        lambda s: setattr(s, "short_vec", s.short_vec.reshape(1, 3)),
        lambda s: setattr(s, "short_vec", s.short_vec[:2]),
        lambda s: s.short_vec.__setitem__(0, 1.5),
        lambda s: setattr(s, "short_ts", 3.0),
        lambda s: setattr(s, "neg_ts", 3.0),
        lambda s: s.tags.__setitem__("shoes", 2.0),
        lambda s: setattr(s, "tags_ts", 3.0),
        lambda s: s.interactions.pop("i1"),
        lambda s: s.seen.add("i3"),
        lambda s: s.dismissed.clear(),
        lambda s: setattr(s, "last_ts", 3.0),
        lambda s: setattr(s, "n_events", 3),
        lambda s: setattr(s, "version", 3),
    ],
)
def test_a_change_of_any_field_makes_states_unequal(change: Callable[[Any], object]) -> None:
    state = small_state()
    change(state)
    assert state != small_state() and small_state() != state


def test_a_state_equals_no_other_kind_of_object_and_is_not_hashable() -> None:
    assert small_state() != "u1"
    assert small_state() != None  # noqa: E711 - the comparison itself is under test
    with pytest.raises(TypeError, match="unhashable"):
        hash(small_state())


# --- what a reader refuses -----------------------------------------------------------------------


def refused(data: bytes, message: str) -> None:
    with pytest.raises(StorageError, match=re.escape(message)):
        decode_state(data)


def test_bad_magic_is_refused() -> None:
    data = encode_state(small_state())
    refused(b"LRUX" + data[4:], "user state bytes start with b'LRUX', not the magic b'LRUS'")
    refused(b"\x80\x04\x95\x00" + data[4:], "start with b'\\x80\\x04\\x95\\x00', not the magic b'LRUS'")  # a pickle


def test_a_newer_format_version_is_refused() -> None:
    data = encode_state(small_state())
    newer = data[:VERSION_AT] + struct.pack("<H", 7) + data[VERSION_AT + 2 :]
    with pytest.raises(StorageError) as caught:
        decode_state(newer)
    assert str(caught.value) == "user state format version 7; this liverec reads up to 2"
    zero = data[:VERSION_AT] + struct.pack("<H", 0) + data[VERSION_AT + 2 :]
    refused(zero, "user state format version 0 does not exist")


def test_every_truncation_is_refused() -> None:
    data = encode_state(small_state())
    for size in range(len(data)):
        refused(data[:size], "user state bytes are truncated")
    refused(b"", f"user state bytes are truncated: 0 bytes, shorter than the {HEADER}-byte header")
    refused(data[:-1], "user state bytes are truncated")
    shown = small_state()
    shown.shown = {"i9": 3}
    full = encode_state(shown)
    refused(full[:-1], f"truncated: {len(full) - 1} bytes where the header announces {len(full)}")


def test_format_1_bytes_still_read_as_a_state_with_nothing_shown_and_no_interests() -> None:
    state = small_state()
    state.shown = {"i9": 2}
    state.interests = [Interest(np.ones(3, dtype=np.float32), 1.0, {"shoes": 2.0})]
    data = encode_state(state)
    body = len(encode_state(small_state())) - 16  # what format 1 wrote: everything before the extension
    v1 = data[:VERSION_AT] + struct.pack("<H", 1) + data[VERSION_AT + 2 : body]
    assert decode_state(v1) == small_state()


def test_trailing_bytes_are_refused() -> None:
    data = encode_state(small_state())
    refused(data + b"\x00", f"trailing bytes: {len(data) + 1} bytes where the header announces {len(data)}")
    refused(data + data, "user state bytes have trailing bytes")


def test_an_unknown_event_type_is_refused() -> None:
    data = encode_state(UserState("u1", deque([action()], maxlen=3)))
    assert data.count(b"view") == 1
    refused(data.replace(b"view", b"vuew"), f"user state holds unknown event type 'vuew'; known: {EVENT_TYPE_NAMES}")


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d.replace(b"shoes", b"sh\x00es"), "the text block holds 15 strings, not 14"),
        (lambda d: d.replace(b"shoes", b"sh\xffes"), "the text block does not decode"),
        (
            lambda d: d.replace(b"i1\x00i2\x00i2", b"i1\x00i1\x00i2"),
            "a tag, interaction, seen or dismissed item is repeated",
        ),
        (lambda d: d[:MAXLEN_AT] + struct.pack("<i", 1) + d[MAXLEN_AT + 4 :], "2 recent actions but maxlen 1"),
        (lambda d: d[:MAXLEN_AT] + struct.pack("<i", -2) + d[MAXLEN_AT + 4 :], "maxlen -2, vector dimensions 3, -1"),
        (
            lambda d: d[:SEPARATOR_AT] + struct.pack("<I", 0x110000) + d[SEPARATOR_AT + 4 :],
            "the text block does not decode",
        ),
    ],
)
def test_corrupt_bytes_are_refused_naming_the_problem(corrupt: Callable[[bytes], bytes], message: str) -> None:
    data = encode_state(small_state())
    refused(corrupt(data), f"user state bytes are corrupt: {message}")


def test_flags_that_do_not_match_the_strings_are_refused() -> None:
    data = encode_state(small_state())
    flags_at = HEADER + 3 * 4 + 2 * 2 * 8 + 8 + 8  # after short_vec, 2 timestamps and weights, 1 tag, 1 interaction
    assert data[flags_at : flags_at + 2] == bytes([2, 1])  # e1: no text; e2: no item
    refused(data[:flags_at] + bytes([6]) + data[flags_at + 1 :], "recent action 0 has flags 6")
    refused(data[:flags_at] + bytes([3]) + data[flags_at + 1 :], "recent action 0 has flags 3")  # item i1 is there


# --- what a writer refuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "shape"),
    [(np.zeros(3, dtype=np.float64), "float64 and shape (3,)"), (np.zeros((1, 3), dtype=np.float32), "(1, 3)")],
)
def test_a_vector_the_format_cannot_hold_exactly_is_refused(vector: np.ndarray, shape: str) -> None:
    state = small_state()
    state.neg_vec = vector
    with pytest.raises(InvalidInputError, match=re.escape(shape)) as caught:
        encode_state(state)
    assert caught.value.field == "neg_vec"


def test_a_string_that_is_not_unicode_is_refused() -> None:
    state = small_state()
    state.seen.add("\ud800")
    with pytest.raises(InvalidInputError, match="'u1' holds a string that is not valid Unicode"):
        encode_state(state)


def test_a_number_too_large_for_its_field_is_refused() -> None:
    state = small_state()
    state.n_events = 2**63
    with pytest.raises(InvalidInputError, match="'u1' does not fit the user state format"):
        encode_state(state)


def test_an_event_type_that_is_not_one_is_refused() -> None:
    state = UserState("u1", deque([RecentAction("e1", "teleport", "i1", None, 1.0, 1.0)]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="'u1' holds event type 'teleport', not one of view, click"):
        encode_state(state)
