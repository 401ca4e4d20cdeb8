"""Train RecTools 0.19's SASRec on a leave-one-out split and write its rankings as JSON.

The evaluation harness (``liverec.evaluation.rectools_peers``) runs this script as a subprocess with
``.venv-rectools/bin/python`` (built by ``make peers``). It must not import liverec: RecTools 0.19 caps
numpy below 2 and pins lightning and pandas majors that liverec's stack has outgrown.

Input: ``DIR/NAME.{train,valid,test}.tsv``, tab-separated with the header ``user_id  item_id`` and
space- and tab-free tokens. ``train`` holds every training interaction, each user's in time order (the
row order is the time: RecTools orders a user's history by it, so ties cannot reorder anything);
``valid`` and ``test`` hold one target per user.

The model is RecTools' ``SASRecModel`` configured as eSASRec (Tikhonovich et al., RecSys 2025: SASRec's
shifted-sequence objective with LiGR transformer layers) in its Amazon leave-one-out setting, with the
full-softmax loss in place of the paper's sampled softmax (see ``MODEL_SETTINGS``). It is trained on the
train rows with each user's valid item held out as RecTools' validation target; after every epoch the
runner scores NDCG@10 on those targets (full ranking, history not masked, as RecBole validates) and
keeps the best epoch's weights in memory, stopping after ``--patience`` epochs without a better one, at
``--epochs``, or before an epoch that would end past ``--max-minutes``. The best weights then rank every
test user's top ``--topk`` items over all items the model knows, with train + valid as the history (the
protocol RecBole's peers get) and no history masking (the harness masks).

The JSON written to ``--out`` holds the config, the RecTools and torch versions, epochs run and the best
epoch (0-based), whether the time budget stopped training, the best epoch's validation metrics and the
runner's own unmasked test metrics (``recall|mrr|ndcg@5|10|20``, a user the model cannot rank counting as
a miss), seconds, and ``test``: every ranked test user's item tokens, best first.

Speed (``--speed``). RecTools computes full-catalogue logits at every position of every left-padded
history, though its softmax loss uses only the real ones (on Scientific 90% are padding) and
validation only the last. ``exact`` (the default) computes just those, on batches cut to their longest
history: the same loss and scores (see ``_fast_module_class``; checked on every run), about 4x less work.
``stock`` runs RecTools unchanged, for timing and comparison.

Progress, one line per epoch starting with ``epoch``, goes to stderr. A bad argument or input file exits
with code 2 and one line on stderr; any other failure exits non-zero with a traceback.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

MODELS = ("SASRec",)
SPLITS = ("train", "valid", "test")
HEADER = ["user_id", "item_id"]
EXIT_BAD_INPUT = 2
KS = (5, 10, 20)
VALID_METRIC = "ndcg@10"

# eSASRec as its authors ran it on Amazon Beauty/Sports/Toys under leave-one-out
# (github.com/blondered/transformer_benchmark, configs/paper/loo/s3_*_ligr.yaml): LiGR layers (pre-norm,
# gated residuals, SwiGLU feed-forward, ff multiplier 4 on Beauty), key padding mask, history 50, one
# block, one head, dropout 0.2, lr 1e-3, RecTools' batch of 128 user sequences. The loss is the full
# softmax, not the paper's sampled softmax over 256 negatives: the harness's other SASRec trains with
# full-softmax CE, and a catalogue of a few thousand items needs no sampling. The width is 64, the value
# in the README's table of chosen hyperparameters for the Amazon sets; the LOO config files say 256,
# which costs about twice the time per epoch on 2 CPU cores.
MODEL_SETTINGS: dict[str, Any] = {
    "transformer_layers_type": "LiGRLayers",
    "transformer_layers_kwargs": {"ff_factors_multiplier": 4, "ff_activation": "swiglu", "bias_in_ff": False},
    "use_key_padding_mask": True,
    "use_causal_attn": True,
    "use_pos_emb": True,
    "n_factors": 64,
    "n_blocks": 1,
    "n_heads": 1,
    "dropout_rate": 0.2,
    "session_max_len": 50,
    "loss": "softmax",
    "lr": 0.001,
    "batch_size": 128,
    "train_min_user_interactions": 2,
    "item_net_block_types": ["IdEmbeddingsItemNet"],
}


class BadInput(Exception):
    """A bad argument or input file: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage; the harness relays stderr, and one line reads better there.
        raise BadInput(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and check the command line (files are checked by :func:`read_split`)."""
    p = _Parser(prog="rectools_peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="SASRec", choices=MODELS)
    p.add_argument("--data-dir", required=True, type=Path, help="folder holding NAME.{train,valid,test}.tsv")
    p.add_argument("--dataset", required=True, help="NAME, the files' common prefix")
    p.add_argument("--out", required=True, type=Path, help="JSON file to write")
    p.add_argument("--topk", type=int, default=200, help="items ranked per test user (default 200)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--epochs", type=int, default=200, help="at most this many epochs (default 200, as eSASRec)")
    p.add_argument("--patience", type=int, default=10,
                   help="stop after this many epochs without a better valid NDCG@10 (default 10, as the "
                        "RecBole peers' stopping_step)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop training before an epoch that would end past this budget (the best epoch so "
                        "far is kept and reported as budget-stopped); default: early stopping alone")
    p.add_argument("--speed", choices=("exact", "stock"), default="exact",
                   help="exact (default): RecTools' loss and validation scores without the padding work; "
                        "stock: RecTools unchanged")
    args = p.parse_args(argv)
    for name in ("topk", "epochs", "patience", "threads"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise BadInput(f"--max-minutes must be positive, got {args.max_minutes}")
    if not args.dataset or any(c in args.dataset for c in "/\\") or args.dataset.strip() != args.dataset:
        raise BadInput(f"--dataset must be a plain file-name prefix, got {args.dataset!r}")
    if not args.data_dir.is_dir():
        raise BadInput(f"--data-dir {str(args.data_dir)!r} is not a folder")
    if not args.out.parent.is_dir():
        raise BadInput(f"the folder of --out {str(args.out)!r} does not exist")
    return args


def read_split(data_dir: Path, name: str) -> dict[str, list[tuple[str, str]]]:
    """The three files' ``(user, item)`` rows, checked before RecTools sees them.

    RecTools would drop quietly what it cannot use (a user without history, a second target), so the
    runner refuses it instead: one target per user, and every target user has a training history.
    """
    rows: dict[str, list[tuple[str, str]]] = {}
    for split in SPLITS:
        path = data_dir / f"{name}.{split}.tsv"
        if not path.is_file():
            raise BadInput(f"missing input file {path}")
        with path.open(encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            if header != HEADER:
                raise BadInput(f"{path}: header must be {chr(9).join(HEADER)!r}, got {chr(9).join(header)!r}")
            part = []
            for n, line in enumerate(f, start=2):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 2 or not all(fields) or any(" " in x for x in fields):
                    raise BadInput(f"{path}:{n}: expected user<TAB>item with non-empty, space-free tokens")
                part.append((fields[0], fields[1]))
        rows[split] = part
    if not rows["train"]:
        raise BadInput(f"{data_dir / f'{name}.train.tsv'} has no rows")
    if not rows["valid"]:
        raise BadInput(f"{data_dir / f'{name}.valid.tsv'} has no rows: early stopping needs validation targets")
    trained = {u for u, _ in rows["train"]}
    for split in ("valid", "test"):
        seen: set[str] = set()
        for user, _ in rows[split]:
            if user in seen:
                raise BadInput(f"{name}.{split}.tsv: user {user} has more than one target")
            if user not in trained:
                raise BadInput(f"{name}.{split}.tsv: user {user} has no training history")
            seen.add(user)
    return rows


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        rows = read_split(args.data_dir, args.dataset)
    except BadInput as e:
        sys.stderr.write(f"rectools_peer: error: {e}\n")
        return EXIT_BAD_INPUT
    started = time.perf_counter()
    result = run(args, rows)
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    result["rows"] = {split: len(part) for split, part in rows.items()}
    out = args.out.resolve()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, out)
    return 0


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _quiet() -> None:
    """Keep stderr to the progress lines: the harness relays it, and counts lines starting with 'epoch'."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Lightning's advice for GPUs, dataloader workers and logging; RecTools' note on cold users is
    # counted in the JSON instead (they score as misses).
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _is_validation(interactions: Any, valid_from: int) -> Any:
    """RecTools' ``get_val_mask_func``: the valid rows are those timed from ``valid_from`` on."""
    import pandas as pd

    return (interactions["datetime"] >= pd.Timestamp(valid_from, unit="s")).to_numpy()


def _interactions(pairs: list[tuple[str, str]], start: int) -> Any:
    """RecTools' interaction frame, row ``n`` timed ``start + n`` seconds: the row order is the time."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame({
        "user_id": [u for u, _ in pairs],
        "item_id": [i for _, i in pairs],
        "weight": np.ones(len(pairs), dtype=np.float32),
        "datetime": pd.to_datetime(np.arange(start, start + len(pairs)), unit="s"),
    })


def rank_metrics(ranks: Any, ks: tuple[int, ...] = KS) -> dict[str, Any]:
    """Per-user recall, MRR and NDCG at each K from the 0-based rank of each user's one target."""
    import numpy as np

    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = hit.astype(np.float64)
        out[f"mrr@{k}"] = np.where(hit, 1.0 / (ranks + 1), 0.0)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2), 0.0)
    return out


