"""A small HTTP status endpoint: /healthz for supervisors, /metrics for Prometheus, /latest for people,
and, when ``[http] live_view`` is on, the live view page at / (edge/service/live_view.py).

It serves whatever the daemon's provider callables return, from a daemon thread, with the
standard library only. It binds 127.0.0.1 by default. With ``[http] token`` set, every request but
/healthz (which systemd and load balancers poll) must carry it, as ``Authorization: Bearer <token>``
or ``?token=<token>``, or gets 401; the config refuses a live view on another address without one.
A failing provider answers 500 for that request and nothing else: the server
must outlive any bug in what it reports.
"""

from __future__ import annotations

import hmac
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edge.errors import EdgeError
from edge.service.events import dumps
from edge.service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

__all__ = ["StatusServer", "check_listen_address"]

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
# A client that connects and goes quiet must not hold a handler thread forever.
REQUEST_TIMEOUT = 10.0
# How often serve_forever checks for shutdown; bounds how long stop() takes.
POLL_INTERVAL = 0.25
# MJPEG streams open at once (each holds a thread and sends live_fps JPEGs a second); more get 503.
MAX_STREAMS = 4
BOUNDARY = "fer-edge-frame"
# Connections the kernel queues while the accept loop waits for the GIL (the pipeline holds it
# most of the time). The standard library's 5 drops a burst of probes and they time out.
LISTEN_BACKLOG = 128


