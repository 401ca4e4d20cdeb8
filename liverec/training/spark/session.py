"""The Spark session training runs in: one per process, started on first use.

A ``local[N]`` master runs the same plan a cluster does, in this process's JVM; a cluster master
(``spark://…``, ``yarn``, ``k8s://…``) sends the stages to its executors. Executors run Python only
for the text stage (``mapInPandas``): there, ``liverec`` and its encoder package must be installed
(docs/deployment.md, "Training on Spark").
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError

__all__ = ["POSTGRES_JDBC_JARS", "pyspark", "spark_session"]

# Debian's PostgreSQL JDBC driver (package libpostgresql-jdbc-java; `make spark` installs it): used
# when the configuration names no driver of its own (spark.jars / spark.jars.packages).
POSTGRES_JDBC_JARS = (Path("/usr/share/java/postgresql.jar"),)

_lock = threading.Lock()


def pyspark() -> Any:
    """The pyspark module, or an error saying how to install it."""
    # pyspark 4.3 warns on every pandas conversion that pandas 3 is newer than it was tested with;
    # the conversions used here (numeric and string columns through Arrow) are covered by the tests.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        import pyspark as module
    except ImportError:
        raise InvalidInputError("the Spark training engine needs pyspark: install liverec[spark] "
                                "(and Java 17)", field="training.engine", value="spark") from None
    return module


def spark_session(master: str, conf: dict[str, Any], partitions: int, app: str = "liverec-training") -> Any:
    """A session on ``master`` with ``conf``; the process's existing session when there is one
    (Spark allows one per JVM: a second ``master`` in one process is refused)."""
    pyspark()
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            running = active.sparkContext.master
            if running != master:
                raise InvalidInputError(f"this process already runs Spark on {running!r}; one master per process, "
                                        f"asked for {master!r}", field="training.master", value=master)
            return active
        # The driver's own Python for the executors of a local master (a cluster sets its own).
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master).appName(app)
        settings = {
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.showConsoleProgress": "false",
        }
        if master.startswith("local"):
            # A local master's shuffles: a few partitions per core, not the cluster default of 200.
            settings["spark.sql.shuffle.partitions"] = str(partitions)
            settings["spark.driver.memory"] = "4g"
            # ALS checkpoints its factors every few iterations (stages.als): without a directory the
            # lineage grows with each one until serialising a task overflows the stack. A cluster
            # sets its own (spark.checkpoint.dir on shared storage: docs/deployment.md).
            checkpoints = tempfile.mkdtemp(prefix="liverec-spark-checkpoints-")
            atexit.register(shutil.rmtree, checkpoints, True)
            settings["spark.checkpoint.dir"] = checkpoints
        if not {"spark.jars", "spark.jars.packages"} & set(conf):
            jars = [str(p) for p in POSTGRES_JDBC_JARS if p.exists()]
            if jars:
                settings["spark.jars"] = ",".join(jars)
        settings.update({str(k): str(v) for k, v in conf.items()})
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session
