"""Names ``from plait import X`` resolves on first use: decorators and plugin exports."""

from __future__ import annotations

from typing import Any

from plait.exceptions import MissingPluginError

#: Names that belong to a plugin distribution, so the error can say what to install.
KNOWN_PLUGIN_NAMES = {
    "S3": "plait-s3", "kubernetes": "plait-kubernetes", "batch": "plait-batch",
    "step_functions": "plait-sfn", "conda": "plait-conda", "conda_base": "plait-conda",
    "pypi": "plait-uv", "pypi_base": "plait-uv", "uv": "plait-uv", "uv_base": "plait-uv",
}


#: The client and Runner APIs, imported on first use (``from plait import Flow, Runner``).
#: (``metadata()`` is ``plait.client.metadata``: ``plait.metadata`` is the metadata subpackage.)
API_NAMES = {
    **dict.fromkeys(("Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "MetaflowData",
                     "namespace", "get_namespace", "default_namespace", "get_metadata",
                     "default_metadata"), "plait.client"),
    **dict.fromkeys(("Runner", "NBRunner", "ExecutingRun"), "plait.runner"),
}


def resolve(name: str) -> Any:
    if name in API_NAMES:
        from importlib import import_module

        return getattr(import_module(API_NAMES[name]), name)
    from plait.builtins import plugin as builtin
    from plait.decorators import make_step_decorator

    for record in builtin.plait_step_decorators():  # built-ins need no entry point scan
        if record.name == name:
            return make_step_decorator(record.load())
    from plait.plugins import get_plugin_manager

    pm = get_plugin_manager()
    step_record = pm.registry("step_decorators").get(name)
    if step_record is not None:
        return make_step_decorator(step_record.load())
    flow_record = pm.registry("flow_decorators").get(name)
    if flow_record is not None:
        from plait.decorators import make_flow_decorator

        return make_flow_decorator(flow_record.load())
    for mapping in pm.hook.plait_exports():
        if name in mapping:
            from plait.records import load_reference

            return load_reference(mapping[name])
    if name in KNOWN_PLUGIN_NAMES:
        raise MissingPluginError(
            f"`from plait import {name}` needs a plugin: pip install {KNOWN_PLUGIN_NAMES[name]}"
        )
    raise AttributeError(f"module 'plait' has no attribute '{name}'")
