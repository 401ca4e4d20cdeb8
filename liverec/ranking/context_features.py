"""Feature blocks that read the user and the item, for a learned ranker (registered on import).

* ``sequence`` — the sequence model's score of the item after the user's recent actions;
* ``item`` — the item's popularity now (log of its decayed count), its age in days, its trend (the
  share of its popularity ever that is recent), and its recent click-through rate from what users
  were shown (:class:`~liverec.models.clickthrough.ClickThrough`) with the impressions behind it;
* ``affinity`` — how the item fits this user: the share of their interest-tag weight it carries,
  the share of their recent items in its category, the cosine of its text with their decayed
  interest, their session and their last item, the best cosine with one of their interests and
  that interest's rank by strength, and how often it was shown to them without an action.

Each is computed only for the rows a scorer reads: the few hundred a second stage re-ranks on the
request path, every candidate of a validation case at training. What they read about items comes
from the catalog's :class:`~liverec.realtime.catalog.ItemArrays` as gathers, not a lookup per row;
most of their time is the text vectors' cosines.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from liverec.core.types import Reason
from liverec.ranking.explain import register_reason
from liverec.ranking.features import FeatureBlock, FeatureInput, register_features
from liverec.ranking.reasons import ReasonContext
from liverec.ranking.recalls import sequence_vector
from liverec.realtime.state import interest_directions

__all__ = ["RECENT_ITEMS"]

RECENT_ITEMS = 20  # recent positive items whose categories describe what the user is into now
DAY = 86400.0


def _sequence(inp: FeatureInput) -> FeatureBlock:
    values = np.zeros((len(inp.item_ids), 1))
    model = inp.models.get("sequential")
    if model is not None and inp.context is not None:
        vector = sequence_vector(inp.context)
        if vector is not None:
            rows = _rows(model.item_index_, inp.item_ids)
            known = rows >= 0
            values[known, 0] = model.table_[rows[known]] @ vector
    return FeatureBlock("sequence", ("score",), ("sequential",), values)


def _rows(index: Mapping[str, int], item_ids: Sequence[str]) -> np.ndarray:
    """Each item's row in a model's ``index``, -1 for an item the model does not know."""
    return np.fromiter(map(index.get, item_ids, itertools.repeat(-1)), dtype=np.int64, count=len(item_ids))


def _item(inp: FeatureInput) -> FeatureBlock:
    n = len(inp.item_ids)
    values = np.zeros((n, len(_ITEM)))
    trending = inp.models.get("trending")
    if trending is not None:
        recent = trending.score_of(inp.item_ids)
        values[:, 0] = np.log1p(recent)
        covisit = inp.models.get("covisit")
        if covisit is not None:
            # the trend: the share of the item's popularity ever that is recent (1: all of it new)
            rows = _rows(covisit.item_index_, inp.item_ids)
            total = np.where(rows >= 0, covisit.item_weight_[np.maximum(rows, 0)], 0.0)
            values[:, 2] = np.where(total > 0, np.minimum(1.0, recent / np.where(total > 0, total, 1.0)), 0.0)
    clickthrough = inp.models.get("ctr")
    if clickthrough is not None:
        rate, impressions = clickthrough.rates(inp.item_ids)
        values[:, 3] = rate
        values[:, 4] = np.log1p(impressions)
    items = inp.context.items if inp.context is not None else None
    values[:, 1] = -1.0  # unknown age
    if items is not None:
        arrays = items.arrays()
        created = arrays.created_at[arrays.rows_of(inp.item_ids)]
        dated = created > 0
        values[dated, 1] = np.log1p(np.maximum(0.0, inp.now - created[dated]) / DAY)
    return FeatureBlock("item", _ITEM, ("trending", "fresh", "trending", "feedback", "feedback"), values)


_ITEM = ("popularity", "age_days", "trend", "ctr", "impressions")


def _affinity(inp: FeatureInput) -> FeatureBlock:
    n = len(inp.item_ids)
    values = np.zeros((n, len(_AFFINITY)))
    ctx = inp.context
    state = inp.state
    if ctx is None or state is None or n == 0:
        return FeatureBlock("affinity", _AFFINITY, _AFFINITY_SOURCES, values)
    items = ctx.items
    positive_tags = {t: w for t, w in state.tags.items() if w > 0}
    total = sum(positive_tags.values())
    recent = state.recent_items()[-RECENT_ITEMS:]  # not an item the user rejected since (issue 13)
    if items is not None:
        # Gathers from the catalog's arrays, as this runs for every re-ranked row of every request.
        arrays = items.arrays()
        rows = arrays.rows_of(inp.item_ids)
        if total > 0:
            pad = len(arrays.tag_codes)  # the code that pads an item's tags
            codes = np.fromiter(map(arrays.tag_codes.get, positive_tags, itertools.repeat(pad)), dtype=np.int64,
                                count=len(positive_tags))
            weight = np.zeros(pad + 1)
            weight[codes] = list(positive_tags.values())
            weight[pad] = 0.0  # the padding (where the user's tags that no item carries were written, too)
            # Each row's weights added left to right, as sum() over the item's tags adds them (np.sum
            # pairs them up, which can move a share by a rounding and the trees' split with it).
            values[:, 0] = np.cumsum(weight[arrays.tags[rows]], axis=1)[:, -1] / total
        if recent:
            counts = np.bincount(arrays.category[arrays.rows_of(recent)] + 1, minlength=len(arrays.categories) + 1)
            counts[0] = 0  # items with no category (or gone) share none
            values[:, 1] = counts[arrays.category[rows] + 1] / len(recent)
    vectors = ctx.content.vectors_of(inp.item_ids)
    for col, direction in ((2, ctx.interest), (3, ctx.session)):
        if direction is not None:
            values[:, col] = vectors @ direction
    if recent:
        last = ctx.content.vectors_of([recent[-1]])[0]
        values[:, 4] = vectors @ last
    interests = ctx.interests()
    values[:, 6] = -1.0
    if interests:
        matrix = interest_directions(interests)
        sims = vectors @ matrix.T
        values[:, 5] = sims.max(axis=1)
        values[:, 6] = sims.argmax(axis=1)
    if state.shown:
        values[:, 7] = np.fromiter(map(state.shown.get, inp.item_ids, itertools.repeat(0)), dtype=np.float64,
                                   count=n)
    return FeatureBlock("affinity", _AFFINITY, _AFFINITY_SOURCES, values)


_AFFINITY = ("tag_share", "category_share", "interest_cos", "session_cos", "last_item_cos", "interests_cos",
             "interest_rank", "shown_ignored")
_AFFINITY_SOURCES = ("tags", "tags", "content", "session", "session", "interests", "interests", "feedback")

def _explain_tags(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    tag = ctx.shared_tag(item_id)
    return Reason("tag", f"matches your interest '{tag}'", tag) if tag is not None else None


register_reason("tags", _explain_tags)
register_features("sequence", _sequence)
register_features("item", _item)
register_features("affinity", _affinity)
