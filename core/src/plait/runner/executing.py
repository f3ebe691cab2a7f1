"""ExecutingRun: a run started by the Runner, with its client ``Run`` and its process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.client.objects import Run
    from plait.runner.process import LaunchedCommand
    from plait.runner.runner import Runner


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ExecutingRun:
    """A run the Runner started: ``.run`` (the client Run), ``.status``, ``.returncode``,
    ``.stdout``/``.stderr`` (so far), ``wait()``, ``stream_log()``. A context manager: leaving
    it cleans the Runner up (a run still going is stopped)."""

    def __init__(self, runner: Runner, command: LaunchedCommand, run: Run) -> None:
        self.runner = runner
        self.command_obj = command
        self.run = run

    def __enter__(self) -> ExecutingRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runner.cleanup()

    async def __aenter__(self) -> ExecutingRun:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.runner.cleanup()

    # -- state --------------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        """The command's exit code; None while it runs."""
        return self.command_obj.proc.poll()

    @property
    def status(self) -> str:
        """``running``, ``successful``, ``failed``, or ``timeout`` (stopped by ``wait(timeout=)``)."""
        if self.command_obj.timed_out:
            return "timeout"
        code = self.command_obj.proc.poll()
        if code is None:
            return "running"
        return "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """What the command printed to stdout so far (all of it once it finished)."""
        return self.command_obj.text("stdout")

    @property
    def stderr(self) -> str:
        return self.command_obj.text("stderr")

    def kill(self) -> None:
        """Stop the run now (the command and every task it started)."""
        self.command_obj.kill()

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None, stream: str | None = None) -> Any:
        """Wait for the run to finish. If ``timeout`` passes first the run is stopped and its
        status becomes ``timeout``. ``stream="stdout"|"stderr"`` prints that stream meanwhile.

        As in Metaflow, ``await running.wait()`` inside async code (a notebook cell, an event
        loop). Called where no event loop runs, it blocks and returns this object.
        """
        if _in_event_loop():
            return self._async_wait(timeout, stream)
        self._sync_wait(timeout, stream)
        return self

    def _sync_wait(self, timeout: float | None, stream: str | None) -> None:
        if stream is None:
            self.command_obj.wait(timeout)
            return

        async def follow() -> None:
            await self._async_wait(timeout, stream)

        asyncio.run(follow())

    async def _async_wait(self, timeout: float | None, stream: str | None) -> ExecutingRun:
        async def printer() -> None:
            if stream is None:
                return
            async for _, line in self.stream_log(stream):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

        task = asyncio.ensure_future(printer())
        done = await asyncio.to_thread(self.command_obj.wait, timeout)
        if not done:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return self

    async def stream_log(self, stream: str, position: int | None = None) -> AsyncIterator[tuple[int, str]]:
        """``(position, line)`` for each line the command prints to ``stream``, as it prints it,
        until it exits. ``position`` is a byte offset: pass it back to resume from there."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}")
        path = self.command_obj.log_paths[stream]
        pos = position or 0
        while True:
            done = self.command_obj.output_done  # read before the file: no line can slip past
            try:
                with open(path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:  # cleaned up
                return
            end = data.rfind(b"\n")
            if end >= 0:
                for line in data[: end + 1].splitlines(keepends=True):
                    pos += len(line)
                    yield pos, line.rstrip(b"\r\n").decode("utf-8", "replace")
                continue
            if done:
                if data:
                    yield pos + len(data), data.decode("utf-8", "replace")
                return
            await asyncio.sleep(0.05)

    def __repr__(self) -> str:
        return f"ExecutingRun({self.run!r}, status={self.status!r})"
