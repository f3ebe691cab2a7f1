"""Parameter, JSONType and IncludeFile: the run's inputs, fixed for the whole run.

A parameter is a data descriptor on the flow class: reading ``self.alpha`` returns the run's
value, assigning to it is an error. Values are stored once per run (in the ``_parameters``
pseudo-task) and every task, joins included, sees them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait.exceptions import ParameterAssignmentError, ParameterError


class JSONTypeClass:
    """Marker type: the parameter's value is parsed as JSON."""

    name = "JSON"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{value!r} is not valid JSON ({exc.msg} at column {exc.colno})") from exc

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()


@dataclass(frozen=True)
class ParameterContext:
    """What a callable default receives (Metaflow's fields)."""

    flow_name: str
    user_name: str
    parameter_name: str
    logger: Callable[..., None]
    ds_type: str


_SIMPLE_TYPES: dict[Any, Callable[[Any], Any]] = {str: str, int: int, float: float}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


class Parameter:
    """A run input, exposed as a command line option of ``run`` and as ``self.<name>``."""

    IS_INCLUDE_FILE = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,  # noqa: A002 - Metaflow's keyword
        help: str | None = None,  # noqa: A002
        required: bool = False,
        show_default: bool = True,
        separator: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.default = default
        self.help = help
        self.required = required
        self.show_default = show_default
        self.separator = separator
        self.kwargs = kwargs
        self.type = self._infer_type(type, default)
        self._attr_name: str | None = None

    @staticmethod
    def _infer_type(explicit: Any, default: Any) -> Any:
        if explicit is not None:
            return explicit
        if default is None or callable(default):
            return str
        if isinstance(default, bool):
            return bool
        if isinstance(default, (int, float)):
            return type(default)
        if isinstance(default, (dict, list)):
            return JSONType
        return str

    # -- descriptor: self.alpha reads the run's value --------------------------------------
    def __set_name__(self, owner: type, attr: str) -> None:
        self._attr_name = attr

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._plait_parameter_value(self._attr_name or self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        raise ParameterAssignmentError(
            f"Parameter '{self.name}' cannot be assigned to: parameters are constant for the "
            f"whole run. Store the value in an artifact with another name instead."
        )

    # -- values ---------------------------------------------------------------------------
    @property
    def type_name(self) -> str:
        if self.type is JSONType:
            return "JSON"
        return getattr(self.type, "__name__", str(self.type))

    def resolve_default(self, ctx: ParameterContext) -> Any:
        value = self.default
        if callable(value) and not isinstance(value, type):
            value = value(ctx)
        return value

    def convert(self, value: Any) -> Any:
        """Turn a command line string (or a Python value from the Runner) into the typed value."""
        if value is None:
            return None
        try:
            if self.separator and isinstance(value, str):
                return [self._convert_one(v) for v in value.split(self.separator)]
            return self._convert_one(value)
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"Invalid value for parameter '{self.name}' (expects {self.type_name}): {exc}. "
                f"Pass e.g. --{self.name} <{self.type_name.lower()}>."
            ) from None

    def _convert_one(self, value: Any) -> Any:
        if self.type is JSONType:
            return JSONType.convert(value)
        if self.type is bool:
            return _to_bool(value)
        if self.type in _SIMPLE_TYPES:
            if self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            return _SIMPLE_TYPES[self.type](value)
        if hasattr(self.type, "convert"):
            return self.type.convert(value)
        return self.type(value)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, default={self.default!r}, type={self.type_name})"


class IncludeFile(Parameter):
    """A parameter whose value is the *content* of a local file, snapshotted into the run."""

    IS_INCLUDE_FILE = True

    def __init__(
        self,
        name: str,
        required: bool = False,
        is_text: bool = True,
        encoding: str = "utf-8",
        help: str | None = None,  # noqa: A002
        default: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, default=default, type=str, help=help, required=required, **kwargs)
        self.is_text = is_text
        self.encoding = encoding

    @property
    def type_name(self) -> str:
        return "PATH"

    def _convert_one(self, value: Any) -> Any:
        path = os.path.expanduser(str(value))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ValueError(f"cannot read file {path!r}: {exc.strerror}") from None
        return data.decode(self.encoding) if self.is_text else data


def flow_parameters(flow_cls: type) -> list[tuple[str, Parameter]]:
    """(attribute name, Parameter) for every parameter of a flow class, in definition order."""
    seen: dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter):
                seen[attr] = value
    return list(seen.items())


def resolve_parameters(flow_cls: type, given: dict[str, Any], ctx_factory: Callable[[str], ParameterContext]) -> dict[str, Any]:
    """Typed values for every parameter: given values converted, defaults filled, required
    ones checked. ``given`` is keyed by parameter name; unknown names are an error."""
    params = flow_parameters(flow_cls)
    by_name = {p.name: (attr, p) for attr, p in params}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ParameterError(
            f"Unknown parameter {', '.join(repr(u) for u in unknown)} for flow "
            f"{flow_cls.__name__} (its parameters: {known})."
        )
    values: dict[str, Any] = {}
    for attr, p in params:
        if p.name in given and given[p.name] is not None:
            values[attr] = p.convert(given[p.name])
            continue
        default = p.resolve_default(ctx_factory(p.name))
        if default is None:
            if p.required:
                raise ParameterError(
                    f"Parameter '{p.name}' of flow {flow_cls.__name__} is required: pass "
                    f"--{p.name} <{p.type_name.lower()}>."
                )
            values[attr] = None
        else:
            values[attr] = p.convert(default) if isinstance(default, str) or p.IS_INCLUDE_FILE else default
    return values
