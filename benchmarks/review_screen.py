"""Precision and recall of the review screen (spam, abuse, off-topic) in English and Chinese.

The sample (benchmarks/data/reviews_labelled.jsonl) was written and labelled by hand for this
purpose, apart from the screen's anchors: 20 genuine reviews (praise, complaints, a "garbage"
product, a mention of a discount or a website), 10 spam, 5 abusive and 5 off-topic texts per
language. Rows 0, 2, 4, … set the screen's margins (tuning half); rows 1, 3, 5, … are reported
(report half), and the whole sample too.

    python benchmarks/review_screen.py [--encoder use]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)

from liverec.cleaning.reviews import ReviewScreen, screen_quality  # noqa: E402
from liverec.text.encoders import get_encoder  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "reviews_labelled.jsonl"


def load_sample() -> list[dict[str, str]]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def encoder_screen(name: str, rows: list[dict[str, str]]) -> ReviewScreen:
    """The screen on encoder ``name``, with the sample's item texts as the items' vectors."""
    encoder = get_encoder(name)
    items = sorted({r["item"] for r in rows})
    vectors = dict(zip(items, encoder.encode(items, kind="passage"), strict=True))
    return ReviewScreen(lambda texts: encoder.encode(texts, kind="passage"),
                        lambda ids: np.stack([vectors[i] for i in ids]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="use")
    args = parser.parse_args()
    rows = load_sample()
    screen = encoder_screen(args.encoder, rows)
    result = {"encoder": args.encoder, "report_half": screen_quality(screen, rows[1::2]),
              "whole": screen_quality(screen, rows)}
    lines = ["| part | language | n | flagged precision | flagged recall | spam P/R | abuse P/R | off-topic P/R |",
             "|---|---|---|---|---|---|---|---|"]
    for part in ("report_half", "whole"):
        for lang, s in result[part].items():
            lines.append(f"| {part} | {lang} | {int(s['n'])} | {s['flagged_precision']:.2f} | {s['flagged_recall']:.2f}"
                         + "".join(f" | {s[f'{r}_precision']:.2f}/{s[f'{r}_recall']:.2f}"
                                   for r in ("spam", "abuse", "off_topic")) + " |")
    publish("review_screen", result, "\n".join(lines))


if __name__ == "__main__":
    main()
