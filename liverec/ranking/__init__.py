"""Ranking: registered recalls → features → a scorer → filters → MMR → explanations.

Recalls (:mod:`~liverec.ranking.recalls`) and feature blocks (:mod:`~liverec.ranking.features`)
register by name; scorers (:mod:`~liverec.ranking.scoring`) by kind, linear fusion
(:mod:`~liverec.ranking.fusion`) first. :class:`Ranker` serves one snapshot over the live catalog.
"""

from __future__ import annotations

from liverec.ranking import context_features as _context_features  # noqa: F401  (registers its blocks)
from liverec.ranking.diversity import intra_list_similarity, mmr
from liverec.ranking.explain import Explainer
from liverec.ranking.features import FEATURES, FeatureBlock, FeatureInput, Features, build_features, register_features
from liverec.ranking.filters import Filters
from liverec.ranking.fusion import WEIGHT_GRID, LinearFusion
from liverec.ranking.gbdt import GBDTRanker
from liverec.ranking.lookup import search, similar_items
from liverec.ranking.ranker import Ranker, Serving
from liverec.ranking.reasons import ReasonContext
from liverec.ranking.recalls import (
    RECALLS,
    Recall,
    RecallContext,
    recall_names,
    register_recall,
    unregister_recall,
)
from liverec.ranking.scoring import SCORERS, Case, Scorer, register_scorer, scorer_from_config
from liverec.ranking.snapshot import ModelSnapshot, current_version, load_snapshot, write_snapshot
from liverec.ranking.verdict import Verdict, verdict

__all__ = [
    "FEATURES",
    "RECALLS",
    "SCORERS",
    "WEIGHT_GRID",
    "Case",
    "Explainer",
    "FeatureBlock",
    "FeatureInput",
    "GBDTRanker",
    "Features",
    "Filters",
    "LinearFusion",
    "ModelSnapshot",
    "Ranker",
    "ReasonContext",
    "Recall",
    "RecallContext",
    "Scorer",
    "Serving",
    "Verdict",
    "build_features",
    "current_version",
    "intra_list_similarity",
    "load_snapshot",
    "mmr",
    "recall_names",
    "register_features",
    "register_recall",
    "register_scorer",
    "scorer_from_config",
    "search",
    "similar_items",
    "unregister_recall",
    "verdict",
    "write_snapshot",
]
