"""Helpers started at ``import plait`` for the next run of a flow (plait.runtime.prestart).

Each helper here is a real process that sends its pid over the socket it was given and
then waits for the socket to close."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from plait.runtime import prestart
from plait_harness import pid_alive

HELPER = ("import os, socket, sys; s = socket.socket(fileno=int(sys.argv[1])); "
          "s.sendall(str(os.getpid()).encode()); s.recv(1)")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty hint cache and the module's state as in a process that just started."""
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLAIT_PRESTART", raising=False)
    monkeypatch.setattr(prestart, "_started", None)
    monkeypatch.setattr(prestart, "_pending", {})
    flow = tmp_path / "flow.py"
    flow.write_text("# a flow\n")
    yield flow
    prestart.discard_unclaimed()


def helper_command(tag: str) -> list[str]:
    return [sys.executable, "-c", HELPER, prestart.FD, tag]


def test_a_remembered_helper_starts_at_the_next_run_and_is_claimed(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prestart.remember(str(fresh), "tester", [{"command": helper_command("a")}, {"command": helper_command("b")}])
    monkeypatch.setattr(sys, "argv", [str(fresh), "run", "--max-workers", "2"])
    prestart.start_early()

    helper = prestart.claim("tester", helper_command("b"))
    assert helper is not None
    assert int(helper.sock.recv(64)) == helper.pid  # the process is really running, talking on its socket
    assert prestart.claim("tester", helper_command("b")) is None  # claimed once
    assert prestart.claim("tester", helper_command("zzz")) is None  # a command the hint never had
    assert prestart.claim("someone-else", helper_command("a")) is None
    (unclaimed,) = prestart._pending["tester"]

    prestart.discard_unclaimed()
    assert unclaimed.returncode is not None and not pid_alive(unclaimed.pid)
    helper.stop()
    assert helper.returncode == 0  # it saw EOF and exited by itself


@pytest.mark.parametrize("argv", [["flow.py", "show"], ["flow.py", "step", "start"], ["flow.py"],
                                  ["-m", "run"], ["flow.py", "run", "--help"]])
def test_only_a_run_of_that_flow_starts_helpers(fresh: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    prestart.remember(str(fresh), "tester", [{"command": helper_command("a")}])
    argv = [str(fresh) if a == "flow.py" else a for a in argv]
    monkeypatch.setattr(sys, "argv", argv)
    prestart.start_early()
    assert prestart._pending == {}


def test_disabled_by_the_environment_and_other_flows_have_their_own_hints(
        fresh: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prestart.remember(str(fresh), "tester", [{"command": helper_command("a")}])
    other = tmp_path / "other" / "flow.py"  # same name, another folder
    other.parent.mkdir()
    other.write_text("# another flow\n")
    monkeypatch.setattr(sys, "argv", [str(other), "run"])
    prestart.start_early()
    assert prestart._pending == {}

    monkeypatch.setattr(prestart, "_started", None)
    monkeypatch.setattr(sys, "argv", [str(fresh), "run"])
    monkeypatch.setenv("PLAIT_PRESTART", "0")
    prestart.start_early()
    assert prestart._pending == {}


def test_forgetting_and_a_missing_executable(fresh: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gone = [str(tmp_path / "deleted-env" / "bin" / "python"), "-c", "pass"]
    prestart.remember(str(fresh), "tester", [{"command": gone}, {"command": helper_command("a")}])
    prestart.remember(str(fresh), "other", [{"command": helper_command("o")}])
    prestart.remember(str(fresh), "other", [])  # forgotten
    monkeypatch.setattr(sys, "argv", [str(fresh), "resume"])
    prestart.start_early()
    assert list(prestart._pending) == ["tester"]
    assert [h.command for h in prestart._pending["tester"]] == [helper_command("a")]


def test_environment_given_to_a_helper(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_TEST_DROPPED", "scheduler only")
    code = ("import json, os, socket, sys; s = socket.socket(fileno=int(sys.argv[1])); "
            "s.sendall(json.dumps([os.environ.get('PLAIT_TEST_DROPPED'), os.environ.get('PLAIT_TEST_ADDED'), "
            "os.getsid(0) == os.getpid()]).encode())")
    helper = prestart.spawn([sys.executable, "-c", code, prestart.FD], ("PLAIT_TEST_DROPPED",),
                            {"PLAIT_TEST_ADDED": "yes"})
    assert helper.sock.recv(256) == b'[null, "yes", true]'  # its own session, too
    assert helper.wait(10) == 0


def test_unclaimed_helpers_are_stopped_when_the_scheduler_exits(fresh: Path, tmp_path: Path) -> None:
    """A run that never reaches the point where plugins claim helpers (a bad parameter, say)
    leaves nothing running behind it, even a helper that ignores its socket closing."""
    stubborn = [sys.executable, "-c", "import time; time.sleep(60)", prestart.FD]
    prestart.remember(str(fresh), "tester", [{"command": stubborn}])
    script = tmp_path / "scheduler.py"
    script.write_text(
        "import sys\n"
        f"sys.argv = [{str(fresh)!r}, 'run']\n"
        "from plait.runtime import prestart\n"
        "prestart.start_early()\n"
        "(helper,) = prestart._pending['tester']\n"
        "print(helper.pid, flush=True)\n"
        "raise SystemExit('a user error before the run starts')\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PLAIT_CACHE_DIR": os.environ["PLAIT_CACHE_DIR"]})
    assert proc.returncode == 1 and "a user error" in proc.stderr
    pid = int(proc.stdout)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(pid)



def test_a_hint_others_can_write_is_ignored_and_old_hints_are_pruned(fresh: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    prestart.remember(str(fresh), "tester", [{"command": helper_command("a")}])
    (hint,) = (tmp_path / "cache" / "prestart").iterdir()
    assert hint.stat().st_mode & 0o777 == 0o600
    hint.chmod(0o666)  # a hint anyone could have written names commands: not run
    monkeypatch.setattr(sys, "argv", [str(fresh), "run"])
    prestart.start_early()
    assert prestart._pending == {}

    old = time.time() - 40 * 86400
    os.utime(hint, (old, old))
    other = tmp_path / "other.py"
    other.write_text("# another flow\n")
    prestart.remember(str(other), "tester", [{"command": helper_command("b")}])
    assert [p.name for p in (tmp_path / "cache" / "prestart").iterdir()] == [prestart._hint_path(str(other)).split("/")[-1]]


def test_stopping_a_helper_reaches_it_while_another_process_holds_a_copy_of_its_socket(fresh: Path) -> None:
    """The scheduler forks (its fork server, tasks) after helpers started: those children
    hold copies of the helpers' sockets, and a helper must still see the hang-up."""
    helper = prestart.spawn(helper_command("x"))
    assert int(helper.sock.recv(64)) == helper.pid
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], pass_fds=[helper.sock.fileno()])
    try:
        helper.stop()
        assert helper.returncode == 0  # it saw EOF and exited; it was not killed after the wait
    finally:
        holder.kill()
        holder.wait()
