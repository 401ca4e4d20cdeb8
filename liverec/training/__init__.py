"""Training: fit every registered model and the scorer into a snapshot, and adopt snapshots.

* :mod:`liverec.training.columns` — the event log as columns, read in one streamed pass (what
  training holds instead of event objects), and the validation hold-out on them;
* :mod:`liverec.training.fit` — the local training engine (one process): hold out next events,
  fit the models, tune the scorer on the serving code path, refit on everything;
* :mod:`liverec.training.engines` — where the batch stages run: here (:class:`LocalTraining`) or
  on Apache Spark (:mod:`liverec.training.spark`, the ``liverec[spark]`` extra);
* :mod:`liverec.training.lifecycle` — what a live engine does around it: refit the language
  centring, write the snapshot, swap it in, adopt one another process wrote.
"""

from __future__ import annotations

from liverec.training.columns import Holdout, LogColumns
from liverec.training.fit import (
    POSITIVE_ITEM_TYPES,
    LocalTraining,
    Progress,
    ReadLog,
    TrainingEngine,
    TrainReport,
    fit_models,
    fit_snapshot,
    refit_models,
)
from liverec.training.lifecycle import ModelLifecycle, current_snapshot

__all__ = [
    "POSITIVE_ITEM_TYPES",
    "Holdout",
    "LocalTraining",
    "LogColumns",
    "ModelLifecycle",
    "Progress",
    "ReadLog",
    "TrainReport",
    "TrainingEngine",
    "current_snapshot",
    "fit_models",
    "fit_snapshot",
    "refit_models",
]
