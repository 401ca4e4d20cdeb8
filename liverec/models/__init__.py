"""Recommendation models: each ``fit(data) -> self``, ``recommend``, ``similar_items``, ``save``/``load``.

Every model registers itself in :mod:`liverec.models.registry` (``MODELS`` maps each model's
``name`` to its class), so snapshots, training and settings find it there; adding a model is one
module plus one ``register_model`` call.
"""

from __future__ import annotations

from liverec.models.als import ALSRecommender
from liverec.models.base import ExposureModel, Model, OnlineModel, Ranked, ScoredItems, TrainingData, as_scored
from liverec.models.clickthrough import ClickThrough
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation, covisit_counts
from liverec.models.popularity import TrendingPopularity
from liverec.models.registry import (
    MODELS,
    build_model,
    check_model_settings,
    model_class,
    register_model,
    snapshot_models,
    unregister_model,
)
from liverec.models.sequential import SequenceModel

# Registration order is the order training fits them and snapshots list them.
register_model(TrendingPopularity)
register_model(CoVisitation)
register_model(ALSRecommender)
register_model(SequenceModel)
register_model(ClickThrough)
register_model(ContentModel, snapshot=False)  # the live text index: the catalog keeps it current

__all__ = [
    "MODELS",
    "ALSRecommender",
    "ClickThrough",
    "CoVisitation",
    "ContentModel",
    "ExposureModel",
    "Model",
    "OnlineModel",
    "Ranked",
    "ScoredItems",
    "SequenceModel",
    "TrainingData",
    "TrendingPopularity",
    "as_scored",
    "build_model",
    "check_model_settings",
    "covisit_counts",
    "model_class",
    "register_model",
    "snapshot_models",
    "unregister_model",
]
