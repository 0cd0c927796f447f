"""``qa serve``: bind the port, build or load the index, warm the model, then serve with uvicorn."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator

from qa.config import Settings
from qa.errors import QAError
from qa.http.errors import RequestTimeout, response_of
from qa.service import QAService
from qa.store import Collection

log = logging.getLogger("qa.http.server")


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket first, so a taken port fails in a second, not after model load."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a Ctrl+C or SIGTERM ends in a clean exit (status 0)
        after in-flight requests finish, instead of re-raising the signal."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _protocol_class(header_timeout_s: float) -> type | str:
    """uvicorn's HTTP protocol plus a deadline for each request line and its headers.

    uvicorn has none: a client that connects and then trickles its headers (or sends none)
    holds a connection for ever, and enough of them use up ``limit_concurrency`` so every
    other request gets a 503. Here such a client gets a JSON 408 and is disconnected.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        return "auto"

    class Protocol(HttpToolsProtocol):  # type: ignore[misc]
        _header_timer: object = None

        def connection_made(self, transport: object) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()  # type: ignore[attr-defined]
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or (
                self.cycle is not None and not self.cycle.response_complete
            ):
                return  # closing already, or still answering an earlier (pipelined) request
            timeout = RequestTimeout(f"request headers not received within {header_timeout_s:g} s")
            response = response_of(timeout)
            head = b"HTTP/1.1 408 Request Timeout\r\n"
            head += b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
            self.transport.write(head + b"connection: close\r\n\r\n" + response.body)
            self.transport.close()

    return Protocol


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: Settings) -> None:
    """Serve until interrupted (a :class:`QAError` when the server can't start)."""
    import uvicorn

    from qa.http.app import create_app

    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        raise QAError(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
            "is another server running there? Choose another port with --port or QA_PORT"
        ) from None
    host, port = sock.getsockname()[:2]
    service, collection = _ready_service(settings)
    app = create_app(settings, service)
    shown = f"[{host}]" if ":" in host else host
    _say(
        f"qa is serving collection {collection.name!r} ({collection.counts['documents']} documents, "
        f"{collection.counts['passages']} passages)\n"
        f"  open http://{shown}:{port}/ in a browser · API docs http://{shown}:{port}/docs · Ctrl+C stops"
    )
    config = uvicorn.Config(
        app,
        http=_protocol_class(settings.body_read_timeout_s),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=15,
        limit_concurrency=512,
        server_header=False,
        # forwarded headers are believed only from QA_TRUSTED_PROXIES, by the app itself
        # (uvicorn would otherwise trust them from 127.0.0.1, letting any local client pick
        # its rate-limit bucket and its address in the log)
        proxy_headers=False,
    )
    logging.getLogger("qa.access").setLevel(logging.INFO)
    server = _server_class()(config)
    server.run(sockets=[sock])
    service.stop_watching()
    _say("qa stopped")


def _ready_service(settings: Settings) -> tuple[QAService, Collection]:
    """The service with its model warm, and the served collection loaded (the default one
    is built first when it has no index yet)."""
    try:
        service = QAService(settings)
        service.embedder.identity  # noqa: B018 - a bad model folder fails here
        if settings.collection == "default":
            service.ensure_default(progress=True)
        collection = service.collection()
        service.start_background_merges()
        if settings.watch:  # qa serve --watch: every collection built from folders follows them
            service.watch()
        service.start_site_sync()  # qa serve --sync-every / QA_SYNC_EVERY
        _say(f"loading the model from {service.embedder.path}")
        service.embedder.warm_up()
        _say(f"questions are encoded with {service.embedder.active_query_backend}")
    except OSError as exc:  # e.g. QA_INDEX_DIR is a file, or a folder we may not write
        where = f" ({exc.filename})" if exc.filename else ""
        raise QAError(
            f"cannot use the index folder {settings.index_dir}: {exc.strerror or exc}{where}; "
            "check QA_INDEX_DIR"
        ) from None
    return service, collection
