"""StatusServer over real sockets: status codes, content types, and surviving broken providers."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.service.status_server import StatusServer

TIMEOUT = 5.0


@dataclass
class Providers:
    """What the daemon would plug in; tests change the fields between requests."""

    health_body: dict[str, Any] = field(default_factory=lambda: {"status": "ok", "fps": 9.8})
    metrics_text: str = "# HELP up Up.\n# TYPE up gauge\nup 1.0\n"
    latest_body: dict[str, Any] | None = None
    fail: str | None = None  # name of the provider that should raise

    def reset(self) -> None:
        fresh = Providers()
        self.health_body, self.metrics_text = fresh.health_body, fresh.metrics_text
        self.latest_body, self.fail = fresh.latest_body, fresh.fail

    def health(self) -> dict[str, Any]:
        self._maybe_fail("health")
        return self.health_body

    def metrics(self) -> str:
        self._maybe_fail("metrics")
        return self.metrics_text

    def latest(self) -> dict[str, Any] | None:
        self._maybe_fail("latest")
        return self.latest_body

    def _maybe_fail(self, name: str) -> None:
        if self.fail == name:
            raise RuntimeError(f"{name} exploded")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(server: StatusServer, path: str, method: str = "GET", data: bytes | None = None) -> Reply:
    """Any status, including 4xx/5xx, as a Reply (urllib raises HTTPError for those)."""
    req = urllib.request.Request(server.url + path, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="module")
def shared() -> Providers:
    return Providers()


@pytest.fixture(autouse=True)
def providers(shared: Providers) -> Providers:
    """The module server's providers, reset to their defaults before every test."""
    shared.reset()
    return shared


@pytest.fixture(scope="module")
def server(shared: Providers) -> Iterator[StatusServer]:
    # One server for the module: each stop() waits up to a poll interval, which adds up.
    with StatusServer("127.0.0.1", 0, shared.health, shared.metrics, shared.latest) as running:
        yield running


def test_port_zero_binds_a_free_port_and_reports_it(server: StatusServer) -> None:
    assert server.port != 0 and server.running
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_healthz_is_200_when_ok_and_503_otherwise_with_the_json_either_way(
        server: StatusServer, providers: Providers) -> None:
    reply = request(server, "/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok", "fps": 9.8})
    assert reply.headers["Content-Type"] == "application/json"

    for status in ("degraded", "starting"):
        providers.health_body = {"status": status, "reason": "camera stalled"}
        reply = request(server, "/healthz")
        assert (reply.status, reply.json()["status"]) == (503, status)


def test_metrics_is_prometheus_text_with_the_0_0_4_content_type(server: StatusServer) -> None:
    reply = request(server, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert reply.body == b"# HELP up Up.\n# TYPE up gauge\nup 1.0\n"


def test_latest_is_204_until_there_is_a_result_then_its_json(server: StatusServer, providers: Providers) -> None:
    reply = request(server, "/latest")
    assert (reply.status, reply.body) == (204, b"")

    # Model output arrives as numpy; it must not need converting by the daemon first.
    providers.latest_body = {"emotion": "happy", "score": np.float32(0.5), "probs": np.array([0.5, 0.5])}
    reply = request(server, "/latest?pretty=0")  # query strings are ignored
    assert (reply.status, reply.json()) == (200, {"emotion": "happy", "score": 0.5, "probs": [0.5, 0.5]})


def test_unknown_paths_are_404_json(server: StatusServer) -> None:
    reply = request(server, "/nope")
    assert reply.status == 404
    assert reply.json()["error"] == "not found: /nope"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "BREW"])
