"""Streaming ingest: events from a message broker, stored once each, acknowledged after the commit.

A broker is a :class:`Source`: it fetches batches of :class:`Message`, and acknowledges, redelivers
(``nak``) or dead-letters each. :func:`consume` is the one loop every broker shares::

    fetch up to `batch` messages
    → parse each body (one event object, a list of events, or {"events": [...]})
    → name events sent without an event_id after the message's position in its stream
    → engine.ingest_events(every event of the batch)     one durable commit
    → ack the messages                                   only after the commit returned

Delivery is at least once (a consumer killed between the commit and the ack gets the batch
again); storage is exactly once, because an ``event_id`` names one event and the engine skips an
id it already holds. A poison message (not JSON, an invalid event, an id reused with other
content) is dead-lettered with the reason and the rest of its batch is stored; a storage failure
redelivers the batch after a delay, so nothing is lost. See docs/streams.md.

Brokers are opened by URL scheme (:func:`open_source`); one :func:`register_source` call adds one.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from liverec.core.bodies import batch, load_json, string_ids
from liverec.core.errors import ConflictError, InvalidInputError, LiveRecError, StorageError
from liverec.core.redact import redact

if TYPE_CHECKING:
    from liverec.engine import Engine

__all__ = [
    "DEFAULT_BATCH",
    "MAX_EVENTS_PER_MESSAGE",
    "ConsumeStats",
    "Message",
    "Source",
    "StreamError",
    "consume",
    "open_source",
    "parse_body",
    "register_source",
    "stop_on_signals",
]

log = logging.getLogger("liverec.streams")

DEFAULT_BATCH = 1000
# The HTTP API's max_batch: a message is one commit's worth at most, like a request body.
MAX_EVENTS_PER_MESSAGE = 10_000
# A storage failure redelivers after 1, 2, 4, ... seconds, never more than this apart.
MAX_RETRY_DELAY = 30.0
_ID_FIELDS = ("event_id", "user_id", "item_id", "session_id")


class StreamError(LiveRecError):
    """The broker failed or refused: unreachable, a stream or consumer that does not fit the
    options, or its client library is not installed."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message as a :class:`Source` delivers it.

    Parameters
    ----------
    data
        The body, as published.
    position
        Where the message sits in its stream: the same on every redelivery and never another
        message's (NATS: ``nats:<stream>:<sequence>``; Kafka would give topic, partition and
        offset). Events sent without an ``event_id`` are named after it.
    published
        When the broker stored the message, in seconds since the epoch (None if it does not say):
        the time of events sent without one, the same on every redelivery.
    deliveries
        How many times the message was delivered, this time included.
    handle
        The source's own (its client's message); :func:`consume` never looks inside.
    """

    data: bytes
    position: str
    published: float | None = None
    deliveries: int = 1
    handle: Any = field(default=None, repr=False, compare=False)


class Source(Protocol):
    """A broker's side of :func:`consume`. Calls come from one thread, one at a time."""

    #: What logs and the summary call it (a URL without its password, a stream, a subject).
    name: str

    def fetch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first;
        none when none came. A message stays the caller's until acked, nakked or dead-lettered
        (a source whose broker redelivers after a deadline keeps it alive meanwhile)."""
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """Never deliver these again: their events are durably stored. An ack that is lost (the
        connection dropped) only means a redelivery, which the event ids make harmless."""
        ...

    def nak(self, messages: Sequence[Message], delay: float) -> None:
        """Deliver these again, not before ``delay`` seconds."""
        ...

    def dead_letter(self, message: Message, reason: str) -> None:
        """Record the poison ``message`` with ``reason`` where an operator finds it, then never
        deliver it again. Raises :class:`StreamError` if it could not be recorded (the message
        is then nakked, not dropped)."""
        ...

    def close(self) -> None:
        """Let go of the broker; messages still held are redelivered."""
        ...


SourceFactory = Callable[..., Source]
# Built-in brokers by scheme, imported on first use: their client libraries are optional extras.
_SOURCES: dict[str, SourceFactory | str] = {"nats": "liverec.streams.nats:NatsSource"}


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Open ``scheme://`` URLs with ``factory(url, **options)``."""
    _SOURCES[scheme.lower()] = factory


def open_source(url: str, **options: Any) -> Source:
    """The source a broker URL names (``nats://host:4222``), opened with the broker's
    ``options``; an unknown scheme is an :class:`InvalidInputError` naming the known ones."""
    scheme, separator, _ = url.partition("://")
    factory = _SOURCES.get(scheme.lower()) if separator else None
    if factory is None:
        known = ", ".join(f"{name}://" for name in _SOURCES)
        raise InvalidInputError(f"broker URL {redact(url)!r} has no known scheme; known: {known}",
                                field="url", value=redact(url))
    if isinstance(factory, str):
        module, _, name = factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return factory(url, **options)


