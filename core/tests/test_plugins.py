"""The plugin manager: entry point discovery, duplicates, disabling, and the hook docs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plait import hookspecs
from plait.exceptions import MissingPluginError, PluginError
from plait.hookspecs import hookimpl
from plait.plugins import PlaitPluginManager, PluginInfo, get_plugin_manager, reset_plugin_manager
from plait.records import StepDecoratorRecord

REPO = Path(__file__).resolve().parents[2]

PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "plait-shout-test"
version = "0.3.1"

[project.entry-points.plait]
shout = "plait_shout_test"

[tool.setuptools]
py-modules = ["plait_shout_test"]
"""

PLUGIN_MODULE = '''
from plait.decorators import StepDecorator
from plait.hookspecs import hookimpl
from plait.records import StepDecoratorRecord


class ShoutDecorator(StepDecorator):
    """Upper-cases an artifact after the step ran."""

    name = "shout"
    defaults = {"artifact": "message"}

    def task_post_step(self, task):
        name = self.attributes["artifact"]
        setattr(task.flow, name, getattr(task.flow, name).upper() + "!")


@hookimpl
def plait_step_decorators():
    return [StepDecoratorRecord("shout", "plait_shout_test:ShoutDecorator")]
'''

FLOW = '''
from plait import FlowSpec, step, shout


class ShoutFlow(FlowSpec):
    @shout(artifact="message")
    @step
    def start(self):
        self.message = "hello"
        self.next(self.end)

    @step
    def end(self):
        print("END SAYS", self.message)


if __name__ == "__main__":
    ShoutFlow()
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway plugin distribution, pip-installed into its own site directory."""
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (src / "plait_shout_test.py").write_text(PLUGIN_MODULE)
    site = tmp_path_factory.mktemp("plugin_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site), str(src)],
        check=True,
    )
    assert list(site.glob("plait_shout_test-0.3.1.dist-info"))
    return site


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def test_plugin_distribution_adds_a_decorator_a_flow_uses(plugin_site: Path, tmp_path: Path) -> None:
    flow = tmp_path / "shout_flow.py"
    flow.write_text(FLOW)
    result = subprocess.run([sys.executable, str(flow), "run"], cwd=tmp_path, capture_output=True,
                            text=True, env=_env(plugin_site, PLAIT_DATASTORE_ROOT=str(tmp_path / "ds")))
    assert result.returncode == 0, result.stderr
    assert "END SAYS HELLO!" in result.stdout


def test_plait_plugins_lists_the_distribution_and_version(plugin_site: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "plait", "plugins"], capture_output=True, text=True,
                            env=_env(plugin_site))
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("shout "))
    assert "plait-shout-test" in line and "0.3.1" in line and "shout" in line.split("step decorators:")[1]
    assert "plait.builtins.plugin" in result.stdout  # the built-ins are listed like any plugin


def test_disabled_plugin_is_not_loaded_and_the_flow_says_what_is_missing(plugin_site: Path, tmp_path: Path) -> None:
    flow = tmp_path / "shout_flow.py"
    flow.write_text(FLOW)
    result = subprocess.run([sys.executable, str(flow), "run"], cwd=tmp_path, capture_output=True, text=True,
                            env=_env(plugin_site, PLAIT_DISABLE_PLUGINS="shout"))
    assert result.returncode != 0
    assert "shout" in result.stderr
    listing = subprocess.run([sys.executable, "-m", "plait", "plugins"], capture_output=True, text=True,
                             env=_env(plugin_site, PLAIT_DISABLE_PLUGINS="shout"))
    assert "plait-shout-test" not in listing.stdout


class _DecoA:
    @hookimpl
    def plait_step_decorators(self) -> list[StepDecoratorRecord]:
        return [StepDecoratorRecord("twice", "x:A")]


class _DecoB:
    @hookimpl
    def plait_step_decorators(self) -> list[StepDecoratorRecord]:
        return [StepDecoratorRecord("twice", "y:B")]


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    pm = PlaitPluginManager()
    pm.register(_DecoA(), PluginInfo("a", "a", "dist-alpha", "1", False))
    pm.register(_DecoB(), PluginInfo("b", "b", "dist-beta", "2", False))
    with pytest.raises(PluginError) as err:
        pm.registry("step_decorators")
    assert "dist-alpha" in str(err.value) and "dist-beta" in str(err.value) and "twice" in str(err.value)


def test_a_plugin_registered_for_one_test_then_removed() -> None:
    pm = get_plugin_manager()
    pm.register(_DecoA(), PluginInfo("temp-a", "a", "dist-alpha", "1", False))
    try:
        assert "twice" in pm.registry("step_decorators")
    finally:
        pm.unregister("temp-a")
    assert "twice" not in pm.registry("step_decorators")


def test_builtins_come_through_the_same_registration_hooks() -> None:
    reset_plugin_manager()
    pm = get_plugin_manager()
    assert {"retry", "catch", "timeout", "environment", "resources"} <= set(pm.registry("step_decorators"))
    assert pm.registry("datastores")["local"].plugin == "plait"
    assert "local" in pm.registry("metadata_providers") and "local" in pm.registry("compute_backends")


def test_missing_plugin_error_says_what_to_install() -> None:
    with pytest.raises(MissingPluginError, match="pip install plait-gcs"):
        get_plugin_manager().get("datastores", "gcs")
    import plait

    with pytest.raises(MissingPluginError, match="pip install plait-kubernetes"):
        plait.kubernetes  # noqa: B018


def test_every_hookspec_is_documented() -> None:
    doc = (REPO / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"`(plait_\w+)", doc))
    specs = {name for name in dir(hookspecs) if name.startswith("plait_")}
    assert specs, "no hook specs found"
    assert specs - documented == set(), f"undocumented hooks: {sorted(specs - documented)}"
    for name in specs:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"


def test_import_plait_loads_no_heavy_or_plugin_modules() -> None:
    code = textwrap.dedent("""
        import sys, plait
        heavy = {"boto3", "botocore", "s3fs", "kubernetes", "pandas", "pyarrow", "numpy", "fsspec",
                 "click", "pluggy", "sqlite3"}
        print(sorted(heavy & set(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
