"""Train RecBole 1.2.1's SASRec or GRU4Rec on a leave-one-out split and write its rankings as JSON.

The evaluation harness (``liverec.evaluation.recbole_peers``) runs this script as a subprocess with
``.venv-peers/bin/python`` (built by ``make peers``). It must not import liverec: RecBole 1.2.1 needs
numpy<2, pandas<3 and setuptools<81, so it lives in its own environment.

Input: ``DIR/NAME.{train,valid,test}.inter`` in UniSRec's RecBole atomic format (tab-separated, header
``user_id:token  item_id_list:token_seq  item_id:token``; train holds every prefix of every user, valid and
test one row per user; histories at most 50 items). The model is trained with RecBole's own defaults for
it (full-softmax CE, max length 50, batch 2048, Adam at 1e-3), early-stopped on valid NDCG@10 under full
ranking, and the best epoch's weights score the test rows. The JSON written to ``--out`` holds RecBole's
own valid and test metrics and, for every test user, the top ``--topk`` item tokens over all items, best
first, with no history masking (RecBole's sequential protocol; the harness masks if it wants to).

Progress, one line per epoch, goes to stderr. A bad argument or input file exits with code 2 and one
line on stderr; any other failure exits non-zero with a traceback.

Speed (``--speed``). RecBole 1.2.1 leaves autograd's anomaly detection on (a side effect of importing
its SINE model), which checks every backward output for NaN. It right-pads every history to the longest
in the files (50), yet 90% of Scientific's training prefixes hold at most 8 items, so most of an epoch
is spent on padding. ``exact`` turns anomaly detection off, cuts each batch's history columns to its
longest real history, and runs GRU4Rec's GRU on packed sequences: none of it changes a value (see
``_fast_class``), and batches are RecBole's own. ``bucket`` also groups rows of similar length into
batches, so the cut drops almost all padding; every row is still seen once per epoch, but the
optimisation path differs. On Scientific that kept SASRec at the published figures but destabilised
GRU4Rec, so ``auto`` (the default) buckets SASRec and runs GRU4Rec ``exact``. ``stock`` runs RecBole
unchanged, for timing and comparison.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

MODELS = ("SASRec", "GRU4Rec")
SPLITS = ("train", "valid", "test")
HEADER = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
MAX_LENGTH = 50
EXIT_BAD_INPUT = 2
# Measured on Scientific (seed 2020): bucketing kept SASRec at test NDCG@10 0.0565 (the stock anchor), but
# GRU4Rec's loss jumped in epoch 2 and early stopping ended it at 0.011, so GRU4Rec keeps RecBole's batches.
AUTO_SPEED = {"SASRec": "bucket", "GRU4Rec": "exact"}

# RecBole 1.2.1's own defaults (recbole/properties/model/{SASRec,GRU4Rec}.yaml), written out so that
# the JSON records them and a RecBole upgrade cannot change them silently.
MODEL_SETTINGS: dict[str, dict[str, Any]] = {
    "SASRec": {
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": 0.5,
        "attn_dropout_prob": 0.5,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
    },
    "GRU4Rec": {
        "embedding_size": 64,
        "hidden_size": 128,
        "num_layers": 1,
        "dropout_prob": 0.3,
        "loss_type": "CE",
    },
}

# Training and evaluation as in RecBole's overall.yaml and UniSRec's props/finetune.yaml (the setup that
# produced the published Scientific numbers); metrics and top-k are ours and change no training.
TRAINING_SETTINGS: dict[str, Any] = {
    "MAX_ITEM_LIST_LENGTH": MAX_LENGTH,
    "train_batch_size": 2048,
    "learner": "adam",
    "learning_rate": 0.001,
    "weight_decay": 0.0,
    "train_neg_sample_args": None,  # full-softmax CE needs no negatives
    "eval_batch_size": 2048,
    "valid_metric": "NDCG@10",
    "metrics": ["Recall", "MRR", "NDCG"],
    "topk": [5, 10, 20],
}

DATA_SETTINGS: dict[str, Any] = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "LIST_SUFFIX": "_list",
    "ITEM_LIST_LENGTH_FIELD": "item_length",
    "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
    "benchmark_filename": list(SPLITS),
    # The history column shares the item vocabulary, so a token means the same item in both columns.
    "alias_of_item_id": ["item_id_list"],
}


class BadInput(Exception):
    """A bad argument or input file: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage; the harness relays stderr, and one line reads better there.
        raise BadInput(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and check the command line (files are checked by :func:`check_split`)."""
    p = _Parser(prog="recbole_peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--data-dir", required=True, type=Path, help="folder holding NAME.{train,valid,test}.inter")
    p.add_argument("--dataset", required=True, help="NAME, the files' common prefix")
    p.add_argument("--out", required=True, type=Path, help="JSON file to write")
    p.add_argument("--topk", type=int, default=100, help="items ranked per test user (default 100)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--epochs", type=int, default=300, help="at most this many epochs (default 300)")
    p.add_argument("--stopping-step", type=int, default=10, help="epochs without a better valid NDCG@10")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop training before an epoch that would end past this budget (the best epoch so "
                        "far is kept and reported as budget-stopped); default: early stopping alone")
    p.add_argument(
        "--speed",
        choices=("auto", "bucket", "exact", "stock"),
        default="auto",
        help="exact: RecBole's batches without padding work; bucket: also length-grouped batches; "
        "auto (default): bucket for SASRec, exact for GRU4Rec; stock: RecBole unchanged",
    )
    args = p.parse_args(argv)
    if args.speed == "auto":
        args.speed = AUTO_SPEED[args.model]
    for name in ("topk", "epochs", "stopping_step", "threads"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise BadInput(f"--max-minutes must be positive, got {args.max_minutes}")
    if not args.dataset or any(c in args.dataset for c in "/\\") or args.dataset.strip() != args.dataset:
        raise BadInput(f"--dataset must be a plain file-name prefix, got {args.dataset!r}")
    if not args.data_dir.is_dir():
        raise BadInput(f"--data-dir {str(args.data_dir)!r} is not a folder")
    if not args.out.parent.is_dir():
        raise BadInput(f"the folder of --out {str(args.out)!r} does not exist")
    return args


def check_split(data_dir: Path, name: str) -> tuple[dict[str, int], int]:
    """Check the three files before RecBole reads them; return their row counts and item count.

    RecBole would fail late and obscurely on these: an empty history (its gather index becomes -1), a
    history longer than the position table (50), or a missing file (it then tries to download a data set).
    """
    rows: dict[str, int] = {}
    items: set[str] = set()
    for split in SPLITS:
        path = data_dir / f"{name}.{split}.inter"
        if not path.is_file():
            raise BadInput(f"missing input file {path}")
        with path.open(encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            if header != HEADER:
                raise BadInput(f"{path}: header must be {chr(9).join(HEADER)!r}, got {chr(9).join(header)!r}")
            n = 0
            for n, line in enumerate(f, start=2):  # noqa: B007 - n is the last line number
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 3 or not fields[0] or not fields[2] or " " in fields[0] or " " in fields[2]:
                    raise BadInput(f"{path}:{n}: expected user<TAB>history<TAB>item with space-free tokens")
                history = fields[1].split(" ")
                if not all(history):
                    raise BadInput(f"{path}:{n}: the history is empty or has an empty token")
                if len(history) > MAX_LENGTH:
                    raise BadInput(f"{path}:{n}: history of {len(history)} items; at most {MAX_LENGTH} allowed")
                items.update(history)
                items.add(fields[2])
            rows[split] = max(n - 1, 0)
        if rows[split] == 0:
            raise BadInput(f"{path} has no rows")
    return rows, len(items)


class _NullWriter:
    """Stands in for RecBole's TensorBoard writer, which would litter the working folder with logs."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def add_hparams(self, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        rows, n_items = check_split(args.data_dir, args.dataset)
    except BadInput as e:
        sys.stderr.write(f"recbole_peer: error: {e}\n")
        return EXIT_BAD_INPUT
    started = time.perf_counter()
    out_path = args.out.resolve()
    data_dir = args.data_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="recbole_peer_") as work:
        # RecBole writes checkpoints, cached data sets and logs relative to the working folder, and would
        # reuse a cached data set of the same name from there: a fresh folder per run rules both out.
        os.chdir(work)
        result = run(args, data_dir, Path(work), n_items)
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    result["rows"] = rows
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, out_path)
    return 0


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace, data_dir: Path, work: Path, n_items: int) -> dict[str, Any]:
    """Train, early-stop, reload the best epoch, evaluate and rank; return the JSON document."""
    # RecBole 1.2.1 and its dependencies warn about their own deprecated calls (pkg_resources, pandas,
    # torch.cuda.amp); the harness relays stderr, where these would drown the progress lines.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    import numpy as np
    import recbole
    import recbole.trainer.trainer as recbole_trainer
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.data.interaction import Interaction
    from recbole.data.utils import create_samplers, get_dataloader
    from recbole.model.sequential_recommender import GRU4Rec, SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.set_num_threads(args.threads)
    if args.speed != "stock":
        # Importing recbole.model.sequential_recommender runs SINE's module-level
        # torch.autograd.set_detect_anomaly(True), so every RecBole model trains with NaN checks on each
        # backward output: measured here as most of a short batch's time. They change no value.
        torch.autograd.set_detect_anomaly(False)
    # RecBole's Config reads `--key=value` overrides from sys.argv; ours are not meant for it.
    sys.argv = sys.argv[:1]
    recbole_trainer.get_tensorboard = lambda logger: _NullWriter()

    config_dict: dict[str, Any] = {
        **DATA_SETTINGS,
        **TRAINING_SETTINGS,
        **MODEL_SETTINGS[args.model],
        # RecBole's metrics fail on a cutoff past the catalogue (torch.topk); tiny test sets have those.
        "topk": [k for k in TRAINING_SETTINGS["topk"] if k <= n_items] or [n_items],
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        "seed": args.seed,
        "reproducibility": True,
        "gpu_id": "",  # CPU only: an empty id list is RecBole's way to say so
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "checkpoint_dir": str(work / "saved"),
        "shuffle": True,
    }
    config = Config(model=args.model, dataset=args.dataset, config_dict=config_dict)
    # Config makes data_path <data_path>/<dataset>; the files sit directly in --data-dir.
    config["data_path"] = str(data_dir)
    init_seed(config["seed"], config["reproducibility"])

    load_start = time.perf_counter()
    dataset = create_dataset(config)
    built = dataset.build()
    train_set, valid_set, test_set = built
    seq_field = dataset.item_id_list_field
    len_field = dataset.item_list_length_field
    for part in built:
        _check_right_padded(part.inter_feat[seq_field], part.inter_feat[len_field])
    if args.speed != "stock":
        # Metrics are means over users, so the order of evaluation rows is free: sorted by history
        # length, each evaluation batch trims to a short width too.
        valid_set.sort(by=len_field)
        test_set.sort(by=len_field)
    train_sampler, valid_sampler, test_sampler = create_samplers(config, dataset, built)
    train_class = get_dataloader(config, "train")
    if args.speed == "bucket":
        train_class = _bucket_loader_class(train_class, len_field, args.seed)
    train_data = train_class(config, train_set, train_sampler, shuffle=config["shuffle"])
    valid_data = get_dataloader(config, "valid")(config, valid_set, valid_sampler, shuffle=False)
    test_data = get_dataloader(config, "test")(config, test_set, test_sampler, shuffle=False)
    load_seconds = time.perf_counter() - load_start

    init_seed(config["seed"], config["reproducibility"])
    base = {"SASRec": SASRec, "GRU4Rec": GRU4Rec}[args.model]
    model = _fast_class(base, Interaction)(config, train_data._dataset).to(config["device"])
    model.skip_padding = args.speed != "stock"
    if model.skip_padding:
        _check_fast_exact(model, valid_data, torch)

    trainer = _peer_trainer_class(Trainer)(config, model)
    if args.max_minutes is not None:
        trainer.deadline = time.perf_counter() + 60.0 * args.max_minutes
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except BudgetReached:
        plural = "s" if trainer.epochs_run != 1 else ""
        _log(f"time budget of {args.max_minutes:g} min reached after {trainer.epochs_run} epoch{plural}; "
             f"keeping the best epoch so far ({trainer.best_epoch})")
    if trainer.best_state is None:
        raise RuntimeError("training ended before any validation; no best epoch to evaluate")
    # The best epoch's weights were kept in memory (see _peer_trainer_class), which spares the disk
    # round trip and torch>=2.6's weights_only refusal of RecBole's pickled checkpoints.
    model.load_state_dict(trainer.best_state)
    eval_start = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    ranked = _rank_test_users(trainer, test_data, dataset, args.topk, torch, np)
    test_seconds = time.perf_counter() - eval_start
    _log(
        f"test NDCG@10 {test_result['ndcg@10']:.4f} Recall@10 {test_result['recall@10']:.4f} "
        f"(best epoch {trainer.best_epoch}, {trainer.epochs_run} epochs)"
    )
    return {
        "model": args.model,
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "config": {
            **MODEL_SETTINGS[args.model],
            **TRAINING_SETTINGS,
            "topk": config_dict["topk"],
            "epochs": args.epochs,
            "stopping_step": args.stopping_step,
            "seed": args.seed,
            "threads": args.threads,
            "speed": args.speed,
            "max_minutes": args.max_minutes,
            "topk_ranked": args.topk,
            "dataset": args.dataset,
        },
        "epochs_trained": trainer.epochs_run,
        "best_epoch": trainer.best_epoch,
        "budget_stopped": trainer.budget_stopped,
        "valid_recbole": {k: float(v) for k, v in (trainer.best_valid_result or {}).items()},
        "test_recbole": {k: float(v) for k, v in test_result.items()},
        "seconds": {
            "load": round(load_seconds, 2),
            "train": round(trainer.train_seconds, 2),
            "eval": round(trainer.eval_seconds + test_seconds, 2),
            "per_epoch_train": round(trainer.train_seconds / max(trainer.epochs_run, 1), 3),
        },
        "n_items": int(dataset.item_num - 1),  # without RecBole's padding item 0
        "test": ranked,
    }


