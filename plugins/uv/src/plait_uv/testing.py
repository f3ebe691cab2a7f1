"""Offline package indexes for tests: tiny wheels made on the spot, and wheels repacked from
the distributions installed in the running interpreter (Plait's own dependencies), so an
environment resolves with ``find_links=<folder>, no_index=True`` and no network."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 12):
    from importlib import metadata as importlib_metadata
else:
    try:
        import importlib_metadata  # type: ignore[no-redef]
    except ImportError:  # pragma: no cover
        from importlib import metadata as importlib_metadata  # type: ignore[no-redef]

#: A fixed timestamp so the same wheel is byte-identical every time (stable hashes in locks).
_DATE = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(path: Path, files: dict[str, bytes], dist_info: str) -> Path:
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files = {**files, f"{dist_info}/RECORD": ("\n".join(record) + "\n").encode()}
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, _DATE)
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    os.replace(tmp, path)
    return path


def _dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)


def make_wheel(folder: str | os.PathLike[str], name: str, version: str, requires: list[str] | tuple[str, ...] = (),
               modules: dict[str, str] | None = None, requires_python: str | None = None) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` in ``folder``. Its package
    ``<name>`` has ``VERSION``; ``modules`` adds files (``{"pkg/extra.py": "source"}``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pkg = _dist_name(name).lower()
    dist_info = f"{_dist_name(name)}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{pkg}/__init__.py": f"VERSION = {version!r}\nNAME = {name!r}\n".encode(),
        **{k: v.encode() for k, v in (modules or {}).items()},
        f"{dist_info}/METADATA": ("\n".join(meta) + "\n").encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: plait-uv-testing\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    return _write_wheel(folder / f"{_dist_name(name)}-{version}-py3-none-any.whl", files, dist_info)


def make_failing_sdist(folder: str | os.PathLike[str], name: str, version: str, message: str = "this package does not build") -> Path:
    """An sdist whose in-tree build backend raises: uv fails to build it, offline."""
    import io
    import tarfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{_dist_name(name)}-{version}"
    files = {
        "pyproject.toml": ('[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
                           f'[project]\nname = "{name}"\nversion = "{version}"\n'),
        "backend.py": "".join(f"def {hook}(*args, **kwargs):\n    raise RuntimeError({message!r})\n"
                              for hook in ("build_wheel", "build_sdist", "prepare_metadata_for_build_wheel",
                                           "get_requires_for_build_wheel")),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for fname, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{fname}")
            info.size = len(data)
            info.mtime = 1577836800
            tar.addfile(info, io.BytesIO(data))
    return path


def wheel_from_installed(folder: str | os.PathLike[str], name: str) -> Path:
    """Repack an installed distribution into a wheel (an offline ``pip download``). A compiled
    one (aiohttp, multidict, ...) keeps the platform tags its ``WHEEL`` file records."""
    dist = importlib_metadata.distribution(name)
    wheel_meta = dist.read_text("WHEEL") or ""
    real_name = _dist_name(dist.metadata["Name"])
    dist_info = f"{real_name}-{dist.version}.dist-info"
    if "Root-Is-Purelib: true" in wheel_meta:
        tag = "py3-none-any"
    else:
        tags = [ln.split(":", 1)[1].strip() for ln in wheel_meta.splitlines() if ln.startswith("Tag:")]
        if not tags:
            raise ValueError(f"{name} records no wheel tags; cannot repack it")
        # One file name for every interpreter/abi/platform triple, compressed as PEP 425 allows.
        tag = "-".join(".".join(sorted({t.split("-")[i] for t in tags})) for i in range(3))
    files: dict[str, bytes] = {}
    for f in dist.files or []:
        rel = str(f)
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith((".pyc", "/RECORD", "/INSTALLER",
                                                                         "/REQUESTED", "/direct_url.json")):
            continue
        src = Path(str(f.locate()))
        if not src.is_file():
            continue
        parts = rel.split("/")
        if parts[0].endswith(".dist-info"):
            parts[0] = dist_info
        files["/".join(parts)] = src.read_bytes()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _write_wheel(folder / f"{real_name}-{dist.version}-{tag}.whl", files, dist_info)


def runtime_wheelhouse(folder: str | os.PathLike[str], plugins: set[str] | None = None) -> Path:
    """Wheels of every third-party distribution a Plait task needs (the core's dependencies,
    those of the datastore/metadata ``plugins`` the run uses, and theirs), repacked from this
    interpreter: enough for an offline environment."""
    from plait_uv.runtime import runtime_dists, runtime_requirements
    from plait_uv.spec import requirement_name

    folder = Path(folder)
    todo = [requirement_name(r.split(";")[0]) for r in runtime_requirements(runtime_dists(), plugins or set())]
    # importlib-metadata is only required below 3.12; add it so any interpreter resolves.
    todo += ["importlib-metadata", "zipp"]
    done: set[str] = set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        wheel_from_installed(folder, name)
        for req in dist.requires or []:
            marker = req.split(";", 1)[1] if ";" in req else ""
            if "extra" not in marker:
                todo.append(requirement_name(req.split(";")[0]))
    return folder


class WheelIndex:
    """A package index over HTTP (PEP 503 "simple" pages with sha256 fragments) serving the
    wheels and sdists of a folder on 127.0.0.1, for tests of the path a real index takes. Counts the
    requests it answered. Use as a context manager; ``url`` is the ``index_url``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.requests = 0
        self._server: Any = None

    def __enter__(self) -> WheelIndex:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer(with_body=True)

            def do_HEAD(self) -> None:  # noqa: N802 - uv asks before it downloads
                self._answer(with_body=False)

            def _answer(self, with_body: bool) -> None:
                index.requests += 1
                body, kind = index._page(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if with_body:
                    self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def _page(self, path: str) -> tuple[bytes | None, str]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "files" and (self.folder / parts[1]).is_file():
            return (self.folder / parts[1]).read_bytes(), "application/octet-stream"
        if len(parts) == 2 and parts[0] == "simple":
            links = []
            for file in sorted(self.folder.iterdir()):
                if file.name.endswith(".whl"):
                    project = file.name.split("-")[0]
                elif file.name.endswith((".tar.gz", ".zip")):
                    project = file.name.rsplit("-", 1)[0]
                else:
                    continue
                if _dist_name(project).lower() == _dist_name(parts[1]).lower():
                    digest = hashlib.sha256(file.read_bytes()).hexdigest()
                    links.append(f'<a href="/files/{file.name}#sha256={digest}">{file.name}</a><br>')
            if links:
                return f"<!DOCTYPE html><html><body>{''.join(links)}</body></html>".encode(), "text/html"
        return None, "text/plain"
