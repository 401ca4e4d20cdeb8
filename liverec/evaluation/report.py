"""Writing an evaluation run: ``results.json``, ``results.md`` and PNG plots.

The markdown is what a reader checks first: one table per protocol with every system's
means and 95% bootstrap intervals, the paired tests of liverec against each peer, the
breakdown by history length, the configuration each system chose on validation, and the
notes (what a peer could not do, how the data set was read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverec.evaluation.replay import MODES as REPLAY_MODES
from liverec.evaluation.results import REPLAY_COMPARISONS, EvaluationResult, ReplayResult

HEADLINE = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10")


def write_report(runs: Sequence[EvaluationResult], out: Path, seed: int = 0) -> dict[str, Path]:
    """Write everything for ``runs`` under ``out``; returns the files written by kind."""
    out.mkdir(parents=True, exist_ok=True)
    data = [run.to_json(seed) for run in runs]
    files = {"json": out / "results.json", "markdown": out / "results.md"}
    files["json"].write_text(json.dumps({"runs": data}, indent=2, ensure_ascii=False, default=_plain))
    plots: dict[str, Path] = {}
    for run, summary in zip(runs, data, strict=True):
        stem = f"{run.dataset}-{run.protocol}"
        if run.systems:
            plots[f"{stem}-metrics"] = plot_metrics(summary, out / f"{stem}-metrics.png")
            plots[f"{stem}-history"] = plot_history(summary, out / f"{stem}-ndcg-by-history.png")
            if any(s.get("extra", {}).get("tradeoff") for s in summary["systems"].values()):
                plots[f"{stem}-tradeoff"] = plot_tradeoff(summary, out / f"{stem}-tradeoff.png")
            if any(s.get("extra", {}).get("exposure_tradeoff") for s in summary["systems"].values()):
                plots[f"{stem}-exposure"] = plot_exposure(summary, out / f"{stem}-exposure.png")
        if run.replay:
            plots[f"{stem}-replay"] = plot_replay(run.replay, out / f"{stem}-replay.png", run.dataset)
    files["markdown"].write_text(markdown(data, {k: v.name for k, v in plots.items()}))
    files.update(plots)
    return files


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def markdown(data: Sequence[dict[str, Any]], plots: dict[str, str]) -> str:
    lines: list[str] = ["# liverec evaluation", ""]
    for run in data:
        stem = f"{run['dataset']}-{run['protocol']}"
        counts = ", ".join(f"{k} {v:,}" for k, v in run["counts"].items())
        lines += [f"## {run['dataset']} — {run['protocol']}", "", f"{counts}; run took {run['seconds']:.0f} s.", ""]
        lines += [f"- {note}" for note in run["notes"]] + ([""] if run["notes"] else [])
        if run["systems"]:
            lines += _system_table(run)
            lines += _noise_table(run)
            lines += _paired_table(run)
            lines += _history_table(run)
            lines += _category_table(run)
            lines += _exposure_table(run)
            lines += _choices(run)
            for kind, caption in (("metrics", "metrics with 95% CIs"), ("history", "NDCG@10 by history length"),
                                  ("tradeoff", "NDCG@10 against intra-list diversity as MMR's λ moves"),
                                  ("exposure", "NDCG@10 against popularity miscalibration, exposure control swept")):
                if f"{stem}-{kind}" in plots:
                    lines += [f"![{caption}]({plots[f'{stem}-{kind}']})", ""]
        if "replay" in run:
            lines += _replay_table(run["replay"])
            if f"{stem}-replay" in plots:
                lines += [f"![HR@10 over time, real-time vs frozen]({plots[f'{stem}-replay']})", ""]
    return "\n".join(lines) + "\n"


def _system_table(run: dict[str, Any]) -> list[str]:
    systems = run["systems"]
    beyond = sorted({k for s in systems.values() for k in s["beyond"]})
    head = ["system", "users", *[m.upper().replace("RECALL", "Recall") for m in HEADLINE], *beyond]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for name, s in systems.items():
        label = _label(name, s)
        cells = [label, f"{s['users']:,}"]
        for m in HEADLINE:
            v = s["metrics"].get(m)
            if v is None:
                cells.append("")
            elif m.endswith("@10"):
                cells.append(f"{_fmt(v['mean'])} [{_fmt(v['ci95'][0])}, {_fmt(v['ci95'][1])}]")
            else:
                cells.append(_fmt(v["mean"]))
        cells += [_fmt(s["beyond"][b]) if b in s["beyond"] else "" for b in beyond]
        lines.append("| " + " | ".join(cells) + " |")
    if any(s.get("extra", {}).get("budget_stopped") for s in systems.values()):
        lines += ["", "† stopped by the training time budget before early stopping ended it: under-trained."]
    lines += ["", "Brackets: 95% bootstrap intervals over users. Coverage, diversity (1 − mean pairwise cosine of item "
              "texts) and novelty (mean −log2 of an item's share of training users) are of the top 10, as is who "
              "is exposed: gini (of item exposure over the catalog; 0 even, 1 a few items take every slot), "
              "long_tail (the slots given to items outside the top 20% by training users) and miscalibration "
              "(total variation between the categories' shares of the slots and of the catalog; 0 matches it); "
              "popularity_miscalibration: the mean JS divergence (bits) between each user's mix of head, middle "
              "and tail items in their history and in their list.", ""]
    return lines


def _noise_table(run: dict[str, Any]) -> list[str]:
    """The noise protocol's conditions: accuracy against the clean run, trending, and what cleaning caught."""
    rows = {n: s for n, s in run["systems"].items() if "noise" in s.get("extra", {})}
    if not rows:
        return []
    clean = next((s["metrics"]["ndcg@10"]["mean"] for s in rows.values() if s["extra"]["noise"]["kind"] == "none"),
                 None)
    lines = ["| condition | events injected | NDCG@10 | vs clean | coverage@10 | trending top-10 shared with clean | "
             "noise items in trending top-10 | users quarantined: noise / real | events not learned (duplicates) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in rows.items():
        noise = s["extra"]["noise"]
        ndcg = s["metrics"]["ndcg@10"]["mean"]
        change = f"{ndcg / clean - 1:+.1%}" if clean else "n/a"
        lines.append(f"| {name} | {noise['injected']:,} | {_fmt(ndcg)} | {change} | "
                     f"{_fmt(s['beyond'].get('coverage@10', 0.0))} | {noise['trending_overlap_with_clean']}/10 | "
                     f"{noise['targets_in_trending_top10']}/{len(noise['targets'])} | "
                     f"{noise['noise_users_quarantined']} / {noise['real_users_quarantined']} | "
                     f"{sum(noise['not_learned'].values()):,} ({noise['not_learned'].get('duplicate', 0):,}) |")
    return lines + ["", "vs clean: NDCG@10 relative to the clean log learned with cleaning on (the paired tests below "
                        "give its interval). Noise items: the long-tail items the farm and the spam promote.", ""]


def _category_table(run: dict[str, Any]) -> list[str]:
    """Each of the catalog's largest categories: its share of the catalog and of each system's slots."""
    systems = {n: s["extra"]["category_exposure"] for n, s in run["systems"].items()
               if s.get("extra", {}).get("category_exposure")}
    if not systems:
        return []
    first = next(iter(systems.values()))
    lines = ["Exposure by category (share of the top-10 slots; the catalog's share first):", "",
             "| category | catalog | " + " | ".join(systems) + " |", "|---|---:|" + "---:|" * len(systems)]
    for cat, row in first.items():
        cells = [f"{row['catalog']:.1%}"] + [f"{shares[cat]['exposure']:.1%}" if cat in shares else ""
                                             for shares in systems.values()]
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    return lines + [""]


def _exposure_table(run: dict[str, Any]) -> list[str]:
    """The exposure control's test curve: accuracy against who is exposed, per strength."""
    lines: list[str] = []
    for name, s in run["systems"].items():
        curve = s.get("extra", {}).get("exposure_tradeoff")
        if not curve:
            continue
        chosen = s["config"].get("exposure")
        base = curve[0]["ndcg@10"]
        lines += [f"{name}'s exposure control on test (popularity calibration β; β = {chosen:g} chosen on validation):",
                  "", "| β | NDCG@10 | change | popularity miscalibration@10 | long_tail@10 | gini@10 | coverage@10 |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for p in curve:
            change = f"{p['ndcg@10'] / base - 1:+.1%}" if base else "n/a"
            lines.append(f"| {p['exposure']:g}{' ←' if p['exposure'] == chosen else ''} | {_fmt(p['ndcg@10'])} | "
                         f"{change} | {_fmt(p['popularity_miscalibration@10'])} | {_fmt(p['long_tail@10'])} | "
                         f"{_fmt(p['gini@10'])} | {_fmt(p['coverage@10'])} |")
        lines.append("")
    return lines


def _paired_table(run: dict[str, Any]) -> list[str]:
    tests = run.get("paired_tests") or {}
    if not tests:
        return []
    lines = ["| comparison | metric | liverec | peer | difference [95% CI] | relative | p (randomisation) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for label, by_metric in tests.items():
        peer = label.split(" vs ", 1)[1]
        for metric, t in by_metric.items():
            rel = "n/a" if t["relative"] != t["relative"] else f"{t['relative']:+.1%}"
            lines.append(f"| {label} | {metric} | {_fmt(t['liverec'])} | {_fmt(t[peer])} | {t['difference']:+.4f} "
                         f"[{t['ci95'][0]:+.4f}, {t['ci95'][1]:+.4f}] | {rel} | {t['p_value']:.4f} |")
    return lines + [""]


def _history_table(run: dict[str, Any]) -> list[str]:
    systems = run["systems"]
    bins: list[str] = []
    for s in systems.values():
        bins += [b for b in s["ndcg@10_by_history_length"] if b not in bins]
    if not bins:
        return []
    first = next(iter(systems.values()))["ndcg@10_by_history_length"]
    lines = ["NDCG@10 by the number of items in the user's history:", "",
             "| system | " + " | ".join(f"{b} ({first.get(b, {}).get('users', 0):,} users)" for b in bins) + " |",
             "|---|" + "---:|" * len(bins)]
    for name, s in systems.items():
        row = s["ndcg@10_by_history_length"]
        lines.append(f"| {name} | " + " | ".join(_fmt(row[b]["mean"]) if b in row else "" for b in bins) + " |")
    return lines + [""]


def _choices(run: dict[str, Any]) -> list[str]:
    lines = ["Chosen on validation (test read once):", ""]
    for name, s in run["systems"].items():
        tried = ", ".join(f"{config_text(t['config'])} → {t['valid_ndcg@10']:.4f}" for t in s["validation"]) or "—"
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in s["seconds"].items())
        lines.append(f"- **{name}**: {config_text(s['config'])} (validation NDCG@10 of each tried: {tried}; {secs})")
        lines += [f"  - {note}" for note in s["notes"]]
    return lines + [""]


def _label(name: str, system: dict[str, Any]) -> str:
    """The system's name, marked † when a training budget stopped it (under-trained)."""
    return f"{name} †" if system.get("extra", {}).get("budget_stopped") else name


def config_text(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) if config else "defaults"


def _replay_table(replay: dict[str, Any]) -> list[str]:
    lines = ["Streaming replay (before each event on an item new to the user: recommend 10, then apply the event):",
             "", "| mode | scored events | HR@10 [95% CI] | NDCG@10 | trainings |", "|---|---:|---:|---:|---:|"]
    for mode in REPLAY_MODES:
        r = replay.get(mode)
        if r:
            lines.append(f"| {mode} | {r['events']:,} | {_fmt(r['hr@10'])} [{_fmt(r['hr@10_ci95'][0])}, "
                         f"{_fmt(r['hr@10_ci95'][1])}] | {_fmt(r['ndcg@10'])} | {r['trainings']} |")
    lines += ["", "frozen: sees events only at trainings; frozen+seen: the same engine, also leaving out the items "
                  "the user had since its last training (a batch recommender with a live seen-filter).", ""]
    groups = list(replay.get("realtime", {}).get("by_user", {}))
    if groups:
        lines += ["HR@10 by whether the frozen engine had been shown any event of the user:", "",
                  "| mode | " + " | ".join(f"{g} ({replay['realtime']['by_user'][g]['events']:,} events)"
                                         for g in groups) + " |", "|---|" + "---:|" * len(groups)]
        for mode in REPLAY_MODES:
            by = replay.get(mode, {}).get("by_user", {})
            lines.append(f"| {mode} | " + " | ".join(_fmt(by[g]["hr@10"]) if g in by else "" for g in groups) + " |")
        lines.append("")
    tests = [(a, b, replay[f"{a} vs {b}"]) for a, b in REPLAY_COMPARISONS if f"{a} vs {b}" in replay]
    if tests:
        lines += ["| comparison | HR@10 difference [95% CI] | relative | p (randomisation) |", "|---|---:|---:|---:|"]
        for a, b, t in tests:
            lines.append(f"| {a} − {b} | {t['difference']:+.4f} [{t['ci95'][0]:+.4f}, {t['ci95'][1]:+.4f}] | "
                         f"{t['relative']:+.1%} | {t['p_value']:.4f} |")
    return lines + [""]


# ------------------------------------------------------------------------------------------ plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(run: dict[str, Any], path: Path) -> Path:
    """Grouped bars of Recall/NDCG/MRR@10 per system, with 95% bootstrap intervals."""
    plt = _pyplot()
    names = list(run["systems"])
    metrics = ("recall@10", "ndcg@10", "mrr@10")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(names))
    for n, name in enumerate(names):
        m = run["systems"][name]["metrics"]
        means = [m[x]["mean"] for x in metrics]
        err = np.array([[m[x]["mean"] - m[x]["ci95"][0], m[x]["ci95"][1] - m[x]["mean"]] for x in metrics]).T
        xs = np.arange(len(metrics)) + (n - (len(names) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=err, capsize=3, label=_label(name, run["systems"][name]))
    ax.set_xticks(np.arange(len(metrics)), [x.upper().replace("RECALL", "Recall") for x in metrics])
    ax.set_ylabel("mean over test users")
    ax.set_title(f"{run['dataset']} — {run['protocol']} (95% bootstrap CIs)")
    ax.legend()
    return _save(plt, fig, path)


def plot_history(run: dict[str, Any], path: Path) -> Path:
    """NDCG@10 per history-length bucket, one line per system."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins: list[str] = []
    for s in run["systems"].values():
        bins += [b for b in s["ndcg@10_by_history_length"] if b not in bins]
    for name, s in run["systems"].items():
        row = s["ndcg@10_by_history_length"]
        ax.plot(range(len(bins)), [row[b]["mean"] if b in row else np.nan for b in bins], marker="o",
                label=_label(name, s))
    ax.set_xticks(range(len(bins)), [f"{b} items" for b in bins])
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"{run['dataset']} — {run['protocol']}: NDCG@10 by history length")
    ax.legend()
    return _save(plt, fig, path)


def plot_tradeoff(run: dict[str, Any], path: Path) -> Path:
    """NDCG@10 against intra-list diversity@10: a curve per system swept over MMR's λ (the λ
    validation chose ringed), every other system a point."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, s in run["systems"].items():
        curve = s.get("extra", {}).get("tradeoff")
        if curve:
            xs, ys = [p["diversity@10"] for p in curve], [p["ndcg@10"] for p in curve]
            ax.plot(xs, ys, marker="o", label=f"{_label(name, s)}, MMR λ swept (numbers)")
            for p in curve:
                ax.annotate(f"{p['diversity_lambda']:g}", (p["diversity@10"], p["ndcg@10"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            chosen = s["config"].get("diversity")
            at = [p for p in curve if p["diversity_lambda"] == chosen]
            if at:
                ax.scatter([at[0]["diversity@10"]], [at[0]["ndcg@10"]], s=160, facecolors="none", edgecolors="k",
                           label=f"λ = {chosen:g}, chosen on validation")
        elif "diversity@10" in s.get("beyond", {}):
            ax.scatter([s["beyond"]["diversity@10"]], [s["metrics"]["ndcg@10"]["mean"]], marker="s",
                       label=_label(name, s))
    ax.set_xlabel("intra-list diversity@10 (mean pairwise cosine distance of item texts)")
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"{run['dataset']} — {run['protocol']}: accuracy against diversity", fontsize=10)
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_exposure(run: dict[str, Any], path: Path) -> Path:
    """NDCG@10 against popularity miscalibration@10 (how far lists are from their users' mix of
    popular and long-tail items): a curve per system swept over the exposure control's strength
    (the one validation chose ringed), every other system a point."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = "popularity_miscalibration@10"
    for name, s in run["systems"].items():
        curve = s.get("extra", {}).get("exposure_tradeoff")
        if curve:
            ax.plot([p[x] for p in curve], [p["ndcg@10"] for p in curve], marker="o",
                    label=f"{_label(name, s)}, calibration β swept (numbers)")
            for p in curve:
                ax.annotate(f"{p['exposure']:g}", (p[x], p["ndcg@10"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
            at = [p for p in curve if p["exposure"] == s["config"].get("exposure")]
            if at:
                ax.scatter([at[0][x]], [at[0]["ndcg@10"]], s=160, facecolors="none", edgecolors="k",
                           label=f"β = {at[0]['exposure']:g}, chosen on validation")
        elif x in s.get("beyond", {}):
            ax.scatter([s["beyond"][x]], [s["metrics"]["ndcg@10"]["mean"]], marker="s", label=_label(name, s))
    ax.set_xlabel("popularity miscalibration@10 (JS divergence of head/middle/tail shares, list vs history)")
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"{run['dataset']} — {run['protocol']}: accuracy against popularity calibration", fontsize=10)
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_replay(runs: Sequence[ReplayResult], path: Path, dataset: str, window: int = 500) -> Path:
    """HR@10 over event time, a moving average over ``window`` scored events, per mode."""
    from datetime import UTC, datetime

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for run in runs:
        if run.hits.size == 0:
            continue
        w = min(window, run.hits.size)
        smooth = np.convolve(run.hits, np.ones(w) / w, mode="valid")
        when = [datetime.fromtimestamp(t, UTC) for t in run.times[w - 1 :]]
        ax.plot(when, smooth, label=f"{run.mode} (HR@10 {run.hits.mean():.3f})")
    ax.set_ylabel(f"HR@10, moving mean of {window} events")
    ax.set_title(f"{dataset} — streaming replay: real-time state vs frozen between trainings", fontsize=10)
    ax.legend()
    fig.autofmt_xdate()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