def _peer_callback_class(base: type) -> type:
    """A Lightning callback that times epochs, scores validation, keeps the best weights and stops."""
    import numpy as np
    import torch
    from rectools.models.nn.transformers.data_preparator import SequenceDataset

    class PeerCallback(base):
        def __init__(self, n_valid_users: int, patience: int) -> None:
            self.n_valid_users = n_valid_users
            self.patience = patience
            self.deadline: float | None = None  # perf_counter() past which no epoch may end
            self.best_state: dict[str, Any] | None = None
            self.best_epoch = -1
            self.best_score = -math.inf
            self.best_metrics: dict[str, float] = {}
            self.epochs_run = 0
            self.budget_stopped = False
            self.train_seconds = 0.0
            self.eval_seconds = 0.0
            self.scored_users = 0

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if hasattr(pl_module, "fast_loss"):
                prep = pl_module.data_preparator
                sessions = SequenceDataset.from_interactions(prep.train_dataset.interactions.df)
                train_batch = prep._collate_fn_train([sessions[n] for n in range(min(len(sessions), prep.batch_size))])
                _check_fast_exact(pl_module, train_batch, next(iter(prep.get_dataloader_val())))

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._epoch_start = time.perf_counter()
            self._losses: list[float] = []

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self._losses.append(float(loss))

        def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._valid_start = time.perf_counter()
            self._ranks: list[Any] = []

        def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                    dataloader_idx: int = 0) -> None:
            targets = batch["y"][:, -1]
            # validation_step squeezes [batch, 1, items] logits, so a batch of one comes back 1-d.
            logits = outputs["logits"].reshape(len(targets), -1).clone()
            logits[:, 0] = -torch.inf  # RecTools' padding token is item 0, never a recommendation
            target_scores = logits.gather(1, targets.unsqueeze(1))
            self._ranks.append((logits > target_scores).sum(dim=1).cpu().numpy())

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            now = time.perf_counter()
            train_seconds = self._valid_start - self._epoch_start
            eval_seconds = now - self._valid_start
            self.train_seconds += train_seconds
            self.eval_seconds += eval_seconds
            epoch = self.epochs_run
            self.epochs_run += 1
            ranks = np.concatenate(self._ranks) if self._ranks else np.zeros(0)
            self.scored_users = len(ranks)
            # Users RecTools cannot validate (a target item no training row has) count as misses, so the
            # means are over every validation user, as RecBole's are.
            metrics = {m: float(v.sum()) / self.n_valid_users for m, v in rank_metrics(ranks).items()}
            score = metrics[VALID_METRIC]
            loss = float(np.mean(self._losses)) if self._losses else math.nan
            _log(f"epoch {epoch} loss {loss:.4f} valid NDCG@10 {score:.4f} "
                 f"train {train_seconds:.1f}s eval {eval_seconds:.1f}s")
            if score > self.best_score:
                self.best_score, self.best_epoch, self.best_metrics = score, epoch, metrics
                self.best_state = copy.deepcopy(pl_module.torch_model.state_dict())
            if epoch - self.best_epoch >= self.patience:
                trainer.should_stop = True
            elif (self.deadline is not None and self.epochs_run < trainer.max_epochs
                  and now + train_seconds + eval_seconds > self.deadline):
                # The next epoch would end past the budget (this one's length is the forecast).
                self.budget_stopped = True
                trainer.should_stop = True

    return PeerCallback


