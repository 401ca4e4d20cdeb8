"""Templated search queries and reviews of the demo world, in English and Chinese.

Reviews are drawn from three fixed template lists — positive (rating 4–5), neutral (3) and
negative (1–2) — so a test, or a sentiment model's evaluation, can recover the polarity a review was
written with through :func:`review_sentiment`.

>>> review_sentiment("Broke after two days, very disappointed.")
'negative'
>>> review_sentiment("这款登山鞋非常好用，和描述的一模一样。")
'positive'
"""

from __future__ import annotations

import re
from typing import Literal

Sentiment = Literal["positive", "neutral", "negative"]

# ``{sub}`` is the item's subtype in the review's language ("hiking boots", "登山鞋").
REVIEW_TEMPLATES: dict[Sentiment, dict[str, tuple[str, ...]]] = {
    "positive": {
        "en": (
            "Really happy with the {sub}, exactly as described.",
            "Excellent quality and great value for money. Highly recommend!",
            "Best {sub} I have bought so far, very happy.",
            "Arrived quickly and the quality is superb.",
            "Works perfectly, I use it every day.",
            "Exceeded my expectations, would buy again.",
        ),
        "zh": (
            "这款{sub}非常好用，和描述的一模一样。",
            "质量很好，性价比很高，强烈推荐！",
            "用过最好的{sub}，非常满意。",
            "物流很快，做工精致，好评。",
            "效果很棒，每天都在用。",
            "超出预期，还会回购。",
        ),
    },
    "neutral": {
        "en": (
            "It's okay for the price, nothing special.",
            "Decent {sub}, but a bit smaller than I expected.",
            "Does the job, though the build quality could be better.",
            "Average {sub}. Some things are good, some are not.",
        ),
        "zh": (
            "这个价格来说还行，没什么特别的。",
            "{sub}还可以，就是比预期的小一点。",
            "能用，但做工可以更好。",
            "一般般的{sub}，有优点也有缺点。",
        ),
    },
    "negative": {
        "en": (
            "Broke after two days, very disappointed.",
            "Poor quality, not worth the money.",
            "Stopped working after a week, so I sent the {sub} back.",
            "Nothing like the description, would not buy again.",
            "Cheap materials and it feels flimsy. Avoid.",
        ),
        "zh": (
            "质量很差，用了两天就坏了。",
            "做工粗糙，不值这个价。",
            "用了一个星期就坏了，已经退货。",
            "和描述完全不符，不会再买了。",
            "材料很廉价，手感很差，别买。",
        ),
    },
}

# A search query: ``{sub}`` subtype, ``{feat}`` one feature, ``{brand}`` a maker.
QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "{sub}",
        "{feat} {sub}",
        "{feat} {sub}",
        "{brand} {sub}",
        "best {sub}",
        "cheap {sub}",
        "{sub} with {feat}",
    ),
    "zh": (
        "{sub}",
        "{feat}{sub}",
        "{feat}{sub}",
        "{brand}{sub}",
        "{sub}推荐",
        "性价比高的{sub}",
        "{feat}的{sub}",
    ),
}


def sentiment_of_rating(rating: int) -> Sentiment:
    """The review polarity a star rating implies: 4–5 positive, 3 neutral, 1–2 negative."""
    if rating >= 4:
        return "positive"
    if rating == 3:
        return "neutral"
    return "negative"


def _pattern(templates: tuple[str, ...]) -> str:
    alternatives = [re.escape(t).replace(re.escape("{sub}"), ".+?") for t in templates]
    return "(?:" + "|".join(alternatives) + ")"


# A review is one or two sentences of one polarity, joined by a space in English.
_SENTIMENT_PATTERNS: dict[Sentiment, re.Pattern[str]] = {
    polarity: re.compile("|".join(f"{_pattern(ts)}(?: ?{_pattern(ts)})?" for ts in by_language.values()), re.DOTALL)
    for polarity, by_language in REVIEW_TEMPLATES.items()
}


def review_sentiment(text: str) -> Sentiment | None:
    """The polarity of the template a demo review was written from, or None for any other text."""
    for polarity, pattern in _SENTIMENT_PATTERNS.items():
        if pattern.fullmatch(text):
            return polarity
    return None
