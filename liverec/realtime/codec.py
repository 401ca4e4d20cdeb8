"""Versioned bytes for a :class:`~liverec.realtime.state.UserState`: how a shared store keeps one.

A state store outside this process (Redis) holds bytes, and a state written by one liverec
may be read by another, so the bytes carry a magic and a format version, like numpy's
``.npy`` header, and never a pickle. The reader refuses, with
:class:`~liverec.core.errors.StorageError`, what it does not know: a wrong magic, a newer
format version, bytes cut short or followed by more, an event type it has no name for.

Format version 2 is format 1's layout (below) followed by an extension; every number is
little-endian, and an ``i32`` marked "or -1" stores None as -1:

=======  ====  =======  ==================================================================
offset   size  type     field
=======  ====  =======  ==================================================================
0        4     bytes    magic ``b"LRUS"``
4        2     u16      format version, 1
6        8     f64      ``short_ts``
14       8     f64      ``neg_ts``
22       8     f64      ``tags_ts``
30       8     f64      ``last_ts``
38       8     i64      ``n_events``
46       8     i64      ``version``
54       4     i32      ``recent.maxlen``, or -1 (unbounded)
58       4     u32      R, the number of recent actions
62       4     i32      a, the dimension of ``short_vec``, or -1 (None)
66       4     i32      b, the dimension of ``neg_vec``, or -1 (None)
70       4     u32      T, the number of ``tags``
74       4     u32      I, the number of ``interactions``
78       4     u32      S, the number of ``seen`` items
82       4     u32      D, the number of ``dismissed`` items
86       4     u32      the separator of the text block, a code point
90       4     u32      B, the byte length of the text block
94       4a    f32[a]   ``short_vec``
…        4b    f32[b]   ``neg_vec``
…        8R    f64[R]   ``timestamp`` of each recent action, oldest first
…        8R    f64[R]   ``weight`` of each recent action
…        8T    f64[T]   tag weights, in the dict's order
…        8I    f64[I]   interaction weights, in the dict's order
…        R     u8[R]    per recent action: 1 if its ``item_id`` is None, + 2 if its ``text`` is
…        B     UTF-8    the text block: N = 1 + 4R + T + I + S + D strings, joined by the separator
=======  ====  =======  ==================================================================

The extension (format 2): ``u32`` H, the number of ``shown`` items; ``u32`` K, the number of
``interests``; ``u32`` the extension's separator; ``u32`` B2, its text bytes; then per interest
``i32`` its vector's dimension, ``f64`` its ``ts``, ``u32`` its number of tags; the interests'
float32 vectors; their tag weights (f64); the shown counts (``u32[H]``); and B2 bytes of UTF-8:
the shown item ids, then each interest's tag names, joined by the separator. A format 1 state
reads as one with nothing shown and no interests.

The strings of the text block are, in order: ``user_id``; per recent action its ``event_id``,
its event type (``EventType.value``), its ``item_id`` and its ``text`` (empty when None); the
tag names; the interaction item ids; ``seen``, then ``dismissed``, each sorted, so equal states
give equal bytes (a set's iteration order depends on its history; a reader accepts any order).
Timestamps and weights are float64, so they round-trip exactly; vectors are the float32
values the state holds.

The separator is the lowest code point that no string contains (U+0000 unless one does), so
the reader cuts every string out with one ``str.split``: 26 µs for the 685 strings of a state of
50 actions, 64 tags, 200 interactions and 220 seen or dismissed items, where slicing them by
stored lengths took 66 µs. ``docs/state-format.md`` has this table and what a reader refuses.

>>> from liverec.realtime.state import UserState
>>> state = UserState.empty("u1", recent_length=3)
>>> data = encode_state(state)
>>> data[:6], len(data)
(b'LRUS\\x02\\x00', 112)
>>> decode_state(data) == state
True
>>> decode_state(data[:-1])
Traceback (most recent call last):
...
liverec.core.errors.StorageError: user state bytes are truncated: 111 bytes, shorter than the format 2 extension
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence

import numpy as np

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.types import EVENT_TYPE_NAMES, EventType
from liverec.realtime.state import Interest, UserState, _action

MAGIC = b"LRUS"
FORMAT_VERSION = 2

_PREFIX = struct.Struct("<4sH")
# short_ts, neg_ts, tags_ts, last_ts, n_events, version, maxlen, R, a, b, T, I, S, D, separator, B
_FIXED = struct.Struct("<ddddqqiIiiIIIIII")
_BODY = _PREFIX.size + _FIXED.size  # where the variable part starts: 94
_NONE = -1
_ITEM_NONE, _TEXT_NONE = 1, 2  # the bits of a recent action's flags
# Format 2's extension, after the text block: H shown items, K interests, its separator, its text bytes
_EXTENSION = struct.Struct("<IIII")
_INTEREST = struct.Struct("<idI")  # per interest: vector dimension, reference time, number of tags

# Event types by their stored name; a StrEnum hashes as its value, so a plain "view" finds VIEW too.
_TYPES: dict[str, EventType] = {t.value: t for t in EventType}
_TYPE_NAMES: dict[str, str] = {t.value: t.value for t in EventType}


def encode_state(state: UserState) -> bytes:
    """The bytes of ``state`` in the current format (see the module docstring).

    Raises :class:`InvalidInputError` for a state the format cannot hold exactly: a vector
    that is not one-dimensional float32, a string that is not valid Unicode (a lone
    surrogate), a number that does not fit its field.
    """
    recent = state.recent
    strings = [state.user_id]
    try:
        for action in recent:
            strings += (action.event_id, _TYPE_NAMES[action.type], action.item_id or "", action.text or "")
    except KeyError as error:
        raise InvalidInputError(
            f"user state {state.user_id!r} holds event type {error.args[0]!r}, not one of {EVENT_TYPE_NAMES}",
            field="recent",
            value=error.args[0],
        ) from None
    strings += state.tags
    strings += state.interactions
    strings += sorted(state.seen)
    strings += sorted(state.dismissed)
    separator = 0
    text = "\0".join(strings)
    if text.count("\0") != len(strings) - 1:  # a string holds U+0000: take the lowest code point none holds
        separator = _free_code_point("".join(strings))
        text = chr(separator).join(strings)
    try:
        text_bytes = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInputError(
            f"user state {state.user_id!r} holds a string that is not valid Unicode: {error.reason}",
            field="user_state",
            value=state.user_id,
        ) from None
    floats = [a.timestamp for a in recent]
    floats += [a.weight for a in recent]
    floats += state.tags.values()
    floats += state.interactions.values()
    flags = bytes([(a.item_id is None) * _ITEM_NONE + (a.text is None) * _TEXT_NONE for a in recent])
    short, short_dim = _vector_bytes(state, "short_vec", state.short_vec)
    neg, neg_dim = _vector_bytes(state, "neg_vec", state.neg_vec)
    maxlen = recent.maxlen
    try:
        fixed = _FIXED.pack(
            state.short_ts, state.neg_ts, state.tags_ts, state.last_ts, state.n_events, state.version,
            _NONE if maxlen is None else maxlen, len(recent), short_dim, neg_dim,
            len(state.tags), len(state.interactions), len(state.seen), len(state.dismissed),
            separator, len(text_bytes),
        )  # fmt: skip
        numbers = struct.pack(f"<{len(floats)}d", *floats)
    except struct.error as error:
        raise InvalidInputError(
            f"user state {state.user_id!r} does not fit the user state format: {error}",
            field="user_state",
            value=state.user_id,
        ) from None
    body = (_PREFIX.pack(MAGIC, FORMAT_VERSION), fixed, short, neg, numbers, flags, text_bytes)
    return b"".join((*body, _encode_extension(state)))


def _encode_extension(state: UserState) -> bytes:
    """Format 2's part: the shown-without-action counts and the interests."""
    shown = state.shown
    strings = [*shown]
    headers: list[bytes] = []
    vectors: list[bytes] = []
    weights: list[float] = []
    for n, interest in enumerate(state.interests):
        vector, dim = _vector_bytes(state, f"interests[{n}].vector", interest.vector)
        if dim == _NONE:
            raise InvalidInputError(f"user state {state.user_id!r} has an interest without a vector",
                                    field="interests", value=n)
        headers.append(_INTEREST.pack(dim, interest.ts, len(interest.tags)))
        vectors.append(vector)
        weights += interest.tags.values()
        strings += interest.tags
    text = "\0".join(strings)
    separator = 0
    if strings and text.count("\0") != len(strings) - 1:
        separator = _free_code_point("".join(strings))
        text = chr(separator).join(strings)
    try:
        text_bytes = text.encode("utf-8")
        counts = struct.pack(f"<{len(shown)}I", *shown.values())
        numbers = struct.pack(f"<{len(weights)}d", *weights)
    except (UnicodeEncodeError, struct.error) as error:
        raise InvalidInputError(f"user state {state.user_id!r} does not fit the user state format: {error}",
                                field="user_state", value=state.user_id) from None
    extension = _EXTENSION.pack(len(shown), len(state.interests), separator, len(text_bytes))
    return b"".join((extension, *headers, *vectors, numbers, counts, text_bytes))


