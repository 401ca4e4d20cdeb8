"""How every benchmark publishes: JSON and a markdown table under benchmarks/results/, both printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def publish(name: str, result: dict[str, Any], table: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(json.dumps(result, indent=2))
    print()
    print(table)
