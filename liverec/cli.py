"""The ``liverec`` command line.

Every command takes ``--store URL`` (default: ``sqlite:///liverec.db`` in the working
directory). A caller's mistake exits with code 2 and one line on stderr.

Only ``ingest`` and ``demo`` create a store that is not there; ``serve`` and ``keys create`` do
with ``--create``; every other command refuses a store that does not exist, creating nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402
from typer.core import TyperCommand, TyperGroup  # noqa: E402

from liverec.core.errors import InvalidInputError, LiveRecError, NotFoundError  # noqa: E402
from liverec.core.redact import redact  # noqa: E402
from liverec.core.types import Recommendation  # noqa: E402


def _plain_flags(params: list[Any]) -> list[Any]:
    # typer 0.29 shows every flag's type, `--help <bool>` included, as if it took a value.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class _Typer(typer.Typer):
    """A typer app whose commands and groups show flags as plain flags (``--json``, ``--serve/--no-serve``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=_Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _Typer(
    help="liverec: a real-time, language-aware recommender engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")

StoreOpt = Annotated[str, typer.Option("--store", help="Store URL: sqlite:///path.db or memory://.")]
DEFAULT_STORE = "sqlite:///liverec.db"
KOpt = Annotated[int, typer.Option("--k", "-k", help="How many items to return.")]
NO_STORE_HINT = "create one with `liverec ingest` or `liverec demo`"
# ingest and demo are plainly writes, so they create their store; serve and keys create would start an
# empty store from a mistyped URL (and the service take writes into it), so they create only with --create.
CreateOpt = Annotated[bool, typer.Option("--create", help="Start a new, empty store if there is none at --store.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LlmOpt = Annotated[str | None, typer.Option(
    "--llm", help="A language model for summaries and explanations: a local .gguf file (llama.cpp) or an "
                  "OpenAI-compatible server's URL. Never downloaded; needs pip install 'liverec[llm]'.")]
LlmModelOpt = Annotated[str | None, typer.Option(
    "--llm-model", help="The model's name at the --llm server (default: the first it lists).")]


@contextmanager
def _errors() -> Iterator[None]:
    """Turn a liverec error into exit code 2 with one line naming the problem."""
    try:
        yield
    except LiveRecError as exc:
        # Plain text, one line: rich would wrap long messages and read "[...]" in ids as markup.
        typer.echo("error: " + redact(" ".join(str(exc).split())), err=True)
        raise typer.Exit(2) from None


def _open(store: str, *, create: bool, flag: bool = False) -> Any:
    """The store at ``store``; unless ``create``, only one that exists (a mistyped URL must not
    become a new, empty store). ``flag``: the command takes ``--create``, and the refusal says so."""
    from liverec.storage import open_store

    try:
        return open_store(store, create=create)
    except NotFoundError as exc:
        if exc.kind != "store":
            raise
        hint = NO_STORE_HINT + (", or pass --create to start an empty one" if flag else "")
        raise NotFoundError(f"{exc}; {hint}", kind="store", key=exc.key) from None


def _engine(store: str, *, create: bool = False) -> Any:
    from liverec.engine import Engine

    return Engine(_open(store, create=create))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def _show(recs: list[Recommendation], engine: Any, title: str, as_json: bool, meta: dict[str, Any],
          order: str | None = None) -> None:
    """Print ``recs`` as a table, or as JSON with ``meta`` (what was asked: the user, item or query).

    ``order`` says why the list is not in score order, shown under a table whose scores do not descend.
    """
    if as_json:
        console.print_json(json.dumps({**meta, "items": [r.to_dict() for r in recs]}, ensure_ascii=False))
        return
    scores = [r.score for r in recs]
    caption = order if order and scores != sorted(scores, reverse=True) else None
    table = Table(title=title, caption=caption, show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("title", overflow="fold", max_width=60)  # wrapped, never cut: CJK titles have no spaces
    table.add_column("category")
    table.add_column("score", justify="right")
    table.add_column("why")
    for n, r in enumerate(recs, 1):
        item = engine.items.find(r.item_id)
        table.add_row(
            str(n), r.item_id, (item.title if item else "?"), ", ".join(item.categories) if item else "",
            f"{r.score:.3f}", "; ".join(x.text for x in r.reasons),
        )
    console.print(table)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _chunked(progress: Progress, label: str, rows: list[T], size: int, fn: Callable[[list[T]], Any]) -> None:
    task = progress.add_task(label, total=len(rows))
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        fn(chunk)
        progress.update(task, advance=len(chunk))


@app.command()
def ingest(
    path: Annotated[Path | None, typer.Argument(
        help="A .jsonl, .csv or .tsv file (optionally .gz) of items or events.", show_default=False)] = None,
    kind: Annotated[str, typer.Option("--kind", help="What the file holds: items or events.")] = "events",
    store: StoreOpt = DEFAULT_STORE,
    schema: Annotated[str | None, typer.Option(
        "--schema", help="Print the JSON Schema of one record, items or events, and exit.", show_default=False,
    )] = None,
) -> None:
    """Ingest items or events from a JSONL or CSV file (all rows are validated first).

    Every field, its limits and examples: docs/ingest.md; as a JSON Schema: --schema items|events.
    """
    from liverec.core.errors import ConflictError, InvalidInputError
    from liverec.core.types import Event, Item, check_event_times
    from liverec.datasets.files import read_records

    with _errors():
        if schema is not None:
            from liverec.service.formats import ingest_schema

            typer.echo(json.dumps(ingest_schema(schema), indent=2, ensure_ascii=False))
            return
        if path is None:
            raise InvalidInputError("give a file to ingest (or --schema items|events)", field="path")
        if kind not in ("items", "events"):
            raise InvalidInputError(f"--kind {kind!r} must be items or events", field="kind", value=kind)
        build: Callable[[dict[str, Any]], Any] = Item.from_dict if kind == "items" else Event.from_dict
        rows, lines = [], []
        stamped: set[str] = set()  # events without a time, stamped now: a re-run matches them without one
        for line_no, record in read_records(path):
            try:
                rows.append(build(record))
            except LiveRecError as exc:
                raise InvalidInputError(f"{path}:{line_no}: {exc}") from None
            lines.append(line_no)
            if kind == "events" and record.get("timestamp") is None:
                stamped.add(rows[-1].event_id)
        engine = _engine(store, create=True)
        # The whole file is checked before the first chunk is stored: all rows or none.
        known = set(engine.items.ids())
        seen: set[str] = set()
        settings, now = engine.settings, time.time()
        for row, line_no in zip(rows, lines, strict=True):
            if kind == "items":
                if row.item_id in seen:
                    raise InvalidInputError(f"{path}:{line_no}: item {row.item_id!r} appears twice in the file")
                seen.add(row.item_id)
                continue
            if row.item_id is not None and row.item_id not in known:
                raise InvalidInputError(f"{path}:{line_no}: event refers to unknown item {row.item_id!r}")
            try:  # the engine checks times per chunk, after earlier chunks are stored
                check_event_times([row], floor=settings.timestamp_floor, future_skew=settings.timestamp_future_skew,
                                  now=now)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}:{line_no}: {exc}", field=exc.field, value=exc.value) from None
        if kind == "events":
            try:
                engine.check_event_ids(rows, stamped=stamped)
            except ConflictError as exc:
                where = ",".join(str(n) for row, n in zip(rows, lines, strict=True) if row.event_id == exc.key)
                raise ConflictError(f"{path}:{where}: {exc}", field=exc.field, key=exc.key) from None
        with _progress() as progress:
            if kind == "items":
                _chunked(progress, "ingesting items", rows, 512, engine.ingest_items)
            else:
                _chunked(progress, "ingesting events", rows, 5000,
                         lambda chunk: engine.ingest_events(chunk, stamped=stamped))
        console.print(f"ingested {len(rows)} {kind} into {redact(store)}")


@app.command()
def consume(
    store: Annotated[str | None, typer.Option("--store", help="Store URL (default: settings, else sqlite:///liverec.db)"
                                              "; it must exist and hold the items the events name.")] = None,
    url: Annotated[str, typer.Option("--url", help="The NATS server (needs pip install 'liverec\\[nats]').")] = (
        "nats://127.0.0.1:4222"),
    subject: Annotated[str, typer.Option("--subject", help="The subject events are published on.")] = (
        "liverec.events"),
    stream: Annotated[str, typer.Option("--stream", help="The JetStream stream that keeps them.")] = "LIVEREC",
    durable: Annotated[str, typer.Option("--durable", help="This consumer's name in the stream; a restart resumes "
                                         "where it stands.")] = "liverec",
    batch: Annotated[int, typer.Option("--batch", help="Messages fetched and stored in one commit.")] = 1000,
    create_stream: Annotated[bool, typer.Option("--create-stream", help="Create the stream (taking --subject and "
                                                "its dead-letter subject) if it does not exist.")] = False,
    dead_letter: Annotated[str | None, typer.Option("--dead-letter", help="Where poison messages go, with the "
                                                    "reason (default: <subject>.dlq).", show_default=False)] = None,
    ack_wait: Annotated[float, typer.Option("--ack-wait", help="Seconds before the messages of a consumer that died "
                                            "are redelivered.")] = 30.0,
    max_events: Annotated[int | None, typer.Option("--max-events", help="Stop after this many events were stored "
                                                   "or found stored (tests, benchmarks).", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The service's TOML settings: its \\[engine] table "
                                                "and user_id_secret are used.")] = None,
) -> None:
    """Store events from a NATS JetStream stream as they arrive, until SIGTERM or Ctrl-C (both finish the batch).

    A message holds an event, a list of events, or a POST /events body. docs/streams.md says all it promises.

    Each message is acknowledged only after its events are durably stored; redelivered, it stores nothing twice.

    A message that cannot be stored goes to the dead-letter subject with the reason; a storage failure is retried.
    """
    import logging

    from liverec.engine import Engine
    from liverec.service.privacy import Pseudonymizer
    from liverec.service.settings import load_settings
    from liverec.streams import ConsumeStats, open_source, stop_on_signals
    from liverec.streams import consume as run_consumer

    logger = logging.getLogger("liverec.streams")
    if console.is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False)
    else:  # a service's log: plain lines on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    with ExitStack() as opened, _errors():
        opened.callback(logger.removeHandler, handler)
        opened.callback(logger.setLevel, level)
        for name, value in (("batch", batch), ("max_events", max_events)):
            if value is not None and value < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {value}", field=name,
                                        value=value)
        settings = load_settings(config, overrides={"store": store})
        pseudonyms = Pseudonymizer(settings.user_id_secret)
        engine = Engine(_open(settings.store, create=False), settings.engine_settings)
        opened.callback(engine.close)
        source = open_source(url, subject=subject, stream=stream, durable=durable, create_stream=create_stream,
                             dead_letter=dead_letter, ack_wait=ack_wait, batch=batch)
        opened.callback(source.close)
        shown = f"{source.name} into {redact(settings.store)}"
        status = opened.enter_context(console.status(f"consuming {shown}")) if console.is_terminal else None
        last = [time.monotonic()]

        def progress(stats: ConsumeStats) -> None:
            line = (f"{stats.events:,} events ({stats.rate:,.0f}/s): {stats.stored:,} stored, {stats.duplicates:,} "
                    f"already stored, {stats.dead_letters:,} dead-lettered, {stats.retries:,} retried")
            if status is not None:
                status.update(f"consuming {shown}: {line}")
            elif time.monotonic() - last[0] >= 10:
                last[0] = time.monotonic()
                logger.info("%s", line)

        logger.info("consuming %s", shown)
        with stop_on_signals() as stop:
            stats = run_consumer(engine, source, batch=batch, max_events=max_events, stop=stop, on_progress=progress,
                                 user_id=pseudonyms.user_id if pseudonyms.enabled else None)
    console.print(f"consumed {stats.summary()}", highlight=False, soft_wrap=True)


