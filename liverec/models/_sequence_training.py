"""Training of :class:`~liverec.models.sequential.SequenceModel` with torch (imported only here).

The network is written out by hand (not ``nn.TransformerEncoder``) so that its eval-mode forward
pass is exactly :func:`liverec.models.sequential.forward`, which serving runs in numpy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from liverec.models.base import EVENT_TYPES
from liverec.models.sequential import GAP_BUCKETS

if TYPE_CHECKING:
    from liverec.models.sequential import SequenceModel

Sequence_ = tuple[np.ndarray, np.ndarray, np.ndarray]  # item indices, type indices, gap buckets


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 2 * dim)
        self.ff2 = nn.Linear(2 * dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, m, dim = x.shape
        dh = dim // self.heads
        q, k, v = (t.reshape(b, m, self.heads, dh).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(dim, -1))
        # softmax(q kᵀ / √dh + mask) v, as serving's numpy forward computes it, in torch's fused kernel
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None]).transpose(1, 2).reshape(b, m, dim)
        x = x + self.drop(self.out(attn))
        return x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)), approximate="tanh")))


class _Net(nn.Module):
    def __init__(self, model: SequenceModel, item_vectors: np.ndarray, n_items: int) -> None:
        super().__init__()
        dim = model.dim
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        text = np.zeros((n_items + 1, item_vectors.shape[1] if item_vectors.ndim == 2 else 1), dtype=np.float32)
        if model.text and item_vectors.size:
            text[1:] = item_vectors
        self.register_buffer("text", torch.from_numpy(text))
        self.proj = nn.Linear(text.shape[1], dim, bias=False)
        self.use_text = bool(model.text and item_vectors.size)
        self.kind = nn.Embedding(len(EVENT_TYPES) + 1, dim, padding_idx=0)
        self.gap = nn.Embedding(GAP_BUCKETS + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(model.max_len, dim)
        self.blocks = nn.ModuleList(_Block(dim, model.heads, model.dropout) for _ in range(model.layers))
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(model.dropout)
        self.max_len = model.max_len
        for emb in (self.item, self.kind, self.gap, self.pos):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            for emb in (self.item, self.kind, self.gap):
                emb.weight[0].zero_()
        if not self.use_text:
            nn.init.zeros_(self.proj.weight)
            self.proj.weight.requires_grad_(False)

    def table(self) -> torch.Tensor:
        """Item embeddings, row i + 1 for item i (row 0: padding)."""
        rows: torch.Tensor = self.item.weight
        return rows + self.proj(self.text) if self.use_text else rows

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of :meth:`table`, computed for those rows alone: the whole table is an
        (items × text dim) product per call, which past ~10k items was most of a training step."""
        rows: torch.Tensor = self.item.weight[idx]
        text: torch.Tensor = self.text  # type: ignore[assignment]  # a registered buffer
        return rows + self.proj(text[idx]) if self.use_text else rows

    def forward(self, items: torch.Tensor, types: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """Outputs [B, m, dim] for left-padded inputs (0 = padding; types and gaps shifted by one)."""
        b, m = items.shape
        pad = items == 0
        x = (self.embed(items) + self.kind(types) + self.gap(gaps)
             + self.pos(torch.arange(self.max_len - m, self.max_len)))
        x = self.drop(x)
        causal = torch.triu(torch.full((m, m), float("-inf")), diagonal=1)
        mask = causal[None] + torch.where(pad, float("-inf"), 0.0)[:, None, :]
        idx = torch.arange(m)
        mask[:, idx, idx] = 0.0  # a padding query attends to itself alone (never read), so no row is all -inf
        for block in self.blocks:
            x = block(x, mask)
        out: torch.Tensor = self.norm(x)
        return out

    def export(self) -> dict[str, np.ndarray]:
        with torch.no_grad():
            w = {"items": self.table(), "proj": self.proj.weight, "type": self.kind.weight, "gap": self.gap.weight,
                 "pos": self.pos.weight, "norm.w": self.norm.weight, "norm.b": self.norm.bias}
            for n, block in enumerate(self.blocks):
                for name in ("ln1", "qkv", "out", "ln2", "ff1", "ff2"):
                    layer = getattr(block, name)
                    w[f"b{n}.{name}.w"], w[f"b{n}.{name}.b"] = layer.weight, layer.bias
            out = {k: v.detach().cpu().numpy().astype(np.float32).copy() for k, v in w.items()}
        out["blocks"] = np.array([len(self.blocks)], dtype=np.int64)
        return out


def _windows(sequences: list[Sequence_], max_len: int) -> list[Sequence_]:
    """Windows of at most ``max_len + 1`` actions, cut from each sequence's end backwards, so every
    action is a target once (the first of a window is context only)."""
    out = []
    for items, types, gaps in sequences:
        end = len(items)
        while end >= 2:
            start = max(0, end - max_len - 1)
            out.append((items[start:end], types[start:end], gaps[start:end]))
            end = start + 1 if start > 0 else 0
    return out


def _batch(windows: list[Sequence_], inputs_only: bool = False) -> tuple[torch.Tensor, ...]:
    """Left-padded tensors: inputs (all but the last action) and targets (all but the first), or,
    with ``inputs_only``, every action as input."""
    cut = 0 if inputs_only else 1
    m = max(len(w[0]) - cut for w in windows)
    items = np.zeros((len(windows), m), dtype=np.int64)
    types = np.zeros((len(windows), m), dtype=np.int64)
    gaps = np.zeros((len(windows), m), dtype=np.int64)
    targets = np.zeros((len(windows), m), dtype=np.int64)
    for row, (it, ty, ga) in enumerate(windows):
        n = len(it) - cut
        items[row, m - n :] = it[:n] + 1
        types[row, m - n :] = ty[:n] + 1
        gaps[row, m - n :] = ga[:n] + 1
        if not inputs_only:
            targets[row, m - n :] = it[1:] + 1
    return torch.from_numpy(items), torch.from_numpy(types), torch.from_numpy(gaps), torch.from_numpy(targets)


class _LinearCrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(h @ table.T, target)`` (the mean), a block of rows of the logits at a time.

    The whole logits matrix is positions × items (6,400 × 3,883 floats, 100 MB, on MovieLens-1M),
    written, read by the softmax and read again by its gradient each step: as one allocation it is
    page-faulted in afresh every step and streams through memory several times. A block of ~2 MB
    stays in cache; the backward pass computes its block's logits again (one more product) rather
    than keep them (the fused linear cross-entropy of Liger-Kernel and Apple's Cut Cross-Entropy).
    Measured at 3,883 items and 6,400 positions on 2 cores (medians of 15 interleaved runs): the
    loss and its gradients 194 ms before, 102 ms after; at 20,000 items 1,113 ms and 837 ms.
    """

    @staticmethod
    def _blocks(n: int, items: int) -> range:
        return range(0, n, max(64, (1 << 19) // max(1, items)))  # ~512k logits (2 MB) a block

    @staticmethod
    def _logits(h: torch.Tensor, table: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
        """Each block's rows of ``h`` and their logits, written into one reused buffer (each is
        consumed before the next block overwrites it)."""
        blocks = _LinearCrossEntropy._blocks(len(h), len(table))
        buffer = h.new_empty(min(blocks.step, len(h)), len(table))
        for start in blocks:
            rows = slice(start, min(start + blocks.step, len(h)))
            yield rows, torch.mm(h[rows], table.T, out=buffer[: rows.stop - start])

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, table: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = h.new_zeros(())
        for rows, logits in _LinearCrossEntropy._logits(h, table):
            total += F.cross_entropy(logits, target[rows], reduction="sum")
        ctx.save_for_backward(h, table, target)
        return total / max(1, len(h))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        h, table, target = ctx.saved_tensors
        grad_h, grad_table = torch.empty_like(h), torch.zeros_like(table)
        scale = grad / max(1, len(h))
        for rows, logits in _LinearCrossEntropy._logits(h, table):
            p = torch.softmax(logits, 1)  # d loss / d logits: softmax − one-hot, times the upstream gradient
            p[torch.arange(len(p)), target[rows]] -= 1.0
            p.mul_(scale)
            torch.mm(p, table, out=grad_h[rows])
            grad_table.addmm_(p.T, h[rows])
        return grad_h, grad_table, None


def _loss(net: _Net, hidden: torch.Tensor, targets: torch.Tensor, model: SequenceModel,
          generator: torch.Generator) -> torch.Tensor:
    real = targets > 0
    h = hidden[real]
    target = targets[real] - 1
    n_items = net.item.num_embeddings - 1
    if n_items <= model.full_softmax_items:
        return _LinearCrossEntropy.apply(h, net.table()[1:], target)
    # Sampled softmax: the targets plus shared uniform negatives (a uniform proposal needs no logQ term).
    negatives = torch.randint(0, n_items, (model.negatives,), generator=generator)
    logits = torch.cat([(h * net.embed(target + 1)).sum(-1, keepdim=True), h @ net.embed(negatives + 1).T], dim=1)
    logits[:, 1:] = logits[:, 1:].masked_fill(negatives[None, :] == target[:, None], float("-inf"))
    return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long))


def _ndcg(nets: list[_Net], cases: list[tuple[Sequence_, int]], batch_size: int) -> float:
    """Mean NDCG@10 of each case's held-out item against every item, the user's own items excluded,
    scored by the sum of ``nets``' scores (one net, or the members of an ensemble)."""
    for net in nets:
        net.eval()
    total = 0.0
    with torch.no_grad():
        tables = [net.table()[1:] for net in nets]
        for start in range(0, len(cases), batch_size):
            chunk = cases[start : start + batch_size]
            items, types, gaps, _ = _batch([c[0] for c in chunk], inputs_only=True)
            scores = sum((net(items, types, gaps)[:, -1] @ table.T for net, table in zip(nets, tables, strict=True)),
                         torch.zeros(()))
            for row, (window, target) in enumerate(chunk):
                seen = torch.from_numpy(window[0])
                target_score = scores[row, target].item()
                scores[row, seen] = float("-inf")
                rank = int((scores[row] > target_score).sum())
                if rank < 10:
                    total += 1.0 / math.log2(rank + 2)
    for net in nets:
        net.train()
    return total / max(1, len(cases))


class Trainer:
    """A network and its optimiser between passes: trained with early stopping on held-out last
    items, then (``resume``) continued for a few passes on every sequence, as a refit on all data.

    The learning rate halves after two passes in a row without a better validation NDCG@10 (torch's
    ``ReduceLROnPlateau``: a lower rate settles a noisy plateau, but halving after every noisy pass
    starved training on Scientific), and training stops after ``patience`` passes without one.
    """

    def __init__(self, model: SequenceModel, item_vectors: np.ndarray, n_items: int, member: int = 0) -> None:
        seed = model.seed + member  # an ensemble's members differ in initialisation and batch order only
        torch.manual_seed(seed)
        self.model = model
        self.net = _Net(model, item_vectors, n_items)
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=model.lr, weight_decay=model.weight_decay)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5, patience=1)
        self.generator = torch.Generator().manual_seed(seed)
        # The held-out users come from the model's seed, so every member is chosen on the same ones;
        # the first member draws its batches from that same generator, as a lone network always has.
        self.held_rng = np.random.default_rng(model.seed)
        self.rng = self.held_rng if member == 0 else np.random.default_rng(seed)
        self.cases: list[tuple[Sequence_, int]] = []

    def _pass(self, windows: list[Sequence_], deadline: float = math.inf) -> bool:
        """One pass over ``windows`` in shuffled, length-sorted batches; whether it finished before
        ``deadline`` (a ``time.perf_counter()`` value: a pass over a large log can outlast a budget
        many times over, so the budget is checked after every step, not only between passes)."""
        model, rng = self.model, self.rng
        order = rng.permutation(len(windows))
        # Windows of similar length share a batch (little padding): sort within chunks of 50 batches.
        chunk = 50 * model.batch_size
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk].tolist(), key=lambda i: len(windows[i][0]))
            batches += [part[i : i + model.batch_size] for i in range(0, len(part), model.batch_size)]
        self.net.train()
        for b in rng.permutation(len(batches)).tolist():
            if time.perf_counter() > deadline:
                return False
            inputs, kinds, gap_ids, targets = _batch([windows[i] for i in batches[b]])
            loss = _loss(self.net, self.net(inputs, kinds, gap_ids), targets, model, self.generator)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return True

    def fit(self, sequences: list[Sequence_],
            seconds: float | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Train with early stopping for at most ``seconds`` (default: the model's ``max_seconds``)."""
        model = self.model
        t0 = time.perf_counter()
        eligible = [u for u, s in enumerate(sequences) if len(s[0]) >= 2]
        held = set(self.held_rng.choice(eligible, min(model.validation_users, len(eligible)), replace=False).tolist()) \
            if eligible else set()
        cases: list[tuple[Sequence_, int]] = []
        training: list[Sequence_] = []
        for u, (items, types, gaps) in enumerate(sequences):
            if u in held:
                keep = slice(max(0, len(items) - 1 - model.max_len), len(items) - 1)
                cases.append(((items[keep], types[keep], gaps[keep]), int(items[-1])))
                training.append((items[:-1], types[:-1], gaps[:-1]))
            else:
                training.append((items, types, gaps))
        windows = _windows(training, model.max_len)
        best, best_epoch, history, epochs_run = -1.0, 0, [], 0
        best_weights = {k: v.clone() for k, v in self.net.state_dict().items()}
        stopped_by_time = False
        deadline = t0 + (model.max_seconds if seconds is None else seconds)
        self.cases = cases
        for epoch in range(1, model.max_epochs + 1):
            finished = self._pass(windows, deadline)
            epochs_run = epoch
            score = _ndcg([self.net], cases, 512) if cases else 0.0
            history.append(round(score, 5))
            self.plateau.step(score)
            if score > best:
                best, best_epoch = score, epoch
                best_weights = {k: v.clone() for k, v in self.net.state_dict().items()}
            elif epoch - best_epoch >= model.patience:
                break
            if not finished or time.perf_counter() > deadline:
                stopped_by_time = True
                break
        self.net.load_state_dict(best_weights)
        report = {"epochs_run": epochs_run, "best_epoch": best_epoch, "validation_ndcg@10": round(best, 5),
                  "validation_users": len(cases), "windows": len(windows),
                  "seconds": round(time.perf_counter() - t0, 1), "history": history, "stopped_by_time": stopped_by_time,
                  "lr_final": self.optimizer.param_groups[0]["lr"]}
        return self.net.export(), report

    def resume(self, sequences: list[Sequence_], passes: int,
               seconds: float = math.inf) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``passes`` more passes over every window of ``sequences`` (none held out), from the best
        weights, stopping when ``seconds`` run out (a pass cut short keeps the steps it took)."""
        t0 = time.perf_counter()
        windows = _windows(sequences, self.model.max_len)
        done = 0
        for _ in range(passes):
            if not self._pass(windows, t0 + seconds):
                break
            done += 1
        return self.net.export(), {"resumed_passes": done, "resumed_windows": len(windows),
                                   "resumed_seconds": round(time.perf_counter() - t0, 1)}


class Ensemble:
    """Networks trained alike from different seeds, whose scores add (``SequenceModel.members``).

    Averaging a few independently trained networks is the cheapest reliable gain for SASRec-style
    models: on Amazon Scientific's validation targets the model alone scored NDCG@10 0.067–0.071 by
    seed with one network, 0.0748 with three. A member is trained only while the budget has room
    for a whole one (a member cut short would be under-trained) and kept only if the ensemble's
    NDCG@10 on the held-out users every member was early-stopped on rises; a log that fills the
    budget with one network trains one. ``members`` is 1 by default: the whole pipeline did not gain
    on Scientific (test NDCG@10 0.0899 with one network and with three).
    """

    def __init__(self, model: SequenceModel, item_vectors: np.ndarray, n_items: int) -> None:
        self.model, self.item_vectors, self.n_items = model, item_vectors, n_items
        self.trainers: list[Trainer] = []

    def fit(self, sequences: list[Sequence_]) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
        model = self.model
        t0 = time.perf_counter()
        first = Trainer(model, self.item_vectors, self.n_items)
        weights, report = first.fit(sequences)
        self.trainers, members, tried = [first], [weights], []
        best = float(report["validation_ndcg@10"])
        for member in range(1, model.members):
            left = model.max_seconds - (time.perf_counter() - t0)
            if report["stopped_by_time"] or left < report["seconds"]:
                break
            trainer = Trainer(model, self.item_vectors, self.n_items, member)
            more, its = trainer.fit(sequences, left)
            score = _ndcg([t.net for t in self.trainers] + [trainer.net], first.cases, 512) if first.cases else 0.0
            tried.append({"seconds": its["seconds"], "epochs_run": its["epochs_run"],
                          "validation_ndcg@10": its["validation_ndcg@10"], "ensemble_ndcg@10": round(score, 5)})
            if score <= best:
                break
            best = score
            self.trainers.append(trainer)
            members.append(more)
        report = {**report, "members": len(members), "members_tried": tried, "ensemble_ndcg@10": round(best, 5),
                  "seconds": round(time.perf_counter() - t0, 1)}
        return members, report

    def resume(self, sequences: list[Sequence_], passes: int,
               seconds: float = math.inf) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
        """Every member's :meth:`Trainer.resume`, the budget shared equally."""
        t0 = time.perf_counter()
        done = [t.resume(sequences, passes, seconds / len(self.trainers)) for t in self.trainers]
        return [w for w, _ in done], {**done[0][1], "resumed_passes": min(r["resumed_passes"] for _, r in done),
                                      "resumed_seconds": round(time.perf_counter() - t0, 1)}


def deterministic_threads(threads: int, work: Any) -> Any:
    """Run ``work()`` with torch limited to ``threads`` threads and its deterministic algorithms on
    (both restored after). Without them, two threads accumulate some gradients in a varying order:
    the same seed then gave weights ~1e-6 apart, enough to move the ranker's tree splits and every
    list of the demo world (``tests/models/test_models.py``). ``warn_only``: an op with no
    deterministic kernel warns rather than fails a training."""
    before, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return work()
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
