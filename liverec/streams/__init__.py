"""Streaming ingest from message brokers (``liverec consume``): :func:`consume` stores what a
:class:`Source` delivers, acknowledging each message only after its events are durably stored.

Brokers open by URL (:func:`open_source`): ``nats://`` is NATS JetStream
(:class:`liverec.streams.nats.NatsSource`, ``pip install 'liverec[nats]'``); another is one class
and one :func:`register_source` call. See docs/streams.md.
"""

from __future__ import annotations

from liverec.streams.base import (
    DEFAULT_BATCH,
    MAX_EVENTS_PER_MESSAGE,
    ConsumeStats,
    Message,
    Source,
    StreamError,
    consume,
    open_source,
    parse_body,
    register_source,
    stop_on_signals,
)

__all__ = [
    "DEFAULT_BATCH",
    "MAX_EVENTS_PER_MESSAGE",
    "ConsumeStats",
    "Message",
    "Source",
    "StreamError",
    "consume",
    "open_source",
    "parse_body",
    "register_source",
    "stop_on_signals",
]
