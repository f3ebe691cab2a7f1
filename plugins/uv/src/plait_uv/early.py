"""Start an environment's fork server while the flow file is still being executed.

A run remembers its servers for the next run of the same flow file, which starts them at
``import plait`` (:mod:`plait.runtime.prestart`). A flow file's *first* run has nothing
remembered: its servers would start at ``plait_runtime_init``, and its first task would wait
~100 ms for one. So when a step's ``@uv``/``@pypi`` is created in a scheduler about to run,
and the environment that decorator alone describes is already built, its server starts
right then, ~50 ms earlier. It is a guess, checked by the run: a server it does not claim is
stopped. A flow-level ``@uv_base``/``@pypi_base`` (its decorator expression is evaluated
before the class body) or ``--environment`` can change every step's environment: then no
guess is made.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_flow_base_seen = False


def flow_base_created() -> None:
    global _flow_base_seen
    _flow_base_seen = True


def step_decorator_created(decorator: Any) -> None:
    """A statically applied step decorator was just created: maybe start its server."""
    if _flow_base_seen:
        return
    try:
        _start_if_built(decorator)
    except Exception:  # noqa: BLE001 - only an optimisation: the run prepares everything itself
        pass


def _start_if_built(decorator: Any) -> None:
    from plait.runtime import prestart

    from plait_uv.args import option

    if not prestart.starting_a_run() or option(sys.argv, "--environment") is not None:
        return
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file or os.path.abspath(main_file) != os.path.abspath(sys.argv[0]):
        return
    from plait_uv.launcher import may_fork

    if not may_fork():
        return
    from plait.services import Settings

    from plait_uv.envs import EnvManager, env_python
    from plait_uv.launcher import SERVER_ENV, server_process_command
    from plait_uv.plan import merge_decorators, needed_distributions
    from plait_uv.plugin import PRESTART_OWNER
    from plait_uv.runtime import ensure_overlay, runtime_dists, runtime_requirements
    from plait_uv.spec import EnvSpec

    merged = merge_decorators(decorator, None, "")
    if merged is None:  # disabled: the step runs in the flow's own interpreter
        return
    settings = Settings.resolve(option(sys.argv, "--datastore"), None, option(sys.argv, "--metadata"))
    dists = runtime_dists()
    runtime = runtime_requirements(dists, needed_distributions(settings.datastore, settings.metadata))
    manager = EnvManager(None)
    env_dir = manager.ready(EnvSpec(merged["requirements"], merged["python"], merged["index"], runtime))
    if env_dir is None:  # to be built by the run first: the server waits for that anyway
        return
    overlay = ensure_overlay(manager.cache_dir, dists)
    command = server_process_command(str(env_python(env_dir)), str(overlay), main_file)
    prestart.start(PRESTART_OWNER, command, *SERVER_ENV)
