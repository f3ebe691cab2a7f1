"""The Runner API: real flows run by ``Runner`` synchronously, asynchronously, from threads."""

from __future__ import annotations

import asyncio
import os
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plait import Flow, Runner
from plait.client import default_namespace
from plait.exceptions import ParameterError
from plait.runner import ExecutingRun, RunnerError
from plait_harness import Plait

RUNNER_FLOW = textwrap.dedent('''
    import os
    import time

    from plait import FlowSpec, JSONType, Parameter, step


    class RunnerFlow(FlowSpec):
        alpha = Parameter("alpha", default=2, help="multiplier")
        name = Parameter("name", default="world")
        config = Parameter("config", type=JSONType, default='{"k": 1}')
        wait_for = Parameter("wait-for", default="", help="a file to wait for before finishing")
        fail_if = Parameter("fail-if", default="", help="fail while this file exists")

        @step
        def start(self):
            print("hello", self.name, flush=True)
            if self.wait_for:
                while not os.path.exists(self.wait_for):
                    time.sleep(0.05)
            if self.fail_if and os.path.exists(self.fail_if):
                raise RuntimeError("asked to fail")
            self.result = self.alpha * 10
            self.next(self.end)

        @step
        def end(self):
            print("result", self.result)


    if __name__ == "__main__":
        RunnerFlow()
''')

LINT_ERROR_FLOW = textwrap.dedent('''
    from plait import FlowSpec, step


    class NoEndFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.middle)

        @step
        def middle(self):
            pass
''')