@app.command(name="train")
def train_cmd(
    store: Annotated[str | None, typer.Option("--store", help="Store URL (default: settings, else "
                                              "sqlite:///liverec.db).")] = None,
    engine_name: Annotated[str | None, typer.Option("--engine", help="Where the batch stages run: local (this "
                                                    "process) or spark (needs pip install 'liverec\\[spark]' and "
                                                    "Java 17). Default: settings, else local.",
                                                    show_default=False)] = None,
    master: Annotated[str | None, typer.Option("--master", help="Spark's master: local[2], spark://host:7077, yarn, "
                                               "k8s://… (default: settings, else local[2]).",
                                               show_default=False)] = None,
    conf: Annotated[list[str] | None, typer.Option("--conf", help="A Spark setting KEY=VALUE (repeatable), "
                                                   "e.g. spark.executor.memory=8g.", show_default=False)] = None,
    source: Annotated[str | None, typer.Option("--source", help="Where Spark reads the events: auto (JDBC from "
                                               "a PostgreSQL store, else a Parquet export), jdbc, or parquet:PATH "
                                               "(a `liverec export-events` file).", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The service's TOML settings: its \\[engine] "
                                                "table (and \\[engine.training]) are used.")] = None,
) -> None:
    """Train every model on the event log, tune the scorer, and swap in a new snapshot.

    With --engine spark, co-visitation, trending, ALS and item texts the vector cache lacks are computed on Spark;
    the snapshot is the one the local engine writes, and a running service adopts it (docs/deployment.md).
    """
    from dataclasses import replace

    from liverec.engine import Engine
    from liverec.service.settings import load_settings

    with _errors():
        settings = load_settings(config, overrides={"store": store})
        training = dict(settings.engine_settings.training)
        for key, value in (("engine", engine_name), ("master", master), ("source", source)):
            if value is not None:
                training[key] = value
        if conf:
            pairs = dict(training.get("conf", {}))
            for entry in conf:
                key, sep, value = entry.partition("=")
                if not sep or not key.strip():
                    raise InvalidInputError(f"--conf takes KEY=VALUE, got {entry!r}", field="conf", value=entry)
                pairs[key.strip()] = value
            training["conf"] = pairs
        if master is not None or conf or source is not None:
            training.setdefault("engine", "spark")
        engine_settings = replace(settings.engine_settings, training=training)
        opened = _open(settings.store, create=False)
        if training.get("engine") == "spark":
            from liverec.training.spark import encode_catalog

            # Before the engine opens (it encodes any item the cache lacks, here, one at a time).
            with console.status("encoding item texts the vector cache lacks on Spark"):
                encoded = encode_catalog(opened, engine_settings)
            if encoded:
                console.print(f"encoded {encoded} item texts on Spark")
        engine = Engine(opened, engine_settings)
        try:
            report = _train(engine)
        finally:
            engine.close()
        console.print_json(json.dumps(report.to_dict()))


