"""The Spark training engine: the batch stages on a cluster (or ``local[N]``), the same snapshot.

What runs where, and why:

* **On the cluster** — reading the log (JDBC or Parquet), the validation hold-out, the training rows
  (catalog join, weights), co-visitation counts and users' last events, trending sums (Spark SQL),
  ALS (MLlib, implicit preferences), and item text vectors for texts the vector cache lacks
  (``mapInPandas``, :mod:`.text`). These grow with the log and the catalog.
* **On the driver** — the sequence model (and any registered model without a Spark stage), from the
  Spark-prepared training rows brought over by Arrow: a user's sequence is a few dozen int32 codes,
  so 10M events are ~200 MB of columns, and the model (a small transformer) trains in minutes on one
  machine. ``TorchDistributor`` would add a torch process group per executor and gradient traffic to
  save little at this size; it is the move when sequences stop fitting one machine.
* **Here, as with the local engine** — the scorer's tuning (a few thousand validation users through
  the serving code path) and the snapshot's writing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.models.base import Model, TrainingData
from liverec.models.registry import build_model, snapshot_models
from liverec.storage.base import EventLog, Store
from liverec.text.space import TextSpace
from liverec.training.columns import Holdout, Polarities
from liverec.training.spark import stages
from liverec.training.spark.session import spark_session
from liverec.training.spark.source import read_events
from liverec.training.spark.text import encode_missing

__all__ = ["SparkLog", "SparkTraining"]

logger = logging.getLogger(__name__)


class SparkLog:
    """The event log as Spark read it (a cached DataFrame) and what the driver keeps of it."""

    def __init__(self, events: Any, count: int, user_ids: list[str], texts: list[Event], polarity: Any) -> None:
        self.events = events
        self.count = count
        self.user_ids = user_ids
        self.texts = texts
        self.polarity = polarity

    def __len__(self) -> int:
        return self.count

    def latest(self, bound: float, default: float) -> float:
        from pyspark.sql import functions as F

        found = self.events.where(F.col("ts") <= bound).agg(F.max("ts")).first()[0]
        return default if found is None else float(found)

    def holdout(self, max_users: int, seed: int) -> Holdout:
        return stages.holdout(self.events, max_users, seed)

    def close(self) -> None:
        self.events.unpersist()


class SparkTraining:
    """Training's batch stages on Spark (``[training] engine = "spark"``); see the module docs."""

    name = "spark"

    def __init__(self, settings: Any, store: Store, model_dir: Path) -> None:
        self.settings = settings  # TrainingSettings
        self.store = store
        self.model_dir = Path(model_dir)
        self.seconds: dict[str, float] = {}  # wall time per stage of the last fit

    @property
    def spark(self) -> Any:
        return spark_session(self.settings.master, dict(self.settings.conf), self.settings.partitions)

    def encode_texts(self, texts: Sequence[str], space: TextSpace) -> int:
        """Encode on the executors the passage texts (item texts, reviews) the store's vector cache
        lacks (:mod:`.text`); how many. The driver then reads them from the cache."""
        if space.encoder.cache is None or not texts:
            return 0
        t0 = time.perf_counter()
        done = encode_missing(self.spark, space.encoder_name, space.encoder, texts, self.settings.partitions)
        self.seconds["texts"] = self.seconds.get("texts", 0.0) + time.perf_counter() - t0
        return done

    def read(self, events: EventLog, polarities: Polarities, through: int | None = None) -> SparkLog:
        """Read the log on Spark. Reviews and searches come to the driver as the read's texts, as the
        local engine keeps them; the reviews' polarities are computed there by ``polarities`` (the
        lifecycle's has their texts the vector cache lacks encoded on the executors first, by
        :meth:`encode_texts`, so the driver only applies the sentiment head)."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        spark = self.spark
        t0 = time.perf_counter()
        self.seconds = {}
        frame = read_events(spark, self.settings.source, events, getattr(self.store, "url", ""), self.model_dir,
                            self.settings.partitions, through).persist(StorageLevel.MEMORY_AND_DISK)
        count = frame.count()
        texts = [Event(event_id=r.event_id, user_id=r.user_id, type=EventType(r.type), item_id=r.item_id,
                       value=r.value, text=r.text, timestamp=r.ts, session_id=r.session_id)
                 for r in frame.where(F.col("type").isin(EventType.REVIEW.value, EventType.SEARCH.value)
                                      & F.col("text").isNotNull() & (F.col("text") != "")).toLocalIterator()]
        reviews = [e for e in texts if e.type is EventType.REVIEW]
        found = polarities(reviews) if reviews else {}
        polarity = spark.createDataFrame([(k, float(v)) for k, v in found.items()],
                                         "event_id string, polarity double")
        users = [r.user_id for r in frame.select("user_id").distinct().toLocalIterator()]
        self.seconds["read"] = time.perf_counter() - t0 - self.seconds.get("texts", 0.0)  # encoding is "texts"
        return SparkLog(frame, count, users, texts, polarity)

    def fit(self, log: Any, item_ids: Sequence[str], item_vectors: np.ndarray, settings: Settings,
            held: Holdout | None = None, fitted: Mapping[str, Model] | None = None) -> tuple[dict[str, Model], int]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if not isinstance(log, SparkLog):
            raise InvalidInputError("the Spark engine fits only what it read", field="training.engine")
        spark = self.spark
        seconds: dict[str, float] = {}
        with stages.timed(seconds, "rows"):
            codes = spark.createDataFrame(list(enumerate(item_ids)), "item int, item_id string")
            frame = stages.training_frame(log.events, codes, settings.event_weights, log.polarity)
            if held is not None:
                frame = stages.before_cuts(frame, held.train)
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            users = stages.first_appearance(frame)
            latest = frame.agg(F.max("ts")).first()[0]
            now = min(float(latest), time.time()) if latest is not None else 0.0
        models: dict[str, Model] = {}
        data: TrainingData | None = None
        try:
            for name in snapshot_models():
                if name in settings.models_off:
                    continue
                model = build_model(name, settings.models.get(name), seed=settings.seed)
                stage: Any = stages.STAGES.get(name)
                with stages.timed(seconds, name):
                    if stage is not None:
                        spark.sparkContext.setJobGroup(f"liverec-{name}", f"training stage {name}")
                        models[name] = stage(model, frame, item_ids, users, now)
                        continue
                    if data is None:
                        with stages.timed(seconds, "rows_to_driver"):
                            data = _driver_data(frame, item_ids, item_vectors, users, now)
                    refit: Any = getattr((fitted or {}).get(name), "refit", None)
                    models[name] = refit(data) if fitted is not None and callable(refit) else model.fit(data)
        finally:
            frame.unpersist()
        self.seconds.update({f"{'fit' if held is None else 'validation'}.{k}": v for k, v in seconds.items()})
        logger.info("spark stages (s): %s", {k: round(v, 2) for k, v in seconds.items()})
        return models, len(users)


def _driver_data(frame: Any, item_ids: Sequence[str], item_vectors: np.ndarray, users: list[str],
                 now: float) -> TrainingData:
    """The training rows on the driver, in log order, for models trained here (the sequence model)."""
    rows = frame.orderBy("ts", "seq").select("user_id", "item", "weight", "ts", "kind").toPandas()
    code = {user: n for n, user in enumerate(users)}
    event_user = np.fromiter((code[u] for u in rows["user_id"].tolist()), dtype=np.int32, count=len(rows))
    return TrainingData.from_arrays(list(item_ids), list(users), event_user, rows["item"].to_numpy(np.int32),
                                    rows["weight"].to_numpy(np.float32), rows["ts"].to_numpy(np.float64),
                                    rows["kind"].to_numpy(np.int8), item_vectors, now=now)
