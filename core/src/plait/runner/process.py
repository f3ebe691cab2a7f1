"""One launched ``run``/``resume`` command: its output capture and its run-id channel.

The run id arrives through a named pipe passed as ``--run-id-file``: the command writes the
id into it right after allocating the run, and we wake up on that write (``select``), so
the id is known as soon as the run exists, without looking into the datastore. Output is
copied by two threads into files (for ``stdout``/``stderr``/``stream_log``) and, when the
caller shows output, handed to the caller's thread to print (so a notebook shows it inline).
No signal handlers are installed: all of this works from any thread.
"""

from __future__ import annotations

import codecs
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

from plait.runner.flowfile import RunnerError

STREAMS = ("stdout", "stderr")


class LaunchedCommand:
    """A started command. ``echo=True`` queues its output for :meth:`pump_echo`."""

    def __init__(self, head: list[str], tail: list[str], env: dict[str, str], cwd: str, echo: bool) -> None:
        """Runs ``head + ["--run-id-file", CHANNEL] + tail``."""
        self.tmpdir = tempfile.mkdtemp(prefix="plait-runner-")
        self.id_path = os.path.join(self.tmpdir, "run-id")
        command = self.command = [*head, "--run-id-file", self.id_path, *tail]
        self.log_paths = {s: os.path.join(self.tmpdir, f"{s}.log") for s in STREAMS}
        self._snapshot: dict[str, bytes] | None = None
        self._id_fd = self._open_channel()
        self.echo: queue.Queue[tuple[str, bytes]] | None = queue.Queue() if echo else None
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        self.timed_out = False
        self._run_id: str | None = None
        for path in self.log_paths.values():
            open(path, "wb").close()
        try:
            self.proc = subprocess.Popen(
                command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.cleanup()
            raise RunnerError(f"Cannot start {command[0]}: {exc.strerror}.") from None
        self._pumps = [threading.Thread(target=self._pump, args=(s, pipe), daemon=True,
                                        name=f"plait-runner-{s}")
                       for s, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for t in self._pumps:
            t.start()

    def _open_channel(self) -> int | None:
        """A FIFO opened read+write (so it never reports end-of-file before the id arrives);
        where FIFOs do not exist, a plain file that is read once the command has written it."""
        if hasattr(os, "mkfifo"):
            os.mkfifo(self.id_path, 0o600)
            return os.open(self.id_path, os.O_RDWR | os.O_NONBLOCK)
        return None

    # -- output -------------------------------------------------------------------------------
    def _pump(self, stream: str, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        fd = pipe.fileno()
        with open(self.log_paths[stream], "ab") as out:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out.write(chunk)
                out.flush()
                if self.echo is not None:
                    self.echo.put((stream, chunk))
        pipe.close()

    @property
    def output_done(self) -> bool:
        return self.proc.poll() is not None and not any(t.is_alive() for t in self._pumps)

    def pump_echo(self, wait: float) -> None:
        """Print queued output in the calling thread (to its ``sys.stdout``/``sys.stderr``)."""
        if self.echo is None:
            time.sleep(wait)
            return
        try:
            item: tuple[str, bytes] | None = self.echo.get(timeout=wait)
        except queue.Empty:
            return
        while item is not None:
            stream, chunk = item
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write(self._decoders[stream].decode(chunk))
            out.flush()
            try:
                item = self.echo.get_nowait()
            except queue.Empty:
                item = None

    def text(self, stream: str) -> str:
        if self._snapshot is not None:
            return self._snapshot[stream].decode("utf-8", "replace")
        with open(self.log_paths[stream], "rb") as f:
            return f.read().decode("utf-8", "replace")

    # -- lifetime -----------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the command exited and its output is drained; False on timeout (then the
        command is killed and :attr:`timed_out` is set)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.output_done:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                self.timed_out = True
                self.kill()
                return False
            self.pump_echo(left)
        for t in self._pumps:
            t.join()
        self.pump_echo(0)
        return True

    def read_run_id(self, timeout: float) -> str | None:
        """The run id, waiting until the command writes it or exits (None if it never did)."""
        if self._run_id is not None:
            return self._run_id
        deadline = time.monotonic() + timeout
        data = b""
        while True:
            if self._id_fd is not None:
                ready, _, _ = select.select([self._id_fd], [], [], 0.1)
                if ready:
                    data += os.read(self._id_fd, 4096)
                    if data.strip():
                        break
            elif os.path.exists(self.id_path) and self.proc.poll() is not None:
                with open(self.id_path, "rb") as f:
                    data = f.read()
                break
            if self.proc.poll() is not None and self._id_fd is not None:
                try:
                    data += os.read(self._id_fd, 4096)
                except BlockingIOError:
                    pass
                break
            if self._id_fd is None:
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RunnerError(f"The run did not start within {timeout:g} s: {' '.join(self.command)}")
        text = data.decode("utf-8", "replace").strip()
        self._run_id = text or None
        return self._run_id

    def kill(self, grace: float = 5.0) -> None:
        """Stop the command and every task it started (its whole process group)."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def cleanup(self) -> None:
        """Kill the command if it still runs, keep its output in memory, remove temp files."""
        if getattr(self, "proc", None) is not None:
            self.kill()
            for t in self._pumps:
                t.join(5)
            if self._snapshot is None:
                self._snapshot = {s: self._read(s) for s in STREAMS}
        if self._id_fd is not None:
            os.close(self._id_fd)
            self._id_fd = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _read(self, stream: str) -> bytes:
        try:
            with open(self.log_paths[stream], "rb") as f:
                return f.read()
        except OSError:
            return b""
