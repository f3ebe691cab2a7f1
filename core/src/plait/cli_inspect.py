"""Commands that look at past runs: dump (artifacts), logs (output), tag (run tags)."""

from __future__ import annotations

import sys
from typing import Any

import click

from plait.exceptions import PlaitException


def _parse_pathspec(flow: str, pathspec: str) -> tuple[str, str | None, str | None]:
    parts = pathspec.strip("/").split("/")
    if parts and parts[0] == flow:
        parts = parts[1:]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise PlaitException(f"'{pathspec}' is not a pathspec: use RUN_ID/STEP or RUN_ID/STEP/TASK_ID.")
    run_id, step, task = (parts + [None, None])[:3]
    return run_id, step, task  # type: ignore[return-value]


def _tasks(state: Any, pathspec: str) -> list[tuple[str, str, str]]:
    from plait.services import open_datastore, open_metadata

    flow = state.flow_cls.__name__
    run_id, step, task = _parse_pathspec(flow, pathspec)
    md = open_metadata(state.settings, open_datastore(state.settings))
    if md.get_run(flow, run_id) is None:
        raise PlaitException(f"Run {flow}/{run_id} does not exist.")
    if step is None:
        raise PlaitException(f"Give a step too: {run_id}/<step> or {run_id}/<step>/<task_id>.")
    if task is not None:
        if md.get_task(flow, run_id, step, task) is None:
            raise PlaitException(f"Task {flow}/{run_id}/{step}/{task} does not exist.")
        return [(run_id, step, task)]
    tasks = md.list_tasks(flow, run_id, step)
    if not tasks:
        raise PlaitException(f"Step {flow}/{run_id}/{step} has no tasks.")
    return [(run_id, step, t.task_id) for t in tasks]


def register_inspect_commands(cli: click.Group) -> None:
    @cli.command(help="Print the artifacts of a task (RUN_ID/STEP/TASK_ID) or of every task of a step.")
    @click.argument("pathspec")
    @click.option("--include", default=None, help="Comma-separated artifact names to show.")
    @click.option("--max-value-size", type=int, default=1000, show_default=True,
                  help="Truncate each printed value to this many characters.")
    @click.pass_obj
    def dump(state: Any, pathspec: str, include: str | None, max_value_size: int) -> None:
        from plait.services import open_datastore

        ds = open_datastore(state.settings)
        wanted = set(include.split(",")) if include else None
        flow = state.flow_cls.__name__
        for run_id, step, task in _tasks(state, pathspec):
            index = ds.read_index(flow, run_id, step, task)
            if index is None:
                click.echo(f"{flow}/{run_id}/{step}/{task}: no finished attempt.")
                continue
            status = "" if index.success else " (failed attempt)"
            click.secho(f"{flow}/{run_id}/{step}/{task} attempt {index.attempt}{status}:", bold=True)
            for name, ref in sorted(index.artifacts.items()):
                if name.startswith("_") or (wanted is not None and name not in wanted):
                    continue
                text = repr(ds.load_artifact(ref))
                if len(text) > max_value_size:
                    text = text[:max_value_size] + f"... ({ref.size} bytes stored)"
                click.echo(f"  {name} = {text}")

    @cli.command(help="Print the output of a task (RUN_ID/STEP/TASK_ID) or of every task of a step.")
    @click.argument("pathspec")
    @click.option("--stdout/--no-stdout", "show_out", default=True, help="Show stdout.")
    @click.option("--stderr/--no-stderr", "show_err", default=True, help="Show stderr.")
    @click.option("--attempt", type=int, default=None, help="Which attempt (default: the latest).")
    @click.option("--timestamps", is_flag=True, help="Prefix each line with when it was printed.")
    @click.pass_obj
    def logs(state: Any, pathspec: str, show_out: bool, show_err: bool, attempt: int | None,
             timestamps: bool) -> None:
        from plait.runtime.logs import console_time, parse_log
        from plait.services import open_datastore

        ds = open_datastore(state.settings)
        flow = state.flow_cls.__name__
        for run_id, step, task in _tasks(state, pathspec):
            attempts = ds.list_attempts(flow, run_id, step, task)
            n = attempt if attempt is not None else (max(attempts) if attempts else 0)
            for stream, show in (("stdout", show_out), ("stderr", show_err)):
                if not show:
                    continue
                out = sys.stdout if stream == "stdout" else sys.stderr
                for ts, line in parse_log(ds.load_log(flow, run_id, step, task, n, stream)):
                    out.write((f"{console_time(ts)} " if timestamps and ts else "") + line + "\n")

    @cli.group(help="Add, remove or list the user tags of a run.")
    def tag() -> None:
        pass

    def _md(state: Any) -> Any:
        from plait.services import open_datastore, open_metadata

        return open_metadata(state.settings, open_datastore(state.settings))

    def _check_run(state: Any, md: Any, run_id: str) -> None:
        if md.get_run(state.flow_cls.__name__, run_id) is None:
            raise PlaitException(f"Run {state.flow_cls.__name__}/{run_id} does not exist.")

    @tag.command("add", help="Add tags to a run.")
    @click.option("--run-id", required=True)
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_obj
    def tag_add(state: Any, run_id: str, tags: tuple[str, ...]) -> None:
        md = _md(state)
        _check_run(state, md, run_id)
        md.add_tags(state.flow_cls.__name__, run_id, list(tags))

    @tag.command("remove", help="Remove user tags from a run.")
    @click.option("--run-id", required=True)
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_obj
    def tag_remove(state: Any, run_id: str, tags: tuple[str, ...]) -> None:
        md = _md(state)
        _check_run(state, md, run_id)
        md.remove_tags(state.flow_cls.__name__, run_id, list(tags))

    @tag.command("list", help="List the tags of a run (or of the latest runs).")
    @click.option("--run-id", default=None)
    @click.pass_obj
    def tag_list(state: Any, run_id: str | None) -> None:
        md = _md(state)
        flow = state.flow_cls.__name__
        runs = [md.get_run(flow, run_id)] if run_id else md.list_runs(flow, limit=10)
        for run in runs:
            if run is None:
                raise PlaitException(f"Run {flow}/{run_id} does not exist.")
            click.echo(f"{run.run_id}: user tags: {', '.join(run.tags) or '-'}; "
                       f"system tags: {', '.join(run.system_tags)}")
