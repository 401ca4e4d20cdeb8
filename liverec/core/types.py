"""The data model: items, events, recommendations and their reasons.

Items and events are validated when built, so a value of these types is
always well-formed; ``from_dict`` builds them from JSON-like mappings and
names the offending field and value on bad input.

>>> Event.from_dict({"user_id": "u1", "type": "view", "item_id": "i9", "timestamp": 1.0}).type
<EventType.VIEW: 'view'>
"""

from __future__ import annotations

import difflib
import hashlib
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from liverec.core.errors import InvalidInputError

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 10_000
MAX_TITLE_LENGTH = 1_000
# Levels of nested objects and lists a JSON value (item attributes) may hold. Deeper values serve
# no catalog and only reach the recursion limit of whatever walks them next (a 500, issue 12).
MAX_JSON_DEPTH = 32
LANGUAGES = ("en", "zh")
# What a review form calls its stars; read as the review's ``value`` (issue 13), on reviews only.
RATING_ALIAS = "rating"


class EventType(StrEnum):
    """What a user did."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATE = "rate"  # value 1-5
    REVIEW = "review"  # text, optional rating in value
    SEARCH = "search"  # text, no item
    DISMISS = "dismiss"  # "not interested"
    IMPRESSION = "impression"  # the item was shown to the user; moves no interest, counts as ignored until acted on


EVENT_TYPE_NAMES = ", ".join(t.value for t in EventType)

# How strongly each kind of action says "I like this"; configurable through Settings.
# Dismiss is negative: it pushes similar items away. Rate and review are signed by their polarity.
DEFAULT_EVENT_WEIGHTS: dict[EventType, float] = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 1.5,
    EventType.ADD_TO_CART: 3.0,
    EventType.PURCHASE: 5.0,
    EventType.RATE: 3.0,
    EventType.REVIEW: 3.0,
    EventType.SEARCH: 2.0,
    EventType.DISMISS: -3.0,
    EventType.IMPRESSION: 0.0,
}


# Exact names, the common case, resolve with one dict lookup instead of strip, lower and an enum call.
_EVENT_TYPES_BY_NAME: dict[str, EventType] = {t.value: t for t in EventType}


def parse_event_type(value: Any) -> EventType:
    """Return the :class:`EventType` named by ``value`` or raise naming the choices."""
    if type(value) is str and (found := _EVENT_TYPES_BY_NAME.get(value)) is not None:
        return found
    if isinstance(value, EventType):
        return value
    try:
        return EventType(str(value).strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"event type {value!r} is not one of {EVENT_TYPE_NAMES}", field="type", value=value
        ) from None


def parse_timestamp(value: Any, field_name: str = "timestamp") -> float:
    """Seconds since the epoch from a number, a datetime or an ISO-8601 string.

    A time without a UTC offset is UTC, not the server's local time: the same file must mean
    the same times on every machine.

    >>> parse_timestamp("2026-01-01T08:00:00+08:00") == parse_timestamp("2026-01-01T00:00:00") == 1767225600.0
    True
    """
    if type(value) is float and 0.0 <= value < math.inf:  # the common case, checked in full below
        return value
    if isinstance(value, bool):
        raise InvalidInputError(f"{field_name} must be a time, got {value!r}", field=field_name, value=value)
    if isinstance(value, int | float):
        try:
            ts = float(value)
        except OverflowError:  # an int too large for a float: not a valid time (below)
            ts = math.inf
    elif isinstance(value, datetime):
        ts = _utc(value).timestamp()
    elif isinstance(value, str):
        try:
            ts = float(value)
        except ValueError:
            try:
                ts = _utc(datetime.fromisoformat(value.replace("Z", "+00:00"))).timestamp()
            except ValueError:
                raise InvalidInputError(
                    f"{field_name} {value!r} is neither epoch seconds nor an ISO-8601 time",
                    field=field_name,
                    value=value,
                ) from None
    else:
        raise InvalidInputError(f"{field_name} must be a time, got {value!r}", field=field_name, value=value)
    if not math.isfinite(ts) or ts < 0:
        raise InvalidInputError(f"{field_name} {value!r} is not a valid time", field=field_name, value=value)
    return ts


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):  # past year 9999
        return "beyond year 9999"


def check_event_times(events: Sequence[Event], *, floor: float, future_skew: float, now: float) -> None:
    """Refuse the first event dated before ``floor`` or more than ``future_skew`` seconds after ``now``.

    ``now`` is the wall clock at ingest, so a replay of old data passes while a timestamp in
    milliseconds (1.7e12 read as seconds: the year 55,000) is refused before it can become every
    user's "now" for trending.
    """
    latest = now + future_skew
    for e in events:
        ts = e.timestamp
        if ts > latest:
            hint = "; is it in milliseconds? send seconds" if floor <= ts / 1000.0 <= latest else ""
            raise InvalidInputError(
                f"timestamp {ts!r} ({_iso(ts)}) is more than {future_skew:g} s ahead of the clock "
                f"({_iso(now)}){hint}",
                field="timestamp", value=ts,
            )
        if ts < floor:
            raise InvalidInputError(
                f"timestamp {ts!r} ({_iso(ts)}) is before {_iso(floor)}, the earliest accepted (timestamp_floor)",
                field="timestamp", value=ts,
            )


def _check_id(value: Any, field_name: str) -> str:
    if type(value) is str and len(value) <= MAX_ID_LENGTH and value.strip():  # the common case
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInputError(f"{field_name} is missing", field=field_name, value=value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInputError(f"{field_name} must be a string, got {value!r}", field=field_name, value=value)
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidInputError(
            f"{field_name} is {len(text)} characters long; at most {MAX_ID_LENGTH} are allowed",
            field=field_name,
            value=text[:40] + "…",
        )
    return text


def _check_text(value: Any, field_name: str, limit: int = MAX_TEXT_LENGTH) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field_name} must be text, got {value!r}", field=field_name, value=value)
    if len(value) > limit:
        raise InvalidInputError(
            f"{field_name} is {len(value)} characters long; at most {limit} are allowed",
            field=field_name,
            value=value[:40] + "…",
        )
    return value


def _check_str_tuple(value: Any, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{field_name} must be a list of strings, got {value!r}", field=field_name, value=value)
    out = []
    for v in value:
        if not isinstance(v, str) or not v.strip():
            raise InvalidInputError(f"{field_name} holds {v!r}, not a non-empty string", field=field_name, value=v)
        out.append(v.strip())
    return tuple(out)


def unknown_fields_error(
    kind: str, unknown: Collection[str], fields: Sequence[str], hints: Mapping[str, str] | None = None
) -> InvalidInputError:
    """The error for fields a ``kind`` record does not have: each with the field it was likely
    meant to be (``hints``, else the closest name), then the fields there are. A misspelt field
    is never ignored: a typo'd ``timestamp`` would silently become "now".

    >>> print(unknown_fields_error("event", {"itemid"}, ["user_id", "type", "item_id"]))
    unknown event field(s): itemid (did you mean item_id?); an event's fields are user_id, type, item_id
    """
    names = sorted(unknown)
    notes = []
    for name in names:
        if hints and name in hints:
            notes.append(hints[name])
        elif close := difflib.get_close_matches(name.lower(), fields, n=1, cutoff=0.6):
            notes.append(f"did you mean {close[0]}?")
    article = "an" if kind[0] in "aeiou" else "a"
    message = f"unknown {kind} field(s): {', '.join(names)}"
    if notes:
        message += f" ({'; '.join(notes)})"
    message += f"; {article} {kind}'s fields are {', '.join(fields)}"
    if hints and "*" in hints:
        message += f"; {hints['*']}"
    return InvalidInputError(message, field=names[0], value=None)


def check_json_depth(value: Any, field_name: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise InvalidInputError naming ``field_name`` if ``value`` nests objects and lists more than
    ``limit`` levels deep (``{}`` is one level, a scalar none).

    Level by level, not recursively, so a value too deep for the interpreter's recursion limit
    is measured too, and the walk stops at the first level past ``limit``.

    >>> check_json_depth({"a": [1, {"b": 2}]}, "attributes", limit=3)
    >>> check_json_depth([[[]]], "attributes", limit=2)
    Traceback (most recent call last):
    ...
    liverec.core.errors.InvalidInputError: attributes nests objects and lists deeper than 2 levels
    """
    level = [value]
    for depth in range(limit + 1):
        containers = [v for v in level if isinstance(v, Mapping | list | tuple)]
        if not containers:
            return
        if depth == limit:
            break
        level = [child for c in containers for child in (c.values() if isinstance(c, Mapping) else c)]
    raise InvalidInputError(f"{field_name} nests objects and lists deeper than {limit} levels", field=field_name)


