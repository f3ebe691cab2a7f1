"""Runner: run and resume flows from Python, as Metaflow's Runner does.

    with Runner("flow.py", show_output=False).run(alpha=3) as running:
        print(running.status, running.run.data.result)

Each run is the flow's real command line (``python -m plait _flow flow.py ... run ...``) in a
child process; its parameters and options are checked here first.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from plait.runner.args import option_args, split_kwargs
from plait.runner.executing import ExecutingRun
from plait.runner.flowfile import RunnerError, build_click, child_settings, load_flow_class
from plait.runner.process import LaunchedCommand

if TYPE_CHECKING:
    from plait.flowspec import FlowSpec


class Runner:
    """Run ``flow_file`` from Python.

    ``show_output``: echo the run's output while a blocking ``run``/``resume`` waits.
    ``env``: extra environment variables for the run; ``cwd``: its working directory
    (default: the current one). Other keywords are the options that go before the command
    (``datastore=``, ``datastore_root=``, ``metadata=``, ``environment=``, ``with_=[...]``,
    ``quiet=``, ``pylint=``). ``profile=`` picks ``~/.plaitconfig/config_<profile>.json``.
    """

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 file_read_timeout: int = 3600, *, _flow_cls: type[FlowSpec] | None = None,
                 **top_level_options: Any) -> None:
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.flow_file = os.path.abspath(flow_file)  # relative to this process's directory, as in Metaflow
        self.show_output = show_output
        self.file_read_timeout = file_read_timeout
        self.env_vars = dict(os.environ)
        self.env_vars.update({str(k): str(v) for k, v in (env or {}).items()})
        self.env_vars.setdefault("PYTHONUNBUFFERED", "1")
        if profile:
            self.env_vars["PLAIT_PROFILE"] = profile
        self.top_level_options = dict(top_level_options)
        self.flow_cls = _flow_cls or load_flow_class(self.flow_file)
        self._cli = build_click(self.flow_cls, self.flow_file)
        self._top_args = option_args(self._cli, self.top_level_options, "Runner()")
        self._settings = child_settings(self.env_vars, self.cwd, self.top_level_options)
        self._commands: list[LaunchedCommand] = []

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Stop runs that are still going and delete the temporary files of every run."""
        for command in self._commands:
            command.cleanup()

    # -- launching ------------------------------------------------------------------------------
    def _start(self, command_name: str, kwargs: dict[str, Any], echo: bool) -> LaunchedCommand:
        """Check every argument, then launch the command with the run-id channel."""
        kwargs = dict(kwargs)
        where = f"Runner.{command_name}()"
        rerun: list[str] = []
        if command_name == "resume":
            step = kwargs.pop("step_to_rerun", None) or kwargs.pop("step", None)
            rerun = [str(step)] if step else []
        options, params = split_kwargs(self.flow_cls, kwargs, self._cli.commands[command_name], self.cwd,
                                       where, parameters=command_name == "run")
        head = [sys.executable, "-m", "plait", "_flow", self.flow_file, *self._top_args, command_name, *rerun]
        launched = LaunchedCommand(head, [*options, *params], self.env_vars, self.cwd, echo)
        self._commands.append(launched)
        return launched

    def _executing(self, launched: LaunchedCommand, wait: bool) -> ExecutingRun:
        from plait.client.objects import Run
        from plait.client.store import store_for

        if wait:
            try:
                launched.wait()
            except BaseException:  # interrupted (Ctrl-C in a notebook): do not leave the run behind
                launched.kill()
                raise
        run_id = launched.read_run_id(self.file_read_timeout)
        if run_id is None:
            launched.wait()
            raise RunnerError(
                f"The flow did not start (exit code {launched.proc.returncode}):\n"
                f"{launched.text('stderr').strip() or launched.text('stdout').strip()}")
        run = Run(f"{self.flow_cls.__name__}/{run_id}", _namespace_check=False,
                  _store=store_for(self._settings))
        return ExecutingRun(self, launched, run)

    def run(self, **kwargs: Any) -> ExecutingRun:
        """Run the flow and wait for it to finish. Keywords are the flow's parameters and the
        options of ``run`` (``tags=[...]``, ``max_workers=``, ``max_num_splits=``, ...)."""
        return self._executing(self._start("run", kwargs, self.show_output), wait=True)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resume a run and wait for it: ``origin_run_id=``, ``step_to_rerun=``, ``tags=``, ..."""
        return self._executing(self._start("resume", kwargs, self.show_output), wait=True)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """Start the flow; return as soon as its run exists (``await running.wait()`` later)."""
        launched = self._start("run", kwargs, False)
        return await asyncio.to_thread(self._executing, launched, False)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        launched = self._start("resume", kwargs, False)
        return await asyncio.to_thread(self._executing, launched, False)