@app.command(name="export-events")
def export_events_cmd(
    out: Annotated[Path, typer.Option("--out", help="The Parquet file to write (replaced when it exists).")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Write the event log to one Parquet file, in log order, for Spark (liverec train --source parquet:PATH)."""
    from liverec.training.spark.source import export_events

    with _errors():
        opened = _open(store, create=False)
        try:
            with console.status(f"exporting events to {out}"):
                count = export_events(opened.events.all(), out)
        finally:
            opened.close()
        console.print(f"exported {count} events to {out}")


def _train(engine: Any) -> Any:
    with _progress() as progress:
        task = progress.add_task("training", total=100)

        def step(message: str, fraction: float) -> None:
            progress.update(task, completed=int(fraction * 100), description=f"training: {message}")

        return engine.train(progress=step)


@app.command()
def recommend(
    user_id: Annotated[str, typer.Argument(help="The user to recommend for.")],
    k: KOpt = 10,
    category: Annotated[list[str] | None, typer.Option(help="Only items in this category (repeatable).")] = None,
    exclude_category: Annotated[list[str] | None, typer.Option(help="Never items in this category.")] = None,
    diversity: Annotated[float | None, typer.Option(help="MMR diversity from 0 (relevance only) to 1.")] = None,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Allow items the user acted on.")] = False,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Recommend items for a user, with the reasons behind each."""
    with _errors():
        engine = _engine(store)
        filters = {
            "exclude_seen": not include_seen,
            "include_categories": tuple(category or ()),
            "exclude_categories": tuple(exclude_category or ()),
        }
        recs = engine.recommend(user_id, k=k, filters=filters, diversity=diversity)
        try:
            engine.state(user_id)
            new_visitor = False
        except NotFoundError:
            new_visitor = True
            typer.echo(f"{user_id} has no events yet: showing what a new visitor sees", err=True)
        snapshot = engine.snapshot
        meta = {"user_id": user_id, "new_visitor": new_visitor,
                "model_version": snapshot.version if snapshot is not None else None}
        # MMR (and an interest's reserved place) may put an item above a better-scored one.
        _show(recs, engine, f"recommendations for {user_id}", as_json, meta,
              order="ordered for diversity (MMR), not by score alone")


@app.command()
def similar(
    item_id: Annotated[str, typer.Argument(help="The item to find neighbours of.")],
    k: KOpt = 10,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Items similar to an item (text neighbours fused with co-visitation)."""
    with _errors():
        engine = _engine(store)
        _show(engine.similar_items(item_id, k=k), engine, f"similar to {item_id}", as_json, {"item_id": item_id})


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Free text in English or Chinese.")],
    k: KOpt = 10,
    user: Annotated[str | None, typer.Option("--user", help="Record the search as this user's event.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Semantic, cross-lingual search over item texts."""
    with _errors():
        engine = _engine(store)
        _show(engine.search(query, k=k, user_id=user), engine, f"search: {query}", as_json, {"query": query},
              order="languages that match about equally take turns at the top, not by score alone")


@app.command()
def interests(
    user_id: Annotated[str, typer.Argument(help="The user whose interests to show.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many interest tags to show.")] = 10,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
    summary: Annotated[bool, typer.Option("--summary", help="Also write a sentence or two on what the user is "
                                                           "into: by --llm's model, else from a template.")] = False,
    llm: LlmOpt = None,
    llm_model: LlmModelOpt = None,
) -> None:
    """A user's interest tags with their decayed weights (and, with --summary, a summary)."""
    with _errors():
        engine = _engine(store)
        tags = engine.interests(user_id, k=k)
        text = _summary(engine, user_id, llm, llm_model) if summary else None
        if as_json:
            body: dict[str, Any] = {"interests": [{"tag": t, "weight": w} for t, w in tags]}
            if text is not None:
                body["summary"] = text.to_dict()
            console.print_json(json.dumps(body, ensure_ascii=False))
            return
        table = Table(title=f"interests of {user_id}")
        table.add_column("tag")
        table.add_column("weight", justify="right")
        for t, w in tags:
            table.add_row(t, f"{w:.2f}")
        console.print(table)
        if text is not None:
            console.print(f"{text.text}\n[dim]({text.source}{f' by {text.model}' if text.model else ''}, "
                          f"{text.prompt})[/]", highlight=False)


def _summary(engine: Any, user_id: str, llm: str | None, model: str | None) -> Any:
    """The user's summary, generated now by ``llm`` (waiting for it) or the template."""
    from liverec.generation import GenerationSettings, Narrator

    settings = GenerationSettings(llm=llm, model=model)
    narrator = Narrator(engine, settings.open(), settings)
    try:
        return narrator.refresh_summary(user_id)
    finally:
        narrator.close()


@app.command()
def forget(
    user_id: Annotated[str, typer.Argument(help="The user to erase, as the service is called with it.")],
    store: StoreOpt = DEFAULT_STORE,
    config: Annotated[Path | None, typer.Option(
        "--config", help="The service's TOML settings: its user_id_secret and feedback_file are used.")] = None,
) -> None:
    """Erase a user's events, state and served lists (the right to be forgotten).

    When the service stores pseudonyms (user_id_secret in --config or LIVEREC_USER_ID_SECRET), the
    id is pseudonymised the same way, so the raw id the service is called with erases the user.
    A service running on the same store drops its copy of the user's live state and served models
    within its sync_interval (1 s); DELETE /users/{id} has it gone before the answer."""
    from liverec.service.privacy import Pseudonymizer
    from liverec.service.settings import load_settings

    with _errors():
        settings = load_settings(config, overrides={"store": store})
        stored = Pseudonymizer(settings.user_id_secret).user_id(user_id)
        engine = _engine(store)
        result = engine.forget_user(stored)
        # The lists served to them, as DELETE /users/{id} does.
        with engine.store.feedback_log(Path(settings.feedback_file) if settings.feedback_file else None) as feedback:
            served = feedback.forget_user(stored)
        state = "its live state was dropped" if result.state_removed else "no live state was held"
        console.print(f"erased {_count(result.events_removed, 'event')} and {_count(served, 'served list')} of "
                      f"{user_id}; {state}")


@app.command()
def demo(
    store: Annotated[str, typer.Option("--store", help="Store URL to build the demo world into.")] = (
        "sqlite:///demo.db"
    ),
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Then serve the demo world over HTTP (Ctrl-C stops).")
    ] = True,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 7,
    items: Annotated[int, typer.Option(help="Items in the generated catalog.")] = 2400,
    users: Annotated[int, typer.Option(help="Simulated users.")] = 400,
    user: Annotated[str | None, typer.Option(help="The simulated user to narrate (default: a camera fan).")] = None,
    llm: LlmOpt = None,
    llm_model: LlmModelOpt = None,
) -> None:
    """Build the bilingual demo world, train, and show one user's interest shift in real time."""
    from liverec.demo_story import run_demo

    with _errors():
        run_demo(
            store=store, seed=seed, n_items=items, n_users=users, user_id=user,
            console=console, progress=_progress, train=_train,
        )
    if serve:
        if llm is None and not os.environ.get("LIVEREC_GENERATION"):
            console.print("[dim]Generated summaries and explanations are off: `make demo LLM=/path/to/model.gguf` "
                          "(a local instruction-tuned GGUF) or `LLM=http://host:8080/v1` turns them on.[/]")
        _serve({"store": store, "host": host, "port": port}, config=None, create=True, llm=(llm, llm_model))


@app.command()
def synth(
    store: Annotated[str, typer.Option("--store", help="Store URL to write the world into (created if missing).")],
    items: Annotated[int, typer.Option(help="Items in the catalog.")] = 100_000,
    events: Annotated[int, typer.Option(help="Events in the stream.")] = 1_000_000,
    users: Annotated[int | None, typer.Option(help="Users (default: one per 20 events).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same world.")] = 0,
    days: Annotated[float, typer.Option(help="Days the stream spans (it ends at 2026-01-01).")] = 60.0,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Train on the world once it is stored.")] = False,
) -> None:
    """Stream a seeded synthetic world of any size into a store: bilingual items over 84 categories,
    events with power-law popularity, sessions and drifting interests (for scale tests)."""
    from liverec.datasets.synthetic import ScaleSpec, load_world

    with _errors():
        spec = ScaleSpec(items=items, events=events, users=users, seed=seed, days=days)
        engine = _engine(store, create=True)
        try:
            with _progress() as progress:
                tasks = {"items": progress.add_task("Items (encoded, indexed)", total=spec.items),
                         "events": progress.add_task("Events (stored, applied)", total=spec.events)}
                load_world(engine, spec, progress=lambda stage, done, total: progress.update(tasks[stage],
                                                                                              completed=done))
            console.print(f"Stored {_count(spec.items, 'item')} and {_count(spec.events, 'event')} "
                          f"of {_count(spec.n_users, 'user')} in {redact(store)}.")
            if train:
                _train(engine)
        finally:
            engine.close()


def _serve(overrides: dict[str, Any], config: Path | None, create: bool,
           llm: tuple[str | None, str | None] = (None, None), workers: int = 1) -> None:
    """Load settings (defaults ← TOML ← LIVEREC_* ← options), check exposure, then run uvicorn.
    ``llm`` (--llm, --llm-model) goes into the ``[generation]`` table, over what the file set.
    ``workers`` > 1 runs that many worker processes on the one port (:mod:`liverec.service.workers`)."""
    from dataclasses import replace

    from liverec.service.app import build_services, check_exposure, close_services, create_app
    from liverec.service.server import run
    from liverec.service.settings import load_settings

    with _errors():
        settings = load_settings(config, overrides=overrides)
        given = {name: value for name, value in zip(("llm", "model"), llm, strict=True) if value is not None}
        if given:
            settings = replace(settings, generation={**settings.generation, **given})
        _check_store(settings, create=create)  # first: a store that is not there is the first thing to fix
        with _key_store(settings.store, settings.keys_file, create=create, flag=True) as keys:
            check_exposure(settings, keys)
        if workers != 1:
            from liverec.service.workers import check_workers

            check_workers(workers, settings.store, settings.engine_settings.state_store)
    if workers != 1:
        _serve_workers(settings, workers, overrides, config, given)
        return
    with _errors():
        # Opened before uvicorn starts, so that a store or snapshot that cannot be opened is one
        # line and exit 2 here, not a traceback from the server's startup.
        services = build_services(settings)
    url = f"{'https' if settings.tls_cert else 'http'}://{settings.host}:{settings.port}"

    def ready() -> None:
        console.print(f"[bold green]liverec is serving {redact(settings.store)} at {url}[/]  (live page: {url}/ ; "
                      f"API docs: {url}/docs; Ctrl-C stops)", soft_wrap=True)

    try:
        run(create_app(on_ready=ready, services=services), settings)
    finally:
        close_services(services, engine=True)  # if the server never started, its lifespan did not


def _serve_workers(settings: Any, workers: int, overrides: dict[str, Any], config: Path | None,
                   generation: dict[str, Any]) -> None:
    """``serve --workers N``: N processes, each opening the service itself, on one socket."""
    from liverec.service.workers import serve_workers, worker_main

    url = f"{'https' if settings.tls_cert else 'http'}://{settings.host}:{settings.port}"
    with _errors():
        try:
            serve_workers(workers, settings.host, settings.port, worker_main, (config, overrides, generation),
                          on_ready=lambda: console.print(
                              f"[bold green]liverec is starting {workers} workers on {redact(settings.store)} at "
                              f"{url}[/] (each answers once its models are loaded; Ctrl-C stops)", soft_wrap=True))
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
                                    field="port", value=settings.port) from None


@app.command()
def serve(
    store: Annotated[str | None, typer.Option("--store", help="Store URL (default: settings, else "
                                              "sqlite:///liverec.db).")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1; any other needs API keys, and TLS "
                                             "or --behind-proxy).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="A TOML settings file.")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS.")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    behind_proxy: Annotated[bool | None, typer.Option("--behind-proxy", help="TLS ends at a proxy in front; "
                                                      "trust its X-Forwarded-* headers (trusted_proxies, default "
                                                      "127.0.0.1).")] = None,
    create: CreateOpt = False,
    llm: LlmOpt = None,
    llm_model: LlmModelOpt = None,
    workers: Annotated[int, typer.Option("--workers", help="API worker processes on the one port (default 1); "
                                         "more than 1 needs a store every process opens (sqlite or postgresql) "
                                         "and a shared state store ([engine] state_store = \"redis://…\").")] = 1,
) -> None:
    """Serve the engine over HTTP (settings: defaults, then --config TOML, then LIVEREC_* variables, then options)."""
    _serve({"store": store, "host": host, "port": port, "tls_cert": tls_cert, "tls_key": tls_key,
            "behind_proxy": behind_proxy}, config, create, llm=(llm, llm_model), workers=workers)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="The data set's directory.")],
    fmt: Annotated[str, typer.Option("--format", help="movielens, unisrec, mind or csv (items + events files).")],
    out: Annotated[Path, typer.Option("--out", help="Where results.json, results.md and the plots go.")],
    protocol: Annotated[str, typer.Option(help="Comma-separated: loo, temporal, replay, coldstart, noise (liverec "
                                          "on leave-one-out with noise injected, cleaning off and on).")] = "loo",
    systems: Annotated[str, typer.Option(help="Comma-separated: liverec, sasrec, gru4rec, rectools, als, pop, or "
                                         "an ablation liverec-no-text, -no-sequence, -one-interest, -linear, "
                                         "-no-RECALL (e.g. liverec-no-covisit), or liverec-spark (trained on "
                                         "Spark, paired against liverec).")] = (
        "liverec,als,pop"
    ),
    seed: Annotated[int, typer.Option(help="Seed of every system and of the bootstrap.")] = 0,
    cadence_days: Annotated[float, typer.Option(help="Replay: retrain every this many days of event time.")] = 7.0,
    replay_fraction: Annotated[float, typer.Option(help="Replay: the last share of events to replay.")] = 0.2,
    replay_max_events: Annotated[int | None, typer.Option(help="Replay: at most this many events.")] = None,
    peer_epochs: Annotated[int | None, typer.Option(help="Sequential peers (RecBole, RecTools): at most this many "
                                                    "epochs (default: early stopping decides).")] = None,
    peer_minutes: Annotated[float | None, typer.Option(help="Sequential peers (RecBole, RecTools): a training time "
                                                       "budget in minutes each; a peer it stops is reported as "
                                                       "under-trained.")] = None,
    noise: Annotated[str, typer.Option(help="The noise protocol's kinds, comma-separated: farm (a click farm), "
                                       "duplicates, spam (spam reviews).")] = "farm,duplicates,spam",
    config: Annotated[Path | None, typer.Option("--config", help="A TOML settings file: liverec's systems run with "
                                                "its \\[engine] table (not the replay protocol's engines).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed rows (counted in the report) "
                                           "instead of stopping at the first.")] = False,
) -> None:
    """Evaluate liverec against peers on a real data set, the same split for all; writes a report with CIs.

    Hyperparameters are chosen on validation, the test set is read once per run.

    RecBole's SASRec and GRU4Rec and RecTools' SASRec need their own environments (`make peers`); without them they
    are reported as not run. An ablation (liverec-no-text, ...) or liverec-spark is paired against the full liverec in
    the report.
    """
    from liverec.datasets.readers import read_dataset
    from liverec.evaluation.harness import Options
    from liverec.evaluation.harness import evaluate as run_evaluation
    from liverec.evaluation.report import write_report
    from liverec.service.settings import load_settings

    with _errors():
        options = Options(protocols=_csv(protocol), systems=_csv(systems), seed=seed, cadence_days=cadence_days,
                          replay_fraction=replay_fraction, replay_max_events=replay_max_events,
                          peer_epochs=peer_epochs, peer_minutes=peer_minutes, noise=_csv(noise),
                          engine=dict(load_settings(config).engine) if config else {})
        options.check()
        if not data.is_dir():
            raise InvalidInputError(f"{data}: no such directory", field="data", value=str(data))
        with console.status(f"reading {data} ({fmt})"):
            ds = read_dataset(data, fmt, skip_bad=skip_bad)
        console.print(f"{ds.name}: {len(ds.items):,} items, {len(ds.events):,} events"
                      + (f", {len(ds.skipped):,} bad rows skipped" if ds.skipped else ""))
        with _progress() as bars:
            tasks: dict[str, Any] = {}

            def progress(task: str, done: int, total: int) -> None:
                if task not in tasks:
                    tasks[task] = bars.add_task(task, total=total)
                bars.update(tasks[task], completed=done, total=total)

            runs = run_evaluation(ds, options, out, progress=progress, log=bars.console.print)
        files = write_report(runs, out, seed=seed)
    for run in runs:
        table = Table(title=f"{run.dataset} — {run.protocol}")
        for column in ("system", "Recall@10", "NDCG@10", "MRR@10"):
            table.add_column(column, justify="right" if column != "system" else "left")
        for s in run.systems:
            table.add_row(s.system, *(f"{s.mean(m):.4f}" for m in ("recall@10", "ndcg@10", "mrr@10")))
        for r in run.replay:
            table.add_row(f"replay {r.mode}", f"{r.hits.mean() if r.hits.size else 0:.4f}",
                          f"{r.ndcg.mean() if r.ndcg.size else 0:.4f}", "")
        console.print(table)
    console.print(f"report: {files['markdown']} (and results.json, {len(files) - 2} plots) in {out}")


