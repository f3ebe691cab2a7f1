"""The Runner API: run and resume flows from Python scripts and notebooks (Metaflow's names)."""

from __future__ import annotations

from plait.runner.executing import ExecutingRun
from plait.runner.flowfile import RunnerError
from plait.runner.nbrun import NBRunner, NBRunnerInitializationError
from plait.runner.runner import Runner

__all__ = ["Runner", "NBRunner", "ExecutingRun", "RunnerError", "NBRunnerInitializationError"]
