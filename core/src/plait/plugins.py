"""The plugin manager: one per process, built-ins first, then the ``plait`` entry points.

Built-in plugins go through exactly the same hooks as external ones. Registration records
are collected once; two plugins registering the same name is an error naming both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import pluggy

from plait import hookspecs
from plait.exceptions import MissingPluginError, PluginError
from plait.records import _Record

BUILTIN_PLUGINS = ("plait.builtins.plugin",)

R = TypeVar("R", bound=_Record)

_REGISTRATION_HOOKS = {
    "step_decorators": "plait_step_decorators",
    "flow_decorators": "plait_flow_decorators",
    "cli_commands": "plait_cli_commands",
    "datastores": "plait_datastores",
    "metadata_providers": "plait_metadata_providers",
    "compute_backends": "plait_compute_backends",
    "environments": "plait_environments",
    "serializers": "plait_serializers",
}


@dataclass(frozen=True)
class PluginInfo:
    """What ``plait plugins`` prints: one loaded plugin and where it came from."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool


class PlaitPluginManager:
    """A pluggy manager plus the typed registries built from the registration hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._registries: dict[str, dict[str, Any]] = {}
        self._dist_of: dict[int, str] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def register(self, plugin: Any, info: PluginInfo) -> None:
        """Register one plugin object or module; invalidates the registries."""
        self.pm.register(plugin, name=info.name)
        self._dist_of[id(plugin)] = info.distribution
        self.plugins.append(info)
        self._registries.clear()

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (tests register a plugin for one test, then remove it)."""
        plugin = self.pm.unregister(name=name)
        self._dist_of.pop(id(plugin), None)
        self.plugins = [p for p in self.plugins if p.name != name]
        self._registries.clear()

    def load_builtins(self) -> None:
        from importlib import import_module

        version = _plait_version()
        for module_name in BUILTIN_PLUGINS:
            module = import_module(module_name)
            self.register(module, PluginInfo(module_name, module_name, "plait", version, True))

    def load_entry_points(self) -> None:
        from plait.entry_points import plait_entry_points

        disabled = {n.strip() for n in os.environ.get("PLAIT_DISABLE_PLUGINS", "").split(",") if n.strip()}
        for ep in plait_entry_points():
            if ep.name in disabled or self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must say which one it is
                raise PluginError(
                    f"Plugin '{ep.name}' from distribution {ep.distribution} {ep.version} failed to "
                    f"load ({ep.value}): {exc!r}. Reinstall it, or disable it with "
                    f"PLAIT_DISABLE_PLUGINS={ep.name}."
                ) from exc
            self.register(plugin, PluginInfo(ep.name, ep.value, ep.distribution, ep.version, False))

    def registry(self, kind: str) -> dict[str, Any]:
        """Name -> record for one registration hook (``kind`` as in _REGISTRATION_HOOKS)."""
        if kind not in self._registries:
            self._registries[kind] = self._collect(kind)
        return self._registries[kind]

    def _collect(self, kind: str) -> dict[str, Any]:
        hook_name = _REGISTRATION_HOOKS[kind]
        caller = getattr(self.pm.hook, hook_name)
        found: dict[str, Any] = {}
        for impl in reversed(caller.get_hookimpls()):  # registration order
            dist = self._dist_of.get(id(impl.plugin), impl.plugin_name)
            for record in impl.function() or []:
                record = replace(record, plugin=dist)
                if record.name in found:
                    other = found[record.name].plugin
                    raise PluginError(
                        f"Two plugins register the {kind[:-1].replace('_', ' ')} "
                        f"'{record.name}': distribution '{other}' and distribution '{dist}'. "
                        f"Uninstall one, or disable one with PLAIT_DISABLE_PLUGINS=<name>."
                    )
                found[record.name] = record
        return found

    def get(self, kind: str, name: str, hint: str = "") -> Any:
        """The record ``name`` of ``kind``, or a MissingPluginError saying what to install."""
        registry = self.registry(kind)
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            pkg = hint or f"plait-{name}"
            raise MissingPluginError(
                f"No {kind[:-1].replace('_', ' ')} named '{name}' is installed (available: "
                f"{known}). If it comes from a plugin, install it: pip install {pkg}"
            )
        return registry[name]


def _plait_version() -> str:
    from plait.version import __version__

    return __version__


_manager: PlaitPluginManager | None = None
_manager_pid: int | None = None


def get_plugin_manager() -> PlaitPluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager, _manager_pid
    if _manager is None:
        manager = PlaitPluginManager()
        manager.load_builtins()
        manager.load_entry_points()
        _manager, _manager_pid = manager, os.getpid()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests; a changed PLAIT_DISABLE_PLUGINS)."""
    global _manager
    _manager = None
