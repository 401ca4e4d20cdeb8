"""The latest evaluation report (``liverec evaluate --out DIR``) under ``reports_dir``, for the
operator view: each run's systems with their headline metrics and intervals, and the plots.

Read-only and confined: only ``results.json`` and the PNG files beside it are served, by name,
from the newest report directory found (``reports_dir`` itself or one level below it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from liverec.core.errors import NotFoundError
from liverec.service.deps import ReadKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND

router = APIRouter(prefix="/reports", tags=["reports"])
RESULTS = "results.json"
# What the page shows of a run's systems: the @10 metrics and the beyond-accuracy figures.
SHOWN_METRICS = ("recall@10", "ndcg@10", "mrr@10")
PLOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.png")


def latest_report(reports_dir: str | None) -> Path:
    """The newest ``results.json`` in ``reports_dir`` or a directory right below it."""
    if not reports_dir:
        raise NotFoundError("no reports_dir is configured; serve with reports_dir = DIR after "
                            "`liverec evaluate --out DIR`", kind="report")
    root = Path(reports_dir)
    found = [p for p in (root / RESULTS, *root.glob(f"*/{RESULTS}")) if p.is_file()]
    if not found:
        raise NotFoundError(f"no evaluation report in {root} yet: run `liverec evaluate --out {root}`", kind="report")
    return max(found, key=lambda p: p.stat().st_mtime)


def summary(run: dict[str, Any]) -> dict[str, Any]:
    systems = [{"name": name, "users": s.get("users"),
                "metrics": {m: s["metrics"][m] for m in SHOWN_METRICS if m in s.get("metrics", {})},
                "beyond": s.get("beyond", {})} for name, s in run.get("systems", {}).items()]
    return {"dataset": run.get("dataset"), "protocol": run.get("protocol"), "counts": run.get("counts", {}),
            "notes": run.get("notes", []), "seconds": run.get("seconds"), "systems": systems}


@router.get("/latest", responses=ERROR_RESPONSES | NOT_FOUND,
            summary="The newest evaluation report under reports_dir: runs, systems' metrics with 95% CIs, plots")
def latest(services: ServicesDep, key: ReadKey) -> dict[str, Any]:
    path = latest_report(services.settings.reports_dir)
    runs = json.loads(path.read_text()).get("runs", [])
    plots = sorted(p.name for p in path.parent.glob("*.png") if PLOT.fullmatch(p.name))
    return {"name": path.parent.name, "modified": path.stat().st_mtime, "runs": [summary(r) for r in runs],
            "plots": plots}


@router.get("/latest/{name}", response_class=FileResponse, responses=ERROR_RESPONSES | NOT_FOUND,
            summary="A plot of the newest evaluation report (PNG)")
def plot(name: Annotated[str, PathParam(max_length=205)], services: ServicesDep, key: ReadKey) -> FileResponse:
    folder = latest_report(services.settings.reports_dir).parent
    if not PLOT.fullmatch(name) or not (folder / name).is_file():
        raise NotFoundError(f"the latest report has no plot {name!r}", kind="plot", key=name)
    return FileResponse(folder / name, media_type="image/png")