def test_other_methods_are_405_with_an_allow_header(server: StatusServer, method: str) -> None:
    reply = request(server, "/healthz", method=method, data=b'{"x":1}' if method != "DELETE" else None)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"
    assert "not allowed" in reply.json()["error"]
    assert request(server, "/healthz").status == 200  # the unread body did not poison anything


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/latest"])
def test_a_raising_provider_is_a_500_and_the_server_keeps_serving(
        server: StatusServer, providers: Providers, path: str) -> None:
    providers.fail = path.strip("/").replace("healthz", "health")
    reply = request(server, path)
    assert reply.status == 500
    assert "exploded" in reply.json()["error"]
    providers.fail = None
    assert request(server, path).status in (200, 204)


def test_requests_are_not_logged_to_stderr(server: StatusServer, capfd: pytest.CaptureFixture[str]) -> None:
    request(server, "/healthz")
    request(server, "/nope")
    request(server, "/healthz", method="POST", data=b"")
    assert capfd.readouterr().err == ""


def test_an_address_in_use_is_a_one_line_edge_error(providers: Providers) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = StatusServer("127.0.0.1", port, providers.health, providers.metrics, providers.latest)
        with pytest.raises(EdgeError) as caught:
            server.start()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "in use" in message and "\n" not in message
    assert not server.running
    server.stop()  # stopping a server that never started is fine


def test_an_unbindable_address_is_an_edge_error(providers: Providers) -> None:
    server = StatusServer("203.0.113.7", 0, providers.health, providers.metrics, providers.latest)  # not ours
    with pytest.raises(EdgeError, match="cannot listen on 203.0.113.7:0"):
        server.start()


def test_stop_is_idempotent_and_releases_the_port(providers: Providers) -> None:
    server = StatusServer("127.0.0.1", 0, providers.health, providers.metrics, providers.latest)
    server.start()
    port = server.port
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    # The same port can be bound again right away.
    again = StatusServer("127.0.0.1", port, providers.health, providers.metrics, providers.latest)
    with again:
        assert request(again, "/healthz").status == 200


def test_head_answers_like_get_without_a_body(server: StatusServer) -> None:
    reply = request(server, "/healthz", method="HEAD")
    assert reply.status == 200 and reply.body == b""
    assert int(reply.headers["Content-Length"]) == len(request(server, "/healthz").body)


def test_fifty_clients_connecting_at_once_are_all_queued(providers: Providers) -> None:
    """The listen backlog must hold a burst of probes while the accept loop is busy (the GIL is
    shared with the pipeline): with the standard library's backlog of 5 most of them stall."""
    import select

    from edge.service.status_server import _Handler, _Server, _Providers

    server = _Server(("127.0.0.1", 0), _Handler, _Providers(providers.health, providers.metrics, providers.latest))
    port = server.server_address[1]
    clients: list[socket.socket] = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    try:
        for _ in range(50):  # nobody accepts yet: only the backlog holds them
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            clients.append(client)
        pending, deadline = set(clients), 2.0
        while pending and deadline > 0:
            _, writable, _ = select.select([], list(pending), [], 0.1)
            pending -= {c for c in writable if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}
            deadline -= 0.1
        assert not pending, f"{len(pending)} of 50 connections were not queued"
        thread.start()
        for client in clients:
            client.setblocking(True)
            client.settimeout(TIMEOUT)
            client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert all(client.recv(64).startswith(b"HTTP/1.0 200") for client in clients)
    finally:
        for client in clients:
            client.close()
        if thread.is_alive():
            server.shutdown()
        server.server_close()


def test_check_listen_address_tells_a_running_fer_edge_from_another_program(providers: Providers) -> None:
    from edge.service.status_server import check_listen_address

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        busy = other.getsockname()[1]
        with pytest.raises(EdgeError, match=f"http port {busy} on 127.0.0.1 is in use by another program"):
            check_listen_address("127.0.0.1", busy)
    check_listen_address("127.0.0.1", busy)  # free again
    with StatusServer("127.0.0.1", 0, providers.health, providers.metrics, providers.latest) as ours:
        check_listen_address("127.0.0.1", ours.port)  # what a reload of the running daemon keeps
