"""``liverec consume`` against the real NATS JetStream at 127.0.0.1:4222: each test in a stream and
subject of its own (deleted afterwards), into a real SQLite store holding a 50-item catalog.

What is checked is what docs/streams.md promises: a message is acked only after its events are
stored, a redelivery stores nothing twice (events without an id are named after their stream
sequence), poison is dead-lettered while the rest of its batch is stored, a storage failure loses
nothing, SIGTERM finishes the batch and exits 0, and 100,000 events survive two SIGKILLs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from typer.testing import CliRunner

from liverec.cli import app
from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.engine import Engine
from liverec.service.privacy import Pseudonymizer
from liverec.storage import open_store
from liverec.streams import ConsumeStats, Message, StreamError, consume
from liverec.streams.nats import NatsSource
from tests import _services

pytestmark = pytest.mark.services

T = TypeVar("T")
ITEMS = [{"item_id": f"item{n:02d}", "title": f"Trail gear number {n}"} for n in range(50)]
NOW = time.time()


# ---------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the catalog only, encoded once for the module (item ingest runs the real encoder)."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    with Engine.open(f"sqlite:///{path}") as engine:
        engine.ingest_items(ITEMS)
    return path


@pytest.fixture
def store(catalog: Path, tmp_path: Path) -> str:
    path = tmp_path / "store.db"
    shutil.copy(catalog, path)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Names:
    stream: str
    subject: str
    durable: str = "liverec"

    @property
    def dead_letter(self) -> str:
        return f"{self.subject}.dlq"

    def options(self) -> list[str]:
        return ["--url", _services.NATS, "--stream", self.stream, "--subject", self.subject, "--durable", self.durable]


def jetstream(work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(js)`` on a connection of its own."""
    import nats

    async def main() -> T:
        nc = await nats.connect(_services.NATS)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


@pytest.fixture
def names() -> Iterator[Names]:
    """A stream and subject of the test's own, not created yet; deleted afterwards."""
    _services.require(_services.NATS, "NATS")
    token = _services.unique("t")
    made = Names(stream=f"LR_{token}", subject=f"liverec.test.{token}")
    yield made

    async def delete(js: Any) -> None:
        import nats.js.errors

        try:
            await js.delete_stream(made.stream)
        except nats.js.errors.NotFoundError:
            pass

    jetstream(delete)


@pytest.fixture
def stream(names: Names) -> Names:
    """``names`` with its stream created, taking the subject and its dead-letter subject."""
    jetstream(lambda js: js.add_stream(name=names.stream, subjects=[names.subject, names.dead_letter]))
    return names


def publish(names: Names, bodies: Sequence[bytes]) -> list[int]:
    """Publish ``bodies`` in order, each acknowledged by the stream; their stream sequences."""

    async def work(js: Any) -> list[int]:
        seqs: list[int] = []
        for start in range(0, len(bodies), 5000):
            futures = [await js.publish_async(names.subject, body) for body in bodies[start : start + 5000]]
            seqs += [(await future).seq for future in futures]
        return seqs

    return jetstream(work)


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {"user_id": f"u{n % 7}", "type": "view", "item_id": ITEMS[n % len(ITEMS)]["item_id"], **fields}


def body(value: Any) -> bytes:
    return orjson.dumps(value)


def source(names: Names, **options: Any) -> NatsSource:
    return NatsSource(_services.NATS, subject=names.subject, stream=names.stream, durable=names.durable, **options)


def pending(names: Names) -> tuple[int, int]:
    """The consumer's messages not delivered yet, and delivered but not acked."""

    async def work(js: Any) -> tuple[int, int]:
        info = await js.consumer_info(names.stream, names.durable)
        return info.num_pending, info.num_ack_pending

    return jetstream(work)


def dead_letters(names: Names) -> list[tuple[bytes, dict[str, str]]]:
    async def work(js: Any) -> list[tuple[bytes, dict[str, str]]]:
        import nats.errors

        sub = await js.pull_subscribe(names.dead_letter, stream=names.stream)
        try:
            got = await sub.fetch(100, timeout=1)
        except nats.errors.TimeoutError:
            return []
        return [(m.data, dict(m.headers or {})) for m in got]

    return jetstream(work)


