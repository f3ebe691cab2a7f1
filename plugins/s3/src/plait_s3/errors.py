"""Errors of the S3 tool and datastore. Each ``Metaflow*`` name is an alias, so code written
for Metaflow's ``S3`` (``except MetaflowS3NotFound``) keeps working unchanged."""

from __future__ import annotations

from plait.exceptions import PlaitException


class PlaitS3Exception(PlaitException):
    """An S3 operation failed; the message names the key."""


class PlaitS3NotFound(PlaitS3Exception):
    """The object does not exist."""


class PlaitS3AccessDenied(PlaitS3Exception):
    """The credentials may not read or write the object."""


class PlaitS3URLException(PlaitS3Exception):
    """A malformed or disallowed address."""


class PlaitS3InvalidRange(PlaitS3Exception):
    """The requested byte range is outside the object."""


class PlaitS3InvalidObject(PlaitS3Exception):
    """A value to upload that is neither text, bytes nor a readable, seekable file."""


class PlaitS3InsufficientDiskSpace(PlaitS3Exception):
    """The temporary directory ran out of space."""


MetaflowS3Exception = PlaitS3Exception
MetaflowS3NotFound = PlaitS3NotFound
MetaflowS3AccessDenied = PlaitS3AccessDenied
MetaflowS3URLException = PlaitS3URLException
MetaflowS3InvalidRange = PlaitS3InvalidRange
MetaflowS3InvalidObject = PlaitS3InvalidObject
MetaflowS3InsufficientDiskSpace = PlaitS3InsufficientDiskSpace
