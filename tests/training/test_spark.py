"""The Spark training engine in ``local[2]``: the same counts as the local engine, a snapshot a
running engine adopts, the PostgreSQL log read through JDBC, and the CLI's errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from liverec.cli import app
from liverec.core.settings import Settings
from liverec.datasets.demo import REFERENCE_TIME, build_demo_world
from liverec.engine import Engine
from liverec.training.engines import training_engine
from liverec.training.fit import LocalTraining

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (pip install 'liverec[spark]')")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (`java` is not on PATH)", allow_module_level=True)

pytestmark = pytest.mark.spark
SPARK = Settings(training={"engine": "spark", "master": "local[2]"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, object, object]]:
    """One small world trained by each engine in turn: (engine, local snapshot, Spark snapshot)."""
    world = build_demo_world(seed=7, now=REFERENCE_TIME, n_items=600, n_users=80)
    path = tmp_path_factory.mktemp("spark") / "world.db"
    engine = Engine.open(f"sqlite:///{path}")
    engine.ingest_items(world.items)
    engine.ingest_events(world.events)
    engine.train()
    local = engine.snapshot
    engine.models.engine = training_engine(SPARK, engine.store, engine.model_dir)
    engine.train()
    yield engine, local, engine.snapshot
    engine.close()


def test_spark_snapshot_has_the_local_counts(trained: tuple[Engine, object, object]) -> None:
    engine, local, spark = trained
    assert spark.manifest["engine"] == "spark" and local.manifest["engine"] == "local"
    a, b = local.models["covisit"], spark.models["covisit"]
    assert a.item_ids_ == b.item_ids_
    assert a.counts().nnz > 1000 and (a.counts() != b.counts()).nnz == 0  # every pair, to the bit
    assert np.array_equal(a.item_weight_, b.item_weight_)
    assert a.tails_ == b.tails_  # what the next event of each user pairs with
    t, u = local.models["trending"], spark.models["trending"]
    assert t.t_ref_ == u.t_ref_ and t.item_ids_ == u.item_ids_
    # 2^x is Java's pow on Spark, numpy's exp2 here: equal to the last bit or two.
    np.testing.assert_allclose(u.reference_sums_, t.reference_sums_, rtol=1e-12, atol=0)
    assert [x for x, _ in t.recommend([], k=20)] == [x for x, _ in u.recommend([], k=20)]
    als = spark.models["als"]
    assert als.item_factors_.shape == local.models["als"].item_factors_.shape and np.abs(als.item_factors_).sum() > 0


def test_spark_read_holds_out_the_same_users_and_rows(trained: tuple[Engine, object, object]) -> None:
    engine, _, _ = trained
    spark = training_engine(SPARK, engine.store, engine.model_dir)
    polarities = engine.states.signals.polarities
    mine, theirs = LocalTraining().read(engine.store.events, polarities), spark.read(engine.store.events, polarities)
    try:
        assert len(mine) == len(theirs) and sorted(mine.user_ids) == sorted(theirs.user_ids)
        assert {e.event_id for e in mine.texts} == {e.event_id for e in theirs.texts}
        held, their_held = mine.holdout(30, 3), theirs.holdout(30, 3)
        assert held.targets == their_held.targets and held.kept == their_held.kept and len(held.targets) == 30
        assert held.times == their_held.times
        assert mine.latest(REFERENCE_TIME, 0.0) == theirs.latest(REFERENCE_TIME, 0.0)
    finally:
        theirs.close()


def test_a_running_engine_adopts_the_spark_snapshot(trained: tuple[Engine, object, object],
                                                     tmp_path: Path) -> None:
    engine, local, spark = trained
    serving = Engine.open(engine.store.url)  # another process's engine on the same store and model directory
    try:
        serving.adopt(local.version)  # serving the local snapshot when the Spark one is written
        assert serving.snapshot is not None and serving.snapshot.version == local.version
        serving.sync()  # what a service's syncer runs every second
        assert serving.snapshot is not None and serving.snapshot.version == spark.version
        assert serving.snapshot.manifest["engine"] == "spark"
        user = next(iter(spark.models["covisit"].tails_))
        recs = serving.recommend(user, k=10)
        assert len(recs) == 10 and all(r.reasons for r in recs)
    finally:
        serving.close()


def test_a_running_service_adopts_what_the_spark_cli_trains(tmp_path: Path) -> None:
    """The whole path an operator takes: ``liverec serve`` on a store, then ``liverec train --engine
    spark`` from another process; the service moves to the Spark snapshot and serves from it."""
    import subprocess
    import sys
    import time

    import httpx

    from tests.service._server import Server, trained_store

    world = build_demo_world(seed=11, now=REFERENCE_TIME, n_items=280, n_users=30)
    store = trained_store(tmp_path, world)  # trained by the local engine
    server = Server(tmp_path, store, sync_interval=0.5)
    try:
        server.wait_healthy()
        served = httpx.get(f"{server.base}/healthz").json()["model_version"]
        assert served is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")} | {"HF_HUB_OFFLINE": "1"}
        train = subprocess.run([sys.executable, "-m", "liverec.cli", "train", "--store", store, "--engine", "spark",
                                "--master", "local[2]"], capture_output=True, text=True, env=env, timeout=600)
        assert train.returncode == 0, train.stdout + train.stderr
        trained = Engine.open(store, create=False)
        try:
            assert trained.snapshot is not None and trained.snapshot.manifest["engine"] == "spark"
            spark_version = trained.snapshot.version
        finally:
            trained.close()
        assert spark_version != served
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.base}/healthz").json()["model_version"] != spark_version:
            assert time.monotonic() < deadline, "the service did not adopt the Spark snapshot within 30 s"
            time.sleep(0.2)
        user = world.events[-1].user_id
        answer = httpx.get(f"{server.base}/users/{user}/recommendations", params={"k": 10})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == spark_version and len(body["items"]) == 10
        assert all(item["reasons"] for item in body["items"])
    finally:
        server.stop()


@pytest.mark.services
def test_jdbc_reads_the_postgresql_log_as_the_store_does(postgres_url: str) -> None:
    from liverec.training.spark.session import POSTGRES_JDBC_JARS

    if not any(p.exists() for p in POSTGRES_JDBC_JARS):
        pytest.skip("the PostgreSQL JDBC driver is not installed (make spark installs libpostgresql-jdbc-java)")
    world = build_demo_world(seed=3, now=REFERENCE_TIME, n_items=280, n_users=12)
    engine = Engine.open(postgres_url)
    try:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        spark = training_engine(SPARK, engine.store, engine.model_dir)
        polarities = engine.states.signals.polarities
        mine, theirs = LocalTraining().read(engine.store.events, polarities), spark.read(engine.store.events,
                                                                                        polarities)
        try:
            assert len(theirs) == len(mine) == len(world.events)
            held, their_held = mine.holdout(5, 0), theirs.holdout(5, 0)
            assert held.targets == their_held.targets and held.kept == their_held.kept
            assert held.times == their_held.times
        finally:
            theirs.close()
    finally:
        engine.close()


def test_cli_refuses_bad_spark_options(tmp_path: Path) -> None:
    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["train", "--store", store, "--engine", "spark"])
    assert result.exit_code == 2 and "no store" in result.output and result.output.count("\n") == 1
    world = build_demo_world(seed=3, now=REFERENCE_TIME, n_items=280, n_users=12)
    engine = Engine.open(f"sqlite:///{tmp_path / 'w.db'}")
    engine.ingest_items(world.items)
    engine.ingest_events(world.events)
    engine.close()
    store = f"sqlite:///{tmp_path / 'w.db'}"
    for args, named in ((["--engine", "hadoop"], "training.engine"), (["--conf", "spark.executor.memory"], "--conf"),
                        (["--source", "csv:/x"], "training.source")):
        result = runner.invoke(app, ["train", "--store", store, *args])
        assert result.exit_code == 2, result.output
        assert named in result.output and result.output.count("\n") == 1


def test_export_events_writes_the_log_in_order(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    world = build_demo_world(seed=3, now=REFERENCE_TIME, n_items=280, n_users=12)
    engine = Engine.open(f"sqlite:///{tmp_path / 'w.db'}")
    engine.ingest_items(world.items)
    engine.ingest_events(world.events)
    engine.close()
    out = tmp_path / "events.parquet"
    result = CliRunner().invoke(app, ["export-events", "--store", f"sqlite:///{tmp_path / 'w.db'}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    assert table["seq"] == list(range(1, len(world.events) + 1))
    assert table["ts"] == sorted(table["ts"]) and set(table["event_id"]) == {e.event_id for e in world.events}


def test_item_texts_the_cache_lacks_are_encoded_on_spark(trained: tuple[Engine, object, object]) -> None:
    from liverec.text.cache import CachedEncoder
    from liverec.text.encoders import get_encoder
    from liverec.training.spark import encode_catalog

    engine, _, _ = trained
    cached = CachedEncoder(get_encoder(engine.settings.encoder), engine.store.vectors)
    items = list(engine.store.catalog.all())[:40]
    keys = [cached.key(item.text) for item in items]
    before = engine.store.vectors.get_many(cached.name, keys)
    assert len(before) == len(set(keys))
    assert engine.store.vectors.delete(keys) == len(set(keys))  # as if the catalog were bulk-loaded
    assert encode_catalog(engine.store, SPARK) == len(set(keys))
    after = engine.store.vectors.get_many(cached.name, keys)
    for key in set(keys):  # the executors' encoder is the driver's: the same vectors
        np.testing.assert_allclose(after[key], before[key], atol=1e-5)
    assert encode_catalog(engine.store, SPARK) == 0  # the cache honoured: nothing encoded twice


def test_review_texts_the_cache_lacks_are_encoded_on_spark_before_their_polarities(tmp_path: Path) -> None:
    """A log loaded around the engine has reviews whose vectors the cache lacks: Spark training encodes
    them on the executors before the driver reads their polarities, and the polarities are the ones
    the local engine computes."""
    from liverec.core.types import Event, EventType

    world = build_demo_world(seed=13, now=REFERENCE_TIME, n_items=200, n_users=20)
    engine = Engine.open(f"sqlite:///{tmp_path}/reviews.db")
    try:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        words = ["broke after a week, do not buy", "exactly what I needed, works great",
                 "arrived late and scratched", "sturdy, light and well made"]
        reviews = [Event.create(f"u-review-{n}", EventType.REVIEW, world.items[n].item_id, text=text,
                                timestamp=REFERENCE_TIME - 3600 + n) for n, text in enumerate(words)]
        engine.ingest_events(reviews)
        cached = engine.items.space.encoder
        keys = [cached.key(text) for text in words]
        before = engine.store.vectors.get_many(cached.name, keys)
        assert len(before) == len(keys)  # the live engine encoded them as they came
        expected = engine.states.signals.polarities(reviews)
        assert engine.store.vectors.delete(keys) == len(keys)  # as if the log were bulk-loaded
        spark = training_engine(SPARK, engine.store, engine.model_dir)
        steps: list[tuple[str, object]] = []  # what Spark training did, in order
        read, encode = spark.read, spark.encode_texts

        def recording_read(events, polarities, through=None):  # type: ignore[no-untyped-def]
            def seen(batch):  # type: ignore[no-untyped-def]
                found = polarities(batch)
                steps.append(("polarities", dict(found)))
                return found

            return read(events, seen, through)

        def recording_encode(texts, space):  # type: ignore[no-untyped-def]
            done = encode(texts, space)
            steps.append(("encoded", done))
            return done

        spark.read = recording_read  # type: ignore[method-assign]
        spark.encode_texts = recording_encode  # type: ignore[method-assign]
        engine.models.engine = spark
        engine.train()
        # the four reviews encoded first, then their polarities read, then the (cached) catalog
        assert [kind for kind, _ in steps] == ["encoded", "polarities", "encoded"]
        assert steps[0][1] == len(keys) and steps[2][1] == 0
        # the driver still held them in memory, so only the executors can have written them back
        after = engine.store.vectors.get_many(cached.name, keys)
        assert set(after) == set(keys)
        for key in keys:
            np.testing.assert_allclose(after[key], before[key], atol=1e-5)
        got = steps[1][1]
        assert isinstance(got, dict) and {k: got.get(k) for k in expected} == pytest.approx(expected)
    finally:
        engine.close()


def test_spark_reads_an_export_as_learning_does_without_quarantine_and_duplicates(tmp_path: Path) -> None:
    """A raw export (``parquet:``) holds a bot's clicks, double submits and repeated showings;
    training on Spark must drop exactly what the local engine's clean log drops."""
    from liverec.core.types import Event, EventType
    from liverec.training.spark.source import export_events

    world = build_demo_world(seed=3, now=REFERENCE_TIME, n_items=280, n_users=12)
    engine = Engine.open(f"sqlite:///{tmp_path / 'dirty.db'}")
    try:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        end = max(e.timestamp for e in world.events)
        item = world.items[0].item_id
        engine.ingest_events([Event(f"bot-{n}", "bot", EventType.CLICK, item, timestamp=end + n * 0.1)
                              for n in range(200)])
        doubles = [Event(f"{e.event_id}-again", e.user_id, e.type, e.item_id, e.value, e.text, e.timestamp + 1.0,
                         e.session_id) for e in world.events[::50]]
        engine.ingest_events(doubles)
        reader = world.events[0].user_id  # one item shown to a person three times a second apart: three showings
        showings = [Event(f"shown-{n}", reader, EventType.IMPRESSION, item, timestamp=end + 60 + n) for n in range(3)]
        engine.ingest_events(showings)
        assert [q.key for q in engine.quarantined("user")] == ["bot"]
        export = tmp_path / "raw.parquet"
        export_events(engine.store.events.all(), export)  # the raw log: the bot and the doubles in it
        settings = Settings(training={"engine": "spark", "master": "local[2]", "source": f"parquet:{export}"})
        spark = training_engine(settings, engine.store, engine.model_dir)
        learned = engine.models.events
        polarities = engine.states.signals.polarities
        mine, theirs = LocalTraining().read(learned, polarities), spark.read(learned, polarities)
        try:
            kept = {e.event_id for e in learned.all()}
            assert {e.event_id for e in showings} <= kept  # impressions are never duplicates, on either engine
            assert kept <= {e.event_id for e in [*world.events, *showings]} and len(kept) > 0.95 * len(world.events)
            assert len(theirs) == len(mine) == len(kept)
            assert sorted(theirs.user_ids) == sorted(mine.user_ids) and "bot" not in theirs.user_ids
        finally:
            theirs.close()
    finally:
        engine.close()


def test_the_harness_liverec_spark_system_trains_on_spark_and_ranks() -> None:
    """``liverec evaluate --systems liverec,liverec-spark`` pairs the two engines on one split (the
    NDCG parity of issue 18): the variant trains on Spark, on --config's training table if given."""
    from liverec.evaluation.systems import build, grid_of

    world = build_demo_world(seed=5, now=REFERENCE_TIME, n_items=300, n_users=40)
    system = build("liverec-spark", grid_of("liverec-spark")[0],
                   engine={"training": {"conf": {"spark.sql.shuffle.partitions": "2"}}})
    try:
        system.fit(world.items, world.events)
        snapshot = system.engine.snapshot  # type: ignore[attr-defined]
        assert snapshot is not None and snapshot.manifest["engine"] == "spark"
        users = sorted({e.user_id for e in world.events})[:5]
        lists = system.recommend(users, 10)
        assert all(len(lists[u]) == 10 for u in users)
    finally:
        system.close()
