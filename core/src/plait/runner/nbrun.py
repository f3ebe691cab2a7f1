"""NBRunner: run a flow class defined in a notebook, and get its Run back.

    NBRunner(MyFlow).nbrun(alpha=3)       # output shows in the cell; returns the Run

The class's cell is written to a flow file (see :mod:`plait.runner.cellsource`) in
``base_dir`` (default: the working directory, so the notebook's own modules import), which
the Runner then runs like any flow file. ``cleanup()`` (called by ``nbrun``) deletes it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from plait.runner.cellsource import NBRunnerInitializationError, flow_file_source
from plait.runner.executing import ExecutingRun
from plait.runner.runner import Runner


class NBRunner:
    """Run ``flow`` (a FlowSpec subclass) from a notebook. Same options as :class:`Runner`."""

    def __init__(self, flow: type, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, base_dir: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any) -> None:
        from plait.flowspec import FlowSpec

        if not (isinstance(flow, type) and issubclass(flow, FlowSpec)):
            raise NBRunnerInitializationError(
                f"NBRunner takes the flow class (a FlowSpec subclass), got {flow!r}.")
        self.flow = flow
        self.show_output = show_output
        self.base_dir = os.path.abspath(base_dir or os.getcwd())
        module = sys.modules.get(flow.__module__)
        module_file = getattr(module, "__file__", None)
        self._tmp_file: str | None = None
        if flow.__module__ != "__main__" and module_file and module_file.endswith(".py"):
            flow_file = module_file  # imported from a real module: run that file
        else:
            fd, flow_file = tempfile.mkstemp(prefix=f"{flow.__name__}_", suffix=".py", dir=self.base_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(flow_file_source(flow))
            self._tmp_file = flow_file
        self.flow_file = flow_file
        env_vars = dict(env or {})
        env_vars.setdefault("JPY_PARENT_PID", "")  # the child is not part of the kernel
        if os.environ.get("MPLBACKEND", "").startswith("module://matplotlib_inline"):
            env_vars.setdefault("MPLBACKEND", "Agg")  # the kernel's inline backend needs a kernel
        self.runner = Runner(flow_file, show_output=show_output, profile=profile, env=env_vars,
                             cwd=self.base_dir, file_read_timeout=file_read_timeout,
                             _flow_cls=flow if self._tmp_file else None, **kwargs)

    def __enter__(self) -> NBRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def nbrun(self, **kwargs: Any) -> Any:
        """Run the flow, wait for it, clean up, and return its client ``Run``."""
        try:
            return self.runner.run(**kwargs).run
        finally:
            self.cleanup()

    def nbresume(self, **kwargs: Any) -> Any:
        """Resume (``origin_run_id=``, ``step_to_rerun=``), wait, clean up; return the ``Run``."""
        try:
            return self.runner.resume(**kwargs).run
        finally:
            self.cleanup()

    def run(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.run(**kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.resume(**kwargs)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_run(**kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        """Stop what still runs and delete the generated flow file and temporary files."""
        self.runner.cleanup()
        if self._tmp_file is not None:
            try:
                os.unlink(self._tmp_file)
            except FileNotFoundError:
                pass
            self._tmp_file = None


__all__ = ["NBRunner", "NBRunnerInitializationError"]
