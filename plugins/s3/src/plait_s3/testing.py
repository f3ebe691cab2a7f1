"""A real S3 API server for tests and benchmarks: moto in server mode on 127.0.0.1.

Needs ``moto[server]`` (a test dependency, not a runtime one). Clients talk to it over HTTP
exactly as they would to S3 (``PLAIT_S3_ENDPOINT_URL=http://127.0.0.1:PORT``).

moto's request dispatcher lists its own package directory on every request (about 2 ms of
``stat`` calls); the server here computes that list once. Nothing else about moto changes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

#: Credentials and region for the local server (moto accepts any).
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "plait-test",
    "AWS_SECRET_ACCESS_KEY": "plait-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _speed_up_moto() -> None:
    import moto.backends as backends

    if getattr(backends, "_plait_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: iter(modules)  # type: ignore[assignment]
    backends._plait_cached = True  # type: ignore[attr-defined]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class MotoServer:
    """``with MotoServer() as url:`` a moto S3 server on a free port of 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        _speed_up_moto()
        self._server: Any = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.url = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(port: int = 0) -> None:
    """Run a server in this process until killed, printing its URL (benchmarks run it apart)."""
    import time

    server = MotoServer(port=port)
    print(server.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


_clients: dict[str, Any] = {}


def boto_client(endpoint: str) -> Any:
    """A plain botocore S3 client on ``endpoint`` (cached)."""
    if endpoint not in _clients:
        import botocore.session

        session = botocore.session.get_session()
        _clients[endpoint] = session.create_client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=TEST_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=TEST_ENV["AWS_SECRET_ACCESS_KEY"])
    return _clients[endpoint]


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the server at ``endpoint`` (idempotent)."""
    client = boto_client(endpoint)
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass


if __name__ == "__main__":  # python -m plait_s3.testing [PORT]
    import sys

    os.environ.update({k: os.environ.get(k, v) for k, v in TEST_ENV.items()})
    serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
