"""The client API against runs of real flows, made through the real CLI.

One world per session: a successful run (foreach, a retried task, a @catch-ed step), a run
whose end step fails, its resume, and a flow that fails in its first step. Every property of
Flow, Run, Step, Task and DataArtifact is checked against what those runs did.
"""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from plait.client import (
    DataArtifact,
    Flow,
    InvalidPathspec,
    Metaflow,
    Run,
    Step,
    Task,
    default_namespace,
    get_metadata,
    namespace,
)
from plait.exceptions import PlaitException, PlaitNotFound
from plait_harness import Plait

CLIENT_FLOW = textwrap.dedent('''
    import os
    import sys

    from plait import FlowSpec, Parameter, catch, current, retry, step


    class ClientFlow(FlowSpec):
        """Foreach, a task that fails once, a step whose failure is caught, an end that may fail."""

        alpha = Parameter("alpha", default=2)

        @step
        def start(self):
            print("starting with", self.alpha)
            self.items = [10, 20, 30]
            self.big = list(range(3000))  # large enough to be a blob, not an inline value
            self.next(self.work, foreach="items")

        @retry(times=1, minutes_between_retries=0)
        @step
        def work(self):
            if self.input == 20 and current.retry_count == 0:
                print("attempt 0 of 20", flush=True)
                raise RuntimeError("first attempt of 20 fails")
            print("work", self.input)
            self.sq = self.input * self.alpha
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.sq for i in inputs)
            self.next(self.risky)

        @catch(var="caught")
        @step
        def risky(self):
            raise ValueError("risky always fails")
            self.next(self.end)  # noqa - the graph needs it

        @step
        def end(self):
            if os.environ.get("CLIENT_FAIL_END"):
                raise KeyError("end fails on purpose")
            self.result = self.total + 1
            print("result", self.result)


    if __name__ == "__main__":
        ClientFlow()
''')

BROKEN_FLOW = textwrap.dedent('''
    from plait import FlowSpec, step


    class BrokenFlow(FlowSpec):
        @step
        def start(self):
            self.before = 1
            raise ZeroDivisionError("start fails")
            self.next(self.end)  # noqa

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        BrokenFlow()
''')


@dataclass
class World:
    plait: Plait
    good: str  # run --alpha 3 --tag exp1: successful
    failed: str  # end fails
    resumed: str  # resume of `failed`: successful
    broken: str  # BrokenFlow: start fails


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    p = Plait(tmp_path_factory.mktemp("client-world"))
    client_flow = p.tmp / "client_flow.py"
    client_flow.write_text(CLIENT_FLOW)
    broken_flow = p.tmp / "broken_flow.py"
    broken_flow.write_text(BROKEN_FLOW)
    good = p.run(str(client_flow), "--alpha", "3", "--tag", "exp1").ok().run_id
    failed = p.run(str(client_flow), env={"CLIENT_FAIL_END": "1"}).failed().run_id
    resumed = p.resume(str(client_flow)).ok().run_id
    broken = p.run(str(broken_flow)).failed().run_id
    yield World(p, good, failed, resumed, broken)
    p.close()


@pytest.fixture(autouse=True)
def client_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test process reads the world's datastore, as user `tester`, default namespace."""
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(world.plait.root))
    monkeypatch.setenv("PLAIT_USER", "tester")
    monkeypatch.delenv("PLAIT_METADATA_ROOT", raising=False)
    default_namespace()
    yield
    default_namespace()


def ids(objects: Any) -> list[str]:
    return [o.id for o in objects]


# -- flows and runs -----------------------------------------------------------------------------
def test_flow_lists_runs_newest_first_and_by_tag(world: World) -> None:
    flow = Flow("ClientFlow")
    assert repr(flow) == "Flow('ClientFlow')" and flow.pathspec == "ClientFlow" and flow.parent is None
    assert ids(flow) == [world.resumed, world.failed, world.good]
    assert ids(flow.runs()) == ids(flow)
    assert ids(flow.runs("exp1")) == [world.good]
    assert ids(flow.runs("exp1", "user:tester")) == [world.good]
    assert ids(flow.runs("no-such-tag")) == []
    assert flow.latest_run.id == world.resumed
    assert flow.latest_successful_run.id == world.resumed
    assert world.good in flow and "123" not in flow
    assert flow[world.good].id == world.good
    with pytest.raises(KeyError):
        flow["123"]  # noqa: B018
    assert isinstance(flow.created_at, datetime)
    assert [f.id for f in Metaflow()] == ["BrokenFlow", "ClientFlow"]
    assert Metaflow()["ClientFlow"] == flow and "ClientFlow" in Metaflow()


