"""End to end: Parameters (every type, defaults, required, callable, IncludeFile) and ``current``."""

from __future__ import annotations

from plait_harness import Plait, no_traceback


def _notes(plait: Plait, text: str = "line one\nline two\n") -> str:
    path = plait.tmp / "notes.txt"
    path.write_text(text)
    return str(path)


def test_parameter_defaults_reach_every_step(plait: Plait) -> None:
    notes = _notes(plait)
    run_id = plait.run("params_flow", "--name", "ada", "--notes", notes).ok().run_id
    flow = "ParamsFlow"
    expected = {"name": "ada", "count": 2, "ratio": 0.5, "loud": False, "config": {"k": [1, 2]},
                "label": "ParamsFlow:label:tester", "notes": "line one\nline two\n"}
    assert plait.artifacts(flow, run_id, "start")["start_values"] == expected
    assert plait.artifacts(flow, run_id, "join")["join_values"] == expected  # joins see them too
    assert plait.artifacts(flow, run_id, "end")["end_values"] == expected
    assert plait.artifacts(flow, run_id, "start")["parameter_names"] == sorted(
        ["name", "count", "ratio", "loud", "config", "label", "notes", "assign"])
    # The run's metadata records the values for display.
    params = plait.run_record(flow, run_id).parameters
    assert params["name"] == "ada" and params["count"] == 2 and params["config"] == {"k": [1, 2]}


def test_parameters_from_the_command_line_are_typed(plait: Plait) -> None:
    notes = _notes(plait, "first version")
    result = plait.run("params_flow", "--name", "bob", "--count", "5", "--ratio", "0.25",
                       "--loud", "true", "--config", '{"k": {"nested": true}}',
                       "--label", "given", "--notes", notes).ok()
    # IncludeFile snapshots the content: changing the file afterwards changes nothing.
    (plait.tmp / "notes.txt").write_text("second version")
    values = plait.artifacts("ParamsFlow", result.run_id, "end")["end_values"]
    assert values == {"name": "bob", "count": 5, "ratio": 0.25, "loud": True,
                      "config": {"k": {"nested": True}}, "label": "given", "notes": "first version"}
    assert type(values["count"]) is int and type(values["ratio"]) is float


def test_json_parameter_may_hold_a_json_string(plait: Plait) -> None:
    run_id = plait.run("params_flow", "--name", "x", "--config", '"just text"').ok().run_id
    assert plait.artifacts("ParamsFlow", run_id, "end")["end_values"]["config"] == "just text"


def test_missing_required_parameter_is_a_clear_error(plait: Plait) -> None:
    result = plait.run("params_flow").failed()
    assert "--name" in result.stderr
    no_traceback(result.output)
    assert plait.md.list_runs("ParamsFlow") == []  # nothing was started


def test_invalid_parameter_values_are_clear_errors(plait: Plait) -> None:
    bad_int = plait.run("params_flow", "--name", "x", "--count", "many").failed()
    assert "--count" in bad_int.stderr or "count" in bad_int.stderr
    no_traceback(bad_int.output)
    bad_json = plait.run("params_flow", "--name", "x", "--config", "{not json").failed()
    assert "JSON" in bad_json.stderr
    no_traceback(bad_json.output)
    missing_file = plait.run("params_flow", "--name", "x", "--notes", str(plait.tmp / "nope.txt")).failed()
    assert "nope.txt" in missing_file.stderr
    no_traceback(missing_file.output)


def test_run_help_lists_parameters_with_their_help(plait: Plait) -> None:
    result = plait.flow("params_flow", "run", "--help").ok()
    for option, text in (("--name", "Who to greet"), ("--count", "How many greetings"),
                         ("--config", "Settings as JSON"), ("--notes", "A text file")):
        assert option in result.stdout
        assert text in result.stdout
    assert "--max-workers" in result.stdout


def test_assigning_to_a_parameter_fails_clearly(plait: Plait) -> None:
    result = plait.run("params_flow", "--name", "x", "--assign", "true").failed()
    assert "Parameter 'count' cannot be assigned" in result.output
    start = plait.task("ParamsFlow", result.run_id, "start")
    assert start.latest_attempt.success is False
    assert "cannot be assigned" in start.latest_attempt.exception


def test_current_fields(plait: Plait) -> None:
    result = plait.run("current_flow", "--tag", "nightly", "--tag", "team:ml", "--alpha", "5").ok()
    run_id, flow = result.run_id, "CurrentFlow"
    for step in ("start", "again", "end"):
        task = plait.task(flow, run_id, step)
        info = plait.artifacts(flow, run_id, step)["info"]
        assert info["flow_name"] == flow
        assert info["run_id"] == run_id
        assert info["step_name"] == step
        assert info["task_id"] == task.task_id
        assert info["pathspec"] == f"{flow}/{run_id}/{step}/{task.task_id}"
        assert info["origin_run_id"] is None
        assert info["username"] == "tester"
        assert info["namespace"] == "user:tester"
        assert info["tags"] == ["nightly", "team:ml"]
        assert info["is_running_flow"] is True
        assert info["parameter_names"] == ["alpha", "beta"]
    assert plait.artifacts(flow, run_id, "start")["info"]["retry_count"] == 0
    assert plait.artifacts(flow, run_id, "again")["info"]["retry_count"] == 1  # the retried attempt


def test_current_is_empty_outside_a_run() -> None:
    from plait import current

    assert current.is_running_flow is False
    assert current.run_id is None and current.pathspec is None
