"""Run the server: bind, build once, watch, rebuild on each save, stop cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from archbuilder.core.extras import importing
from archbuilder.serve.app import create_app, host_names
from archbuilder.serve.build import BuildRequest
from archbuilder.serve.live import Live
from archbuilder.serve.watch import Watcher
from archbuilder.serve.worker import DEFAULT_TIMEOUT_S, Worker

with importing("archbuild serve"):
    import uvicorn

__all__ = ["LOOPBACK_HOSTS", "ServeOptions", "serve"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ServeOptions:
    """Where to listen, and how long one build may take."""

    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port
    timeout_s: float = DEFAULT_TIMEOUT_S
    extra_hosts: tuple[str, ...] = field(default=())  # more Host names to accept (a wildcard bind)


class Rebuilder(threading.Thread):
    """Builds again each time it is poked, one build at a time; pokes during a build coalesce."""

    def __init__(
        self, worker: Worker, request: BuildRequest, live: Live, on_files: Callable[[list[str]], None]
    ):
        super().__init__(name="archbuild-serve-build", daemon=True)
        self.worker, self.request, self.live, self.on_files = worker, request, live, on_files
        self._dirty = threading.Event()
        self._closed = False

    def build_now(self) -> None:
        """Build in this thread (the first build, before the server answers)."""
        result = self.worker.run(self.request)
        self.live.publish(result)
        self.on_files(result.files)

    def poke(self) -> None:
        self._dirty.set()

    def close(self) -> None:
        self._closed = True
        self._dirty.set()

    def run(self) -> None:
        while True:
            self._dirty.wait()
            if self._closed:
                return
            self._dirty.clear()
            self.build_now()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: one the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(
    request: BuildRequest,
    options: ServeOptions = ServeOptions(),
    *,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Serve ``request``'s page until Ctrl-C (SIGINT) or SIGTERM; ``on_ready(url)`` once listening."""
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    also = set(options.extra_hosts)
    if options.host in WILDCARD_HOSTS:
        also |= {"127.0.0.1", "localhost", socket.gethostname(), socket.getfqdn()}
    allowed = host_names(options.host, port, also)
    live = Live()
    worker = Worker(timeout_s=options.timeout_s)
    rebuilder: Rebuilder | None = None
    watcher = None
    server: _Server | None = None
    try:
        worker.start()
        watcher = Watcher(on_change=lambda: rebuilder.poke() if rebuilder else None)
        rebuilder = Rebuilder(worker, request, live, watcher.watch)
        rebuilder.build_now()
        watcher.start()
        rebuilder.start()
        config = uvicorn.Config(
            create_app(live, lambda: allowed, lambda: server is not None and server.should_exit),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        server = _Server(config)
        on_ready(url_of(options.host, port))
        with _stopping_on_signals(server):
            server.run(sockets=[sock])
    finally:
        if rebuilder is not None:
            rebuilder.close()
        if watcher is not None:
            watcher.close()
        worker.stop()
        sock.close()


class _Server(uvicorn.Server):
    """uvicorn's server, leaving the signals to :func:`_stopping_on_signals` (uvicorn's own
    handlers raise the signal again once stopped, which the CLI would report as an interrupt)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29
        pass


@contextlib.contextmanager
def _stopping_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """SIGINT and SIGTERM ask the server to stop (a second one: at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
