"""End to end: resume clones what succeeded (without running it again) and re-runs the rest."""

from __future__ import annotations

from plait_harness import Plait, no_traceback

FLOW = "ResumeFlow"


def _fail(plait: Plait, name: str) -> None:
    (plait.state / name).write_text("")


def _unfail(plait: Plait, name: str) -> None:
    (plait.state / name).unlink()


def test_resume_after_a_failed_step(plait: Plait) -> None:
    _fail(plait, "fail_prep")
    first = plait.run("resume_flow").failed()
    origin = first.run_id
    assert plait.run_record(FLOW, origin).success is False
    assert plait.counter("start") == 1 and plait.counter("prep") == 1

    _unfail(plait, "fail_prep")
    result = plait.resume("resume_flow").ok()
    run_id = result.run_id
    assert run_id != origin
    # start was cloned, not run again; prep and everything after it ran.
    assert plait.counter("start") == 1
    assert plait.counter("prep") == 2
    assert plait.counter("work") == 4 and plait.counter("end") == 1
    start = plait.task(FLOW, run_id, "start")
    origin_start = plait.task(FLOW, origin, "start")
    assert start.cloned_from == f"{FLOW}/{origin}/start/{origin_start.task_id}"
    assert plait.task(FLOW, run_id, "prep").cloned_from is None
    assert "Cloned from" in result.stdout and f"{FLOW}/{origin}/start" in result.stdout
    # The clone shares the origin's artifacts (same blobs), including run-specific values.
    assert plait.index(FLOW, run_id, "start").artifacts == plait.index(FLOW, origin, "start").artifacts
    assert plait.artifacts(FLOW, run_id, "start")["start_run"] == origin
    # The resumed run knows where it came from.
    record = plait.run_record(FLOW, run_id)
    assert record.success is True and record.origin_run_id == origin
    assert plait.artifacts(FLOW, run_id, "prep")["origin"] == origin
    assert plait.artifacts(FLOW, run_id, "end")["end_origin"] == origin
    assert plait.artifacts(FLOW, run_id, "join")["squares"] == [0, 1, 4, 9]


def test_resume_clones_the_successful_splits_of_a_foreach(plait: Plait) -> None:
    _fail(plait, "fail_work2")
    origin = plait.run("resume_flow").failed().run_id
    done_before = {t.foreach_key: t for t in plait.tasks(FLOW, origin, "work") if t.successful}
    assert "2" not in done_before and "0" in done_before  # 0 runs first, 2 fails
    runs_before = {i: plait.counter(f"work{i}") for i in range(4)}

    _unfail(plait, "fail_work2")
    run_id = plait.resume("resume_flow").ok().run_id
    for task in plait.tasks(FLOW, run_id, "work"):
        i = int(task.foreach_key)
        if task.foreach_key in done_before:
            origin_task = done_before[task.foreach_key]
            assert task.cloned_from == f"{FLOW}/{origin}/work/{origin_task.task_id}"
            assert plait.counter(f"work{i}") == runs_before[i]  # not run again
        else:
            assert task.cloned_from is None
            assert plait.counter(f"work{i}") == runs_before[i] + 1
    join = plait.artifacts(FLOW, run_id, "join")
    assert join["squares"] == [0, 1, 4, 9]
    expected_runs = [origin if str(i) in done_before else run_id for i in range(4)]
    assert join["work_runs"] == expected_runs
    assert plait.counter("prep") == 1  # cloned too


def test_resume_from_a_named_step_reruns_it_and_what_follows(plait: Plait) -> None:
    origin = plait.run("resume_flow").ok().run_id
    run_id = plait.resume("resume_flow", "prep").ok().run_id
    assert plait.counter("start") == 1
    assert plait.counter("prep") == 2
    assert plait.counter("work") == 8
    assert plait.counter("end") == 2
    assert plait.task(FLOW, run_id, "start").cloned_from is not None
    assert all(t.cloned_from is None for t in plait.tasks(FLOW, run_id) if t.step != "start")
    assert plait.run_record(FLOW, run_id).origin_run_id == origin


def test_resume_origin_run_id_picks_the_run_to_resume(plait: Plait) -> None:
    _fail(plait, "fail_work1")
    first = plait.run("resume_flow").failed().run_id
    _unfail(plait, "fail_work1")
    _fail(plait, "fail_prep")
    second = plait.run("resume_flow").failed().run_id  # the latest run, failing elsewhere
    _unfail(plait, "fail_prep")

    run_id = plait.resume("resume_flow", "--origin-run-id", first).ok().run_id
    record = plait.run_record(FLOW, run_id)
    assert record.origin_run_id == first != second
    assert plait.task(FLOW, run_id, "prep").cloned_from.startswith(f"{FLOW}/{first}/prep/")
    assert plait.artifacts(FLOW, run_id, "join")["squares"] == [0, 1, 4, 9]


def test_resume_errors_are_clear(plait: Plait) -> None:
    nothing = plait.resume("resume_flow").failed()
    assert "no earlier run" in nothing.output
    no_traceback(nothing.output)
    plait.run("resume_flow").ok()
    unknown = plait.resume("resume_flow", "--origin-run-id", "12345").failed()
    assert "12345" in unknown.output and "does not exist" in unknown.output
    no_traceback(unknown.output)
    bad_step = plait.resume("resume_flow", "nosuchstep").failed()
    assert "nosuchstep" in bad_step.output
    no_traceback(bad_step.output)