@pytest.fixture
def flow_file(plait: Plait, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """RunnerFlow in a temp dir; this process and the runs it starts share the test's store."""
    path = plait.tmp / "runner_flow.py"
    path.write_text(RUNNER_FLOW)
    for key, value in plait.env.items():
        if key.startswith("PLAIT_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(plait.cwd)
    default_namespace()
    yield str(path)
    default_namespace()


def runs() -> int:
    try:
        return sum(1 for _ in Flow("RunnerFlow"))
    except Exception:  # noqa: BLE001 - no run yet
        return 0


def test_run_blocks_and_returns_the_finished_run(flow_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Runner(flow_file).run(alpha=3, name="bob", config={"k": [1, 2]}, tags=["t1"], max_workers=1) as running:
        assert isinstance(running, ExecutingRun)
        assert running.status == "successful" and running.returncode == 0
        run = running.run
        assert run.successful and run.finished and run.data.result == 30
        assert run.data.config == {"k": [1, 2]} and run.data.name == "bob"
        assert run.user_tags == {"t1"} and run == Flow("RunnerFlow").latest_run
        assert f"(run-id {run.id})" in running.stdout and "hello bob" in running.stdout
    shown = capsys.readouterr().out
    assert "hello bob" in shown and "Done!" in shown  # show_output=True echoes the run
    assert "hello bob" in running.stdout  # output is kept after the context closed


def test_show_output_false_prints_nothing(flow_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Runner(flow_file, show_output=False) as runner:
        result = runner.run(name="quiet")
        assert result.status == "successful" and "hello quiet" in result.stdout
    assert capsys.readouterr().out == ""


def test_a_failing_run(flow_file: str, plait: Plait) -> None:
    flag = plait.tmp / "fail"
    flag.write_text("")
    with Runner(flow_file, show_output=False) as runner:
        failed = runner.run(fail_if=str(flag))
        assert failed.status == "failed" and failed.returncode == 1
        assert not failed.run.successful and not failed.run.finished
        assert "asked to fail" in failed.stdout + failed.stderr
        assert "asked to fail" in failed.run["start"].task.exception.message
        flag.unlink()
        resumed = runner.resume()
        assert resumed.status == "successful" and resumed.run.successful
        assert resumed.run.origin_pathspec == failed.run.pathspec
        assert resumed.run.data.result == 20
        again = runner.resume(origin_run_id=resumed.run.id, step_to_rerun="end")
        assert again.run.successful and again.run.origin_pathspec == resumed.run.pathspec


def test_arguments_are_checked_before_anything_starts(flow_file: str) -> None:
    before = runs()
    runner = Runner(flow_file, show_output=False)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"alpah": 3}, "Unknown argument 'alpah'.*alpha"),
        ({"alpha": "three"}, "parameter 'alpha' \\(expects int\\)"),
        ({"alpha": [1]}, "parameter 'alpha'"),
        ({"config": "{not json"}, "parameter 'config'"),
        ({"max_workers": "many"}, "option 'max_workers'"),
        ({"tags": [""], "alpha": 1.5}, "parameter 'alpha'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ParameterError, match=message):
            runner.run(**kwargs)
    with pytest.raises(ParameterError, match="Unknown option 'nope'"):
        Runner(flow_file, nope=1)
    with pytest.raises(ParameterError, match="Unknown argument"):
        runner.resume(alpha=3)  # a resume takes the origin run's parameters
    assert runs() == before
    assert runner._commands == []  # nothing was launched


def test_a_flow_that_cannot_start(plait: Plait, flow_file: str) -> None:
    bad = plait.tmp / "no_end.py"
    bad.write_text(LINT_ERROR_FLOW)
    with pytest.raises(RunnerError, match="(?s)did not start.*has no end step"):
        Runner(str(bad), show_output=False).run()
    with pytest.raises(RunnerError, match="Cannot read the flow file"):
        Runner(str(plait.tmp / "missing.py"))


def test_async_run_knows_its_run_while_it_runs(flow_file: str, plait: Plait) -> None:
    gate = plait.tmp / "gate"

    async def main() -> tuple[ExecutingRun, list[tuple[int, str]], list[tuple[int, str]]]:
        async with Runner(flow_file) as runner:
            running = await runner.async_run(wait_for=str(gate), name="async")
            assert running.status == "running" and running.returncode is None
            assert running.run.id == Flow("RunnerFlow").latest_run.id  # known before it finished
            assert not running.run.finished
            lines = []
            async for position, line in running.stream_log("stdout"):
                lines.append((position, line))
                if "hello async" in line:
                    gate.write_text("")  # let the step finish
            assert await running.wait() is running
            assert running.status == "successful" and running.run.successful
            tail = [item async for item in running.stream_log("stdout", position=lines[2][0])]
            return running, lines, tail

    running, lines, tail = asyncio.run(main())
    text = [line for _, line in lines]
    assert any("hello async" in line for line in text) and text[-1].endswith("Done!")
    positions = [p for p, _ in lines]
    assert positions == sorted(positions) and positions[-1] == len(running.stdout.encode())
    assert tail == lines[3:]


def test_wait_timeout_stops_the_run(flow_file: str, plait: Plait) -> None:
    async def main() -> ExecutingRun:
        runner = Runner(flow_file, show_output=False)
        running = await runner.async_run(wait_for=str(plait.tmp / "never"))
        await running.wait(timeout=1)
        return running

    running = asyncio.run(main())
    assert running.status == "timeout" and running.returncode is not None
    assert not running.run.successful


def test_leaving_the_context_stops_a_run_still_going(flow_file: str, plait: Plait) -> None:
    async def main() -> ExecutingRun:
        async with Runner(flow_file, show_output=False) as runner:
            running = await runner.async_run(wait_for=str(plait.tmp / "never"))
            assert running.status == "running"
        return running

    running = asyncio.run(main())
    assert running.returncode is not None and running.status == "failed"


def test_runner_from_other_threads(flow_file: str, plait: Plait) -> None:
    results: dict[str, Any] = {}

    def blocking() -> None:
        results["sync"] = Runner(flow_file, show_output=False).run(name="thread")

    def with_loop() -> None:
        async def main() -> ExecutingRun:
            running = await Runner(flow_file, show_output=False).async_run(name="loop")
            return await running.wait(timeout=60)

        results["async"] = asyncio.run(main())

    def sync_wait() -> None:  # wait() without an event loop blocks
        running = asyncio.run(Runner(flow_file, show_output=False).async_run(name="plain"))
        results["plain"] = running.wait(timeout=60)

    threads = [threading.Thread(target=f) for f in (blocking, with_loop, sync_wait)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for key in ("sync", "async", "plain"):
        assert results[key].status == "successful", key
        assert results[key].run.data.name in ("thread", "loop", "plain")


def test_cwd_and_env_decide_where_the_run_goes(flow_file: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAIT_DATASTORE_ROOT")
    elsewhere = tmp_path / "project"
    elsewhere.mkdir()
    result = Runner(flow_file, show_output=False, cwd=str(elsewhere)).run()
    assert (elsewhere / ".plait").is_dir() and result.run.data.result == 20
    custom = tmp_path / "custom-root"
    result = Runner(flow_file, show_output=False, env={"PLAIT_DATASTORE_ROOT": str(custom)}).run(alpha=5)
    assert (custom / "metadata.sqlite").exists() and result.run.data.result == 50
    result = Runner(flow_file, show_output=False, datastore_root=str(tmp_path / "top")).run(alpha=6)
    assert (tmp_path / "top" / "metadata.sqlite").exists() and result.run.data.result == 60
    assert os.getcwd() != str(elsewhere)
