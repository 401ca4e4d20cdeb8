"""The demo catalog: bilingual items generated from the hand-written category vocabulary.

Every item is written in one language (about 60% English, 40% Chinese) from the same parallel
vocabulary, so "Nikon Z50 Mirrorless Camera, 24MP Sensor, 4K Video" and
"尼康 Z50 无反相机 2400万像素传感器 4K视频" describe the same kind of thing. Besides the public
:class:`~liverec.core.types.Item`, generation keeps hidden facts per item (subtype, brand, price
level, quality, base popularity) in :class:`CatalogFacts`; the user simulation reads them to decide
what people look at, buy and how they rate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from liverec.core.types import Item
from liverec.datasets.demo.spec import Brand, CategorySpec, Phrase, Subtype
from liverec.datasets.demo.vocab_home import BOOKS, COFFEE, COOKING, SKINCARE, TOYS
from liverec.datasets.demo.vocab_outdoor import FITNESS, GARDENING, HIKING, RUNNING
from liverec.datasets.demo.vocab_tech import CAMERAS, GAMING, HEADPHONES, LAPTOPS, SMARTPHONES

CATEGORIES: tuple[CategorySpec, ...] = (
    CAMERAS,
    HIKING,
    LAPTOPS,
    HEADPHONES,
    SMARTPHONES,
    RUNNING,
    COOKING,
    COFFEE,
    BOOKS,
    GAMING,
    GARDENING,
    FITNESS,
    SKINCARE,
    TOYS,
)
CATEGORY_IDS: tuple[str, ...] = tuple(c.category_id for c in CATEGORIES)
CATEGORY_INDEX: dict[str, int] = {c: i for i, c in enumerate(CATEGORY_IDS)}

# A fixed "now" (2026-01-01T00:00:00Z) for a world whose timestamps must not move with the clock:
# tests and benchmarks pass it as ``now``; the demo itself ends its world at the wall clock.
REFERENCE_TIME: float = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
CATALOG_DAYS = 90
ENGLISH_SHARE = 0.6
UNAVAILABLE_SHARE = 0.02
ZIPF_EXPONENT = 0.9
LANGUAGES = ("en", "zh")


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """Hidden per-item facts, aligned with the item list (row ``k`` is ``items[k]``).

    ``features`` is a bit mask over the item's subtype features; ``price_level`` is where the price
    sits in its subtype's range (0 cheapest, 1 dearest); ``quality`` drives ratings and reviews;
    ``popularity`` is a Zipf weight, so a few items draw most of the traffic.
    """

    category: np.ndarray  # int, index into CATEGORIES
    subtype: np.ndarray  # int, index into the category's subtypes
    brand: np.ndarray  # int, index into the category's brands
    features: np.ndarray  # int bit mask
    language: np.ndarray  # int, 0 = en, 1 = zh
    price_level: np.ndarray  # float in [0, 1]
    quality: np.ndarray  # float in [0, 1]
    popularity: np.ndarray  # float > 0
    created_at: np.ndarray  # float seconds
    available: np.ndarray  # bool


def _title_case(phrase: str) -> str:
    """Capitalise plain lowercase words ("waterproof" → "Waterproof"), keep codes ("24MP", "f/1.8")."""
    words = []
    for word in phrase.split(" "):
        parts = word.split("-")
        if all(p.isalpha() and p.islower() for p in parts):
            word = "-".join(p.capitalize() for p in parts)
        words.append(word)
    return " ".join(words)


def lower_subtype(name: str) -> str:
    """A subtype name as it reads inside a sentence: "GPS Running Watch" → "GPS running watch"."""
    keep = {"Dutch"}
    return " ".join(w if (w.isupper() and len(w) > 1) or w in keep else w.lower() for w in name.split(" "))


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join_en(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _join_zh(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "、".join(parts[:-1]) + "和" + parts[-1]


def model_code(brand: Brand, rng: np.random.Generator) -> str:
    """A plausible model name in one of the brand's series ("EOS R" → "EOS R8"), or "" for unnumbered goods."""
    if not brand.series:
        return ""
    series = brand.series[int(rng.integers(len(brand.series)))]
    if series.endswith(" "):
        number = int(rng.integers(2, 40))
    elif len(series) <= 2 and rng.random() < 0.3:
        number = int(rng.integers(100, 1000))
    else:
        number = int(rng.integers(2, 100))
    suffix = ("", "", "", " II", " Pro", " Plus")[int(rng.integers(6))]
    if suffix and suffix.strip() in series:
        suffix = ""
    return f"{series}{number}{suffix}"


