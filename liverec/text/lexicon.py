"""Words that never read as an interest, in English and Chinese: units, colours and filler.

Keyword extraction finds what a text is *about*, which in product copy includes its measurements
("13-inch", "5000毫安"), its colours ("green", "黑色") and the copywriter's filler ("highlights
include", "讲述"). None of those is an interest a user could be told they have. The lists are kept
small and general — words of any shop, not of one catalog — and extraction also drops, from the
text itself, the words a number measures (see :mod:`liverec.text.keywords`).

>>> is_unit("inch"), is_unit("毫安"), is_unit("支装"), is_unit("hiking")
(True, True, True, False)
>>> is_colour("dark green"), is_colour("黑色"), is_colour("green tea")
(True, True, False)
>>> is_noise("512GB"), is_noise("highlights"), is_noise("讲述"), is_noise("camera tripod")
(True, True, True, False)
"""

from __future__ import annotations

import re

__all__ = [
    "EN_STOPWORDS",
    "EN_UNITS",
    "ZH_STOPWORDS",
    "ZH_UNITS",
    "is_colour",
    "is_noise",
    "is_unit",
    "measured",
]

#: Units and counted nouns that follow a number in English product copy ("10kg", "400 pages"); not
#: "in" ("2-in-1") nor "g" ("5G").
EN_UNITS = frozenset(
    "l m v w mm cm km inch inches ft feet yd mi mg kg lb lbs oz ml liter liters litre litres gal "
    "kw mah wh hz khz mhz ghz mp gb tb mb dpi bar psi rpm atm hr hrs hour hours min mins minute minutes "
    "sec secs day days week weeks month months year years pc pcs piece pieces page pages sheet sheets count "
    "percent degree degrees".split()
)

#: Measure words that follow a number in Chinese ("10公斤", "5000毫安", "2支装").
ZH_UNITS = frozenset(
    "毫米 厘米 分米 米 公里 千米 英寸 英尺 寸 克 千克 公斤 斤 毫升 升 毫安 毫安时 瓦 千瓦 伏 赫兹 像素 "
    "小时 分钟 秒 天 周 个月 年 度 倍 档 页 张 片 支 瓶 袋 盒 包 件 个 只 颗 粒 种 道 岁".split()
)

# Colours and the words that shade them: an item's variant, not a taste in things.
_EN_COLOURS = frozenset(
    "black white grey gray silver gold red orange yellow green blue navy purple violet pink brown beige "
    "khaki cream ivory teal turquoise burgundy".split()
)
_EN_SHADES = frozenset("dark light pale bright deep".split())
_ZH_COLOUR = re.compile(r"^[深浅亮暗淡]?[黑白灰银金红橙黄绿青蓝紫粉棕米]色?$|^(?:咖啡|卡其|藏青|香槟|玫瑰金)色?$")

#: Product-copy filler that yake's own English stopword list lacks: describing verbs, praise,
#: price words of queries and model-line suffixes ("Pro", "Plus") that name no kind of thing.
EN_STOPWORDS = frozenset(
    "highlights highlight include includes including feature features featuring featured comes designed "
    "made perfect ideal great excellent best good better cheap cheapest affordable new "
    "pro plus max ultra mini lite edition set pack".split()
)

#: Chinese filler jieba's IDF ranks high in product, book and review text.
ZH_STOPWORDS = frozenset(
    "这款 一款 这个 那个 适合 非常 很长 可以 没有 就是 还是 感觉 真的 比较 特别 已经 一个 我们 他们 你们 "
    "使用 产品 东西 有点 不错 还有 以及 因为 所以 但是 而且 而已 这样 那样 什么 怎么 今天 时候 收到 购买 "
    "讲述 采用 支持 提供 带来 拥有 具有 打造 特点 亮点 包括 主要 出品 来自 推荐 性价比 套装 适用 款式".split()
)

_UNIT_PATTERN = "|".join(sorted((re.escape(u) for u in EN_UNITS | ZH_UNITS), key=len, reverse=True))
# A number with the unit it carries: "10kg", "13-inch", "400 pages", "5000毫安", "2400万像素".
_MEASUREMENT = re.compile(rf"\d[\d.,]*\s?[万千百亿]?-?(?:{_UNIT_PATTERN})(?![a-z])", re.IGNORECASE)
_REACH = 24  # characters around a word within which a measurement can touch it


def is_unit(tag: str) -> bool:
    """A unit or measure word ("inch", "kg", "毫升"), also as a Chinese pack size ("支装" = "N per pack")."""
    text = tag.strip().lower()
    if text in EN_UNITS or text in ZH_UNITS:
        return True
    return text.endswith("装") and text[:-1] in ZH_UNITS


def is_colour(tag: str) -> bool:
    """A colour, shaded or not ("green", "dark grey", "黑色", "深蓝"); "green tea" is not one."""
    text = tag.strip().lower()
    if _ZH_COLOUR.match(text):
        return True
    words = text.split()
    return bool(words) and all(w in _EN_COLOURS or w in _EN_SHADES for w in words) and words[-1] in _EN_COLOURS


def is_noise(tag: str) -> bool:
    """A unit, a measurement ("512gb"), a colour or a filler word: never an interest, whatever the text."""
    text = tag.strip().lower()
    return (is_unit(text) or bool(_MEASUREMENT.fullmatch(text)) or is_colour(text)
            or text in EN_STOPWORDS or text in ZH_STOPWORDS)


def measured(text: str, start: int) -> bool:
    """Whether the word at ``start`` of ``text`` belongs to a measurement: its unit ("inch" of
    "13-inch", "dpi" of "26000 dpi", "毫安" of "5000毫安") or what it measures ("load capacity"
    of "10kg load capacity", "屏幕" of "13英寸屏幕").

    >>> text = "10kg load capacity, 13-inch display and a carbon frame"
    >>> [measured(text, text.index(w)) for w in ("load", "inch", "display", "carbon")]
    [True, True, True, False]
    """
    for m in _MEASUREMENT.finditer(text, max(0, start - _REACH), start + _REACH):
        if m.start() < start < m.end() or (m.end() <= start and not text[m.end() : start].strip(" -")):
            return True
    return False
