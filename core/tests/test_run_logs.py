"""End to end: task output streams live with a prefix, and is stored per attempt."""

from __future__ import annotations

import re
import time

import pytest
from plait_harness import Plait

LAUNCH_MODES = [pytest.param({}, id="fork"), pytest.param({"PLAIT_LOCAL_LAUNCH": "subprocess"}, id="subprocess")]


@pytest.mark.parametrize("env", LAUNCH_MODES)
def test_output_streams_while_the_step_runs(plait: Plait, env: dict[str, str]) -> None:
    proc = plait.popen("log_flow", "run", "--max-workers", "2", env=env)
    assert proc.stdout is not None
    first = re.compile(r"\[(\d+)/start/(\d+) \(pid (\d+)\)\] first line$")
    seen: dict[str, float] = {}
    lines = []
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode().rstrip("\n")
            lines.append(line)
            if first.search(line):
                seen["first"] = time.monotonic()
            elif line.endswith("] second line"):
                seen["second"] = time.monotonic()
            elif "Task finished successfully" in line and "/start/" in line:
                seen["finished"] = time.monotonic()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "\n".join(lines)
    assert proc.returncode == 0, text
    assert {"first", "second", "finished"} <= set(seen), text
    # The step sleeps 2 s between its lines: the first must have arrived while it slept.
    assert seen["second"] - seen["first"] >= 1.0, text
    assert seen["first"] < seen["finished"]
    # The prefix names the task and its process, as announced when the task started.
    match = next(m for m in map(first.search, lines) if m)
    run_id, task_id, pid = match.groups()
    assert f"[{run_id}/start/{task_id} (pid {pid})] Task is starting." in text


def test_logs_are_stored_and_printed_by_the_logs_command(plait: Plait) -> None:
    run_id = plait.run("log_flow").ok().run_id
    task = plait.task("LogFlow", run_id, "start")
    assert plait.log("LogFlow", run_id, "start", task.task_id) == "first line\nsecond line\n"
    assert plait.log("LogFlow", run_id, "start", task.task_id, stream="stderr") == "a line on stderr\n"
    shown = plait.flow("log_flow", "logs", f"{run_id}/start/{task.task_id}").ok()
    assert shown.stdout == "first line\nsecond line\n"
    assert "a line on stderr" in shown.stderr
    only_err = plait.flow("log_flow", "logs", f"{run_id}/start/{task.task_id}", "--no-stdout").ok()
    assert only_err.stdout == "" and "a line on stderr" in only_err.stderr


def test_each_attempt_keeps_its_own_logs(plait: Plait) -> None:
    run_id = plait.run("retry_flow").ok().run_id
    task = plait.task("RetryFlow", run_id, "flaky")
    for attempt in range(3):
        out = plait.log("RetryFlow", run_id, "flaky", task.task_id, attempt)
        assert out == f"flaky attempt {attempt} (call {attempt + 1})\n"
    first_err = plait.log("RetryFlow", run_id, "flaky", task.task_id, 0, "stderr")
    assert "flaky failure number 1" in first_err
    pathspec = f"{run_id}/flaky/{task.task_id}"
    latest = plait.flow("retry_flow", "logs", pathspec).ok()
    assert "flaky attempt 2" in latest.stdout and "flaky attempt 0" not in latest.stdout
    earliest = plait.flow("retry_flow", "logs", pathspec, "--attempt", "0").ok()
    assert "flaky attempt 0" in earliest.stdout
    assert "flaky failure number 1" in earliest.stderr
