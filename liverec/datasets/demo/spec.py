"""The shape of the demo world's hand-written vocabulary.

Each category of the demo catalog is described once, in English and Chinese side by side, so an
English item and a Chinese item of the same subtype say the same things in their own language. That
parallel wording is what lets a bilingual sentence encoder put them next to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

# An (English, Chinese) pair of the same phrase.
Phrase = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Brand:
    """A maker; ``series`` are model-line prefixes ("EOS R" → "EOS R8"), empty for unnumbered goods."""

    en: str
    zh: str
    series: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subtype:
    """A kind of product inside a category, with what it is for and what it can have.

    ``purpose`` is a phrase that completes "it is designed …" ("for day hikes …") in English and
    follows a comma in Chinese ("适合…"); ``features`` are short attribute phrases that end up in
    titles, descriptions, tags and search queries.
    """

    key: str
    en: str
    zh: str
    purpose_en: str
    purpose_zh: str
    price: tuple[float, float]
    features: tuple[Phrase, ...]


@dataclass(frozen=True, slots=True)
class CategorySpec:
    """One category of the demo catalog: its names, makers, subtypes and shared wording."""

    category_id: str
    en: str
    zh: str
    brands: tuple[Brand, ...]
    adjectives: tuple[Phrase, ...]
    closers: tuple[Phrase, ...]
    subtypes: tuple[Subtype, ...]

    @property
    def numbered(self) -> bool:
        """Whether items carry model codes (cameras do, coffee beans do not)."""
        return any(b.series for b in self.brands)