keys_app = _Typer(help="API keys (stored as hashes beside the store; shown once when created).",
                  no_args_is_help=True)
app.add_typer(keys_app, name="keys")
KeysFileOpt = Annotated[Path | None, typer.Option(
    "--keys-file", help="A SQLite key database to use instead of the store's own (<db>.keys.db beside it).")]


@contextmanager
def _key_store(store: str, keys_file: str | Path | None, *, create: bool, flag: bool) -> Iterator[Any]:
    """The key store a service of ``store`` checks keys against: ``keys_file`` if given, else the
    store's own (``create`` and ``flag`` as for :func:`_open`); closed (with the store) on exit."""
    from liverec.storage import open_key_store

    with ExitStack() as opened:
        if keys_file:
            keys = open_key_store(keys_file)
        else:
            where = _open(store, create=create, flag=flag)
            opened.callback(where.close)
            keys = where.key_store()
        opened.callback(keys.close)
        yield keys


def _check_store(settings: Any, *, create: bool) -> None:
    """Open and close the store and its feedback log as the service will at startup: a bad
    ``--store`` (an unknown scheme, a path that cannot be created, unless ``create`` one that is
    not there) is then one line and exit 2 here, not a traceback from the server's startup and exit 3."""
    with ExitStack() as opened:
        where = _open(settings.store, create=create, flag=True)
        opened.callback(where.close)
        feedback = where.feedback_log(Path(settings.feedback_file) if settings.feedback_file else None)
        feedback.close()


