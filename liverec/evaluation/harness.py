"""One evaluation run: read a data set, run every protocol for every system, write the report.

This is what ``liverec evaluate`` calls. Systems run one after another on the same plan (the
same split, the same candidate items, the same seen-item filtering); a peer that cannot run
here is reported with the reason instead of silently missing.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError, LiveRecError
from liverec.core.settings import Settings
from liverec.datasets.base import Dataset
from liverec.evaluation.metrics import KS, metric_table
from liverec.evaluation.noise import NOISE_DESCRIPTIONS, NOISE_KINDS, run_noise
from liverec.evaluation.protocols import PLANS, Plan, beyond_accuracy, run_system, score_lists
from liverec.evaluation.recbole_peers import PeerRun, peer_environment_problem, run_recbole, write_atomic_split
from liverec.evaluation.rectools_peers import rectools_environment_problem, run_rectools, write_rectools_split
from liverec.evaluation.replay import DAY, replay
from liverec.evaluation.report import config_text
from liverec.evaluation.results import EvaluationResult, SystemResult
from liverec.evaluation.systems import RECBOLE_MODELS, RECTOOLS_MODELS, check_system, item_events

PROTOCOLS = ("loo", "temporal", "replay", "coldstart", "noise")
# The sequential peers, run in their own environments: system name -> (library, model), and per library
# its environment check, split writer, runner and the suffix of its split files' folder.
PEERS = {**{name: ("RecBole", model) for name, model in RECBOLE_MODELS.items()},
         **{name: ("RecTools", model) for name, model in RECTOOLS_MODELS.items()}}
PEER_LIBRARIES: dict[str, tuple[Callable[[], str | None], Callable[..., object], Callable[..., PeerRun], str]] = {
    "RecBole": (peer_environment_problem, write_atomic_split, run_recbole, "loo"),
    "RecTools": (rectools_environment_problem, write_rectools_split, run_rectools, "loo-rectools"),
}
Progress = Callable[[str, int, int], None]
Log = Callable[[str], None]


@dataclass
class Options:
    """How a run is set up; every field is recorded in the results."""

    protocols: Sequence[str] = ("loo",)
    systems: Sequence[str] = ("liverec", "als", "pop")
    ks: Sequence[int] = KS
    seed: int = 0
    cadence_days: float = 7.0
    replay_fraction: float = 0.2
    replay_max_events: int | None = None
    peer_epochs: int | None = None  # None: RecBole's early stopping decides
    peer_minutes: float | None = None  # a training time budget per peer (None: none)
    work_dir: Path | None = None  # where peer split files and logs go (default: <out>/work)
    noise: Sequence[str] = NOISE_KINDS  # the noise protocol's kinds of noise
    engine: dict[str, Any] = field(default_factory=dict)  # liverec's engine settings (``--config``), not replay's
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for p in self.protocols:
            if p not in PROTOCOLS:
                raise InvalidInputError(f"protocol {p!r} is not one of {', '.join(PROTOCOLS)}", field="protocol",
                                        value=p)
        for s in self.systems:
            check_system(s)
        Settings.from_mapping(self.engine)  # a misspelt setting stops the run before anything is fitted
        for kind in self.noise:
            if kind not in NOISE_KINDS:
                raise InvalidInputError(f"noise {kind!r} is not one of {', '.join(NOISE_KINDS)}", field="noise",
                                        value=kind)
        if not self.protocols or not self.systems:
            raise InvalidInputError("give at least one protocol and one system", field="systems")


def _quiet_progress(task: str, done: int, total: int) -> None:
    pass


def _quiet_log(message: str) -> None:
    pass


def evaluate(ds: Dataset, options: Options, out: Path, progress: Progress = _quiet_progress,
             log: Log = _quiet_log) -> list[EvaluationResult]:
    """Run ``options.protocols`` × ``options.systems`` on ``ds``; results only (see ``report``)."""
    options.check()
    work = options.work_dir or out / "work"
    vectors = _item_vectors(ds, progress)
    runs: list[EvaluationResult] = []
    for protocol in options.protocols:
        t0 = time.perf_counter()
        counts = {"users": len({e.user_id for e in ds.events}), "items": len(ds.items), "events": len(ds.events)}
        settings = {"ks": list(options.ks), "seed": options.seed, "systems": list(options.systems)}
        run = EvaluationResult(ds.name, protocol, counts, settings=settings, notes=list(ds.notes))
        if options.engine:
            settings["engine"] = options.engine
            run.notes.append(f"liverec's engine settings (--config): {options.engine}")
        if protocol == "noise":
            plan = PLANS[protocol](ds)
            chosen = _chosen_on_loo(runs)
            config = {k: v for k, v in (chosen or {}).items() if k in ("diversity", "ratings", "exposure",
                                                                      "interest_similarity")}
            settings.update(liverec_config=config or "defaults", noise=list(options.noise))
            described = "; ".join(NOISE_DESCRIPTIONS[kind] for kind in options.noise)
            run.notes += plan.notes + [
                f"noise: the leave-one-out split's training events with noise added ({described}), each learned "
                "with cleaning off and on; the validation and test events stay real. liverec only, one "
                "configuration for every condition: "
                + (f"{config_text(config)} (chosen on leave-one-out's validation)" if config else "its defaults")]
            for res, lists in run_noise(ds, plan, config, options.noise, ks=options.ks, seed=options.seed,
                                        progress=progress, log=log, engine=options.engine):
                beyond_accuracy(res, lists, ds, plan.train, vectors)
                run.systems.append(res)
        elif protocol == "replay":
            settings.update(cadence_days=options.cadence_days, fraction=options.replay_fraction,
                            max_events=options.replay_max_events)
            chosen = _chosen_on_loo(runs)
            settings.update(liverec_config=chosen or "defaults")
            run.replay = replay(ds, fraction=options.replay_fraction, cadence=options.cadence_days * DAY,
                                max_events=options.replay_max_events, config=chosen, seed=options.seed,
                                progress=progress)
            run.notes.append("replay runs liverec in three modes (real-time, frozen between trainings, frozen with "
                             "a live seen-filter) on the same events; peers do not take part: the question is what "
                             "real-time state adds to the same models; liverec's configuration: "
                             + (f"{config_text(chosen)} (chosen on leave-one-out's validation)" if chosen
                                else "its defaults (no leave-one-out validation ran before it)"))
        else:
            plan = PLANS[protocol](ds)
            run.notes += plan.notes
            for name in options.systems:
                log(f"{ds.name} / {protocol}: {name}")
                with MachineLoad() as load:
                    result = _run_one(name, ds, plan, options, work, progress, run, log)
                if result is not None:
                    res, lists = result
                    res.notes.append(load.note())
                    beyond_accuracy(res, lists, ds, plan.train, vectors)
                    run.systems.append(res)
                    log(f"  {name}: NDCG@10 {res.mean('ndcg@10'):.4f}, Recall@10 {res.mean('recall@10'):.4f}")
        run.seconds = time.perf_counter() - t0
        runs.append(run)
    return runs


class MachineLoad:
    """The 1-minute load average sampled every ``every`` seconds while a system runs (a context
    manager): a model trained to a time budget learns less on a busy machine (liverec's sequence
    model on MovieLens-1M: see docs/evaluation.md), so a report says how busy it was."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="machine-load", daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> MachineLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def note(self) -> str:
        from joblib import cpu_count  # affinity and cgroup quotas, as the engine counts cores

        mean, peak = sum(self.samples) / max(1, len(self.samples)), max(self.samples, default=0.0)
        return (f"machine load while it ran: 1-minute load average mean {mean:.1f}, max {peak:.1f} "
                f"on {cpu_count()} cores (its own work included; above the cores, a model trained to a time "
                "budget learned less than it would alone)")


