"""Request and response bodies as the OpenAPI schema shows them.

The bulk bodies (``PUT /items``, ``POST /events``) are declared here for the schema but parsed by
the engine's own validators (``Item.from_dict``, ``Event.from_dict``): one set of rules, and no
second pydantic pass over 10,000 events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from liverec.core.types import MAX_ID_LENGTH, MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, RATING_ALIAS, EventType

# Not blank as ``str.strip`` sees it, which is how the engine checks ids and texts. ``\S`` would not
# do: Python's ``\s`` also holds \x1c-\x1f and \x85, JSON Schema's (ECMA 262) holds \ufeff instead.
NOT_BLANK = "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
Id = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)
NonBlank = Annotated[str, Field(min_length=1, pattern=NOT_BLANK)]

# What ``parse_timestamp`` reads: epoch seconds as a number or as digits, or an RFC 3339 time from
# 1970 on (times before the epoch are refused).
Timestamp = Annotated[float | str | None, WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": 0},
    {"type": "string", "format": "date-time", "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-"},
    {"type": "string", "pattern": "^[0-9]{1,30}([.][0-9]{1,9})?$"},
    {"type": "null"},
]})]

# The rules of ``Event.from_dict`` that depend on the type, so generated clients and fuzzers know them.
# One no schema can state: a review's ``rating`` and ``value``, when both are given, must be equal.
_RATING = {"anyOf": [{"type": "number", "minimum": 1, "maximum": 5}, {"type": "null"}]}
_EVENT_RULES: list[Any] = [
    {"if": {"properties": {"type": {"const": "search"}}},
     "then": {"required": ["text"],
              "properties": {"item_id": {"type": "null"}, "text": {"type": "string", "pattern": NOT_BLANK}}},
     "else": {"required": ["item_id"], "properties": {"item_id": {"type": "string"}}}},
    {"if": {"properties": {"type": {"const": "review"}}},
     "then": {"required": ["text"], "properties": {"text": {"type": "string", "pattern": NOT_BLANK},
                                                   RATING_ALIAS: _RATING}},
     "else": {"not": {"required": [RATING_ALIAS]}}},
    {"if": {"properties": {"type": {"enum": ["rate", "review"]}}},
     "then": {"properties": {"value": _RATING}}},
    {"if": {"properties": {"type": {"const": "rate"}}},
     "then": {"required": ["value"], "properties": {"value": {"type": "number"}}}},
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One user action. Give ``event_id`` (or a ``timestamp``) so a retry is recognised."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": _EVENT_RULES})

    event_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)
    user_id: str = Id
    type: EventType
    item_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK,
                                description="required except on search")
    value: float | None = Field(None, description="rating 1–5 on rate and review; stored, not learned from, "
                                                  "on the other types")
    rating: float | None = Field(None, description="review only: the same as value (both given: equal)")
    text: str | None = Field(None, max_length=MAX_TEXT_LENGTH, description="query on search, review text")
    timestamp: Timestamp = Field(None, description="seconds since the epoch or ISO 8601; default now")
    session_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)


class EventBatch(_Strict):
    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class IngestAnswer(BaseModel):
    """What a batch did: every id in ``event_ids`` is durable, ``stored`` of the rows were new and
    ``duplicates`` were not (already stored, or repeated in the batch). A retry acknowledges the
    same ids with ``stored`` 0."""

    received: int = Field(description="rows in the request")
    acknowledged: int = Field(description="distinct event ids, all durable now")
    stored: int = Field(description="events this request added to the log")
    duplicates: int = Field(description="rows that added nothing: already stored, or repeated in the batch")
    event_ids: list[str] = Field(description="the distinct event ids, in request order")


class ItemIn(_Strict):
    """A thing to recommend. Its title and description are what the language model reads."""

    item_id: str = Id
    title: str = Field(min_length=1, max_length=MAX_TITLE_LENGTH, pattern=NOT_BLANK)
    description: str | None = Field("", max_length=MAX_TEXT_LENGTH)
    categories: list[NonBlank] | NonBlank | None = Field(default_factory=list, description="a lone string: one")
    tags: list[NonBlank] | NonBlank | None = Field(
        default_factory=list, description="a lone string: one; keywords of the text are added")
    language: Literal["en", "zh"] | None = Field(None, description="default: detected from the text")
    attributes: dict[str, Any] | None = Field(
        default_factory=dict, description="any other facts (JSON, ≤ 32 levels deep); stored, not learned from")
    available: bool = Field(
        True, description="false: never in a list, a search or similar items; events on it are still taken")
    created_at: Timestamp = Field(None, description="seconds since the epoch or ISO 8601; default now")


class ItemBatch(_Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=10_000)


class UpsertAnswer(BaseModel):
    upserted: int


class DeleteItemAnswer(BaseModel):
    item_id: str
    deleted: bool


class ReasonOut(BaseModel):
    kind: str
    text: str
    evidence: str | None = None


class TextOut(BaseModel):
    """A text written for a user by the language-model stage, or its template."""

    text: str
    source: Literal["generated", "template"]
    model: str | None = Field(description="the model that wrote it (null for a template)")
    prompt: str = Field(description="the prompt template and its version, e.g. summary/v1")
    state_version: int = Field(description="the version of the user's state it was written for")
    language: Literal["en", "zh"]


class ItemOut(BaseModel):
    item_id: str
    title: str
    categories: list[str]
    language: str | None = Field(description="en or zh (detected from the text when the catalog left it out)")
    score: float
    reasons: list[ReasonOut]
    explanation: TextOut | None = Field(None, description="one sentence on why, for the first few items when "
                                                          "the language-model stage is on or asked for")


class RecommendationsOut(BaseModel):
    request_id: str
    variant: str
    model_version: str | None
    items: list[ItemOut]


class ItemsOut(BaseModel):
    items: list[ItemOut]


class Interest(BaseModel):
    tag: str
    weight: float


class InterestGroup(BaseModel):
    tags: list[str]
    share: float = Field(description="this interest's share of the user's interest now (the groups sum to 1)")


class InterestsOut(BaseModel):
    user_id: str
    interests: list[Interest]
    groups: list[InterestGroup] = Field(description="the user's several interests, strongest first: what they "
                                                    "did, clustered as it happened (one group when few actions)")
    events: int
    last_event: float | None
    summary: TextOut | None = Field(None, description="with ?summary=true: what the user is into, in a "
                                                      "sentence or two (generated when a model is configured)")


class ForgetOut(BaseModel):
    user_id: str
    events_removed: int
    state_removed: bool
    served_requests_removed: int


class FeedbackIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [  # a click names its items
        {"if": {"properties": {"type": {"const": "click"}}}, "then": {"required": ["item_ids"],
                                                                     "properties": {"item_ids": {"type": "array"}}}},
    ]})

    request_id: str = Field(min_length=1, max_length=64)
    type: Literal["impression", "click"]
    item_ids: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, max_length=1000, description="default on impression: all served items")


class FeedbackOut(BaseModel):
    request_id: str
    variant: str
    impressions_counted: int
    clicks_counted: int


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str | None
    items: int
    live_users: int
    warm: bool = Field(description="user states rebuilt after the start: route load here once true")
    uptime_seconds: float


class TrainJob(BaseModel):
    job_id: str
    status: Literal["running", "succeeded", "failed"]
    trigger: Literal["api", "schedule"]
    started: float
    finished: float | None = None
    model_version: str | None = None
    seconds: float | None = None
    error: str | None = None


class SessionIn(_Strict):
    key: str = Field(min_length=1, max_length=200, description="an API key (`liverec keys create`)")


class SessionOut(BaseModel):
    auth_required: bool = Field(description="false: the service takes no keys (loopback), every call is open")
    key_id: str | None = None
    name: str | None = None
    scopes: list[str] = Field(description="what this browser may do: read, ingest, admin")
    csrf_token: str | None = Field(None, description="send as X-CSRF-Token on every POST, PUT, PATCH and DELETE")
    expires: float | None = Field(None, description="when the session ends (epoch seconds)")


class VerdictOut(BaseModel):
    item_id: str
    k: int = Field(description="the length of the list judged")
    recommended: bool
    position: int | None = Field(description="1-based place in the user's list now, when recommended")
    rank: int | None = Field(description="1-based place among the candidates the recalls found (none: not found)")
    candidates: int
    score: float | None
    reasons: list[ReasonOut] = Field(description="what speaks for it, as the list would word it")
    against: list[ReasonOut] = Field(description="what keeps it out of the list (empty when recommended)")


class ItemDetail(BaseModel):
    item_id: str
    title: str
    description: str
    categories: list[str]
    tags: list[str]
    language: str | None
    attributes: dict[str, Any]
    available: bool
    created_at: float
    for_user: VerdictOut | None = Field(None, description="with ?for_user=: whether and why this item is or is "
                                                          "not in that user's list now")
    copy_for_user: TextOut | None = Field(None, description="with ?for_user=: the item's pitch for that user "
                                                            "(generated in the background when a model is "
                                                            "configured; the description until then)")


class Window(BaseModel):
    start: float = Field(description="the window's start (epoch seconds); windows without traffic are left out")
    requests: int
    errors: int = Field(description="answers with a 4xx or 5xx status")
    shed: int = Field(description="503s: refused under load")
    events: int = Field(description="events durably stored")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class Stats(BaseModel):
    interval: float = Field(description="seconds per window")
    windows: list[Window]
    items: int
    events: int
    live_users: int
    state_bytes: int = Field(description="the live states' encoded size (estimated from a sample)")
    store_bytes: int | None = Field(description="the store's size on disk; null when it is not a file")
