# ruff: noqa: F811 - the fixtures are imported from uv_helpers (no conftest.py here)
"""Whole runs: steps in their environments, cached and locked, and failures before the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plait_uv.envs import locked_packages
from uv_helpers import FLOWS, RUN_ID_RE, UvPlait, no_traceback, pid_alive, uv_cache, uvp, wheelhouse  # noqa: F401 - fixtures


def test_each_step_runs_in_its_environment_and_nothing_leaks(uvp: UvPlait) -> None:
    result = uvp.run("envs_flow").ok()
    run_id = result.run_id
    start = uvp.one("EnvsFlow", run_id, "start")["start_probe"]
    each = [a["each_probe"] for a in uvp.artifacts("EnvsFlow", run_id, "each")]
    join = uvp.one("EnvsFlow", run_id, "join")
    end = uvp.one("EnvsFlow", run_id, "end")["end_probe"]

    assert start["tinypkg"] == "1.0" and start["plait"] == "present" and start["plait_uv"] == "present"
    assert len(each) == 3 and {e["tinypkg"] for e in each} == {"2.0"}
    assert end["tinypkg"] == "2.0" and end["tinydep"] == "1.0"  # tinydep's own dependency
    # The scheduler's packages (numpy, pytest are installed where the tests run) stay out.
    for seen in [start, end, *each]:
        assert seen["numpy"] is None and seen["pytest"] is None, seen
        assert seen["exe"].startswith(str(uvp.cache)), seen
    assert len({start["exe"], each[0]["exe"], end["exe"]}) == 3  # three environments
    # A step without a decorator runs in the flow's own interpreter, which has them all.
    assert join["join_probe"]["exe"] == sys.executable and join["join_probe"]["numpy"] == "present"
    assert join["total"] == 14
    assert "end sees tinypkg 2.0" in result.stdout
    # Three locks with exact versions and hashes, in the datastore.
    locks = uvp.locks()
    assert len(locks) == 3
    for lock in locks.values():
        assert "--hash=sha256:" in lock and "pluggy==" in lock
    assert any("tinypkg==1.0" in lock for lock in locks.values())
    assert result.stdout.count("resolved in") == 3
    assert len(uvp.built_envs()) == 3 and not uvp.leftovers()

    # Second run: cached environments, no resolution and no uv call at all (a uv that
    # fails would fail the run); and tasks launched by spawning, without the fork server.
    again = uvp.run("envs_flow", env={"PLAIT_UV_BIN": "/bin/false", "PLAIT_UV_FORK_SERVER": "0"}).ok()
    assert "Environment" not in again.stdout
    start2 = uvp.one("EnvsFlow", again.run_id, "start")["start_probe"]
    assert start2["exe"] == start["exe"] and start2["tinypkg"] == "1.0"
    assert uvp.one("EnvsFlow", again.run_id, "join")["total"] == 14


def test_pypi_base_is_the_default_that_steps_override(uvp: UvPlait) -> None:
    run_id = uvp.run("base_flow").ok().run_id
    start = uvp.one("BaseFlow", run_id, "start")["start_probe"]
    mid = uvp.one("BaseFlow", run_id, "mid")["mid_probe"]
    end = uvp.one("BaseFlow", run_id, "end")["end_probe"]
    assert start["tinypkg"] == "1.0" and start["numpy"] is None
    assert mid["tinypkg"] == "2.0" and mid["numpy"] is None
    assert end["exe"] == sys.executable and end["tinypkg"] is None  # @pypi(disabled=True)


@pytest.mark.parametrize("name", ["pypi", "uv"])
def test_environment_option_isolates_every_step(uvp: UvPlait, name: str) -> None:
    run_id = uvp.flow("plain_flow", "--environment", name, "run").ok().run_id
    for step in ("start", "end"):
        seen = uvp.one("PlainFlow", run_id, step)[f"{step}_probe"]
        assert seen["exe"].startswith(str(uvp.cache)) and seen["numpy"] is None, seen
        assert seen["python"] == list(sys.version_info[:3])  # the flow's Python by default
    plain = uvp.run("plain_flow").ok().run_id  # without the option: the flow's interpreter
    assert uvp.one("PlainFlow", plain, "start")["start_probe"]["exe"] == sys.executable


def test_resume_installs_the_stored_lock_without_resolving(uvp: UvPlait) -> None:
    (uvp.state / "fail-end").touch()
    first = uvp.run("param_flow").failed()
    assert "planned failure in end" in first.output
    (uvp.state / "fail-end").unlink()
    # A new machine (empty env cache) that resumes: it must install the identical locked
    # environments from the datastore, not resolve them again.
    fresh = {"PLAIT_UV_CACHE": str(uvp.tmp / "other-cache")}
    resumed = uvp.flow("param_flow", "resume", env=fresh).ok()
    assert "resolved in" not in resumed.stdout
    assert resumed.stdout.count("installed from lock") == 2
    end = uvp.one("ParamFlow", resumed.run_id, "end")["end_probe"]
    assert end["tinypkg"] == "2.0" and end["exe"].startswith(str(uvp.tmp / "other-cache"))


def test_a_stored_lock_wins_over_a_new_resolution(uvp: UvPlait) -> None:
    """An unpinned package resolves once; later runs install what the lock says even when
    the index would now resolve differently (the lock is what makes runs reproducible)."""
    import hashlib
    import re

    unpinned = {"TEST_UV_PACKAGES": json.dumps(["tinypkg"])}
    first = uvp.run("param_flow", env=unpinned).ok()
    assert uvp.one("ParamFlow", first.run_id, "start")["start_probe"]["tinypkg"] == "2.0"
    start_hash = _hash_for(uvp, ["tinypkg"])
    # Rewrite the stored lock to the older version, as if it had been resolved long ago.
    wheel = os.path.join(uvp.env["PLAIT_UV_FIND_LINKS"], "tinypkg-1.0-py3-none-any.whl")
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    path = uvp.root / "_envs" / start_hash / "lock.txt"
    old = re.sub(r"tinypkg==2\.0 \\\n\s+--hash=sha256:[0-9a-f]+",
                 lambda m: f"tinypkg==1.0 \\\n    --hash=sha256:{digest}", path.read_text())
    assert "tinypkg==1.0" in old
    path.write_text(old)
    second = uvp.run("param_flow", env={**unpinned, "PLAIT_UV_CACHE": str(uvp.tmp / "cache-2")}).ok()
    assert "installed from lock" in second.stdout and "resolved in" not in second.stdout
    assert uvp.one("ParamFlow", second.run_id, "start")["start_probe"]["tinypkg"] == "1.0"


def _hash_for(uvp: UvPlait, requirements: list[str]) -> str:
    """The hash of the stored environment whose spec asks for exactly ``requirements``."""
    for spec_file in (uvp.root / "_envs").glob("*/spec.json"):
        if json.loads(spec_file.read_text())["requirements"] == requirements:
            return spec_file.parent.name
    raise AssertionError(f"no stored environment for {requirements}")


@pytest.mark.parametrize("packages, python, expected", [
    (["tinypkg==9.9"], None, ["Step 'start'", "tinypkg"]),
    (["brokenpkg==0.1"], None, ["Step 'start'", "brokenpkg refuses to build"]),
    (["tinypkg==1.0"], "3.99", ["Step 'start'", "No Python 3.99", "Found:", "{}.{}.{}".format(*sys.version_info[:3])]),
])
@pytest.mark.parametrize("index", ["wheel folder", "index over http"])
def test_bad_environments_fail_before_any_task(uvp: UvPlait, wheelhouse: Path, packages: list[str],
                                               python: str | None, expected: list[str], index: str) -> None:
    """Over HTTP, a new environment is also being installed while it resolves: the failure
    must still come first and leave nothing behind."""
    from plait_uv.testing import WheelIndex

    env: dict[str, str | None] = {"TEST_UV_PACKAGES": json.dumps(packages), "TEST_UV_PYTHON": python}
    with WheelIndex(wheelhouse) as served:
        if index == "index over http":
            env.update({"PLAIT_UV_FIND_LINKS": None, "PLAIT_UV_NO_INDEX": None, "PLAIT_UV_INDEX_URL": served.url})
        result = uvp.run("param_flow", env=env).failed()
    for text in expected:
        assert text in result.stderr, result.describe()
    assert "Task is starting" not in result.stdout
    assert "Environment error" in result.stderr
    no_traceback(result.output)
    # Nothing half-built is left behind, and nothing was built or locked for the bad spec
    # (the other step's good environment may have been built alongside).
    assert not uvp.leftovers()
    for env_dir in uvp.built_envs():
        spec = json.loads((env_dir / "plait-env.json").read_text())["spec"]
        assert spec["requirements"] == ["tinypkg==2.0"] and spec["python"] != python, spec
    for lock in uvp.locks().values():
        assert "tinypkg==9.9" not in lock and "brokenpkg" not in lock


def test_environment_resolve_and_show(uvp: UvPlait) -> None:
    shown = uvp.flow("envs_flow", "environment", "show").ok()
    assert "not resolved" in shown.stdout and "join: the flow's own interpreter" in shown.stdout
    resolved = uvp.flow("envs_flow", "environment", "resolve").ok()
    assert resolved.stdout.count("— resolved (") == 3, resolved.describe()
    data = json.loads(uvp.flow("envs_flow", "environment", "show", "--json").ok().stdout)
    by_step = {d["step"]: d for d in data}
    assert by_step["join"]["environment"] is None
    assert by_step["start"]["status"] == "built" and "tinypkg==1.0" in by_step["start"]["locked"]
    assert "tinypkg==2.0" in by_step["end"]["locked"] and "tinydep==1.0" in by_step["end"]["locked"]
    assert by_step["start"]["environment"] in uvp.locks()
    # The run after a resolve builds nothing.
    run = uvp.run("envs_flow").ok()
    assert "Environment" not in run.stdout


def test_another_python_version(uvp: UvPlait) -> None:
    from plait_uv import pythons

    # The offline wheelhouse holds what this interpreter has installed; from 3.12 on Plait
    # needs nothing more (no importlib-metadata backport), so any 3.12+ interpreter resolves.
    others = [i for i in pythons.installed() if i.version[:2] != sys.version_info[:2]
              and i.version >= (3, 12, 0) and i.implementation == "cpython"]
    if not others:
        pytest.skip("no other Python (3.12 or newer) on this machine")
    other = min(others, key=lambda i: i.version)
    want = "{}.{}".format(*other.version[:2])
    run_id = uvp.run("param_flow", env={"TEST_UV_PYTHON": want}).ok().run_id
    seen = uvp.one("ParamFlow", run_id, "start")["start_probe"]
    assert seen["python"][:2] == list(other.version[:2]) and seen["tinypkg"] == "1.0"


@pytest.mark.skipif(os.environ.get("PLAIT_UV_OFFLINE_TESTS") == "1", reason="PLAIT_UV_OFFLINE_TESTS=1")
def test_real_package_index(uvp: UvPlait) -> None:
    """The one test that uses the real package index (skipped when it cannot be reached)."""
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/six/", timeout=10).close()
    except Exception:  # noqa: BLE001
        pytest.skip("the package index is not reachable")
    env = {"PLAIT_UV_FIND_LINKS": None, "PLAIT_UV_NO_INDEX": None,
           "TEST_UV_PACKAGES": json.dumps(["six==1.16.0"]), "TEST_UV_END_PACKAGES": json.dumps(["six==1.16.0"])}
    result = uvp.run("param_flow", env=env).ok()
    assert result.stdout.count("resolved in") == 1  # both steps share one environment
    (lock,) = uvp.locks().values()
    assert "six==1.16.0" in lock and "--hash=sha256:" in lock and "click==" in lock
    assert uvp.one("ParamFlow", result.run_id, "start")["start_probe"]["numpy"] is None


def _children_at_start(uvp: UvPlait, scheduler: int) -> dict[int, str]:
    with open(uvp.state / f"children-{scheduler}.json") as f:
        return {int(pid): cmd for pid, cmd in json.load(f).items()}


def test_the_next_run_starts_the_environment_server_at_import(uvp: UvPlait) -> None:
    """A run remembers its environments' fork servers; the next run of the same flow has the
    server running before the flow file's own code does, and its task is forked from it."""
    uvp.env["PLAIT_CACHE_DIR"] = str(uvp.tmp / "plait-cache")
    first = uvp.one("PrestartFlow", uvp.run("prestart_flow").ok().run_id, "start")
    assert _children_at_start(uvp, first["scheduler"]) == {}  # nothing remembered yet
    assert not pid_alive(first["forked_by"])  # the server ended with its run

    # The same with the `plait` command (`plait run flow.py`, here `python -m plait`).
    via_plait = subprocess.run([sys.executable, "-m", "plait", "run", str(FLOWS / "prestart_flow.py")],
                               cwd=uvp.cwd, env=uvp.env, capture_output=True, text=True, timeout=180)
    assert via_plait.returncode == 0, via_plait.stdout + via_plait.stderr
    second = uvp.one("PrestartFlow", RUN_ID_RE.findall(via_plait.stdout)[-1], "start")
    early = _children_at_start(uvp, second["scheduler"])
    assert list(early) == [second["forked_by"]], early
    assert "plait_uv.server" in early[second["forked_by"]]
    assert not pid_alive(second["forked_by"])
    # Started before the flow file set a variable, the server still passes it to its tasks.
    assert first["scheduler_variable"] == second["scheduler_variable"] == "yes"
    assert first["cwd"] == second["cwd"] == str(uvp.state)

    # A run that does not use the server (tasks spawned) stops the one started for it, and
    # forgets it: the run after that starts nothing early.
    third = uvp.run("prestart_flow", env={"PLAIT_UV_FORK_SERVER": "0"}).ok()
    scheduler = uvp.one("PrestartFlow", third.run_id, "start")["forked_by"]  # spawned by it
    ((unused, command),) = _children_at_start(uvp, scheduler).items()
    assert "plait_uv.server" in command and not pid_alive(unused)
    fourth = uvp.run("prestart_flow", env={"PLAIT_UV_FORK_SERVER": "0"}).ok()
    assert _children_at_start(uvp, uvp.one("PrestartFlow", fourth.run_id, "start")["forked_by"]) == {}


