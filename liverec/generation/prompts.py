"""Prompt templates (``prompts/<use>.toml``: a version, an English and a Chinese variant) and the
evidence they are filled with.

Evidence is what the engine already knows and can show: a user's interest tags, the titles of
what they recently did, their searches; for a recommendation, the ranker's reasons. Everything in
it that a shopper or a shop wrote (titles, queries, reviews) is data, never instructions: it is
cleaned (control characters dropped, whitespace collapsed, cut to :data:`FIELD_CHARS`), any
``<``/``>`` is replaced by look-alike angle quotes so no text can close the ``<data>`` fence, and the
system prompt says what the fence means. The same evidence records every name and number the
answer may use, for :mod:`liverec.generation.guard` to check against.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.generation.base import Message
from liverec.text.keywords import Language, detect_language

__all__ = ["Evidence", "Template", "fenced", "template"]

FIELD_CHARS = 160
_SPACE = re.compile(r"\s+")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def fenced(text: str, limit: int = FIELD_CHARS) -> str:
    """``text`` made safe to put inside the data fence: printable, one line, short, no angle brackets."""
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    kept = _SPACE.sub(" ", kept).strip().replace("<", "‹").replace(">", "›")
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"


@dataclass
class Evidence:
    """What a generated text may draw on: data lines for the prompt; ``names`` (titles, queries,
    tags, categories) it may mention; ``anchors``, of which it must mention at least one; and the
    numbers found in the data (any other number in an answer was invented)."""

    language: Language
    lines: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    anchors: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)

    def add(self, label: str, text: str, *, anchor: bool = False) -> None:
        clean = fenced(text)
        if not clean:
            return
        line = f"{label}: “{clean}”"
        if line in self.lines:  # an item viewed three times is one piece of evidence
            return
        self.lines.append(line)
        self.names.add(clean.lower())
        if anchor:
            self.anchors.add(clean.lower())
        self.numbers.update(NUMBER.findall(clean))

    def add_all(self, label: str, texts: Iterable[str], *, anchor: bool = False) -> None:
        for text in texts:
            self.add(label, text, anchor=anchor)

    def note(self, label: str, text: str) -> None:
        """A line the model reads but need not quote (a reason's wording)."""
        clean = fenced(text, 2 * FIELD_CHARS)
        if clean:
            self.lines.append(f"{label}: {clean}")
            self.numbers.update(NUMBER.findall(clean))

    def render(self) -> str:
        return "\n".join(f"- {line}" for line in self.lines)

    @property
    def empty(self) -> bool:
        return not self.lines


def language_of(texts: Iterable[str], default: Language = "en") -> Language:
    """The language most of ``texts`` are in (the user's own words first, by the caller's order)."""
    votes = [detect_language(t) for t in texts if t and t.strip()]
    if not votes:
        return default
    return "zh" if votes.count("zh") > len(votes) / 2 else "en"


@dataclass(frozen=True)
class Template:
    use: str
    version: int
    max_words: int
    variants: dict[str, dict[str, str]]

    @property
    def key(self) -> str:
        return f"{self.use}/v{self.version}"

    def messages(self, evidence: Evidence) -> list[Message]:
        variant = self.variants[evidence.language]
        user = variant["user"].format(evidence=evidence.render())
        return [Message("system", variant["system"]), Message("user", user)]


@cache
def template(use: str) -> Template:
    """The template for ``use`` (``summary``, ``explain``) from the package's ``prompts/`` folder."""
    source = files("liverec.generation") / "prompts" / f"{use}.toml"
    if not source.is_file():
        raise InvalidInputError(f"no prompt template for {use!r}", field="use", value=use)
    data: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    variants = {lang: {"system": data[lang]["system"], "user": data[lang]["user"]} for lang in ("en", "zh")}
    return Template(use, int(data["version"]), int(data["max_words"]), variants)
