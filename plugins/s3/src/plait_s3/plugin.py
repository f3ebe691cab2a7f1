"""plait-s3's hook implementations: the ``s3`` datastore, ``from plait import S3``, and the
datastore root that ``S3(run=self)`` scopes to. Importing this module imports no AWS library."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl
from plait.records import DatastoreRecord

from . import context

_TOOL = "plait_s3.tool"
_ERR = "plait_s3.errors"


@hookimpl
def plait_datastores() -> list[DatastoreRecord]:
    return [DatastoreRecord("s3", "plait_s3.storage:S3Storage")]


@hookimpl
def plait_exports() -> dict[str, str]:
    names = {n: f"{_TOOL}:{n}" for n in ("S3", "S3Object", "S3GetObject", "S3PutObject", "RangeInfo",
                                           "S3SelectResult")}
    for base in ("Exception", "NotFound", "AccessDenied", "URLException", "InvalidRange", "InvalidObject"):
        names[f"MetaflowS3{base}"] = f"{_ERR}:PlaitS3{base}"
        names[f"PlaitS3{base}"] = f"{_ERR}:PlaitS3{base}"
    return names


@hookimpl
def plait_task_pre_step(task: Any) -> None:
    context.set_task_root(getattr(task.datastore.storage, "root_url", None))