def _decode_extension(data: bytes, offset: int) -> tuple[dict[str, int], list[Interest]]:
    """Format 2's part at ``offset``, to the very end of ``data``."""
    size = len(data)
    if size < offset + _EXTENSION.size:
        raise StorageError(f"user state bytes are truncated: {size} bytes, shorter than the format 2 extension")
    n_shown, n_interests, separator, n_text = _EXTENSION.unpack_from(data, offset)
    at = offset + _EXTENSION.size
    if size < at + n_interests * _INTEREST.size:
        raise StorageError(f"user state bytes are truncated: {size} bytes, too few for {n_interests} interests")
    headers = [_INTEREST.unpack_from(data, at + n * _INTEREST.size) for n in range(n_interests)]
    at += n_interests * _INTEREST.size
    if any(dim < 0 for dim, _, _ in headers):
        raise StorageError("user state bytes are corrupt: an interest has a negative vector dimension")
    vectors_at = at
    numbers_at = vectors_at + 4 * sum(dim for dim, _, _ in headers)
    n_weights = sum(n for _, _, n in headers)
    counts_at = numbers_at + 8 * n_weights
    text_at = counts_at + 4 * n_shown
    expected = text_at + n_text
    if size != expected:
        if size < expected:
            raise StorageError(f"user state bytes are truncated: {size} bytes where the header announces {expected}")
        raise StorageError(f"user state bytes have trailing bytes: {size} bytes where the header announces {expected}")
    weights = struct.unpack_from(f"<{n_weights}d", data, numbers_at)
    counts = struct.unpack_from(f"<{n_shown}I", data, counts_at)
    count = n_shown + n_weights
    strings = _strings(data, text_at, n_text, separator, count) if count else []
    shown = dict(zip(strings[:n_shown], counts, strict=True))
    interests = []
    tag_at, vector_at = n_shown, vectors_at
    for dim, ts, n_tags in headers:
        names = strings[tag_at : tag_at + n_tags]
        tags = dict(zip(names, weights[tag_at - n_shown : tag_at - n_shown + n_tags], strict=True))
        vector = _vector(data, vector_at, dim)
        assert vector is not None
        interests.append(Interest(vector, ts, tags))
        tag_at += n_tags
        vector_at += 4 * dim
    if len(shown) != n_shown or sum(len(i.tags) for i in interests) != n_weights:
        raise StorageError("user state bytes are corrupt: a shown item or an interest's tag is repeated")
    return shown, interests


