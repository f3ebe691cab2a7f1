"""What the Runner needs to know before launching: the flow class, its CLI, where data goes.

The flow file is executed in this process under a private module name (so its
``if __name__ == "__main__":`` block does not run), as Metaflow's Runner does, to read the
flow's declared Parameters and the options its command line accepts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

from plait.exceptions import PlaitException

if TYPE_CHECKING:
    from plait.flowspec import FlowSpec
    from plait.services import Settings


class RunnerError(PlaitException):
    headline = "Runner error"


_loaded: dict[tuple[str, int, int], type[FlowSpec]] = {}
_load_lock = threading.Lock()


def load_flow_class(path: str) -> type[FlowSpec]:
    """The one FlowSpec subclass defined in ``path`` (cached while the file is unchanged)."""
    from plait.flowspec import FlowSpec

    path = os.path.abspath(path)
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        raise RunnerError(f"Cannot read the flow file {path}: {exc.strerror}.") from None
    key = (path, st.st_mtime_ns, st.st_size)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        name = "_plait_runner_flow_" + hashlib.sha1(path.encode()).hexdigest()[:12]
        module = types.ModuleType(name)
        module.__file__ = path
        sys.modules[name] = module
        folder = os.path.dirname(path)
        sys.path.insert(0, folder)  # the flow's own imports (helpers next to it)
        try:
            exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - reading the user's flow is the point
        except SystemExit:
            raise RunnerError(f"{path} starts its command line when imported. Guard the call with "
                              f"`if __name__ == \"__main__\":` so the Runner can read the flow.") from None
        except PlaitException:
            raise
        except Exception as exc:
            raise RunnerError(f"Importing the flow file {path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
        flows = [v for v in module.__dict__.values() if isinstance(v, type) and issubclass(v, FlowSpec)
                 and v is not FlowSpec and v.__module__ == name]
        if len(flows) != 1:
            found = ", ".join(f.__name__ for f in flows) or "none"
            raise RunnerError(f"{path} must define exactly one FlowSpec subclass (found: {found}).")
        _loaded[key] = flows[0]
        return flows[0]


def build_click(flow_cls: type, flow_file: str) -> Any:
    """The flow's click group, exactly as ``python flow.py`` builds it."""
    from plait.cli import build_cli

    return build_cli(flow_cls, flow_file)


def _profile(env: dict[str, str]) -> dict[str, Any]:
    home = env.get("PLAIT_HOME") or os.path.expanduser("~/.plaitconfig")
    profile = env.get("PLAIT_PROFILE")
    path = os.path.join(home, f"config_{profile}.json" if profile else "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def child_settings(env: dict[str, str], cwd: str, top_level: dict[str, Any]) -> Settings:
    """The settings a child started with ``env`` in ``cwd`` resolves, with local roots made
    absolute: where the client must look for the run it started."""
    from plait.client.store import absolute_settings
    from plait.services import Settings

    profile = _profile(env)

    def get(name: str, default: Any = None) -> Any:
        value = env.get(name)
        return value if value not in (None, "") else profile.get(name, default)

    settings = Settings(
        datastore=top_level.get("datastore") or get("PLAIT_DATASTORE", "local"),
        datastore_root=top_level.get("datastore_root") or get("PLAIT_DATASTORE_ROOT"),
        metadata=top_level.get("metadata") or get("PLAIT_METADATA", "local"),
        metadata_root=get("PLAIT_METADATA_ROOT"),
    )
    return absolute_settings(settings, cwd)
