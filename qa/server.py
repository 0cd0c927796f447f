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

log = logging.getLogger("qa.server")


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
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: Settings) -> int:
    """Serve until interrupted; returns the process exit code."""
    from qa.embedder import ModelError
    from qa.service import QAService, UnknownCollection
    from qa.store import StoreError

    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        _say(
            f"error: cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
            "is another server running there? Choose another port with --port or QA_PORT"
        )
        return 1
    host, port = sock.getsockname()[:2]
    try:
        service = QAService(settings)
        service.embedder.identity  # noqa: B018 - a bad model folder fails here
        if settings.collection == "default":
            service.ensure_default(progress=True)
        collection = service.collection()
        _say(f"loading the model from {service.embedder.path}")
        service.embedder.warm_up()
    except (UnknownCollection, ModelError) as exc:
        _say(f"error: {exc}")
        return 2
    except StoreError as exc:
        _say(f"error: {exc}")
        return 1

    import uvicorn

    from qa.api import create_app

    app = create_app(settings, service)
    shown = f"[{host}]" if ":" in host else host
    _say(
        f"qa is serving collection {collection.name!r} ({collection.counts['documents']} documents, "
        f"{collection.counts['passages']} passages)\n"
        f"  open http://{shown}:{port}/ in a browser · API docs http://{shown}:{port}/docs · Ctrl+C stops"
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=15,
        limit_concurrency=512,
        server_header=False,
    )
    logging.getLogger("qa.access").setLevel(logging.INFO)
    server = _server_class()(config)
    server.run(sockets=[sock])
    _say("qa stopped")
    return 0
