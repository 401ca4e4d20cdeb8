"""The batch stages as Spark DataFrame plans, each computing what its local counterpart computes.

Every stage sorts a user's events by ``(ts, seq)``, the log order the local engine reads them in,
so co-visitation pairs, users' last events and trending sums are the local engine's (up to the order
floating-point sums are added in). ALS is MLlib's, with the local model's confidence; its factors
go into the same :class:`~liverec.models.als.ALSRecommender`, whose fold-in is unchanged.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from liverec.core.types import EventType
from liverec.models.als import ALSRecommender
from liverec.models.base import TYPE_INDEX
from liverec.models.covisit import CoVisitation
from liverec.models.popularity import TrendingPopularity
from liverec.training.columns import MIN_FIRST_TOUCHES, POSITIVE_ITEM_TYPES, Holdout

__all__ = ["STAGES", "als", "covisitation", "first_appearance", "holdout", "positive", "timed", "training_frame",
           "trending"]


def _f() -> Any:
    from pyspark.sql import functions

    return functions


def _log_order() -> Any:
    from pyspark.sql import Window

    return Window.partitionBy("user_id").orderBy("ts", "seq")


def _type_map(values: Mapping[str, float | int]) -> Any:
    F = _f()
    return F.create_map(*[F.lit(x) for pair in values.items() for x in pair])


def training_frame(events: Any, item_codes: Any, weights: Mapping[EventType, float], polarity: Any) -> Any:
    """The rows training learns from: events on catalog items (``item`` its code) or on none
    (``item`` -1), with ``weight`` = type weight × polarity rounded to float32 and ``kind`` the
    type's code — :meth:`LogColumns.training_data` as a DataFrame.

    ``polarity`` maps review event ids to their polarity (computed on the driver); a rating's is
    ``(value - 3) / 2``, every other event's 1.
    """
    F = _f()
    joined = events.join(F.broadcast(item_codes), "item_id", "left").join(F.broadcast(polarity), "event_id", "left")
    kept = joined.where(F.col("item_id").isNull() | F.col("item").isNotNull())
    sign = (F.when(F.col("type") == EventType.RATE.value, (F.coalesce(F.col("value"), F.lit(3.0)) - 3.0) / 2.0)
            .when(F.col("type") == EventType.REVIEW.value, F.coalesce(F.col("polarity"), F.lit(1.0)))
            .otherwise(F.lit(1.0)))
    type_weight = F.coalesce(_type_map({t.value: float(w) for t, w in weights.items()})[F.col("type")], F.lit(0.0))
    return kept.select(
        "seq", "user_id", F.coalesce(F.col("item"), F.lit(-1)).alias("item"), "ts",
        _type_map({t.value: code for t, code in TYPE_INDEX.items()})[F.col("type")].cast("byte").alias("kind"),
        (type_weight * sign).cast("float").alias("weight"),
    )


def positive(frame: Any) -> Any:
    """The positive item events the count models learn from, weights as doubles (as theirs are)."""
    F = _f()
    return frame.where((F.col("item") >= 0) & (F.col("weight") > 0)) \
        .select("user_id", "item", F.col("weight").cast("double").alias("w"), "ts", "seq")


def first_appearance(frame: Any) -> list[str]:
    """The users of ``frame`` in order of their first event (how the local engine numbers them)."""
    F = _f()
    firsts = frame.groupBy("user_id").agg(F.min(F.struct("ts", "seq")).alias("first"))
    return [row.user_id for row in firsts.orderBy("first").select("user_id").toLocalIterator()]


def holdout(events: Any, max_users: int, seed: int) -> Holdout:
    """:meth:`LogColumns.holdout` on the cluster: up to ``max_users`` users' last first-time positive
    item event and everything after it are held out. The hold-out's ``train`` is the cut per user
    as a DataFrame (``user_id, cut_ts, cut_seq``).

    Only the candidate users (their id, cut and target) come to the driver, where they are drawn
    exactly as the local engine draws them.
    """
    F = _f()
    touched = events.where(F.col("item_id").isNotNull())
    first = touched.groupBy("user_id", "item_id").agg(F.min(F.struct("ts", "seq", "type")).alias("first"))
    first = first.where(F.col("first.type").isin([t.value for t in POSITIVE_ITEM_TYPES]))
    per_user = first.groupBy("user_id").agg(
        F.count("*").alias("touches"), F.max(F.struct("first.ts", "first.seq", "item_id")).alias("last"))
    candidates = per_user.where(F.col("touches") >= MIN_FIRST_TOUCHES) \
        .select("user_id", F.col("last.ts").alias("cut_ts"), F.col("last.seq").alias("cut_seq"),
                F.col("last.item_id").alias("target")).collect()
    by_user = {row.user_id: row for row in candidates}
    chosen = random.Random(seed).sample(sorted(by_user), min(max_users, len(by_user)))
    spark = events.sparkSession
    cuts = spark.createDataFrame([(u, float(by_user[u].cut_ts), int(by_user[u].cut_seq)) for u in chosen],
                                 "user_id string, cut_ts double, cut_seq long")
    kept = {row.user_id: int(row["count"]) for row in
            events.join(F.broadcast(cuts), "user_id").where(_before_cut()).groupBy("user_id").count().collect()}
    return Holdout(cuts, {u: by_user[u].target for u in chosen}, {u: kept.get(u, 0) for u in chosen},
                   {u: float(by_user[u].cut_ts) for u in chosen})


def before_cuts(frame: Any, cuts: Any) -> Any:
    """``frame`` without each held-out user's events from their cut on."""
    F = _f()
    joined = frame.join(F.broadcast(cuts), "user_id", "left")
    return joined.where(F.col("cut_ts").isNull() | _before_cut()).drop("cut_ts", "cut_seq")


