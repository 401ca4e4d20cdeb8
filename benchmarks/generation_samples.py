"""What a language model writes for demo-world users, and what the guard makes of it.

For English and Chinese demo users, the interest summary and the explanation of their first
recommendation are generated through the stage's own code (evidence, prompt templates, backend,
guard), and every answer is printed with its evidence and the guard's verdict: accepted, or the
reason it was refused. Counts of each outcome close the table.

Prints JSON and a markdown table (and writes both under benchmarks/results/).

    python benchmarks/generation_samples.py --llm PATH.gguf|URL [--llm-model NAME] [--users 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)

from liverec.datasets.demo import REFERENCE_TIME, build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402
from liverec.generation import GenerationError, GenerationSettings, Narrator, Rejected, check, collect  # noqa: E402
from liverec.generation.prompts import Evidence, template  # noqa: E402


def sample(narrator: Narrator, use: str, evidence: Evidence) -> dict[str, Any]:
    prompt = template(use)
    settings = narrator.settings
    assert narrator.generator is not None
    started = time.perf_counter()
    try:
        raw = collect(narrator.generator, prompt.messages(evidence), max_tokens=settings.max_tokens,
                      temperature=settings.temperature, timeout=settings.timeout)
    except GenerationError as exc:
        return {"use": use, "answer": None, "verdict": f"error: {exc}", "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    try:
        check(raw, evidence, max_words=prompt.max_words)
        verdict = "accepted"
    except Rejected as rejected:
        verdict = f"rejected: {rejected}"
    return {"use": use, "language": evidence.language, "evidence": evidence.lines, "answer": raw.strip(),
            "verdict": verdict, "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llm", required=True, help="a .gguf path or an OpenAI-compatible server's URL")
    parser.add_argument("--llm-model", default=None)
    parser.add_argument("--users", type=int, default=5, help="users per language")
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    world = build_demo_world(seed=args.seed, n_items=args.items, n_users=max(60, 6 * args.users), now=REFERENCE_TIME)
    engine = Engine.open(f"sqlite:///{tempfile.mkdtemp(prefix='liverec-gen-')}/gen.db")
    engine.ingest_items(world.items)
    engine.ingest_events(world.events)
    engine.train()
    settings = GenerationSettings(llm=args.llm, model=args.llm_model, timeout=60, max_tokens=96)
    narrator = Narrator(engine, settings.open(), settings)
    rows: list[dict[str, Any]] = []
    for language in ("en", "zh"):
        users = [u.user_id for u in world.users if u.language == language][: args.users]
        for user in users:
            state = engine.state(user)
            rows.append({"user": user, **sample(narrator, "summary", narrator.summary_evidence(state))})
            rec = engine.recommend(user, 1)[0]
            rows.append({"user": user, "item": rec.item_id, **sample(narrator, "explain",
                                                                      narrator.explain_evidence(state, rec))})
    narrator.close()
    outcomes = Counter(r["verdict"].split(":")[0] for r in rows)
    reasons = Counter(r["verdict"].split(": ", 1)[1].split(":")[0] for r in rows if r["verdict"].startswith("rejected"))
    result = {"model": narrator.generator.name if narrator.generator else None, "samples": rows,
              "outcomes": dict(outcomes), "rejections": dict(reasons)}
    lines = ["| user | use | lang | evidence | answer | guard | s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        evidence = "<br>".join(r.get("evidence", []))[:400].replace("|", "\\|")
        answer = (r["answer"] or "").replace("\n", " ").replace("|", "\\|")[:300]
        lines.append(f"| {r['user']} | {r['use']} | {r.get('language', '')} | {evidence} | {answer} | "
                     f"{r['verdict']} | {r['seconds']} |")
    lines.append("")
    lines.append(f"model: {result['model']}; outcomes: {dict(outcomes)}; rejections by reason: {dict(reasons)}")
    publish("generation_samples", result, "\n".join(lines))


if __name__ == "__main__":
    main()
