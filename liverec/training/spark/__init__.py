"""Training's batch stages on Apache Spark (``liverec[spark]``; ``[training] engine = "spark"``).

* :mod:`.session` — the Spark session (``local[N]`` or a cluster's master);
* :mod:`.source` — the event log read through JDBC from PostgreSQL, or a Parquet export;
* :mod:`.stages` — hold-out, training rows, co-visitation, trending and MLlib ALS as DataFrame plans;
* :mod:`.text` — item text vectors the cache lacks, encoded on the executors (``mapInPandas``);
* :mod:`.engine` — :class:`SparkTraining`, the engine the training lifecycle runs.

Importing this package needs pyspark; :mod:`liverec.training.engines` imports it only when chosen.
"""

from __future__ import annotations

from liverec.training.spark.engine import SparkLog, SparkTraining
from liverec.training.spark.session import spark_session
from liverec.training.spark.source import export_events, jdbc_options, read_events
from liverec.training.spark.text import encode_catalog, encode_missing

__all__ = [
    "SparkLog",
    "SparkTraining",
    "encode_catalog",
    "encode_missing",
    "export_events",
    "jdbc_options",
    "read_events",
    "spark_session",
]
