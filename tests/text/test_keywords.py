"""Keywords and language detection on small texts whose answer is known."""

from __future__ import annotations

import pytest

from liverec.core.errors import InvalidInputError
from liverec.text.keywords import KeywordExtractor, detect_language, extract_keywords

CAMERA = (
    "Mirrorless digital camera with a 24MP full-frame sensor, interchangeable lens mount, 4K video "
    "and in-body image stabilization. Kit includes a 28-70mm zoom lens."
)
LAPTOP_ZH = "这款轻薄笔记本电脑续航很长，适合商务出差"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Waterproof hiking boots", "en"),
        (LAPTOP_ZH, "zh"),
        ("Nike 防水登山鞋", "zh"),  # 5 ideographs among 9 letters
        ("Apple iPhone 15 Pro Max smartphone 手机", "en"),  # 2 of 26
        ("", "en"),
        ("12345 !!!", "en"),
        ("質量很好", "zh"),  # traditional characters
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_english_keywords_name_the_product() -> None:
    keywords = extract_keywords(CAMERA)
    assert 1 <= len(keywords) <= 8
    joined = " ".join(keywords)
    assert "camera" in joined and "lens" in joined
    assert all(k == k.lower() for k in keywords)
    assert len(set(keywords)) == len(keywords)


def test_english_keywords_drop_numbers_and_single_letters() -> None:
    keywords = extract_keywords("Pack of 2 AA batteries, 1.5 V, 2024 model, x y z", k=20)
    assert keywords, "the text has keywords"
    for keyword in keywords:
        for word in keyword.split():
            assert len(word) > 1 and not word.replace(".", "").isdigit(), keyword


def test_english_phrases_are_at_most_two_words() -> None:
    assert all(len(k.split()) <= 2 for k in extract_keywords(CAMERA, k=20))


def test_chinese_keywords() -> None:
    keywords = extract_keywords(LAPTOP_ZH)
    assert "续航" in keywords
    assert "笔记本电脑" in keywords or "笔记本" in keywords
    assert all(len(k) > 1 for k in keywords)
    assert "适合" not in keywords  # a filler word, not an interest


def test_chinese_keywords_keep_brands_and_drop_numbers() -> None:
    keywords = extract_keywords("防水登山鞋，抓地力强，2024新款，适合户外徒步 Nike")
    assert "登山鞋" in keywords and "nike" in keywords
    assert "2024" not in keywords


def test_english_text_with_chinese_phrases_gets_both() -> None:
    keywords = extract_keywords("Lightweight hiking backpack with rain cover, 超轻登山包 for weekend trips")
    assert any("backpack" in k for k in keywords)
    assert any(k in ("登山包", "超轻") for k in keywords)


def test_language_can_be_forced_and_k_limits() -> None:
    assert extract_keywords(CAMERA, language="en", k=3) == extract_keywords(CAMERA, k=3)
    assert len(extract_keywords(CAMERA, k=3)) == 3
    assert "续航" in extract_keywords(LAPTOP_ZH, language="zh", k=3)


@pytest.mark.parametrize("text", ["", "   ", "42", "!!"])
def test_texts_without_keywords(text: str) -> None:
    assert extract_keywords(text) == []


def test_extractor_is_deterministic_and_reusable() -> None:
    extractor = KeywordExtractor(k=5)
    assert extractor.extract(CAMERA) == extractor.extract(CAMERA)
    assert len(extractor.extract(CAMERA)) == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"text": None}, "text"), ({"text": "x", "language": "fr"}, "language"), ({"text": "x", "k": 0}, "k")],
)
def test_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        extract_keywords(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
