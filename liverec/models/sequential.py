"""A text-aware sequential model: causal self-attention over the user's last actions (SASRec-style).

Each action is an item embedding — a learned ID embedding plus a learned projection of the
item's frozen language-model vector, so an item the model never saw still has one — plus an
event-type embedding, a time-gap embedding and a position embedding. Pre-norm transformer
blocks read the sequence causally; the last position's output is the user's "what next"
vector, scored against the same item embeddings (tied input and output, as SASRec ties them).

Training is the efficient kind (Kang & McAuley, 2018): every position of every window predicts
the next item, with a full softmax over the catalog up to ``full_softmax_items`` and a sampled
one beyond (Klenitskiy & Vasilev, 2023, "gSASRec"/"Turning dross into gold loss" show softmax
losses beat SASRec's binary loss). Early stopping on validation NDCG@10 of held-out last items,
under a time budget; seeded. torch is imported only to train: serving runs the same forward
pass in numpy on the exported weights (``forward`` in this module), about 0.2 ms for one user.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.models._common import (
    check_k,
    history_weight,
    indices_of,
    read_ids,
    read_params,
    require_fitted,
    top_k,
    write_ids,
    write_params,
)
from liverec.models.base import EVENT_TYPES, TYPE_INDEX, Ranked, ScoredItems, TrainingData, as_scored
from liverec.models.mips import INDEX_FILE, MaxInnerProduct

__all__ = ["GAP_BUCKETS", "SequenceModel", "gap_bucket"]

GAP_BUCKETS = 16  # bucket 0: the first action; then one bucket per doubling of the minutes since the last
_DEFAULT_TYPE = TYPE_INDEX[EVENT_TYPES[0]]  # a history given without types reads as views
_EPS = 1e-5  # LayerNorm's


def gap_bucket(seconds: float) -> int:
    """The time-gap bucket of an action ``seconds`` after the previous one (1 … GAP_BUCKETS - 1)."""
    minutes = max(0.0, seconds) / 60.0
    return int(min(GAP_BUCKETS - 1, 1 + math.floor(math.log2(1.0 + minutes))))


def gap_buckets(times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Buckets for a sequence of action times (the first action's is 0)."""
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros(len(t), dtype=np.int64)
    if len(t) > 1:
        minutes = np.maximum(np.diff(t), 0.0) / 60.0
        out[1:] = np.minimum(GAP_BUCKETS - 1, 1 + np.floor(np.log2(1.0 + minutes))).astype(np.int64)
    return out


# ---------------------------------------------------------------------------- serving: numpy forward


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: np.ndarray = (x - mean) / np.sqrt(var + _EPS) * weight + bias
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))
    return out


def forward(weights: dict[str, np.ndarray], heads: int, rows: np.ndarray, types: np.ndarray,
            gaps: np.ndarray) -> np.ndarray:
    """The last position's output for one sequence of item-embedding ``rows`` [m, dim] (m ≤ max_len),
    their type indices and gap buckets: the same computation as the torch model in eval mode."""
    stacked = {name: array[None] for name, array in weights.items() if name not in _ROWS}
    return forward_members(stacked, heads, rows[None], types, gaps)[0]


_ROWS = ("items", "proj")  # what the forward pass does not read from the stacked weights (the rows' embeddings)


def stack_members(nets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The networks' weights (all of one shape) stacked on a leading member axis, for :func:`forward_members`."""
    return {name: np.stack([net[name] for net in nets]) for name in nets[0] if name not in _ROWS}


def forward_members(stacked: dict[str, np.ndarray], heads: int, rows: np.ndarray, types: np.ndarray,
                    gaps: np.ndarray) -> np.ndarray:
    """:func:`forward` of every member at once: ``rows`` [M, m, dim] are each member's embeddings of
    the same sequence; returns [M, dim]. One set of array operations serves all M networks, so an
    ensemble costs about what one network does on the request path (its cost is per operation)."""
    n_members, m, dim = rows.shape
    max_len = stacked["pos"].shape[1]
    x = rows + stacked["type"][:, types + 1] + stacked["gap"][:, gaps + 1] + stacked["pos"][:, max_len - m :]
    causal = np.triu(np.full((m, m), -np.inf, dtype=np.float32), k=1)
    dh = dim // heads
    blocks = int(stacked["blocks"][0, 0])
    for b in range(blocks):
        p = f"b{b}."
        h = _layer_norm(x, stacked[p + "ln1.w"][:, None], stacked[p + "ln1.b"][:, None])
        qkv = h @ stacked[p + "qkv.w"].transpose(0, 2, 1) + stacked[p + "qkv.b"][:, None]  # [M, m, 3 dim]
        q, k, v = (qkv[:, :, i * dim : (i + 1) * dim].reshape(n_members, m, heads, dh).transpose(0, 2, 1, 3)
                   for i in range(3))
        mask = causal
        if b == blocks - 1:  # only the last position's output is read: from here on, its query and row alone
            q, x, mask = q[:, :, -1:], x[:, -1:], causal[-1:]
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(dh)) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attn = (scores / scores.sum(axis=-1, keepdims=True)) @ v  # [M, heads, rows, dh]
        merged = attn.transpose(0, 2, 1, 3).reshape(n_members, x.shape[1], dim)
        x = x + merged @ stacked[p + "out.w"].transpose(0, 2, 1) + stacked[p + "out.b"][:, None]
        h = _layer_norm(x, stacked[p + "ln2.w"][:, None], stacked[p + "ln2.b"][:, None])
        hidden = _gelu(h @ stacked[p + "ff1.w"].transpose(0, 2, 1) + stacked[p + "ff1.b"][:, None])
        x = x + hidden @ stacked[p + "ff2.w"].transpose(0, 2, 1) + stacked[p + "ff2.b"][:, None]
    out: np.ndarray = _layer_norm(x[:, -1], stacked["norm.w"], stacked["norm.b"])
    return out.astype(np.float32)


