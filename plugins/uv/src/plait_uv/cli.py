"""``python flow.py environment resolve`` and ``python flow.py environment show``."""

from __future__ import annotations

import json
from typing import Any

import click


def _environment(state: Any) -> Any:
    from plait.runtime.decorators import attach_with_decorators, init_decorators
    from plait.services import open_datastore

    from plait_uv.environment import UvEnvironment

    attach_with_decorators(state.flow_cls, state.graph, state.with_)
    init_decorators(state.flow_cls, state.graph)
    ds = open_datastore(state.settings)
    return UvEnvironment(state.flow_cls, state.graph, ds.storage, state.environment,
                         state.settings.datastore, state.settings.metadata)


@click.group(help="Per-step Python environments (@pypi, @uv): resolve them ahead of a run, or show them.")
def environment() -> None:
    pass


@environment.command(help="Resolve, lock and build the environment of every step now.")
@click.option("--step", "steps", multiple=True, help="Only this step's environment (repeatable).")
@click.option("--force", is_flag=True, help="Resolve again even if a lock is stored, and replace it.")
@click.pass_obj
def resolve(state: Any, steps: tuple[str, ...], force: bool) -> None:
    env = _environment(state)
    if not env:
        click.echo("No step of this flow runs in an environment (add @pypi or @uv, or use --environment uv).")
        return
    unknown = sorted(set(steps) - set(env.plan))
    if unknown:
        raise click.UsageError(f"No environment step named {', '.join(unknown)} (environment steps: "
                               f"{', '.join(env.plan)}).")
    for prepared in env.prepare(force=force, steps=list(steps) or None):
        group = [s for s, e in env.plan.items() if e.spec.hash == prepared.spec.hash]
        click.echo(f"{prepared.spec.hash[:12]}  {', '.join(group)}: {prepared.spec.describe()} — "
                   f"{prepared.action} ({prepared.seconds:.2f}s)\n    {prepared.env_dir}")


@environment.command(help="Show each step's environment: its spec, hash and locked packages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(state: Any, as_json: bool) -> None:
    from plait_uv.envs import locked_packages

    env = _environment(state)
    report = []
    for node in state.graph:
        entry = env.plan.get(node.name)
        if entry is None:
            report.append({"step": node.name, "environment": None})
            continue
        spec = entry.spec
        built = env.manager.ready(spec)
        lock = env.manager.stored_lock(spec)
        if lock is None and built is not None:
            lock = (built / "plait-lock.txt").read_text()
        report.append({
            "step": node.name, "environment": spec.hash, "python": spec.python,
            "packages": sorted(spec.requirements), "index": spec.to_json()["index"],
            "status": "built" if built else ("locked" if lock else "not resolved"),
            "path": str(built) if built else None,
            "locked": locked_packages(lock) if lock else None,
        })
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    for item in report:
        if item["environment"] is None:
            click.echo(f"{item['step']}: the flow's own interpreter")
            continue
        click.echo(f"{item['step']}: environment {item['environment'][:12]} (python {item['python']}, "
                   f"{item['status']})")
        click.echo(f"    requested: {', '.join(item['packages']) or 'no packages'}")
        if item["locked"]:
            click.echo(f"    locked:    {', '.join(item['locked'])}")
        else:
            click.echo("    locked:    (run `environment resolve` or a run to resolve it)")
