"""Run a task command inside its environment on a machine that has not built it yet.

``python -m plait_uv.bootstrap HASH -- python -m plait _flow flow.py ... step ...`` is the
command a remote compute backend (a container, a cluster node) receives for a step with an
environment: it reads the environment's spec and lock from the datastore the command names
(``_envs/HASH/``), builds the identical environment locally (never resolving again), then
replaces itself with the command run by the environment's Python.
"""

from __future__ import annotations

import json
import os
import sys

from plait_uv.plan import option


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m plait_uv.bootstrap HASH -- COMMAND...", file=sys.stderr)
        return 2
    env_hash, command = argv[0], argv[2:]
    from plait.exceptions import PlaitException
    from plait.services import Settings, open_datastore

    from plait_uv.envs import EnvManager, spec_key
    from plait_uv.launcher import task_env
    from plait_uv.runtime import boot_command, ensure_overlay, runtime_dists
    from plait_uv.spec import EnvSpec

    try:
        settings = Settings.resolve(option(command, "--datastore"), option(command, "--datastore-root"),
                                    option(command, "--metadata"))
        storage = open_datastore(settings).storage
        try:
            spec = EnvSpec.from_json(json.loads(storage.read(spec_key(env_hash))))
        except FileNotFoundError:
            raise PlaitException(f"Environment {env_hash} is not in the datastore {storage.root_url!r}.") from None
        if spec.hash != env_hash:
            raise PlaitException(f"Environment {env_hash}: the stored spec hashes to {spec.hash}; it was altered.")
        step = option(command, "step") or "?"
        manager = EnvManager(storage)
        prepared = manager.ensure(spec, [step], allow_resolve=False)
        overlay = ensure_overlay(manager.cache_dir, runtime_dists())
    except PlaitException as exc:
        print(f"{exc.headline}: {exc}", file=sys.stderr)
        return 1
    python = str(prepared.python)
    sys.stdout.flush()
    if command[1:3] == ["-m", "plait"]:
        argv = boot_command(python, str(overlay), "plait", command[3:])
    else:  # any other command: run it with the environment's Python
        argv = [python, "-s", *command[1:]]
    os.execve(python, argv, task_env())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
