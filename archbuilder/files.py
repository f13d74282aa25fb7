"""Files from and for untrusted places: inputs read safely, outputs written all at once.

Inputs are opened without blocking and read only when they are regular files, with the size
cap enforced while reading (``/dev/zero`` says its size is 0). Outputs go to a temporary
file that is renamed into place, and only over a regular file: never over a device, a FIFO,
a socket or a folder, and never into the system's folders of special files.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

__all__ = ["UnreadableFile", "interrupted", "open_regular", "output_target", "read_regular", "write_atomic"]

# Set by the CLI's SIGINT handler: a write not yet renamed into place is abandoned.
interrupted = threading.Event()

_SPECIAL_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))


class UnreadableFile(ValueError):
    """An input that is not a readable regular file; ``reason`` says why, ``path`` which."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _name(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a file path is a str or a Path, not {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"a file path is a str or a Path, not {type(name).__name__}")
    if "\0" in name:
        raise UnreadableFile(repr(name), "the path contains a NUL byte")
    return name


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading; UnreadableFile unless it is a regular file (never blocks)."""
    name = _name(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnreadableFile(name, _reason(exc)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _kind(mode)
        raise UnreadableFile(name, f"is {kind}, not a regular file" if kind.startswith("a ") else kind)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of regular file ``path``, refused once more than ``max_bytes`` have been read."""
    with open_regular(path) as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableFile(os.fspath(path), f"is larger than {_size(max_bytes)}")
    return data


def _reason(exc: OSError) -> str:
    reasons = {
        errno.ENOENT: "no such file",
        errno.ENOTDIR: "no such file (a part of the path is not a folder)",
        errno.ELOOP: "a symbolic link loop (the link points back to itself)",
        errno.EACCES: "permission denied",
        errno.ENAMETOOLONG: "the path is too long",
    }
    return reasons.get(exc.errno, f"cannot read: {exc.strerror}")


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count:,} bytes"


def output_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: symbolic links resolved; OSError when it may not be written."""
    try:
        name = _name(path)
    except UnreadableFile as exc:
        raise OSError(errno.EINVAL, exc.reason, exc.path) from None
    try:
        target = Path(name).resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop
        raise OSError(errno.ELOOP, "a symbolic link loop", name) from None
    if any(target == root or root in target.parents for root in _SPECIAL_ROOTS):
        raise OSError(errno.EPERM, "a system folder of special files; choose another -o", name)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, name) from None
    if stat.S_ISDIR(mode):
        raise OSError(errno.EISDIR, "is a directory", name)
    if not stat.S_ISREG(mode):
        message = f"is {_kind(mode)}; only a regular file is replaced (use -o - for standard output)"
        raise OSError(errno.EINVAL, message, name)
    return target


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once: readers see the old file or the new one.

    A symbolic link is followed (the file it names is replaced); an existing target that is
    not a regular file is refused with an OSError. Returns ``path`` as a Path.
    """
    target = output_target(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:  # report the file asked for, not the temporary name
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, _mode_for(target))  # mkstemp makes it private; give it a normal file's mode
        if interrupted.is_set():
            raise KeyboardInterrupt
        os.replace(temporary, target)
    except IsADirectoryError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OSError(exc.errno, "is a directory", str(path)) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(path)


def _mode_for(path: Path) -> int:
    """The existing file's permissions, or those a newly created file gets under the umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