def _check_right_padded(seq: Any, lengths: Any) -> None:
    """Fail unless every history sits at the left with zeros after it, which trimming relies on."""
    import torch

    positions = torch.arange(seq.size(1)).unsqueeze(0)
    real = positions < lengths.unsqueeze(1)
    if bool((seq[real] == 0).any()) or bool((seq[~real] != 0).any()):
        raise RuntimeError("RecBole did not right-pad item_id_list; trimming padding would be wrong")


def _fast_class(base: type, interaction_class: type) -> type:
    """``base`` (SASRec or GRU4Rec) that skips the padding of each batch, with the same results.

    Exact, read from RecBole 1.2.1's code: histories are right-padded (``pad_sequence``,
    batch_first; checked on every run by ``_check_right_padded``) and both models read their output at
    ``item_seq_len - 1`` (``gather_indexes``). SASRec's positions count from the left (``arange(L)``) and
    its attention mask is causal (``tril``) and masks padded keys, so a real position never sees a
    padded one: the columns past a batch's longest history can go. GRU4Rec's GRU runs left to right,
    so its state after a row's last real item is that output; a packed sequence computes exactly those
    steps and no padded ones (its ``dense`` layer then applies to that state, as to the gathered output).
    Only dropout's random draws differ in number, so a run is equal in distribution, not bit for bit,
    to a stock one. ``_check_fast_exact`` compares the scores of both paths on every run.
    """
    from torch.nn.utils.rnn import pack_padded_sequence

    packs_gru = base.__name__ == "GRU4Rec"

    class Fast(base):
        skip_padding = True

        def _trim(self, interaction: Any) -> Any:
            if not self.skip_padding:
                return interaction
            seq = interaction[self.ITEM_SEQ]
            width = int(interaction[self.ITEM_SEQ_LEN].max())
            if width >= seq.size(1):
                return interaction
            return interaction_class({**interaction.interaction, self.ITEM_SEQ: seq[:, :width]})

        def forward(self, item_seq: Any, item_seq_len: Any) -> Any:
            if not (packs_gru and self.skip_padding):
                return super().forward(item_seq, item_seq_len)
            # GRU4Rec.forward of RecBole 1.2.1, with the GRU run on packed rows.
            emb = self.emb_dropout(self.item_embedding(item_seq))
            packed = pack_padded_sequence(emb, item_seq_len.cpu(), batch_first=True, enforce_sorted=False)
            _, hidden = self.gru_layers(packed)
            return self.dense(hidden[-1])

        def calculate_loss(self, interaction: Any) -> Any:
            return super().calculate_loss(self._trim(interaction))

        def predict(self, interaction: Any) -> Any:
            return super().predict(self._trim(interaction))

        def full_sort_predict(self, interaction: Any) -> Any:
            return super().full_sort_predict(self._trim(interaction))

    Fast.__name__ = Fast.__qualname__ = base.__name__
    return Fast


