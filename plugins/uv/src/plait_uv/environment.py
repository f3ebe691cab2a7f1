"""The environment manager of one run (``--environment uv`` / ``pypi``, or any flow that uses
``@uv`` / ``@pypi``): plans which step runs where, prepares every environment before the
first task, and rewrites the task commands of environment steps."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from plait_uv.envs import EnvManager, Prepared
from plait_uv.plan import StepEnv, build_plan, by_environment, needed_distributions
from plait_uv.runtime import boot_command, ensure_overlay, runtime_dists
from plait_uv.spec import UvEnvironmentError

if TYPE_CHECKING:
    from plait.datastore.storage import Storage

BOOTSTRAP_MODULE = "plait_uv.bootstrap"


class UvEnvironment:
    """Environments for the steps of one flow, under one set of run options."""

    name = "uv"

    def __init__(self, flow_cls: type, graph: Any, storage: Storage | None, environment: str | None = None,
                 datastore: str | None = None, metadata: str | None = None) -> None:
        self.dists = runtime_dists()
        self.plan: dict[str, StepEnv] = build_plan(flow_cls, graph, environment, self.dists,
                                                   needed_distributions(datastore, metadata))
        self.manager = EnvManager(storage)
        self.overlay: str | None = None
        self.pythons: dict[str, str] = {}  # step -> environment python (local steps)
        self.prepared: dict[str, Prepared] = {}  # hash -> result

    def __bool__(self) -> bool:
        return bool(self.plan)

    def prepare(self, force: bool = False, say: Callable[[str], None] | None = None,
                steps: list[str] | None = None) -> list[Prepared]:
        """Make every environment ready (in parallel); raise one error naming every step
        whose environment cannot be made, before anything runs."""
        groups = by_environment({s: e for s, e in self.plan.items() if steps is None or s in steps})
        errors: list[str] = []

        def one(item: tuple[str, tuple[Any, list[str]]]) -> Prepared | None:
            _, (spec, group_steps) = item
            try:
                return self.manager.ensure(spec, group_steps, force=force)
            except UvEnvironmentError as exc:
                errors.append(str(exc))
                return None

        items = list(groups.items())
        if len(items) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(items))) as pool:
                results = list(pool.map(one, items))
        else:
            results = [one(i) for i in items]
        if errors:
            raise UvEnvironmentError("\n".join(errors))
        self.overlay = str(ensure_overlay(self.manager.cache_dir, self.dists))
        done = []
        for (env_hash, (_, group_steps)), prepared in zip(items, results, strict=True):
            assert prepared is not None
            self.prepared[env_hash] = prepared
            done.append(prepared)
            for step in group_steps:
                if not self.plan[step].remote:
                    self.pythons[step] = str(prepared.python)
            if say is not None and prepared.action != "cached":
                names = ", ".join(group_steps)
                say(f"Environment {env_hash[:12]} for {names} ({prepared.spec.describe()}): "
                    f"{prepared.action} in {prepared.seconds:.1f}s.")
        return done

    def command(self, step: str, command: list[str]) -> list[str] | None:
        """The task command of ``step`` run in its environment, or None (no environment)."""
        python = self.pythons.get(step)
        if python is not None and self.overlay is not None:
            assert command[1:3] == ["-m", "plait"], command
            return boot_command(python, self.overlay, "plait", command[3:])
        entry = self.plan.get(step)
        if entry is not None and entry.remote:
            # Elsewhere (a container): install the stored lock there, then run the command.
            return [command[0], "-m", BOOTSTRAP_MODULE, entry.spec.hash, "--", *command]
        return None


def say(text: str) -> None:
    from plait.runtime.logs import console_time

    sys.stdout.write(f"{console_time()} {text}\n")
    sys.stdout.flush()
