"""The generative stage: texts a language model writes for a user, never on the request path.

Three uses, each with the evidence-based template liverec always had as its fallback:

* **summary** — what a user is into right now (``GET /users/{id}/interests?summary=true``).
  Refreshed in the background once ``summary_every`` events arrived since the last one; a request
  gets the newest accepted summary, or the template when there is none yet;
* **explain** — one sentence per top recommendation. Cached by (user, state version, item); a
  request with a budget (``explain_budget_ms``, default 0: templates only) waits at most that long,
  and what is not ready by then is a template now and generated for the next request;
* **copy** — an item's pitch rewritten for this user's interests (``GET /items/{id}?for_user=``),
  generated in the background and cached like explanations.

Every call runs on one background thread (a small model on 2 cores answers one call at a time
anyway), with a timeout, behind a circuit breaker, and every answer passes
:func:`liverec.generation.guard.check` or is thrown away. ``on_outcome(use, outcome)`` counts
``generated``, ``cached``, ``template``, ``rejected``, ``timeout``, ``error``, ``breaker_open`` and
``busy`` (more than :data:`MAX_QUEUED` generations already waiting).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from liverec.core.errors import InvalidInputError
from liverec.core.settings import from_table
from liverec.core.types import EventType, Recommendation
from liverec.generation.base import GenerationError, GenerationTimeout, Generator, collect, open_generator
from liverec.generation.guard import Breaker, Rejected, check
from liverec.generation.prompts import Evidence, fenced, language_of, template
from liverec.realtime.state import UserState
from liverec.text.keywords import Language, detect_language

if TYPE_CHECKING:
    from liverec.engine import Engine

__all__ = ["GenerationSettings", "Narrator", "Text"]

Use = Literal["summary", "explain", "copy"]
CACHE_SIZE = 10_000
MAX_QUEUED = 32  # generations waiting for the model; beyond it a text stays a template for now


@dataclass(frozen=True)
class GenerationSettings:
    """The ``[generation]`` table of the service settings.

    ``llm`` is a ``.gguf`` path or an OpenAI-compatible server's URL (None: the stage is off and
    every text is a template); ``model`` names the model at that server; ``api_key_env`` names the
    environment variable holding its key (never the key itself, so settings files hold no secret).
    """

    llm: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout: float = 10.0  # seconds one call may take before it counts as a failure
    explain_budget_ms: float = 0.0  # default for requests; 0: explanations are templates unless cached
    explain_top: int = 3  # how many of a list's first items get an explanation
    summary_every: int = 5  # events after which a user's summary is regenerated
    max_tokens: int = 96
    temperature: float = 0.2
    threads: int = 2
    context: int = 2048
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0

    def __post_init__(self) -> None:
        for name in ("timeout", "breaker_cooldown"):
            _positive(name, getattr(self, name), float)
        for name in ("explain_top", "summary_every", "max_tokens", "threads", "context", "breaker_failures"):
            _positive(name, getattr(self, name), int)
        if isinstance(self.explain_budget_ms, bool) or not isinstance(self.explain_budget_ms, int | float) \
                or not 0 <= self.explain_budget_ms <= 10_000:
            raise InvalidInputError("explain_budget_ms must be a number of milliseconds from 0 to 10000",
                                    field="generation.explain_budget_ms", value=self.explain_budget_ms)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float) \
                or not 0 <= self.temperature <= 2:
            raise InvalidInputError("temperature must be from 0 to 2", field="generation.temperature",
                                    value=self.temperature)
        for name in ("llm", "model", "api_key_env"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInputError(f"{name} must be a non-empty string", field=f"generation.{name}", value=value)

    @classmethod
    def from_mapping(cls, values: Any) -> GenerationSettings:
        return from_table(cls, values, "generation")

    def open(self, env: Any = None) -> Generator | None:
        """The configured generator, loaded now (a model file is read once), or None when off."""
        if self.llm is None:
            return None
        import os

        api_key = (env or os.environ).get(self.api_key_env) if self.api_key_env else None
        return open_generator(self.llm, model=self.model, api_key=api_key, threads=self.threads,
                              context=self.context)


def _positive(name: str, value: Any, kind: type) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float if kind is float else int) and value > 0
    if not ok:
        raise InvalidInputError(f"{name} must be a positive {'number' if kind is float else 'integer'}",
                                field=f"generation.{name}", value=value)


@dataclass(frozen=True)
class Text:
    """A text for a user, with where it came from: ``generated`` (by ``model`` from ``prompt``) or
    ``template``; ``state_version`` is the user's state it was written for."""

    text: str
    source: Literal["generated", "template"]
    prompt: str
    state_version: int
    model: str | None = None
    language: Language = "en"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "model": self.model, "prompt": self.prompt,
                "state_version": self.state_version, "language": self.language}


