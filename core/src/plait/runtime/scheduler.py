"""The local runtime loop: launch tasks in graph order, watch them, retry, join, finish.

Single-threaded by design (tasks are forked from this process): one ``select`` over every
running task's output and exit descriptors drives everything.
"""

from __future__ import annotations

import heapq
import os
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from plait.datastore.types import AttemptIndex
from plait.exceptions import PlaitException
from plait.runtime.compute import ComputeBackend, TaskHandle
from plait.runtime.context import RunContext, TaskSpec
from plait.runtime.decorators import retry_limits, step_decorators
from plait.runtime.logs import AttemptLog, console_time
from plait.runtime.resume import ResumePlan
from plait.runtime.task import PARAMETERS_STEP, execute_task


class Frame(NamedTuple):
    """One open split on a task's path: who split, how wide, and which branch this is."""

    step: str
    task_id: str
    width: int
    position: int


@dataclass
class Pending:
    spec: TaskSpec
    stack: tuple[Frame, ...]
    not_before: float = 0.0


@dataclass
class Running:
    pending: Pending
    handle: TaskHandle
    log: AttemptLog
    started: float
    hard_deadline: float | None
    open_streams: set[int] = field(default_factory=set)
    index: AttemptIndex | None = None


@dataclass
class JoinWait:
    expected: int
    arrived: dict[int, str] = field(default_factory=dict)  # position -> "run/step/task"