def test_a_killed_environment_server_fails_the_attempt_and_the_retry_runs(uvp: UvPlait) -> None:
    """The task dies with the server (SIGKILL): the attempt fails as killed, the scheduler
    goes on, and the retry runs without that server (its command spawned)."""
    result = uvp.run("server_dies_flow").ok()
    no_traceback(result.output)
    assert "Task failed (killed by signal SIGKILL). Retrying" in result.stdout, result.describe()
    start = uvp.one("ServerDiesFlow", result.run_id, "start")
    assert start["attempt"] == 1


def test_an_index_over_http_builds_while_resolving_and_holds_exactly_the_lock(uvp: UvPlait, wheelhouse: Path) -> None:
    """Against an index (not local wheels alone) a new environment is installed while its
    lock resolves; what it ends up holding is the lock, nothing more or less."""
    from plait_uv.testing import WheelIndex
    from plait_uv.uvcmd import run_uv

    with WheelIndex(wheelhouse) as index:
        env = {"PLAIT_UV_FIND_LINKS": None, "PLAIT_UV_NO_INDEX": None, "PLAIT_UV_INDEX_URL": index.url,
               "UV_CACHE_DIR": str(uvp.tmp / "uv-cache-cold"),  # everything comes over HTTP
               "TEST_UV_PACKAGES": json.dumps(["tinydep"]), "TEST_UV_END_PACKAGES": json.dumps(["tinydep"])}
        result = uvp.run("param_flow", env=env).ok()
    assert index.requests > 0
    assert uvp.one("ParamFlow", result.run_id, "start")["start_probe"]["tinypkg"] == "2.0"
    (lock,) = uvp.locks().values()
    (env_dir,) = uvp.built_envs()
    frozen = run_uv(["pip", "freeze", "--python", str(env_dir / "bin" / "python")]).stdout.split()
    assert sorted(frozen) == sorted(locked_packages(lock)), (frozen, lock)
    assert "tinydep==1.0" in frozen and "tinypkg==2.0" in frozen and not uvp.leftovers()


def test_a_flow_files_first_run_starts_a_built_environments_server_with_the_decorator(uvp: UvPlait) -> None:
    """Nothing remembered for this flow file, but its step's environment is built: the
    server starts while the flow file executes, before the run is set up, and forks the task."""
    uvp.env["PLAIT_CACHE_DIR"] = str(uvp.tmp / "plait-cache")
    uvp.run("prestart_flow").ok()  # builds the environment
    shutil.rmtree(uvp.tmp / "plait-cache" / "prestart")  # as if this file had never run
    start = uvp.one("PrestartFlow", uvp.run("prestart_flow").ok().run_id, "start")
    assert _children_at_start(uvp, start["scheduler"]) == {}
    with open(uvp.state / f"children-after-class-{start['scheduler']}.json") as f:
        early = {int(pid): cmd for pid, cmd in json.load(f).items()}
    assert list(early) == [start["forked_by"]] and "plait_uv.server" in early[start["forked_by"]], early