def _describe_en(
    sub: Subtype, brand: Brand, model: str, adj: str, feats: list[str], closer: str | None, pick: int
) -> tuple[str, str]:
    plural = sub.en.endswith("s")
    sub_l = lower_subtype(sub.en)
    title_feats = ", ".join(_title_case(f) for f in feats[:2])
    if model:
        title = f"{brand.en} {model} {sub.en}, {title_feats}"
    else:
        title = f"{brand.en} {_title_case(adj)} {sub.en}, {title_feats}"
    if pick == 0 and model:
        verb = "are" if plural else f"is {_article(adj)}"
        first = f"The {brand.en} {model} {verb} {adj} {sub_l} {sub.purpose_en}."
    elif pick == 0:
        first = f"{'These' if plural else 'This'} {adj} {sub_l} from {brand.en} {'are' if plural else 'is'} designed "
        first += f"{sub.purpose_en}."
    else:
        lead = adj.capitalize() if plural else f"{_article(adj).capitalize()} {adj}"
        first = f"{lead} {sub_l} by {brand.en}, made {sub.purpose_en}."
    pronoun, verb = ("They", "feature") if plural else ("It", "features")
    second = (
        f"{pronoun} {verb} {_join_en(feats)}.",
        f"Highlights include {_join_en(feats)}.",
        f"{pronoun} {'come' if plural else 'comes'} with {_join_en(feats)}.",
    )[pick % 3]
    sentences = [first, second] + ([closer] if closer else [])
    return title, " ".join(sentences)


def _describe_zh(
    sub: Subtype, brand: Brand, model: str, adj: str, feats: list[str], closer: str | None, pick: int
) -> tuple[str, str]:
    if model:
        title = f"{brand.zh} {model} {sub.zh} {' '.join(feats[:2])}"
        first = f"{brand.zh} {model}是一款{adj}的{sub.zh}，{sub.purpose_zh}。"
    else:
        title = f"{brand.zh} {adj}{sub.zh} {' '.join(feats[:2])}"
        first = f"这款来自{brand.zh}的{adj}{sub.zh}，{sub.purpose_zh}。"
    if pick == 1:
        first = f"{brand.zh}出品的{sub.zh}{(' ' + model) if model else ''}，{sub.purpose_zh}。"
    second = (
        f"主要特点：{'、'.join(feats)}。",
        f"产品特点包括{_join_zh(feats)}。",
        f"亮点是{_join_zh(feats)}。",
    )[pick % 3]
    return title, first + second + (closer or "")