def parse_body(data: bytes) -> list[dict[str, Any]]:
    """The events of one message body: an event object, a JSON list of them, or
    ``{"events": [...]}`` (a ``POST /events`` body as is). Raises :class:`InvalidInputError`
    naming what is wrong; the events themselves are the engine's to validate.

    >>> parse_body(b'{"user_id": "u1", "type": "view", "item_id": "i1"}')
    [{'user_id': 'u1', 'type': 'view', 'item_id': 'i1'}]
    >>> len(parse_body(b'{"events": [{"user_id": "u1", "type": "search", "text": "tent"}] }'))
    1
    >>> parse_body(b'[]')
    Traceback (most recent call last):
    ...
    liverec.core.errors.InvalidInputError: the message holds no events
    """
    return _parse(data)[0]


def _parse(data: bytes) -> tuple[list[dict[str, Any]], bool]:
    """:func:`parse_body`, and whether the body was one event object (not a list of them).

    Read as the HTTP API reads a ``POST /events`` body (:mod:`liverec.core.bodies`), and a
    top-level list too; each row must be an object, since ids are named into it before the engine
    validates it."""
    value = load_json(data, "the message")
    rows = batch(value, "events", single_ok=True, list_ok=True, limit=MAX_EVENTS_PER_MESSAGE, what="the message")
    single = isinstance(value, dict) and "events" not in value
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            where = f"events[{n}]" if not single else "event"
            raise InvalidInputError(f"{where} must be an object, got {str(row)[:40]!r}", field=where)
    string_ids(rows, "events", _ID_FIELDS, located=not single)
    return rows, single


