"""End to end: every form of self.next, joins, merge_artifacts and artifact inheritance.

Each test runs a flow file from ``flows/`` as a real ``python flow.py run`` process and
checks the artifacts through the datastore and the tasks through the metadata.
"""

from __future__ import annotations

from plait_harness import Plait, no_traceback


def test_linear_flow_inherits_untouched_artifacts_by_reference(plait: Plait) -> None:
    run_id = plait.run("linear_flow").ok().run_id
    flow = "LinearFlow"
    assert plait.run_record(flow, run_id).success is True
    assert [t.step for t in plait.tasks(flow, run_id)] == ["start", "middle", "end"]

    start = plait.index(flow, run_id, "start")
    middle = plait.index(flow, run_id, "middle")
    end = plait.index(flow, run_id, "end")
    # `big` was never touched after start: every later task points at the very same blob.
    assert middle.artifacts["big"].sha == start.artifacts["big"].sha
    assert end.artifacts["big"].sha == start.artifacts["big"].sha
    # `x` was reassigned in middle, so middle has a new value.
    assert middle.artifacts["x"].sha != start.artifacts["x"].sha
    values = plait.load(end)
    assert values["x"] == 2
    assert values["total"] == 2 + 20000
    assert values["big"] == list(range(20000))
    assert plait.counter("start") == 1
    assert list(plait.tmpdir.iterdir()) == []  # the run cleaned up its temporary files


def test_underscore_attributes_persist_and_flow_downstream(plait: Plait) -> None:
    # Metaflow persists `self._name` like any artifact (only dunder names are skipped).
    run_id = plait.run("linear_flow").ok().run_id
    start = plait.artifacts("LinearFlow", run_id, "start")
    middle = plait.artifacts("LinearFlow", run_id, "middle")
    end = plait.artifacts("LinearFlow", run_id, "end")
    assert start["_private"] == "underscore"
    assert middle["saw_private"] == "underscore"
    assert end["_private"] == "underscore"


def test_static_branch_and_join_by_name_index_and_iteration(plait: Plait) -> None:
    run_id = plait.run("branch_flow").ok().run_id
    flow = "BranchFlow"
    assert {t.step for t in plait.tasks(flow, run_id)} == {"start", "a", "b", "join", "end"}
    join = plait.artifacts(flow, run_id, "join")
    assert join["by_name"] == ("a", "b")
    assert join["by_item"] == ("a", "b")
    assert join["by_index"] == ["a", "b"]  # inputs in the order of self.next(self.a, self.b)
    assert join["iterated"] == ["a", "b"]
    assert join["num_inputs"] == 2
    # The join did not merge: it inherits nothing, and the error says how to get the value.
    assert "shared" not in join
    assert "merge_artifacts" in join["missing_message"]
    assert "shared" in join["missing_message"]
    join_task = plait.task(flow, run_id, "join")
    a_task, b_task = plait.task(flow, run_id, "a"), plait.task(flow, run_id, "b")
    assert join_task.input_paths == [f"{run_id}/a/{a_task.task_id}", f"{run_id}/b/{b_task.task_id}"]


def test_foreach_join_sees_inputs_in_index_order(plait: Plait) -> None:
    # Later items sleep less, so they finish first; the join must still list them by index.
    run_id = plait.run("foreach_flow", "--max-workers", "3").ok().run_id
    flow = "ForeachFlow"
    bodies = plait.tasks(flow, run_id, "body")
    assert sorted(t.foreach_key for t in bodies) == ["0", "1", "2"]
    by_key = {t.foreach_key: plait.artifacts(flow, run_id, "body", t.task_id) for t in bodies}
    for i, item in enumerate(["a", "b", "c"]):
        assert by_key[str(i)]["item"] == item
        assert by_key[str(i)]["idx"] == i
        assert by_key[str(i)]["stack"] == [(i, 3, item)]
    join = plait.artifacts(flow, run_id, "join")
    assert join["order"] == ["a", "b", "c"]
    assert join["indices"] == [0, 1, 2]
    assert join["input_index"] == [0, 1, 2]
    assert join["join_input"] is None and join["join_index"] is None