def decode_state(data: bytes) -> UserState:
    """The :class:`UserState` that :func:`encode_state` wrote as ``data`` (any bytes-like object).

    The state owns everything in it (its vectors are writable copies), so it can be updated in
    place. Raises :class:`StorageError`, naming the problem, for bytes this liverec cannot read.
    """
    size = len(data)
    magic = bytes(data[:4])
    if magic != MAGIC:
        if size < 4 and MAGIC.startswith(magic):
            raise StorageError(f"user state bytes are truncated: {size} bytes, shorter than the {_BODY}-byte header")
        raise StorageError(f"user state bytes start with {magic!r}, not the magic {MAGIC!r}")
    if size < _PREFIX.size:
        raise StorageError(f"user state bytes are truncated: {size} bytes, shorter than the {_BODY}-byte header")
    (format_version,) = struct.unpack_from("<H", data, 4)
    if format_version not in (1, FORMAT_VERSION):
        if format_version > FORMAT_VERSION:
            raise StorageError(
                f"user state format version {format_version}; this liverec reads up to {FORMAT_VERSION}"
            )
        raise StorageError(f"user state format version {format_version} does not exist; versions start at 1")
    if size < _BODY:
        raise StorageError(f"user state bytes are truncated: {size} bytes, shorter than the {_BODY}-byte header")
    (
        short_ts, neg_ts, tags_ts, last_ts, n_events, version, maxlen, n_recent, short_dim, neg_dim,
        n_tags, n_interactions, n_seen, n_dismissed, separator, n_text,
    ) = _FIXED.unpack_from(data, _PREFIX.size)  # fmt: skip
    if min(maxlen, short_dim, neg_dim) < _NONE:
        raise StorageError(f"user state bytes are corrupt: maxlen {maxlen}, vector dimensions {short_dim}, {neg_dim}")
    if maxlen != _NONE and n_recent > maxlen:
        raise StorageError(f"user state bytes are corrupt: {n_recent} recent actions but maxlen {maxlen}")
    n_floats = 2 * n_recent + n_tags + n_interactions
    short_at = _BODY
    neg_at = short_at + 4 * max(short_dim, 0)
    floats_at = neg_at + 4 * max(neg_dim, 0)
    flags_at = floats_at + 8 * n_floats
    text_at = flags_at + n_recent
    expected = text_at + n_text
    shown: dict[str, int] = {}
    interests: list[Interest] = []
    if format_version >= 2 and size >= expected:  # format 1 had no extension: nothing shown, no interests
        shown, interests = _decode_extension(data, expected)
        size = expected
    if size != expected:
        if size < expected:
            raise StorageError(f"user state bytes are truncated: {size} bytes where the header announces {expected}")
        raise StorageError(f"user state bytes have trailing bytes: {size} bytes where the header announces {expected}")
    floats = struct.unpack_from(f"<{n_floats}d", data, floats_at)
    end_recent = 1 + 4 * n_recent
    strings = _strings(data, text_at, n_text, separator, end_recent + n_tags + n_interactions + n_seen + n_dismissed)
    event_ids = strings[1:end_recent:4]
    item_ids, texts = _with_nones(bytes(data[flags_at:text_at]), strings[3:end_recent:4], strings[4:end_recent:4])
    try:
        types = list(map(_TYPES.__getitem__, strings[2:end_recent:4]))
    except KeyError as error:
        unknown = error.args[0]
        raise StorageError(f"user state holds unknown event type {unknown!r}; known: {EVENT_TYPE_NAMES}") from None
    actions = map(_action, event_ids, types, item_ids, texts, floats[:n_recent], floats[n_recent : 2 * n_recent])
    end_tags = end_recent + n_tags
    end_interactions = end_tags + n_interactions
    end_seen = end_interactions + n_seen
    tags = dict(zip(strings[end_recent:end_tags], floats[2 * n_recent : 2 * n_recent + n_tags], strict=True))
    interactions = dict(zip(strings[end_tags:end_interactions], floats[2 * n_recent + n_tags :], strict=True))
    seen = set(strings[end_interactions:end_seen])
    dismissed = set(strings[end_seen:])
    if (len(tags), len(interactions), len(seen), len(dismissed)) != (n_tags, n_interactions, n_seen, n_dismissed):
        raise StorageError("user state bytes are corrupt: a tag, interaction, seen or dismissed item is repeated")
    return UserState(
        user_id=strings[0],
        recent=deque(actions, maxlen=None if maxlen == _NONE else maxlen),
        short_vec=_vector(data, short_at, short_dim),
        short_ts=short_ts,
        neg_vec=_vector(data, neg_at, neg_dim),
        neg_ts=neg_ts,
        tags=tags,
        tags_ts=tags_ts,
        interactions=interactions,
        seen=seen,
        dismissed=dismissed,
        last_ts=last_ts,
        n_events=n_events,
        version=version,
        interests=interests,
        shown=shown,
    )


