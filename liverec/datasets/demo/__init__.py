"""A generated, deterministic, bilingual demo shop: items, users with hidden tastes, and their events.

The demo world is what the demo, the tutorials and the default tests run on, because the real data
sets on this machine may not be redistributed. It has 2,400 items over 14 categories (cameras,
hiking, laptops, headphones, …), written about 60% in English and 40% in Chinese from parallel
hand-written vocabulary, so a bilingual sentence encoder puts "轻薄笔记本电脑" next to
"Ultralight Laptop". 400 users with sparse category tastes — 30% of whom switch one interest
half-way — search, view, click, buy, rate, review and dismiss over the 60 days before ``now``
(by default the wall clock, so the demo's recent actions are recent). One ``seed`` fixes
everything else; ``now`` only shifts every timestamp, and :data:`REFERENCE_TIME` is the fixed
``now`` for timestamps that must not move.

>>> world = build_demo_world(seed=3, n_items=280, n_users=10)
>>> sorted({item.language for item in world.items})
['en', 'zh']
>>> world.category_of(world.items_in("cameras")[0].item_id)
'cameras'
"""

from __future__ import annotations

from liverec.datasets.demo.catalog import CATEGORIES, CATEGORY_IDS, REFERENCE_TIME
from liverec.datasets.demo.text import REVIEW_TEMPLATES, review_sentiment
from liverec.datasets.demo.users import DemoUser, Drift
from liverec.datasets.demo.world import DemoWorld, build_demo_world

__all__ = [
    "CATEGORIES",
    "CATEGORY_IDS",
    "REFERENCE_TIME",
    "REVIEW_TEMPLATES",
    "DemoUser",
    "DemoWorld",
    "Drift",
    "build_demo_world",
    "review_sentiment",
]
