"""Screening review texts, in English and Chinese: spam, abuse and off-topic text.

Which method: **the engine's own sentence encoder against labelled anchors, plus lexicons** (no
model to download, no data set to ship, and both languages in one space, as review polarity does
in :mod:`liverec.text.sentiment`):

* **spam**: a link, an e-mail, a phone number or a messenger handle ("加微信", "WhatsApp"), a
  promotion phrase ("promo code", "刷单", "返现"), and the review's nearness to spam anchors over
  genuine ones each count one; two or more is spam. A phrase alone never is ("the discount was nice").
* **abuse**: an insult aimed at a person (lexicon, both languages; "垃圾" about a product is a bad
  review, not abuse), or a text far nearer the abuse anchors than any genuine review.
* **off-topic**: far from its item's text *and* from every genuine review anchor (a text about
  the weather, a chain letter), so a short "great!" is never off-topic.

Measured on a hand-labelled sample kept apart from the anchors (``benchmarks/review_screen.py``
prints precision and recall per language; the figures are in docs/cleaning.md).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from liverec.core.types import Event
from liverec.text.sentiment import NEGATIVE_ANCHORS, NEUTRAL_ANCHORS, POSITIVE_ANCHORS

__all__ = ["ABUSE_ANCHORS", "SPAM_ANCHORS", "ReviewScreen", "review_check"]

SPAM_ANCHORS: tuple[str, ...] = (
    "Buy cheap followers now at our website, limited offer",
    "Use my promo code for 50% off everything, link in profile",
    "Earn $500 a day working from home, message me",
    "Click the link below to claim your free gift card",
    "Visit our store for replica watches at wholesale prices",
    "Contact me on WhatsApp for bulk orders and discounts",
    "Get paid to write reviews, send me a message on Telegram",
    "Free iPhone giveaway, just sign up with your email",
    "Best casino bonus online, register today and win big",
    "Lose 10kg in a week with this secret pill, order here",
    "I sell the same product much cheaper, add me",
    "Follow my channel and subscribe for daily prizes",
    "加微信领取优惠券，全场五折",
    "刷单兼职，日赚三百，有意者私聊",
    "好评返现十元，联系客服领取",
    "代购各种名牌，价格便宜，加V详聊",
    "点击链接免费领取会员",
    "扫码关注公众号，每天抽奖送礼品",
    "低价出售同款，需要的加QQ",
    "招聘网络兼职，在家就能赚钱",
    "专业代写好评，价格优惠",
    "关注店铺领红包，买一送一",
)

ABUSE_ANCHORS: tuple[str, ...] = (
    "You are an idiot and so is everyone who works there",
    "The seller is a stupid moron, go to hell",
    "Shut up, you pathetic loser",
    "Whoever made this should be ashamed, you disgusting pigs",
    "I hope the owner dies, scum",
    "Anyone who buys this is a brainless fool",
    "卖家是个傻逼，去死吧",
    "客服脑残，滚蛋",
    "你们这些白痴骗子，全家都不得好死",
    "买这个的人都是蠢货",
    "狗东西，垃圾人，别再卖了",
    "老板就是个畜生",
)

_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(com|net|org|cn|ru|xyz|top|io|ly|me)\b|[\w.+-]+@[\w-]+\.\w+", re.I)
_CONTACT = re.compile(
    r"(\+?\d[\d\s-]{8,}\d)|whats\s?app|telegram|wechat|微信|加[vV威]|[vV]信|\bvx\b|[qQ]{2}[:：\s]*\d{5,}|"
    r"私聊|私信|联系客服|扫码|公众号|dm me|message me|add me", re.I)
_PROMO = re.compile(
    r"promo code|coupon|discount code|free gift|giveaway|click (here|the link)|sign up|subscribe|earn \$|"
    r"make money|work(ing)? from home|cheap(er)? (followers|price)|wholesale|replica|casino|bonus|limited offer|"
    r"优惠券|返现|代购|刷单|兼职|日赚|点击链接|免费领取|红包|抽奖|招聘|代写|低价出售|加盟", re.I)
_INSULT = re.compile(
    r"\b(idiots?|morons?|retards?|imbeciles?|scum(bags?)?|losers?|bastards?|assholes?|dickheads?|shut up|"
    r"go to hell|kill yourself|fuck (you|off)|f\*+k|stupid (seller|people|owner|you))\b|"
    r"傻逼|煞笔|沙比|脑残|白痴|去死|滚蛋|垃圾人|狗东西|他妈的?|操你|贱人|畜生|蠢货|废物东西", re.I)
_REPEAT = re.compile(r"(.)\1{7,}|(\b\w+\b)(\W+\2\b){4,}", re.I)


class ReviewScreen:
    """Screens reviews with ``encode(texts) -> unit vectors`` (the engine's passage encoder) and,
    for off-topic text, ``item_vectors(item_ids) -> unit vectors`` (zeros for an unknown item)."""

    # Margins and floors, set on the first half of the labelled sample (the second half is reported).
    spam_margin = 0.04
    abuse_margin = 0.10
    off_topic_item = 0.12
    off_topic_review = 0.26

    def __init__(self, encode: Any, item_vectors: Any | None = None, space: Any = None) -> None:
        self.encode = encode
        self.item_vectors = item_vectors
        self.space = space  # what the vectors depend on (the centering): anchors are encoded again when it changes
        self._anchors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._space_key: Any = None
        self._lock = threading.Lock()

    def anchors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            key = self.space() if self.space is not None else None
            if self._anchors is None or key is not self._space_key:
                self._space_key = key
                genuine = (*POSITIVE_ANCHORS, *NEGATIVE_ANCHORS, *NEUTRAL_ANCHORS)
                vectors = _unit(np.asarray(self.encode([*genuine, *SPAM_ANCHORS, *ABUSE_ANCHORS]), np.float32))
                g, s = len(genuine), len(SPAM_ANCHORS)
                self._anchors = vectors[:g], vectors[g : g + s], vectors[g + s :]
            return self._anchors

    def __call__(self, reviews: Sequence[Event]) -> list[tuple[str, str] | None]:
        texts = [e.text or "" for e in reviews]
        items = [e.item_id for e in reviews] if self.item_vectors is not None else None
        return self.screen(texts, items)

    def screen(self, texts: Sequence[str], item_ids: Sequence[str | None] | None = None
               ) -> list[tuple[str, str] | None]:
        """For each text, ``(rule, why)`` for the rule it breaks (``spam``, ``abuse``,
        ``off_topic``), or None for a genuine review."""
        if not texts:
            return []
        genuine, spam, abuse = self.anchors()
        vectors = _unit(np.asarray(self.encode(list(texts)), np.float32))
        near_genuine, near_spam, near_abuse = (_nearness(vectors, a) for a in (genuine, spam, abuse))
        on_item = None
        if item_ids is not None and self.item_vectors is not None:
            known = [i if i is not None else "" for i in item_ids]
            on_item = np.einsum("ij,ij->i", vectors, _unit(np.asarray(self.item_vectors(known), np.float32)))
        out: list[tuple[str, str] | None] = []
        for n, text in enumerate(texts):
            out.append(self._verdict(text, float(near_genuine[n]), float(near_spam[n]), float(near_abuse[n]),
                                     None if on_item is None else float(on_item[n])))
        return out

    def _verdict(self, text: str, genuine: float, spam: float, abuse: float, on_item: float | None
                 ) -> tuple[str, str] | None:
        insult = _INSULT.search(text)
        if insult:
            return "abuse", f"insult {insult.group(0)!r}"
        if abuse - genuine >= self.abuse_margin:
            return "abuse", f"nearer abuse than any genuine review ({abuse:.2f} vs {genuine:.2f})"
        signs = []
        if _LINK.search(text) or _CONTACT.search(text):
            signs.append("a link or contact")
        if promo := _PROMO.search(text):
            signs.append(f"promotion {promo.group(0)!r}")
        if _REPEAT.search(text):
            signs.append("repeated text")
        if spam - genuine >= self.spam_margin:
            signs.append(f"nearer spam than genuine reviews ({spam:.2f} vs {genuine:.2f})")
        if len(signs) >= 2:
            return "spam", ", ".join(signs)
        if on_item is not None and on_item < self.off_topic_item and genuine < self.off_topic_review and \
                on_item != 0.0:
            return "off_topic", f"far from its item ({on_item:.2f}) and from any review ({genuine:.2f})"
        return None


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _nearness(vectors: np.ndarray, anchors: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean cosine of each vector to its ``k`` nearest anchors."""
    sims = vectors @ anchors.T
    k = min(k, anchors.shape[0])
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


def review_check(catalog: Any) -> ReviewScreen:
    """The screen an engine uses: its catalog's encoder and item vectors."""
    return ReviewScreen(lambda texts: catalog.text_vectors(texts, "passage"), catalog.vectors_of,
                        lambda: catalog.space.centering)


def screen_quality(screen: ReviewScreen, rows: Sequence[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Precision and recall of ``screen`` on labelled ``rows`` (``text``, ``item``, ``label`` one of
    genuine/spam/abuse/off_topic, ``lang``), per language and overall: ``flagged`` treats any rule
    as "not genuine"; ``<rule>`` needs the rule named right."""
    verdicts = screen.screen([r["text"] for r in rows], [r["item"] for r in rows])
    out: dict[str, dict[str, float]] = {}
    for lang in sorted({r["lang"] for r in rows}) + ["all"]:
        picked = [(r["label"], v[0] if v else "genuine") for r, v in zip(rows, verdicts, strict=True)
                  if lang in ("all", r["lang"])]
        scores: dict[str, float] = {"n": float(len(picked))}
        for rule in ("flagged", "spam", "abuse", "off_topic"):
            def hit(label: str, rule: str = rule) -> bool:
                return label != "genuine" if rule == "flagged" else label == rule
            tp = sum(hit(truth) and hit(said) for truth, said in picked)
            said_n = sum(hit(said) for _, said in picked)
            true_n = sum(hit(truth) for truth, _ in picked)
            scores[f"{rule}_precision"] = tp / said_n if said_n else 1.0
            scores[f"{rule}_recall"] = tp / true_n if true_n else 1.0
        out[lang] = scores
    return out
