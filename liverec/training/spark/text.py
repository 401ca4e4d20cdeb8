"""Item text vectors on the executors: texts the store's vector cache lacks are encoded in
``mapInPandas`` batches, each executor loading the encoder once, and written to the cache.

Items are encoded when they are upserted, so a live engine's catalog is cached already and this
stage finds nothing to do. It is for a catalog loaded into the store some other way (a data team's
bulk load into PostgreSQL), or after ``encoder`` changed: then every text is new to the cache, and
the encoding (~250 items/s on one core) is the longest part of the first training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from liverec.core.settings import Settings
from liverec.storage.base import Store
from liverec.text.cache import CachedEncoder
from liverec.text.encoders import get_encoder

__all__ = ["BATCH", "encode_catalog", "encode_missing"]

BATCH = 256  # texts per encoder call on an executor
KEYS_PER_LOOKUP = 10_000  # cache lookups and writes per round trip


def encode_missing(spark: Any, encoder: str, cached: CachedEncoder, texts: Sequence[str], partitions: int) -> int:
    """Encode on Spark the passage ``texts`` the cache of ``cached`` lacks, with the encoder named
    ``encoder`` (``use``, ``e5``, ``minilm``), and cache them; how many were encoded."""
    cache = cached.cache
    if cache is None:
        raise ValueError("encode_missing needs an encoder with a durable cache")
    keyed = {cached.key(text, "passage"): text for text in texts}
    keys = list(keyed)
    missing: list[tuple[str, str]] = []
    for start in range(0, len(keys), KEYS_PER_LOOKUP):
        chunk = keys[start : start + KEYS_PER_LOOKUP]
        have = cache.get_many(cached.name, chunk)
        missing.extend((key, keyed[key]) for key in chunk if key not in have)
    if not missing:
        return 0
    frame = spark.createDataFrame(missing, "key string, text string").repartition(partitions)
    name = encoder

    def encode(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        from liverec.text.encoders import get_encoder

        model = get_encoder(name, threads=1)  # one core per task: Spark runs a task per core
        for batch in batches:
            for start in range(0, len(batch), BATCH):
                part = batch.iloc[start : start + BATCH]
                vectors = model.encode(part["text"].tolist(), kind="passage")
                yield pd.DataFrame({"key": part["key"].to_numpy(),
                                    "vector": [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]})

    out: dict[str, np.ndarray] = {}
    done = 0
    for row in frame.mapInPandas(encode, "key string, vector binary").toLocalIterator():
        out[row.key] = np.frombuffer(row.vector, dtype=np.float32)
        if len(out) == KEYS_PER_LOOKUP:
            cache.put_many(cached.name, out)
            done += len(out)
            out = {}
    if out:
        cache.put_many(cached.name, out)
        done += len(out)
    return done


def encode_catalog(store: Store, settings: Settings) -> int:
    """Encode on the Spark of ``settings.training`` the item texts of ``store``'s catalog that its
    vector cache lacks (before an engine opens on it); how many were encoded."""
    from liverec.training.engines import training_settings
    from liverec.training.spark.session import spark_session

    chosen = training_settings(settings)
    cached = CachedEncoder(get_encoder(settings.encoder, threads=1), store.vectors)  # not loaded unless used
    texts = [item.text for item in store.catalog.all()]
    if not texts:
        return 0
    spark = spark_session(chosen.master, dict(chosen.conf), chosen.partitions)
    return encode_missing(spark, settings.encoder, cached, texts, chosen.partitions)
