"""What stands between a language model and a user: checks on every answer, and a circuit breaker.

:func:`check` accepts an answer only if it is short, in the evidence's language, plain text, and
invents nothing the guard can see: every quoted span must come from the evidence, every number must
appear in it, every capitalised name inside an English sentence must occur in it, and the answer
must mention at least one of the evidence's anchors (a tag, a title or a query it was given).
Anything else is :class:`Rejected` with a short reason, and the caller uses its template.

:class:`Breaker` stops calling a backend that keeps failing (down, slow, or answering garbage):
after ``failures`` failures in a row it opens for ``cooldown`` seconds, then lets one trial call
through; a success closes it, a failure opens it again. While it is open, no request waits.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable
from typing import Literal

from liverec.generation.prompts import NUMBER, Evidence
from liverec.text.keywords import detect_language

__all__ = ["Breaker", "Rejected", "check"]

_URL = re.compile(r"https?://|www\.|\]\(|`|[<>‹›]|&[a-z]+;|\{|\}", re.IGNORECASE)
_QUOTED = re.compile(r"[\"“”«»「『《]([^\"“”«»」』》]{2,})[\"“”«»」』》]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"“(]\s*)$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LEAD = re.compile(r"^\s*(?:answer|summary|explanation|sentence|回答|概括|解释)\s*[:：]\s*", re.IGNORECASE)
_COMMON = {"I", "You", "Your", "It", "This", "They", "We", "The", "A", "An", "And", "Or", "If", "OK"}


class Rejected(ValueError):
    """An answer the guard refused; ``reason`` is one of a few short codes (counted in metrics)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def clean(answer: str) -> str:
    """The answer without what models wrap around it: a leading label, surrounding quotes, spaces."""
    text = " ".join(answer.split())
    text = _LEAD.sub("", text).strip()
    if len(text) >= 2 and text[0] in "\"“'" and text[-1] in "\"”'" and text.count(text[0]) <= 2:
        text = text[1:-1].strip()
    return text


def words(text: str) -> int:
    """Length in English words; a Chinese character counts as half a word (two make a word)."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + (cjk + 1) // 2


def check(answer: str, evidence: Evidence, *, max_words: int) -> str:
    """The cleaned answer if it passes every check, else :class:`Rejected`."""
    text = clean(answer)
    if not text:
        raise Rejected("empty")
    if words(text) > max_words:
        raise Rejected("too_long", f"{words(text)} words, at most {max_words}")
    if detect_language(text) != evidence.language:
        raise Rejected("wrong_language", f"not {evidence.language}")
    if any(unicodedata.category(ch)[0] == "C" for ch in text) or "\ufffd" in text:
        raise Rejected("garbage", "control characters or broken encoding")
    if _URL.search(text):
        raise Rejected("markup", "links, markup or code are not allowed")
    lowered = text.lower()
    haystack = " ".join(evidence.names) + " " + " ".join(evidence.lines).lower()
    for quoted in _QUOTED.findall(text):
        if quoted.strip().lower() not in haystack:
            raise Rejected("unknown_name", quoted.strip())
    for number in NUMBER.findall(text):
        if number not in evidence.numbers:
            raise Rejected("invented_number", number)
    if evidence.language == "en":
        for match in _CAPITALISED.finditer(text):
            name = match.group()
            if _SENTENCE_START.search(text[: match.start()]) or name in _COMMON:
                continue  # a sentence's first word is capitalised whatever it is
            if name.lower() not in haystack:
                raise Rejected("unknown_name", name)
    if evidence.anchors and not any(_mentions(lowered, anchor) for anchor in evidence.anchors):
        raise Rejected("off_topic", "mentions none of the evidence")
    return text


def _mentions(text: str, anchor: str) -> bool:
    """Whether ``text`` names ``anchor``: whole, or by one of its distinctive words (a title is
    often shortened: "the trail runners" for "Nike Pegasus Trail Runners")."""
    if anchor in text:
        return True
    cjk = "".join(_CJK.findall(anchor))
    if len(cjk) >= 2 and any(cjk[i:i + 2] in text for i in range(len(cjk) - 1)):
        return True
    return any(len(w) >= 4 and re.search(rf"\b{re.escape(w)}", text) for w in _WORD.findall(anchor))


State = Literal["closed", "open", "half_open"]


class Breaker:
    """A circuit breaker around one backend (thread-safe; ``clock`` is injectable for tests)."""

    def __init__(self, failures: int = 3, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = max(1, failures)
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        """Whether a call may go to the backend now (in half-open state, only one trial at a time)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial:
                self._trial = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failed, self._opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failed += 1
            self._trial = False
            if self._opened_at is not None or self._failed >= self.failures:
                self._opened_at = self._clock()