def test_nested_foreach_stack(plait: Plait) -> None:
    run_id = plait.run("nested_foreach_flow").ok().run_id
    flow = "NestedForeachFlow"
    inner = plait.step_artifacts(flow, run_id, "inner")
    assert len(inner) == 6
    stacks = sorted(a["stack"] for a in inner)
    expected = [[(i, 2, x), (j, 3, y)] for i, x in enumerate([1, 2]) for j, y in enumerate("pqr")]
    assert stacks == expected
    keys = sorted(t.foreach_key for t in plait.tasks(flow, run_id, "inner"))
    assert keys == ["0.0", "0.1", "0.2", "1.0", "1.1", "1.2"]
    inner_joins = {a["outer_index"]: a for a in plait.step_artifacts(flow, run_id, "inner_join")}
    assert set(inner_joins) == {0, 1}
    assert inner_joins[0]["pairs"] == [(1, "p"), (1, "q"), (1, "r")]
    assert inner_joins[1]["join_stack"] == [(1, 2)]  # the inner frame is closed by the join
    assert plait.artifacts(flow, run_id, "outer_join")["all"] == [
        [(1, "p"), (1, "q"), (1, "r")], [(2, "p"), (2, "q"), (2, "r")]]


def test_switch_takes_each_branch(plait: Plait) -> None:
    flow = "SwitchFlow"
    for choice, other in (("a", "b"), ("b", "a")):
        run_id = plait.run("switch_flow", "--choice", choice).ok().run_id
        assert plait.tasks(flow, run_id, other) == []
        assert plait.artifacts(flow, run_id, choice)["took"] == choice
        assert plait.artifacts(flow, run_id, "after")["seen"] == choice
        assert plait.index(flow, run_id, "start").control["next"] == [choice]
        assert plait.run_record(flow, run_id).success is True


def test_switch_value_matching_no_case_fails_clearly(plait: Plait) -> None:
    result = plait.run("switch_flow", "--choice", "zzz").failed()
    assert "'zzz'" in result.output and "matches none of the cases" in result.output
    no_traceback(result.output)
    assert plait.run_record("SwitchFlow", result.run_id).success is False


def test_switch_self_loop_runs_n_times_then_exits(plait: Plait) -> None:
    run_id = plait.run("loop_flow", "--n", "4").ok().run_id
    flow = "LoopFlow"
    loops = plait.tasks(flow, run_id, "loop")
    assert len(loops) == 4
    assert [t.foreach_key for t in loops] == ["", "#1", "#2", "#3"]
    # Each visit is a task fed by the previous one.
    for prev, nxt in zip(loops, loops[1:], strict=False):
        assert nxt.input_paths == [f"{run_id}/loop/{prev.task_id}"]
    end = plait.artifacts(flow, run_id, "end")
    assert end["i"] == 4
    assert end["visits"] == [1, 2, 3, 4]
    assert end["status"] == "done"


def test_merge_artifacts_include(plait: Plait) -> None:
    run_id = plait.run("merge_flow", "--mode", "include").ok().run_id
    join = plait.artifacts("MergeFlow", run_id, "join")
    assert join["has"] == {"shared": True, "diff": False, "only_a": True, "only_b": False, "_under": False}
    assert join["only_a"] == 1 and join["shared"] == "s"
    assert plait.artifacts("MergeFlow", run_id, "end")["end_has"] == join["has"]


def test_merge_artifacts_exclude_merges_underscore_names_too(plait: Plait) -> None:
    run_id = plait.run("merge_flow", "--mode", "exclude").ok().run_id
    join = plait.artifacts("MergeFlow", run_id, "join")
    assert join["has"] == {"shared": True, "diff": False, "only_a": True, "only_b": True, "_under": True}
    assert (join["only_a"], join["only_b"], join["_under"]) == (1, 2, "same everywhere")


def test_merge_artifacts_value_set_by_the_join_wins(plait: Plait) -> None:
    run_id = plait.run("merge_flow", "--mode", "joinset").ok().run_id
    end = plait.artifacts("MergeFlow", run_id, "end")
    assert end["diff"] == "set by the join"
    assert end["only_a"] == 1 and end["only_b"] == 2


def test_merge_artifacts_conflict_is_a_clear_error(plait: Plait) -> None:
    result = plait.run("merge_flow", "--mode", "conflict").failed()
    assert "Unable to merge artifacts" in result.output
    assert "diff" in result.output and "different values" in result.output
    assert "exclude=" in result.output  # says how to fix it
    no_traceback(result.output)
    join = plait.task("MergeFlow", result.run_id, "join")
    assert join.latest_attempt.success is False
    assert "diff" in join.latest_attempt.exception
    assert plait.tasks("MergeFlow", result.run_id, "end") == []
