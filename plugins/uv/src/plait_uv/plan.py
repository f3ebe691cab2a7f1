"""Which steps run in which environment, for one flow and one set of run options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plait_uv.args import ENVIRONMENT_NAMES, option  # noqa: F401 - re-exported
from plait_uv.decorators import BACKEND, _EnvFlowDecorator, _EnvStepDecorator, attach_everywhere, is_disabled
from plait_uv.runtime import RuntimeDist, runtime_requirements
from plait_uv.spec import EnvSpec, IndexSettings, UvEnvironmentError, default_python, packages_to_requirements


@dataclass
class StepEnv:
    step: str
    spec: EnvSpec
    remote: bool  # another compute backend runs the step: it bootstraps the env itself




def needed_distributions(datastore: str | None, metadata: str | None) -> set[str]:
    """Plugin distributions whose code a task runs besides the core: the datastore's and the
    metadata provider's (their dependencies are installed into every environment)."""
    from plait.plugins import get_plugin_manager

    pm = get_plugin_manager()
    out = set()
    for kind, name in (("datastores", datastore), ("metadata_providers", metadata)):
        record = pm.registry(kind).get(name or "local")
        if record is not None and record.plugin:
            out.add(record.plugin)
    return out


def merge_decorators(step_deco: _EnvStepDecorator | None, base: _EnvFlowDecorator | None, step: str) -> dict[str, Any] | None:
    """Metaflow's rules: step packages over base packages, step python over base python, a
    step's ``disabled`` (when given) over the base's."""
    step_attrs = step_deco.attributes if step_deco is not None else {}
    base_attrs = base.attributes if base is not None else {}
    disabled = is_disabled(step_attrs.get("disabled"))
    if disabled is None:
        disabled = is_disabled(base_attrs.get("disabled"))
    if disabled:
        return None
    packages = packages_to_requirements(base_attrs.get("packages"), f"@{base.name}" if base else "")
    packages.update(packages_to_requirements(step_attrs.get("packages"), f"Step '{step}' @{step_deco.name}"
                                             if step_deco else ""))
    index = IndexSettings.from_config()
    if base is not None:
        index = index.override(base_attrs)
    if step_deco is not None:
        index = index.override(step_attrs)
    return {"requirements": tuple(sorted(packages.values())),
            "python": str(step_attrs.get("python") or base_attrs.get("python") or default_python()),
            "index": index}


def build_plan(flow_cls: type, graph: Any, environment: str | None, dists: list[RuntimeDist],
               needed: set[str]) -> dict[str, StepEnv]:
    """{step: StepEnv} for every step that runs in an environment. Also sets each environment
    decorator's ``compute_backend`` (the local env launcher, or None for remote steps)."""
    if environment in ENVIRONMENT_NAMES:
        attach_everywhere(flow_cls, graph)
    base = next((d for d in getattr(flow_cls, "_flow_decorators", []) if isinstance(d, _EnvFlowDecorator)), None)
    runtime = runtime_requirements(dists, needed)
    plan: dict[str, StepEnv] = {}
    for node in graph:
        decorators = list(getattr(getattr(flow_cls, node.name), "decorators", []))
        step_deco = next((d for d in decorators if isinstance(d, _EnvStepDecorator)), None)
        if step_deco is None:
            continue  # no decorator: the flow's own interpreter (base/--environment attach one)
        try:
            merged = merge_decorators(step_deco, base, node.name)
        except UvEnvironmentError as exc:
            raise UvEnvironmentError(f"Step '{node.name}': {exc}") from None
        remote = any(d.compute_backend and d.compute_backend != BACKEND for d in decorators
                     if not isinstance(d, _EnvStepDecorator))
        if merged is None:
            step_deco.compute_backend = None
            continue
        step_deco.compute_backend = None if remote else BACKEND
        spec = EnvSpec(merged["requirements"], merged["python"], merged["index"], runtime)
        plan[node.name] = StepEnv(node.name, spec, remote)
    return plan


def by_environment(plan: dict[str, StepEnv]) -> dict[str, tuple[EnvSpec, list[str]]]:
    """{hash: (spec, steps)}: each distinct environment once, with the steps that use it."""
    out: dict[str, tuple[EnvSpec, list[str]]] = {}
    for step, entry in plan.items():
        out.setdefault(entry.spec.hash, (entry.spec, []))[1].append(step)
    return out
