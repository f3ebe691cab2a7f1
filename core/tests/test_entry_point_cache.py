"""The cache of facts about installed distributions (entry points, plait-uv's runtime list):
reused across processes, recomputed when a distribution is installed or removed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from plait.entry_points import cached_for_installed


@pytest.fixture
def layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """(the flow's folder = sys.path[0], a site folder) and a private cache."""
    flow_dir, site = tmp_path / "flows", tmp_path / "site"
    flow_dir.mkdir()
    site.mkdir()
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", [str(flow_dir), str(site), *sys.path[1:]])
    return flow_dir, site


def counting() -> tuple[list[int], Callable[[], list[int]]]:
    calls: list[int] = []

    def compute() -> list[int]:
        calls.append(1)
        return [len(calls)]

    return calls, compute


def test_reused_until_a_distribution_is_installed(layout: tuple[Path, Path]) -> None:
    _, site = layout
    calls, compute = counting()
    assert cached_for_installed("probe", compute) == [1]
    assert cached_for_installed("probe", compute) == [1]
    assert len(calls) == 1
    (site / "newdist-1.0.dist-info").mkdir()  # an install changes the site folder
    assert cached_for_installed("probe", compute) == [2]


def test_the_flow_folder_counts_only_by_its_distributions(layout: tuple[Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    flow_dir, site = layout
    calls, compute = counting()
    cached_for_installed("probe", compute)
    (flow_dir / "output.csv").write_text("a flow writing next to itself\n")
    cached_for_installed("probe", compute)
    other = tmp_path / "other-flows"  # another flow's folder, same installation
    other.mkdir()
    monkeypatch.setattr(sys, "path", [str(other), *sys.path[1:]])
    cached_for_installed("probe", compute)
    assert len(calls) == 1
    (other / "local_plugin-0.1.dist-info").mkdir()  # a distribution in the flow's folder does count
    cached_for_installed("probe", compute)
    assert len(calls) == 2