def _trim(batch: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``batch`` without the columns left of its longest history, which are padding in every row."""
    x = batch["x"]
    used = (x != 0).any(dim=0).nonzero()
    first = int(used[0]) if len(used) else x.shape[1] - 1
    return {k: v[:, first:] if k in keys else v for k, v in batch.items()} if first else batch


def _fast_module_class(base: type) -> type:
    """RecTools' lightning module computing the same softmax loss and validation scores with less work.

    Exact, read from RecTools 0.19's code: histories are left-padded, positions are counted from the right
    (``LearnableInversePositionalEncoding``) and attention is causal with padded keys masked, so a real
    position never sees a padding column and the columns left of a batch's longest history can go. The
    softmax loss ignores targets at padding (``ignore_index=0``), so only real positions need the
    full-catalogue logits (RecTools computes them at every position and drops most: 90% of Scientific's
    are padding); validation reads only the last position. Only dropout's random draws differ in number,
    so a run is equal in distribution, not bit for bit, to a stock one; ``_check_fast_exact`` compares
    both paths' loss and validation scores on every run.
    """
    import torch

    class FastModule(base):
        def _encode(self, batch: dict[str, Any]) -> tuple[Any, Any]:
            item_embs = self.torch_model.item_model.get_all_embeddings()
            return self.torch_model.encode_sessions(batch, item_embs), item_embs

        def fast_loss(self, batch: dict[str, Any]) -> Any:
            batch = _trim(batch, ("x", "y", "yw"))
            session_embs, item_embs = self._encode(batch)
            y, w = batch["y"], batch["yw"]
            real = y != 0
            logits = self.torch_model.similarity_module(session_embs[real], item_embs) / self.logits_t
            loss = torch.nn.functional.cross_entropy(logits, y[real], reduction="none") * w[real]
            return torch.sum(loss) / torch.sum((loss > 0).to(loss.dtype))  # RecTools' own reduction

        def fast_valid_logits(self, batch: dict[str, Any]) -> Any:
            session_embs, item_embs = self._encode(_trim(batch, ("x",)))
            return self.torch_model.similarity_module(session_embs[:, -1, :], item_embs) / self.logits_t

        def training_step(self, batch: dict[str, Any], batch_idx: int) -> Any:
            loss = self.fast_loss(batch)
            self.log(self.train_loss_name, loss, on_step=False, on_epoch=True, prog_bar=False)
            return loss

        def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
            return {"logits": self.fast_valid_logits(batch)}

    return FastModule


def _check_fast_exact(module: Any, train_batch: dict[str, Any], valid_batch: dict[str, Any]) -> None:
    """Score one training and one validation batch both ways (dropout off); they must agree."""
    import torch

    module.eval()
    with torch.no_grad():
        stock_loss = module.loss_calculator(module.get_batch_logits(train_batch), train_batch["y"], train_batch["yw"])
        fast_loss = module.fast_loss(train_batch)
        stock_valid = module.get_batch_logits(valid_batch)[:, -1, :]
        fast_valid = module.fast_valid_logits(valid_batch)
    module.train()
    if not torch.allclose(stock_loss, fast_loss, rtol=1e-4, atol=1e-5):
        raise RuntimeError(f"the fast loss {float(fast_loss):.6g} differs from RecTools' {float(stock_loss):.6g}; "
                           "use --speed stock")
    if not torch.allclose(stock_valid, fast_valid, rtol=1e-4, atol=1e-5):
        gap = float((stock_valid - fast_valid).abs().max())
        raise RuntimeError(f"the fast validation scores differ from RecTools' (max gap {gap:.3g}); use --speed stock")


def run(args: argparse.Namespace, rows: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """Train with early stopping, reload the best epoch, rank the test users; return the JSON document."""
    import numpy as np
    import pandas as pd
    import pytorch_lightning as pl
    import rectools
    import torch
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet
    from rectools.models.nn.transformers.lightning import TransformerLightningModule
    from rectools.models.nn.transformers.ligr import LiGRLayers

    _quiet()  # after the imports: importing pytorch_lightning sets its own log level

    torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed, workers=True, verbose=False)

    load_start = time.perf_counter()
    train, valid, test = rows["train"], rows["valid"], rows["test"]
    valid_from = len(train)
    # Valid rows come after every training row, so a user's valid item closes their history.
    with_valid = pd.concat([_interactions(train, 0), _interactions(valid, valid_from)], ignore_index=True)
    fit_dataset = Dataset.construct(with_valid)
    load_seconds = time.perf_counter() - load_start

    callback = _peer_callback_class(pl.Callback)(n_valid_users=len(valid), patience=args.patience)

    def trainer() -> pl.Trainer:
        return pl.Trainer(
            max_epochs=args.epochs, min_epochs=1, deterministic=True, accelerator="cpu", devices=1,
            enable_progress_bar=False, enable_model_summary=False, logger=False, enable_checkpointing=False,
            num_sanity_val_steps=0, callbacks=[callback],
        )

    settings = {k: v for k, v in MODEL_SETTINGS.items() if k not in ("transformer_layers_type", "item_net_block_types")}
    model = SASRecModel(
        **settings,
        transformer_layers_type=LiGRLayers,
        item_net_block_types=(IdEmbeddingsItemNet,),
        get_val_mask_func=_is_validation,
        get_val_mask_func_kwargs={"valid_from": valid_from},
        get_trainer_func=trainer,
        lightning_module_type=(_fast_module_class(TransformerLightningModule) if args.speed == "exact"
                               else TransformerLightningModule),
        recommend_batch_size=256,
        recommend_torch_device="cpu",
    )
    if args.max_minutes is not None:
        callback.deadline = time.perf_counter() + 60.0 * args.max_minutes
    model.fit(fit_dataset)
    # RecTools fits a deep copy of the trainer, callbacks included: the state to read is the copy's.
    fitted = next(c for c in model.fit_trainer.callbacks if isinstance(c, type(callback)))
    if fitted.budget_stopped:
        plural = "s" if fitted.epochs_run != 1 else ""
        _log(f"time budget of {args.max_minutes:g} min reached after {fitted.epochs_run} epoch{plural}; "
             f"keeping the best epoch so far ({fitted.best_epoch})")
    if fitted.best_state is None:
        raise RuntimeError("training ended before any validation; no best epoch to evaluate")
    model.torch_model.load_state_dict(fitted.best_state)

    predict_start = time.perf_counter()
    test_users = [u for u, _ in test]
    known_items = len(model.data_preparator.get_known_item_ids())
    reco = model.recommend(users=test_users, dataset=fit_dataset, k=min(args.topk, known_items),
                           filter_viewed=False, on_unsupported_targets="ignore")
    reco = reco.sort_values(["user_id", "rank"], kind="stable")
    ranked = {str(u): [str(i) for i in group["item_id"]] for u, group in reco.groupby("user_id", sort=False)}
    predict_seconds = time.perf_counter() - predict_start

    test_ranks = []
    for user, target in test:
        row = ranked.get(user, [])
        test_ranks.append(row.index(target) if target in row else math.inf)
    test_metrics = {m: float(np.mean(v)) for m, v in rank_metrics(test_ranks).items()}
    _log(f"test NDCG@10 {test_metrics['ndcg@10']:.4f} Recall@10 {test_metrics['recall@10']:.4f} "
         f"(best epoch {fitted.best_epoch}, {fitted.epochs_run} epochs)")
    return {
        "model": args.model,
        "rectools_version": rectools.__version__,
        "torch_version": torch.__version__,
        "config": {
            **MODEL_SETTINGS,
            "epochs": args.epochs,
            "patience": args.patience,
            "valid_metric": VALID_METRIC,
            "seed": args.seed,
            "threads": args.threads,
            "speed": args.speed,
            "max_minutes": args.max_minutes,
            "topk_ranked": args.topk,
            "dataset": args.dataset,
        },
        "epochs_trained": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "budget_stopped": fitted.budget_stopped,
        "valid_rectools": fitted.best_metrics,
        "test_rectools": test_metrics,
        "seconds": {
            "load": round(load_seconds, 2),
            "train": round(fitted.train_seconds, 2),
            "eval": round(fitted.eval_seconds, 2),
            "predict": round(predict_seconds, 2),
            "per_epoch_train": round(fitted.train_seconds / max(fitted.epochs_run, 1), 3),
        },
        "n_items": known_items,
        "users": {"valid": len(valid), "valid_scored": fitted.scored_users, "test": len(test),
                  "test_ranked": len(ranked)},
        "test": ranked,
    }


if __name__ == "__main__":
    sys.exit(main())
