"""lint: one flow per rule. The line an error must point at is marked with ``# <-``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from plait.exceptions import LintError
from plait.flowspec import FlowSpec, step
from plait.graph import FlowGraph
from plait.lint import lint, lint_all


def marked_line(flow: type) -> int:
    lines, start = inspect.getsourcelines(flow)
    return start + next(i for i, line in enumerate(lines) if "# <-" in line)


def check(flow: type, *words: str) -> LintError:
    """Lint must fail at the marked line, with a message containing every word."""
    with pytest.raises(LintError) as info:
        lint(FlowGraph(flow))
    err = info.value
    assert err.message and all(w in err.message for w in words), err.message
    assert err.lineno == marked_line(flow), str(err)
    assert err.source_file and Path(err.source_file).resolve() == Path(__file__).resolve()
    assert f":{err.lineno}: " in str(err)
    return err


# --- names, start and end -------------------------------------------------------------------


class NoStart(FlowSpec):  # <-
    @step
    def begin(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class NoEnd(FlowSpec):  # <-
    @step
    def start(self) -> None:
        self.next(self.finish)

    @step
    def finish(self) -> None:
        pass


class ReservedName(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.input)

    @step
    def input(self) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class UnderscoreName(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self._hidden)

    @step
    def _hidden(self) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class UpperName(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.Work)

    @step
    def Work(self) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_no_start() -> None:
    check(NoStart, "no start step", "def start(self)")


def test_no_end() -> None:
    check(NoEnd, "no end step", "def end(self)")


def test_reserved_name() -> None:
    check(ReservedName, "'input'", "reserved", "Rename")


@pytest.mark.parametrize("flow,name", [(UnderscoreName, "_hidden"), (UpperName, "Work")])
def test_invalid_name(flow: type, name: str) -> None:
    check(flow, repr(name), "not valid", "lowercase")


# --- signatures -----------------------------------------------------------------------------


class StartTakesInputs(FlowSpec):
    @step
    def start(self, inputs: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class EndTakesInputs(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def b(self) -> None:
        self.next(self.end)

    @step
    def end(self, inputs: Any) -> None:  # <-
        pass


class TooManyArgs(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.work)

    @step
    def work(self, a: Any, b: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class NoSelf(FlowSpec):
    @step
    def start() -> None:  # type: ignore[misc]  # <-
        pass

    @step
    def end(self) -> None:
        pass


class VarArgs(FlowSpec):
    @step
    def start(self, *args: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_start_takes_inputs() -> None:
    check(StartTakesInputs, "Step start", "inputs", "def start(self)")


def test_end_takes_inputs() -> None:
    check(EndTakesInputs, "Step end", "cannot be a join", "def join(self, inputs)")


def test_too_many_arguments() -> None:
    check(TooManyArgs, "Step work", "work(self, a, b)", "def work(self, inputs)")


def test_missing_self() -> None:
    check(NoSelf, "Step start", "start()", "def start(self)")


def test_varargs() -> None:
    check(VarArgs, "Step start", "*args", "def start(self)")


# --- self.next placement --------------------------------------------------------------------


class MissingNext(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.work)

    @step
    def work(self) -> None:  # <-
        self.x = 1

    @step
    def end(self) -> None:
        pass


class NextNotLast(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.end)  # <-
        self.x = 1

    @step
    def end(self) -> None:
        pass


class NextInIf(FlowSpec):
    @step
    def start(self) -> None:
        if self.x:
            self.next(self.end)  # <-
        else:
            self.next(self.other)

    @step
    def other(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class EndCallsNext(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        self.next(self.start)  # <-


def test_missing_next() -> None:
    check(MissingNext, "Step work", "does not end with self.next()", "last statement")


def test_next_not_last_statement() -> None:
    check(NextNotLast, "Step start", "last statement")


def test_next_inside_if_suggests_switch() -> None:
    check(NextInIf, "Step start", "last statement", "condition=")


def test_end_calls_next() -> None:
    check(EndCallsNext, "Step end", "Remove the self.next()")


# --- targets --------------------------------------------------------------------------------


class UnknownTarget(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.nowhere)  # <-

    @step
    def end(self) -> None:
        pass


class TargetNotStep(FlowSpec):
    def helper(self) -> None:
        pass

    @step
    def start(self) -> None:
        self.next(self.helper)  # <-

    @step
    def end(self) -> None:
        pass


class TargetIsString(FlowSpec):
    @step
    def start(self) -> None:
        self.next("end")  # <-

    @step
    def end(self) -> None:
        pass


class NextNoArgs(FlowSpec):
    @step
    def start(self) -> None:
        self.next()  # <-

    @step
    def end(self) -> None:
        pass


class NextUnknownKeyword(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.end, each="items")  # <-

    @step
    def end(self) -> None:
        pass


class DuplicateTargets(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.a)  # <-

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class NumParallel(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, num_parallel=4)  # <-

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_unknown_target() -> None:
    check(UnknownTarget, "Step start", "self.nowhere", "no step named nowhere")


def test_target_not_a_step() -> None:
    check(TargetNotStep, "Step start", "helper is not a step", "@step")


def test_target_is_a_string() -> None:
    check(TargetIsString, "Step start", "'end'", "self.end")


def test_next_without_arguments() -> None:
    check(NextNoArgs, "Step start", "names no step")


def test_next_unknown_keyword() -> None:
    check(NextUnknownKeyword, "Step start", "each=", "foreach=")


def test_duplicate_targets() -> None:
    check(DuplicateTargets, "Step start", "names a more than once", "foreach=")


def test_num_parallel_rejected() -> None:
    check(NumParallel, "Step start", "num_parallel", "foreach=")


# --- foreach and switch shapes --------------------------------------------------------------


class ForeachTwoTargets(FlowSpec):
    @step
    def start(self) -> None:
        self.items = [1]
        self.next(self.a, self.b, foreach="items")  # <-

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ForeachNotString(FlowSpec):
    @step
    def start(self) -> None:
        self.items = [1]
        self.next(self.a, foreach=self.items)  # <-

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ConditionNotString(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"a": self.a, "b": self.end}, condition=self.mode)  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchNoCondition(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"a": self.a, "b": self.end})  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchEmpty(FlowSpec):
    @step
    def start(self) -> None:
        self.next({}, condition="mode")  # <-

    @step
    def end(self) -> None:
        pass


class SwitchOneCase(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"only": self.end}, condition="mode")  # <-

    @step
    def end(self) -> None:
        pass


class SwitchVariableKey(FlowSpec):
    key = "a"

    @step
    def start(self) -> None:
        self.next({self.key: self.a, "b": self.end}, condition="mode")  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchValueNotStep(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"a": "a", "b": self.end}, condition="mode")  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchDuplicateLabel(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"a": self.a, "a": self.end}, condition="mode")  # noqa: F601  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ConditionWithoutDict(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.end, condition="mode")  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchAmongArgs(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, {"x": self.end}, condition="mode")  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ForeachAndCondition(FlowSpec):
    @step
    def start(self) -> None:
        self.next({"a": self.a, "b": self.b}, foreach="items", condition="mode")  # <-

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def b(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_foreach_with_two_targets() -> None:
    check(ForeachTwoTargets, "Step start", "foreach over 2 steps", "exactly one step")


def test_foreach_not_a_string() -> None:
    check(ForeachNotString, "Step start", "foreach=self.items", "foreach='items'")


def test_condition_not_a_string() -> None:
    check(ConditionNotString, "Step start", "condition=self.mode", "condition='mode'")


def test_switch_without_condition() -> None:
    check(SwitchNoCondition, "Step start", "without condition=")


@pytest.mark.parametrize("flow,count", [(SwitchEmpty, "0"), (SwitchOneCase, "1")])
def test_switch_needs_two_cases(flow: type, count: str) -> None:
    check(flow, "Step start", f"{count} case", "at least two")


def test_switch_label_not_literal() -> None:
    check(SwitchVariableKey, "Step start", "self.key", "not a literal")


def test_switch_value_not_step() -> None:
    check(SwitchValueNotStep, "Step start", "switch case 'a'", "self.<step>")


def test_switch_duplicate_label() -> None:
    check(SwitchDuplicateLabel, "Step start", "'a' appears twice")


def test_condition_without_dict() -> None:
    check(ConditionWithoutDict, "Step start", "condition=", "not a dict")


def test_switch_dict_among_other_arguments() -> None:
    check(SwitchAmongArgs, "Step start", "exactly one argument, the dict")


def test_foreach_and_condition() -> None:
    check(ForeachAndCondition, "Step start", "both foreach= and a switch")


# --- graph shape ----------------------------------------------------------------------------


class JoinAlsoSplits(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.c, self.d)  # <-

    @step
    def c(self) -> None:
        self.next(self.join2)

    @step
    def d(self) -> None:
        self.next(self.join2)

    @step
    def join2(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class StartIncoming(FlowSpec):
    @step
    def start(self) -> None:  # <-
        self.next(self.a)

    @step
    def a(self) -> None:
        self.next({"again": self.start, "done": self.end}, condition="mode")

    @step
    def end(self) -> None:
        pass


class Unreachable(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.end)

    @step
    def orphan(self) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class LongLoop(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a)

    @step
    def a(self) -> None:
        self.next(self.b)

    @step
    def b(self) -> None:
        self.next({"again": self.a, "done": self.end}, condition="mode")  # <-

    @step
    def end(self) -> None:
        pass


class PlainSelfLoop(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a)

    @step
    def a(self) -> None:
        self.next(self.a)  # <-

    @step
    def end(self) -> None:
        pass


class ForeachIntoJoin(FlowSpec):
    @step
    def start(self) -> None:
        self.items = [1]
        self.next(self.join, foreach="items")  # <-

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SplitIntoJoin(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.join)  # <-

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchIntoJoin(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next({"x": self.join, "y": self.c}, condition="mode")  # <-

    @step
    def c(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_join_that_also_splits() -> None:
    check(JoinAlsoSplits, "Step join", "both joins", "=> c, d")


def test_start_has_incoming() -> None:
    check(StartIncoming, "Step start", "target of self.next() in a")


def test_unreachable_step() -> None:
    check(Unreachable, "Step orphan", "never run", "self.next(self.orphan)")


def test_loop_other_than_switch_self_loop() -> None:
    check(LongLoop, "a -> b -> a", "loop", "self.next() of b")


def test_plain_self_loop() -> None:
    check(PlainSelfLoop, "a -> a", "loop", "switch")


def test_foreach_straight_into_join() -> None:
    check(ForeachIntoJoin, "Foreach step start", "straight to join join")


def test_split_straight_into_join() -> None:
    check(SplitIntoJoin, "Split step start", "straight to join join")


def test_switch_straight_into_join() -> None:
    check(SwitchIntoJoin, "Switch step a", "straight to join join")


# --- splits and joins balance ---------------------------------------------------------------


class JoinMissingBranch(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b, self.c)

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def c(self) -> None:
        self.next(self.end)

    @step
    def join(self, inputs: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class JoinMixesSplits(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.items = [1]
        self.next(self.each, foreach="items")

    @step
    def each(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class JoinWithoutSplit(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.work)

    @step
    def work(self, inputs: Any) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class MergeWithoutInputs(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.merge)

    @step
    def b(self) -> None:
        self.next(self.merge)

    @step
    def merge(self) -> None:  # <-
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SplitNeverJoined(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.end)

    @step
    def b(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:  # <-
        pass


class ForeachNeverJoined(FlowSpec):
    @step
    def start(self) -> None:
        self.items = [1]
        self.next(self.each, foreach="items")

    @step
    def each(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:  # <-
        pass


class SwitchEscapesBranch(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next({"x": self.c, "y": self.end}, condition="mode")

    @step
    def c(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:  # <-
        pass


def test_join_missing_a_branch() -> None:
    check(JoinMissingBranch, "Join step join", "split start", "3 branches", "c lead to join")


def test_join_mixes_splits() -> None:
    check(JoinMixesSplits, "Join step join", "different splits", "start > a", "innermost")


def test_join_without_split() -> None:
    check(JoinWithoutSplit, "Step work", "no split comes before it")


def test_merge_without_inputs() -> None:
    check(MergeWithoutInputs, "Step merge", "branches of split start", "def merge(self, inputs)")


@pytest.mark.parametrize("flow", [SplitNeverJoined, ForeachNeverJoined, SwitchEscapesBranch])
def test_end_inside_open_split(flow: type) -> None:
    check(flow, "Step end", "still open", "def join(self, inputs)")


def test_split_never_joined_is_reported_at_the_split() -> None:
    errors = lint_all(FlowGraph(SplitNeverJoined))
    never = [e for e in errors if "never joined" in e.message]
    assert never and never[0].message.startswith("Split step start (=> a, b)")
    assert never[0].lineno == FlowGraph(SplitNeverJoined)["start"].tail_next_lineno


# --- lint_all -------------------------------------------------------------------------------


class SeveralProblems(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.missing)

    @step
    def a(self, x: Any, y: Any) -> None:
        pass

    @step
    def end(self) -> None:
        pass


def test_lint_all_returns_every_problem_of_the_first_failing_stage() -> None:
    errors = lint_all(FlowGraph(SeveralProblems))
    messages = [e.message for e in errors]
    assert len(errors) == 3, messages
    assert any("Step a is declared as a(self, x, y)" in m for m in messages)
    assert any("Step a does not end with self.next()" in m for m in messages)
    assert any("no step named missing" in m for m in messages)
    # Reachability is a later stage: it is not reported until these are fixed.
    assert not any("never run" in m for m in messages)


class InsideAndOutside(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.c)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.c)

    @step
    def c(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


def test_step_reached_from_inside_and_outside_a_split() -> None:
    messages = [e.message for e in lint_all(FlowGraph(InsideAndOutside))]
    assert messages[0].startswith("Join step join closes split start")
    assert any("Step c is reached from a (inside split start) and from join (outside any "
               "split)" in m for m in messages), messages