@dataclass(frozen=True, slots=True)
class Item:
    """A thing that can be recommended: a product, an article, a video."""

    item_id: str
    title: str
    description: str = ""
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None  # "en" or "zh"; detected from the text when None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    available: bool = True
    created_at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_id", _check_id(self.item_id, "item_id"))
        title = _check_text(self.title, "title", MAX_TITLE_LENGTH)
        if not title.strip():
            raise InvalidInputError(f"item {self.item_id!r} has an empty title", field="title", value=self.title)
        _check_text(self.description, "description")
        object.__setattr__(self, "categories", _check_str_tuple(self.categories, "categories"))
        object.__setattr__(self, "tags", _check_str_tuple(self.tags, "tags"))
        if self.language is not None and self.language not in LANGUAGES:
            raise InvalidInputError(
                f"language {self.language!r} is not one of {', '.join(LANGUAGES)}",
                field="language",
                value=self.language,
            )
        if not isinstance(self.attributes, Mapping):
            raise InvalidInputError("attributes must be an object", field="attributes", value=self.attributes)
        check_json_depth(self.attributes, "attributes")
        if not isinstance(self.available, bool):
            raise InvalidInputError(
                f"available must be true or false, got {self.available!r}", field="available", value=self.available
            )
        object.__setattr__(self, "created_at", parse_timestamp(self.created_at, "created_at"))

    @property
    def text(self) -> str:
        """The text a language model reads for this item."""
        return f"{self.title}. {self.description}".strip() if self.description else self.title

    @classmethod
    def from_dict(cls, data: Item | Mapping[str, Any]) -> Item:
        """Build an item from a JSON-like mapping; unknown keys are an error."""
        if isinstance(data, Item):
            return data
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"an item must be an object, got {data!r}", field="item", value=data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise unknown_fields_error("item", unknown, list(cls.__dataclass_fields__), _ITEM_HINTS)
        if "item_id" not in data:
            raise InvalidInputError("item_id is missing", field="item_id")
        if "title" not in data:
            raise InvalidInputError(f"item {data['item_id']!r} has no title", field="title")
        kwargs = dict(data)
        if kwargs.get("created_at") is None:
            kwargs["created_at"] = time.time()
        if kwargs.get("attributes") is None:
            kwargs["attributes"] = {}
        if kwargs.get("description") is None:
            kwargs["description"] = ""
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "description": self.description,
            "categories": list(self.categories),
            "tags": list(self.tags),
            "language": self.language,
            "attributes": dict(self.attributes),
            "available": self.available,
            "created_at": self.created_at,
        }


