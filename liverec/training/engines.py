"""Training engines by name: where training's batch stages run (``[training] engine = …``).

* ``local`` — this process (:class:`~liverec.training.fit.LocalTraining`), the default;
* ``spark`` — Apache Spark, ``local[N]`` or a cluster (:mod:`liverec.training.spark`, the
  ``liverec[spark]`` extra, imported only when chosen).

>>> training_settings(Settings()).engine
'local'
>>> training_settings(Settings(training={"engine": "hadoop"}))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: training.engine: no training engine is called 'hadoop'; known: local, spark
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings, from_table
from liverec.storage.base import Store
from liverec.training.fit import LocalTraining, TrainingEngine

__all__ = ["ENGINES", "TrainingSettings", "training_engine", "training_settings"]

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class TrainingSettings:
    """The ``[training]`` table.

    Parameters
    ----------
    engine
        ``local`` or ``spark``.
    master
        Spark's master URL: ``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://…``.
    conf
        Spark configuration (``{"spark.executor.memory": "8g"}``), passed to the session as given.
    source
        Where Spark reads the event log: ``auto`` (PostgreSQL through JDBC when the store is one,
        else a Parquet export liverec writes beside the snapshots), ``jdbc``, or
        ``parquet:PATH`` (an export written by ``liverec export-events``).
    partitions
        Partitions of the event log read through JDBC, and of each shuffle on ``local`` masters
        (a cluster keeps its own ``spark.sql.shuffle.partitions``).
    """

    engine: str = "local"
    master: str = "local[2]"
    conf: Mapping[str, Any] = field(default_factory=dict)
    source: str = "auto"
    partitions: int = 8

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInputError(f"training.engine: no training engine is called {self.engine!r}; known: "
                                    f"{', '.join(ENGINES)}", field="training.engine", value=self.engine)
        if not isinstance(self.master, str) or not self.master:
            raise InvalidInputError("training.master must be a Spark master URL such as local[2]",
                                    field="training.master", value=self.master)
        if not isinstance(self.conf, Mapping) or not all(isinstance(k, str) for k in self.conf):
            raise InvalidInputError("training.conf must be a table of Spark settings", field="training.conf",
                                    value=self.conf)
        if not (self.source in ("auto", "jdbc") or (isinstance(self.source, str) and self.source.startswith("parquet:")
                                                     and len(self.source) > len("parquet:"))):
            raise InvalidInputError(f"training.source must be auto, jdbc or parquet:PATH, got {self.source!r}",
                                    field="training.source", value=self.source)
        if isinstance(self.partitions, bool) or not isinstance(self.partitions, int) or self.partitions < 1:
            raise InvalidInputError("training.partitions must be an integer >= 1", field="training.partitions",
                                    value=self.partitions)


def training_settings(settings: Settings) -> TrainingSettings:
    """The engine's ``[training]`` table, checked (an unknown key or engine is an error naming it)."""
    return from_table(TrainingSettings, dict(settings.training), "training")


def training_engine(settings: Settings, store: Store, model_dir: Path) -> TrainingEngine:
    """The engine ``settings.training`` names, ready to read ``store``'s log (Spark starts lazily)."""
    chosen = training_settings(settings)
    if chosen.engine == "spark":
        from liverec.training.spark import SparkTraining  # pyspark only when Spark is chosen

        return SparkTraining(chosen, store, model_dir)
    return LocalTraining()