class Scheduler:
    """Drives one run to completion. ``run()`` returns True when every task succeeded."""

    def __init__(self, ctx: RunContext, hook: Any, backends: Callable[[str], ComputeBackend],
                 max_workers: int, max_num_splits: int, echo: bool = True,
                 resume: ResumePlan | None = None) -> None:
        self.ctx = ctx
        self.hook = hook
        self.backends = backends
        self.max_workers = max(1, max_workers)
        self.max_num_splits = max_num_splits
        self.echo = echo
        self.resume = resume
        self.queue: deque[Pending] = deque()
        self.delayed: list[tuple[float, int, Pending]] = []
        self.running: dict[int, Running] = {}  # keyed by a launch counter
        self.fd_owner: dict[int, int] = {}
        self.joins: dict[tuple[Any, ...], JoinWait] = {}
        self.visits: dict[tuple[str, str], int] = {}
        self.next_task_id = 1
        self.launches = 0
        self.failed: list[str] = []
        self.selector = selectors.DefaultSelector()

    # -- public -----------------------------------------------------------------------------
    def run(self, parameters_path: str) -> bool:
        self.hook.plait_runtime_init(run=self.ctx)
        self._enqueue("start", [parameters_path], (), None)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.queue or self.delayed or self.running:
                self._launch_ready()
                self._wait()
        except BaseException:
            self._kill_all()
            raise
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.selector.close()
            self.backends("local").shutdown()
        return not self.failed

    # -- creating tasks ---------------------------------------------------------------------
    def _enqueue(self, step: str, inputs: list[str], stack: tuple[Frame, ...], split_index: int | None) -> None:
        positions = ".".join(str(f.position) for f in stack)
        visit = self.visits.get((step, positions), 0)
        self.visits[(step, positions)] = visit + 1
        key = positions + (f"#{visit}" if visit else "")
        user_retries, _ = retry_limits(self.ctx.flow_cls, step)
        spec = TaskSpec(
            flow=self.ctx.flow_name, run_id=self.ctx.run_id, step=step, task_id=str(self.next_task_id),
            input_paths=inputs, split_index=split_index, foreach_key=key, max_user_retries=user_retries,
            max_num_splits=self.max_num_splits, origin_run_id=self.ctx.origin_run_id,
            tags=list(self.ctx.tags), user=self.ctx.user, namespace=self.ctx.extra.get("namespace"),
        )
        self.next_task_id += 1
        self.queue.append(Pending(spec, stack))

    def _launch_ready(self) -> None:
        now = time.time()
        while self.delayed and self.delayed[0][0] <= now:
            self.queue.append(heapq.heappop(self.delayed)[2])
        while self.queue and len(self.running) < self.max_workers and not self.failed:
            pending = self.queue.popleft()
            if self.resume is not None:
                origin = self.resume.clone_source(pending.spec)
                if origin is not None:
                    self._clone(pending, origin)
                    continue
            self._launch(pending)
        if self.failed:
            self.queue.clear()
            self.delayed.clear()
        elif self.queue:  # fork the next tasks' processes while the current ones run
            self.backends("local").prepare(self._run_task, min(len(self.queue), self.max_workers))

    def _launch(self, pending: Pending) -> None:
        spec = pending.spec
        self.hook.plait_runtime_task_created(run=self.ctx, task=spec)
        decorators = step_decorators(self.ctx.flow_cls, spec.step)
        backend_name = next((d.compute_backend for d in decorators if d.compute_backend), "local")
        command = [sys.executable, "-m", "plait", "_flow", self.ctx.flow_file, *self.ctx.top_level_args,
                   "step", *spec.to_args(), "--scheduled"]
        md = self.ctx.metadata
        md.new_task(spec.flow, spec.run_id, spec.step, spec.task_id, spec.foreach_key, spec.input_paths)
        md.start_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count)
        replaced = [c for c in self.hook.plait_task_command(run=self.ctx, task=spec, command=command) if c]
        in_process = None
        if replaced:
            command = replaced[0]
        elif backend_name == "local":
            in_process = self._run_task
        handle = self.backends(backend_name).launch(self.ctx, spec, command, {}, in_process)
        prefix = f"[{spec.run_id}/{spec.step}/{spec.task_id} (pid {handle.pid})]"
        log = AttemptLog(prefix, echo=self.echo)
        hard = [t for t in (d.hard_timeout() for d in decorators) if t]
        now = time.time()
        self.launches += 1
        running = Running(pending, handle, log, now, now + min(hard) if hard else None)
        self.running[self.launches] = running
        for fd in handle.streams():
            self.selector.register(fd, selectors.EVENT_READ, self.launches)
            running.open_streams.add(fd)
        exit_fd = handle.exit_fd()
        if exit_fd is not None:
            self.selector.register(exit_fd, selectors.EVENT_READ, self.launches)
        retry = f" (retry {spec.retry_count})" if spec.retry_count else ""
        self._say(f"{prefix} Task is starting{retry}.")

    def _run_task(self, spec: TaskSpec) -> int:
        """What a forked task process runs (the ``step`` command runs the same function)."""
        ctx = self.ctx
        return execute_task(ctx.flow_cls, ctx.graph, spec, ctx.datastore, ctx.metadata, self.hook,
                            record_metadata=False)

    # -- watching ---------------------------------------------------------------------------
    def _wait(self) -> None:
        if not self.running:
            if self.delayed:
                time.sleep(max(0.0, min(1.0, self.delayed[0][0] - time.time())))
            return
        timeout = 0.5
        if self.delayed:
            timeout = min(timeout, max(0.0, self.delayed[0][0] - time.time()))
        for key, _ in self.selector.select(timeout):
            run = self.running.get(key.data)
            if run is None:
                continue
            if key.fd in run.open_streams:
                self._read(run, key.fd)
        now = time.time()
        for launch_id, run in list(self.running.items()):
            if run.hard_deadline is not None and now > run.hard_deadline:
                self._say(f"{run.log.prefix} Killing the task: it exceeded its timeout.")
                run.handle.kill()
                run.hard_deadline = None
            code = run.handle.poll()
            if code is not None:
                self._finish(launch_id, run, code)

    def _read(self, run: Running, fd: int) -> str:
        """Read what is available: "data", "empty" (nothing now) or "eof" (stream closed)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return "empty"
        if data:
            run.log.feed(run.handle.streams()[fd], data)
            return "data"
        self.selector.unregister(fd)
        run.open_streams.discard(fd)
        return "eof"

    def _finish(self, launch_id: int, run: Running, code: int) -> None:
        for fd in list(run.open_streams):
            while self._read(run, fd) == "data":  # drain what the task wrote before it exited
                pass
            if fd in run.open_streams:  # still open: a process the task started holds it
                self.selector.unregister(fd)
                run.open_streams.discard(fd)
        exit_fd = run.handle.exit_fd()
        if exit_fd is not None:
            self.selector.unregister(exit_fd)
        run.handle.close()
        run.log.close()
        del self.running[launch_id]
        spec = run.pending.spec
        ds = self.ctx.datastore
        for stream in ("stdout", "stderr"):
            data = run.log.data(stream)
            if data:  # an absent log reads as empty: skip two writes for quiet tasks
                ds.save_log(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count, stream, data)
        index = ds.read_index(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count)
        if index is not None:
            self.ctx.metadata.finish_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count,
                                             index.success, index.exception, index.metadata)
        if index is not None and index.success:
            self._say(f"{run.log.prefix} Task finished successfully.")
            self._succeeded(run.pending, index)
            return
        run.index = index
        self._failed(run, code)

    def _failed(self, run: Running, code: int) -> None:
        spec = run.pending.spec
        if code < 0:
            why = f"killed by signal {signal.Signals(-code).name}"
        elif code == 0:
            why = "exited without committing its outputs"
        else:
            why = f"exit code {code}"
        if run.index is None:  # no committed attempt: record why here
            self.ctx.metadata.finish_attempt(spec.flow, spec.run_id, spec.step, spec.task_id,
                                             spec.retry_count, False, f"Task {why}.")
        user, fallback = retry_limits(self.ctx.flow_cls, spec.step)
        if spec.retry_count < user + fallback:
            decorators = step_decorators(self.ctx.flow_cls, spec.step)
            delay = max([d.retry_delay(spec.retry_count + 1) for d in decorators] or [0.0])
            if spec.retry_count >= user:
                delay = 0.0  # the fallback attempt of @catch runs at once
            self._say(f"{run.log.prefix} Task failed ({why}). Retrying" + (f" in {delay:g}s." if delay else "."))
            retry = Pending(TaskSpec(**{**spec.__dict__, "retry_count": spec.retry_count + 1}), run.pending.stack)
            heapq.heappush(self.delayed, (time.time() + delay, self.launches, retry))
            return
        self._say(f"{run.log.prefix} Task failed ({why}).", err=True)
        self.failed.append(spec.pathspec)

    # -- graph bookkeeping ------------------------------------------------------------------
    def _succeeded(self, pending: Pending, index: AttemptIndex) -> None:
        spec, stack = pending.spec, pending.stack
        control = index.control
        node = self.ctx.graph[spec.step]
        me = f"{spec.run_id}/{spec.step}/{spec.task_id}"
        targets: list[str] = list(control.get("next", []))
        if "foreach_num_splits" in control:
            num = int(control["foreach_num_splits"])
            if num == 0:
                self._say(f"[{me}] Foreach over '{control.get('foreach_var')}' is empty: nothing to run after it.", err=True)
                self.failed.append(spec.pathspec)
                return
            self._say(f"[{me}] Foreach yields {num} child steps.")
            for i in range(num):
                self._enqueue(targets[0], [me], stack + (Frame(spec.step, spec.task_id, num, i),), i)
            return
        split = node.type == "split"
        for position, target in enumerate(targets):
            if self.ctx.graph[target].is_join:
                self._arrive(target, me, stack)
            elif split:
                self._enqueue(target, [me], stack + (Frame(spec.step, spec.task_id, len(targets), position),), None)
            else:
                self._enqueue(target, [me], stack, None)

    def _arrive(self, join: str, path: str, stack: tuple[Frame, ...]) -> None:
        if not stack:
            raise PlaitException(f"Internal error: task {path} reached join '{join}' outside any split.")
        top = stack[-1]
        key = (join, stack[:-1], top.step, top.task_id)
        wait = self.joins.setdefault(key, JoinWait(top.width))
        wait.arrived[top.position] = path
        if len(wait.arrived) == wait.expected:
            del self.joins[key]
            inputs = [wait.arrived[p] for p in sorted(wait.arrived)]
            self._enqueue(join, inputs, stack[:-1], None)

    # -- resume -----------------------------------------------------------------------------
    def _clone(self, pending: Pending, origin: AttemptIndex) -> None:
        spec = pending.spec
        ds, md = self.ctx.datastore, self.ctx.metadata
        origin_path = f"{origin.flow}/{origin.run_id}/{origin.step}/{origin.task_id}"
        md.new_task(spec.flow, spec.run_id, spec.step, spec.task_id, spec.foreach_key, spec.input_paths,
                    cloned_from=origin_path)
        md.start_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, 0)
        clone = AttemptIndex(spec.flow, spec.run_id, spec.step, spec.task_id, 0, dict(origin.artifacts),
                             dict(origin.control), True, time.time(), origin=origin_path)
        ds.write_index(clone)
        for stream in ("stdout", "stderr"):
            data = ds.load_log(origin.flow, origin.run_id, origin.step, origin.task_id, origin.attempt, stream)
            if data:
                ds.save_log(spec.flow, spec.run_id, spec.step, spec.task_id, 0, stream, data)
        md.finish_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, 0, True)
        self._say(f"[{spec.run_id}/{spec.step}/{spec.task_id}] Cloned from {origin_path} (not re-run).")
        self._succeeded(pending, clone)

    # -- shutdown ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._kill_all()
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    def _kill_all(self) -> None:
        for run in self.running.values():
            run.handle.kill()
        for run in self.running.values():
            while run.handle.poll() is None:
                time.sleep(0.01)
            run.handle.close()
        self.running.clear()

    def _say(self, text: str, err: bool = False) -> None:
        if self.echo or err:
            out = sys.stderr if err else sys.stdout
            out.write(f"{console_time()} {text}\n")
            out.flush()


PARAMETERS_TASK_ID = "0"
__all__ = ["Scheduler", "PARAMETERS_STEP", "PARAMETERS_TASK_ID"]