def _before_cut() -> Any:
    """A row comes before its user's cut in log order: ``(ts, seq) < (cut_ts, cut_seq)``."""
    F = _f()
    return (F.col("ts") < F.col("cut_ts")) | ((F.col("ts") == F.col("cut_ts")) & (F.col("seq") < F.col("cut_seq")))


def covisitation(model: CoVisitation, frame: Any, item_ids: Sequence[str], users: Sequence[str],
                 now: float) -> CoVisitation:
    """:func:`~liverec.models.covisit.covisit_counts` and the users' last events, on the cluster."""
    F = _f()
    pos = positive(frame)
    order = _log_order()
    following = [F.struct(F.lead("item", gap).over(order).alias("b"), F.lead("w", gap).over(order).alias("wb"),
                          F.lead("ts", gap).over(order).alias("tb")) for gap in range(1, model.max_gap_items + 1)]
    ahead = pos.select(F.col("item").alias("a"), "w", "ts", F.array(*following).alias("ahead"))
    pairs = ahead.select("a", "w", "ts", F.explode("ahead").alias("next")) \
        .where(F.col("next.b").isNotNull() & (F.col("next.tb") - F.col("ts") <= F.lit(float(model.window)))
               & (F.col("next.b") != F.col("a"))) \
        .select("a", F.col("next.b").alias("b"), F.least(F.col("w"), F.col("next.wb")).alias("v"))
    both = pairs.unionByName(pairs.select(F.col("b").alias("a"), F.col("a").alias("b"), "v"))
    counted = both.groupBy("a", "b").agg(F.sum("v").alias("v")).where(F.col("v") != 0).toPandas()
    n = len(item_ids)
    counts = sp.csr_matrix((counted["v"].to_numpy(np.float64), (counted["a"].to_numpy(np.int64),
                                                                counted["b"].to_numpy(np.int64))), shape=(n, n))
    counts.sort_indices()
    weights = pos.groupBy("item").agg(F.sum("w").alias("w")).toPandas()
    item_weight = np.zeros(n, dtype=np.float64)
    item_weight[weights["item"].to_numpy(np.int64)] = weights["w"].to_numpy(np.float64)
    from pyspark.sql import Window

    latest_first = Window.partitionBy("user_id").orderBy(F.desc("ts"), F.desc("seq"))
    last = pos.withColumn("back", F.row_number().over(latest_first)).where(F.col("back") <= model.max_gap_items)
    tails: dict[str, list[tuple[int, float, float]]] = {}
    rows = last.select("user_id", "back", "item", "w", "ts").toPandas().sort_values(["user_id", "back"],
                                                                                    ascending=[True, False])
    for user, item, w, ts in zip(rows["user_id"].tolist(), rows["item"].tolist(), rows["w"].tolist(),
                                 rows["ts"].tolist(), strict=True):
        tails.setdefault(user, []).append((int(item), float(w), float(ts)))
    # The local engine's order: users by their first event, each user's last events oldest first.
    return model.assign(list(item_ids), counts, item_weight, {u: tails[u] for u in users if u in tails})


