"""The contract every :class:`~plait.metadata.provider.MetadataProvider` must pass.

Subclass it in a test module and supply ``provider_factory``: a fixture returning a callable
that builds a new provider instance on the same (fresh, per-test) root::

    class TestMyProvider(MetadataProviderContract):
        @pytest.fixture
        def provider_factory(self, tmp_path):
            return lambda: MyProvider(str(tmp_path))

The concurrency tests use real processes forked from the test process, because that is how
the runtime launches tasks: a provider must survive being used before *and* after a fork.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from plait.exceptions import PlaitException
from plait.metadata.provider import MetadataProvider

Factory = Callable[[], MetadataProvider]

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs the 'fork' start method")


def in_forked_processes(target: Callable[..., Any], args_list: list[tuple[Any, ...]],
                        timeout: float = 120.0) -> list[Any]:
    """Run ``target(*args)`` in one forked process per args, all released together by a barrier;
    return their results in order, re-raising a child's failure with its traceback."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(args_list))

    def child(index: int, args: tuple[Any, ...]) -> None:
        try:
            barrier.wait(timeout)
            queue.put((index, True, target(*args)))
        except BaseException:  # noqa: BLE001 - any failure must reach the parent
            queue.put((index, False, traceback.format_exc()))

    procs = [ctx.Process(target=child, args=(i, a)) for i, a in enumerate(args_list)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    try:
        for _ in procs:
            index, ok, value = queue.get(timeout=timeout)
            if not ok:
                raise AssertionError(f"child process {index} failed:\n{value}")
            results[index] = value
    finally:
        for p in procs:
            p.join(timeout)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [results[i] for i in range(len(procs))]


class MetadataProviderContract:
    """Behaviour of every interface method; see the module docstring for how to use it."""

    FLOW = "ContractFlow"

    @pytest.fixture
    def provider_factory(self) -> Factory:
        raise NotImplementedError("subclasses define a `provider_factory` fixture")

    @pytest.fixture
    def provider(self, provider_factory: Factory) -> MetadataProvider:
        return provider_factory()

    def _run_with_tasks(self, p: MetadataProvider, steps: list[str]) -> str:
        run_id = p.new_run(self.FLOW, "alice")
        for i, step in enumerate(steps):
            p.new_task(self.FLOW, run_id, step, str(i + 1))
        return run_id

    # -- runs -----------------------------------------------------------------------------
    def test_new_run_and_get_run(self, provider: MetadataProvider) -> None:
        before = time.time()
        run_id = provider.new_run(self.FLOW, "alice", tags=["exp", "a"], system_tags=["user:alice"],
                                  origin_run_id="123")
        assert isinstance(run_id, str) and run_id
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None
        assert (run.flow, run.run_id, run.user, run.origin_run_id) == (self.FLOW, run_id, "alice", "123")
        assert sorted(run.tags) == ["a", "exp"] and run.system_tags == ["user:alice"]
        assert isinstance(run.created_at, float) and before - 1 <= run.created_at <= time.time() + 1
        assert run.finished_at is None and run.success is None and run.parameters == {}

    def test_unknown_run_is_none(self, provider: MetadataProvider) -> None:
        assert provider.get_run(self.FLOW, "999") is None
        run_id = provider.new_run(self.FLOW, "alice")
        assert provider.get_run("OtherFlow", run_id) is None
        assert provider.list_steps(self.FLOW, "999") == []
        assert provider.list_tasks(self.FLOW, "999") == []
        assert provider.get_task(self.FLOW, "999", "start", "1") is None
        assert provider.list_runs("NoSuchFlow") == []

    def test_explicit_run_id(self, provider: MetadataProvider) -> None:
        assert provider.new_run(self.FLOW, "alice", run_id="argo-1") == "argo-1"
        with pytest.raises(PlaitException, match="argo-1"):
            provider.new_run(self.FLOW, "bob", run_id="argo-1")
        assert provider.get_run(self.FLOW, "argo-1").user == "alice"  # type: ignore[union-attr]
        assert provider.new_run("OtherFlow", "bob", run_id="argo-1") == "argo-1"  # ids are per flow

    def test_run_ids_are_distinct(self, provider: MetadataProvider) -> None:
        ids = [provider.new_run(self.FLOW, "alice") for _ in range(200)]
        assert len(set(ids)) == len(ids)

    def test_parameters_and_finish(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice")
        provider.set_run_parameters(self.FLOW, run_id, {"alpha": 0.5, "name": "x", "items": [1, 2]})
        provider.finish_run(self.FLOW, run_id, success=True)
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None and run.parameters == {"alpha": 0.5, "name": "x", "items": [1, 2]}
        assert run.success is True and run.finished_at is not None and run.finished_at >= run.created_at
        failed = provider.new_run(self.FLOW, "alice")
        provider.finish_run(self.FLOW, failed, success=False)
        assert provider.get_run(self.FLOW, failed).success is False  # type: ignore[union-attr]

    def test_list_runs_newest_first_and_limit(self, provider: MetadataProvider) -> None:
        ids = [provider.new_run(self.FLOW, "alice") for _ in range(5)]
        provider.new_run("OtherFlow", "alice")
        assert [r.run_id for r in provider.list_runs(self.FLOW)] == ids[::-1]
        assert [r.run_id for r in provider.list_runs(self.FLOW, limit=2)] == ids[::-1][:2]
        assert [r.run_id for r in provider.list_runs(self.FLOW, limit=1)] == [ids[-1]]

    def test_list_runs_by_tags(self, provider: MetadataProvider) -> None:
        a = provider.new_run(self.FLOW, "alice", tags=["x"], system_tags=["user:alice"])
        b = provider.new_run(self.FLOW, "bob", tags=["x", "y"], system_tags=["user:bob"])
        c = provider.new_run(self.FLOW, "bob", tags=[], system_tags=["user:bob"])

        def by(*tags: str) -> list[str]:
            return [r.run_id for r in provider.list_runs(self.FLOW, tags=list(tags))]

        assert by("x") == [b, a]
        assert by("user:bob") == [c, b]  # system tags match too
        assert by("x", "user:bob") == [b]  # every tag must match
        assert by("x", "nope") == []
        provider.add_tags(self.FLOW, c, ["x"])
        assert by("x", "user:bob") == [c, b]
        runs = provider.list_runs(self.FLOW, tags=["y"])
        assert sorted(runs[0].tags) == ["x", "y"] and runs[0].system_tags == ["user:bob"]

    def test_list_flows(self, provider: MetadataProvider) -> None:
        assert provider.list_flows() == []
        provider.new_run("B", "alice")
        provider.new_run("A", "alice")
        provider.new_run("B", "alice")
        assert sorted(provider.list_flows()) == ["A", "B"]

    def test_iter_runs_pages_filters_and_is_lazy(self, provider: MetadataProvider) -> None:
        ids = [provider.new_run(self.FLOW, "alice", tags=["even"] if i % 2 == 0 else [],
                                system_tags=["user:alice"]) for i in range(9)]
        provider.new_run("OtherFlow", "alice", tags=["even"])
        for i, run_id in enumerate(ids):
            if i % 3 == 0:
                provider.finish_run(self.FLOW, run_id, success=i != 6)
        newest = ids[::-1]
        assert [r.run_id for r in provider.iter_runs(self.FLOW, page_size=2)] == newest
        assert [r.run_id for r in provider.iter_runs(self.FLOW, ["even"], page_size=2)] == newest[::2]
        assert [r.run_id for r in provider.iter_runs(self.FLOW, ["even", "user:alice"])] == newest[::2]
        assert [r.run_id for r in provider.iter_runs(self.FLOW, success=True, page_size=1)] == [ids[3], ids[0]]
        assert [r.run_id for r in provider.iter_runs(self.FLOW, success=False)] == [ids[6]]
        assert list(provider.iter_runs("NoSuchFlow")) == []
        it = provider.iter_runs(self.FLOW, page_size=1)
        assert next(it).run_id == ids[-1]
        later = provider.new_run(self.FLOW, "alice")  # writing between pages is fine
        assert later not in [r.run_id for r in it]

    def test_replace_tags(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice", tags=["a", "b"], system_tags=["user:alice"])
        assert sorted(provider.replace_tags(self.FLOW, run_id, ["a"], ["c", "user:alice"])) == ["b", "c"]
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None and sorted(run.tags) == ["b", "c"] and run.system_tags == ["user:alice"]
        assert sorted(provider.replace_tags(self.FLOW, run_id, ["c"], ["c"])) == ["b", "c"]  # remove first
        assert provider.replace_tags(self.FLOW, run_id, ["b", "c"], []) == []
        with pytest.raises(PlaitException):
            provider.replace_tags(self.FLOW, run_id, [], "tag")  # type: ignore[arg-type]

    # -- tags -----------------------------------------------------------------------------
    def test_add_and_remove_tags(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice", tags=["keep"], system_tags=["runtime:local"])
        provider.add_tags(self.FLOW, run_id, ["new", "new", "keep"])
        provider.add_tags(self.FLOW, run_id, ["new"])  # idempotent
        assert sorted(provider.get_run(self.FLOW, run_id).tags) == ["keep", "new"]  # type: ignore[union-attr]
        provider.remove_tags(self.FLOW, run_id, ["new", "never-there"])
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None and run.tags == ["keep"] and run.system_tags == ["runtime:local"]

    def test_system_tags_cannot_be_removed(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice", system_tags=["user:alice", "runtime:local"])
        try:
            provider.remove_tags(self.FLOW, run_id, ["user:alice"])
        except PlaitException:
            pass  # refusing loudly is as good as ignoring; removing is not
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None and sorted(run.system_tags) == ["runtime:local", "user:alice"]
        assert [r.run_id for r in provider.list_runs(self.FLOW, tags=["user:alice"])] == [run_id]

    def test_tags_visible_to_another_instance(self, provider: MetadataProvider,
                                              provider_factory: Factory) -> None:
        run_id = provider.new_run(self.FLOW, "alice", tags=["a"])
        other = provider_factory()
        other.add_tags(self.FLOW, run_id, ["b"])
        assert sorted(provider.get_run(self.FLOW, run_id).tags) == ["a", "b"]  # type: ignore[union-attr]
        provider.remove_tags(self.FLOW, run_id, ["a"])
        assert other.get_run(self.FLOW, run_id).tags == ["b"]  # type: ignore[union-attr]

    @needs_fork
    def test_tags_visible_across_processes(self, provider: MetadataProvider,
                                           provider_factory: Factory) -> None:
        run_id = provider.new_run(self.FLOW, "alice", tags=["a"])

        def child() -> list[str]:
            other = provider_factory()  # a second instance, in a second process
            seen = other.get_run(self.FLOW, run_id).tags  # type: ignore[union-attr]
            other.add_tags(self.FLOW, run_id, ["from-child"])
            other.remove_tags(self.FLOW, run_id, ["a"])
            return seen

        assert in_forked_processes(child, [()]) == [["a"]]
        assert provider.get_run(self.FLOW, run_id).tags == ["from-child"]  # type: ignore[union-attr]
        assert [r.run_id for r in provider.list_runs(self.FLOW, tags=["from-child"])] == [run_id]

    # -- tasks ----------------------------------------------------------------------------
    def test_tasks_and_steps(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice")
        provider.new_task(self.FLOW, run_id, "start", "1")
        provider.new_task(self.FLOW, run_id, "fan", "2", foreach_key="0", input_paths=[f"{run_id}/start/1"])
        provider.new_task(self.FLOW, run_id, "other", "3")
        provider.new_task(self.FLOW, run_id, "fan", "4", foreach_key="1", input_paths=[f"{run_id}/start/1"])
        provider.new_task(self.FLOW, run_id, "join", "5", input_paths=[f"{run_id}/fan/2", f"{run_id}/fan/4"],
                          cloned_from=f"{self.FLOW}/1/join/9")
        provider.new_task(self.FLOW, run_id, "fan", "2", foreach_key="0")  # idempotent
        assert provider.list_steps(self.FLOW, run_id) == ["start", "fan", "other", "join"]
        tasks = provider.list_tasks(self.FLOW, run_id)
        assert [(t.step, t.task_id) for t in tasks] == [
            ("start", "1"), ("fan", "2"), ("other", "3"), ("fan", "4"), ("join", "5")]
        assert [t.task_id for t in provider.list_tasks(self.FLOW, run_id, step="fan")] == ["2", "4"]
        join = provider.get_task(self.FLOW, run_id, "join", "5")
        assert join is not None and join.pathspec == f"{self.FLOW}/{run_id}/join/5"
        assert join.input_paths == [f"{run_id}/fan/2", f"{run_id}/fan/4"]
        assert join.cloned_from == f"{self.FLOW}/1/join/9" and join.foreach_key == ""
        assert join.attempts == [] and join.latest_attempt is None and not join.finished
        assert isinstance(join.created_at, float)
        fan = provider.get_task(self.FLOW, run_id, "fan", "4")
        assert fan is not None and fan.foreach_key == "1" and fan.cloned_from is None
        assert provider.get_task(self.FLOW, run_id, "fan", "99") is None
        assert provider.get_task(self.FLOW, run_id, "nope", "1") is None

    def test_attempts(self, provider: MetadataProvider) -> None:
        run_id = self._run_with_tasks(provider, ["start"])
        provider.start_attempt(self.FLOW, run_id, "start", "1", 0, metadata={"pid": 1, "host": "h"})
        task = provider.get_task(self.FLOW, run_id, "start", "1")
        assert task is not None and task.latest_attempt is not None
        first = task.latest_attempt
        assert first.attempt == 0 and first.finished_at is None and first.success is None
        assert first.metadata == {"pid": 1, "host": "h"} and not task.finished and not task.successful
        provider.finish_attempt(self.FLOW, run_id, "start", "1", 0, success=False,
                                exception="Traceback ...\nValueError: boom", metadata={"pid": 2, "rc": 1})
        provider.start_attempt(self.FLOW, run_id, "start", "1", 1)
        provider.finish_attempt(self.FLOW, run_id, "start", "1", 1, success=True)
        task = provider.get_task(self.FLOW, run_id, "start", "1")
        assert task is not None and [a.attempt for a in task.attempts] == [0, 1]
        failed, ok = task.attempts
        assert failed.success is False and failed.exception == "Traceback ...\nValueError: boom"
        assert failed.metadata == {"pid": 2, "host": "h", "rc": 1}  # finish merges over start
        assert isinstance(failed.started_at, float) and failed.finished_at is not None
        assert failed.started_at <= failed.finished_at
        assert task.latest_attempt == ok and ok.success is True and ok.exception is None
        assert task.finished and task.successful
        assert provider.list_tasks(self.FLOW, run_id)[0].attempts == task.attempts

    def test_latest_attempt_is_highest_number(self, provider: MetadataProvider) -> None:
        run_id = self._run_with_tasks(provider, ["start", "end"])
        for attempt in (0, 1, 2):
            provider.start_attempt(self.FLOW, run_id, "start", "1", attempt)
        provider.finish_attempt(self.FLOW, run_id, "start", "1", 1, success=True)
        task = provider.get_task(self.FLOW, run_id, "start", "1")
        assert task is not None and task.latest_attempt is not None
        assert task.latest_attempt.attempt == 2 and not task.finished
        other = provider.get_task(self.FLOW, run_id, "end", "2")
        assert other is not None and other.attempts == []  # attempts never leak between tasks

    # -- concurrency ------------------------------------------------------------------------
    @needs_fork
    def test_concurrent_new_run(self, provider: MetadataProvider) -> None:
        first = provider.new_run(self.FLOW, "parent")  # used before the fork, and after it

        def child() -> list[str]:
            return [provider.new_run(self.FLOW, "child", tags=["c"]) for _ in range(25)]

        ids = [i for chunk in in_forked_processes(child, [()] * 8) for i in chunk]
        assert len(ids) == 200 and len(set(ids + [first])) == 201
        assert {r.run_id for r in provider.list_runs(self.FLOW, tags=["c"])} == set(ids)
        last = provider.new_run(self.FLOW, "parent")
        assert provider.list_runs(self.FLOW, limit=1)[0].run_id == last

    @needs_fork
    def test_concurrent_attempts_lose_nothing(self, provider: MetadataProvider) -> None:
        run_id = provider.new_run(self.FLOW, "alice")
        names = [(f"s{w}", str(w * 100 + i)) for w in range(8) for i in range(10)]
        for step, task_id in names:
            provider.new_task(self.FLOW, run_id, step, task_id)
            provider.start_attempt(self.FLOW, run_id, step, task_id, 0, metadata={"from": "parent"})

        def child(worker: int) -> None:
            for step, task_id in names[worker * 10:(worker + 1) * 10]:
                provider.finish_attempt(self.FLOW, run_id, step, task_id, 0, success=False,
                                        exception=f"boom {task_id}", metadata={"worker": worker})
                provider.start_attempt(self.FLOW, run_id, step, task_id, 1, metadata={"worker": worker})
                provider.finish_attempt(self.FLOW, run_id, step, task_id, 1, success=True)

        in_forked_processes(child, [(w,) for w in range(8)])
        tasks = provider.list_tasks(self.FLOW, run_id)
        assert len(tasks) == 80
        for task in tasks:
            worker = int(task.task_id) // 100
            assert [a.attempt for a in task.attempts] == [0, 1] and task.successful
            assert task.attempts[0].exception == f"boom {task.task_id}"
            assert task.attempts[0].metadata == {"from": "parent", "worker": worker}
            assert task.attempts[1].metadata == {"worker": worker}
        assert len(provider.list_steps(self.FLOW, run_id)) == 8

    @needs_fork
    def test_concurrent_tagging_loses_nothing(self, provider: MetadataProvider,
                                              provider_factory: Factory) -> None:
        run_id = provider.new_run(self.FLOW, "alice", tags=["base"])

        def child(worker: int) -> None:
            other = provider_factory()
            for i in range(10):
                other.add_tags(self.FLOW, run_id, [f"w{worker}-{i}"])

        in_forked_processes(child, [(w,) for w in range(8)])
        run = provider.get_run(self.FLOW, run_id)
        assert run is not None and len(run.tags) == 81 and "base" in run.tags