def compose_item(
    item_id: str,
    category: CategorySpec,
    language: str,
    rng: np.random.Generator,
    *,
    created_at: float,
    available: bool = True,
) -> tuple[Item, dict[str, float | int]]:
    """Write one item of ``category`` in ``language`` and return it with its hidden facts.

    The facts are ``subtype``, ``brand``, ``features`` (bit mask) and ``price_level``; everything
    random is drawn from ``rng``, so the same generator state gives the same item.
    """
    sub_index = int(rng.integers(len(category.subtypes)))
    sub = category.subtypes[sub_index]
    brand_index = int(rng.integers(len(category.brands)))
    brand = category.brands[brand_index]
    model = model_code(brand, rng)
    adjective: Phrase = category.adjectives[int(rng.integers(len(category.adjectives)))]
    n_feats = 3 if rng.random() < 0.7 else 2
    chosen = [int(k) for k in rng.choice(len(sub.features), size=n_feats, replace=False)]
    feats: list[Phrase] = [sub.features[k] for k in chosen]
    closer: Phrase | None = category.closers[int(rng.integers(len(category.closers)))] if rng.random() < 0.7 else None
    pick = int(rng.integers(3))
    price_level = float(rng.beta(1.3, 1.3))
    low, high = sub.price
    price = round(max(1.0, round(low * (high / low) ** price_level)) - 0.01, 2)
    if language == "en":
        title, description = _describe_en(
            sub, brand, model, adjective[0], [f[0] for f in feats], closer[0] if closer else None, pick
        )
        tags = [sub.en.lower(), *(f[0].lower() for f in feats)]
    else:
        title, description = _describe_zh(
            sub, brand, model, adjective[1], [f[1] for f in feats], closer[1] if closer else None, pick
        )
        tags = [sub.zh, *(f[1] for f in feats)]
    attributes: dict[str, object] = {
        "brand": brand.en,
        "subtype": sub.key,
        "price": price,
        "currency": "USD",
        "features": [f[0] for f in feats],
    }
    if model:
        attributes["model"] = model
    item = Item(
        item_id=item_id,
        title=title,
        description=description,
        categories=(category.category_id,),
        tags=tuple(dict.fromkeys(tags)),
        language=language,
        attributes=attributes,
        available=available,
        created_at=created_at,
    )
    mask = 0
    for k in chosen:
        mask |= 1 << k
    facts: dict[str, float | int] = {
        "subtype": sub_index,
        "brand": brand_index,
        "features": mask,
        "price_level": price_level,
    }
    return item, facts


def generate_catalog(n_items: int, rng: np.random.Generator, now: float) -> tuple[list[Item], CatalogFacts]:
    """Generate ``n_items`` items spread evenly over :data:`CATEGORIES`, with their hidden facts.

    Items get ids ``i00001``, ``i00002`` …, creation times over the :data:`CATALOG_DAYS` days before
    ``now`` (whole seconds), and a Zipf base popularity from a random rank, so traffic has a long tail.
    """
    n_cat = len(CATEGORIES)
    category = np.repeat(np.arange(n_cat), -(-n_items // n_cat))[:n_items]
    rng.shuffle(category)
    language = (rng.random(n_items) >= ENGLISH_SHARE).astype(np.int64)
    # now + a whole (negative) offset: exact in floats, so another ``now`` only shifts the times.
    created = now + np.floor(-rng.random(n_items) * CATALOG_DAYS * DAY)
    available = rng.random(n_items) >= UNAVAILABLE_SHARE
    quality = rng.beta(4.0, 1.6, size=n_items)
    rank = rng.permutation(n_items)
    popularity = 1.0 / (rank + 1.0) ** ZIPF_EXPONENT
    items: list[Item] = []
    subtype = np.zeros(n_items, dtype=np.int64)
    brand = np.zeros(n_items, dtype=np.int64)
    features = np.zeros(n_items, dtype=np.int64)
    price_level = np.zeros(n_items)
    width = max(5, len(str(n_items)))
    for k in range(n_items):
        item, facts = compose_item(
            f"i{k + 1:0{width}d}",
            CATEGORIES[int(category[k])],
            LANGUAGES[int(language[k])],
            rng,
            created_at=float(created[k]),
            available=bool(available[k]),
        )
        items.append(item)
        subtype[k] = facts["subtype"]
        brand[k] = facts["brand"]
        features[k] = facts["features"]
        price_level[k] = facts["price_level"]
    facts_table = CatalogFacts(
        category=category.astype(np.int64),
        subtype=subtype,
        brand=brand,
        features=features,
        language=language,
        price_level=price_level,
        quality=quality,
        popularity=popularity,
        created_at=created,
        available=available,
    )
    return items, facts_table
