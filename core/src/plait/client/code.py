"""``Run.code``: the flow file as it was when the run started (Metaflow's MetaflowCode).

The scheduler stores the flow script's source, content-addressed (so unchanged code costs
nothing per run), and names it in the ``_parameters`` pseudo-task's control record.
"""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any


class MetaflowCode:
    """The code a run executed: ``flowspec`` (source text), ``script_name``, ``tarball``."""

    def __init__(self, flow: str, run_id: str, snapshot: dict[str, Any]) -> None:
        self._flow = flow
        self._run_id = run_id
        self.script_name: str = snapshot["script_name"]
        self.flowspec: str = snapshot["source"]
        self.info: dict[str, Any] = {"script": self.script_name, "flow_name": flow,
                                     "plait_version": snapshot.get("plait_version")}
        self.path = f"{flow}/{run_id}/code"

    @property
    def tarball(self) -> tarfile.TarFile:
        """The code as an in-memory tar archive (one member: the flow script)."""
        data = self.flowspec.encode("utf-8")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            member = tarfile.TarInfo(self.script_name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        buf.seek(0)
        return tarfile.open(fileobj=buf, mode="r:gz")

    def extract(self, path: str | None = None) -> str:
        """Write the flow script into ``path`` (default: the working directory); return its path."""
        target = os.path.join(path or os.getcwd(), self.script_name)
        with open(target, "w", encoding="utf-8") as f:
            f.write(self.flowspec)
        return target

    def __repr__(self) -> str:
        return f"MetaflowCode('{self.path}', script='{self.script_name}')"


def load_code(store: Any, flow: str, run_id: str) -> MetaflowCode | None:
    """The code snapshot of a run, or None if it has none."""
    from plait.datastore.types import ArtifactRef
    from plait.runtime.task import PARAMETERS_STEP

    index = store.ds.read_index(flow, run_id, PARAMETERS_STEP, "0")
    if index is None or "code" not in index.control:
        return None
    snapshot = store.load_artifact(ArtifactRef.from_json(index.control["code"]), "code")
    return MetaflowCode(flow, run_id, snapshot)
