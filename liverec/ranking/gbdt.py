"""A learned ranker: gradient-boosted trees (LightGBM lambdarank) re-rank linear fusion's top candidates.

Two stages, as ranking systems are usually built: linear fusion (cheap, over every recall's
candidates) keeps the best ``depth``; the trees score those from every registered feature block
(each recall's score and rank, the sequence model's score, popularity and age, tag, category and
text affinity). Both are fitted on the held-out next events of validation users; a fold of those
users decides whether the trees beat fusion alone, and the scorer keeps fusion when they do not
(``describe()`` says which and by how much). LightGBM is imported only to train: serving evaluates
the exported trees in numpy, vectorised over rows and trees, and explains a score by each
feature's share along the path (Saabas' decomposition: contributions and the root's value add
up to the tree output), grouped by the source each feature speaks for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.ranking.features import Features
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.scoring import Case, clearly_better, held_out_rank, ndcg_at, register_scorer

__all__ = ["GBDTRanker", "TreeEnsemble"]


class TreeEnsemble:
    """Regression trees as flat arrays; ``predict`` and ``contributions`` in numpy.

    Node ``i`` splits on ``feature[i]`` (``-1``: a leaf) and sends a row left when its value is
    ``<= threshold[i]``; ``value[i]`` is the node's output (LightGBM's internal value for splits).
    """

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 value: np.ndarray, roots: np.ndarray, depth: int) -> None:
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.value = value
        self.roots = roots
        self.depth = depth
        # For the walk: a leaf (left and right are itself) reads feature 0 and stays put whatever it
        # reads, so every row steps in every tree at once; node i's children are _children[2i + go_left].
        self._split_on = np.maximum(feature, 0)
        self._children = np.stack([right, left], axis=1).ravel()

    @classmethod
    def from_lightgbm(cls, booster: Any) -> TreeEnsemble:
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        depth = 0

        def add(node: dict[str, Any], level: int) -> int:
            nonlocal depth
            me = len(feature)
            depth = max(depth, level)
            feature.append(-1)
            threshold.append(0.0)
            left.append(me)
            right.append(me)
            if "leaf_value" in node:
                value.append(float(node["leaf_value"]))
                return me
            if node.get("decision_type", "<=") != "<=":
                raise InvalidInputError(f"unsupported split {node.get('decision_type')!r}", field="decision_type")
            value.append(float(node.get("internal_value", 0.0)))
            feature[me] = int(node["split_feature"])
            threshold[me] = float(node["threshold"])
            left[me] = add(node["left_child"], level + 1)
            right[me] = add(node["right_child"], level + 1)
            return me

        for tree in booster.dump_model()["tree_info"]:
            roots.append(add(tree["tree_structure"], 0))
        return cls(np.array(feature, dtype=np.int64), np.array(threshold), np.array(left, dtype=np.int64),
                   np.array(right, dtype=np.int64), np.array(value), np.array(roots, dtype=np.int64), depth)

    def _path(self, x: np.ndarray) -> list[np.ndarray]:
        """The node each row of ``x`` is at in each tree [rows, trees], level by level from the roots."""
        n, width = x.shape
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        flat, offset = x.ravel(), np.arange(n)[:, None] * width
        path = [node]
        for _ in range(self.depth):
            go_left = flat[offset + self._split_on[node]] <= self.threshold[node]
            node = self._children[2 * node + go_left]
            path.append(node)
        return path

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The summed tree outputs per row of ``x`` [rows, features]."""
        if len(x) == 0 or len(self.roots) == 0:
            return np.zeros(len(x))
        out: np.ndarray = self.value[self._path(x)[-1]].sum(axis=1)
        return out

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Per row and feature, its share of the output; and the bias (the roots' values), which
        together with a row's shares adds up to its output."""
        bias = float(self.value[self.roots].sum())
        if len(x) == 0 or len(self.roots) == 0:
            return np.zeros(x.shape, dtype=np.float64), bias
        n, width = x.shape
        path = np.stack(self._path(x))
        parent, child = path[:-1], path[1:]
        feature = self.feature[parent]
        split = feature >= 0
        cell = (np.arange(n)[:, None] * width + feature)[split]  # (row, feature) flattened
        # Each split's change of value, added to its row's entry for its feature. bincount adds them
        # one by one in path order (level, row, tree), so each share is the same sum on every run.
        shares = np.bincount(cell, weights=(self.value[child] - self.value[parent])[split], minlength=n * width)
        return shares.reshape(n, width), bias

    def arrays(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left, "right": self.right,
                "value": self.value, "roots": self.roots, "depth": np.array([self.depth])}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> TreeEnsemble:
        return cls(a["feature"], a["threshold"], a["left"], a["right"], a["value"], a["roots"], int(a["depth"][0]))


@register_scorer
class GBDTRanker:
    """Linear fusion over all candidates, then boosted trees over its top ``depth``.

    Parameters
    ----------
    depth
        Candidates the trees re-rank per request.
    trees, leaves, max_depth, learning_rate, min_child_samples
        LightGBM's ``n_estimators`` (an upper bound: early stopping on the held-out fold picks the
        number), ``num_leaves``, ``max_depth``, ``learning_rate`` and ``min_child_samples``.
    holdout
        Share of the validation users held out to stop boosting and to choose trees or fusion.
    caution
        Trees are chosen over the fusion only when they rank the held-out users better by more than
        this many standard errors of the paired difference (the one-standard-error rule,
        :func:`~liverec.ranking.scoring.clearly_better`): the simpler scorer stays unless the
        held-out users (a quarter of validation's) show the trees beat it beyond their noise.
    seed, threads
        LightGBM's seed and threads.
    """

    kind: ClassVar[str] = "gbdt"

    def __init__(self, depth: int = 200, trees: int = 400, leaves: int = 31, max_depth: int = 8,
                 learning_rate: float = 0.05, min_child_samples: int = 20, holdout: float = 0.25, seed: int = 0,
                 threads: int = 2, caution: float = 1.0) -> None:
        self.depth = depth
        self.trees = trees
        self.leaves = leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.holdout = holdout
        self.seed = seed
        self.threads = threads
        self.caution = caution
        # Unfitted (a store with no validation user yet): the default fusion, no trees; it serves and saves.
        self.first_ = LinearFusion()
        self.ensemble_: TreeEnsemble | None = None
        self.names_: tuple[str, ...] = ()
        self.validation_: dict[str, Any] = {"users": 0, "chosen": "linear (no validation users)"}

    # -- learning --------------------------------------------------------------------------

    def fit(self, cases: Sequence[Case]) -> Self:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(cases))
        cut = int(round(len(cases) * (1.0 - self.holdout)))
        train = [cases[i] for i in sorted(order[:cut].tolist())]
        held = [cases[i] for i in sorted(order[cut:].tolist())]
        self.validation_ = {"users": len(cases)}
        self.first_ = LinearFusion().fit(train if held else cases)
        self.ensemble_ = None
        self.names_ = ()
        if len(train) < 20 or len(held) < 10:
            self.first_ = LinearFusion().fit(cases)
            self.validation_["chosen"] = "linear (too few validation users for trees)"
            return self
        booster, rounds = self._boost(train, held)
        linear = np.array([ndcg_at(self._rank_linear(f, t)) for f, t in held])
        ensemble = TreeEnsemble.from_lightgbm(booster) if booster is not None else None
        trees = np.array([ndcg_at(self._rank_cascade(f, t, ensemble)) if ensemble else 0.0 for f, t in held])
        self.validation_.update({"held_out_users": len(held), "ndcg@10_linear": round(float(linear.mean()), 5),
                                 "ndcg@10_trees": round(float(trees.mean()), 5), "trees": rounds})
        # Refit on every validation user: fusion, then the trees with the number of rounds chosen.
        self.first_ = LinearFusion().fit(cases)
        if ensemble is not None and clearly_better(trees, linear, self.caution):
            final, _ = self._boost(cases, [], rounds=rounds)
            self.ensemble_ = TreeEnsemble.from_lightgbm(final) if final is not None else None
        self.validation_["chosen"] = "trees" if self.ensemble_ is not None else "linear"
        self.validation_["ndcg@10"] = self.validation_["ndcg@10_trees" if self.ensemble_ else "ndcg@10_linear"]
        return self

    def _groups(self, cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        xs, ys, groups = [], [], []
        for features, target in cases:
            top = self._top(features)
            if target not in {features.item_ids[r] for r in top.tolist()}:
                continue  # nothing to learn from a list without the target
            sub = features.subset(top.tolist())
            if not self.names_:
                self.names_ = sub.names
            xs.append(self._matrix(sub))
            ys.append(np.array([i == target for i in sub.item_ids], dtype=np.float64))
            groups.append(len(top))
        if not xs:
            return np.zeros((0, len(self.names_))), np.zeros(0), []
        return np.vstack(xs), np.concatenate(ys), groups

    def _boost(self, train: Sequence[Case], held: Sequence[Case], rounds: int | None = None) -> tuple[Any, int]:
        import lightgbm

        x, y, groups = self._groups(train)
        if not groups:
            return None, 0
        params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "num_leaves": self.leaves,
                  "max_depth": self.max_depth, "learning_rate": self.learning_rate,
                  "min_child_samples": self.min_child_samples, "seed": self.seed, "num_threads": self.threads,
                  "verbose": -1, "deterministic": True, "force_row_wise": True, "lambdarank_truncation_level": 20}
        data = lightgbm.Dataset(x, y, group=groups)
        if held:
            hx, hy, hgroups = self._groups(held)
            valid = lightgbm.Dataset(hx, hy, group=hgroups, reference=data)
            booster = lightgbm.train(params, data, num_boost_round=self.trees, valid_sets=[valid],
                                     callbacks=[lightgbm.early_stopping(30, verbose=False)])
            return booster, max(1, booster.best_iteration)
        booster = lightgbm.train(params, data, num_boost_round=rounds or self.trees)
        return booster, rounds or self.trees

    # -- scoring ---------------------------------------------------------------------------

    def _top(self, features: Features) -> np.ndarray:
        """Rows of fusion's best ``depth`` candidates with a positive score, best first (ties by row)."""
        scores = self.first_.score(features)
        order = np.argsort(-scores, kind="stable")[: self.depth]
        return order[scores[order] > 0]

    def _reranked(self, features: Features) -> tuple[np.ndarray, Features]:
        """:meth:`_top` and the features of those rows, once per request: :meth:`contributions`
        slices the blocks :meth:`score` built instead of building them again."""
        found = features.memo.get(self)
        if found is None:
            top = self._top(features)
            found = features.memo[self] = (top, features.subset(top.tolist()))
        return found

    def _matrix(self, features: Features) -> np.ndarray:
        """The features in the columns the trees were trained on (a column no block gives now is 0)."""
        names = features.names
        if names == self.names_:
            return features.matrix
        column = {name: n for n, name in enumerate(names)}
        out = np.zeros((len(features), len(self.names_)))
        for n, name in enumerate(self.names_):
            if name in column:
                out[:, n] = features.matrix[:, column[name]]
        return out

    def score(self, features: Features) -> np.ndarray:
        scores = self.first_.score(features)
        if self.ensemble_ is None or len(scores) == 0:
            return scores
        top, reranked = self._reranked(features)
        if len(top) == 0:
            return scores
        second = self.ensemble_.predict(self._matrix(reranked))
        # The re-ranked rows stay above every other candidate, in the trees' order, all positive.
        out = scores.copy()
        out[top] = float(scores.max()) + 1.0 + (second - second.min())
        return out

    def contributions(self, features: Features, rows: Sequence[int]) -> list[dict[str, float]]:
        rows = list(rows)
        if self.ensemble_ is None or not rows:
            return self.first_.contributions(features, rows)
        top, top_features = self._reranked(features)
        at = {row: n for n, row in enumerate(top.tolist())}
        out = self.first_.contributions(features, rows)
        reranked = [n for n, row in enumerate(rows) if row in at]
        if reranked:
            sub = top_features.subset([at[rows[n]] for n in reranked])
            contrib, _ = self.ensemble_.contributions(self._matrix(sub))
            sources = _sources(self.names_, sub)
            for n, values in zip(reranked, contrib, strict=True):
                parts: dict[str, float] = {}
                for source, value in zip(sources, values.tolist(), strict=True):
                    if value:
                        parts[source] = parts.get(source, 0.0) + value
                out[n] = parts
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "depth": self.depth,
                               "validation": dict(getattr(self, "validation_", {}))}
        first = getattr(self, "first_", None)
        if first is not None:
            out["weights"] = first.describe()["weights"]
        return out

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        params = {k: getattr(self, k) for k in ("depth", "trees", "leaves", "max_depth", "learning_rate",
                                                  "min_child_samples", "holdout", "seed", "threads", "caution")}
        (path / "gbdt.json").write_text(json.dumps({"params": params, "names": list(self.names_),
                                                    "validation": self.validation_}, indent=2))
        self.first_.save(path / "first")
        if self.ensemble_ is not None:
            with open(path / "trees.npz", "wb") as fh:
                np.savez(fh, **self.ensemble_.arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> Self:
        record = json.loads((path / "gbdt.json").read_text())
        scorer = cls(**record["params"])
        scorer.names_ = tuple(record["names"])
        scorer.validation_ = record["validation"]
        scorer.first_ = LinearFusion.load(path / "first")
        scorer.ensemble_ = None
        if (path / "trees.npz").exists():
            with np.load(path / "trees.npz", allow_pickle=False) as z:
                scorer.ensemble_ = TreeEnsemble.from_arrays({k: z[k] for k in z.files})
        return scorer

    # -- validation ranks ------------------------------------------------------------------

    # Ties count against the target (held_out_rank), as in LinearFusion's ascent.
    def _rank_linear(self, features: Features, target: str) -> int:
        scores = self.first_.score(features)
        if target not in features.item_ids:
            return 10**9
        row = features.item_ids.index(target)
        return held_out_rank(scores, row) if scores[row] > 0 else 10**9

    def _rank_cascade(self, features: Features, target: str, ensemble: TreeEnsemble | None) -> int:
        top = self._top(features)
        ids = [features.item_ids[r] for r in top.tolist()]
        if target not in ids or ensemble is None:
            return self._rank_linear(features, target)
        second = ensemble.predict(self._matrix(features.subset(top.tolist())))
        return held_out_rank(second, ids.index(target))


def _sources(names: Sequence[str], features: Features) -> list[str]:
    """The source each trained column speaks for (from the blocks that give it now)."""
    by_name = dict(zip(features.names, features.sources, strict=True))
    return [by_name.get(name, name.split(":", 1)[0]) for name in names]
