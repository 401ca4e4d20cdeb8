"""Language understanding: sentence encoders, their cache, keywords and review polarity.

Everything here works offline, in English and Chinese. Models load lazily, so importing this
package is cheap.
"""

from __future__ import annotations

from liverec.text.base import Encoder, TextKind
from liverec.text.cache import CachedEncoder, text_key
from liverec.text.centering import LanguageCentering
from liverec.text.encoders import E5Encoder, MiniLMEncoder, USEEncoder, available_encoders, get_encoder
from liverec.text.enrich import enrich, interest_tags, item_language, query_tags
from liverec.text.keywords import KeywordExtractor, Language, detect_language, extract_keywords
from liverec.text.sentiment import ReviewPolarity, lexicon_polarity, rating_polarity
from liverec.text.space import TextSpace

__all__ = [
    "CachedEncoder",
    "E5Encoder",
    "Encoder",
    "KeywordExtractor",
    "LanguageCentering",
    "Language",
    "MiniLMEncoder",
    "ReviewPolarity",
    "TextKind",
    "TextSpace",
    "USEEncoder",
    "available_encoders",
    "detect_language",
    "enrich",
    "extract_keywords",
    "get_encoder",
    "interest_tags",
    "item_language",
    "lexicon_polarity",
    "query_tags",
    "rating_polarity",
    "text_key",
]
