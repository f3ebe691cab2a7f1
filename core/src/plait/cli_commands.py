"""The flow commands: run, resume, show, check, step (the task command) and inspection."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from plait.exceptions import RunFailedError


def _default_workers() -> int:
    return os.cpu_count() or 1


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--tag", "tags", multiple=True, help="Annotate the run with this tag (repeatable).")(f)
    f = click.option("--max-workers", type=int, default=_default_workers, show_default="number of cores",
                     help="Tasks running at once.")(f)
    f = click.option("--max-num-splits", type=int, default=100, show_default=True,
                     help="Largest foreach allowed: a guard against accidental fan-outs.")(f)
    f = click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
                     help="Write the run id to this file as soon as the run starts.")(f)
    f = click.option("--with", "with_", multiple=True, help="Add a decorator to every step.")(f)
    f = click.option("--namespace", default=None, help="Namespace tasks see in current.namespace.")(f)
    f = click.option("--max-log-size", type=int, default=10, show_default=True,
                     help="Megabytes of stdout/stderr stored per attempt.")(f)
    return f


def register_commands(cli: click.Group, with_params: Callable[[click.Command], click.Command],
                      given_parameters: Callable[[type, dict[str, Any]], dict[str, Any]]) -> None:
    @cli.command(help="Run the flow locally.")
    @_run_options
    @click.pass_context
    def run(ctx: click.Context, tags: tuple[str, ...], max_workers: int, max_num_splits: int,
            run_id_file: str | None, with_: tuple[str, ...], namespace: str | None, max_log_size: int,
            **params: Any) -> None:
        from plait.runtime.launch import start_run

        state = ctx.obj
        state.with_ += list(with_)
        ok = start_run(state, given_parameters(state.flow_cls, params), list(tags), max_workers,
                       max_num_splits, run_id_file, namespace)
        if not ok:
            raise RunFailedError("The run failed; see the errors above. Fix them and run "
                                 f"`{os.path.basename(state.flow_file)} resume` to re-run only what failed.")

    with_params(run)

    @cli.command(help="Resume the latest (or --origin-run-id) run: clone what succeeded, re-run the rest.")
    @click.argument("step", required=False)
    @click.option("--origin-run-id", default=None, help="Run to resume (default: the latest run of this flow).")
    @_run_options
    @click.pass_context
    def resume(ctx: click.Context, step: str | None, origin_run_id: str | None, tags: tuple[str, ...],
               max_workers: int, max_num_splits: int, run_id_file: str | None, with_: tuple[str, ...],
               namespace: str | None, max_log_size: int) -> None:
        from plait.runtime.launch import start_run

        state = ctx.obj
        state.with_ += list(with_)
        ok = start_run(state, {}, list(tags), max_workers, max_num_splits, run_id_file, namespace,
                       resume=(origin_run_id, step))
        if not ok:
            raise RunFailedError("The resumed run failed; see the errors above.")

    @cli.command(help="Describe the flow's graph in words.")
    @click.pass_obj
    def show(state: Any) -> None:
        click.echo(state.graph.describe())

    @cli.command(help="Check the flow for errors without running it.")
    @click.pass_obj
    def check(state: Any) -> None:
        state.graph  # noqa: B018 - building the graph runs the linter
        from plait.runtime.decorators import attach_with_decorators, init_decorators

        attach_with_decorators(state.flow_cls, state.graph, state.with_)
        init_decorators(state.flow_cls, state.graph)
        click.echo("The graph looks good!")

    @cli.command(hidden=True, help="Run one task (the self-contained task command).")
    @click.argument("step_name")
    @click.option("--run-id", required=True)
    @click.option("--task-id", required=True)
    @click.option("--input-paths", default="")
    @click.option("--split-index", type=int, default=None)
    @click.option("--retry-count", type=int, default=0)
    @click.option("--max-user-retries", type=int, default=0)
    @click.option("--max-num-splits", type=int, default=100)
    @click.option("--foreach-key", default="")
    @click.option("--origin-run-id", default=None)
    @click.option("--user", default="")
    @click.option("--namespace", default=None)
    @click.option("--tag", "tags", multiple=True)
    @click.option("--scheduled", is_flag=True, help="A scheduler records this task's metadata.")
    @click.pass_obj
    def step(state: Any, step_name: str, run_id: str, task_id: str, input_paths: str,
             split_index: int | None, retry_count: int, max_user_retries: int, max_num_splits: int,
             foreach_key: str, origin_run_id: str | None, user: str, namespace: str | None,
             tags: tuple[str, ...], scheduled: bool) -> None:
        from plait.runtime.context import TaskSpec
        from plait.runtime.launch import run_task_command

        spec = TaskSpec(state.flow_cls.__name__, run_id, step_name, task_id,
                        [p for p in input_paths.split(",") if p], split_index, foreach_key, retry_count,
                        max_user_retries, max_num_splits, origin_run_id, list(tags), user, namespace)
        sys.exit(run_task_command(state, spec, record_metadata=not scheduled))

    from plait.cli_inspect import register_inspect_commands

    register_inspect_commands(cli)


