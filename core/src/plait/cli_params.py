"""Flow parameters as click options of ``run``, with their types and help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from plait.exceptions import ParameterError
from plait.parameters import JSONType, Parameter, flow_parameters


class _ConvertingType(click.ParamType):
    """A click type that defers to Parameter.convert, so CLI and Runner agree on errors."""

    def __init__(self, param: Parameter) -> None:
        self.param = param
        self.name = param.type_name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # Validate here (so click reports a bad value), but hand on the value as given:
        # resolve_parameters converts it once. Converting twice would read an IncludeFile's
        # content as a path, or parse a JSON string value a second time.
        try:
            self.param.convert(value)
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)
        return value


def _click_type(p: Parameter) -> Any:
    if p.IS_INCLUDE_FILE or p.type is JSONType or p.separator:
        return _ConvertingType(p)
    return {str: click.STRING, int: click.INT, float: click.FLOAT, bool: click.BOOL}.get(p.type, _ConvertingType(p))


def parameter_options(flow_cls: type) -> list[click.Option]:
    """One ``--name`` option per Parameter; values are None when not given."""
    options = []
    for _, p in flow_parameters(flow_cls):
        default = p.default
        show = p.show_default and default is not None and not callable(default)
        help_text = (p.help or "") + (f"  [default: {default}]" if show else "")
        options.append(click.Option(
            [f"--{p.name}", param_dest(p)], type=_click_type(p), default=None,
            required=p.required and default is None, help=help_text.strip() or None,
        ))
    return options


def param_dest(p: Parameter) -> str:
    """The click destination name of a parameter's option."""
    return "param__" + p.name.replace("-", "_")


def given_parameters(flow_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Parameter name -> value for the options the user passed."""
    return {p.name: values[param_dest(p)] for _, p in flow_parameters(flow_cls)
            if values.get(param_dest(p)) is not None}


def add_parameter_options(flow_cls: type) -> Callable[[click.Command], click.Command]:
    def deco(cmd: click.Command) -> click.Command:
        cmd.params.extend(parameter_options(flow_cls))
        return cmd

    return deco