def _chosen_on_loo(runs: Sequence[EvaluationResult]) -> dict[str, Any] | None:
    """liverec's configuration as chosen on leave-one-out's validation, when that ran first."""
    return next((s.config for r in runs if r.protocol == "loo" for s in r.systems if s.system == "liverec"), None)


def _run_one(name: str, ds: Dataset, plan: Plan, options: Options, work: Path, progress: Progress,
             run: EvaluationResult, log: Log) -> tuple[SystemResult, dict[str, list[str]]] | None:
    if name in PEERS:
        if plan.split is None:
            run.notes.append(f"{name}: not run under {plan.protocol} — {PEERS[name][0]}'s sequential models are given "
                             "the leave-one-out split only (it is the protocol they are published on)")
            return None
        try:
            return _run_peer(name, ds, plan, options, work, progress, log)
        except LiveRecError as exc:
            run.notes.append(f"{name}: could not run here — {exc}")
            return None
    return run_system(name, ds, plan, ks=options.ks, seed=options.seed, progress=progress, engine=options.engine)


def _run_peer(name: str, ds: Dataset, plan: Plan, options: Options, work: Path,
              progress: Progress, log: Log) -> tuple[SystemResult, dict[str, list[str]]]:
    library, model = PEERS[name]
    environment_problem, write_split, run_peer, folder = PEER_LIBRARIES[library]
    problem = environment_problem()
    if problem is not None:
        raise InvalidInputError(problem, field="systems", value=name)
    assert plan.split is not None
    split_dir = work / f"{_slug(ds.name)}-{folder}"
    token = "data"
    if not (split_dir / f"{token}.tokens.json").exists():  # written last: the split is complete
        write_split(plan.split, split_dir, token)
    epochs_seen = 0
    limit = options.peer_epochs or 300

    def on_line(line: str) -> None:
        nonlocal epochs_seen
        if re.match(r"\s*epoch\b", line, flags=re.IGNORECASE):
            epochs_seen += 1
            progress(f"{name}: {library} epochs (early stopping)", epochs_seen, limit)
            log(f"  {name}: {line.strip()}")  # one line per epoch: a run's log shows how training went

    t0 = time.perf_counter()
    peer = run_peer(model, split_dir, token, work / f"{_slug(ds.name)}-{name}.json",
                    epochs=options.peer_epochs, max_minutes=options.peer_minutes, on_progress=on_line)
    k = max(options.ks)
    seen: dict[str, set[str]] = {}
    for e in item_events(plan.split.train):
        seen.setdefault(e.user_id, set()).add(e.item_id or "")
    for user, e in plan.split.valid.items():
        seen.setdefault(user, set()).add(e.item_id or "")
    masked = {u: [i for i in ranked if i not in seen.get(u, ())][:k] for u, ranked in peer.ranked.items()}
    result = score_lists(name, {"model": peer.model, **peer.config}, masked, plan.test, options.ks)
    unmasked = metric_table({u: r[:k] for u, r in peer.ranked.items()}, plan.test.relevant, plan.test.users,
                            options.ks)
    result.extra = {
        "harness_unmasked": {m: round(float(unmasked[m].mean()), 5) for m in ("ndcg@10", "recall@10")},
        f"{library.lower()}_own_test": peer.test_metrics,
        f"{library.lower()}_own_valid": peer.valid_metrics,
        "epochs_trained": peer.epochs_trained,
        "best_epoch": peer.best_epoch,
        f"{library.lower()}_version": peer.version,
        "budget_stopped": peer.budget_stopped,
    }
    result.validation = [{"config": {"settings": peer.settings, "best_epoch": peer.best_epoch},
                          "valid_ndcg@10": peer.valid_metrics.get("ndcg@10", float("nan"))}]
    result.seconds = {"total": time.perf_counter() - t0, **{f"peer_{k}": v for k, v in peer.seconds.items()}}
    epochs = f"{peer.epochs_trained} epoch{'s' if peer.epochs_trained != 1 else ''}"
    stopped = (f"stopped by the {options.peer_minutes:g}-minute training budget after {epochs}, "
               f"best epoch {peer.best_epoch}: UNDER-TRAINED, early stopping had not ended it"
               if peer.budget_stopped else
               f"early stopping on validation NDCG@10, best epoch {peer.best_epoch} of {peer.epochs_trained}")
    result.notes.append(
        f"{library} {peer.version} {peer.model} ({peer.settings}), {stopped}. "
        f"Ranked as {library} ranks (seen items kept), its test "
        f"NDCG@10 is {result.extra['harness_unmasked']['ndcg@10']:.4f} here and "
        f"{peer.test_metrics.get('ndcg@10', float('nan')):.4f} in {library}'s own evaluation; the table leaves seen "
        "items out, as for every system")
    return result, masked


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "data"


def _item_vectors(ds: Dataset, progress: Progress) -> Callable[[Sequence[str]], np.ndarray]:
    """Unit text vectors of every item (the default encoder), for intra-list diversity."""
    from liverec.text import get_encoder

    encoder = get_encoder("use")
    ids = [i.item_id for i in ds.items]
    texts = [i.text for i in ds.items]
    parts = []
    for start in range(0, len(texts), 1000):
        parts.append(encoder.encode(texts[start : start + 1000]))
        progress("encoding item texts (for diversity)", min(start + 1000, len(texts)), len(texts))
    matrix = np.vstack(parts) if parts else np.zeros((0, 1), np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    row = {x: n for n, x in enumerate(ids)}
    return lambda items: matrix[[row[i] for i in items]]