def test_successful_run(world: World) -> None:
    run = Run(f"ClientFlow/{world.good}")
    assert run == Flow("ClientFlow")[world.good] and run.parent == Flow("ClientFlow")
    assert run.successful and run.finished
    assert isinstance(run.created_at, datetime) and run.finished_at >= run.created_at
    assert run.end_task == run["end"].task and run.end_task.pathspec == f"ClientFlow/{world.good}/end/{run.end_task.id}"
    assert run.data.result == 3 * (10 + 20 + 30) + 1
    assert run.data.alpha == 3 and "total" in run.data and "nope" not in run.data
    with pytest.raises(AttributeError):
        run.data.nope  # noqa: B018
    assert ids(run) == ["end", "risky", "join", "work", "start"]  # newest first, as in Metaflow
    assert ids(run.steps()) == ids(run)
    assert "work" in run and "nope" not in run
    assert "_parameters" in run and "_parameters" not in ids(run)
    assert run["_parameters"].task.data.alpha == 3
    assert run.code is not None and run.origin_pathspec is None
    assert run.user_tags == {"exp1"}
    assert {"user:tester", "runtime:dev"} <= run.system_tags
    assert any(t.startswith("python_version:") for t in run.system_tags)
    assert run.tags == run.user_tags | run.system_tags
    with pytest.raises(KeyError):
        run["nope"]  # noqa: B018


def test_failed_run(world: World) -> None:
    run = Run(f"ClientFlow/{world.failed}")
    assert not run.successful and not run.finished
    end = run.end_task
    assert end is not None and not end.successful and not end.finished
    assert end.finished_at is not None and run.finished_at == end.finished_at
    assert end.exception.type == "KeyError" and "end fails on purpose" in end.exception.message
    assert "Traceback" in str(end.exception) and "end fails on purpose" in end.stderr
    assert "total" in run.data  # the failed attempt's artifacts are kept
    broken = Run(f"BrokenFlow/{world.broken}")
    assert broken.end_task is None and broken.data is None
    assert not broken.successful and not broken.finished and broken.finished_at is None
    start = broken["start"].task
    assert not start.successful and start.exception.type == "ZeroDivisionError"
    assert start.data.before == 1
    assert Flow("BrokenFlow").latest_successful_run is None
    assert Flow("BrokenFlow").latest_run.id == world.broken


def test_resumed_run_points_at_its_origin(world: World) -> None:
    run = Run(f"ClientFlow/{world.resumed}")
    assert run.successful and run.origin_pathspec == f"ClientFlow/{world.failed}"
    assert run.data.result == 2 * 60 + 1
    start = run["start"].task
    origin_start = Run(f"ClientFlow/{world.failed}")["start"].task
    assert start.origin_pathspec == origin_start.pathspec
    assert start.metadata_dict["origin-task-id"] == origin_start.id
    assert start["big"].sha == origin_start["big"].sha  # cloned by reference
    assert start.stdout == origin_start.stdout == "starting with 2\n"
    assert sorted(t.data.sq for t in run["work"]) == [20, 40, 60]
    assert run["end"].task.origin_pathspec is None  # re-run, not cloned
    assert run["work"].origin_pathspec == f"ClientFlow/{world.failed}/work"


