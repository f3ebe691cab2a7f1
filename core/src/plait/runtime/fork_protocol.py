"""The fork-server protocol, both ends: a server that forks one process per request and
reports its exit, and the client that asks it for processes and learns their exit codes.

Two servers speak it: the core's (:mod:`plait.builtins.fork_server`, a fork of the scheduler)
and plait-uv's (:mod:`plait_uv.server`, in an environment's interpreter). They differ only in
what a request carries and how messages are encoded, so both are parameters: a :class:`Codec`
(pickle for the core's; JSON for plait-uv's, whose server runs in another interpreter and
must not unpickle the scheduler's objects) and the child function a forked process runs.

Protocol (a SOCK_SEQPACKET socket pair, one encoded message per packet):
  client -> server: (request_id, *payload)      e.g. (request_id, task_spec, env)
  server -> client: ("started", request_id, pid) with the child's stdout/stderr read ends
                    attached (SCM_RIGHTS), then later ("exit", pid, exit_code).
A server may send other messages of its own (plait-uv's "ready"/"failed" before any request);
the client hands them to its caller. The server runs until the client hangs up.
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: A forked child: (request payload, stdout write end, stderr write end, fds to close). It
#: must not return (``plait.runtime.process.run_as_task_process`` exits); if it does, the
#: child exits with code 1 rather than run a copy of the server loop.
Child = Callable[[Sequence[Any], int, int, set[int]], object]

_REQUEST_MAX = 1 << 20
_REPLY_MAX = 1 << 16
_WAIT_TRIES = 2000  # x 5 ms: how long exit_code(wait=True) waits for the server's report


@dataclass(frozen=True)
class Codec:
    """How messages become packets and back."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


PICKLE = Codec(lambda msg: pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL), pickle.loads)
JSON = Codec(lambda msg: json.dumps(msg).encode(), json.loads)


def send(sock: socket.socket, codec: Codec, msg: Sequence[Any], fds: Sequence[int] = ()) -> None:
    """Send one message, with ``fds`` attached if any."""
    data = codec.encode(msg)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def serve(sock: socket.socket, codec: Codec, child: Child) -> None:
    """The server loop: fork ``child`` on each request, report each exit (watched through a
    pidfd, so the loop sleeps in one select). Returns when the client hangs up."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)
    children: dict[int, int] = {}  # pidfd -> pid
    while True:
        for key, _ in sel.select():
            if key.data is None:
                data = sock.recv(_REQUEST_MAX)
                if not data:
                    return
                request, *payload = codec.decode(data)
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    try:
                        child(payload, out_w, err_w, {out_r, err_r, sock.fileno(), *children})
                    finally:
                        os._exit(1)
                for fd in (out_w, err_w):
                    os.close(fd)
                send(sock, codec, ("started", request, pid), [out_r, err_r])
                os.close(out_r)
                os.close(err_r)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = pid
                sel.register(pidfd, selectors.EVENT_READ, pid)
            else:
                pid = key.data
                _, status = os.waitpid(pid, 0)
                sel.unregister(key.fd)
                os.close(key.fd)
                del children[key.fd]
                send(sock, codec, ("exit", pid, os.waitstatus_to_exitcode(status)))


class ForkClient:
    """The client's end: start processes through the server, collect their exit codes.

    ``alive`` tells whether the server process still runs: a process whose exit the server
    never reported because the server died was killed with it (it dies with its parent).
    """

    def __init__(self, sock: socket.socket, codec: Codec, alive: Callable[[], bool],
                 name: str = "the fork server") -> None:
        self.sock = sock
        self.codec = codec
        self.alive = alive
        self.name = name
        self.exits: dict[int, int] = {}  # reported, not yet asked for
        self._next = 0

    def start(self, *payload: Any) -> tuple[int, int, int]:
        """Fork a process for ``payload``; returns (pid, stdout fd, stderr fd)."""
        self._next += 1
        request = self._next
        self.sock.sendall(self.codec.encode((request, *payload)))
        while True:
            msg, fds = self.receive(block=True)
            if msg and msg[0] == "started" and msg[1] == request:
                return msg[2], fds[0], fds[1]

    def exit_code(self, pid: int, wait: bool) -> int | None:
        """The process's exit code if the server reported it. ``wait``: the process is known to
        have ended, so wait (a while) for the report; -SIGKILL if the server died first."""
        hung_up = False
        try:
            self._drain()
            tries = _WAIT_TRIES if wait else 0
            while pid not in self.exits and tries > 0 and self.alive():
                self.receive(block=True, timeout=0.005)
                tries -= 1
            self._drain()  # what a server sent just before it died
        except OSError:  # hung up, or our end closed since: what it reported is all there is
            hung_up = True
        if pid in self.exits:
            return self.exits.pop(pid)
        if wait and (hung_up or not self.alive()):
            return -int(signal.SIGKILL)
        return None

    def _drain(self) -> None:
        while self.receive(block=False)[0]:
            pass

    def receive(self, block: bool, timeout: float | None = None) -> tuple[Sequence[Any], list[int]]:
        """One message and its fds (``()`` if none came in time); records exits. Raises
        ConnectionError when the server hung up."""
        self.sock.settimeout(timeout if block else 0.0)
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, _REPLY_MAX, 2)
        except (BlockingIOError, TimeoutError):
            return (), []
        if not data:
            raise ConnectionError(f"{self.name} exited")
        msg = self.codec.decode(data)
        if msg[0] == "exit":
            self.exits[msg[1]] = msg[2]
        return msg, fds
