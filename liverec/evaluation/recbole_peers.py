r"""RecBole 1.2.1's SASRec and GRU4Rec as peers of liverec's models, fed the identical split.

RecBole 1.2.1 needs numpy<2, pandas<3 and setuptools<81, so it lives in its own virtual environment
(``make peers`` builds ``.venv-peers``) and runs as a subprocess: :func:`write_atomic_split` writes a
:class:`~liverec.evaluation.splits.LeaveOneOut` as RecBole atomic files in UniSRec's layout, and
:func:`run_recbole` trains a peer on them with ``peers/recbole_peer.py`` and maps its rankings back to
liverec's ids. Each user's history is their item events in order (searches carry no item); the peer
sees at most the last :data:`HISTORY_LENGTH` of them, as UniSRec's published files do.

>>> from liverec.core.types import Event
>>> from liverec.evaluation.splits import LeaveOneOut
>>> ev = lambda user, item: Event.create(user, "view", item, timestamp=0.0)
>>> split = LeaveOneOut(train=[ev("ann", "a"), ev("ann", "b")], valid={"ann": ev("ann", "c")},
...                     test={"ann": ev("ann", "d")})
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     tokens = write_atomic_split(split, Path(d), "toy")
...     Path(d, "toy.test.inter").read_text().splitlines()[1].split("\t")
['u0', 'i0 i1 i2', 'i3']
>>> tokens["u0"], tokens["i3"]
('ann', 'd')
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError, LiveRecError
from liverec.core.types import EventType
from liverec.evaluation.splits import LeaveOneOut

HISTORY_LENGTH = 50  # RecBole's MAX_ITEM_LIST_LENGTH in the leaderboard setting and UniSRec's files
PEER_MODELS = ("SASRec", "GRU4Rec")
RECBOLE_VERSION = "1.2.1"
HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

_REPO = Path(__file__).resolve().parents[2]
PEER_RUNNER = _REPO / "peers" / "recbole_peer.py"
PEER_PYTHON = _REPO / ".venv-peers" / "bin" / "python"
_TAIL_LINES = 30


class PeerRunError(LiveRecError):
    """A peer (RecBole's here, RecTools' in ``rectools_peers``) could not run: its environment is missing
    or broken, or the run failed."""


@dataclass
class PeerRun:
    """What one peer run produced, in liverec's ids; RecTools' peer (``rectools_peers``) returns one too.

    ``ranked`` holds every test user's top items over all items the peer knows (those in the split
    files), best first, without masking the user's history: RecBole's sequential protocol. The
    metrics are the peer library's own (keys like ``ndcg@10``), for checking the harness's numbers
    against. ``settings`` says in a few words how the model was configured, for the report.
    """

    model: str
    ranked: dict[str, list[str]]
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float]
    seconds: dict[str, float]
    config: dict[str, Any]
    epochs_trained: int
    best_epoch: int
    version: str  # the peer library's
    library: str = "RecBole"
    settings: str = "leaderboard settings"
    budget_stopped: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the runner's JSON, less the rankings


def write_atomic_split(split: LeaveOneOut, out_dir: Path, name: str) -> dict[str, str]:
    """Write ``split`` as ``NAME.{train,valid,test}.inter`` in UniSRec's RecBole atomic format.

    Per user, the history is their training item events in order. Train rows are every prefix:
    ``(user, seq[max(0, p-50):p], seq[p])`` for each position ``p >= 1``, longest first as in UniSRec's
    files; the valid row is ``(user, seq[-50:], valid item)`` and the test row
    ``(user, (seq + [valid item])[-50:], test item)``. Users come in order of their first event.

    RecBole splits token sequences on spaces and rows on tabs, so ids are written as tokens ``u<n>``
    (users) and ``i<n>`` (items), numbered in order of first appearance. The mapping back, token to
    liverec id, is returned and also kept in ``NAME.tokens.json`` for :func:`run_recbole`.

    Parameters
    ----------
    split
        The leave-one-out split the harness evaluates liverec on.
    out_dir
        Folder to write into; created if missing. The peer trains on exactly these files.
    name
        The files' common prefix (RecBole's data set name): letters, digits, ``_``, ``-`` or ``.``.
    """
    check_split_name(name)
    users, sequences = user_sequences(split)
    tokens = Tokens()

    def items(item_ids: list[str]) -> str:
        return " ".join(tokens.item(i) for i in item_ids)

    train: list[str] = []
    valid: list[str] = []
    test: list[str] = []
    for user_id in users:
        seq = sequences.get(user_id, [])
        u = tokens.user(user_id)
        # Items are numbered along the user's sequence first, so tokens follow time as the ids do.
        items(seq)
        for p in range(len(seq) - 1, 0, -1):
            train.append(f"{u}\t{items(seq[max(0, p - HISTORY_LENGTH) : p])}\t{items([seq[p]])}\n")
        held = seq
        if user_id in split.valid:
            target = item_of(split.valid[user_id], user_id, "validation")
            if seq:  # RecBole cannot score an empty history
                valid.append(f"{u}\t{items(seq[-HISTORY_LENGTH:])}\t{items([target])}\n")
            held = [*seq, target]
        if user_id in split.test and held:
            target = item_of(split.test[user_id], user_id, "test")
            test.append(f"{u}\t{items(held[-HISTORY_LENGTH:])}\t{items([target])}\n")

    out_dir.mkdir(parents=True, exist_ok=True)
    for part, rows in (("train", train), ("valid", valid), ("test", test)):
        (out_dir / f"{name}.{part}.inter").write_text(HEADER + "".join(rows), encoding="utf-8")
    return tokens.write(out_dir / f"{name}.tokens.json")


# What writing a split for a peer takes, whatever the peer's file format; rectools_peers uses it too.


def check_split_name(name: str) -> None:
    """Refuse a split name that is not a plain file-name prefix."""
    if not name or not all(c.isalnum() or c in "_-." for c in name):
        raise InvalidInputError(
            f"split name {name!r} must be letters, digits, '_', '-' or '.'", field="name", value=name
        )


def user_sequences(split: LeaveOneOut) -> tuple[list[str], dict[str, list[str]]]:
    """The split's users (in order of their first event, target-only users last) and each one's
    training items in order (searches carry no item)."""
    sequences: dict[str, list[str]] = {}
    for event in split.train:
        if event.item_id is not None and event.type is not EventType.SEARCH:
            sequences.setdefault(event.user_id, []).append(event.item_id)
    return list(dict.fromkeys([*sequences, *split.valid, *split.test])), sequences


class Tokens:
    """Space- and tab-free stand-ins for ids in a peer's files: ``u<n>`` for users and ``i<n>`` for
    items, numbered in order of first use. :meth:`write` keeps the way back for :func:`read_tokens`."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.items: dict[str, str] = {}

    def user(self, user_id: str) -> str:
        return self.users.setdefault(user_id, f"u{len(self.users)}")

    def item(self, item_id: str) -> str:
        return self.items.setdefault(item_id, f"i{len(self.items)}")

    def write(self, path: Path) -> dict[str, str]:
        """Write the mapping token -> id to ``path`` and return it (users and items in one dict)."""
        mapping = {"users": {t: i for i, t in self.users.items()}, "items": {t: i for i, t in self.items.items()}}
        path.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
        return {**mapping["users"], **mapping["items"]}