def stored(store: str) -> dict[str, Any]:
    """Every stored event by id."""
    opened = open_store(store, create=False)
    try:
        return {e.event_id: e for e in opened.events.all()}
    finally:
        opened.close()


def count(store: str) -> int:
    opened = open_store(store, create=False)
    try:
        return opened.events.count()
    finally:
        opened.close()


def run_consume(store: str, names: Names, messages: NatsSource | None = None, **options: Any) -> ConsumeStats:
    """:func:`consume` in-process, as the command runs it."""
    src = messages or source(names)
    try:
        with Engine.open(store, create=False) as engine:
            return consume(engine, src, idle_timeout=0.5, **options)
    finally:
        src.close()


class LostAcks:
    """A source whose acks never arrive: the consumer died between the commit and the ack, so the
    broker delivers every message again (at once, here, rather than after ack_wait)."""

    def __init__(self, inner: NatsSource) -> None:
        self.inner = inner
        self.name = inner.name

    def fetch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        return self.inner.fetch(max_messages, timeout)

    def ack(self, messages: Sequence[Message]) -> None:
        self.inner.nak(messages, 0.0)

    def nak(self, messages: Sequence[Message], delay: float) -> None:
        self.inner.nak(messages, delay)

    def dead_letter(self, message: Message, reason: str) -> None:
        self.inner.dead_letter(message, reason)

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------------------- in process


def test_every_body_form_is_stored_and_acked(store: str, stream: Names) -> None:
    publish(stream, [
        body(event(0, event_id="a", timestamp=NOW - 60)),  # one event
        body([event(1, event_id="b", timestamp=NOW - 50), event(2, event_id="c", timestamp=NOW - 40)]),  # a list
        body({"events": [event(3, event_id="d", timestamp=NOW - 30)]}),  # a POST /events body
    ])
    stats = run_consume(store, stream, max_events=4)
    assert (stats.messages, stats.stored, stats.duplicates, stats.dead_letters) == (3, 4, 0, 0)
    events = stored(store)
    assert sorted(events) == ["a", "b", "c", "d"]
    assert (events["c"].user_id, events["c"].item_id, events["c"].timestamp) == ("u2", "item02", NOW - 40)
    assert pending(stream) == (0, 0)  # nothing left to deliver, nothing delivered and not acked


def test_events_without_an_id_or_time_are_named_and_timed_by_the_stream(store: str, stream: Names) -> None:
    before = time.time()
    seqs = publish(stream, [body(event(0)), body([event(1), event(2)])])
    after = time.time()
    run_consume(store, stream, max_events=3)
    events = stored(store)
    assert sorted(events) == sorted([f"nats:{stream.stream}:{seqs[0]}", f"nats:{stream.stream}:{seqs[1]}/0",
                                     f"nats:{stream.stream}:{seqs[1]}/1"])
    assert all(before - 1 <= e.timestamp <= after + 1 for e in events.values())


def test_a_redelivered_message_stores_nothing_twice(store: str, stream: Names) -> None:
    bodies = [body(event(n, event_id=f"e{n}", timestamp=NOW - 100 + n)) for n in range(10)]
    bodies += [body(event(n)) for n in range(10, 20)]  # named after their sequence, timed by the stream
    bodies.append(body([event(20), event(21, event_id="e21")]))
    publish(stream, bodies)
    first = run_consume(store, stream, LostAcks(source(stream)), max_events=22)
    assert (first.stored, first.duplicates) == (22, 0)
    before = stored(store)
    assert pending(stream)[1] == 21  # stored, but every message is delivered again
    again = run_consume(store, stream, max_events=22)
    assert (again.messages, again.stored, again.duplicates, again.dead_letters) == (21, 0, 22, 0)
    assert stored(store) == before
    assert pending(stream) == (0, 0)


