"""How plait-s3 plugs in: entry point, lazy imports, versions that resolved, and the core
working without it."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest


def test_resolved_versions_are_the_modern_stack() -> None:
    """A bare `pip install boto3 s3fs` can fall back to s3fs 0.4.2; check what we really got."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    assert Version(metadata.version("s3fs")) >= Version("2026.1")
    botocore = Version(metadata.version("botocore"))
    for dist in ("aiobotocore", "boto3"):
        try:
            reqs = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for text in reqs:
            req = Requirement(text)
            if req.name == "botocore" and not req.marker:
                assert botocore in req.specifier, f"{dist} needs botocore{req.specifier}, installed {botocore}"
    plait_s3_reqs = [Requirement(r) for r in metadata.requires("plait-s3") or []]
    s3fs_req = next(r for r in plait_s3_reqs if r.name == "s3fs")
    assert "0.4.2" not in s3fs_req.specifier


def test_entry_point_and_plugin_listing() -> None:
    eps = [ep for ep in metadata.entry_points(group="plait") if ep.name == "s3"]
    assert eps and eps[0].value == "plait_s3.plugin"
    from plait.plugins import get_plugin_manager

    pm = get_plugin_manager()
    assert pm.registry("datastores")["s3"].plugin == "plait-s3"
    assert any(p.distribution == "plait-s3" for p in pm.plugins)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_plugin_discovery_imports_no_aws_library() -> None:
    code = ("import sys, plait\n"
            "from plait.plugins import get_plugin_manager\n"
            "pm = get_plugin_manager(); pm.registry('datastores')\n"
            "import plait_s3.plugin\n"
            "bad = [m for m in ('boto3', 'botocore', 's3fs', 'aiobotocore', 'aiohttp') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


def test_without_the_plugin_S3_says_what_to_install() -> None:
    proc = _python("from plait import S3", PLAIT_DISABLE_PLUGINS="s3")
    assert proc.returncode != 0
    assert "pip install plait-s3" in proc.stderr


def test_core_never_imports_aws_libraries() -> None:
    import plait

    core = os.path.dirname(plait.__file__)
    offenders = []
    for dirpath, _, files in os.walk(core):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(dirpath, name), encoding="utf-8").read()
                for lib in ("import boto3", "import botocore", "import s3fs", "from boto3", "from botocore",
                            "from s3fs", "import aiobotocore"):
                    if lib in text:
                        offenders.append(f"{name}: {lib}")
    assert offenders == []


def test_datastore_without_plugin_names_the_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    flow = os.path.join(os.path.dirname(__file__), "..", "..", "..", "core", "tests", "flows")
    proc = _python("from plait.services import open_datastore, Settings\n"
                   "open_datastore(Settings(datastore='s3', datastore_root='s3://b/p'))",
                   PLAIT_DISABLE_PLUGINS="s3")
    assert proc.returncode != 0 and "pip install plait-s3" in proc.stderr
    del flow


@pytest.mark.parametrize("root", ["/local/path", "gs://bucket/x", None])
def test_bad_roots(root, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from plait_s3.errors import PlaitS3URLException
    from plait_s3.storage import S3Storage

    monkeypatch.delenv("PLAIT_DATASTORE_ROOT", raising=False)
    with pytest.raises(PlaitS3URLException, match="s3://"):
        S3Storage(root)
