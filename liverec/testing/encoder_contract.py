"""One behaviour suite every :class:`~liverec.text.base.Encoder` must pass.

Subclass :class:`EncoderContract` in a test module, name the subclass ``Test…`` and override the
``encoder`` fixture::

    class TestUSE(EncoderContract):
        @pytest.fixture
        def encoder(self) -> Encoder:
            return shared_encoder("use")

Real models are slow to load, so :func:`shared_encoder` hands out one instance per process.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from liverec.text.base import Encoder

__all__ = ["EncoderContract", "shared_encoder"]

SENTENCES = [
    "Waterproof hiking boots with a sturdy rubber sole",
    "A lightweight laptop with a long battery life",
    "Fresh roasted coffee beans from Colombia",
    "这款轻薄笔记本电脑续航很长",
]
PARAPHRASE = ("How do I reset my password?", "I forgot my password and need to change it")
UNRELATED = "The recipe calls for two cups of flour"


@functools.cache
def shared_encoder(name: str) -> Encoder:
    """One encoder per name for the whole test session (each loads its model once)."""
    from liverec.text.encoders import get_encoder

    return get_encoder(name)


class EncoderContract:
    """The Encoder contract as tests; ``encoder`` is the fixture a subclass overrides."""

    @pytest.fixture
    def encoder(self) -> Encoder:
        raise NotImplementedError("override the `encoder` fixture in the subclass")

    def test_name_and_dim(self, encoder: Encoder) -> None:
        assert isinstance(encoder.name, str) and encoder.name
        assert isinstance(encoder.dim, int) and encoder.dim > 0
        assert isinstance(encoder, Encoder)

    def test_shape_and_dtype(self, encoder: Encoder) -> None:
        vectors = encoder.encode(SENTENCES)
        assert vectors.shape == (len(SENTENCES), encoder.dim)
        assert vectors.dtype == np.float32
        assert vectors.flags.c_contiguous
        assert np.isfinite(vectors).all()

    def test_rows_are_unit_length(self, encoder: Encoder) -> None:
        for kind in ("passage", "query"):
            vectors = encoder.encode(SENTENCES, kind=kind)
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_empty_batch(self, encoder: Encoder) -> None:
        vectors = encoder.encode([])
        assert vectors.shape == (0, encoder.dim)
        assert vectors.dtype == np.float32

    def test_blank_and_long_text_give_unit_vectors(self, encoder: Encoder) -> None:
        long_text = " ".join(["a very long product description"] * 400) + " 很长的描述" * 200
        vectors = encoder.encode(["", "   ", long_text])
        assert vectors.shape == (3, encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_deterministic(self, encoder: Encoder) -> None:
        first = encoder.encode(SENTENCES)
        second = encoder.encode(SENTENCES)
        np.testing.assert_allclose(first, second, atol=1e-6)
        twice = encoder.encode([SENTENCES[0], SENTENCES[0]])
        np.testing.assert_allclose(twice[0], twice[1], atol=1e-6)

    def test_batch_equals_one_at_a_time(self, encoder: Encoder) -> None:
        batch = encoder.encode(SENTENCES)
        single = np.vstack([encoder.encode([text]) for text in SENTENCES])
        np.testing.assert_allclose(batch, single, atol=1e-5)

    def test_paraphrase_is_nearer_than_unrelated_text(self, encoder: Encoder) -> None:
        anchor, paraphrase, unrelated = encoder.encode([*PARAPHRASE, UNRELATED])
        assert float(anchor @ paraphrase) > float(anchor @ unrelated)