def item_of(event: Any, user_id: str, stage: str) -> str:
    """The item of a validation or test target, refusing a target without one."""
    if event.item_id is None or event.type is EventType.SEARCH:
        raise InvalidInputError(
            f"user {user_id!r}: the {stage} target is a {event.type.value} event without an item",
            field=stage, value=user_id,
        )
    return str(event.item_id)


def peer_environment_problem(python: Path = PEER_PYTHON, runner: Path = PEER_RUNNER) -> str | None:
    """Why RecBole peers cannot run here, or ``None`` when they can; for reports and skips.

    Imports RecBole in the peer environment to be sure (a few seconds).
    """
    return environment_problem(python, runner, library="RecBole", version=RECBOLE_VERSION, venv=".venv-peers",
                               imports="import recbole, recbole.trainer, torch; print(recbole.__version__)")


def environment_problem(python: Path, runner: Path, *, library: str, version: str, venv: str,
                        imports: str) -> str | None:
    """Why a peer cannot run with ``python`` and ``runner``, or ``None``: runs ``imports`` there, which
    must print the library's version, and compares it with ``version``."""
    if not runner.is_file():
        return f"the peer runner {runner} is missing (liverec was installed without its source tree)"
    if not python.exists():
        return f"no peer environment at {python}: run `make peers`"
    try:
        done = subprocess.run(
            [str(python), "-c", f"import warnings; warnings.simplefilter('ignore'); {imports}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python} does not run ({e}): run `make peers`"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"{python} cannot import {library} ({last}): run `make peers`"
    found = done.stdout.strip()
    if found != version:
        return f"{python} has {library} {found}, the peers need {version}: remove {venv}, run `make peers`"
    return None


def run_recbole(
    model: str,
    split_dir: Path,
    name: str,
    out: Path,
    *,
    python: Path = PEER_PYTHON,
    topk: int = 100,
    seed: int = 2020,
    epochs: int | None = None,
    max_minutes: float | None = None,
    threads: int = 2,
    speed: str = "auto",
    on_progress: Callable[[str], None] | None = None,
    runner: Path = PEER_RUNNER,
) -> PeerRun:
    """Train RecBole's ``model`` on the split in ``split_dir`` and return its test rankings.

    Runs ``peers/recbole_peer.py`` in the peer environment: leaderboard settings (full-softmax CE,
    max length 50), early stopping on valid NDCG@10, the best epoch evaluated on test. Its JSON goes to
    ``out``; each line it prints (one per epoch) is passed to ``on_progress`` as it comes.

    Parameters
    ----------
    model
        ``"SASRec"`` or ``"GRU4Rec"``.
    split_dir, name
        Where :func:`write_atomic_split` wrote ``NAME.*.inter``; without ``NAME.tokens.json`` the
        tokens are taken as the ids themselves.
    topk
        Items ranked per test user; more than a cutoff needs, so the harness can drop seen items.
    epochs
        At most this many epochs (the runner's default, 300, when ``None``); early stopping ends sooner.
    max_minutes
        A training time budget: no epoch starts that would end past it; the best epoch so far is
        evaluated and the result says ``budget_stopped``.
    speed
        The runner's ``--speed``: ``auto`` skips padding work exactly and, for SASRec only, batches rows
        of similar length (see ``peers/recbole_peer.py``); ``stock`` runs RecBole unchanged.

    Raises
    ------
    PeerRunError
        The peer environment is missing (run ``make peers``) or the run failed; the message carries
        the tail of the peer's output.
    """
    if model not in PEER_MODELS:
        raise InvalidInputError(
            f"peer model {model!r} is not one of {', '.join(PEER_MODELS)}", field="model", value=model
        )
    problem = peer_environment_problem(python, runner)
    if problem is not None:
        raise PeerRunError(problem)
    cmd = [
        str(python), str(runner), "--model", model, "--data-dir", str(split_dir), "--dataset", name,
        "--out", str(out), "--topk", str(topk), "--seed", str(seed), "--threads", str(threads), "--speed", speed,
    ]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if max_minutes is not None:
        cmd += ["--max-minutes", str(max_minutes)]
    result = run_runner(cmd, out, f"RecBole {model} peer", on_progress)
    return peer_result(result, read_tokens(split_dir / f"{name}.tokens.json"))


def run_runner(cmd: list[str], out: Path, label: str, on_progress: Callable[[str], None] | None) -> dict[str, Any]:
    """Run a peer's runner (``cmd``), pass each line it prints to ``on_progress``, return the JSON it wrote
    to ``out``; a failure raises :class:`PeerRunError` with the tail of its output, ``label`` naming it."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        assert proc.stdout is not None  # for mypy: stdout=PIPE
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if on_progress is not None:
                on_progress(line)
        code = proc.wait()
    if code != 0:
        raise PeerRunError(f"{label} failed (exit code {code}); its last output:\n" + "\n".join(tail))
    try:
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PeerRunError(f"{label} wrote no readable result to {out}: {e}") from None
    return result


def read_tokens(path: Path) -> dict[str, dict[str, str]] | None:
    """The mapping :meth:`Tokens.write` wrote to ``path``, or ``None`` without one (tokens are ids)."""
    if not path.is_file():
        return None
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def peer_result(result: dict[str, Any], tokens: dict[str, dict[str, str]] | None, library: str = "RecBole",
                settings: str = "leaderboard settings") -> PeerRun:
    """A runner's JSON as a :class:`PeerRun`: keys ``{lib}_version``, ``valid_{lib}`` and ``test_{lib}``
    hold the version and the library's own metrics (``lib``: ``library`` in lower case)."""
    lib = library.lower()
    try:
        ranked_tokens: dict[str, list[str]] = result["test"]
        users = tokens["users"] if tokens else None
        items = tokens["items"] if tokens else None
        ranked = {
            (users[u] if users else u): [items[i] for i in row] if items else list(row)
            for u, row in ranked_tokens.items()
        }
        return PeerRun(
            model=result["model"],
            ranked=ranked,
            valid_metrics=dict(result[f"valid_{lib}"]),
            test_metrics=dict(result[f"test_{lib}"]),
            seconds=dict(result["seconds"]),
            config=dict(result["config"]),
            epochs_trained=int(result["epochs_trained"]),
            best_epoch=int(result["best_epoch"]),
            version=str(result[f"{lib}_version"]),
            library=library,
            settings=settings,
            budget_stopped=bool(result.get("budget_stopped", False)),
            raw={k: v for k, v in result.items() if k != "test"},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise PeerRunError(f"the {library} peer's result does not read as expected: missing or bad {e}") from None

