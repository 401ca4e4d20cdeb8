"""Recommendation models: each ``fit(data) -> self``, ``recommend``, ``similar_items``, ``save``/``load``.

``MODELS`` maps each model's ``name`` to its class, so a snapshot can name the models it holds.
"""

from __future__ import annotations

from liverec.models.als import ALSRecommender
from liverec.models.base import Model, ScoredItems, TrainingData
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation, covisit_counts
from liverec.models.popularity import TrendingPopularity

MODELS: dict[str, type] = {cls.name: cls for cls in (TrendingPopularity, CoVisitation, ALSRecommender, ContentModel)}

__all__ = [
    "MODELS",
    "ALSRecommender",
    "CoVisitation",
    "ContentModel",
    "Model",
    "ScoredItems",
    "TrainingData",
    "TrendingPopularity",
    "covisit_counts",
]
