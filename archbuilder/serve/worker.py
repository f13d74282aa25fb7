"""Builds run in a separate process, so a spec that takes long to lower never blocks the
server, and one that takes too long is stopped (the process is ended and started again)."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from archbuilder.core.errors import Problem
from archbuilder.serve.build import BuildRequest, BuildResult, build_page, problem_data

__all__ = ["DEFAULT_TIMEOUT_S", "Worker"]

DEFAULT_TIMEOUT_S = 30.0

# spawn, not fork: the server has threads by the time a worker is replaced, and a fork copies
# their locks in whatever state they are.
_CONTEXT = multiprocessing.get_context("spawn")


def _serve(connection: Connection, build: Callable[[Any], Any]) -> None:
    """The worker's loop: a request in, its result out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        connection.send(build(request))


class Worker:
    """A process that runs ``build`` (default :func:`~.build.build_page`), one request at a time."""

    def __init__(self, build: Callable[[Any], Any] = build_page, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.build = build
        self.timeout_s = timeout_s
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None

    def start(self) -> None:
        ours, theirs = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(target=_serve, args=(theirs, self.build), daemon=True)
        self._process.start()
        theirs.close()
        self._connection = ours

    def run(self, request: BuildRequest) -> BuildResult:
        """The result of ``request``; a located problem if the build takes longer than the
        timeout or the process dies (it is then started again for the next request)."""
        if self._process is None or not self._process.is_alive():
            self.start()
        assert self._connection is not None
        try:
            self._connection.send(request)
            if self._connection.poll(self.timeout_s):
                return self._connection.recv()
            reason = f"took longer than {self.timeout_s:g} s to load and lower; stopped"
        except (EOFError, OSError):
            reason = "the build process ended (out of memory?)"
        self.stop()
        return BuildResult(None, [problem_data(Problem((), reason, request.spec))], [request.spec])

    def stop(self) -> None:
        """End the process (a build in progress included)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
