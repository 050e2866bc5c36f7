"""A real S3-compatible server for tests and benches: moto's standalone server (HTTP on a free loopback
port, in a thread of this process; other processes reach it over TCP like any S3 endpoint).

``s3_endpoint`` (session fixture) is its base URL; ``new_bucket(endpoint)`` makes an empty bucket. Without
moto the tests skip with a message, and fail under CI=true (tests/services.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.services import unavailable

#: credentials the moto server accepts (any); set for the API and worker processes of the tests
ACCESS_KEY, SECRET_KEY, REGION = "mixpilot-test", "mixpilot-test-secret", "us-east-1"


class S3Server:
    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def client(self):
        from memory.objectstore import make_client

        return make_client(
            endpoint_url=self.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            allow_http=True,
        )

    def new_bucket(self) -> str:
        name = f"mixpilot-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = None
    try:
        server = S3Server()
    except Exception as exc:  # moto not installed, or it cannot bind
        unavailable("moto S3 server", exc)
    assert server is not None
    try:
        yield server
    finally:
        server.stop()