def test_an_event_sent_twice_under_one_id_is_stored_once(store: str, stream: Names) -> None:
    twice = body(event(1, event_id="same", timestamp=NOW - 10))
    publish(stream, [twice, body(event(2, event_id="other", timestamp=NOW - 5)), twice])
    stats = run_consume(store, stream, max_events=3)
    assert (stats.stored, stats.duplicates, stats.dead_letters) == (2, 1, 0)
    assert sorted(stored(store)) == ["other", "same"]


def test_poison_is_dead_lettered_and_the_rest_of_the_batch_is_stored(store: str, stream: Names) -> None:
    with Engine.open(store, create=False) as engine:
        engine.ingest_events([event(0, event_id="taken", timestamp=NOW - 100)])
    poison = {
        "not valid JSON": b'{"user_id": "u1", "type": ',
        "refers to unknown item 'nope'": body(event(1, item_id="nope")),
        "ConflictError": body(event(2, event_id="taken", timestamp=NOW - 100)),  # another event under a stored id
        "user_id must be a string": body(event(3, user_id=42)),
        "is not one of": body([event(4, event_id="lost-with-its-message"), event(5, type="clik")]),
        "holds no events": b"[]",
    }
    good = [body(event(n, event_id=f"g{n}", timestamp=NOW - 50 + n)) for n in range(10)]
    bodies = good[:5] + list(poison.values()) + good[5:]
    seqs = publish(stream, bodies)
    stats = run_consume(store, stream, batch=100, max_events=10)
    assert (stats.messages, stats.stored, stats.dead_letters, stats.retries) == (16, 10, 6, 0)  # one batch
    assert sorted(stored(store)) == sorted(["taken"] + [f"g{n}" for n in range(10)])
    letters = {headers["Liverec-Position"]: (data, headers) for data, headers in dead_letters(stream)}
    assert len(letters) == len(poison)
    for reason, data in poison.items():
        sent, headers = letters[f"nats:{stream.stream}:{seqs[bodies.index(data)]}"]
        assert sent == data
        assert reason in headers["Liverec-Error"]
        assert headers["Liverec-Subject"] == stream.subject
    assert pending(stream) == (0, 0)  # poison is settled too: it never comes back


def test_without_a_dead_letter_stream_poison_is_terminated_and_logged(
    store: str, names: Names, caplog: pytest.LogCaptureFixture,
) -> None:
    jetstream(lambda js: js.add_stream(name=names.stream, subjects=[names.subject]))
    publish(names, [b"nonsense", body(event(1, event_id="fine", timestamp=NOW - 1))])
    stats = run_consume(store, names, max_events=1)
    assert (stats.stored, stats.dead_letters) == (1, 1)
    assert "no stream takes the dead-letter subject" in caplog.text
    assert f"dead letter nats:{names.stream}:1: InvalidInputError: the message is not valid JSON" in caplog.text
    assert pending(names) == (0, 0)