@contextmanager
def _keyring(store: str, keys_file: Path | None, *, create: bool = False, flag: bool = False,
             reads: bool = False) -> Iterator[Any]:
    """:func:`_key_store` for the keys commands, which must write where a service will read;
    ``create``: a key file or store that is not there yet is created (``keys create`` only);
    ``reads``: the command only finds keys, so a store with none gets no key file."""
    from liverec.storage import locate
    from liverec.storage.memory_keys import MemoryKeyStore

    where = locate(store)
    if keys_file is None and not where.shared:
        raise InvalidInputError(f"a {redact(store)} store keeps no keys; give --keys-file or a sqlite:// --store",
                                field="store", value=store)
    if keys_file is not None and not create and not keys_file.exists():
        raise NotFoundError(f"no key file at {keys_file}", kind="keys", key=str(keys_file))
    if reads and keys_file is None and where.directory is not None and not any(
        path.exists() for suffix in (".keys.db", ".keys.json") if (path := where.side(suffix)) is not None
    ):
        _open(store, create=False, flag=flag).close()  # a store that is not there is still refused
        yield MemoryKeyStore()  # none was ever created: reading no keys writes no key file
        return
    with _key_store(store, keys_file, create=create, flag=flag) as keys:
        yield keys


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, read or admin (repeatable; admin: all).")],
    store: StoreOpt = DEFAULT_STORE,
    keys_file: KeysFileOpt = None,
    create: CreateOpt = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    with _errors():
        from liverec.storage.keys import check_name, check_scopes

        scopes = [part for value in scope for part in value.split(",") if part]
        check_name(name)
        check_scopes(scopes)  # a refused key creates no files
        # A named --keys-file is this command's own output; a store is only started with --create.
        with _keyring(store, keys_file, create=create or keys_file is not None, flag=True) as ring:
            token, key = ring.create(name, scopes)
    console.print(f"created key {key.key_id} ({name}; scopes: {', '.join(sorted(key.scopes))}). It is shown only once:")
    typer.echo(token)


@keys_app.command("list")
def keys_list(store: StoreOpt = DEFAULT_STORE, keys_file: KeysFileOpt = None) -> None:
    """List keys (ids, names, scopes; never the secrets)."""
    with _errors():
        with _keyring(store, keys_file, reads=True) as ring:
            keys = ring.list()
    table = Table(title=f"{len(keys)} API key(s)")
    for column in ("key id", "name", "scopes", "created"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.key_id, k.name, ", ".join(sorted(k.scopes)),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created)))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, store: StoreOpt = DEFAULT_STORE, keys_file: KeysFileOpt = None) -> None:
    """Revoke a key; a running service stops accepting it within a second."""
    with _errors():
        with _keyring(store, keys_file, reads=True) as ring:
            key = ring.revoke(key_id)
    console.print(f"revoked key {key.key_id} ({key.name})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
