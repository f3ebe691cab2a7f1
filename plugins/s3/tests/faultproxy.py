"""A small HTTP/1.1 proxy on 127.0.0.1 that sits between an S3 client and the S3 server and
injects the failures real S3 produces: 500 InternalError, 503 SlowDown, connections dropped
before a response, and responses cut off halfway through the body.

Faults are chosen per request by a seeded RNG (``rate``) or by rules on the path
(``always_fail``), and counted, so a test can assert that faults really happened.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable

FAULTS = ("error500", "slowdown", "drop", "truncate")

_SLOWDOWN = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
             b"<Message>Please reduce your request rate.</Message></Error>")
_INTERNAL = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
             b"<Message>We encountered an internal error. Please try again.</Message></Error>")


class FaultProxy:
    def __init__(self, upstream: str, rate: float = 0.0, faults: tuple[str, ...] = FAULTS, seed: int = 0) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.rate = rate
        self.faults = faults
        self.rng = random.Random(seed)
        self.always_fail: list[tuple[re.Pattern[str], str]] = []  # (path regex, fault)
        self.only: Callable[[str, str], bool] | None = None  # (method, path) -> may inject?
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stopped = False
        self._threads: list[threading.Thread] = []

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        self._sock.listen(128)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stopped = True
        try:
            self._sock.close()
        except OSError:
            pass

    def fail_always(self, path_regex: str, fault: str = "error500") -> None:
        """Every request whose path matches fails with ``fault`` (a permanent failure)."""
        self.always_fail.append((re.compile(path_regex), fault))

    def _choose(self, method: str, path: str) -> str | None:
        for pattern, fault in self.always_fail:
            if pattern.search(urllib.parse.unquote(path)):
                return fault
        if self.only is not None and not self.only(method, path):
            return None
        with self._lock:
            if self.rate and self.rng.random() < self.rate:
                return self.rng.choice(self.faults)
        return None

    # -- serving ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = conn.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if head is None:
                    return
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, path = request_line.split(" ")[:2]
                if (_header(head, b"expect") or b"").lower() == b"100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # then forward without Expect
                    head = b"\r\n".join(line for line in head.split(b"\r\n")
                                         if not line.lower().startswith(b"expect:"))
                body = _read_body(reader, head, is_response=False, method=method)
                with self._lock:
                    self.requests += 1
                fault = self._choose(method, path)
                if fault in ("error500", "slowdown"):
                    self.injected[fault] += 1
                    status, payload = ((b"503 Slow Down", _SLOWDOWN) if fault == "slowdown"
                                       else (b"500 Internal Server Error", _INTERNAL))
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
                                 b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                    continue
                if fault == "drop":
                    self.injected[fault] += 1
                    return  # close without answering
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    up_reader = upstream.makefile("rb")
                upstream.sendall(head + body)
                rhead = _read_head(up_reader)
                if rhead is None:
                    return
                rbody = _read_body(up_reader, rhead, is_response=True, method=method)
                if fault == "truncate" and len(rbody) > 1:
                    self.injected[fault] += 1
                    conn.sendall(rhead + rbody[: len(rbody) // 2])
                    return  # the client sees a body that ends early
                conn.sendall(rhead + rbody)
        except (OSError, ValueError):
            return
        finally:
            for s in (conn, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass


def _read_head(reader) -> bytes | None:  # type: ignore[no-untyped-def]
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def _read_body(reader, head: bytes, is_response: bool, method: str) -> bytes:  # type: ignore[no-untyped-def]
    if is_response:
        status = int(head.split(b" ", 2)[1])
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b""
    length = _header(head, b"content-length")
    if length is not None:
        return reader.read(int(length)) if int(length) else b""
    if (_header(head, b"transfer-encoding") or b"").lower() == b"chunked":
        out = []
        while True:
            size_line = reader.readline()
            out.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = reader.readline()
                    out.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(out)
            out.append(reader.read(size + 2))
    if is_response:
        return reader.read()  # until close
    return b""
