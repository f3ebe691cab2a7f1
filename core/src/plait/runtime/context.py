"""The records passed between the scheduler, compute backends, the task runner and hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.datastore.flow_store import FlowDataStore
    from plait.decorators import StepDecorator
    from plait.flowspec import FlowSpec
    from plait.graph import FlowGraph
    from plait.metadata.provider import MetadataProvider


@dataclass
class TaskSpec:
    """One task to run: everything a self-contained task command needs as arguments."""

    flow: str
    run_id: str
    step: str
    task_id: str
    input_paths: list[str]  # "run_id/step/task_id" of each parent task
    split_index: int | None = None  # position in the parent's foreach, when it is one
    foreach_key: str = ""  # identity within the run, what resume matches on
    retry_count: int = 0
    max_user_retries: int = 0
    max_num_splits: int = 100
    origin_run_id: str | None = None
    tags: list[str] = field(default_factory=list)
    user: str = ""
    namespace: str | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}/{self.step}/{self.task_id}"

    def to_args(self) -> list[str]:
        """The ``step`` command's arguments that rebuild this spec in another process."""
        args = [self.step, "--run-id", self.run_id, "--task-id", self.task_id,
                "--input-paths", ",".join(self.input_paths), "--retry-count", str(self.retry_count),
                "--max-user-retries", str(self.max_user_retries),
                "--max-num-splits", str(self.max_num_splits), "--foreach-key", self.foreach_key,
                "--user", self.user]
        if self.split_index is not None:
            args += ["--split-index", str(self.split_index)]
        if self.origin_run_id:
            args += ["--origin-run-id", self.origin_run_id]
        if self.namespace is not None:
            args += ["--namespace", self.namespace]
        for tag in self.tags:
            args += ["--tag", tag]
        return args


@dataclass
class RunContext:
    """What the scheduler knows about the run it drives; passed to runtime hooks."""

    flow_cls: type[FlowSpec]
    graph: FlowGraph
    run_id: str
    datastore: FlowDataStore
    metadata: MetadataProvider
    flow_file: str
    user: str
    tags: list[str] = field(default_factory=list)
    origin_run_id: str | None = None
    top_level_args: list[str] = field(default_factory=list)  # re-passed to task commands
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flow_name(self) -> str:
        return self.flow_cls.__name__


@dataclass
class TaskContext:
    """What a task knows while it runs; passed to task-side hooks and decorators."""

    spec: TaskSpec
    flow: FlowSpec
    graph: FlowGraph
    datastore: FlowDataStore
    metadata: MetadataProvider
    decorators: list[StepDecorator]
    is_fallback: bool = False  # the extra attempt @catch asks for after a crash
    exception: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def step_name(self) -> str:
        return self.spec.step

    @property
    def retry_count(self) -> int:
        return self.spec.retry_count
