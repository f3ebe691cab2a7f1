"""The flow command line: ``python flow.py run|resume|show|check|dump|logs|tag|step``.

Built with click from the flow class, so each Parameter is an option of ``run`` with its
type and help. User errors print one message, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from plait.cli_params import add_parameter_options, given_parameters
from plait.exceptions import PlaitException
from plait.services import Settings

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class FlowState:
    """What the top-level options resolved to, shared by every command."""

    def __init__(self, flow_cls: type, flow_file: str, settings: Settings, with_: list[str],
                 environment: str | None, quiet: bool) -> None:
        self.flow_cls = flow_cls
        self.flow_file = flow_file
        self.settings = settings
        self.with_ = list(with_)
        self.environment = environment
        self.quiet = quiet
        self._graph: Any = None

    @property
    def graph(self) -> Any:
        if self._graph is None:
            self._graph = flow_graph(self.flow_cls)
        return self._graph

    def top_level_args(self) -> list[str]:
        args = self.settings.to_args()
        for spec in self.with_:
            args += ["--with", spec]
        if self.environment:
            args += ["--environment", self.environment]
        return args


class _FlowGroup(click.Group):
    """click turns any EPIPE into a silent ``exit 1``, assuming stdout was closed (``| head``).
    One from inside Plait (a socket to a helper process) must not vanish like that."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            if _stdout_gone():
                raise
            raise PlaitException(f"A connection inside Plait broke ({exc}), so the command stopped. "
                                 "This is a bug in Plait or one of its plugins: please report it, "
                                 "with the output above.") from exc


def _stdout_gone() -> bool:
    """Is standard output a pipe whose reader has gone (what click's EPIPE handling is for)?"""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


_graphs: dict[type, Any] = {}
_clis: dict[tuple[type, str], click.Group] = {}


def flow_graph(flow_cls: type) -> Any:
    """The flow's linted graph, built once per process (and inherited by forked tasks: a fork
    server that built it spares every task the parse of the flow's source)."""
    graph = _graphs.get(flow_cls)
    if graph is None:
        from plait.graph import FlowGraph
        from plait.lint import lint

        graph = FlowGraph(flow_cls)
        lint(graph)
        _graphs[flow_cls] = graph
    return graph


def build_cli(flow_cls: type, flow_file: str) -> click.Group:
    """The flow's click group, built once per process (like :func:`flow_graph`)."""
    key = (flow_cls, flow_file)
    if key not in _clis:
        _clis[key] = _build_cli(flow_cls, flow_file)
    return _clis[key]


def _build_cli(flow_cls: type, flow_file: str) -> click.Group:
    @click.group(cls=_FlowGroup, context_settings=CONTEXT, help=(flow_cls.__doc__ or f"The {flow_cls.__name__} flow.").strip())
    @click.option("--datastore", default=None, help="Where artifacts go (local, or a plugin's, e.g. s3). Env: PLAIT_DATASTORE.")
    @click.option("--datastore-root", default=None, help="Root of the datastore. Env: PLAIT_DATASTORE_ROOT.")
    @click.option("--metadata", default=None, help="Metadata provider (local). Env: PLAIT_METADATA.")
    @click.option("--environment", default=None, help="Environment manager for steps (a plugin's, e.g. uv).")
    @click.option("--with", "with_", multiple=True, help="Add a decorator to every step, e.g. --with retry:times=2.")
    @click.option("--quiet/--not-quiet", default=False, help="Print less.")
    @click.option("--no-pylint", is_flag=True, hidden=True, help="Accepted for Metaflow compatibility.")
    @click.pass_context
    def cli(ctx: click.Context, datastore: str | None, datastore_root: str | None, metadata: str | None,
            environment: str | None, with_: tuple[str, ...], quiet: bool, no_pylint: bool) -> None:
        ctx.obj = FlowState(flow_cls, flow_file, Settings.resolve(datastore, datastore_root, metadata),
                            list(with_), environment, quiet)

    from plait.cli_commands import register_commands

    register_commands(cli, add_parameter_options(flow_cls), given_parameters)
    from plait.plugins import get_plugin_manager

    for record in get_plugin_manager().registry("cli_commands").values():
        cli.add_command(record.load())
    return cli


def run_flow_cli(flow_cls: type, argv: list[str] | None = None, flow_file: str | None = None) -> NoReturn:
    """Run the CLI for ``flow_cls`` and exit the process with its status."""
    import inspect

    flow_file = os.path.abspath(flow_file or inspect.getfile(flow_cls))
    try:
        cli = build_cli(flow_cls, flow_file)
        cli.main(args=argv if argv is not None else sys.argv[1:], prog_name=os.path.basename(flow_file),
                 standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PlaitException as exc:
        click.secho(f"{exc.headline}:", fg="red", bold=True, err=True, nl=False)
        click.echo(f" {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted: the run was stopped and its running tasks killed.", err=True)
        sys.exit(130)
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    """The ``plait`` console command: ``plait plugins`` or ``plait COMMAND FLOW_FILE [ARGS]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        click.echo(
            "Usage: plait COMMAND FLOW_FILE [ARGS]...   (e.g. plait run flow.py --alpha 3)\n"
            "       plait plugins                        list installed plugins\n\n"
            "COMMAND is any flow command: run, resume, show, check, dump, logs, tag, ..."
        )
        sys.exit(0)
    if args[0] == "plugins":
        _print_plugins()
        sys.exit(0)
    if args[0] == "_flow" and len(args) >= 2:  # the task command: flow file, then its argv as is
        from plait.loader import exec_flow_file

        exec_flow_file(args[1], args[2:])
    if args[0] == "--version":
        from plait.version import __version__

        click.echo(f"plait {__version__}")
        sys.exit(0)
    if len(args) < 2:
        click.echo(f"plait {args[0]}: give the flow file, e.g. plait {args[0]} flow.py", err=True)
        sys.exit(2)
    command, flow_file, rest = args[0], args[1], args[2:]
    from plait.loader import exec_flow_file

    exec_flow_file(flow_file, [command, *rest])


def _print_plugins() -> None:
    from plait.plugins import get_plugin_manager

    try:
        pm = get_plugin_manager()
    except PlaitException as exc:
        click.echo(f"{exc.headline}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{'plugin':<24} {'distribution':<22} {'version':<10} provides")
    kinds = ("step_decorators", "flow_decorators", "datastores", "metadata_providers",
             "compute_backends", "environments", "cli_commands", "serializers")
    for info in pm.plugins:
        provides = []
        for kind in kinds:
            names = [r.name for r in pm.registry(kind).values() if r.plugin == info.distribution
                     and (info.builtin or not _is_builtin_record(r))]
            if names:
                provides.append(f"{kind.replace('_', ' ')}: {', '.join(sorted(names))}")
        dist = info.distribution + (" (built-in)" if info.builtin else "")
        click.echo(f"{info.name:<24} {dist:<22} {info.version:<10} {'; '.join(provides)}")


def _is_builtin_record(record: Any) -> bool:
    return str(record.ref).startswith("plait.")
