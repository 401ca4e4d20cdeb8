"""Keywords of item and query text, which become a user's interest tags.

English goes through yake (unsupervised, statistical, no model), Chinese through jieba's TF-IDF
over its bundled IDF table. The language is detected per text from its share of CJK ideographs;
English-majority text with Chinese phrases in it has each part sent to its own extractor.

Keywords are meant to read as interests, so units, colours and filler words are dropped (see
:mod:`liverec.text.lexicon`), and so is a keyword the text only uses as part of a measurement or
of a hyphenated word: "inch" of "13-inch", "load capacity" of "10kg load capacity", "毫安" of
"5000毫安", "gore" of "GORE-TEX".

>>> detect_language("这款轻薄笔记本电脑续航很长")
'zh'
>>> detect_language("Nike running shoes")
'en'
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Literal

from liverec.core.errors import InvalidInputError
from liverec.text.lexicon import EN_STOPWORDS, is_noise, measured

__all__ = ["KeywordExtractor", "Language", "detect_language", "extract_keywords"]

Language = Literal["en", "zh"]

#: Share of CJK ideographs among letters from which a text counts as Chinese. A Chinese
#: character carries about as much as an English word of five letters, so 0.3 is already a
#: Chinese-majority text ("Nike 防水登山鞋" → 5/9).
ZH_THRESHOLD = 0.3

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_RUN = re.compile(f"[{_CJK}]+(?:[\\s·、]*[{_CJK}]+)*")
_NUMBER = re.compile(r"^[+-]?[\d.,:/%-]+$")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")  # what a Latin keyword may not run on into
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>«»“”‘’-_/\\|*#&+=~"


def detect_language(text: str) -> Language:
    """``"zh"`` when at least :data:`ZH_THRESHOLD` of the letters are CJK ideographs, else ``"en"``.

    Text without letters (empty, digits, punctuation) is ``"en"``.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
    letters = sum(1 for ch in text if ch.isalpha())
    if letters == 0:
        return "en"
    cjk = len(_CJK_CHAR.findall(text))
    return "zh" if cjk / letters >= ZH_THRESHOLD else "en"


def _clean(keyword: str) -> str | None:
    """Lower-cased keyword, or None if it is a number, a single character or contains one."""
    words = [word.strip(_EDGE_PUNCT) for word in keyword.lower().split()]
    words = [word for word in words if word]
    if not words:
        return None
    for word in words:
        if len(word) < 2 or _NUMBER.match(word):
            return None
    return " ".join(words)


