"""Which of the demo's topics an interest tag names: the ground truth for measuring tag quality.

Every category of the demo world is written from a hand-made vocabulary (names, makers, subtypes,
what they are for, their features), and every simulated user really has one to three of those
categories. So a tag shown as a user's interest can be judged: it is *right* when it belongs to the
vocabulary of a category the user has. "Belongs" is read strictly, so the judgement does not
depend on the tag extractor being judged:

* a measurement is not vocabulary: in "10kg load capacity" or "13-inch display" the number, the
  unit it carries and (English) the word a bare number counts ("400 pages") are cut out, and in
  Chinese the number and the character after it ("5000毫安大电池" keeps "安大电池");
* an English tag must be a run of whole words of one phrase ("release plate" is a fragment of
  "quick-release plate"; "inch" of "13-inch"); a Chinese tag, a substring of one phrase;
* a term that belongs to more than :data:`MAX_SHARED` of the 14 categories ("lightweight",
  "professional", "for") is the shop's common wording, not any topic's — except a category's own
  name ("gaming" is in the wording of phones, laptops and headsets too, but names one category).

>>> sorted(tag_topics("hiking boots")), sorted(tag_topics("登山")), sorted(tag_topics("inch"))
(['hiking'], ['hiking'], [])
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from liverec.datasets.demo.catalog import CATEGORIES
from liverec.datasets.demo.spec import CategorySpec
from liverec.datasets.demo.users import DemoUser

__all__ = ["MAX_SHARED", "TagPrecision", "tag_precision", "tag_topics", "user_topics"]

#: A term found in more categories than this names none of them: 3 of 14 lets neighbours share a
#: topic word ("oled display": laptops, smartphones, gaming) but not the shop's common adjectives.
MAX_SHARED = 3

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BREAK = re.compile(r"[,.;:!?()。，、；：！？（）]")
_HAS_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"^[\d.,/%+x-]+$")
# A number in Chinese text, with the Latin unit or the numeral of magnitude glued to it ("5000mAh",
# "2400万"), and the one character after it: the measure word ("米", "毫安", "英寸" start there).
_ZH_MEASURE = re.compile(r"\d[\d.,/%+-]*[a-zA-Z]*[万千百亿]?[\u3400-\u9fff]?")


def _phrases(spec: CategorySpec) -> list[str]:
    out = [spec.category_id.replace("_", " "), spec.en, spec.zh]
    for brand in spec.brands:
        # Titles name the maker with the model line ("Canon EOS R8 …").
        out += [brand.en, brand.zh, *(f"{brand.en} {s.strip()}" for s in brand.series)]
    for pair in (*spec.adjectives, *spec.closers):
        out += list(pair)
    for sub in spec.subtypes:
        out += [sub.en, sub.zh, sub.purpose_en, sub.purpose_zh]
        for pair in sub.features:
            out += list(pair)
    return out


def _word_runs(phrase: str) -> list[tuple[str, ...]]:
    """The phrase's runs of whole lower-cased words, cut at punctuation, numbers and counted words."""
    runs: list[tuple[str, ...]] = []
    for part in _BREAK.split(phrase.lower()):
        run: list[str] = []
        after_number = False
        for word in part.split():
            # A bare number counts the next word ("400 pages"): both are a measurement.
            cut = bool(_HAS_DIGIT.search(word)) or after_number or bool(_CJK.search(word))
            after_number = bool(_NUMBER.match(word))
            if cut:
                if run:
                    runs.append(tuple(run))
                run = []
            else:
                run.append(word)
        if run:
            runs.append(tuple(run))
    return runs


def _zh_chunks(phrase: str) -> list[str]:
    """The phrase's pieces between punctuation and measurements, lower-cased."""
    return [c for c in _BREAK.split(_ZH_MEASURE.sub("，", phrase.lower())) if c.strip()]


