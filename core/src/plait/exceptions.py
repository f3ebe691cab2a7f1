"""The small family of user-facing errors.

Every error a user can cause derives from :class:`PlaitException`. Its message says *where*
(file:line, step, artifact) and *how to fix it*; the CLI prints it without a traceback.
"""

from __future__ import annotations


class PlaitException(Exception):
    """Base of every error Plait raises on purpose. ``headline`` is a short category."""

    headline = "Plait error"

    def __init__(self, msg: str = "", lineno: int | None = None, source_file: str | None = None) -> None:
        self.message = msg
        self.lineno = lineno
        self.source_file = source_file
        super().__init__(msg)

    def __str__(self) -> str:
        where = ""
        if self.source_file and self.lineno:
            where = f"{self.source_file}:{self.lineno}: "
        elif self.lineno:
            where = f"line {self.lineno}: "
        return f"{where}{self.message}"


# Metaflow's name for the same base class, so `except MetaflowException` keeps working.
MetaflowException = PlaitException


class LintError(PlaitException):
    headline = "Validity checker found an issue"


class ParameterError(PlaitException):
    headline = "Invalid parameter"


class ParameterAssignmentError(ParameterError, AttributeError):
    """Assigning to a parameter; also an AttributeError, as Metaflow raises."""


class InvalidNextError(PlaitException):
    headline = "Invalid self.next() transition"


class MergeArtifactsError(PlaitException):
    headline = "Unable to merge artifacts"

    def __init__(self, msg: str, fields: list[str] | None = None) -> None:
        self.artifact_names = fields or []
        super().__init__(msg)


class UnpicklableArtifactError(PlaitException):
    headline = "Cannot pickle artifact"


class DataMissingError(PlaitException):
    headline = "Data missing"


class PluginError(PlaitException):
    headline = "Plugin error"


class MissingPluginError(PluginError):
    headline = "Missing plugin"


class StepTimeoutError(PlaitException):
    headline = "Step timed out"


class TaskFailedError(PlaitException):
    headline = "Task failed"


class RunFailedError(PlaitException):
    headline = "Run failed"


class NamespaceMismatch(PlaitException):
    headline = "Object not in the current namespace"


class PlaitNotFound(PlaitException):
    headline = "Object not found"


MetaflowNotFound = PlaitNotFound
MetaflowNamespaceMismatch = NamespaceMismatch
