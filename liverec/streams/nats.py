"""NATS JetStream as a :class:`~liverec.streams.base.Source`: a durable pull consumer with explicit acks.

Needs nats-py (``pip install 'liverec[nats]'``), imported when a source is opened.

* The stream must exist and take ``subject``; ``create_stream`` creates it (file storage, default
  limits) taking ``subject`` and the dead-letter subject. A missing stream is a
  :class:`~liverec.core.errors.NotFoundError` naming it.
* The consumer ``durable`` is created on first use, reading the stream from its first message;
  later runs resume where it stands. One that reads another subject, or is not a pull consumer
  with explicit acks, is refused by name; its ``ack_wait`` is updated to the one asked for.
* ``ack_wait`` is how long a message of a consumer that died waits before it is redelivered.
  Messages in hand are kept alive (an in-progress ack every ``ack_wait / 2``) while their commit
  runs, so a slow commit is never redelivered behind the consumer's back.
* ``max_deliver`` is unlimited by default: poison never comes back (it is dead-lettered), so a
  message is redelivered only after a crash or a storage failure, and a limit would have the
  server silently skip a whole batch of good messages after a long enough outage.
* Dead letters are published with JetStream to ``dead_letter`` (default ``<subject>.dlq``) with
  the body as sent and the headers ``Liverec-Error`` (the reason), ``Liverec-Position``,
  ``Liverec-Subject`` and ``Liverec-Deliveries``, deduplicated by position (``Nats-Msg-Id``),
  then terminated (``term``). When no stream takes that subject they are terminated and logged,
  and stay readable in the stream at their sequence.
* nats-py is asyncio: its client runs on an event loop in a thread of its own, and the
  synchronous calls of :func:`~liverec.streams.base.consume` (the engine's commit among them)
  never hold up its heartbeats and in-progress acks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.core.redact import redact
from liverec.streams.base import DEFAULT_BATCH, Message, StreamError

__all__ = [
    "DEFAULT_ACK_WAIT",
    "DEFAULT_DURABLE",
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT",
    "DEFAULT_URL",
    "NatsSource",
    "covers",
]

log = logging.getLogger("liverec.streams")
T = TypeVar("T")

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_SUBJECT = "liverec.events"
DEFAULT_STREAM = "LIVEREC"
DEFAULT_DURABLE = "liverec"
DEFAULT_ACK_WAIT = 30.0
DEFAULT_MAX_DELIVER = -1  # unlimited: see the module's docstring
API_TIMEOUT = 10.0  # seconds a JetStream API call (or a flush) may take
MAX_REASON = 2000  # characters of a dead letter's Liverec-Error header
_NAME = re.compile(r"[^\s.*>/\\]+")  # a stream or consumer name: no spaces, dots, wildcards or paths


def covers(pattern: str, subject: str) -> bool:
    """Whether every message on ``subject`` (wildcards allowed) is also on ``pattern``.

    >>> covers("liverec.>", "liverec.events"), covers("liverec.*", "liverec.events.dlq")
    (True, False)
    >>> covers("liverec.events", "liverec.events"), covers("liverec.events", "liverec.*")
    (True, False)
    """
    wanted, given = pattern.split("."), subject.split(".")
    for n, token in enumerate(wanted):
        if token == ">":
            return len(given) > n
        if n >= len(given) or given[n] == ">" or token not in ("*", given[n]):
            return False
    return len(wanted) == len(given)


def _check_subject(subject: str, option: str, *, wildcards: bool) -> str:
    tokens = subject.split(".") if isinstance(subject, str) else [""]
    bad = not all(tokens) or any(c.isspace() for c in subject)
    if not bad and not wildcards:
        bad = any(token in ("*", ">") for token in tokens)
    if bad or (">" in tokens and tokens[-1] != ">"):
        kind = "subject" if wildcards else "subject without wildcards"
        raise InvalidInputError(f"{option} {subject!r} is not a NATS {kind} (dot-separated tokens, no spaces)",
                                field=option.lstrip("-"), value=subject)
    return subject


def _check_name(name: str, option: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"{option} {name!r} is not a JetStream name (no spaces, dots, *, > or slashes)",
                                field=option.lstrip("-"), value=name)
    return name


def _client() -> Any:
    try:
        import nats
    except ImportError as exc:  # the optional extra
        raise StreamError("NATS streams need nats-py: pip install 'liverec[nats]'") from exc
    return nats


def _say(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class NatsSource:
    """A durable pull consumer of ``stream`` reading ``subject`` (see the module's docstring).

    Parameters
    ----------
    url
        The server, ``nats://[user:password@]host:4222`` (several, comma-separated).
    subject
        What to consume; wildcards need an explicit ``dead_letter``.
    stream, durable
        The JetStream stream and the name of this consumer in it (one per application: two
        processes sharing it share the messages).
    create_stream
        Create the stream if it does not exist, instead of refusing.
    dead_letter
        Where poison messages go (default ``<subject>.dlq``); never a subject ``subject`` reads.
    ack_wait
        Seconds before a message held by a consumer that died is redelivered.
    max_deliver
        Deliveries of a message before the server gives up on it (-1: never).
    batch
        Messages fetched at once, to size the consumer's ``max_ack_pending``.
    connect_timeout
        Seconds to reach the server at the start; later outages are waited out.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        subject: str = DEFAULT_SUBJECT,
        stream: str = DEFAULT_STREAM,
        durable: str = DEFAULT_DURABLE,
        create_stream: bool = False,
        dead_letter: str | None = None,
        ack_wait: float = DEFAULT_ACK_WAIT,
        max_deliver: int = DEFAULT_MAX_DELIVER,
        batch: int = DEFAULT_BATCH,
        connect_timeout: float = 5.0,
    ) -> None:
        self._nats = _client()
        self.url = url
        self.subject = _check_subject(subject, "--subject", wildcards=True)
        self.stream = _check_name(stream, "--stream")
        self.durable = _check_name(durable, "--durable")
        if dead_letter is None and any(token in ("*", ">") for token in subject.split(".")):
            raise InvalidInputError(f"--subject {subject!r} has wildcards: name the dead-letter subject "
                                    "(--dead-letter)", field="dead_letter")
        self.dead_letter_subject = _check_subject(dead_letter or f"{subject}.dlq", "--dead-letter", wildcards=False)
        if covers(self.subject, self.dead_letter_subject):
            raise InvalidInputError(f"--dead-letter {self.dead_letter_subject!r} is read by --subject {subject!r}: "
                                    "dead letters would come back forever", field="dead_letter",
                                    value=self.dead_letter_subject)
        if isinstance(ack_wait, bool) or not isinstance(ack_wait, int | float) or not ack_wait > 0:
            raise InvalidInputError(f"--ack-wait must be a positive number of seconds, got {ack_wait!r}",
                                    field="ack_wait", value=ack_wait)
        self.name = f"{redact(url)} stream {stream}, consumer {durable} ({subject})"
        self.ack_wait = float(ack_wait)
        self.keeps_dead_letters = False  # whether a stream takes the dead-letter subject
        self._held: dict[int, Any] = {}  # messages fetched and not yet settled, by id()
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="liverec-nats", daemon=True)
        self._thread.start()
        try:
            self._call(self._open(create_stream, max_deliver, batch, connect_timeout),
                       connect_timeout + 4 * API_TIMEOUT)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ Source

    def fetch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        return self._call(self._fetch(max_messages, timeout), timeout + API_TIMEOUT)

    def ack(self, messages: Sequence[Message]) -> None:
        self._call(self._settle(messages, "ack"), 2 * API_TIMEOUT)

    def nak(self, messages: Sequence[Message], delay: float) -> None:
        self._call(self._settle(messages, "nak", delay), 2 * API_TIMEOUT)

    def dead_letter(self, message: Message, reason: str) -> None:
        self._call(self._dead_letter(message, reason), 2 * API_TIMEOUT)

    def close(self) -> None:
        """Hand back the messages in hand (redelivered at once), flush, disconnect. Safe twice."""
        if self._thread.is_alive():
            try:
                self._call(self._close(), 2 * API_TIMEOUT)
            except StreamError as exc:
                log.warning("closing the NATS connection: %s", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(API_TIMEOUT)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    # ------------------------------------------------------------------ on the event loop

    def _call(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise StreamError(f"NATS at {redact(self.url)} did not answer within {timeout:g} s") from None

    async def _open(self, create_stream: bool, max_deliver: int, batch: int, connect_timeout: float) -> None:
        nats = self._nats
        failures: list[BaseException] = []

        async def on_error(exc: BaseException) -> None:
            failures.append(exc)
            if self._sub is not None and not self._closing:  # before, the failure is the one-line refusal below
                log.warning("NATS at %s: %s", redact(self.url), redact(_say(exc)))

        async def on_disconnect() -> None:
            if self._sub is not None and not self._closing:
                log.warning("NATS at %s: disconnected; reconnecting", redact(self.url))

        async def on_reconnect() -> None:
            log.info("NATS at %s: reconnected", redact(self.url))

        try:
            # Reconnect forever once running (an outage is waited out); the first connection is
            # bounded by connect_timeout instead, since nats-py would retry it forever too.
            self._nc = await asyncio.wait_for(nats.connect(
                self.url, name="liverec consume", connect_timeout=connect_timeout, max_reconnect_attempts=-1,
                reconnect_time_wait=1.0, error_cb=on_error, disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
            ), connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            cause = failures[-1] if failures else exc
            raise StreamError(f"cannot reach NATS at {redact(self.url)}: {redact(_say(cause))}") from None
        self._js = self._nc.jetstream(timeout=API_TIMEOUT)
        try:
            await self._open_stream(create_stream)
            await self._open_consumer(max_deliver, batch)
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
            raise StreamError(f"NATS at {redact(self.url)} does not answer JetStream requests; is JetStream on "
                              "(nats-server --jetstream)?") from None
        except nats.js.errors.APIError as exc:
            raise StreamError(f"NATS at {redact(self.url)} refused: {exc.description or _say(exc)}") from None
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())

    async def _open_stream(self, create: bool) -> None:
        js, errors = self._js, self._nats.js.errors
        try:
            info = await js.stream_info(self.stream)
        except errors.NotFoundError:
            if not create:
                raise NotFoundError(
                    f"no stream {self.stream!r} at {redact(self.url)}; create it taking {self.subject!r} (and "
                    f"{self.dead_letter_subject!r} for dead letters), or pass --create-stream",
                    kind="stream", key=self.stream) from None
            try:
                info = await js.add_stream(name=self.stream, subjects=[self.subject, self.dead_letter_subject])
            except errors.APIError as exc:
                raise StreamError(f"cannot create stream {self.stream!r} at {redact(self.url)}: "
                                  f"{exc.description or _say(exc)}") from None
            log.info("created stream %s taking %s and %s", self.stream, self.subject, self.dead_letter_subject)
        subjects = list(info.config.subjects or ())
        if subjects and not any(covers(pattern, self.subject) for pattern in subjects):
            raise StreamError(f"stream {self.stream!r} does not take {self.subject!r} (its subjects: "
                              f"{', '.join(subjects)})")
        try:
            await js.find_stream_name_by_subject(self.dead_letter_subject)
            self.keeps_dead_letters = True
        except errors.NotFoundError:
            log.warning("no stream takes the dead-letter subject %s: poison messages are terminated and logged, "
                        "and stay in stream %s at their sequence", self.dead_letter_subject, self.stream)

    async def _open_consumer(self, max_deliver: int, batch: int) -> None:
        js, api, errors = self._js, self._nats.js.api, self._nats.js.errors
        # Room for a batch in hand and the one before it, whose acks may still be on the way.
        pending = max(2 * batch, 1000)
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except errors.NotFoundError:
            info = await js.add_consumer(self.stream, api.ConsumerConfig(
                name=self.durable, durable_name=self.durable, filter_subject=self.subject,
                deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait,
                max_deliver=max_deliver, max_ack_pending=pending,
            ))
            log.info("created consumer %s of stream %s", self.durable, self.stream)
        else:
            config = info.config
            reads = config.filter_subject or ", ".join(config.filter_subjects or ()) or "every subject"
            if config.filter_subject != self.subject or config.filter_subjects:
                raise StreamError(f"consumer {self.durable!r} of stream {self.stream!r} reads {reads!r}, not "
                                  f"{self.subject!r}; pick another --durable")
            if config.deliver_subject or config.ack_policy != api.AckPolicy.EXPLICIT:
                raise StreamError(f"consumer {self.durable!r} of stream {self.stream!r} is not a pull consumer with "
                                  "explicit acks; pick another --durable")
            if config.ack_wait != self.ack_wait or (config.max_ack_pending or 0) < batch:
                try:
                    info = await js.add_consumer(self.stream, config.evolve(
                        ack_wait=self.ack_wait, max_ack_pending=max(config.max_ack_pending or 0, pending)))
                except errors.APIError as exc:
                    log.warning("consumer %s keeps ack_wait %ss and max_ack_pending %s: %s", self.durable,
                                config.ack_wait, config.max_ack_pending, exc.description or _say(exc))
        self.ack_wait = float(info.config.ack_wait or self.ack_wait)
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def _fetch(self, max_messages: int, timeout: float) -> list[Message]:
        errors = self._nats.errors
        try:
            got = await self._sub.fetch(max_messages, timeout=timeout)
        except errors.TimeoutError:
            return []
        except (errors.ConnectionClosedError, errors.ConnectionReconnectingError, errors.StaleConnectionError,
                errors.OutboundBufferLimitError):
            await asyncio.sleep(timeout)  # the client reconnects on its own
            return []
        except self._nats.js.errors.APIError as exc:
            raise StreamError(f"consumer {self.durable!r} of stream {self.stream!r}: "
                              f"{exc.description or _say(exc)}") from None
        messages = []
        for msg in got:
            meta = msg.metadata
            self._held[id(msg)] = msg
            messages.append(Message(msg.data, f"nats:{meta.stream}:{meta.sequence.stream}",
                                    meta.timestamp.timestamp(), meta.num_delivered, msg))
        return messages

    async def _settle(self, messages: Sequence[Message], how: str, delay: float = 0.0) -> None:
        errors = self._nats.errors
        lost = 0
        for message in messages:
            msg = message.handle
            self._held.pop(id(msg), None)
            try:
                await (msg.ack() if how == "ack" else msg.nak(delay=delay))
            except errors.MsgAlreadyAckdError:
                pass
            except errors.Error:
                lost += 1
        try:
            await self._nc.flush(timeout=API_TIMEOUT)  # on the wire before the next fetch
        except errors.Error:
            lost = len(messages)
        if lost:  # the broker redelivers them after ack_wait: stored events are recognised, nothing is lost
            log.warning("%d %ss may not have reached NATS; those messages come back and are recognised",
                        lost, how)

    async def _dead_letter(self, message: Message, reason: str) -> None:
        msg = message.handle
        if self.keeps_dead_letters:
            headers = {
                "Liverec-Error": " ".join(reason.split())[:MAX_REASON],
                "Liverec-Position": message.position,
                "Liverec-Subject": msg.subject,
                "Liverec-Deliveries": str(message.deliveries),
                "Nats-Msg-Id": f"liverec-dead-letter:{message.position}",  # a redelivered poison is recorded once
            }
            try:
                await self._js.publish(self.dead_letter_subject, msg.data, headers=headers, timeout=API_TIMEOUT)
            except self._nats.errors.Error as exc:
                raise StreamError(f"cannot publish to {self.dead_letter_subject!r}: {_say(exc)}") from None
        self._held.pop(id(msg), None)
        try:
            await msg.term()
        except self._nats.errors.Error as exc:  # it comes back, is found poison again, and recorded once
            log.warning("terminating %s: %s", message.position, _say(exc))

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ack_wait / 2)
            for msg in list(self._held.values()):
                try:
                    await msg.in_progress()
                except self._nats.errors.Error:
                    break  # disconnected: they will be redelivered, which is harmless

    async def _close(self) -> None:
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
        nc = self._nc
        if nc is None or nc.is_closed:
            return
        for msg in list(self._held.values()):
            try:
                await msg.nak()
            except self._nats.errors.Error:
                break
        self._held.clear()
        try:
            await nc.flush(timeout=API_TIMEOUT)
        except self._nats.errors.Error:
            pass
        await nc.close()
