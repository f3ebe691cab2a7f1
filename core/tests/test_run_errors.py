"""End to end: transitions that differ from the source at run time, and a missing self.next."""

from __future__ import annotations

import os

from plait_harness import Plait, no_traceback


def test_transition_matching_the_source_runs(plait: Plait) -> None:
    run_id = plait.run("transition_flow").ok().run_id
    assert [t.step for t in plait.tasks("TransitionFlow", run_id)] == ["start", "a", "end"]


def test_runtime_transition_mismatch_fails_the_task(plait: Plait) -> None:
    result = plait.run("transition_flow", env={"PLAIT_TEST_MODE": "mismatch"}).failed()
    assert "Invalid self.next() transition" in result.output
    assert "self.next(end)" in result.output and "self.next(a)" in result.output
    no_traceback(result.output)
    start = plait.task("TransitionFlow", result.run_id, "start")
    assert start.latest_attempt.success is False
    assert plait.tasks("TransitionFlow", result.run_id, "a") == []
    assert plait.tasks("TransitionFlow", result.run_id, "end") == []
    assert plait.run_record("TransitionFlow", result.run_id).success is False


def test_step_that_does_not_call_next_fails_the_task(plait: Plait) -> None:
    result = plait.run("transition_flow", env={"PLAIT_TEST_MODE": "no_next"}).failed()
    assert "without calling self.next()" in result.output
    no_traceback(result.output)
    assert plait.task("TransitionFlow", result.run_id, "start").latest_attempt.success is False
    assert plait.tasks("TransitionFlow", result.run_id, "a") == []


def test_a_broken_pipe_inside_plait_is_reported_not_swallowed(plait: Plait) -> None:
    """click exits 1 without a word on any EPIPE; only a closed stdout deserves that."""
    result = plait.flow("broken_pipe_flow")
    assert result.returncode == 1
    assert "about to break" in result.stdout
    assert "A connection inside Plait broke" in result.stderr and "report it" in result.stderr
    no_traceback(result.output)


def test_a_closed_stdout_still_ends_quietly(plait: Plait) -> None:
    """``python flow.py ... | head -1``: the reader went away; nothing to report."""
    import subprocess

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(plait.command("broken_pipe_flow"), cwd=plait.cwd, env=plait.env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert "A connection inside Plait broke" not in proc.stderr
