"""End to end: concurrent runs of one flow, and kill -9 of a run in the middle of a foreach."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from plait_harness import RUN_ID_RE, Plait, pid_alive

LAUNCH_MODES = [pytest.param({}, id="fork"), pytest.param({"PLAIT_LOCAL_LAUNCH": "subprocess"}, id="subprocess")]


def test_two_concurrent_runs_get_distinct_ids_and_both_succeed(plait: Plait) -> None:
    procs = [plait.popen("foreach_flow", "run", "--max-workers", "2") for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        outputs.append(out.decode())
        assert proc.returncode == 0, out.decode() + err.decode()
    run_ids = [RUN_ID_RE.findall(out)[0] for out in outputs]
    assert run_ids[0] != run_ids[1]
    for run_id in run_ids:
        assert plait.run_record("ForeachFlow", run_id).success is True
        assert plait.artifacts("ForeachFlow", run_id, "join")["order"] == ["a", "b", "c"]
        assert len(plait.tasks("ForeachFlow", run_id, "body")) == 3


def _processes_marked(state: Path) -> list[int]:
    """Pids of live processes started for this test's flows (they carry its state dir)."""
    marker = f"PLAIT_TEST_STATE={state}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("env", LAUNCH_MODES)
def test_kill_9_of_the_run_then_resume(plait: Plait, env: dict[str, str]) -> None:
    flow = "KillFlow"
    (plait.state / "block").write_text("")
    proc = plait.popen("kill_flow", "run", "--max-workers", "2", env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(
        raw.decode().rstrip("\n") for raw in iter(proc.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        _wait_for(lambda: plait.counter("work2") == 1 and plait.counter("work3") == 1, 60,
                  "the blocking foreach tasks to start")
        run_id = RUN_ID_RE.findall("\n".join(lines))[0]

        def quick_tasks_done() -> bool:
            done = [t for t in plait.tasks(flow, run_id, "work") if t.successful]
            return {t.foreach_key for t in done} == {"0", "1"}

        _wait_for(quick_tasks_done, 30, "items 0 and 1 to succeed")
        assert _processes_marked(plait.state), "expected the run's processes to be alive"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The tasks die with the scheduler (PR_SET_PDEATHSIG): nothing of the run survives.
    reader.join(timeout=15)
    task_pids = {int(p) for p in re.findall(r"\(pid (\d+)\)", "\n".join(lines))}
    assert len(task_pids) == 5  # start, and work 0..3
    _wait_for(lambda: not _processes_marked(plait.state) and not any(map(pid_alive, task_pids)),
              15, "every task process to exit")

    record = plait.run_record(flow, run_id)
    assert record.success is not True
    tasks = plait.tasks(flow, run_id)
    # No attempt claims success without its committed index.
    for task in tasks:
        for attempt in task.attempts:
            if attempt.success:
                index = plait.ds.read_index(flow, run_id, task.step, task.task_id, attempt.attempt)
                assert index is not None and index.success, f"{task.pathspec} attempt {attempt.attempt}"
    blocked = [t for t in plait.tasks(flow, run_id, "work") if t.foreach_key in ("2", "3")]
    assert len(blocked) == 2
    for task in blocked:
        assert not task.successful
        assert plait.ds.read_index(flow, run_id, "work", task.task_id) is None
    assert plait.tasks(flow, run_id, "join") == []

    (plait.state / "block").unlink()
    result = plait.resume("kill_flow", env=env).ok()
    resumed = result.run_id
    assert plait.run_record(flow, resumed).success is True
    assert plait.artifacts(flow, resumed, "join")["values"] == [0, 10, 20, 30]
    for task in plait.tasks(flow, resumed, "work"):
        if task.foreach_key in ("0", "1"):
            assert task.cloned_from is not None and task.cloned_from.startswith(f"{flow}/{run_id}/work/")
        else:
            assert task.cloned_from is None
    assert [plait.counter(f"work{i}") for i in range(4)] == [1, 1, 2, 2]


def test_a_killed_fork_server_fails_its_tasks_attempts_and_the_run_goes_on(plait: Plait) -> None:
    """Tasks die with the fork server; each killed attempt is retried from a new server."""
    result = plait.run("fork_server_dies_flow")
    assert result.returncode == 0, result.describe()
    assert "killed by signal SIGKILL). Retrying" in result.stdout
    assert "Traceback" not in result.output
    assert plait.artifacts("ForkServerDiesFlow", result.run_id, "join")["values"] == [0, 10, 20]
