"""Python keyword arguments -> the flow's command line, checked before anything launches.

Parameters are checked with the flow's own ``Parameter.convert`` (what the CLI would say,
said before a process starts); run and top-level options are checked against the click
options the flow's command line really has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from plait.exceptions import ParameterError
from plait.parameters import JSONType, Parameter, flow_parameters

#: Metaflow's keyword names for options Plait spells differently.
ALIASES = {"decospecs": "with_", "tag": "tags", "pylint": "no_pylint"}
#: Options the Runner sets itself.
RESERVED = {"run_id_file"}


def _options(command: Any) -> dict[str, Any]:
    """click option dest -> option, without the flow's parameters and what the Runner owns."""
    import click

    return {p.name: p for p in command.params if isinstance(p, click.Option)
            and not p.name.startswith("param__") and p.name not in RESERVED}


def _flag_args(opt: Any, value: Any, key: str) -> list[str]:
    if key == "pylint":  # Metaflow's pylint=False -> --no-pylint
        return [] if value else opt.opts[:1]
    if value:
        return opt.opts[:1]
    return opt.secondary_opts[:1]


def option_args(command: Any, values: dict[str, Any], where: str) -> list[str]:
    """``--opt value`` arguments for click ``command``; unknown names or bad values raise."""
    import click

    options = _options(command)
    args: list[str] = []
    for key, value in values.items():
        name = ALIASES.get(key, key)
        opt = options.get(name)
        if opt is None:
            known = ", ".join(sorted(options)) or "none"
            raise ParameterError(f"Unknown option '{key}' for {where} (known: {known}).")
        if value is None:
            continue
        if opt.is_flag:
            args += _flag_args(opt, value, key)
            continue
        items = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
        if not opt.multiple and len(items) != 1:
            raise ParameterError(f"Option '{key}' of {where} takes one value, got {value!r}.")
        for item in items:
            try:
                opt.type.convert(item, opt, None)
            except click.BadParameter as exc:
                raise ParameterError(f"Invalid value for option '{key}' of {where}: {exc.message}") from None
            args += [opt.opts[0], _text(item)]
    return args


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parameter_arg(p: Parameter, value: Any, cwd: str) -> str:
    """The command line text for one parameter value, after checking it converts."""
    if p.IS_INCLUDE_FILE:
        path = os.path.join(cwd, os.path.expanduser(os.fspath(value)))
        p.convert(path)  # raises if it cannot be read
        return os.path.abspath(path)
    if p.type is JSONType:
        text = value if isinstance(value, str) else json.dumps(value)
        p.convert(text)
        return text
    if p.separator:
        text = p.separator.join(_text(v) for v in value) if isinstance(value, (list, tuple)) else _text(value)
        p.convert(text)
        return text
    converted = p.convert(value)
    if p.type is bool:
        return _text(converted)
    if p.type in (int, float):
        return repr(converted)
    return _text(value)


def split_kwargs(flow_cls: type, kwargs: dict[str, Any], command: Any, cwd: str,
                 where: str, parameters: bool = True) -> tuple[list[str], list[str]]:
    """(option args, parameter args) for ``kwargs`` given to ``Runner.run``/``resume``."""
    by_name: dict[str, Parameter] = {}
    for _, p in flow_parameters(flow_cls) if parameters else []:
        by_name[p.name] = p
        by_name.setdefault(p.name.replace("-", "_"), p)
    options = _options(command)
    given: dict[str, Any] = {}
    option_values: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in by_name:
            given[by_name[key].name] = value
        elif ALIASES.get(key, key) in options:
            option_values[key] = value
        else:
            params = ", ".join(sorted({p.name for p in by_name.values()})) or "none"
            raise ParameterError(
                f"Unknown argument '{key}' for {where} of {flow_cls.__name__}: its parameters are "
                f"{params}; options are {', '.join(sorted(options))}.")
    param_args: list[str] = []
    for _, p in flow_parameters(flow_cls) if parameters else []:
        value = given.get(p.name)
        if value is None:
            if p.required and p.default is None:
                raise ParameterError(f"Parameter '{p.name}' of flow {flow_cls.__name__} is required: "
                                     f"pass {p.name.replace('-', '_')}=... to {where}.")
            continue
        param_args += [f"--{p.name}", parameter_arg(p, value, cwd)]
    return option_args(command, option_values, where), param_args
