r"""RecTools 0.19's SASRec (configured as eSASRec) as a peer of liverec's models, fed the identical split.

RecTools 0.19 caps numpy below 2 and pins lightning and pandas majors that liverec's stack has outgrown,
so it lives in its own virtual environment (``make peers`` builds ``.venv-rectools``) and runs as a
subprocess, as RecBole's peers do (``recbole_peers``, whose :class:`PeerRun`, tokens and subprocess
handling this module shares): :func:`write_rectools_split` writes a
:class:`~liverec.evaluation.splits.LeaveOneOut` as three small TSV files, and :func:`run_rectools` trains
the peer on them with ``peers/rectools_peer.py`` and maps its rankings back to liverec's ids.

A user's history is their item events in order (searches carry no item), all of it: RecTools keeps the
last 50 itself (its ``session_max_len``). The valid target is scored with the training history as
input, the test target with training + valid, as RecBole's peers are.

>>> from liverec.core.types import Event
>>> from liverec.evaluation.splits import LeaveOneOut
>>> ev = lambda user, item: Event.create(user, "view", item, timestamp=0.0)
>>> split = LeaveOneOut(train=[ev("ann", "a"), ev("ann", "b")], valid={"ann": ev("ann", "c")},
...                     test={"ann": ev("ann", "d")})
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     tokens = write_rectools_split(split, Path(d), "toy")
...     Path(d, "toy.train.tsv").read_text().splitlines()
['user_id\titem_id', 'u0\ti0', 'u0\ti1']
>>> tokens["u0"], tokens["i3"]
('ann', 'd')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from liverec.core.errors import InvalidInputError
from liverec.evaluation.recbole_peers import (
    PeerRun,
    PeerRunError,
    Tokens,
    check_split_name,
    environment_problem,
    item_of,
    peer_result,
    read_tokens,
    run_runner,
    user_sequences,
)
from liverec.evaluation.splits import LeaveOneOut

PEER_MODELS = ("SASRec",)
RECTOOLS_VERSION = "0.19.0"
HEADER = "user_id\titem_id\n"
# How the runner configures the model (peers/rectools_peer.py, MODEL_SETTINGS), for the report.
SETTINGS = ("softmax loss, eSASRec's LiGR layers and Amazon leave-one-out settings: 1 block, 1 head, width 64, "
            "history 50, dropout 0.2, lr 1e-3, batch 128")

_REPO = Path(__file__).resolve().parents[2]
RECTOOLS_RUNNER = _REPO / "peers" / "rectools_peer.py"
RECTOOLS_PYTHON = _REPO / ".venv-rectools" / "bin" / "python"


def write_rectools_split(split: LeaveOneOut, out_dir: Path, name: str) -> dict[str, str]:
    """Write ``split`` as ``NAME.{train,valid,test}.tsv`` for ``peers/rectools_peer.py``.

    Each file has the header ``user_id<TAB>item_id``. ``train`` holds every user's training items, user
    after user, each user's in order: the runner takes the row order as the time. ``valid`` and
    ``test`` hold one target per user with training items (the runner predicts the test target from
    the training items followed by the valid one). Users come in order of their first event.

    Ids are written as tokens ``u<n>`` (users) and ``i<n>`` (items), numbered in order of first
    appearance (items along each user's sequence, then the targets), so no id can break a row. The
    mapping back, token to liverec id, is returned and also kept in ``NAME.tokens.json``, written last:
    its presence says the split is complete.

    Parameters
    ----------
    split
        The leave-one-out split the harness evaluates liverec on.
    out_dir
        Folder to write into; created if missing. The peer trains on exactly these files.
    name
        The files' common prefix: letters, digits, ``_``, ``-`` or ``.``.
    """
    check_split_name(name)
    users, sequences = user_sequences(split)
    tokens = Tokens()
    train: list[str] = []
    valid: list[str] = []
    test: list[str] = []
    for user_id in users:
        seq = sequences.get(user_id, [])
        u = tokens.user(user_id)
        train.extend(f"{u}\t{tokens.item(i)}\n" for i in seq)
        if not seq:  # the runner cannot score a user without training items (leave-one-out has none)
            continue
        if user_id in split.valid:
            valid.append(f"{u}\t{tokens.item(item_of(split.valid[user_id], user_id, 'validation'))}\n")
        if user_id in split.test:
            test.append(f"{u}\t{tokens.item(item_of(split.test[user_id], user_id, 'test'))}\n")

    out_dir.mkdir(parents=True, exist_ok=True)
    for part, rows in (("train", train), ("valid", valid), ("test", test)):
        (out_dir / f"{name}.{part}.tsv").write_text(HEADER + "".join(rows), encoding="utf-8")
    return tokens.write(out_dir / f"{name}.tokens.json")


def rectools_environment_problem(python: Path = RECTOOLS_PYTHON, runner: Path = RECTOOLS_RUNNER) -> str | None:
    """Why the RecTools peer cannot run here, or ``None`` when it can; for reports and skips.

    Imports RecTools' SASRec and LiGR layers in the peer environment to be sure (a few seconds).
    """
    return environment_problem(
        python, runner, library="RecTools", version=RECTOOLS_VERSION, venv=".venv-rectools",
        imports="import rectools, torch, pytorch_lightning; from rectools.models import SASRecModel; "
        "from rectools.models.nn.transformers.ligr import LiGRLayers; print(rectools.__version__)",
    )


def run_rectools(
    model: str,
    split_dir: Path,
    name: str,
    out: Path,
    *,
    python: Path = RECTOOLS_PYTHON,
    topk: int = 200,
    seed: int = 2020,
    epochs: int | None = None,
    max_minutes: float | None = None,
    patience: int | None = None,
    threads: int = 2,
    speed: str = "exact",
    on_progress: Callable[[str], None] | None = None,
    runner: Path = RECTOOLS_RUNNER,
) -> PeerRun:
    """Train RecTools' ``model`` on the split in ``split_dir`` and return its test rankings.

    Runs ``peers/rectools_peer.py`` in the RecTools environment: SASRec with the softmax loss and
    eSASRec's LiGR layers, early stopping on valid NDCG@10, the best epoch ranking the test users. Its
    JSON goes to ``out``; each line it prints (one per epoch) is passed to ``on_progress`` as it comes.

    Parameters
    ----------
    model
        ``"SASRec"``, the one RecTools model the runner trains.
    split_dir, name
        Where :func:`write_rectools_split` wrote ``NAME.*.tsv``; without ``NAME.tokens.json`` the
        tokens are taken as the ids themselves.
    topk
        Items ranked per test user; more than a cutoff needs, so the harness can drop seen items.
    epochs, patience
        At most this many epochs, and stop after ``patience`` without a better valid NDCG@10 (the
        runner's defaults, 200 and 10, when ``None``).
    max_minutes
        A training time budget: no epoch starts that would end past it; the best epoch so far ranks
        the test users and the result says ``budget_stopped``.
    speed
        The runner's ``--speed``: ``exact`` computes RecTools' loss and scores without the padding work
        (same values, see ``peers/rectools_peer.py``); ``stock`` runs RecTools unchanged.

    Raises
    ------
    PeerRunError
        The RecTools environment is missing (run ``make peers``) or the run failed; the message carries
        the tail of the peer's output.
    """
    if model not in PEER_MODELS:
        raise InvalidInputError(
            f"RecTools peer model {model!r} is not one of {', '.join(PEER_MODELS)}", field="model", value=model
        )
    problem = rectools_environment_problem(python, runner)
    if problem is not None:
        raise PeerRunError(problem)
    cmd = [
        str(python), str(runner), "--model", model, "--data-dir", str(split_dir), "--dataset", name,
        "--out", str(out), "--topk", str(topk), "--seed", str(seed), "--threads", str(threads), "--speed", speed,
    ]
    for flag, value in (("--epochs", epochs), ("--patience", patience), ("--max-minutes", max_minutes)):
        if value is not None:
            cmd += [flag, str(value)]
    result = run_runner(cmd, out, f"RecTools {model} peer", on_progress)
    return peer_result(result, read_tokens(split_dir / f"{name}.tokens.json"), library="RecTools",
                       settings=SETTINGS)
