"""End to end: @retry, @catch (exceptions and hard crashes), @timeout, @environment,
@resources and ``--with``, in the default fork path and, for crashes, the subprocess path."""

from __future__ import annotations

import pytest
from plait_harness import Plait, no_traceback

LAUNCH_MODES = [pytest.param({}, id="fork"), pytest.param({"PLAIT_LOCAL_LAUNCH": "subprocess"}, id="subprocess")]


def test_retry_until_success(plait: Plait) -> None:
    result = plait.run("retry_flow").ok()
    flow, run_id = "RetryFlow", result.run_id
    assert plait.counter("flaky") == 3
    flaky = plait.task(flow, run_id, "flaky")
    assert [a.success for a in flaky.attempts] == [False, False, True]
    assert "flaky failure number 1" in flaky.attempts[0].exception
    assert plait.artifacts(flow, run_id, "flaky")["flaky_attempt"] == 2
    # Failed attempts committed too (as failures), the last one as the success.
    assert plait.ds.list_attempts(flow, run_id, "flaky", flaky.task_id) == [0, 1, 2]
    assert plait.index(flow, run_id, "flaky", flaky.task_id, 0).success is False
    assert plait.index(flow, run_id, "flaky").success is True
    assert "Retrying" in result.stdout


def test_retry_waits_minutes_between_retries(plait: Plait) -> None:
    run_id = plait.run("retry_flow").ok().run_id
    delayed = plait.task("RetryFlow", run_id, "delayed")
    first, second = delayed.attempts
    assert first.success is False and second.success is True
    assert second.started_at - first.finished_at >= 0.02 * 60 - 0.05


def test_catch_stores_the_exception_and_the_flow_continues(plait: Plait) -> None:
    result = plait.run("catch_flow").ok()
    flow, run_id = "CatchFlow", result.run_id
    assert plait.counter("boom") == 2  # @retry(times=1) ran it twice before @catch took over
    boom = plait.task(flow, run_id, "boom")
    assert [a.success for a in boom.attempts] == [False, True]
    err = plait.artifacts(flow, run_id, "boom")["err"]
    assert "ValueError" in err.type and "kaboom" in str(err)
    after = plait.artifacts(flow, run_id, "after")
    assert "ValueError" in after["err_type"] and "kaboom" in after["err_text"]
    assert plait.run_record(flow, run_id).success is True


@pytest.mark.parametrize("env", LAUNCH_MODES)
def test_catch_survives_a_segfault(plait: Plait, env: dict[str, str]) -> None:
    result = plait.run("segv_catch_flow", env=env).ok()
    flow, run_id = "SegvCatchFlow", result.run_id
    assert plait.counter("crash") == 1  # the fallback attempt does not run the step again
    crash = plait.task(flow, run_id, "crash")
    assert [a.success for a in crash.attempts] == [False, True]
    assert "SIGSEGV" in crash.attempts[0].exception
    assert "SIGSEGV" in result.output
    assert "Segmentation fault" in plait.log(flow, run_id, "crash", crash.task_id, 0, "stderr")
    assert "plait/runtime" not in result.output
    after = plait.artifacts(flow, run_id, "after")
    assert after["crash_text"]  # the var says the step crashed
    assert plait.tasks(flow, run_id, "end")[0].successful


@pytest.mark.parametrize("how,why,env", [
    ("segv", "SIGSEGV", {}),
    ("nullptr", "SIGSEGV", {}),
    ("exit", "exit code 3", {}),
    ("nullptr", "SIGSEGV", {"PLAIT_LOCAL_LAUNCH": "subprocess"}),
], ids=["segv", "nullptr", "os_exit", "nullptr-subprocess"])
def test_hard_crash_without_catch_fails_the_run_cleanly(plait: Plait, how: str, why: str,
                                                         env: dict[str, str]) -> None:
    result = plait.run("crash_flow", "--how", how, env=env).failed()
    flow, run_id = "CrashFlow", result.run_id
    assert result.returncode == 1
    assert why in result.output
    assert "Run failed" in result.stderr
    no_traceback(result.output)
    # A crash points at the step's code, never at Plait's own frames.
    assert "plait/runtime" not in result.output and "plait/builtins" not in result.output
    crash = plait.task(flow, run_id, "crash")
    if why == "SIGSEGV":
        assert "Segmentation fault" in result.output
        assert 'crash_flow.py", line' in result.output
        assert "Segmentation fault" in plait.log(flow, run_id, "crash", crash.task_id, 0, "stderr")
    assert [a.success for a in crash.attempts] == [False]
    assert why in crash.attempts[0].exception
    index = plait.ds.read_index(flow, run_id, "crash", crash.task_id)
    assert index is None or not index.success
    # The sibling branch was not disturbed: it finished and its artifacts are stored.
    ok = plait.task(flow, run_id, "ok")
    assert ok.successful and plait.counter("ok") == 1
    assert plait.artifacts(flow, run_id, "ok")["fine"] is True
    assert plait.counter("join") == 0 and plait.tasks(flow, run_id, "join") == []
    assert plait.run_record(flow, run_id).success is False


def test_timeout_fails_fast_and_is_retried(plait: Plait) -> None:
    result = plait.run("timeout_flow", timeout=60).failed()
    flow, run_id = "TimeoutFlow", result.run_id
    assert result.elapsed < 25  # each attempt sleeps 30 s; @timeout(seconds=1) stops it long before
    assert plait.counter("slow") == 2
    slow = plait.task(flow, run_id, "slow")
    assert [a.success for a in slow.attempts] == [False, False]
    for attempt in slow.attempts:
        assert "timeout" in attempt.exception.lower()
    assert "exceeded its @timeout of 1 seconds" in result.output
    no_traceback(result.output)


def test_environment_and_resources(plait: Plait) -> None:
    run_id = plait.run("deco_flow").ok().run_id
    flow = "DecoFlow"
    start = plait.artifacts(flow, run_id, "start")
    assert start["greeting"] == "hello" and start["number"] == "3"
    assert plait.artifacts(flow, run_id, "end")["greeting_in_end"] is None  # only that step
    resources = plait.task(flow, run_id, "start").attempts[-1].metadata["resources"]
    assert resources["cpu"] == 2 and resources["memory"] == 1000


def test_with_attaches_a_decorator_to_every_step(plait: Plait) -> None:
    failed = plait.run("with_retry_flow").failed()
    assert plait.task("WithRetryFlow", failed.run_id, "start").attempts[0].success is False

    for name in ("start", "end"):  # reset the fail-once counters
        (plait.state / name).unlink(missing_ok=True)
    result = plait.run("with_retry_flow", "--with", "retry:times=1,minutes_between_retries=0").ok()
    flow, run_id = "WithRetryFlow", result.run_id
    for step in ("start", "end"):
        task = plait.task(flow, run_id, step)
        assert [a.success for a in task.attempts] == [False, True]
    assert plait.artifacts(flow, run_id, "end")["start_attempt"] == 1
    assert plait.artifacts(flow, run_id, "end")["end_attempt"] == 1
