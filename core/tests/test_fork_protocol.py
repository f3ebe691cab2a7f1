"""The fork-server protocol shared by the core's fork server and plait-uv's environment servers:
a forked child's output reaches the client, and the client learns how each child ended."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from plait.runtime import fork_protocol
from plait.runtime.fork_protocol import Codec, ForkClient

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open") or sys.platform != "linux",
                                reason="the fork server needs pidfd_open (Linux)")


def _child(payload: Sequence[Any], out_w: int, err_w: int, close_fds: set[int]) -> None:
    """A request is [stdout text, exit code, seconds to sleep first]; "return" returns."""
    text, code, sleep = payload
    if text == "return":
        return  # the protocol must not let a child fall back into the server loop
    time.sleep(sleep)
    os.write(out_w, text.encode())
    os.write(err_w, b"on stderr")
    os._exit(code)


@dataclass
class Server:
    client: ForkClient
    pid: int
    server_end: socket.socket  # our copy of the server's end: the server's death is not EOF

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = 0


def _alive(pid: int) -> bool:
    try:
        return pid != 0 and os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


@pytest.fixture(params=[fork_protocol.PICKLE, fork_protocol.JSON], ids=["pickle", "json"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    codec: Codec = request.param
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            fork_protocol.serve(theirs, codec, _child)
        finally:
            os._exit(0)
    srv = Server(ForkClient(ours, codec, lambda: _alive(srv.pid)), pid, theirs)
    yield srv
    ours.close()
    theirs.close()
    if srv.pid:
        os.waitpid(srv.pid, 0)  # the server returns when the client hangs up


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_output_reaches_the_client_and_exit_codes_are_reported(server: Server) -> None:
    ok_pid, ok_out, ok_err = server.client.start("hello", 0, 0)
    bad_pid, bad_out, bad_err = server.client.start("oops", 3, 0)
    assert (_read_all(ok_out), _read_all(ok_err)) == (b"hello", b"on stderr")
    assert (_read_all(bad_out), _read_all(bad_err)) == (b"oops", b"on stderr")
    assert server.client.exit_code(ok_pid, wait=True) == 0
    assert server.client.exit_code(bad_pid, wait=True) == 3
    assert server.client.exit_code(ok_pid, wait=False) is None  # an exit is reported once


def test_a_child_killed_by_a_signal_reports_minus_the_signal(server: Server) -> None:
    pid, out, err = server.client.start("never printed", 0, 60)
    assert server.client.exit_code(pid, wait=False) is None  # still running
    os.kill(pid, signal.SIGTERM)
    assert _read_all(out) == b""
    os.close(err)
    assert server.client.exit_code(pid, wait=True) == -signal.SIGTERM


def test_a_child_that_returns_exits_with_1_instead_of_serving(server: Server) -> None:
    pid, out, err = server.client.start("return", 0, 0)
    for fd in (out, err):
        _read_all(fd)
    assert server.client.exit_code(pid, wait=True) == 1
    pid, out, err = server.client.start("still served", 0, 0)
    assert _read_all(out) == b"still served"
    os.close(err)
    assert server.client.exit_code(pid, wait=True) == 0


def test_a_dead_server_means_its_children_were_killed(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fork_protocol, "_WAIT_TRIES", 20)  # the report that never comes: wait 0.1 s, not 10
    pid, out, err = server.client.start("never printed", 0, 60)
    server.kill()
    try:
        assert server.client.exit_code(pid, wait=True) == -signal.SIGKILL
    finally:
        os.kill(pid, signal.SIGKILL)  # a real task dies with its server (PR_SET_PDEATHSIG)
        os.close(out)
        os.close(err)
