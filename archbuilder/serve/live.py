"""The state the server shows, and the news of each change for the open pages.

A build (in the rebuild thread) publishes a :class:`Snapshot`; the event streams, on the
server's event loop, wait for the next one. The last good model stays shown, greyed, while a
spec does not validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from archbuilder.serve.build import BuildResult

__all__ = ["Live", "Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """One state of the page: its version, the last good model, the current problems."""

    version: int
    model: dict[str, Any] | None
    problems: list[dict[str, Any]] = field(default_factory=list)
    body: bytes = b""  # /model.json, encoded once per snapshot

    @property
    def stale(self) -> bool:
        """Whether the model shown is an earlier one (the spec does not validate now)."""
        return bool(self.problems) and self.model is not None


def _encode(version: int, model: dict[str, Any] | None, problems: list[dict[str, Any]]) -> bytes:
    stale = bool(problems) and model is not None
    return json.dumps(
        {"version": version, "stale": stale, "problems": problems, "model": model}, ensure_ascii=True
    ).encode()


class Live:
    """The current snapshot, replaced from any thread, awaited on the event loop."""

    def __init__(self) -> None:
        self.snapshot = Snapshot(0, None, body=_encode(0, None, []))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell the event streams' loop of every later change (called on that loop)."""
        self._loop = loop
        self._changed = asyncio.Event()

    def publish(self, result: BuildResult) -> Snapshot:
        """A new snapshot from a build: its model if it has one, else the last good one."""
        version = self.snapshot.version + 1
        model = result.model if result.model is not None else self.snapshot.model
        body = _encode(version, model, result.problems)
        self.snapshot = Snapshot(version, model, result.problems, body)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)
        return self.snapshot

    def _wake(self) -> None:
        assert self._changed is not None
        self._changed.set()  # every stream waiting on this one wakes; later ones wait on the next
        self._changed = asyncio.Event()

    async def changed_since(self, version: int, timeout_s: float) -> bool:
        """Whether a snapshot newer than ``version`` is there, waiting up to ``timeout_s`` for one."""
        if self.snapshot.version != version:
            return True
        if self._changed is None:
            self.bind(asyncio.get_running_loop())
        assert self._changed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        return self.snapshot.version != version
