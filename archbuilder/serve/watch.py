"""File events for the files a served spec reads (watchfiles: inotify, FSEvents, ReadDirectoryChangesW).

The folders holding the files are watched, not the files: an editor that saves by writing a
new file and renaming it over the old one replaces the file a watch on it would follow. Events
for other files in those folders are ignored; the list of files changes as ``extends`` does.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from archbuilder.core.extras import importing

with importing("archbuild serve"):
    import watchfiles

__all__ = ["Watcher"]

STEP_MS = 10  # quiet this long after a change, the changes are reported (a save is one burst)
DEBOUNCE_MS = 200  # at most this long gathering a burst of changes
POLL_STOP_MS = 200  # how often the watch loop looks for a stop


def _names(path: str | Path) -> set[str]:
    """The absolute names a file may be reported under: as given, and with links resolved."""
    names = {os.path.abspath(path)}
    with contextlib.suppress(OSError, RuntimeError):
        names.add(str(Path(path).resolve()))
    return names


class Watcher(threading.Thread):
    """Calls ``on_change`` (in this thread) each time one of the watched files is saved."""

    def __init__(self, on_change: Callable[[], None]):
        super().__init__(name="archbuild-serve-watch", daemon=True)
        self.on_change = on_change
        self._files: set[str] = set()
        self._lock = threading.Lock()
        self._restart = threading.Event()
        self._closed = threading.Event()

    def watch(self, files: Iterable[str | Path]) -> None:
        """Watch these files from now on (their folders are watched again if they changed)."""
        names = set().union(*(_names(file) for file in files))
        with self._lock:
            before = self._folders()
            self._files = names
            if self._folders() != before:
                self._restart.set()

    def close(self) -> None:
        self._closed.set()
        self._restart.set()

    def _folders(self) -> set[str]:
        return {folder for folder in map(os.path.dirname, self._files) if os.path.isdir(folder)}

    def run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                folders = sorted(self._folders())
                self._restart.clear()
            if not folders:
                self._restart.wait()
                continue
            changes = watchfiles.watch(
                *folders,
                watch_filter=None,  # the files are filtered here, by name
                recursive=False,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                rust_timeout=POLL_STOP_MS,
                stop_event=self._restart,
                raise_interrupt=False,
            )
            for batch in changes:
                with self._lock:
                    hit = any(path in self._files for _, path in batch)
                if hit:
                    self.on_change()