def _check_fast_exact(model: Any, valid_data: Any, torch: Any) -> None:
    """Score the shortest and the longest validation batch both ways; they must agree to float precision."""
    batches = list(valid_data)
    model.eval()
    with torch.no_grad():
        for batch in (batches[0], batches[-1]):
            interaction = batch[0]
            model.skip_padding = False
            full = model.full_sort_predict(interaction)
            model.skip_padding = True
            fast = model.full_sort_predict(interaction)
            if not torch.allclose(full, fast, rtol=1e-4, atol=1e-5):
                gap = float((full - fast).abs().max())
                raise RuntimeError(f"skipping padding changed the scores (max gap {gap:.3g}); use --speed stock")
    model.train()


def _bucket_loader_class(base: type, len_field: str, seed: int) -> type:
    """RecBole's training loader, with batches cut from rows sorted by history length.

    Each epoch the rows are shuffled, stably sorted by length (so equal lengths mix anew), cut into
    batches of the configured size and the batches shuffled: every row is still seen once per epoch,
    but a batch's rows have near-equal lengths and trimming drops almost all padding.
    """
    import numpy as np

    class LengthBucketLoader(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rng = np.random.default_rng(seed)

        def __len__(self) -> int:
            return math.ceil(self.sample_size / self.step)

        def __iter__(self) -> Any:
            lengths = self._dataset.inter_feat[len_field].numpy()
            order = self._rng.permutation(len(lengths))
            order = order[np.argsort(lengths[order], kind="stable")]
            batches = [order[i : i + self.step] for i in range(0, len(order), self.step)]
            for b in self._rng.permutation(len(batches)):
                yield self.collate_fn(batches[b])

    return LengthBucketLoader


class BudgetReached(Exception):
    """Training stopped by --max-minutes (not an error: the best epoch so far is evaluated)."""


def _peer_trainer_class(base: type) -> type:
    """RecBole's Trainer that times epochs, reports them on stderr and keeps the best weights in memory."""

    class PeerTrainer(base):
        def __init__(self, config: Any, model: Any) -> None:
            super().__init__(config, model)
            self.best_state: dict[str, Any] | None = None
            self.best_epoch = -1
            self.epochs_run = 0
            self.train_seconds = 0.0
            self.eval_seconds = 0.0
            self._epoch = 0
            self._epoch_loss = math.nan
            self._epoch_seconds = 0.0
            self.deadline: float | None = None  # perf_counter() past which no epoch may end
            self._epoch_total = 0.0
            self.budget_stopped = False

        def _train_epoch(
            self, train_data: Any, epoch_idx: int, loss_func: Any = None, show_progress: bool = False
        ) -> Any:
            t0 = time.perf_counter()
            # An epoch that would end past the deadline is not started (the last one's length is the
            # forecast); the best epoch so far was already kept by _save_checkpoint.
            if self.deadline is not None and self.epochs_run and t0 + self._epoch_total > self.deadline:
                self.budget_stopped = True
                raise BudgetReached
            loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
            self._epoch_seconds = time.perf_counter() - t0
            self.train_seconds += self._epoch_seconds
            self._epoch = epoch_idx
            self.epochs_run = epoch_idx + 1
            # RecBole sums the batch losses; the mean reads the same whatever the batch count.
            self._epoch_loss = float(loss) / max(len(train_data), 1)
            return loss

        def _valid_epoch(self, valid_data: Any, show_progress: bool = False) -> Any:
            t0 = time.perf_counter()
            score, result = super()._valid_epoch(valid_data, show_progress=show_progress)
            seconds = time.perf_counter() - t0
            self.eval_seconds += seconds
            self._epoch_total = self._epoch_seconds + seconds
            _log(
                f"epoch {self._epoch} loss {self._epoch_loss:.4f} valid NDCG@10 {score:.4f} "
                f"train {self._epoch_seconds:.1f}s eval {seconds:.1f}s"
            )
            return score, result

        def _save_checkpoint(self, epoch: int, verbose: bool = True, **kwargs: Any) -> None:
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.best_epoch = epoch

    return PeerTrainer


def _rank_test_users(
    trainer: Any, test_data: Any, dataset: Any, topk: int, torch: Any, np: Any
) -> dict[str, list[str]]:
    """Every test user's top ``topk`` items over the whole catalogue, best first, as tokens.

    Scores come from RecBole's own full-sort path, which sets the padding item 0 to -inf and masks
    no history for sequential models.
    """
    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    user_tokens = dataset.field2id_token[uid_field]
    item_tokens = dataset.field2id_token[iid_field]
    k = min(topk, dataset.item_num - 1)
    ranked: dict[str, list[str]] = {}
    trainer.model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction, scores, _, _ = trainer._full_sort_batch_eval(batch)
            top = torch.topk(scores, k, dim=1).indices.cpu().numpy()
            users = interaction[uid_field].cpu().numpy()
            for user, items in zip(users, top, strict=True):
                ranked[str(user_tokens[user])] = [str(t) for t in item_tokens[np.asarray(items)]]
    return ranked


if __name__ == "__main__":
    sys.exit(main())
