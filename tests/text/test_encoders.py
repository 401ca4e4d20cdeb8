"""The three real encoders and the cache run the encoder contract; plus cross-lingual, caching, registry."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from liverec.core.errors import InvalidInputError  # noqa: E402
from liverec.testing.encoder_contract import EncoderContract, shared_encoder  # noqa: E402
from liverec.text.base import Encoder, TextKind  # noqa: E402
from liverec.text.cache import CachedEncoder, text_key  # noqa: E402
from liverec.text.encoders import (  # noqa: E402
    E5Encoder,
    MiniLMEncoder,
    USEEncoder,
    available_encoders,
    get_encoder,
)


class DictVectorCache:
    """A VectorCache in a dict, recording how it was called."""

    key_salt = b"dict-vector-cache-salt"

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], np.ndarray] = {}
        self.gets: list[list[str]] = []
        self.puts: list[dict[str, np.ndarray]] = []

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        self.gets.append(list(keys))
        return {key: self.data[(encoder, key)] for key in keys if (encoder, key) in self.data}

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        self.puts.append(dict(vectors))
        for key, vector in vectors.items():
            self.data[(encoder, key)] = np.array(vector, copy=True)

    def delete(self, keys: Sequence[str]) -> int:
        gone = [pair for pair in self.data if pair[1] in set(keys)]
        for pair in gone:
            del self.data[pair]
        return len(gone)


class CountingEncoder:
    """Wraps an encoder and records every batch that reaches it."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str], *, kind: TextKind = "passage") -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, kind=kind)


# --- the contract, for every encoder -------------------------------------------------------------


class TestUSEContract(EncoderContract):
    @pytest.fixture
    def encoder(self) -> Encoder:
        return shared_encoder("use")


class TestE5Contract(EncoderContract):
    @pytest.fixture
    def encoder(self) -> Encoder:
        return shared_encoder("e5")


class TestMiniLMContract(EncoderContract):
    @pytest.fixture
    def encoder(self) -> Encoder:
        return shared_encoder("minilm")


class TestCachedEncoderContract(EncoderContract):
    @pytest.fixture
    def encoder(self) -> Encoder:
        return CachedEncoder(shared_encoder("use"), DictVectorCache(), memory_items=4)


# --- the models themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "dim"),
    [("use-m3", USEEncoder, 512), ("e5-small", E5Encoder, 384), ("minilm-l6", MiniLMEncoder, 384)],
)
def test_names_and_dims(name: str, cls: type, dim: int) -> None:
    encoder = cls()
    assert (encoder.name, encoder.dim) == (name, dim)
    assert not encoder.loaded, "constructing an encoder must not load its model"


@pytest.mark.parametrize("name", ["use", "e5"])
def test_chinese_query_finds_english_text(name: str) -> None:
    encoder = shared_encoder(name)
    query = encoder.encode(["轻薄笔记本电脑"], kind="query")[0]
    laptop, boots = encoder.encode(["lightweight thin laptop computer", "waterproof hiking boots"])
    assert query @ laptop > query @ boots + 0.05


@pytest.mark.parametrize("name", ["use", "e5"])
def test_english_query_finds_chinese_text(name: str) -> None:
    encoder = shared_encoder(name)
    query = encoder.encode(["lightweight thin laptop computer"], kind="query")[0]
    laptop, boots = encoder.encode(["这款轻薄笔记本电脑续航很长", "防水登山鞋，抓地力强"])
    assert query @ laptop > query @ boots + 0.05


def test_e5_prefixes_queries_and_passages_differently() -> None:
    encoder = shared_encoder("e5")
    query = encoder.encode(["trail running shoes"], kind="query")[0]
    passage = encoder.encode(["trail running shoes"], kind="passage")[0]
    assert not np.allclose(query, passage, atol=1e-3)
    assert query @ passage > 0.8