def _free_code_point(text: str) -> int:
    """The lowest code point, surrogates aside, that ``text`` does not contain."""
    used = set(text)
    code = 0
    while chr(code) in used or 0xD800 <= code <= 0xDFFF:
        code += 1
    return code


def _vector_bytes(state: UserState, name: str, vec: np.ndarray | None) -> tuple[bytes, int]:
    """A vector's float32 little-endian bytes and its dimension (-1 and nothing for None)."""
    if vec is None:
        return b"", _NONE
    if vec.dtype != np.float32 or vec.ndim != 1:
        raise InvalidInputError(
            f"user state {state.user_id!r} has a {name} of dtype {vec.dtype} and shape {vec.shape}; "
            "the user state format holds one-dimensional float32 vectors",
            field=name,
            value=vec.shape,
        )
    return vec.astype("<f4", copy=False).tobytes(), len(vec)


def _vector(data: bytes, offset: int, dim: int) -> np.ndarray | None:
    """A writable float32 copy of the vector stored at ``offset``, or None."""
    if dim == _NONE:
        return None
    return np.frombuffer(data, dtype="<f4", count=dim, offset=offset).astype(np.float32)


def _strings(data: bytes, offset: int, n_bytes: int, separator: int, count: int) -> list[str]:
    """The ``count`` strings of the text block at ``offset``."""
    try:
        strings = str(data[offset : offset + n_bytes], "utf-8").split(chr(separator))
    except (UnicodeDecodeError, ValueError, OverflowError) as error:
        raise StorageError(f"user state bytes are corrupt: the text block does not decode ({error})") from None
    if len(strings) != count:
        raise StorageError(f"user state bytes are corrupt: the text block holds {len(strings)} strings, not {count}")
    return strings


def _with_nones(
    flags: bytes, item_ids: list[str], texts: list[str]
) -> tuple[Sequence[str | None], Sequence[str | None]]:
    """The recent actions' item ids and texts, None where their flags say so (stored empty)."""
    if not any(flags):
        return item_ids, texts
    items: list[str | None] = list(item_ids)
    notes: list[str | None] = list(texts)
    for k, flag in enumerate(flags):
        if flag:
            unknown_bits = flag & ~(_ITEM_NONE | _TEXT_NONE)
            if unknown_bits or (flag & _ITEM_NONE and items[k]) or (flag & _TEXT_NONE and notes[k]):
                raise StorageError(f"user state bytes are corrupt: recent action {k} has flags {flag}")
            if flag & _ITEM_NONE:
                items[k] = None
            if flag & _TEXT_NONE:
                notes[k] = None
    return items, notes