# -- steps and tasks ------------------------------------------------------------------------------
def test_foreach_step_tasks_and_indices(world: World) -> None:
    run = Run(f"ClientFlow/{world.good}")
    work = run["work"]
    tasks = list(work)
    assert len(tasks) == 3 and ids(work.tasks()) == ids(tasks)
    assert [int(t) for t in ids(tasks)] == sorted((int(t) for t in ids(tasks)), reverse=True)  # newest first
    assert work.task == tasks[0]
    assert {t.index: t.data.sq for t in tasks} == {0: 30, 1: 60, 2: 90}
    assert run["start"].task.index is None and run["join"].task.index is None
    assert ids(work.parent_steps) == ["start"] and ids(work.child_steps) == ["join"]
    assert ids(run["start"].parent_steps) == [] and ids(run["end"].child_steps) == []
    assert ids(run["join"].parent_steps) == ["work"]
    assert isinstance(work.created_at, datetime) and work.finished_at >= work.created_at
    assert Step(f"ClientFlow/{world.good}/work") == work
    task = tasks[0]
    assert work[task.id] == task and task.id in work and "999" not in work
    with pytest.raises(KeyError):
        work["999"]  # noqa: B018


def test_nested_foreach_indices(plait: Plait, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(plait.root))
    run = Run(f"NestedForeachFlow/{plait.run('nested_foreach_flow').ok().run_id}")
    inner = sorted(run["inner"], key=lambda t: t.data.pair)
    assert [(t.data.pair, t.index) for t in inner] == [
        ((1, "p"), 0), ((1, "q"), 1), ((1, "r"), 2), ((2, "p"), 0), ((2, "q"), 1), ((2, "r"), 2)]
    assert sorted(t.index for t in run["outer"]) == [0, 1]
    # after the inner join, the task sits in the outer foreach again
    assert sorted((t.index, t.data.outer_index) for t in run["inner_join"]) == [(0, 0), (1, 1)]
    assert run["outer_join"].task.index is None


def test_task_parents_children_and_metadata(world: World) -> None:
    run = Run(f"ClientFlow/{world.good}")
    start, join = run["start"].task, run["join"].task
    work = sorted(run["work"], key=lambda t: t.index)
    assert list(start.parent_tasks) == []
    assert sorted(ids(start.child_tasks)) == sorted(ids(work))
    assert list(work[1].parent_tasks) == [start] and list(work[1].child_tasks) == [join]
    assert sorted(ids(join.parent_tasks)) == sorted(ids(work))
    assert list(run["end"].task.child_tasks) == []
    md = work[1].metadata_dict
    assert md["attempt"] == "1" and md["attempt_ok"] == "True" and md["user"] == "tester"
    assert md["runtime"] == "dev" and md["ds-type"] == "local" and md["foreach-key"] == "1"
    assert md["ds-root"] == str(world.plait.root)
    assert [m.name for m in work[1].metadata].count("attempt") == 2
    assert work[1].runtime_name == "dev" and work[1].code is not None
    assert work[1].tags == run.tags and work[1].parent == run["work"]
    assert isinstance(work[1].created_at, datetime)


def test_retried_task_and_its_attempts(world: World) -> None:
    task = next(t for t in Run(f"ClientFlow/{world.good}")["work"] if t.index == 1)
    assert task.current_attempt == 1 and task.successful and task.finished and task.exception is None
    assert task.stdout == "work 20\n" and task.data.sq == 60
    lines = list(task.loglines("stdout"))
    assert [line for _, line in lines] == ["work 20"] and isinstance(lines[0][0], datetime)
    first = Task(task.pathspec, attempt=0)
    assert repr(first) == f"Task('{task.pathspec}', attempt=0)" and first.current_attempt == 0
    assert not first.successful and not first.finished and first.finished_at is not None
    assert first.exception.type == "RuntimeError" and first.exception.message == "first attempt of 20 fails"
    assert first.stdout == "attempt 0 of 20\n" and "first attempt of 20 fails" in first.stderr
    assert "sq" not in first and first.metadata_dict["attempt"] == "0"
    assert Task(task.pathspec, attempt=1).data.sq == 60
    with pytest.raises(PlaitNotFound, match="attempts are 0, 1"):
        Task(task.pathspec, attempt=2)


def test_caught_task(world: World) -> None:
    task = Run(f"ClientFlow/{world.good}")["risky"].task
    # As in Metaflow: the step did not succeed, but the task finished and the flow went on
    assert not task.successful and task.finished and task.exception is None
    assert task.metadata_dict.get("caught", "").startswith("ValueError")
    assert task.data.caught.type == "builtins.ValueError" and "risky always fails" in str(task.data.caught)
    assert "@catch caught an exception" in task.stderr and "risky always fails" in task.stderr


