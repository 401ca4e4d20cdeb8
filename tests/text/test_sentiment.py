"""Review polarity: ratings decide; otherwise zero-shot text sentiment in English and Chinese."""

from __future__ import annotations

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.testing.encoder_contract import shared_encoder
from liverec.text.sentiment import (
    NEGATIVE_ANCHORS,
    NEUTRAL_ANCHORS,
    POSITIVE_ANCHORS,
    ReviewPolarity,
    lexicon_polarity,
)

# None of these is an anchor sentence.
POSITIVE = [
    "These headphones sound amazing and the battery lasts forever",
    "Great camera, sharp pictures, very happy with it",
    "Perfect fit and very comfortable for long walks",
    "这款耳机音质很好，续航也长，非常喜欢",
    "老人用着很方便，很满意",
    "手感很好，反应灵敏，值了",
]
NEGATIVE = [
    "The zipper broke the first time I used it",
    "Screen cracked after two days, awful",
    "Complete rubbish, broke in a week",
    "耳机一个月就没声音了，很失望",
    "快递太慢了，东西还是坏的",
    "这本书印刷模糊，错字很多",
]
NEUTRAL = ["I ordered the medium size", "It comes in three colors", "有三种颜色可选", "包裹是周五到的"]


@pytest.fixture(scope="module", params=["use", "e5"])
def polarity(request: pytest.FixtureRequest) -> ReviewPolarity:
    return ReviewPolarity(shared_encoder(request.param))


def test_anchor_sets_are_balanced_and_disjoint_from_tests() -> None:
    assert abs(len(POSITIVE_ANCHORS) - len(NEGATIVE_ANCHORS)) <= 2
    anchors = {*POSITIVE_ANCHORS, *NEGATIVE_ANCHORS, *NEUTRAL_ANCHORS}
    assert not anchors & {*POSITIVE, *NEGATIVE, *NEUTRAL}


@pytest.mark.parametrize("text", POSITIVE)
def test_clear_praise_is_positive(polarity: ReviewPolarity, text: str) -> None:
    assert polarity.polarity(text) > 0.3


@pytest.mark.parametrize("text", NEGATIVE)
def test_clear_complaints_are_negative(polarity: ReviewPolarity, text: str) -> None:
    assert polarity.polarity(text) < -0.3


def test_neutral_text_is_weaker_than_clear_reviews(polarity: ReviewPolarity) -> None:
    neutral = np.abs(polarity.polarities(NEUTRAL))
    clear = np.abs(polarity.polarities(POSITIVE + NEGATIVE))
    assert neutral.mean() < 0.3
    assert neutral.mean() < clear.mean() - 0.3


def test_values_stay_in_range(polarity: ReviewPolarity) -> None:
    values = polarity.polarities(
        ["Best thing ever!!! Perfect perfect perfect, love love love", "垃圾垃圾垃圾，差评差评"]
    )
    assert values[0] <= 1.0 and values[1] >= -1.0
    assert values[0] > 0.5 and values[1] < -0.5


@pytest.mark.parametrize(("rating", "expected"), [(1, -1.0), (2, -0.5), (3, 0.0), (4.5, 0.75), (5, 1.0)])
def test_rating_decides(rating: float, expected: float) -> None:
    polarity = ReviewPolarity(shared_encoder("use"))
    assert polarity.polarity("Works perfectly, I love it", rating=rating) == expected
    assert polarity.polarity(None, rating=rating) == expected


def test_rating_overrides_text_without_encoding() -> None:
    class Unusable:
        name, dim = "none", 1

        def encode(self, texts: object, *, kind: str = "passage") -> np.ndarray:
            raise AssertionError("a rated review must not be encoded")

    polarity = ReviewPolarity(Unusable())
    assert polarity.polarity("质量太差了，用了一天就坏了", rating=5) == 1.0


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_text_no_rating_is_neutral(text: str | None) -> None:
    assert ReviewPolarity(shared_encoder("use")).polarity(text) == 0.0


def test_batch_equals_one_at_a_time() -> None:
    polarity = ReviewPolarity(shared_encoder("use"))
    texts = [POSITIVE[0], None, NEGATIVE[3], "", NEUTRAL[0]]
    ratings = [None, 2.0, None, None, 5.0]
    batch = polarity.polarities(texts, ratings)
    single = [polarity.polarity(text, rating) for text, rating in zip(texts, ratings, strict=True)]
    np.testing.assert_allclose(batch, single, atol=1e-6)
    assert batch.shape == (5,) and batch[1] == -0.5 and batch[3] == 0.0 and batch[4] == 1.0


@pytest.mark.parametrize("rating", [0, 6, float("nan"), True, "5"])
def test_bad_ratings_are_rejected(rating: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        ReviewPolarity(shared_encoder("use")).polarity("fine", rating=rating)  # type: ignore[arg-type]
    assert info.value.field == "rating"


def test_bad_batches_are_rejected() -> None:
    polarity = ReviewPolarity(shared_encoder("use"))
    with pytest.raises(InvalidInputError, match="ratings has 1 values for 2 texts"):
        polarity.polarities(["a", "b"], [None])
    with pytest.raises(InvalidInputError):
        polarity.polarities("a single string")
    with pytest.raises(InvalidInputError):
        ReviewPolarity(shared_encoder("use"), lexicon_weight=2.0)


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Not good", -1),
        ("I would not recommend this", -1),
        ("it isn't great", -1),
        ("No problems after six months", 1),
        ("不好用", -1),
        ("不推荐", -1),
        ("不错", 1),
        ("孩子特别喜欢", 1),  # 特别 ("especially") is not the negator 别
        ("没问题，很好", 1),
        ("差不多就是这个尺寸", 0),
        ("The box is grey", 0),
    ],
)
def test_lexicon_handles_negation(text: str, sign: int) -> None:
    assert np.sign(lexicon_polarity(text)) == sign
