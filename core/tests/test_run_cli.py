"""End to end: the flow commands (show, check, dump, logs, tag, run --help), the ``plait``
console script, and errors printed as one message without a traceback."""

from __future__ import annotations

import pytest
from plait_harness import PLAIT_SCRIPT, Plait, flow_path, no_traceback

FLOW = "CliFlow"


@pytest.fixture
def cli_run(plait: Plait) -> str:
    """A finished run of CliFlow with --alpha 3."""
    return plait.run("cli_flow", "--alpha", "3").ok().run_id


def test_show_describes_the_graph(plait: Plait) -> None:
    out = plait.flow("cli_flow", "show").ok().stdout
    assert "A small flow for the command line tests." in out
    assert "Step start" in out and "Compute the result." in out and "=> end" in out
    assert out.index("Step start") < out.index("Step end")


def test_check_passes_a_good_flow(plait: Plait) -> None:
    assert "The graph looks good!" in plait.flow("cli_flow", "check").ok().stdout


@pytest.mark.parametrize("command", [["check"], ["run"], ["show"]])
def test_lint_error_is_one_message_with_file_and_line(plait: Plait, command: list[str]) -> None:
    result = plait.flow("lint_error_flow", *command)
    assert result.returncode == 1, result.describe()
    assert f"{flow_path('lint_error_flow')}:10:" in result.stderr
    assert "Step middle does not end with self.next()" in result.stderr
    assert result.stderr.count("Validity checker found an issue") == 1
    no_traceback(result.output)
    assert plait.md.list_runs("LintErrorFlow") == []


def test_run_help_shows_parameters(plait: Plait) -> None:
    out = plait.flow("cli_flow", "run", "--help").ok().stdout
    assert "--alpha" in out and "Multiplier for the result." in out
    for option in ("--tag", "--max-workers", "--max-num-splits", "--run-id-file", "--with"):
        assert option in out


def test_dump_prints_artifacts(plait: Plait, cli_run: str) -> None:
    task = plait.task(FLOW, cli_run, "start")
    for pathspec in (f"{cli_run}/start/{task.task_id}", f"{cli_run}/start", f"{FLOW}/{cli_run}/start"):
        out = plait.flow("cli_flow", "dump", pathspec).ok().stdout
        assert f"{FLOW}/{cli_run}/start/{task.task_id}" in out
        assert "result = 30" in out and "alpha = 3" in out
    only = plait.flow("cli_flow", "dump", f"{cli_run}/start", "--include", "result").ok().stdout
    assert "result = 30" in only and "alpha" not in only.split(":", 1)[1]


def test_dump_and_logs_errors_are_clear(plait: Plait, cli_run: str) -> None:
    for args in (["dump", "999/start"], ["logs", "999/start"], ["dump", cli_run],
                 ["dump", f"{cli_run}/nosuchstep"], ["logs", f"{cli_run}/start/424242"]):
        result = plait.flow("cli_flow", *args)
        assert result.returncode == 1, result.describe()
        no_traceback(result.output)
        assert result.stderr.strip().count("\n") == 0  # one message
    assert "does not exist" in plait.flow("cli_flow", "dump", "999/start").stderr


def test_logs_of_a_step(plait: Plait, cli_run: str) -> None:
    out = plait.flow("cli_flow", "logs", f"{cli_run}/start").ok().stdout
    assert out == "result is 30\n"
    stamped = plait.flow("cli_flow", "logs", f"{cli_run}/start", "--timestamps").ok().stdout
    assert stamped.endswith(" result is 30\n") and stamped[:2] == "20"


def test_tag_add_remove_list(plait: Plait, cli_run: str) -> None:
    plait.flow("cli_flow", "tag", "add", "--run-id", cli_run, "good", "keep").ok()
    assert sorted(plait.run_record(FLOW, cli_run).tags) == ["good", "keep"]
    listed = plait.flow("cli_flow", "tag", "list", "--run-id", cli_run).ok().stdout
    assert "good" in listed and "keep" in listed and "user:tester" in listed
    plait.flow("cli_flow", "tag", "remove", "--run-id", cli_run, "good").ok()
    assert plait.run_record(FLOW, cli_run).tags == ["keep"]
    # System tags cannot be removed.
    plait.flow("cli_flow", "tag", "remove", "--run-id", cli_run, "user:tester")
    assert "user:tester" in plait.run_record(FLOW, cli_run).system_tags
    latest = plait.flow("cli_flow", "tag", "list").ok().stdout
    assert cli_run in latest
    missing = plait.flow("cli_flow", "tag", "add", "--run-id", "999", "x")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    no_traceback(missing.output)


def test_run_tags_and_run_id_file(plait: Plait) -> None:
    id_file = plait.tmp / "run_id.txt"
    run_id = plait.run("cli_flow", "--tag", "t1", "--run-id-file", str(id_file)).ok().run_id
    assert id_file.read_text() == run_id
    record = plait.run_record(FLOW, run_id)
    assert record.tags == ["t1"] and record.success is True
    assert "user:tester" in record.system_tags


def test_console_script_runs_a_flow(plait: Plait) -> None:
    assert PLAIT_SCRIPT.exists(), f"the plait console script is not installed at {PLAIT_SCRIPT}"
    result = plait.execute([str(PLAIT_SCRIPT), "run", flow_path("cli_flow"), "--alpha", "4",
                            "--max-workers", "2"]).ok()
    assert "result is 40" in result.stdout
    assert plait.artifacts(FLOW, result.run_id, "end")["result"] == 40
    lint = plait.execute([str(PLAIT_SCRIPT), "check", flow_path("lint_error_flow")])
    assert lint.returncode == 1 and "lint_error_flow.py:10:" in lint.stderr
    no_traceback(lint.output)


def test_unknown_option_is_a_usage_error(plait: Plait) -> None:
    result = plait.run("cli_flow", "--no-such-option", "1")
    assert result.returncode == 2, result.describe()
    assert "--no-such-option" in result.stderr
    no_traceback(result.output)