def test_artifacts(world: World) -> None:
    start = Run(f"ClientFlow/{world.good}")["start"].task
    names = ids(start)
    assert sorted(names) == ["alpha", "big", "items"]  # private artifacts are hidden ...
    assert "_foreach_stack" not in names
    work = next(iter(Run(f"ClientFlow/{world.good}")["work"]))
    assert "_foreach_stack" in work and work["_foreach_stack"].data  # ... but reachable by name
    assert start.artifacts.items.data == [10, 20, 30] and start.artifacts.big.id == "big"
    assert str(start.data) == "<MetaflowData: alpha, big, items>" or set(dir(start.data)) >= {"alpha", "big"}
    art = start["big"]
    assert art == DataArtifact(f"{start.pathspec}/big")
    assert art.data == list(range(3000)) and art.size > 1024 and len(art.sha) == 64
    assert art.type == "list" and art.finished_at == art.created_at <= start.finished_at  # roughly, as in Metaflow
    assert art.parent == start and art.pathspec == f"{start.pathspec}/big"
    with pytest.raises(KeyError):
        start["nope"]  # noqa: B018
    with pytest.raises(PlaitNotFound):
        DataArtifact(f"{start.pathspec}/nope")


def test_lookup_errors(world: World) -> None:
    with pytest.raises(PlaitNotFound, match=r"Flow\('Nope'\) does not exist"):
        Flow("Nope")
    with pytest.raises(PlaitNotFound, match=r"Run\('ClientFlow/123'\) does not exist"):
        Run("ClientFlow/123")
    with pytest.raises(PlaitNotFound):
        Step(f"ClientFlow/{world.good}/nope")
    with pytest.raises(PlaitNotFound):
        Task(f"ClientFlow/{world.good}/start/999")
    for bad in ("ClientFlow", "ClientFlow/1/start", "", "a//b"):
        with pytest.raises(InvalidPathspec):
            Run(bad)
    with pytest.raises(PlaitException, match="Task or a DataArtifact"):
        Run(f"ClientFlow/{world.good}", attempt=0)  # type: ignore[call-arg]


def test_objects_pickle_and_compare(world: World) -> None:
    run = Run(f"ClientFlow/{world.good}")
    task = run["start"].task
    for obj in (run, run["work"], task, task["big"], Task(task.pathspec, attempt=0), Flow("ClientFlow")):
        assert pickle.loads(pickle.dumps(obj)) == obj
    assert len({run, Run(f"ClientFlow/{world.good}")}) == 1
    assert get_metadata() == f"local@{world.plait.root}"


def test_namespace_none_shows_other_users(world: World) -> None:
    # The world's runs are all by `tester`; pretend to be someone else.
    namespace("user:someone-else")
    with pytest.raises(PlaitException, match="namespace"):
        Flow("ClientFlow")
    assert list(Metaflow()) == []
    namespace(None)
    assert Flow("ClientFlow").latest_run.id == world.resumed


def test_client_reads_a_store_given_by_metadata(world: World, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from plait.client import default_metadata, metadata

    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(tmp_path / "empty"))
    with pytest.raises(PlaitNotFound):
        Flow("ClientFlow")
    assert metadata(f"local@{world.plait.root}") == f"local@{world.plait.root}"
    try:
        assert Flow("ClientFlow").latest_run.id == world.resumed
        assert Flow("ClientFlow").latest_run.data.result == 121
    finally:
        default_metadata()
    with pytest.raises(PlaitNotFound):
        Flow("ClientFlow")


def test_run_code_is_the_flow_script_it_ran(world: World, tmp_path: Path) -> None:
    run = Run(f"ClientFlow/{world.good}")
    code = run.code
    assert code is not None and code.script_name.endswith(".py")
    assert "class ClientFlow(FlowSpec)" in code.flowspec
    assert code.tarball.getnames() == [code.script_name]
    extracted = code.extract(str(tmp_path))
    assert Path(extracted).read_text() == code.flowspec
    assert run["start"].task.code.flowspec == code.flowspec