def test_a_storage_failure_redelivers_the_batch_and_loses_nothing(
    store: str, stream: Names, monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(stream, [body(event(n, event_id=f"e{n}", timestamp=NOW - 100 + n)) for n in range(30)])
    with Engine.open(store, create=False) as engine:
        append = engine.store.events.append
        calls: list[int] = []

        def fails_once(events: Sequence[Any]) -> int:
            calls.append(len(events))
            if len(calls) == 1:
                raise StorageError("events: append failed: disk I/O error")
            return append(events)

        monkeypatch.setattr(engine.store.events, "append", fails_once)
        src = source(stream)
        try:
            stats = consume(engine, src, batch=100, max_events=30, idle_timeout=0.5)
        finally:
            src.close()
    assert (stats.stored, stats.duplicates, stats.retries, stats.dead_letters) == (30, 0, 1, 0)
    assert calls == [30, 30]  # the whole batch again, after the delay: nothing was dead-lettered for it
    assert len(stored(store)) == 30
    assert pending(stream) == (0, 0)


def test_user_ids_are_mapped_as_the_service_maps_them(store: str, stream: Names) -> None:
    pseudonyms = Pseudonymizer("a secret of at least 16 bytes")
    publish(stream, [body(event(0, user_id="ann@example.com", event_id="x", timestamp=NOW - 1))])
    run_consume(store, stream, max_events=1, user_id=pseudonyms.user_id)
    assert stored(store)["x"].user_id == pseudonyms.user_id("ann@example.com")


def test_a_consumer_that_reads_another_subject_is_refused_by_name(stream: Names) -> None:
    import nats.js.api

    jetstream(lambda js: js.add_consumer(stream.stream, nats.js.api.ConsumerConfig(
        durable_name=stream.durable, filter_subject=stream.dead_letter)))
    with pytest.raises(StreamError, match=f"consumer 'liverec' of stream '{stream.stream}' reads "
                                          f"'{stream.dead_letter}', not '{stream.subject}'"):
        source(stream)


def test_a_missing_stream_is_named_and_created_only_when_asked(names: Names) -> None:
    with pytest.raises(NotFoundError, match=f"no stream '{names.stream}' .* or pass --create-stream"):
        source(names)
    source(names, create_stream=True).close()
    info = jetstream(lambda js: js.stream_info(names.stream))
    assert info.config.subjects == [names.subject, names.dead_letter]


def test_bad_options_are_refused_before_connecting() -> None:
    with pytest.raises(InvalidInputError, match="has wildcards: name the dead-letter subject"):
        NatsSource(subject="liverec.>")
    with pytest.raises(InvalidInputError, match="is read by --subject"):
        NatsSource(subject="liverec.>", dead_letter="liverec.dlq")
    with pytest.raises(InvalidInputError, match="--stream 'a.b' is not a JetStream name"):
        NatsSource(stream="a.b")


# ---------------------------------------------------------------------------- the command


runner = CliRunner()


def test_the_command_consumes_and_sums_up_in_one_line(store: str, stream: Names) -> None:
    publish(stream, [b"oops"] + [body(event(n, event_id=f"e{n}", timestamp=NOW - 10)) for n in range(5)])
    result = runner.invoke(app, ["consume", "--store", store, *stream.options(), "--max-events", "5"])
    assert result.exit_code == 0, result.output
    assert "consumed 5 events from 6 messages in" in result.stdout
    assert "5 stored, 0 already stored, 1 dead-lettered, 0 retried" in result.stdout


def test_the_command_uses_the_services_pseudonyms(store: str, stream: Names, tmp_path: Path,
                                                  no_liverec_environment: None) -> None:
    secret = "a secret of at least 16 bytes"
    (tmp_path / "liverec.toml").write_text(f'user_id_secret = "{secret}"\n')
    publish(stream, [body(event(0, user_id="ann@example.com", event_id="x", timestamp=NOW - 1))])
    result = runner.invoke(app, ["consume", "--store", store, *stream.options(), "--max-events", "1",
                                 "--config", str(tmp_path / "liverec.toml")])
    assert result.exit_code == 0, result.output
    assert stored(store)["x"].user_id == Pseudonymizer(secret).user_id("ann@example.com")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--url", "nats://127.0.0.1:1"], "error: cannot reach NATS at nats://127.0.0.1:1"),
        (["--url", "kafka://127.0.0.1:9092"], "error: broker URL 'kafka://127.0.0.1:9092' has no known scheme"),
        (["--batch", "0"], "error: --batch must be at least 1, got 0"),
        (["--subject", "liverec.*"], "error: --subject 'liverec.*' has wildcards: name the dead-letter subject"),
    ],
)
def test_the_commands_refusals_are_one_line(store: str, options: list[str], message: str) -> None:
    result = runner.invoke(app, ["consume", "--store", store, *options])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_the_command_names_a_missing_stream_and_store(store: str, names: Names, tmp_path: Path) -> None:
    result = runner.invoke(app, ["consume", "--store", store, *names.options()])
    assert result.exit_code == 2
    assert f"error: no stream '{names.stream}' at {_services.NATS}" in result.stderr
    result = runner.invoke(app, ["consume", "--store", f"sqlite:///{tmp_path / 'none.db'}", *names.options()])
    assert result.exit_code == 2
    assert "error: no store at" in result.stderr and not (tmp_path / "none.db").exists()