def _default_event_id(user_id: str, type_: EventType, item_id: str | None, ts: float, value: Any, text: Any) -> str:
    # A content hash, not a random id: a client that retries an event without an id
    # must not store it twice.
    raw = f"{user_id}\x1f{type_.value}\x1f{item_id}\x1f{ts!r}\x1f{value!r}\x1f{text}"
    return "h-" + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


_ITEM_HINTS = {"id": "did you mean item_id?", "name": "did you mean title?",
               "*": 'other facts go in attributes, e.g. {"attributes": {"price": 12.5}}'}


_EventFields = tuple[str, str, EventType, str | None, float | None, str | None, float, str | None]
# Members held in module constants: reading EventType.SEARCH is a descriptor call on every access.
_SEARCH, _RATE = EventType.SEARCH, EventType.RATE
_TEXT_EVENTS = (EventType.SEARCH, EventType.REVIEW)
_RATED_EVENTS = (EventType.RATE, EventType.REVIEW)


def _event_fields(
    event_id: Any, user_id: Any, type: Any, item_id: Any, value: Any, text: Any, timestamp: Any, session_id: Any
) -> _EventFields:
    """The checked, normalised fields of an event in field order; raises naming the first bad one.

    The one place an event is validated: constructing one and :meth:`Event.from_dict` both
    come here exactly once.
    """
    user_id = _check_id(user_id, "user_id")
    type_ = parse_event_type(type)
    event_id = _check_id(event_id, "event_id")
    if type_ is _SEARCH:
        if item_id is not None:
            raise InvalidInputError("a search event has no item_id", field="item_id", value=item_id)
    else:
        item_id = _check_id(item_id, "item_id")
    if text is not None:
        _check_text(text, "text")
    if type_ in _TEXT_EVENTS and not (text or "").strip():
        raise InvalidInputError(f"a {type_.value} event needs a non-empty text", field="text", value=text)
    if value is not None:
        value = _check_rating(value, "value") if type_ in _RATED_EVENTS else _check_number(value, "value")
    elif type_ is _RATE:
        raise InvalidInputError("a rate event needs a value from 1 to 5", field="value", value=None)
    timestamp = parse_timestamp(timestamp)
    if session_id is not None:
        session_id = _check_id(session_id, "session_id")
    return event_id, user_id, type_, item_id, value, text, timestamp, session_id