# ---------------------------------------------------------------------------- the model


class SequenceModel:
    """Next-item scores from the order of a user's recent actions, aware of item texts.

    Parameters
    ----------
    dim
        Embedding and hidden size.
    layers, heads
        Transformer blocks and attention heads.
    max_len
        Actions read per user (the last ones).
    dropout
        Dropout on embeddings, attention output and feed-forward output while training.
    text
        Add a learned projection of each item's language-model vector to its ID embedding.
    lr, weight_decay, batch_size
        AdamW's settings and sequences per step.
    max_epochs, patience, max_seconds
        Training stops at the first of: ``max_epochs`` passes, ``patience`` passes without a better
        validation NDCG@10 (two in a row halve the learning rate), or ``max_seconds`` (checked after
        every step); the best pass's weights are kept. :meth:`refit` gets what is left of
        ``max_seconds`` (at least a tenth of it).
    refit_passes
        Passes a refit on all data (:meth:`refit`) continues from the weights validation chose.
    validation_users
        Users whose last item is held out to choose the pass.
    full_softmax_items
        Beyond this catalog size the loss samples ``negatives`` items per step instead. A full
        softmax holds a batch's logits, their log-softmax and gradients, ~12 bytes × target
        positions (up to ``batch_size × max_len`` = 6,400) × items: 7.7 GB at 100,000 items, where
        a training of the 100k-item, 1M-event synthetic world peaked at 11.2 GB RSS; 1.5 GB at
        20,000.
    members
        At most this many networks, trained from seeds ``seed``, ``seed + 1``, …, whose scores add:
        an ensemble, served as one model whose vectors are the members' side by side. A member is
        trained only while ``max_seconds`` has room for a whole one and kept only if the ensemble's
        validation NDCG@10 rises. One by default; ``Ensemble`` in ``_sequence_training`` says
        what three measured.
    seed, threads
        Randomness, and the torch threads training uses.
    """

    name: ClassVar[str] = "sequential"

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.3,
        text: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        max_epochs: int = 200,
        patience: int = 5,
        max_seconds: float = 900.0,
        refit_passes: int = 2,
        validation_users: int = 2000,
        full_softmax_items: int = 20_000,
        negatives: int = 2048,
        members: int = 1,
        seed: int = 0,
        threads: int = 2,
    ) -> None:
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.max_len = max_len
        self.dropout = dropout
        self.text = text
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_seconds = max_seconds
        self.refit_passes = refit_passes
        self.validation_users = validation_users
        self.full_softmax_items = full_softmax_items
        self.negatives = negatives
        self.members = members
        self.seed = seed
        self.threads = threads

    def _validate(self) -> None:
        for field in ("dim", "layers", "heads", "max_len", "batch_size", "max_epochs", "patience", "threads",
                      "full_softmax_items", "negatives", "validation_users", "members"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{field} must be an integer >= 1, got {value!r}", field=field, value=value)
        if self.dim % self.heads:
            raise InvalidInputError(f"dim {self.dim} must be a multiple of heads {self.heads}", field="dim",
                                    value=self.dim)
        if isinstance(self.refit_passes, bool) or not isinstance(self.refit_passes, int) or self.refit_passes < 0:
            raise InvalidInputError(f"refit_passes must be an integer >= 0, got {self.refit_passes!r}",
                                    field="refit_passes", value=self.refit_passes)
        for field in ("dropout", "lr", "weight_decay", "max_seconds"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"{field} must be a number >= 0, got {value!r}", field=field, value=value)

    # -- training -------------------------------------------------------------------------

    def fit(self, data: TrainingData) -> Self:
        """Learn from every user's positive item actions in time order (see the module docstring)."""
        self._validate()
        from liverec.models._sequence_training import Ensemble, deterministic_threads

        sequences = _sequences(data)
        trainer = Ensemble(self, data.item_vectors, len(data.item_ids))
        members, report = deterministic_threads(self.threads, lambda: trainer.fit(sequences))
        self._trainer: Any = trainer  # kept for refit(); dropped after it
        self._set_state(list(data.item_ids), _merged(members), report)
        return self

    def refit(self, data: TrainingData) -> Self:
        """Continue from this fit on ``data`` (all events: what validation held out included) for
        ``refit_passes`` passes, rather than train again from scratch; returns ``self``.

        ``data`` must have the items this model was fitted on, in the same order.
        """
        require_fitted(self, "weights_")
        trainer = getattr(self, "_trainer", None)
        if trainer is None or list(data.item_ids) != self.item_ids_:
            return self.fit(data)
        from liverec.models._sequence_training import deterministic_threads

        sequences = _sequences(data)
        # One budget for both: the refit gets what the fit left of max_seconds (at least a tenth),
        # so training a large log stays bounded however long one pass over it takes.
        left = max(self.max_seconds - float(self.report_.get("seconds", 0.0)), self.max_seconds / 10)
        members, more = deterministic_threads(self.threads, lambda: trainer.resume(sequences, self.refit_passes, left))
        self._trainer = None  # the optimiser's state is not needed past the refit
        self._set_state(list(data.item_ids), _merged(members), {**self.report_, **more})
        return self

    def _set_state(
        self, item_ids: list[str], weights: dict[str, np.ndarray], report: dict[str, Any], index: Path | None = None
    ) -> None:
        self.item_ids_ = item_ids
        self.item_index_ = {item_id: i for i, item_id in enumerate(item_ids)}
        self.weights_ = weights
        self.report_ = report
        self.nets_ = _split(weights)
        self._stacked = stack_members(self.nets_)
        # Each item's vector: the members' embeddings side by side (row i + 1 of a member's table
        # is item i; row 0 is padding), so one inner product adds the members' scores. One network's
        # table is a view (no copy: at 1M items it is 256 MB); an ensemble's is a second copy.
        tables = [net["items"][1:] for net in self.nets_]
        self.table_: np.ndarray = tables[0] if len(tables) == 1 else np.concatenate(tables, axis=1)
        self._norms = np.maximum(np.linalg.norm(self.table_, axis=1), 1e-12)
        self.item_search_: MaxInnerProduct = MaxInnerProduct(self.table_, index=index)

    # -- serving --------------------------------------------------------------------------

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Item embeddings for items the model never saw, from their language-model vectors alone."""
        require_fitted(self, "weights_")
        vectors = np.asarray(vectors, dtype=np.float32)
        return np.concatenate([vectors @ net["proj"].T for net in self.nets_], axis=1)

    def user_vector(
        self,
        item_ids: Sequence[str],
        types: Sequence[int] | None = None,
        times: Sequence[float] | None = None,
        unknown: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray | None:
        """The "what next" vector after these actions (oldest first; the last ``max_len`` are read).

        ``types`` are positions in ``EVENT_TYPES`` (default: views); ``times`` their timestamps
        (default: no gaps). An item the model never saw is read through its language-model vector
        in ``unknown`` (by id), or left out when it has none. None when no action is readable.
        """
        require_fitted(self, "weights_")
        rows, kept = [], []  # a known item's table row (i + 1); 0 for an unknown one, embedded from its text
        texts: dict[int, np.ndarray] = {}  # position in rows -> text vector of an unknown item
        for n, item_id in enumerate(item_ids):
            i = self.item_index_.get(item_id)
            if i is not None:
                rows.append(i + 1)
                kept.append(n)
            elif unknown is not None and item_id in unknown:
                texts[len(rows)] = unknown[item_id]
                rows.append(0)
                kept.append(n)
        if not rows:
            return None
        start = max(0, len(rows) - self.max_len)
        kept = kept[start:]
        table_rows = np.asarray(rows[start:])
        fresh = [p - start for p in texts if p >= start]  # unknown items' positions in the kept sequence
        fresh_texts = np.asarray([texts[p + start] for p in fresh], dtype=np.float32)
        type_ids = np.array([types[n] if types is not None else _DEFAULT_TYPE for n in kept], dtype=np.int64)
        gaps = gap_buckets([times[n] for n in kept]) if times is not None else np.zeros(len(kept), dtype=np.int64)
        embedded = np.stack([_embed(net, table_rows, fresh, fresh_texts) for net in self.nets_])
        out: np.ndarray = forward_members(self._stacked, self.heads, embedded, type_ids, gaps).reshape(-1)
        return out

    def score_ranked(self, user_vector: np.ndarray, k: int = 10, exclude: Collection[str] = ()) -> Ranked:
        """The ``k`` best known items for a user vector, never one in ``exclude``."""
        require_fitted(self, "weights_")
        check_k(k)
        best, scores = self.item_search_.top(user_vector, k, indices_of(self.item_index_, exclude))
        return [self.item_ids_[i] for i in best.tolist()], scores.astype(np.float64)

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """Items next after the positive ``history`` items in order (read as views without times);
        never a history item or one in ``exclude``."""
        require_fitted(self, "weights_")
        check_k(k)
        positive = [item_id for item_id, w in history if history_weight(item_id, w) > 0]
        vector = self.user_vector(positive)
        if vector is None or k == 0:
            return []
        seen = {item_id for item_id, _ in history}
        return as_scored(self.score_ranked(vector, k, exclude=seen | set(exclude)))

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        """Items whose embeddings are nearest by cosine (never the item itself)."""
        require_fitted(self, "weights_")
        check_k(k)
        i = self.item_index_.get(item_id)
        if i is None or k == 0:
            return []
        table = self.table_
        sims = (table @ table[i]).astype(np.float64) / (self._norms * self._norms[i])
        sims[i] = -np.inf
        best = top_k(sims, k)
        return [(self.item_ids_[j], float(sims[j])) for j in best.tolist()]

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        require_fitted(self, "weights_")
        path = Path(path)
        write_params(self, path)
        write_ids(path / "item_ids.json", self.item_ids_)
        with open(path / "weights.npz", "wb") as fh:
            np.savez(fh, **self.weights_)  # type: ignore[arg-type]  # numpy's stub takes **kwds as allow_pickle
        (path / "report.json").write_text(json.dumps(self.report_, indent=2))
        self.item_search_.save(path / INDEX_FILE)

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        model = cls(**read_params(cls, path))
        with np.load(path / "weights.npz", allow_pickle=False) as z:
            weights = {key: z[key] for key in z.files}
        report = json.loads((path / "report.json").read_text()) if (path / "report.json").exists() else {}
        model._set_state([str(x) for x in read_ids(path / "item_ids.json")], weights, report, index=path / INDEX_FILE)
        return model


def _embed(net: dict[str, np.ndarray], rows: np.ndarray, fresh: list[int], texts: np.ndarray) -> np.ndarray:
    """One member's embeddings of a sequence: its table's ``rows`` (one gather), the ``fresh``
    positions read through its projection of their ``texts`` (one product)."""
    out: np.ndarray = net["items"][rows]  # a copy: fancy indexing
    if fresh:
        out[fresh] = texts @ net["proj"].T
    return out


_MEMBER = re.compile(r"m(\d+)\.(.+)")  # member k's arrays in the saved weights, k >= 1


def _merged(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One weights dict (one ``weights.npz``): the first member's arrays under their own names, as a
    single network saves them, member k's under ``m{k}.``."""
    out = dict(members[0])
    for k, weights in enumerate(members[1:], 1):
        out.update({f"m{k}.{name}": array for name, array in weights.items()})
    return out


def _split(weights: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The members of :func:`_merged` weights, in order (weights saved by one network: one member)."""
    nets: list[dict[str, np.ndarray]] = [{}]
    for name, array in weights.items():
        match = _MEMBER.fullmatch(name)
        if match is None:
            nets[0][name] = array
            continue
        k = int(match.group(1))
        nets.extend({} for _ in range(k + 1 - len(nets)))
        nets[k][match.group(2)] = array
    return nets


def _sequences(data: TrainingData) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per user with at least one positive item action: (item indices, type indices, gap buckets), in time order."""
    keep = (data.event_item >= 0) & (data.event_weight > 0)
    users = data.event_user[keep]
    items = data.event_item[keep].astype(np.int64)
    times = data.event_time[keep]
    types = (data.event_type[keep] if data.event_type is not None
             else np.full(len(items), _DEFAULT_TYPE, dtype=np.int8)).astype(np.int64)
    order = np.lexsort((np.arange(len(users)), times, users))  # by user, then time, then log order
    users, items, times, types = users[order], items[order], times[order], types[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    out = []
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(users)], strict=True):
        if stop > start:
            out.append((items[start:stop], types[start:stop], gap_buckets(times[start:stop])))
    return out