def test_without_nats_py_the_command_says_what_to_install(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nats", None)  # import nats raises ImportError
    result = runner.invoke(app, ["consume", "--store", store])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: NATS streams need nats-py: pip install 'liverec[nats]'"


# ---------------------------------------------------------------------------- a real process


class Consumer:
    """``liverec consume`` in a process of its own, its output in files."""

    def __init__(self, store: str, names: Names, tmp_path: Path, *options: str) -> None:
        n = len(list(tmp_path.glob("consumer-*.out")))
        self.out, self.err = tmp_path / f"consumer-{n}.out", tmp_path / f"consumer-{n}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "liverec.cli", "consume", "--store", store, *names.options(), *options],
                stdout=out, stderr=err, env=env)

    def signal(self, sig: signal.Signals, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    @property
    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()


def wait_until(check: Callable[[], bool], timeout: float, what: str, consumer: Consumer | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if consumer is not None and consumer.process.poll() is not None:
            pytest.fail(f"the consumer exited ({consumer.process.returncode}) before {what}: {consumer.output}")
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}" + (f"\n{consumer.output}" if consumer else ""))
        time.sleep(0.2)


def test_sigterm_finishes_the_batch_acks_it_and_exits_0(store: str, stream: Names, tmp_path: Path) -> None:
    total = 20_000
    publish(stream, [body(event(n, event_id=f"e{n}", timestamp=NOW - 100)) for n in range(total)])
    consumer = Consumer(store, stream, tmp_path, "--batch", "500")
    wait_until(lambda: count(store) >= 2000, 60, "2,000 events were stored", consumer)
    assert consumer.signal(signal.SIGTERM) == 0, consumer.output
    assert "consumed " in consumer.out.read_text() and "SIGTERM: stopping after the batch in hand" in consumer.output
    assert pending(stream)[1] == 0  # every message it took was acked (or handed back)
    rest = run_consume(store, stream, max_events=total - count(store))
    assert rest.duplicates == 0  # so nothing it stored comes back
    assert len(stored(store)) == total


def test_100k_events_through_two_sigkills_are_stored_exactly_once(store: str, stream: Names, tmp_path: Path) -> None:
    total = 100_000
    bodies, expected = [], set()
    for n in range(total):
        row = {"user_id": f"u{n % 2000}", "type": "click" if n % 5 == 0 else "view",
               "item_id": ITEMS[n % len(ITEMS)]["item_id"]}
        if n % 2 == 0:  # half carry their own id and time, half are named and timed by the stream
            row |= {"event_id": f"e{n}", "timestamp": NOW - 3600 + n / 100}
        bodies.append(body(row))
    seqs = publish(stream, bodies)
    expected = {f"e{n}" if n % 2 == 0 else f"nats:{stream.stream}:{seq}" for n, seq in enumerate(seqs)}
    started = time.monotonic()
    for threshold in (20_000, 55_000):
        consumer = Consumer(store, stream, tmp_path, "--ack-wait", "2")
        wait_until(lambda threshold=threshold: count(store) >= threshold, 120, f"{threshold:,} events were stored",
                   consumer)
        assert consumer.signal(signal.SIGKILL) == -signal.SIGKILL
    consumer = Consumer(store, stream, tmp_path, "--ack-wait", "2")
    wait_until(lambda: count(store) >= total and pending(stream) == (0, 0), 180, "every event was stored", consumer)
    seconds = time.monotonic() - started
    assert consumer.signal(signal.SIGTERM) == 0, consumer.output
    events = stored(store)
    assert len(events) == count(store) == total
    assert set(events) == expected
    print(f"\n100,000 events through two SIGKILLs in {seconds:.1f} s ({total / seconds:,.0f} events/s); "
          f"the last run: {consumer.out.read_text().strip()}")