def trending(model: TrendingPopularity, frame: Any, item_ids: Sequence[str], users: Sequence[str],
             now: float) -> TrendingPopularity:
    """:meth:`TrendingPopularity.fit`'s decayed sums per item, on the cluster."""
    F = _f()
    pos = positive(frame)
    decay = F.pow(F.lit(2.0), (F.least(F.col("ts"), F.lit(now)) - F.lit(now)) / F.lit(float(model.half_life)))
    sums = pos.groupBy("item").agg(F.sum(F.col("w") * decay).alias("s")).toPandas()
    out = np.zeros(len(item_ids), dtype=np.float64)
    out[sums["item"].to_numpy(np.int64)] = sums["s"].to_numpy(np.float64)
    return model.assign(list(item_ids), out, now)


# ALS checkpoints its factors (where spark.checkpoint.dir is set) every this many iterations; MLlib's
# default of 10 let 15 iterations' lineage overflow the stack of a task's serialisation on local[2].
CHECKPOINT_EVERY = 5


def als(model: ALSRecommender, frame: Any, item_ids: Sequence[str], users: Sequence[str],
        now: float) -> ALSRecommender:
    """MLlib's implicit ALS on the summed positive weights (confidence ``1 + alpha · w``, as locally).

    MLlib scales ``λ`` by each user's and item's number of ratings (ALS-WR); implicit does not. Spark
    is given ``λ`` divided by the mean ratings per user, so the average penalty is the local one's.
    """
    from pyspark.ml.recommendation import ALS

    F = _f()
    spark = frame.sparkSession
    codes = spark.createDataFrame(list(enumerate(users)), "user long, user_id string")
    ratings = positive(frame).groupBy("user_id", "item").agg(F.sum("w").cast("float").alias("rating")) \
        .join(codes, "user_id").select(F.col("user").cast("int"), F.col("item").cast("int"), "rating")
    ratings = ratings.persist()
    n_ratings = ratings.count()
    item_factors = np.zeros((len(item_ids), model.factors), dtype=np.float32)
    user_factors = np.zeros((len(users), model.factors), dtype=np.float32)
    if n_ratings:
        per_user = n_ratings / max(1, ratings.select("user").distinct().count())
        fitted = ALS(rank=model.factors, maxIter=model.iterations, regParam=model.regularization / per_user,
                     alpha=float(model.alpha), implicitPrefs=True, userCol="user", itemCol="item",
                     ratingCol="rating", seed=model.seed, checkpointInterval=CHECKPOINT_EVERY).fit(ratings)
        for target, factors in ((item_factors, fitted.itemFactors), (user_factors, fitted.userFactors)):
            table: Any = factors.toPandas()
            if len(table):
                target[table["id"].to_numpy(np.int64)] = np.stack(table["features"].to_numpy()).astype(np.float32)
    ratings.unpersist()
    return model.assign(list(item_ids), list(users), item_factors, user_factors)


# Models the Spark engine computes on the cluster, by registered name; every other snapshot model
# (the sequence model) is fitted on the driver from the Spark-prepared training rows.
STAGES = {"als": als, "covisit": covisitation, "trending": trending}


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the ``with`` body to ``seconds[name]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
