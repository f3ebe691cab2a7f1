"""What one environment is: its packages, Python, platform and index settings, and its hash.

A step's spec is the step decorator (``@uv`` / ``@pypi``) layered over the flow decorator
(``@uv_base`` / ``@pypi_base``), layered over configuration (``PLAIT_UV_*``, then uv's own
``UV_*`` index variables). The hash of the canonical spec names the environment everywhere:
the lock in the datastore (``_envs/<hash>/lock.txt``) and the built environment in the local
cache. Two steps with the same spec share one environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from plait import config
from plait.exceptions import PlaitException

#: Bump when the layout of an environment changes, so old cache entries are not reused.
FORMAT = 1
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_SPECIFIER_START = ("<", ">", "!", "~", "=", "@", "[", ";")


class UvEnvironmentError(PlaitException):
    """Anything wrong with a step's environment: bad spec, no interpreter, uv failed."""

    headline = "Environment error"


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized project name at the start of a requirement string."""
    m = _NAME_RE.match(requirement)
    if not m:
        raise UvEnvironmentError(f"{requirement!r} is not a package requirement (expected e.g. 'requests==2.32.3').")
    return normalize_name(m.group(1))


def packages_to_requirements(packages: Any, where: str) -> dict[str, str]:
    """``{"requests": "2.32.3"}`` (Metaflow's @pypi form) or ``["requests==2.32.3"]`` (uv's
    form) -> ``{normalized name: requirement string}``."""
    out: dict[str, str] = {}
    if packages is None:
        return out
    if isinstance(packages, str):
        packages = [packages]
    if isinstance(packages, dict):
        for name, version in packages.items():
            if not isinstance(name, str) or not isinstance(version, (str, int, float)) and version is not None:
                raise UvEnvironmentError(f"{where}: packages must map names to version strings, got {name!r}: {version!r}.")
            name = name.strip()
            version = "" if version is None else str(version).strip()
            if not version or version == "*":
                req = name
            elif version.startswith(_SPECIFIER_START):
                req = f"{name}{version}"
            else:
                req = f"{name}=={version}"
            out[requirement_name(name)] = req
        return out
    if isinstance(packages, (list, tuple, set, frozenset)):
        for req in packages:
            if not isinstance(req, str) or not req.strip():
                raise UvEnvironmentError(f"{where}: each package must be a requirement string, got {req!r}.")
            out[requirement_name(req)] = req.strip()
        return out
    raise UvEnvironmentError(
        f"{where}: packages must be a dict (@pypi(packages={{'requests': '2.32.3'}})) or a list "
        f"(@uv(packages=['requests==2.32.3'])), got {type(packages).__name__}."
    )


def _split(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in re.split(r"[\s,]+", value) if v)
    return tuple(str(v) for v in value if str(v))


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _abs_link(link: str) -> str:
    """find-links may be a URL or a folder; folders are made absolute (the spec is portable
    only as far as the folder is)."""
    if "://" in link:
        return link
    return os.path.abspath(os.path.expanduser(link))


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from. Part of the hash: a different index is a different env."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    @classmethod
    def from_config(cls) -> IndexSettings:
        """``PLAIT_UV_*`` settings (env or profile), then uv's own ``UV_*`` variables."""
        env = os.environ
        index_url = config.get("PLAIT_UV_INDEX_URL") or env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")
        extra = config.get("PLAIT_UV_EXTRA_INDEX_URLS") or env.get("UV_INDEX") or env.get("UV_EXTRA_INDEX_URL")
        links = config.get("PLAIT_UV_FIND_LINKS") or env.get("UV_FIND_LINKS")
        no_index = config.get("PLAIT_UV_NO_INDEX") or env.get("UV_NO_INDEX") or ""
        return cls(index_url or None, _split(extra), tuple(_abs_link(x) for x in _split(links)), _truthy(no_index))

    def override(self, attributes: dict[str, Any]) -> IndexSettings:
        """Decorator attributes that were given replace the configured value."""
        values = asdict(self)
        if attributes.get("index_url"):
            values["index_url"] = str(attributes["index_url"])
        if attributes.get("extra_index_urls") is not None:
            values["extra_index_urls"] = _split(attributes["extra_index_urls"])
        if attributes.get("find_links") is not None:
            values["find_links"] = tuple(_abs_link(x) for x in _split(attributes["find_links"]))
        if attributes.get("no_index") is not None:
            values["no_index"] = bool(attributes["no_index"])
        return IndexSettings(**values)

    def uv_args(self) -> list[str]:
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.no_index:
            args.append("--no-index")
        return args


def current_platform() -> str:
    return f"{sys.platform}-{platform.machine().lower()}"


def default_python() -> str:
    """The scheduler's Python version, as Metaflow's @pypi defaults to it."""
    return "{}.{}".format(*sys.version_info[:2])


@dataclass(frozen=True)
class EnvSpec:
    """One environment. ``requirements`` are the user's; ``runtime`` is what Plait needs."""

    requirements: tuple[str, ...]
    python: str
    index: IndexSettings = field(default_factory=IndexSettings)
    runtime: tuple[str, ...] = ()
    platform: str = field(default_factory=current_platform)

    def __post_init__(self) -> None:  # order never matters: keep them sorted
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements)))
        object.__setattr__(self, "runtime", tuple(sorted(self.runtime)))

    def canonical(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "kind": "uv", "requirements": sorted(self.requirements),
            "python": self.python, "platform": self.platform, "runtime": sorted(self.runtime),
            "index": {"index_url": self.index.index_url, "extra_index_urls": list(self.index.extra_index_urls),
                      "find_links": list(self.index.find_links), "no_index": self.index.no_index},
        }

    @property
    def hash(self) -> str:
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(data).hexdigest()[:20]

    def all_requirements(self) -> list[str]:
        """What the resolver gets: the user's packages, then Plait's runtime needs."""
        return sorted(self.requirements) + sorted(self.runtime)

    def describe(self) -> str:
        pkgs = ", ".join(sorted(self.requirements)) or "no packages"
        return f"python {self.python}, {pkgs}"

    def to_json(self) -> dict[str, Any]:
        return {**self.canonical(), "hash": self.hash}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnvSpec:
        idx = data.get("index", {})
        return cls(tuple(data["requirements"]), data["python"],
                   IndexSettings(idx.get("index_url"), tuple(idx.get("extra_index_urls", ())),
                                 tuple(idx.get("find_links", ())), bool(idx.get("no_index"))),
                   tuple(data.get("runtime", ())), data.get("platform", current_platform()))
