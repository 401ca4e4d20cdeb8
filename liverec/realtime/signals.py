"""What an event means for a user's interests: its :class:`EventSignal` (vector, polarity, tags).

Signals are computed outside the O(d + L) state update, a batch at a time: the texts of a batch's
searches and reviews are encoded in one call, item vectors looked up in one call per distinct
item, so applying an event does no model inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverec.core.types import Event, EventType
from liverec.realtime.catalog import LiveCatalog
from liverec.realtime.state import EventSignal
from liverec.text.enrich import query_tags
from liverec.text.sentiment import ReviewPolarity, rating_polarity

__all__ = ["EventSignals"]


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-12)).astype(np.float32)


class EventSignals:
    """Turns events into signals against the live catalog and text space.

    * an item event moves the interest by the item's text vector and adds its interest tags;
    * a search, by the query's vector and keywords;
    * a review, by the blend of the item's and the review's vectors, signed and scaled by the
      review's polarity (its rating when given, otherwise its text's sentiment);
    * a rating, by the item's vector, signed and scaled by the rating.
    """

    def __init__(self, catalog: LiveCatalog, polarity: ReviewPolarity) -> None:
        self.catalog = catalog
        self.polarity = polarity

    def __call__(self, events: Sequence[Event]) -> dict[str, EventSignal]:
        """Per event id, the vector, polarity and tags that ``apply`` folds in (texts encoded in one batch)."""
        catalog = self.catalog
        # Members in locals: reading EventType.SEARCH is a descriptor call on every access.
        search, review, rate = EventType.SEARCH, EventType.REVIEW, EventType.RATE
        queries = list(dict.fromkeys(e.text or "" for e in events if e.type is search))
        reviews = [e for e in events if e.type is review]
        qvecs = dict(zip(queries, catalog.text_vectors(queries, "query"), strict=True)) if queries else {}
        rtexts = [e.text or "" for e in reviews]
        rvecs = catalog.text_vectors(rtexts, "passage") if reviews else np.zeros((0, 1), np.float32)
        polarities = self.polarity.polarities(rtexts, [e.value for e in reviews]) if reviews else np.zeros(0)
        review_info = {e.event_id: (rvecs[n], float(polarities[n])) for n, e in enumerate(reviews)}
        # One batched lookup per distinct item; an unknown (since deleted) item comes back as zeros.
        distinct = list(dict.fromkeys(e.item_id for e in events if e.item_id is not None))
        item_vecs = catalog.vectors_of(distinct)
        known = np.linalg.norm(item_vecs, axis=1) > 0
        vector_of = {item_id: item_vecs[n] for n, item_id in enumerate(distinct) if known[n]}
        # Signals are immutable: every plain event on one item (every search of one text) shares one.
        of_item: dict[str, EventSignal] = {}
        of_query: dict[str, EventSignal] = {}
        out: dict[str, EventSignal] = {}
        for e in events:
            type_ = e.type
            if type_ is search:
                text = e.text or ""
                signal = of_query.get(text)
                if signal is None:
                    signal = of_query[text] = EventSignal(qvecs[text], 1.0, query_tags(text))
            elif type_ is review:
                item_vec = vector_of.get(e.item_id or "")
                text_vec, pol = review_info[e.event_id]
                # A review speaks about the item and, in its own words, about what mattered.
                blend = text_vec if item_vec is None else _unit_rows((item_vec + text_vec)[None, :])[0]
                signal = EventSignal(blend, pol, catalog.tags(e.item_id or ""))
            elif type_ is rate:
                item_id = e.item_id or ""
                signal = EventSignal(vector_of.get(item_id), rating_polarity(e.value or 3.0), catalog.tags(item_id))
            else:
                item_id = e.item_id or ""
                signal = of_item.get(item_id)
                if signal is None:
                    signal = of_item[item_id] = EventSignal(vector_of.get(item_id), 1.0, catalog.tags(item_id))
            out[e.event_id] = signal
        return out

    def polarities(self, events: Sequence[Event]) -> dict[str, float]:
        """The polarity of every review and rating among ``events``, by event id (for training)."""
        reviews = [e for e in events if e.type is EventType.REVIEW]
        out: dict[str, float] = {}
        if reviews:
            pols = self.polarity.polarities([e.text or "" for e in reviews], [e.value for e in reviews])
            out = {e.event_id: float(p) for e, p in zip(reviews, pols, strict=True)}
        out.update({e.event_id: rating_polarity(e.value or 3.0) for e in events if e.type is EventType.RATE})
        return out