class KeywordExtractor:
    """Extracts up to ``k`` keywords per text, most important first, lower-cased and deduplicated.

    The underlying extractors are created on first use (jieba's dictionary takes about a
    second to load) and shared by every call; calls are thread-safe.

    Parameters
    ----------
    k
        Keywords per text.
    max_ngram
        Longest English keyword in words (yake's ``n``).
    """

    def __init__(self, k: int = 8, max_ngram: int = 2) -> None:
        self.k = _check_k(k)
        if isinstance(max_ngram, bool) or not isinstance(max_ngram, int) or max_ngram < 1:
            raise InvalidInputError(
                f"max_ngram must be a positive integer, got {max_ngram!r}", field="max_ngram", value=max_ngram
            )
        self.max_ngram = max_ngram
        self._yake: dict[int, Any] = {}
        self._jieba_ready = False
        self._lock = threading.Lock()

    def extract(self, text: str, language: Language | None = None, k: int | None = None) -> list[str]:
        """The keywords of ``text``.

        Parameters
        ----------
        text
            Any text; empty text has no keywords.
        language
            ``"en"`` or ``"zh"`` to force an extractor; ``None`` detects it (and splits
            English-majority text that contains Chinese phrases).
        k
            Overrides the extractor's ``k`` for this call.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
        limit = self.k if k is None else _check_k(k)
        if language is not None and language not in ("en", "zh"):
            raise InvalidInputError(f"language {language!r} is not one of en, zh", field="language", value=language)
        if not text.strip():
            return []
        if language == "zh":
            return self._chinese(text, limit)
        if language == "en":
            return self._english(text, limit)
        if detect_language(text) == "zh":
            # jieba keeps Latin-script words whole, so one pass covers "Nike 防水登山鞋".
            return self._chinese(text, limit)
        chinese_runs = _CJK_RUN.findall(text)
        if not chinese_runs:
            return self._english(text, limit)
        english = self._english(_CJK_RUN.sub(" , ", text), limit)
        chinese = self._chinese("，".join(chinese_runs), limit)
        return _interleave(english, chinese, limit)

    def _english(self, text: str, k: int) -> list[str]:
        # Ask yake for more than k: numbers and one-letter keywords are dropped afterwards.
        top = max(4 * k, 32)
        with self._lock:
            extractor = self._yake.get(top)
            if extractor is None:
                import yake

                # yake keeps stopwords off a keyword's ends: "highlights include" is never a candidate.
                stopwords = yake.KeywordExtractor(lan="en").stopword_set | EN_STOPWORDS
                extractor = yake.KeywordExtractor(
                    lan="en", n=self.max_ngram, dedup_lim=0.9, top=top, stopwords=stopwords
                )
                self._yake[top] = extractor
            ranked = extractor.extract_keywords(text)
        return _select((keyword for keyword, _score in ranked), text, k)

    def _chinese(self, text: str, k: int) -> list[str]:
        import jieba
        import jieba.analyse

        if not self._jieba_ready:
            with self._lock:
                if not self._jieba_ready:
                    jieba.setLogLevel(logging.WARNING)
                    jieba.initialize()
                    self._jieba_ready = True
        tags = jieba.analyse.extract_tags(text, topK=max(3 * k, 20))
        return _select(tags, text, k)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}", field="k", value=k)
    return k


def _select(keywords: Any, text: str, k: int) -> list[str]:
    """The first ``k`` distinct clean keywords that are no unit, colour or filler and that ``text``
    uses on their own at least once (not only as part of a measurement or a hyphenated word)."""
    out: list[str] = []
    seen: set[str] = set()
    # Keywords come back lower-cased with single spaces between words: match them against the
    # text in the same form, by plain substring search (a regex per keyword cost more than yake).
    lowered = " ".join(text.lower().split())
    for raw in keywords:
        keyword = _clean(str(raw))
        if keyword is None or keyword in seen or is_noise(keyword) or not _stands_alone(keyword, lowered):
            continue
        seen.add(keyword)
        out.append(keyword)
        if len(out) == k:
            break
    return out


def _stands_alone(keyword: str, text: str) -> bool:
    """Whether ``text`` (lower-cased, single-spaced) has ``keyword`` once on its own: not inside a
    measurement nor what one measures ("13-inch", "10kg load capacity", "5000毫安") and not part of
    a longer word ("gore" of "gore-tex"). A keyword the text does not contain gets the benefit of
    the doubt (yake rewrote the text)."""
    # Ideographs have no word boundaries; a Latin word may not run on into Latin letters, digits
    # or "-" (but may touch an ideograph: "vibram" of "vibram大底").
    bounded = _CJK_CHAR.search(keyword) is None
    end = len(keyword)
    at = text.find(keyword)
    if at < 0:
        return True
    while at >= 0:
        after = at + end
        whole = not bounded or (
            (at == 0 or text[at - 1] not in _WORD_CHARS) and (after == len(text) or text[after] not in _WORD_CHARS)
        )
        if whole and not measured(text, at):
            return True
        at = text.find(keyword, at + 1)
    return False


def _interleave(first: list[str], second: list[str], k: int) -> list[str]:
    out: list[str] = []
    for i in range(max(len(first), len(second))):
        for source in (first, second):
            if i < len(source) and source[i] not in out:
                out.append(source[i])
    return out[:k]


_default_extractor: KeywordExtractor | None = None
_default_lock = threading.Lock()


def _default() -> KeywordExtractor:
    global _default_extractor
    if _default_extractor is None:
        with _default_lock:
            if _default_extractor is None:
                _default_extractor = KeywordExtractor()
    return _default_extractor


def extract_keywords(text: str, language: Language | None = None, k: int = 8) -> list[str]:
    """Up to ``k`` keywords of ``text``, most important first (see :class:`KeywordExtractor`).

    >>> extract_keywords("Waterproof hiking boots with Vibram soles", k=3)
    ['vibram soles', 'waterproof hiking', 'hiking boots']
    """
    return _default().extract(text, language=language, k=k)
