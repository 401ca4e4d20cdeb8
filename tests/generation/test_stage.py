"""The narrator: summaries refreshed in the background, explanations within a budget, caching,
fallback to templates, the guard and the breaker at work.

The cache and budget logic is driven by ``Scripted``, an in-process generator that answers what
a test tells it to (a random-weight model cannot be made to answer something sensible); the same
paths then run on the real tiny model through llama.cpp, where every answer is garbage.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from liverec.core.types import Event, EventType
from liverec.engine import Engine
from liverec.generation import GenerationError, GenerationSettings, Message, Narrator
from tests._worlds import paced


class Scripted:
    """Answers ``reply(messages)`` word by word after ``delay`` seconds; counts its calls."""

    name = "scripted"

    def __init__(self, reply: Callable[[Sequence[Message]], str], delay: float = 0.0) -> None:
        self.reply = reply
        self.delay = delay
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float,
               timeout: float) -> Iterator[str]:
        self.calls += 1
        self.release.wait(10)
        time.sleep(self.delay)
        text = self.reply(messages)
        if text == "!fail":
            raise GenerationError("backend down")
        for word in text.split(" "):
            yield word + " "

    def close(self) -> None:
        pass


def evidence_line(messages: Sequence[Message], label: str) -> str:
    """The first evidence value with ``label`` in the prompt (what a good model would cite)."""
    for line in messages[1].content.splitlines():
        if line.startswith(f"- {label}: “"):
            return line.split("“", 1)[1].rstrip("”")
    raise AssertionError(f"no {label} in the prompt")


def grounded(messages: Sequence[Message]) -> str:
    if "recommended item" in messages[1].content:
        return f"Picked for you: {evidence_line(messages, 'recommended item')}."
    if "- item:" in messages[1].content:
        return f"{evidence_line(messages, 'item')} suits what you like."
    zh = "用户" in messages[0].content
    tag = evidence_line(messages, "interest")
    return f"你最近似乎对{tag}感兴趣。" if zh else f"You seem to be into {tag} lately."


def narrator(engine: Engine, generator: object, **settings: object) -> tuple[Narrator, Counter[tuple[str, str]]]:
    counts: Counter[tuple[str, str]] = Counter()
    config = GenerationSettings(llm="scripted", **settings)  # type: ignore[arg-type]
    return Narrator(engine, generator, config, on_outcome=lambda u, o: counts.update([(u, o)])), counts  # type: ignore[arg-type]


def wait_for(predicate: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


_CLOCK = iter(paced(100_000, start=time.time() - 30 * 86400))  # one search and one view again would be duplicates


def act(engine: Engine, user: str, n: int, query: str = "trail running shoes") -> None:
    events = [Event.create(user, EventType.SEARCH, text=query, timestamp=next(_CLOCK))]
    events += [Event.create(user, EventType.VIEW, item_id, timestamp=next(_CLOCK))
               for item_id in engine.items.ids()[: n - 1]]
    engine.ingest_events(events)


@pytest.fixture
def user(small_engine: Engine, request: pytest.FixtureRequest) -> str:
    uid = f"gen-{request.node.name}"[:60]
    act(small_engine, uid, 3)
    return uid


def test_the_summary_is_a_template_until_a_generated_one_is_ready_then_refreshes_after_n_events(
        small_engine: Engine, user: str) -> None:
    gen = Scripted(grounded)
    n, counts = narrator(small_engine, gen, summary_every=3)
    first = n.summary(user)
    assert first.source == "template" and first.text.startswith("You seem to be into")
    wait_for(lambda: n.summary(user).source == "generated")
    generated = n.summary(user)
    assert generated.model == "scripted" and generated.prompt == "summary/v1"
    assert generated.state_version == small_engine.state(user).version
    assert gen.calls == 1  # reads in between asked nothing more
    act(small_engine, user, 2)  # two events: not yet N
    assert n.summary(user) == generated and gen.calls == 1
    act(small_engine, user, 2)
    n.summary(user)  # N passed: refreshed in the background, the old one served meanwhile
    wait_for(lambda: n.summary(user).state_version > generated.state_version)
    assert gen.calls == 2 and counts[("summary", "generated")] == 2
    n.close()


def test_a_chinese_shopper_gets_a_chinese_summary(small_engine: Engine) -> None:
    uid = "gen-zh-shopper"
    small_engine.ingest_events([Event.create(uid, EventType.SEARCH, text="防水登山鞋"),
                                Event.create(uid, EventType.SEARCH, text="轻便登山杖")])
    n, _ = narrator(small_engine, Scripted(grounded))
    assert n.summary(uid).text.startswith("你")  # the template, in Chinese
    text = n.refresh_summary(uid)
    assert text.source == "generated" and text.language == "zh" and "感兴趣" in text.text
    n.close()


def test_explanations_wait_at_most_the_budget_and_are_cached_by_state_version(small_engine: Engine, user: str) -> None:
    gen = Scripted(grounded, delay=0.05)
    n, counts = narrator(small_engine, gen, explain_top=3)
    recs = small_engine.recommend(user, 5)
    started = time.monotonic()
    out = n.explain(user, recs, budget_ms=2000)
    assert time.monotonic() - started < 2.0
    assert set(out) == {r.item_id for r in recs[:3]}
    assert all(t.source == "generated" for t in out.values())
    title = small_engine.items.get(recs[0].item_id).title
    assert title[:20] in out[recs[0].item_id].text
    calls = gen.calls
    again = n.explain(user, recs, budget_ms=0)  # cached: no call, no wait
    assert again == out and gen.calls == calls and counts[("explain", "cached")] == 3
    act(small_engine, user, 2)  # a new state version: explained afresh
    gen.release.clear()  # the backend stalls
    started = time.monotonic()
    late = n.explain(user, small_engine.recommend(user, 5), budget_ms=100)
    assert time.monotonic() - started < 0.6
    assert all(t.source == "template" for t in late.values())  # the ranker's reasons, on time
    gen.release.set()
    n.close()


def test_without_a_budget_explanations_are_templates(small_engine: Engine, user: str) -> None:
    gen = Scripted(grounded)
    n, _ = narrator(small_engine, gen)
    recs = small_engine.recommend(user, 3)
    out = n.explain(user, recs)  # the default budget is 0
    assert all(t.source == "template" and t.text == r.reasons[0].text for t, r in zip(out.values(), recs, strict=True))
    assert gen.calls == 0
    n.close()


def test_rejected_answers_fall_back_and_are_not_asked_again(small_engine: Engine, user: str) -> None:
    gen = Scripted(lambda m: "Buy the Acme Hyperboot 3000 at https://acme.example now")
    n, counts = narrator(small_engine, gen, breaker_failures=100)
    recs = small_engine.recommend(user, 3)
    out = n.explain(user, recs, budget_ms=2000)
    assert all(t.source == "template" for t in out.values())
    assert counts[("explain", "rejected")] == 3 and sum(n.rejections.values()) == 3
    n.explain(user, recs, budget_ms=2000)
    assert gen.calls == 3  # the same (user, version, item) is not retried
    n.close()


def test_the_breaker_stops_calling_a_failing_backend(small_engine: Engine, user: str) -> None:
    gen = Scripted(lambda m: "!fail")
    n, counts = narrator(small_engine, gen, breaker_failures=2, breaker_cooldown=60)
    recs = small_engine.recommend(user, 6)
    n.explain(user, recs[:3], budget_ms=1000)
    assert counts[("explain", "error")] == 2 and counts[("explain", "breaker_open")] == 1
    assert n.breaker.state == "open" and gen.calls == 2
    n.close()


def test_item_copy_is_the_description_until_generated(small_engine: Engine, user: str) -> None:
    gen = Scripted(grounded)
    n, _ = narrator(small_engine, gen)
    item_id = small_engine.recommend(user, 1)[0].item_id
    first = n.copy(user, item_id)
    assert first.source == "template"
    wait_for(lambda: n.copy(user, item_id).source == "generated")
    assert small_engine.items.get(item_id).title[:20] in n.copy(user, item_id).text
    n.close()


def test_forgetting_a_user_drops_their_texts(small_engine: Engine) -> None:
    uid = "gen-forgotten"
    act(small_engine, uid, 3)
    n, _ = narrator(small_engine, Scripted(grounded))
    n.refresh_summary(uid)
    n.forget(uid)
    assert uid not in n._summaries and not any(k[0] == uid for k in n._cache._data)
    n.close()


def test_the_stage_off_gives_templates_everywhere(small_engine: Engine, user: str) -> None:
    n = Narrator(small_engine, None)
    assert not n.enabled
    assert n.summary(user).source == "template"
    assert n.refresh_summary(user).source == "template"
    assert all(t.source == "template" for t in n.explain(user, small_engine.recommend(user, 3), 500).values())


def test_a_real_random_model_is_refused_by_the_guard(small_engine: Engine, user: str, tiny_gguf: Path,
                                                      llama_cpp: object) -> None:
    settings = GenerationSettings(llm=str(tiny_gguf), context=4096, threads=1, max_tokens=24, breaker_failures=100)
    counts: Counter[tuple[str, str]] = Counter()
    n = Narrator(small_engine, settings.open(), settings, on_outcome=lambda u, o: counts.update([(u, o)]))
    try:
        text = n.refresh_summary(user)
        assert text.source == "template"  # random weights babble: never shown
        assert counts[("summary", "rejected")] == 1
        out = n.explain(user, small_engine.recommend(user, 3), budget_ms=5000)
        assert all(t.source == "template" for t in out.values())
        assert counts[("explain", "rejected")] == 3
    finally:
        n.close()
