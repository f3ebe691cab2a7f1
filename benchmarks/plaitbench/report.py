"""Turn samples into medians, ratios and target checks; print a table; write JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .workloads import Metric, Metrics, Target, Workload

SIDES = ("plait", "metaflow")


@dataclass(frozen=True)
class Sample:
    ok: bool
    metrics: Metrics
    error: str | None = None


@dataclass(frozen=True)
class Stats:
    median: float | None
    min: float | None
    n: int  # successful samples
    failed: int

    @staticmethod
    def of(samples: list[Sample], key: str) -> Stats:
        values = [s.metrics[key] for s in samples if s.ok and key in s.metrics]
        failed = sum(not s.ok for s in samples)
        if not values:
            return Stats(None, None, 0, failed)
        return Stats(statistics.median(values), min(values), len(values), failed)


Results = dict[str, dict[str, list[Sample]]]  # workload -> side ("plait"/"metaflow"/"floor") -> samples


def ratio(metaflow: Stats, plait: Stats) -> float | None:
    """Metaflow median / Plait median: how many times better Plait is (lower is better)."""
    if metaflow.median is None or plait.median is None or plait.median <= 0 or metaflow.median <= 0:
        return None
    return metaflow.median / plait.median


def target_met(target: Target, plait: Stats, metaflow: Stats, floor: Stats | None) -> bool | None:
    if plait.median is None or plait.failed:
        return None
    if target.kind == "ratio_min":
        r = ratio(metaflow, plait)
        return None if r is None else r >= target.value
    if target.kind == "plait_max":
        return plait.median <= target.value
    if target.kind == "floor_factor":
        return None if floor is None or floor.median is None else plait.median <= target.value * floor.median
    raise ValueError(f"unknown target kind {target.kind!r}")


def summarize(workloads: list[Workload], results: Results) -> dict[str, Any]:
    """Everything latest.json holds about the workloads, including every raw sample."""
    out: dict[str, Any] = {}
    for wl in workloads:
        sides = results.get(wl.name, {})
        floor = Stats.of(sides["floor"], "floor_s") if "floor" in sides else None
        metrics = {}
        for metric in wl.metrics:
            plait, metaflow = (Stats.of(sides.get(side, []), metric.key) for side in SIDES)
            metrics[metric.key] = {
                "label": metric.label,
                "unit": metric.unit,
                "plait": asdict(plait),
                "metaflow": asdict(metaflow),
                "metaflow_over_plait": ratio(metaflow, plait) if metric.compare else None,
                "targets": [{"goal": t.text, "met": target_met(t, plait, metaflow, floor)} for t in metric.targets],
            }
        out[wl.name] = {
            "summary": wl.summary,
            "metrics": metrics,
            "floor": _floor_summary(sides.get("floor", [])),
            "samples": {side: [asdict(s) for s in samples] for side, samples in sides.items()},
        }
    return out


def _floor_summary(samples: list[Sample]) -> dict[str, Any] | None:
    if not samples:
        return None
    return {key: asdict(Stats.of(samples, key)) for key in ("floor_s", "hash_s", "write_s", "read_s")}


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def format_table(workloads: list[Workload], results: Results) -> str:
    header = (
        "workload",
        "metric",
        "Plait median (min, n)",
        "Metaflow median (min, n)",
        "Metaflow/Plait",
        "target",
    )
    rows: list[tuple[str, ...]] = [header]
    for wl in workloads:
        sides = results.get(wl.name, {})
        floor = Stats.of(sides["floor"], "floor_s") if "floor" in sides else None
        for i, metric in enumerate(wl.metrics):
            rows.append(_row(wl.name if i == 0 else "", metric, sides, floor))
        if floor is not None:
            rows.append(("", "raw floor: sha256+write+read", _cell(floor, "s"), "", "", ""))
    return _render(rows)


def _row(name: str, metric: Metric, sides: dict[str, list[Sample]], floor: Stats | None) -> tuple[str, ...]:
    plait, metaflow = (Stats.of(sides.get(side, []), metric.key) for side in SIDES)
    goals = []
    for target in metric.targets:
        met = target_met(target, plait, metaflow, floor)
        verdict = "?" if met is None else ("met" if met else "MISSED")
        goals.append(f"{target.text}: {verdict}")
    return (
        name,
        metric.label,
        _cell(plait, metric.unit),
        _cell(metaflow, metric.unit),
        _ratio_text(ratio(metaflow, plait), metric.unit) if metric.compare else "",
        "; ".join(goals),
    )


def _cell(stats: Stats, unit: str) -> str:
    total = stats.n + stats.failed
    if stats.failed:
        return f"FAIL ({stats.failed}/{total} runs)"
    if stats.median is None or stats.min is None:
        return "-"
    return f"{_value(stats.median, unit)} (min {_value(stats.min, unit).split()[0]}, n={stats.n})"


def _value(value: float, unit: str) -> str:
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.3f} s" if abs(value) < 10 else f"{value:.1f} s"


def _ratio_text(r: float | None, unit: str) -> str:
    if r is None:
        return "-"
    if abs(r - 1) < 0.05:
        return "about equal"
    better, worse = ("smaller", "larger") if unit == "MiB" else ("faster", "slower")
    return f"{r:.1f}x {better}" if r >= 1 else f"{1 / r:.1f}x {worse}"


def _render(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def failures(results: Results) -> list[str]:
    """One line per failed run, for printing under the table."""
    lines = []
    for name, sides in results.items():
        for side, samples in sides.items():
            for i, sample in enumerate(samples):
                if not sample.ok:
                    lines.append(f"{name} / {side} / run {i + 1}: {sample.error}")
    return lines