class StatusServer:
    """``GET`` (or ``HEAD``) ``/healthz``, ``/metrics`` and ``/latest`` over HTTP, served from a background thread.

    ``health()`` returns a dict whose ``"status"`` is ``"ok"`` for HTTP 200; anything else
    (``"degraded"``, ``"starting"``...) answers 503, so a supervisor or load balancer can act on
    the status code alone while a person reads the JSON body.
    """

    def __init__(self, host: str, port: int, health: Callable[[], dict[str, Any]],
                 metrics: Callable[[], str], latest: Callable[[], dict[str, Any] | None],
                 live: Any = None, token: str = "") -> None:
        self.host = host
        self.port = port  # after start() with port 0, the port actually bound
        self._providers = _Providers(health, metrics, latest, live, token)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind and serve in a daemon thread; EdgeError if the address is taken or unbindable."""
        with self._lock:
            if self._server is not None:
                return
            try:
                server = _Server((self.host, self.port), _Handler, self._providers)
            except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise EdgeError(f"status server cannot listen on {self.host}:{self.port}: {reason}") from None
            self.port = server.server_address[1]
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                      name=f"status-server-{self.port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
            log.info("status server listening on http://%s:%d", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def check_listen_address(host: str, port: int, timeout: float = 2.0) -> None:
    """EdgeError unless ``run`` could listen on host:port, for ``validate-config``.

    A port held by a running fer-edge passes: users validate before ``systemctl reload`` while
    the daemon holds it, and a reload keeps (or moves) that daemon's own server.
    """
    import errno
    import http.client

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HTTPServer binds
            probe.bind((host, port))
        return
    except (OSError, OverflowError) as exc:
        in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if in_use:
        target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        connection = http.client.HTTPConnection(target, port, timeout=timeout)
        try:
            connection.request("HEAD", "/healthz")
            if connection.getresponse().getheader("Server", "").startswith("fer-edge"):
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        raise EdgeError(f"http port {port} on {host} is in use by another program ([http] port)")
    raise EdgeError(f"status server cannot listen on {host}:{port}: {reason}")


class _Providers:
    def __init__(self, health: Callable[[], dict[str, Any]], metrics: Callable[[], str],
                 latest: Callable[[], dict[str, Any] | None], live: Any = None, token: str = "") -> None:
        self.health, self.metrics, self.latest = health, metrics, latest
        self.live = live  # a LiveView, or None when the live view is off
        self.token = token


# status, content type (None: no body), body, and maybe headers of its own
_Response = tuple[HTTPStatus, str | None, bytes] | tuple[HTTPStatus, str | None, bytes, dict[str, str]]
FRAME_STATE_HEADER = "X-Fer-Edge-Frame"  # /frame.jpg's faces, as /live.json words them, for that very frame


def _json(status: HTTPStatus, body: Any) -> _Response:
    return status, JSON_CONTENT_TYPE, dumps(body).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 providers: _Providers) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.providers = providers
        self.stopping = threading.Event()  # ends open MJPEG streams when the server stops
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall startup on a
        # Pi booting without network; the name is only used for CGI, so skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr (e.g. a client hanging up mid-response).
        log.debug("status server: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    # HTTP/1.0 (the default): one request per connection, so a 405'd request body that was never
    # read cannot be mistaken for the next request. Scrapes are seconds apart; keep-alive buys nothing.
    server_version = "fer-edge"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches on
        url = urlsplit(self.path)
        path = url.path
        if path != "/healthz" and not self._authorised(url.query):
            self._send(*_json(HTTPStatus.UNAUTHORIZED, {"error": "a token is required: Authorization: Bearer "
                                                                 "<token> or ?token=<token>"}),
                       {"WWW-Authenticate": 'Bearer realm="fer-edge"'})
            return
        routes = {"/healthz": self._healthz, "/metrics": self._metrics, "/latest": self._latest}
        if self.server.providers.live is not None:
            routes.update({"/": self._page, "/frame.jpg": self._frame, "/live.json": self._live_state,
                           "/timeline.png": self._timeline})
            if path == "/stream.mjpg":
                self._stream()
                return
        route = routes.get(path)
        if route is None:
            self._send(*_json(HTTPStatus.NOT_FOUND, {"error": f"not found: {path}", "endpoints": list(routes)}))
            return
        try:
            response = route()
        except Exception as exc:  # a provider bug: report it, keep serving
            log.warning("status server: %s failed", path, exc_info=True)
            response = _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})
        self._send(*response)

    def do_HEAD(self) -> None:  # noqa: N802 - load balancers and `curl -I` probe with HEAD
        self.do_GET()  # _send leaves the body out for HEAD

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 for methods without a do_X; every other method is a 405 here.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        status, content_type, body = _json(HTTPStatus.METHOD_NOT_ALLOWED,
                                           {"error": f"method {self.command} not allowed"})
        self._send(status, content_type, body, {"Allow": "GET, HEAD"})

    # Routes compute the whole response before anything is sent, so a provider that raises (or
    # returns something unencodable) still gets a clean 500 instead of a half-written reply.

    def _authorised(self, query: str) -> bool:
        token = self.server.providers.token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        given = given or (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), token.encode())

    def _page(self) -> _Response:
        return HTTPStatus.OK, "text/html; charset=utf-8", self.server.providers.live.page()

    def _frame(self) -> _Response:
        frame = self.server.providers.live.frame()
        if frame is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no frame yet"
        data, state = frame
        # dumps writes ASCII (it escapes the rest): a header is latin-1, a label may not be
        return HTTPStatus.OK, "image/jpeg", data, {FRAME_STATE_HEADER: dumps(state)}

    def _stream(self) -> None:
        """MJPEG (multipart/x-mixed-replace) at ``live_fps`` for as long as the client reads it: for
        VLC, Home Assistant's MJPEG camera or an ``<img>``. It shares the live view's encoding."""
        server = self.server
        if not server.streams.acquire(blocking=False):
            self._send(*_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"{MAX_STREAMS} streams already open"}))
            return
        try:
            live = server.providers.live
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            interval = 1.0 / live.max_fps
            while not server.stopping.is_set():
                data = live.jpeg()
                if data is not None:
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(data)}\r\n\r\n".encode("ascii") + data + b"\r\n")
                    self.wfile.flush()
                server.stopping.wait(interval)
        except OSError:  # the viewer went away (or stalled past the socket timeout)
            pass
        finally:
            server.streams.release()

    def _live_state(self) -> _Response:
        return _json(HTTPStatus.OK, self.server.providers.live.state())

    def _timeline(self) -> _Response:
        return HTTPStatus.OK, "image/png", self.server.providers.live.timeline_png()

    def _healthz(self) -> _Response:
        health = self.server.providers.health()
        ok = isinstance(health, dict) and health.get("status") == "ok"
        return _json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, health)

    def _metrics(self) -> _Response:
        return HTTPStatus.OK, METRICS_CONTENT_TYPE, self.server.providers.metrics().encode("utf-8")

    def _latest(self) -> _Response:
        latest = self.server.providers.latest()
        if latest is None:
            return HTTPStatus.NO_CONTENT, None, b""
        return _json(HTTPStatus.OK, latest)

    def _send(self, status: HTTPStatus, content_type: str | None, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status server: %s - %s", self.address_string(), format % args)
