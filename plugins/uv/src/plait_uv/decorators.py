"""``@pypi`` / ``@uv`` on steps and ``@pypi_base`` / ``@uv_base`` on flows.

The decorators only record what a step needs; :mod:`plait_uv.plan` merges them into one
:class:`~plait_uv.spec.EnvSpec` per step, and :mod:`plait_uv.plugin` builds and uses them.
``@pypi`` keeps Metaflow's signature (``packages`` as a dict of name -> version, ``python``,
``disabled``); ``@uv`` takes ``packages`` as a list of requirement strings. Both accept the
index settings (``index_url``, ``extra_index_urls``, ``find_links``, ``no_index``).
"""

from __future__ import annotations

from typing import Any

from plait.decorators import BadDecoratorError, FlowDecorator, StepDecorator

from plait_uv.spec import UvEnvironmentError, packages_to_requirements

#: The compute backend name that launches environment steps locally (see plait_uv.launcher).
BACKEND = "uv"
_INDEX_DEFAULTS: dict[str, Any] = {"index_url": None, "extra_index_urls": None, "find_links": None, "no_index": None}


def is_disabled(value: Any) -> bool | None:
    """``disabled`` as Metaflow reads it: None when not given, ``"true"``/``"false"`` too."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def validate(name: str, attributes: dict[str, Any], where: str) -> None:
    try:
        packages_to_requirements(attributes.get("packages"), f"{where}@{name}")
    except UvEnvironmentError as exc:
        raise BadDecoratorError(str(exc)) from None
    python = attributes.get("python")
    if python is not None and (not isinstance(python, str) or not python.strip()):
        raise BadDecoratorError(f"@{name}(python={python!r}): python must be a version string such as '3.11'.")
    for key in ("extra_index_urls", "find_links"):
        value = attributes.get(key)
        if value is not None and not isinstance(value, (str, list, tuple)):
            raise BadDecoratorError(f"@{name}({key}={value!r}) must be a string or a list of strings.")


class _EnvStepDecorator(StepDecorator):
    compute_backend: str | None = BACKEND

    def __init__(self, attributes: dict[str, Any] | None = None, statically_defined: bool = True) -> None:
        super().__init__(attributes, statically_defined)
        if statically_defined:
            from plait_uv import early

            early.step_decorator_created(self)

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        validate(self.name, self.attributes, "")
        siblings = [d for d in getattr(getattr(flow_cls, step_name), "decorators", []) if d is not self]
        others = [d for d in siblings if isinstance(d, _EnvStepDecorator)]
        if others and self.statically_defined and others[0].statically_defined:
            raise BadDecoratorError(
                f"Step '{step_name}' has both @{others[0].name} and @{self.name}; keep one of them."
            )
        # Another compute backend (a container, a cluster) runs this step: it gets the
        # environment through the bootstrap command instead of the local env launcher.
        remote = [d for d in siblings if d.compute_backend and d.compute_backend != BACKEND]
        if remote or is_disabled(self.attributes.get("disabled")):
            self.compute_backend = None
        else:
            self.compute_backend = BACKEND


class PyPIStepDecorator(_EnvStepDecorator):
    """Run the step in its own Python environment with these PyPI packages.

    ``@pypi(packages={"requests": "2.32.3"}, python="3.11")`` (Metaflow's signature). Packages
    merge over ``@pypi_base`` / ``@uv_base``; ``python`` defaults to the flow's base, then to the
    Python running the flow. ``disabled=True`` runs the step in the flow's own interpreter.
    """

    name = "pypi"
    defaults = {"packages": {}, "python": None, "disabled": None, **_INDEX_DEFAULTS}


class UvStepDecorator(_EnvStepDecorator):
    """Run the step in its own Python environment, resolved and cached with uv.

    ``@uv(packages=["polars==1.9.0"], python="3.12")``; the same options as ``@pypi``.
    """

    name = "uv"
    defaults = {"packages": [], "python": None, "disabled": None, **_INDEX_DEFAULTS}


class _EnvFlowDecorator(FlowDecorator):
    def __init__(self, attributes: dict[str, Any] | None = None) -> None:
        unknown = sorted(set(attributes or {}) - set(self.defaults))
        if unknown:
            raise BadDecoratorError(
                f"@{self.name} does not take {', '.join(repr(u) for u in unknown)}; it accepts "
                f"{', '.join(self.defaults)}."
            )
        super().__init__(attributes)
        self.given = set(attributes or {})
        from plait_uv import early

        early.flow_base_created()

    def flow_init(self, flow_cls: type, graph: Any) -> None:
        validate(self.name, self.attributes, "")
        bases = [d for d in getattr(flow_cls, "_flow_decorators", []) if isinstance(d, _EnvFlowDecorator)]
        if len(bases) > 1:
            raise BadDecoratorError(
                f"{flow_cls.__name__} has {' and '.join('@' + d.name for d in bases)}; keep one flow-level "
                "environment decorator."
            )
        if is_disabled(self.attributes.get("disabled")):
            return
        attach_everywhere(flow_cls, graph)


def attach_everywhere(flow_cls: type, graph: Any) -> None:
    """Give every step without an environment decorator an (empty) ``@uv``, as Metaflow's
    ``@pypi_base`` attaches ``@pypi`` to every step."""
    for node in graph:
        func = getattr(flow_cls, node.name)
        if any(isinstance(d, _EnvStepDecorator) for d in func.decorators):
            continue
        deco = UvStepDecorator({}, statically_defined=False)
        func.decorators.append(deco)
        deco.step_init(flow_cls, graph, node.name)


class PyPIFlowDecorator(_EnvFlowDecorator):
    """Default PyPI packages and Python for every step of the flow (``@pypi_base``)."""

    name = "pypi_base"
    defaults = {"packages": {}, "python": None, "disabled": None, **_INDEX_DEFAULTS}


class UvFlowDecorator(_EnvFlowDecorator):
    """Default packages and Python for every step of the flow (``@uv_base``)."""

    name = "uv_base"
    defaults = {"packages": [], "python": None, "disabled": None, **_INDEX_DEFAULTS}
