# ruff: noqa: F811 - the fixtures are imported from uv_helpers (no conftest.py here)
"""Specs, hashes, decorator rules, interpreter matching, and the environment manager
(in-process, against the offline wheelhouse)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plait_uv import pythons
from plait_uv.envs import EnvManager, lock_key, spec_key
from plait_uv.spec import EnvSpec, IndexSettings, UvEnvironmentError, packages_to_requirements
from uv_helpers import offline_env, uv_cache, wheelhouse  # noqa: F401 - fixtures


# -- specs and hashes ---------------------------------------------------------------------------
def test_packages_in_both_forms() -> None:
    assert packages_to_requirements({"Requests": "2.32.3", "numpy": ">=1.26", "six": ""}, "x") == {
        "requests": "Requests==2.32.3", "numpy": "numpy>=1.26", "six": "six"}
    assert packages_to_requirements(["polars==1.9.0", "My_Pkg[extra]>=1"], "x") == {
        "polars": "polars==1.9.0", "my-pkg": "My_Pkg[extra]>=1"}
    with pytest.raises(UvEnvironmentError, match="packages must be"):
        packages_to_requirements(5, "@uv")
    with pytest.raises(UvEnvironmentError, match="not a package requirement"):
        packages_to_requirements(["==1.0"], "@uv")


def test_hash_is_stable_and_covers_every_part_of_the_spec() -> None:
    base = EnvSpec(("b==1", "a==2"), "3.11", IndexSettings(), ("pluggy>=1.3",), "linux-x86_64")
    same = EnvSpec(("a==2", "b==1"), "3.11", IndexSettings(), ("pluggy>=1.3",), "linux-x86_64")
    assert base.hash == same.hash and len(base.hash) == 20
    variants = [
        EnvSpec(("a==2",), "3.11", IndexSettings(), ("pluggy>=1.3",), "linux-x86_64"),
        EnvSpec(("b==1", "a==2"), "3.12", IndexSettings(), ("pluggy>=1.3",), "linux-x86_64"),
        EnvSpec(("b==1", "a==2"), "3.11", IndexSettings(no_index=True), ("pluggy>=1.3",), "linux-x86_64"),
        EnvSpec(("b==1", "a==2"), "3.11", IndexSettings(index_url="https://x/simple"), ("pluggy>=1.3",), "linux-x86_64"),
        EnvSpec(("b==1", "a==2"), "3.11", IndexSettings(), ("pluggy>=1.4",), "linux-x86_64"),
        EnvSpec(("b==1", "a==2"), "3.11", IndexSettings(), ("pluggy>=1.3",), "darwin-arm64"),
    ]
    assert len({v.hash for v in variants} | {base.hash}) == len(variants) + 1
    assert EnvSpec.from_json(base.to_json()) == base


def test_index_settings_from_config_and_decorators(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("PLAIT_UV_", "UV_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path))
    monkeypatch.setenv("UV_EXTRA_INDEX_URL", "https://extra/simple")
    monkeypatch.setenv("PLAIT_UV_FIND_LINKS", "wheels, /abs/wheels")
    monkeypatch.chdir(tmp_path)
    index = IndexSettings.from_config()
    assert index.extra_index_urls == ("https://extra/simple",)
    assert index.find_links == (str(tmp_path / "wheels"), "/abs/wheels")
    step = index.override({"index_url": "https://mine/simple", "no_index": False, "find_links": []})
    assert step.index_url == "https://mine/simple" and step.find_links == () and not step.no_index
    assert step.uv_args() == ["--index-url", "https://mine/simple", "--extra-index-url", "https://extra/simple"]


@pytest.mark.parametrize("request_, version, expected", [
    ("3.11", (3, 11, 7), True), ("3.11", (3, 12, 1), False), ("3", (3, 12, 1), True),
    ("3.11.7", (3, 11, 7), True), ("3.11.2", (3, 11, 7), False), (">=3.10,<3.12", (3, 11, 7), True),
    (">=3.12", (3, 11, 7), False), ("cpython3.11", (3, 11, 0), True), ("~=3.10", (3, 12, 0), True),
])
def test_python_requests(request_: str, version: tuple[int, int, int], expected: bool) -> None:
    assert pythons.matches(request_, version) is expected


def test_missing_python_lists_what_is_installed() -> None:
    with pytest.raises(UvEnvironmentError) as err:
        pythons.find("2.1")
    text = str(err.value)
    assert "No Python 2.1" in text and "never downloads" in text
    assert "{}.{}.{}".format(*sys.version_info[:3]) in text
    assert pythons.find("{}.{}".format(*sys.version_info[:2])).version == tuple(sys.version_info[:3])


# -- decorators and the plan ---------------------------------------------------------------------
_counter = __import__("itertools").count()


def _plan(source: str, environment: str | None = None) -> dict:
    import runpy
    import tempfile

    from plait.graph import FlowGraph
    from plait.runtime.decorators import init_decorators
    from plait_uv.plan import build_plan
    from plait_uv.runtime import runtime_dists

    folder = Path(tempfile.mkdtemp(prefix="plait-uv-plan-"))
    path = folder / f"flow_{next(_counter)}.py"
    path.write_text("from plait import FlowSpec, step, uv, pypi, uv_base, pypi_base, retry\n" + source)
    namespace = runpy.run_path(str(path))
    flow = next(v for k, v in namespace.items() if k.endswith("Flow"))
    graph = FlowGraph(flow)
    init_decorators(flow, graph)
    return {s: e.spec for s, e in build_plan(flow, graph, environment, runtime_dists(), set()).items()}


_BASE_FLOW = '''
@uv_base(packages=["a==1", "b==1"], python="3.10")
class BFlow(FlowSpec):
    @uv(packages=["b==2", "c"])
    @step
    def start(self):
        self.next(self.mid)

    @retry
    @step
    def mid(self):
        self.next(self.end)

    @uv(disabled=True)
    @step
    def end(self):
        pass
'''


def test_base_packages_merge_under_step_packages(offline_env: Path) -> None:
    plan = _plan(_BASE_FLOW)
    assert set(plan) == {"start", "mid"}  # end opted out
    assert plan["start"].requirements == ("a==1", "b==2", "c") and plan["start"].python == "3.10"
    assert plan["mid"].requirements == ("a==1", "b==1")
    assert "pluggy>=1.3" in plan["start"].runtime and not any(r.startswith("uv") for r in plan["start"].runtime)


def test_environment_option_gives_every_step_an_environment(offline_env: Path) -> None:
    source = "class PFlow(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n" \
             "    @step\n    def end(self):\n        pass\n"
    assert _plan(source) == {}
    plan = _plan(source, "pypi")
    assert set(plan) == {"start", "end"} and plan["start"] == plan["end"]
    assert plan["start"].requirements == () and plan["start"].python == "{}.{}".format(*sys.version_info[:2])


def test_decorator_errors() -> None:
    from plait.decorators import BadDecoratorError

    with pytest.raises(BadDecoratorError, match="packages must be"):
        _plan("class XFlow(FlowSpec):\n    @uv(packages=3)\n    @step\n    def start(self):\n"
              "        self.next(self.end)\n    @step\n    def end(self):\n        pass\n")
    with pytest.raises(BadDecoratorError, match="both @"):
        _plan("class XFlow(FlowSpec):\n    @uv\n    @pypi\n    @step\n    def start(self):\n"
              "        self.next(self.end)\n    @step\n    def end(self):\n        pass\n")
    with pytest.raises(BadDecoratorError, match="does not take"):
        _plan("@pypi_base(pakages={})\nclass XFlow(FlowSpec):\n    @step\n    def start(self):\n"
              "        self.next(self.end)\n    @step\n    def end(self):\n        pass\n")


# -- the environment manager ---------------------------------------------------------------------
def _spec(packages: tuple[str, ...], python: str | None = None) -> EnvSpec:
    from plait_uv.runtime import runtime_dists, runtime_requirements

    return EnvSpec(packages, python or "{}.{}".format(*sys.version_info[:2]), IndexSettings.from_config(),
                   runtime_requirements(runtime_dists(), set()))


def _storage(tmp_path: Path):  # type: ignore[no-untyped-def]
    from plait.datastore.local import LocalStorage

    return LocalStorage(str(tmp_path / "ds"))


def test_resolve_store_reuse(offline_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = _storage(tmp_path)
    spec = _spec(("tinydep",))
    first = EnvManager(storage).ensure(spec, ["start"])
    assert first.action == "resolved" and first.env_dir == offline_env / "envs" / spec.hash
    lock = storage.read(lock_key(spec.hash)).decode()
    assert "tinydep==1.0" in lock and "tinypkg==2.0" in lock and "--hash=sha256:" in lock
    assert json.loads(storage.read(spec_key(spec.hash)))["hash"] == spec.hash
    out = subprocess.run([str(first.python), "-s", "-c", "import tinydep, tinypkg; print(tinypkg.VERSION)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2.0"

    # Cached: no uv at all.
    import plait_uv.envs as envs_mod

    def no_uv(*a: object, **k: object) -> None:
        raise AssertionError("uv was called for a cached environment")

    with monkeypatch.context() as m:
        m.setattr(envs_mod, "run_uv", no_uv)
        assert EnvManager(storage).ensure(spec, ["start"]).action == "cached"

    # Another machine (empty cache), same datastore: installs the lock, never resolves.
    with monkeypatch.context() as m:
        m.setattr(EnvManager, "resolve", no_uv)
        other = EnvManager(storage, cache_dir=tmp_path / "other")
        assert other.ensure(spec, ["start"]).action == "installed from lock"
        assert (tmp_path / "other" / "envs" / spec.hash / "plait-lock.txt").read_text() == lock

    # A datastore without the lock (a new root) gets it from the cached environment.
    fresh = _storage(tmp_path / "second")
    assert EnvManager(fresh).ensure(spec, ["start"]).action == "cached"
    assert fresh.read(lock_key(spec.hash)).decode() == lock


def test_failed_install_leaves_nothing(offline_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plait_uv.envs as envs_mod

    real = envs_mod.run_uv
    seen: list[str] = []

    def sync_fails(args: list[str], **kw: object):  # type: ignore[no-untyped-def]
        if args[:2] == ["pip", "sync"]:
            seen.append(args[-1])
            return subprocess.CompletedProcess(args, 2, "", "error: disk on fire")
        return real(args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(envs_mod, "run_uv", sync_fails)
    storage = _storage(tmp_path)
    spec = _spec(("tinypkg==1.0",))
    with pytest.raises(UvEnvironmentError, match="(?s)Step 'train'.*disk on fire"):
        EnvManager(storage).ensure(spec, ["train"])
    assert seen  # it got as far as installing
    envs = offline_env / "envs"
    assert [p.name for p in envs.iterdir() if not p.name.startswith(".")] == []
    assert not list(envs.glob(".tmp-*"))
    assert not storage.exists(lock_key(spec.hash))  # a lock that never installed is not kept


def test_unresolvable_names_the_steps(offline_env: Path, tmp_path: Path) -> None:
    spec = _spec(("tinypkg==9.9",))
    with pytest.raises(UvEnvironmentError) as err:
        EnvManager(_storage(tmp_path)).ensure(spec, ["a", "b"])
    text = str(err.value)
    assert "Steps 'a', 'b'" in text and "tinypkg" in text and "uv says" in text


def test_bootstrap_builds_from_the_datastore_and_runs(offline_env: Path, tmp_path: Path) -> None:
    """What a remote task does: no env here yet, only the datastore; never resolves."""
    storage = _storage(tmp_path)
    spec = _spec(("tinypkg==1.0",))
    EnvManager(storage).ensure(spec, ["start"])
    env = {k: v for k, v in os.environ.items()}
    env.update({"PLAIT_UV_CACHE": str(tmp_path / "remote-cache"), "PLAIT_UV_BIN": env.get("PLAIT_UV_BIN", "")})
    env.pop("PLAIT_UV_BIN")
    cmd = [sys.executable, "-m", "plait_uv.bootstrap", spec.hash, "--", sys.executable, "-c",
           "import sys, tinypkg; print(tinypkg.VERSION, sys.prefix)", "--datastore-root", str(tmp_path / "ds")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    version, prefix = out.stdout.split()
    assert version == "1.0" and prefix.startswith(str(tmp_path / "remote-cache"))
    missing = subprocess.run([*cmd[:3], "0" * 20, *cmd[4:]], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and "is not in the datastore" in missing.stderr


def test_disabled_as_metaflow_spells_it(offline_env: Path) -> None:
    plan = _plan('''
@pypi_base(packages={"a": "1"}, disabled="true")
class DFlow(FlowSpec):
    @pypi(disabled="false")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
''')
    assert set(plan) == {"start"} and plan["start"].requirements == ("a==1",)