def _check_number(value: Any, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise InvalidInputError(f"{field_name} must be a number, got {value!r}", field=field_name, value=value)
    return float(value)


def _check_rating(value: Any, field_name: str) -> float:
    rating = _check_number(value, field_name)
    if not 1 <= rating <= 5:
        raise InvalidInputError(f"rating {rating:g} is out of range; expected 1 to 5", field=field_name, value=value)
    return rating


def _rating_as_value(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with a review's ``rating`` moved to ``value``; any other unknown field raises.

    Only a review takes the alias, the word review forms use for their stars; elsewhere
    ``rating`` is refused with a hint, never ignored. Both given must agree, or which one the
    caller meant is unclear.
    """
    try:
        review = parse_event_type(data["type"]) is EventType.REVIEW
    except (KeyError, InvalidInputError):
        review = False
    unknown = set(data) - _EVENT_FIELD_NAMES - ({RATING_ALIAS} if review else set())
    if unknown:
        raise unknown_fields_error("event", unknown, list(_EVENT_FIELD_NAMES_IN_ORDER), _EVENT_HINTS)
    out = dict(data)
    rating, value = out.pop(RATING_ALIAS), out.get("value")
    if rating is None:
        return out
    checked = _check_rating(rating, RATING_ALIAS)
    if value is not None and _check_rating(value, "value") != checked:
        raise InvalidInputError(
            f"rating {rating:g} and value {value:g} differ; a review's rating is its value, give it once",
            field=RATING_ALIAS, value=rating,
        )
    if value is None:  # as sent, not as a float: the default event id hashes it, as for {"value": 4}
        out["value"] = rating
    return out


_EVENT_HINTS = {
    RATING_ALIAS: "only a review takes rating, as another name for value; a rate event's rating goes in value",
    "query": "a search's query goes in text",
    "review": "a review's words go in text",
    "time": "did you mean timestamp?",
    "ts": "did you mean timestamp?",
}


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int too large for a float
        return False


@dataclass(frozen=True, slots=True)
class Event:
    """One user action. ``search`` carries a query text and no item; ``review`` carries a text."""

    event_id: str
    user_id: str
    type: EventType
    item_id: str | None = None
    value: float | None = None
    text: str | None = None
    timestamp: float = 0.0
    session_id: str | None = None

    def __post_init__(self) -> None:
        checked = _event_fields(
            self.event_id, self.user_id, self.type, self.item_id, self.value, self.text, self.timestamp,
            self.session_id,
        )
        _set_event_fields(self, *checked)

    @classmethod
    def trusted(
        cls,
        event_id: str,
        user_id: str,
        type: EventType,
        item_id: str | None,
        value: float | None,
        text: str | None,
        timestamp: float,
        session_id: str | None,
    ) -> Event:
        """Rebuild an event that was validated before it was stored, without validating again."""
        obj = object.__new__(cls)
        _set_event_fields(obj, event_id, user_id, type, item_id, value, text, timestamp, session_id)
        return obj

    @classmethod
    def create(
        cls,
        user_id: str,
        type: EventType | str,
        item_id: str | None = None,
        *,
        value: float | None = None,
        text: str | None = None,
        timestamp: float | datetime | str | None = None,
        session_id: str | None = None,
        event_id: str | None = None,
    ) -> Event:
        """Build an event; the timestamp defaults to now, the id to a hash of the content."""
        type_ = parse_event_type(type)
        ts = time.time() if timestamp is None else parse_timestamp(timestamp)
        if event_id is None:
            event_id = _default_event_id(str(user_id), type_, item_id, ts, value, text)
        return cls.trusted(*_event_fields(event_id, user_id, type_, item_id, value, text, ts, session_id))

    @classmethod
    def from_dict(cls, data: Event | Mapping[str, Any]) -> Event:
        """Build an event from a JSON-like mapping (``type`` by name); unknown keys are an error,
        but for a review's ``rating``, read as its ``value``."""
        if type(data) is not dict:  # a plain dict, the common case, skips the slower ABC check
            if isinstance(data, Event):
                return data
            if not isinstance(data, Mapping):
                raise InvalidInputError(f"an event must be an object, got {data!r}", field="event", value=data)
        if not _EVENT_FIELD_NAMES.issuperset(data):
            data = _rating_as_value(data)
        if "user_id" not in data:
            raise InvalidInputError("user_id is missing", field="user_id")
        if "type" not in data:
            raise InvalidInputError("type is missing", field="type")
        # What create does, without its keyword-argument call: this runs for every ingested event.
        get = data.get
        user_id, item_id, value, text = data["user_id"], get("item_id"), get("value"), get("text")
        type_ = parse_event_type(data["type"])
        timestamp = get("timestamp")
        ts = time.time() if timestamp is None else parse_timestamp(timestamp)
        event_id = get("event_id")
        if event_id is None:
            event_id = _default_event_id(str(user_id), type_, item_id, ts, value, text)
        return cls.trusted(*_event_fields(event_id, user_id, type_, item_id, value, text, ts, get("session_id")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "type": self.type.value,
            "item_id": self.item_id,
            "value": self.value,
            "text": self.text,
            "timestamp": self.timestamp,
            "session_id": self.session_id,
        }


_EVENT_FIELD_NAMES_IN_ORDER = tuple(Event.__dataclass_fields__)
_EVENT_FIELD_NAMES = frozenset(_EVENT_FIELD_NAMES_IN_ORDER)

# The slots' own setters: a frozen dataclass refuses setattr, and these are faster than
# object.__setattr__ on a path that builds every ingested and every replayed event.
(
    _set_event_id, _set_user_id, _set_type, _set_item_id, _set_value, _set_text, _set_timestamp, _set_session_id,
) = (Event.__dict__[name].__set__ for name in Event.__dataclass_fields__)


def _set_event_fields(
    event: Event,
    event_id: str,
    user_id: str,
    type: EventType,
    item_id: str | None,
    value: float | None,
    text: str | None,
    timestamp: float,
    session_id: str | None,
) -> None:
    _set_event_id(event, event_id)
    _set_user_id(event, user_id)
    _set_type(event, type)
    _set_item_id(event, item_id)
    _set_value(event, value)
    _set_text(event, text)
    _set_timestamp(event, timestamp)
    _set_session_id(event, session_id)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an item was recommended: the recall that found it and the evidence.

    ``kind`` is a recall's name (``content``, ``als``, ``covisit``, ``trending``, ``fresh``, …),
    ``tag``, or ``catalog`` (an item that filled a short list);
    ``evidence`` names the item id, query or tag the reason cites (None for "popular now").
    """

    kind: str
    text: str
    evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    reasons: tuple[Reason, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "score": self.score, "reasons": [r.to_dict() for r in self.reasons]}
