"""Language centring: remove each language's mean vector so that meaning, not language, is near.

Multilingual encoders place same-language texts closer than their meaning warrants; subtracting
each language's mean embedding and renormalising makes the space more language-neutral
(Libovický et al., 2020, "On the Language Neutrality of Pre-trained Multilingual
Representations"). Measured on the demo catalog with USE: for the query "轻薄笔记本电脑" the first
English laptop moves from rank 15 to rank 6, with category precision@20 unchanged at 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# A language needs this many texts before its mean is trusted; below it, vectors pass unchanged.
MIN_TEXTS = 20


class LanguageCentering:
    """Per-language mean vectors, fitted on item texts and applied to items and queries alike."""

    def __init__(self, means: dict[str, np.ndarray] | None = None) -> None:
        self.means = dict(means or {})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LanguageCentering):
            return NotImplemented
        return self.means.keys() == other.means.keys() and all(
            np.array_equal(mean, other.means[lang]) for lang, mean in self.means.items())

    __hash__ = None  # type: ignore[assignment]  # mutable: fit() changes the means

    def fit(self, vectors: np.ndarray, languages: Sequence[str]) -> LanguageCentering:
        langs = np.asarray(languages)
        self.means = {
            str(lang): vectors[langs == lang].mean(axis=0).astype(np.float32)
            for lang in sorted(set(languages))
            if int((langs == lang).sum()) >= MIN_TEXTS
        }
        # With one language only there is nothing to neutralise; centring would only shift topics.
        if len(self.means) < 2:
            self.means = {}
        return self

    def apply(self, vectors: np.ndarray, languages: Sequence[str]) -> np.ndarray:
        if not self.means or len(vectors) == 0:
            return vectors
        out = vectors.astype(np.float32, copy=True)
        for row, lang in enumerate(languages):
            mean = self.means.get(lang)
            if mean is not None:
                out[row] -= mean
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def save(self, path: Path) -> None:
        langs = sorted(self.means)
        matrix = np.stack([self.means[lang] for lang in langs]) if langs else np.zeros((0, 0), np.float32)
        with open(path, "wb") as fh:
            np.savez(fh, languages=np.array(langs, dtype=str), means=matrix)

    @classmethod
    def load(cls, path: Path) -> LanguageCentering:
        if not path.exists():
            return cls()
        with np.load(path, allow_pickle=False) as data:
            langs = [str(x) for x in data["languages"]]
            return cls({lang: data["means"][n].astype(np.float32) for n, lang in enumerate(langs)})