def test_symmetric_encoders_ignore_kind() -> None:
    encoder = shared_encoder("use")
    np.testing.assert_allclose(encoder.encode(["hello"], kind="query"), encoder.encode(["hello"]), atol=1e-6)


def test_concurrent_calls_match_sequential_ones() -> None:
    encoder = shared_encoder("use")
    batches = [[f"item {i} number {j}" for j in range(5)] for i in range(8)]
    expected = [encoder.encode(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(encoder.encode, batches))
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-6)


@pytest.mark.parametrize(
    ("texts", "kind", "field"),
    [("a bare string", "passage", "texts"), (["ok", 3], "passage", "texts"), (["ok"], "document", "kind")],
)
def test_bad_encode_arguments_are_rejected(texts: object, kind: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        USEEncoder().encode(texts, kind=kind)  # type: ignore[arg-type]
    assert info.value.field == field


def test_bad_constructor_arguments_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="threads"):
        USEEncoder(threads=0)
    with pytest.raises(InvalidInputError, match="variant"):
        E5Encoder(variant="large")


def test_pickled_encoder_reloads_lazily() -> None:
    encoder = shared_encoder("e5")  # the fastest to reload
    encoder.encode(["warm up"])
    clone = pickle.loads(pickle.dumps(encoder))
    assert not clone.loaded
    np.testing.assert_allclose(clone.encode(["hello"]), encoder.encode(["hello"]), atol=1e-6)


# --- registry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("use", USEEncoder),
        ("USE-M3", USEEncoder),
        ("e5", E5Encoder),
        (" e5-small ", E5Encoder),
        ("minilm", MiniLMEncoder),
        ("minilm-l6", MiniLMEncoder),
    ],
)
def test_get_encoder_by_name_and_alias(name: str, cls: type) -> None:
    assert type(get_encoder(name)) is cls


def test_get_encoder_passes_keyword_arguments() -> None:
    encoder = get_encoder("use", threads=1)
    assert isinstance(encoder, USEEncoder) and encoder.threads == 1


def test_unknown_encoder_names_the_known_ones() -> None:
    with pytest.raises(InvalidInputError) as info:
        get_encoder("bert")
    message = str(info.value)
    assert "'bert'" in message
    for name in available_encoders():
        assert name in message
    assert info.value.field == "encoder" and info.value.value == "bert"


# --- cache --------------------------------------------------------------------------------------


def test_text_key_depends_on_text_and_kind() -> None:
    assert text_key("shoes") == text_key("shoes", "passage")
    assert len({text_key("shoes"), text_key("shoes", "query"), text_key("Shoes"), text_key("shoes ")}) == 4


def test_second_call_is_all_hits_with_identical_vectors() -> None:
    inner = CountingEncoder(shared_encoder("use"))
    cached = CachedEncoder(inner, DictVectorCache())
    texts = ["red running shoes", "blue rain jacket", "红色跑鞋"]
    first = cached.encode(texts)
    assert (cached.hits, cached.misses) == (0, 3)
    second = cached.encode(texts)
    assert (cached.hits, cached.misses) == (3, 3)
    assert np.array_equal(first, second)
    assert inner.calls == [texts]
    np.testing.assert_allclose(first, shared_encoder("use").encode(texts), atol=1e-6)


def test_only_misses_are_encoded_once_each_in_one_batch() -> None:
    inner = CountingEncoder(shared_encoder("use"))
    cached = CachedEncoder(inner)
    cached.encode(["a tent"])
    vectors = cached.encode(["a tent", "a stove", "a stove", "a lamp", "a tent"])
    assert inner.calls == [["a tent"], ["a stove", "a lamp"]]
    assert (cached.hits, cached.misses) == (1, 3)
    assert np.array_equal(vectors[1], vectors[2]) and np.array_equal(vectors[0], vectors[4])


