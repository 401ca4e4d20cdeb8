"""Where the Spark engine reads the event log: PostgreSQL through JDBC, or a Parquet export.

Both give one DataFrame of :data:`COLUMNS`, ``seq`` ordering events of equal time as the store's
log does (``EventLog.all()`` streams by ``(ts, seq)``): ``(ts, seq)`` is the log order every stage
sorts by, so the Spark engine sees the events in the order the local one reads them.

* JDBC reads the store's ``events`` table in ``partitions`` ranges of ``seq``, in parallel, from the
  executors (each needs to reach PostgreSQL).
* :func:`export_events` writes the log as Parquet in one streamed pass (``liverec export-events``):
  for a SQLite store, or for a data team that keeps its own copy on HDFS or object storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event
from liverec.storage.base import EventLog

__all__ = ["COLUMNS", "SCHEMA", "clean", "export_events", "jdbc_options", "read_events"]

COLUMNS = ("seq", "event_id", "user_id", "type", "item_id", "value", "text", "ts", "session_id")
SCHEMA = ("seq long, event_id string, user_id string, type string, item_id string, value double, text string, "
          "ts double, session_id string")
ROWS_PER_GROUP = 100_000  # events per Parquet row group: the unit Spark splits a file by


def export_events(events: Iterable[Event], path: Path) -> int:
    """Write ``events`` (in log order, as ``EventLog.all()`` gives them) to one Parquet file at
    ``path``, numbering them in that order; how many. Written beside and renamed, so a reader
    never sees half a file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("seq", pa.int64()), ("event_id", pa.string()), ("user_id", pa.string()),
                        ("type", pa.string()), ("item_id", pa.string()), ("value", pa.float64()),
                        ("text", pa.string()), ("ts", pa.float64()), ("session_id", pa.string())])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    count = 0
    columns: list[list[Any]] = [[] for _ in COLUMNS]

    def flush(writer: Any) -> None:
        writer.write_table(pa.table(dict(zip(COLUMNS, columns, strict=True)), schema=schema))
        for column in columns:
            column.clear()

    try:
        with pq.ParquetWriter(partial, schema) as writer:
            for event in events:
                count += 1
                for column, value in zip(columns, (count, event.event_id, event.user_id, event.type.value,
                                                   event.item_id, event.value, event.text, event.timestamp,
                                                   event.session_id), strict=True):
                    column.append(value)
                if len(columns[0]) == ROWS_PER_GROUP:
                    flush(writer)
            if columns[0] or not count:
                flush(writer)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def jdbc_options(url: str) -> dict[str, str]:
    """Spark's JDBC options for a ``postgresql://`` store URL: the JDBC URL (with the libpq
    parameters PgJDBC shares, such as ``sslmode``), the user, password and the events table."""
    from liverec.storage.postgres import PostgresUrl

    parsed = PostgresUrl(url)
    parts = urlsplit(parsed.conninfo)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    query = dict(parse_qsl(parts.query))
    options = {
        "url": f"jdbc:postgresql://{host}:{parts.port or 5432}/{parsed.database}"
               + (f"?{urlencode(query)}" if query else ""),
        "dbtable": f"{parsed.schema}.events",
        "driver": "org.postgresql.Driver",
        "user": unquote(parts.username or os.environ.get("PGUSER", "") or os.environ.get("USER", "postgres")),
    }
    password = parts.password if parts.password is not None else os.environ.get("PGPASSWORD")
    if password is not None:
        options["password"] = unquote(password)
    return options


def read_events(spark: Any, source: str, events: EventLog, store_url: str, model_dir: Path,
                partitions: int, through: int | None = None) -> Any:
    """The event log as a DataFrame of :data:`COLUMNS`, from ``source`` (``auto``, ``jdbc`` or
    ``parquet:PATH``; see :class:`~liverec.training.engines.TrainingSettings`): from the store,
    only the events stored by ``through`` (an ``EventLog.position``); an export given as
    ``parquet:PATH`` is the log as it was when exported, whatever ``through`` says."""
    postgres = store_url.startswith(("postgresql://", "postgres://"))
    if source == "jdbc" or (source == "auto" and postgres):
        if not postgres:
            raise InvalidInputError("training.source = jdbc needs a PostgreSQL store; this one is "
                                    f"{store_url.split(':', 1)[0]}", field="training.source", value=source)
        return clean(spark, _read_jdbc(spark, store_url, partitions, through), events)
    if source == "auto":
        path = model_dir / "spark" / "events.parquet"
        export_events(events.all(through), path)  # ``events`` as learning reads it: cleaned already
        return spark.read.parquet(str(path)).select(*COLUMNS)
    location = source[len("parquet:"):]
    frame = spark.read.parquet(location)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"{location} lacks the column(s) {', '.join(missing)} of a liverec event export "
                                "(liverec export-events)", field="training.source", value=source)
    return clean(spark, frame.select(*COLUMNS), events)


def clean(spark: Any, frame: Any, events: EventLog) -> Any:
    """``frame`` (the raw log) as learning reads it when ``events`` is a
    :class:`~liverec.cleaning.CleanLog`: without quarantined users and events (anti-joins on the
    quarantine's ids, broadcast), then without duplicates: an event whose key (user, type, item,
    value, text) came less than the window before it, the previous one by ``lag`` over ``(ts, seq)``,
    impressions excepted: the rule :class:`~liverec.cleaning.rules.Duplicates` applies event by event."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from liverec.cleaning.rules import UNDEDUPLICATED

    view, settings = getattr(events, "quarantine", None), getattr(events, "settings", None)
    if view is None or settings is None or not settings.enabled:
        return frame
    view.refresh()
    for column, ids in (("user_id", view.users), ("event_id", view.events)):
        if ids:
            held = spark.createDataFrame([(i,) for i in sorted(ids)], f"{column} string")
            frame = frame.join(F.broadcast(held), column, "left_anti")
    previous = F.lag("ts").over(Window.partitionBy("user_id", "type", "item_id", "value", "text").orderBy("ts", "seq"))
    frame = frame.withColumn("_previous", previous)
    kept = F.col("_previous").isNull() | (F.col("ts") - F.col("_previous") >= settings.duplicate_seconds)
    kept = kept | F.col("type").isin([t.value for t in UNDEDUPLICATED])
    return frame.where(kept).select(*COLUMNS)


def _read_jdbc(spark: Any, store_url: str, partitions: int, through: int | None = None) -> Any:
    """The ``events`` table (up to seq ``through``) in ``partitions`` ranges of ``seq`` read side by side."""
    from liverec.storage.postgres import PostgresDatabase, PostgresUrl

    url = PostgresUrl(store_url)
    db = PostgresDatabase(url, label="spark source")
    try:
        with db.access("reading the range of event numbers") as conn:
            low, high = conn.execute("SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM events").fetchone()
        if through is not None:
            high = min(high, through)
    finally:
        db.close()
    options = jdbc_options(store_url)
    reader = spark.read.format("jdbc").options(**options).option("fetchsize", "10000")
    reader = reader.option("partitionColumn", "seq").option("lowerBound", str(low)) \
        .option("upperBound", str(max(high, low + 1))).option("numPartitions", str(partitions))
    frame = reader.load()
    if through is not None:
        frame = frame.where(frame["seq"] <= through)  # pushed down into each range's query
    return frame.select(*COLUMNS)
