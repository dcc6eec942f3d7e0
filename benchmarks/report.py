"""The figures as people read them (machine line, table, notes) and as JSON for later runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.harness import FFMPEG, Result


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    ffmpeg_version = ""
    try:
        ffmpeg_version = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ffmpeg": ffmpeg_version,
        "loadavg_at_start": load,
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (
        f"machine: {info['cores']} cores, {info['cpu_model']}, Python {info['python']}, "
        f"load {info['loadavg_at_start']}; {info['ffmpeg']}"
    )


def table(results: list[Result]) -> str:
    """One row per figure (benchmark, figure, value, unit, target, PASS/MISS), then the notes."""
    rows = [("benchmark", "figure", "value", "unit", "target", "status")]
    for result in results:
        if result.error:
            rows.append((result.name, "ERROR", result.error.splitlines()[-1][:80], "", "", "ERROR"))
        for figure in result.figures:
            rows.append((result.name, figure.metric, str(figure.value), figure.unit, figure.target, figure.status))
    widths = [min(max(len(r[i]) for r in rows), 70) for i in range(6)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell[:70].ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    for result in results:
        lines.extend(f"* {result.name}: {note}" for note in result.notes)
    return "\n".join(lines)


def write_json(path: Path, results: list[Result], **meta: Any) -> None:
    report = {**meta, "benchmarks": {r.name: r.as_json() for r in results}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
