"""Item enrichment: the language of an item and the tags that read as interests.

An item's own tags are kept and keywords extracted from its text (yake for English, jieba for
Chinese) are added; of those, the tags that read as interests ("hiking", "轻薄笔记本") become
the item's interest tags, while specifications, units and colours ("24mp sensor", "10kg",
"green") stay item facts.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from liverec.core.types import Item
from liverec.text.keywords import Language, detect_language, extract_keywords
from liverec.text.lexicon import is_noise

__all__ = [
    "ITEM_KEYWORDS", "PARALLEL_MIN", "enrich", "enrich_many", "interest_keywords", "interest_tags", "is_spec",
    "item_language", "query_tags",
]

ITEM_KEYWORDS = 6  # keywords kept per item: more read as noise in a user's interest tags
#: Items a batch needs before :func:`enrich_many` spreads it over processes: below it, handing the
#: items to worker processes costs more than it saves.
PARALLEL_MIN = 1_000


def item_language(item: Item) -> Language:
    """The item's language as given, else detected from its text."""
    return "zh" if (item.language or detect_language(item.text)) == "zh" else "en"


def enrich(item: Item) -> Item:
    """The item with its language filled in and extracted keywords added to its tags."""
    language = item_language(item)
    keywords = interest_keywords(extract_keywords(item.text, language, k=2 * ITEM_KEYWORDS))
    return dataclasses.replace(item, language=language, tags=tuple(dict.fromkeys([*item.tags, *keywords])))


def enrich_many(items: Sequence[Item], workers: int = 0) -> list[Item]:
    """:func:`enrich` of each item, in order; a batch of at least :data:`PARALLEL_MIN` items is
    spread over ``workers`` processes (0: one per core; 1: this process only).

    Keyword extraction is pure Python (yake: ~3-6 ms an English text), so threads would share one
    core: a catalog import of a million items takes hours in one process. joblib's loky workers are
    started once and reused by later batches (they exit when idle), and unlike multiprocessing's
    spawn they never re-run the caller's script, so a library user needs no ``__main__`` guard.
    """
    from joblib import Parallel, cpu_count, delayed

    count = workers or cpu_count()  # joblib's count honours affinity and cgroup quotas
    if count <= 1 or len(items) < PARALLEL_MIN:
        return [enrich(i) for i in items]
    # Chunks of a few hundred items: the per-task round trip is paid per chunk, not per item.
    chunk = max(64, min(500, len(items) // (4 * count)))
    return list(Parallel(n_jobs=count, backend="loky", batch_size=chunk)(delayed(enrich)(i) for i in items))


def interest_tags(item: Item) -> tuple[str, ...]:
    """Categories and tags that read as interests; specs ("24mp sensor") stay item facts."""
    return tuple(dict.fromkeys([*item.categories, *(t for t in item.tags if not is_spec(t))]))


def interest_keywords(keywords: Sequence[str], limit: int = ITEM_KEYWORDS) -> list[str]:
    """Keywords that read well as interest tags: no model numbers or specs ("10kg load capacity"),
    and no phrase that only repeats a word already kept ("load" then "load capacity")."""
    kept: list[str] = []
    words: set[str] = set()
    for kw in keywords:
        parts = set(kw.split())
        if is_spec(kw) or (kw.isascii() and len(kw) < 3) or parts & words:
            continue
        kept.append(kw)
        words |= parts
        if len(kept) == limit:
            break
    return kept


def is_spec(tag: str) -> bool:
    """A model number, specification, unit or colour ("24mp sensor", "10kg", "inch", "green"): an
    item fact, not an interest; nor is a filler word an item's own tags may carry ("highlights")."""
    return any(ch.isdigit() for ch in tag) or is_noise(tag)


@functools.lru_cache(maxsize=65_536)
def query_tags(text: str) -> tuple[str, ...]:
    """The interest tags of a search query."""
    # Queries repeat a lot (and every state rebuild replays them): extract once per text.
    return tuple(extract_keywords(text, k=3))