class _Cache:
    """A bounded LRU of accepted texts (thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._data: OrderedDict[tuple[Any, ...], Text] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Text | None:
        with self._lock:
            text = self._data.get(key)
            if text is not None:
                self._data.move_to_end(key)
            return text

    def put(self, key: tuple[Any, ...], text: Text) -> None:
        with self._lock:
            self._data[key] = text
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def drop_user(self, user_id: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k[0] == user_id]:
                del self._data[key]


_TRIED = Text("", "template", "", 0)


class Narrator:
    """Writes summaries, explanations and item copy for an engine's users (see the module doc)."""

    def __init__(self, engine: Engine, generator: Generator | None, settings: GenerationSettings | None = None,
                 on_outcome: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.generator = generator
        self.settings = settings or GenerationSettings()
        self.breaker = Breaker(self.settings.breaker_failures, self.settings.breaker_cooldown, clock)
        self._on_outcome = on_outcome
        self._cache = _Cache()
        self._summaries: dict[str, Text] = {}  # the newest accepted summary per user
        self._summary_events: dict[str, int] = {}  # the user's event count at the last try
        self._tried = _Cache()  # (user, version, prompt, item) keys whose answer failed: not asked again
        self._pending: dict[tuple[Any, ...], Future[Text | None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="liverec-generate") if generator else None
        self.rejections: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.generator is not None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.generator is not None:
            self.generator.close()

    def forget(self, user_id: str) -> None:
        """Drop every text written for an erased user."""
        with self._lock:
            self._summaries.pop(user_id, None)
            self._summary_events.pop(user_id, None)
        self._cache.drop_user(user_id)
        self._tried.drop_user(user_id)

    def forget_all(self, user_ids: Sequence[str]) -> None:
        for user_id in user_ids:
            self.forget(user_id)

    # ------------------------------------------------------------------ summary

    def summary(self, user_id: str) -> Text:
        """The user's interest summary now: the newest generated one, else the template. Never
        waits for a model; schedules a refresh once ``summary_every`` events passed."""
        state = self.engine.state(user_id)
        with self._lock:
            current = self._summaries.get(user_id)
            tried_at = self._summary_events.get(user_id)
            due = self.enabled and (tried_at is None or state.n_events - tried_at >= self.settings.summary_every)
            if due:
                self._summary_events[user_id] = state.n_events  # one try per N events, accepted or not
        if due:
            self._schedule_summary(user_id, state, self.summary_evidence(state))
        if current is not None:
            self._count("summary", "cached")
            return current
        self._count("summary", "template")
        return self._summary_template(state, self.summary_evidence(state))

    def refresh_summary(self, user_id: str, timeout: float | None = None) -> Text:
        """Generate the user's summary now and wait for it (the CLI's ``interests --summary``): the
        generated text, or the template when the stage is off or the answer was refused."""
        state = self.engine.state(user_id)
        evidence = self.summary_evidence(state)
        if self.enabled:
            future = self._schedule_summary(user_id, state, evidence)
            text = self._wait(future, timeout if timeout is not None else self.settings.timeout + 1)
            if text is not None:
                return text
        return self._summary_template(state, evidence)

    def _schedule_summary(self, user_id: str, state: UserState, evidence: Evidence) -> Future[Text | None]:
        return self._schedule(("summary", user_id, state.version), "summary", evidence, state,
                              lambda text: self._keep_summary(user_id, text))

    def _summary_template(self, state: UserState, evidence: Evidence) -> Text:
        return Text(summary_template(state, evidence, self.engine), "template", template("summary").key,
                    state.version, language=evidence.language)

    def _keep_summary(self, user_id: str, text: Text) -> None:
        with self._lock:
            current = self._summaries.get(user_id)
            if current is None or current.state_version <= text.state_version:
                self._summaries[user_id] = text

    def summary_evidence(self, state: UserState) -> Evidence:
        queries = [a.text for a in reversed(state.recent) if a.type is EventType.SEARCH and a.text][:3]
        reviews = [a.text for a in reversed(state.recent) if a.type is EventType.REVIEW and a.text][:2]
        titles = self._titles(a.item_id for a in reversed(state.positive_actions()))[:5]
        evidence = Evidence(language_of(queries + reviews + titles))
        evidence.add_all("interest", [tag for tag, _ in state.top_tags(6, self.engine.settings.tag_half_life)],
                         anchor=True)
        evidence.add_all("recently viewed or bought", titles, anchor=True)
        evidence.add_all("searched for", queries, anchor=True)
        return evidence

    # ------------------------------------------------------------------ explanations

    def explain(self, user_id: str, recs: Sequence[Recommendation], budget_ms: float | None = None) -> dict[str, Text]:
        """An explanation for each of the first ``explain_top`` of ``recs``: cached or generated
        within ``budget_ms`` (default: the setting), else the ranker's first reason."""
        budget = self.settings.explain_budget_ms if budget_ms is None else budget_ms
        deadline = time.monotonic() + budget / 1000
        state = self.engine.states.view(user_id)
        version = state.version if state is not None else 0
        key = template("explain").key
        out: dict[str, Text] = {}
        waiting: dict[str, Future[Text | None]] = {}
        for rec in recs[: self.settings.explain_top]:
            cache_key = (user_id, version, key, rec.item_id)
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._count("explain", "cached")
                out[rec.item_id] = cached
                continue
            out[rec.item_id] = _template_text(explain_template(rec), key, version)
            # The evidence is gathered only for a call that will be made: templates cost nothing.
            if self.enabled and state is not None and budget > 0 and self._tried.get(cache_key) is None:
                waiting[rec.item_id] = self._schedule(cache_key, "explain", self.explain_evidence(state, rec), state,
                                                      partial(self._cache.put, cache_key))
        for item_id, future in waiting.items():
            text = self._wait(future, deadline - time.monotonic())
            if text is not None:  # else the template now, the answer (if accepted) next time
                out[item_id] = text
        for text in out.values():
            if text.source == "template":
                self._count("explain", "template")
        return out

    def explain_evidence(self, state: UserState | None, rec: Recommendation) -> Evidence:
        item = self.engine.items.get(rec.item_id)
        user_texts = [a.text for a in reversed(state.recent) if a.text][:3] if state is not None else []
        evidence = Evidence(language_of(user_texts + self._titles(state.recent_items()[-3:] if state else [])
                                        + [item.title]))
        evidence.add("recommended item", item.title, anchor=True)
        evidence.add_all("its category", item.categories[:2])
        for reason in rec.reasons[:3]:
            evidence.note("ranker's reason", reason.text)
            cited = reason.evidence
            if cited and cited in self.engine.items:
                evidence.add("because of the item", self.engine.items.get(cited).title, anchor=True)
            elif cited:
                evidence.add(f"because of the {reason.kind}", cited, anchor=True)
        return evidence

    # ------------------------------------------------------------------ item copy

    def copy(self, user_id: str, item_id: str) -> Text:
        """The item's pitch for this user: generated and cached in the background; until then, and
        when the stage is off, the item's own description."""
        item = self.engine.items.get(item_id)
        state = self.engine.states.view(user_id)
        version = state.version if state is not None else 0
        key = (user_id, version, template("copy").key, item_id)
        cached = self._cache.get(key)
        if cached is not None:
            self._count("copy", "cached")
            return cached
        if self.enabled and state is not None and self._tried.get(key) is None:
            self._schedule(key, "copy", self.copy_evidence(state, item_id), state, partial(self._cache.put, key))
        self._count("copy", "template")
        return _template_text(fenced(item.description or item.title, 240), template("copy").key, version)

    def copy_evidence(self, state: UserState | None, item_id: str) -> Evidence:
        item = self.engine.items.get(item_id)
        tags = [t for t, _ in state.top_tags(5, self.engine.settings.tag_half_life)] if state is not None else []
        evidence = Evidence(language_of([item.title, item.description]))
        evidence.add("item", item.title, anchor=True)
        evidence.add_all("category", item.categories[:2])
        evidence.note("the shop's description", item.description)
        evidence.add_all("the shopper's interest", tags, anchor=True)
        return evidence

    # ------------------------------------------------------------------ the one background worker

    def _schedule(self, key: tuple[Any, ...], use: Use, evidence: Evidence, state: UserState,
                  keep: Callable[[Text], None]) -> Future[Text | None]:
        """A generation of ``use`` on the worker (one per key at a time); ``keep`` stores an
        accepted answer. The future is None-valued when the answer was refused or failed."""
        assert self._pool is not None
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and not pending.done():
                return pending
            if len(self._pending) >= MAX_QUEUED:  # the model is behind: templates until it catches up
                skipped: Future[Text | None] = Future()
                skipped.set_result(None)
                self._count(use, "busy")
                return skipped
            future = self._pool.submit(self._generate, use, evidence, state.version, keep)
            if use != "summary":
                self._tried.put(key, _TRIED)
            self._pending[key] = future
        future.add_done_callback(lambda _f: self._pending_done(key, _f))
        return future

    def _pending_done(self, key: tuple[Any, ...], future: Future[Text | None]) -> None:
        with self._lock:
            if self._pending.get(key) is future:
                del self._pending[key]

    def _generate(self, use: Use, evidence: Evidence, version: int, keep: Callable[[Text], None]) -> Text | None:
        assert self.generator is not None
        if not self.breaker.allow():
            self._count(use, "breaker_open")
            return None
        prompt = template(use)
        try:
            answer = collect(self.generator, prompt.messages(evidence), max_tokens=self.settings.max_tokens,
                             temperature=self.settings.temperature, timeout=self.settings.timeout)
        except GenerationTimeout:
            self.breaker.failure()
            self._count(use, "timeout")
            return None
        except GenerationError:
            self.breaker.failure()
            self._count(use, "error")
            return None
        try:
            accepted = check(answer, evidence, max_words=prompt.max_words)
        except Rejected as rejected:
            # The backend answered: it is up, but this answer is unusable. Garbage every time opens
            # the breaker like an outage would (a model that only babbles is as good as down).
            self.breaker.failure()
            with self._lock:
                self.rejections[rejected.reason] = self.rejections.get(rejected.reason, 0) + 1
            self._count(use, "rejected")
            return None
        self.breaker.success()
        text = Text(accepted, "generated", prompt.key, version, self.generator.name, evidence.language)
        keep(text)
        self._count(use, "generated")
        return text

    def _wait(self, future: Future[Text | None], seconds: float) -> Text | None:
        try:
            return future.result(timeout=max(seconds, 0.0))
        except FutureTimeout:
            return None

    def _titles(self, item_ids: Any) -> list[str]:
        items = self.engine.items
        return [items.get(i).title for i in item_ids if i is not None and i in items]

    def _count(self, use: str, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(use, outcome)


# ---------------------------------------------------------------------- templates


def summary_template(state: UserState, evidence: Evidence, engine: Engine) -> str:
    """The summary liverec writes without a model, from the same evidence, in its language."""
    tags = [tag for tag, _ in state.top_tags(3, engine.settings.tag_half_life)]
    recent = [a for a in reversed(state.positive_actions()) if a.item_id and a.item_id in engine.items]
    title = fenced(engine.items.get(recent[0].item_id).title, 60) if recent and recent[0].item_id else None
    query = next((fenced(a.text, 60) for a in reversed(state.recent) if a.type is EventType.SEARCH and a.text), None)
    words = _SUMMARY_WORDS[evidence.language]
    parts = [words["tags"].format(words["join"](tags)) if tags else words["new"]]
    parts += [words[name].format(value) for name, value in (("title", title), ("query", query)) if value]
    return words["sep"].join(parts) + words["end"]


_SUMMARY_WORDS: dict[str, dict[str, Any]] = {
    "en": {"tags": "You seem to be into {} lately", "new": "You have just started browsing",
           "title": "most recently “{}”", "query": "you searched for “{}”", "sep": "; ", "end": ".",
           "join": lambda tags: _listed(tags)},
    "zh": {"tags": "你最近似乎对{}感兴趣", "new": "你刚开始浏览", "title": "最近看过《{}》", "query": "搜索过“{}”",
           "sep": "，", "end": "。", "join": "、".join},
}


def _template_text(text: str, prompt: str, version: int) -> Text:
    """A template's text, labelled with its own language (a ranker's reason is English whoever reads it)."""
    return Text(text, "template", prompt, version, language=detect_language(text))


def explain_template(rec: Recommendation) -> str:
    return rec.reasons[0].text if rec.reasons else "Popular with shoppers right now."


def _listed(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
