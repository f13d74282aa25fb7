"""Processes the scale-out tests start and watch: output read line by line as it comes."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_thread_env(**extra: str) -> dict[str, str]:
    """This environment, one thread per process (two cores, several processes), and ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


class Watched:
    """A process whose output lines (stdout and stderr together) a thread collects as they come."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env or one_thread_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() ends its children too
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._drained = threading.Thread(target=self._drain, daemon=True)
        self._drained.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, seconds: float) -> re.Match:
        """The first line from now on that matches ``pattern``; AssertionError after ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                found = re.match(pattern, self.lines.get(timeout=left))
            except queue.Empty:
                break
            if found:
                return found
        raise AssertionError(f"no line like {pattern!r} in {seconds} s:\n{self.text()}")

    def finish(self, seconds: float) -> str:
        """Wait for the process to end (at most ``seconds``); all it wrote."""
        self.process.wait(timeout=seconds)
        self._drained.join(timeout=10)
        return self.text()

    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        """Kill the process and everything it started (torchrun puts its workers in sessions
        of their own, so its process group is not enough), and wait for it."""
        doomed = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def children(self) -> list[int]:
        """The ids of the process's child processes (Linux /proc)."""
        return children(self.process.pid)


def children(pid: int) -> list[int]:
    """The ids of ``pid``'s child processes, from every thread of it (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """``pid``'s children, their children, and so on."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found
