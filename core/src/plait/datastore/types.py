"""Plain records the datastore reads and writes. JSON-serialisable by design."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArtifactRef:
    """Where one artifact's value lives.

    ``sha`` is the content hash (hex sha256) of the serialized bytes, which is also the blob key.
    Small values are kept ``inline`` (base64 text inside the attempt index) instead of as a blob.
    """

    sha: str
    size: int  # serialized size in bytes
    encoding: str  # serializer name, e.g. "pickle5", "raw-bytes"
    type: str = ""  # qualified type name of the value, for display
    inline: str | None = None  # base64 of the serialized bytes, for small values

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sha": self.sha, "size": self.size, "encoding": self.encoding, "type": self.type}
        if self.inline is not None:
            d["inline"] = self.inline
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArtifactRef:
        return cls(d["sha"], d["size"], d["encoding"], d.get("type", ""), d.get("inline"))


@dataclass
class AttemptIndex:
    """Everything one task attempt produced. Writing it is the attempt's commit point.

    ``control`` carries what the scheduler needs to continue the graph:
    ``{"next": ["a", "b"], "foreach_num_splits": 3, "switch_value": "x", "foreach_var": "items"}``.
    ``origin`` is set when the attempt was cloned from another run by ``resume``.
    """

    flow: str
    run_id: str
    step: str
    task_id: str
    attempt: int
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)
    control: dict[str, Any] = field(default_factory=dict)
    success: bool = True
    finished_at: float = 0.0
    origin: str | None = None  # pathspec "Flow/run/step/task" this attempt was cloned from
    started_at: float = 0.0
    exception: str | None = None  # the user-facing error text of a failed attempt
    metadata: dict[str, Any] = field(default_factory=dict)  # free-form facts (resources, ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "flow": self.flow,
            "run_id": self.run_id,
            "step": self.step,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "artifacts": {k: v.to_json() for k, v in self.artifacts.items()},
            "control": self.control,
            "success": self.success,
            "finished_at": self.finished_at,
            "origin": self.origin,
            "started_at": self.started_at,
            "exception": self.exception,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AttemptIndex:
        return cls(
            flow=d["flow"],
            run_id=d["run_id"],
            step=d["step"],
            task_id=d["task_id"],
            attempt=d["attempt"],
            artifacts={k: ArtifactRef.from_json(v) for k, v in d["artifacts"].items()},
            control=d.get("control", {}),
            success=d.get("success", True),
            finished_at=d.get("finished_at", 0.0),
            origin=d.get("origin"),
            started_at=d.get("started_at", 0.0),
            exception=d.get("exception"),
            metadata=d.get("metadata") or {},
        )