@functools.cache
def _vocabulary() -> tuple[tuple[frozenset[tuple[str, ...]], tuple[str, ...]], ...]:
    """Per category: every contiguous word run of its English wording, and its Chinese chunks."""
    out = []
    for spec in CATEGORIES:
        runs: set[tuple[str, ...]] = set()
        chunks: list[str] = []
        for phrase in _phrases(spec):
            for run in _word_runs(phrase):
                runs.update(run[i:j] for i in range(len(run)) for j in range(i + 1, len(run) + 1))
            if _CJK.search(phrase):
                chunks += _zh_chunks(phrase)
        out.append((frozenset(runs), tuple(chunks)))
    return tuple(out)


@functools.lru_cache(maxsize=65_536)
def _categories_of(tag: str) -> tuple[str, ...]:
    """Every category whose wording ``tag`` belongs to, however many."""
    text = " ".join(tag.lower().split())
    if not text:
        return ()
    vocabulary = zip(CATEGORIES, _vocabulary(), strict=True)
    if _CJK.search(text):
        return tuple(spec.category_id for spec, (_, chunks) in vocabulary if any(text in c for c in chunks))
    words = tuple(text.split())
    return tuple(spec.category_id for spec, (runs, _) in vocabulary if words in runs)


def tag_topics(tag: str) -> frozenset[str]:
    """The demo categories whose own vocabulary ``tag`` belongs to; empty for a word of no topic.

    A Chinese tag (one with an ideograph) must be a substring of a category's Chinese wording, an
    English one a run of whole words of its wording; a term of more than :data:`MAX_SHARED`
    categories is common wording and names none.
    """
    name = _names().get(" ".join(tag.lower().split()))
    if name is not None:
        return frozenset((name,))
    found = _categories_of(tag)
    return frozenset(found) if len(found) <= MAX_SHARED else frozenset()


@functools.cache
def _names() -> dict[str, str]:
    return {name.lower(): spec.category_id for spec in CATEGORIES for name in (spec.category_id, spec.en, spec.zh)}


def user_topics(users: Iterable[DemoUser]) -> dict[str, frozenset[str]]:
    """The categories each simulated user really has, by user id: every main category before and
    after a drift (the ``truth`` of :func:`tag_precision`)."""
    return {u.user_id: frozenset((*u.initial_preferences, *u.preferences)) for u in users}


@dataclass(frozen=True, slots=True)
class TagPrecision:
    """How many of the users' top tags name a topic they really have.

    ``precision`` is the mean over users of the share of right tags among their top ``k``;
    ``micro`` pools all tags. Wrong tags are split into ``off_topic`` (a topic the user does not
    have: an exploration, or a tag from another category's wording), ``common`` (shared by more
    than :data:`MAX_SHARED` categories) and ``unknown`` (no category's wording: template words,
    units, fragments); the three are shares of all tags and sum with ``micro`` to 1.
    """

    precision: float
    micro: float
    off_topic: float
    common: float
    unknown: float
    users: int
    tags: int
    worst: tuple[tuple[str, int], ...]  # the most frequent wrong tags that name no topic


def tag_precision(truth: Mapping[str, frozenset[str]], tags: Mapping[str, Sequence[str]], k: int = 5) -> TagPrecision:
    """Judge each user's top ``k`` ``tags`` against ``truth``, their real topics (see :func:`user_topics`).

    Users without tags are left out (nothing was shown to them).
    """
    shares: list[float] = []
    right = off = common = unknown = 0
    wrong: dict[str, int] = {}
    for user_id, shown in tags.items():
        top = list(shown)[:k]
        if not top:
            continue
        good = 0
        for tag in top:
            topics = tag_topics(tag)
            if topics & truth[user_id]:
                good += 1
            elif topics:
                off += 1
            else:
                shared = len(_categories_of(tag)) > MAX_SHARED  # named no topic: common or unknown
                common += shared
                unknown += not shared
                wrong[tag] = wrong.get(tag, 0) + 1
        right += good
        shares.append(good / len(top))
    n = max(1, right + off + common + unknown)
    worst = tuple(sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:15])
    return TagPrecision(
        precision=round(sum(shares) / max(1, len(shares)), 4),
        micro=round(right / n, 4),
        off_topic=round(off / n, 4),
        common=round(common / n, 4),
        unknown=round(unknown / n, 4),
        users=len(shares),
        tags=right + off + common + unknown,
        worst=worst,
    )