def test_vectors_are_written_to_and_read_from_the_vector_cache() -> None:
    store = DictVectorCache()
    texts = ["wool socks", "hiking poles"]
    writer = CachedEncoder(shared_encoder("use"), store)
    written = writer.encode(texts, kind="query")
    assert set(store.data) == {("use-m3", text_key(text, "query", store.key_salt)) for text in texts}
    np.testing.assert_array_equal(store.data[("use-m3", text_key("wool socks", "query", store.key_salt))],
                                  written[0])

    # A fresh process: empty memory, same durable cache, so the model is never called.
    inner = CountingEncoder(shared_encoder("use"))
    reader = CachedEncoder(inner, store)
    assert np.array_equal(reader.encode(texts, kind="query"), written)
    assert inner.calls == [] and (reader.hits, reader.misses) == (2, 0)
    # And what came from the durable cache is now in memory: no second lookup there.
    reader.encode(texts, kind="query")
    assert len(store.gets) == 2


def test_query_and_passage_are_cached_apart() -> None:
    inner = CountingEncoder(shared_encoder("e5"))
    cached = CachedEncoder(inner)
    query = cached.encode(["camping stove"], kind="query")
    passage = cached.encode(["camping stove"], kind="passage")
    assert len(inner.calls) == 2 and not np.allclose(query, passage, atol=1e-3)


def test_memory_is_a_bounded_lru() -> None:
    inner = CountingEncoder(shared_encoder("use"))
    cached = CachedEncoder(inner, memory_items=2)
    cached.encode(["one", "two"])
    cached.encode(["one"])  # "one" is now the most recent
    cached.encode(["three"])  # evicts "two"
    assert len(cached) == 2
    cached.encode(["one", "two"])
    assert inner.calls[-1] == ["two"]


def test_vectors_of_the_wrong_size_in_the_vector_cache_are_re_encoded() -> None:
    store = DictVectorCache()
    store.data[("use-m3", text_key("kayak", salt=store.key_salt))] = np.ones(384, dtype=np.float32)
    cached = CachedEncoder(shared_encoder("use"), store)
    vector = cached.encode(["kayak"])[0]
    assert cached.misses == 1 and vector.shape == (512,)
    assert store.data[("use-m3", text_key("kayak", salt=store.key_salt))].shape == (512,)


def test_returned_vectors_do_not_alias_the_cache() -> None:
    cached = CachedEncoder(shared_encoder("use"))
    first = cached.encode(["canoe paddle"])
    first[:] = 0.0
    assert np.linalg.norm(cached.encode(["canoe paddle"])[0]) == pytest.approx(1.0, abs=1e-5)


def test_cached_encoder_has_the_wrapped_name_and_dim() -> None:
    cached = CachedEncoder(shared_encoder("e5"))
    assert (cached.name, cached.dim) == ("e5-small", 384)
    with pytest.raises(InvalidInputError, match="memory_items"):
        CachedEncoder(shared_encoder("e5"), memory_items=-1)


def test_works_with_the_memory_store_vector_cache() -> None:
    storage = pytest.importorskip("liverec.storage")
    store = storage.MemoryStore()
    try:
        cached = CachedEncoder(shared_encoder("use"), store.vectors)
        first = cached.encode(["trail mix", "energy bar"])
        again = CachedEncoder(shared_encoder("use"), store.vectors)
        np.testing.assert_allclose(again.encode(["trail mix", "energy bar"]), first, atol=1e-6)
        assert (again.hits, again.misses) == (2, 0)
    finally:
        store.close()


def test_e5_drops_text_past_max_tokens() -> None:
    encoder = E5Encoder(max_tokens=24)
    head = "merino wool hiking socks, cushioned heel and toe, " * 3
    np.testing.assert_allclose(
        encoder.encode([head + "and a long tail about the warehouse"]), encoder.encode([head]), atol=1e-6
    )
    short = "merino wool socks"
    np.testing.assert_allclose(encoder.encode([short]), shared_encoder("e5").encode([short]), atol=1e-6)
    with pytest.raises(InvalidInputError, match="max_tokens"):
        E5Encoder(max_tokens=0)
