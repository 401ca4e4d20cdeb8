"""The checks and encodings every storage backend shares, so all of them store and return the same.

Items are kept as the JSON :meth:`Item.to_dict` gives (so attributes come back as they would from
any backend), events are checked as a whole batch before any is stored, and vectors are
one-dimensional, finite float32.

>>> decode_item(encode_item(Item("i1", "Teapot", created_at=1.0))).title
'Teapot'
>>> as_vector("use", "k", np.array([1, 2])).dtype
dtype('float32')
>>> erasure_digest(b"salt", "u1") == erasure_digest(b"salt", "u1") != erasure_digest(b"pepper", "u1")
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, Item

__all__ = ["as_vector", "check_events", "decode_item", "encode_item", "erased_among", "erasure_digest"]


def check_events(events: Sequence[Event]) -> list[Event]:
    """Return ``events`` as a list, or raise if any element is not an :class:`Event`.

    Backends check the whole batch before storing any of it, so a bad element stores nothing.
    """
    batch = list(events)
    for position, event in enumerate(batch):
        if not isinstance(event, Event):
            raise InvalidInputError(
                f"append takes Event objects; element {position} is {type(event).__name__}: {event!r:.80}",
                field="events",
                value=event,
            )
    return batch


def encode_item(item: Item) -> str:
    """The JSON text every backend stores for an item.

    An item whose attributes JSON cannot hold (a set, NaN, an object) is the caller's mistake,
    reported here rather than when the HTTP layer later fails to answer with it.
    """
    if not isinstance(item, Item):
        raise InvalidInputError(f"upsert takes Item objects, got {type(item).__name__}", field="items", value=item)
    try:
        return json.dumps(item.to_dict(), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"item {item.item_id!r} has attributes that are not valid JSON: {exc}",
            field="attributes",
            value=item.attributes,
        ) from None


def decode_item(text: str) -> Item:
    """The item :func:`encode_item` wrote."""
    return Item.from_dict(json.loads(text))


def as_vector(encoder: str, key: str, vector: np.ndarray) -> np.ndarray:
    """``vector`` as a one-dimensional, finite float32 array (the only form the cache holds)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.size == 0:
        raise InvalidInputError(
            f"vector {key!r} of encoder {encoder!r} has shape {array.shape}; expected one non-empty dimension",
            field="vectors",
            value=key,
        )
    if not np.isfinite(array).all():
        raise InvalidInputError(
            f"vector {key!r} of encoder {encoder!r} holds NaN or infinity", field="vectors", value=key
        )
    return array


def erasure_digest(salt: bytes, user_id: str) -> bytes:
    """What a store keeps of an erased user: a digest of the id keyed with the store's random salt.

    Enough to recognise the user in a snapshot trained before the erasure (which must then be
    scrubbed of them), not to read the id back; a guessed id can be checked only by someone who
    also holds the store's salt.
    """
    return hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), key=salt, digest_size=16,
                           person=b"liverec-erasure").digest()


def erased_among(salt: bytes, digests: Collection[bytes], user_ids: Iterable[str]) -> set[str]:
    """Those of ``user_ids`` whose :func:`erasure_digest` is among ``digests`` (a durable store's
    erasures since an epoch): how every such store answers ``erased_since``."""
    if not digests:
        return set()
    return {user_id for user_id in user_ids if erasure_digest(salt, user_id) in digests}
