"""The real PostgreSQL, Redis and NATS the ``services`` tests run against, each test in its own
namespace (a PostgreSQL schema, a Redis key prefix, a NATS stream name) that is dropped afterwards.

Where a service does not answer, its tests skip saying which and where, unless
``REQUIRE_SERVICES=1`` (set by ``.ci/run`` after checking that they answer): then they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

POSTGRES = os.environ.get("TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
REDIS = os.environ.get("TEST_REDIS", "redis://127.0.0.1:6379/0")
NATS = os.environ.get("TEST_NATS", "nats://127.0.0.1:4222")


def require(url: str, what: str) -> None:
    """Skip (or fail, under ``REQUIRE_SERVICES=1``) unless ``url``'s host accepts a connection."""
    parts = urlsplit(url)
    default = {"postgresql": 5432, "redis": 6379, "nats": 4222}[parts.scheme]
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default), timeout=2).close()
    except OSError as exc:
        message = f"{what} at {parts.hostname}:{parts.port or default} does not answer ({exc})"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


def unique(prefix: str) -> str:
    """A fresh lower-case name for one test's namespace."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