@dataclass
class ConsumeStats:
    """What a :func:`consume` run did so far."""

    messages: int = 0  # fetched, redeliveries included
    stored: int = 0  # events new to the log
    duplicates: int = 0  # events already stored (a redelivery), or repeated within a batch
    dead_letters: int = 0  # messages dead-lettered
    retries: int = 0  # batches (or parts) redelivered after a storage failure
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def events(self) -> int:
        """Events taken from the stream: stored, or recognised as stored."""
        return self.stored + self.duplicates

    @property
    def seconds(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Events taken per second since the start."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: what was taken, how fast, and what went wrong."""
        return (f"{self.events:,} events from {self.messages:,} messages in {self.seconds:.1f} s "
                f"({self.rate:,.0f} events/s): {self.stored:,} stored, {self.duplicates:,} already stored, "
                f"{self.dead_letters:,} dead-lettered, {self.retries:,} retried")


@dataclass
class _Unit:
    """One message and its events, ready to store."""

    message: Message
    rows: list[dict[str, Any]]


@dataclass
class _Outcome:
    """Where each message of a batch ended up."""

    done: list[Message] = field(default_factory=list)  # stored: ack
    dead: list[Message] = field(default_factory=list)  # dead-lettered: settled by the source
    again: list[Message] = field(default_factory=list)  # to redeliver: nak

    def unsettled(self, messages: Sequence[Message]) -> list[Message]:
        settled = {id(m) for part in (self.done, self.dead, self.again) for m in part}
        return [m for m in messages if id(m) not in settled]


def consume(
    engine: Engine,
    source: Source,
    *,
    batch: int = DEFAULT_BATCH,
    max_events: int | None = None,
    stop: threading.Event | None = None,
    user_id: Callable[[str], str] | None = None,
    idle_timeout: float = 1.0,
    on_progress: Callable[[ConsumeStats], None] | None = None,
) -> ConsumeStats:
    """Store the events of ``source``'s messages in ``engine`` until ``stop`` is set, or until
    ``max_events`` events were taken; each message is acked only after its events were durably
    stored (see the module's docstring for the whole promise).

    Parameters
    ----------
    batch
        Messages fetched and stored in one :meth:`~liverec.engine.Engine.ingest_events` call.
    max_events
        Stop once this many events were stored or recognised as stored (benchmarks and tests).
    stop
        Set it (a signal handler does, :func:`stop_on_signals`) to finish the batch in hand,
        ack it and return.
    user_id
        Maps each user id as sent to the one stored: the service's pseudonymizer, so both write
        the same ids.
    idle_timeout
        Seconds a fetch waits for messages; also how soon a ``stop`` is seen on an idle stream.
    on_progress
        Called with the running totals after each batch and each empty fetch.

    A storage failure (:class:`StorageError`) redelivers the batch after 1, 2, 4, ... seconds
    (at most 30), and waits as long before the next fetch; any other error is raised, after the
    messages in hand were handed back for redelivery.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInputError(f"batch must be a positive number of messages, got {batch!r}", field="batch",
                                value=batch)
    if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                   or max_events < 1):
        raise InvalidInputError(f"max_events must be a positive number, got {max_events!r}", field="max_events",
                                value=max_events)
    stop = stop or threading.Event()
    stats = ConsumeStats()
    failures = 0  # storage failures in a row
    while not stop.is_set() and (max_events is None or stats.events < max_events):
        wanted = batch if max_events is None else min(batch, max_events - stats.events)
        messages = source.fetch(wanted, idle_timeout)
        if messages:
            stats.messages += len(messages)
            delay = min(2.0 ** failures, MAX_RETRY_DELAY)
            if _handle(engine, source, messages, stats, user_id, delay):
                failures = 0
            else:
                failures += 1
                # The next batch would fail alike: wait for the store instead of spinning through the stream.
                stop.wait(delay)
        if on_progress is not None:
            on_progress(stats)
    stats.ended = time.monotonic()
    return stats


def _handle(engine: Engine, source: Source, messages: Sequence[Message], stats: ConsumeStats,
            user_id: Callable[[str], str] | None, delay: float) -> bool:
    """Store one fetched batch, then ack, dead-letter or nak each message; whether the store
    took it (False: a storage failure, and what it did not take is redelivered after ``delay``)."""
    outcome = _Outcome()
    try:
        units: list[_Unit] = []
        for message in messages:
            try:
                units.append(_Unit(message, _events(message, user_id)))
            except InvalidInputError as exc:
                _dead_letter(source, message, exc, stats, outcome)
        stored = _store(engine, source, units, stats, outcome)
    except BaseException:
        # A bug, or a second Ctrl-C: what was committed is acked, the rest handed back at once.
        try:
            _settle(source, outcome.done, outcome.again + outcome.unsettled(messages), 0.0)
        except Exception as exc:  # the broker redelivers them anyway; the first error is the one to see
            log.warning("could not settle the batch in hand: %s", exc)
        raise
    if not stored:
        log.warning("the store failed; %s messages are redelivered in %.0f s",
                    f"{len(outcome.unsettled(messages)):,}", delay)
    _settle(source, outcome.done, outcome.again + outcome.unsettled(messages), delay)
    return stored


def _settle(source: Source, done: list[Message], again: list[Message], delay: float) -> None:
    if done:
        source.ack(done)
    if again:
        source.nak(again, delay)


def _events(message: Message, user_id: Callable[[str], str] | None) -> list[dict[str, Any]]:
    """The message's events as the engine takes them: named after the message's position if
    they came without an id, timed by the broker if they came without a time, user ids mapped."""
    rows, single = _parse(message.data)
    for n, row in enumerate(rows):
        if row.get("event_id") is None:
            row["event_id"] = message.position if single else f"{message.position}/{n}"
        if row.get("timestamp") is None and message.published is not None:
            row["timestamp"] = message.published
        if user_id is not None and isinstance(row.get("user_id"), str):
            row["user_id"] = user_id(row["user_id"])
    return rows


def _store(engine: Engine, source: Source, units: list[_Unit], stats: ConsumeStats, outcome: _Outcome) -> bool:
    """Ingest ``units`` in one call; refused for a bad message, halve and retry down to the
    message at fault (dead-lettered): one bad message in a batch costs ~2·log2(batch) calls, not
    one per message. False on a storage failure (the units not yet done are left unsettled)."""
    if not units:
        return True
    try:
        result = engine.ingest_events([row for unit in units for row in unit.rows])
    except (InvalidInputError, ConflictError) as exc:
        if len(units) == 1:
            _dead_letter(source, units[0].message, exc, stats, outcome)
            return True
        middle = len(units) // 2
        return (_store(engine, source, units[:middle], stats, outcome)
                and _store(engine, source, units[middle:], stats, outcome))
    except StorageError as exc:
        log.warning("%s", redact(" ".join(str(exc).split())))
        stats.retries += 1
        return False
    stats.stored += result.stored
    stats.duplicates += result.duplicates
    outcome.done.extend(unit.message for unit in units)
    return True


def _dead_letter(source: Source, message: Message, exc: LiveRecError, stats: ConsumeStats,
                 outcome: _Outcome) -> None:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    try:
        source.dead_letter(message, reason)
    except StreamError as failed:
        log.error("could not dead-letter %s (%s), so it is redelivered: %s", message.position, redact(reason),
                  failed)
        outcome.again.append(message)
        return
    outcome.dead.append(message)
    stats.dead_letters += 1
    log.warning("dead letter %s: %s", message.position, redact(reason))


@contextmanager
def stop_on_signals(signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[threading.Event]:
    """An event set by the first of ``signals`` (the batch in hand is finished and acked); a
    second one raises :class:`KeyboardInterrupt` at once (what is not acked is redelivered).
    The previous handlers come back on exit. Main thread only, as every signal handler."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s: stopping after the batch in hand", signal.Signals(signum).name)
        stop.set()

    previous: Mapping[signal.Signals, Any] = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
