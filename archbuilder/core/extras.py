"""Optional dependencies: which extra installs each module, and the error that says so.

archbuilder's core (specs, validation, summaries, diagrams) needs a few small packages; the
rest comes with an extra of ``pyproject.toml``: torch itself (``pip install 'archbuilder[torch]'``:
building, training, export) and those that need it pull it in (``archbuilder[onnx]``). :data:`EXTRAS` maps each optional
module to its extra (tests/test_extras.py keeps it in step with ``pyproject.toml``).
:func:`require` imports one, or raises :class:`MissingExtra`, an ``ImportError`` whose message
is one line: what needs the module, the module, and the command that installs it. The
``archbuild`` command and the examples (:func:`exit_if_missing`) print that line and exit
with status 2.

This module imports nothing heavy (no torch), so any code may use it first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "check", "exit_if_missing", "importing", "missing_extra", "require"]

# Top-level module → the extra of pyproject.toml's [project.optional-dependencies] that installs it.
EXTRAS: dict[str, str] = {
    "torch": "torch",  # archbuild build/export/bench, archbuilder.build, training
    "numpy": "torch",  # export's calibration arrays, .caffemodel weights (the spec-only install has none)
    "sklearn": "examples",  # scikit-learn: examples/train_digits.py's digits
    "tqdm": "examples",  # examples/train_digits.py's progress bar
    "optuna": "search",  # SearchSpace.suggest, examples/search_digits.py
    "matplotlib": "search",  # examples/search_digits.py's plot
    "psycopg": "postgres",  # a search study on PostgreSQL (postgresql+psycopg://)
    "onnx": "onnx",  # archbuild export -o x.onnx, archbuild import x.onnx
    "onnxscript": "onnx",  # torch.onnx's exporter
    "onnxruntime": "onnx",  # runs the exported file
    "torchao": "int8",  # quantize: PyTorch's PT2E flow
    "torchvision": "bench",  # archbuild bench's torchvision twin or nearest reference
    "starlette": "serve",  # archbuild serve: the web app
    "uvicorn": "serve",  # archbuild serve: the HTTP server
    "watchfiles": "serve",  # archbuild serve: file events
}


class MissingExtra(ImportError):
    """An optional module that cannot be imported; the message names the extra that installs it.

    ``modules`` are the missing top-level modules, ``extras`` the extras that install them,
    ``needed_for`` what needs them (``"ONNX export"``).
    """

    def __init__(self, modules: str | Sequence[str], *, needed_for: str, reason: str | None = None):
        names = [modules] if isinstance(modules, str) else list(modules)
        self.modules = tuple(dict.fromkeys(_top(name) for name in names))
        self.extras = tuple(dict.fromkeys(EXTRAS[name] for name in self.modules if name in EXTRAS))
        self.needed_for = needed_for
        self.reason = reason or "not installed"
        *others, last = self.modules
        what = f"{', '.join(others)} and {last}" if others else last
        install = f"pip install 'archbuilder[{','.join(self.extras)}]'" if self.extras else "install it"
        message = f"{needed_for} needs {what} ({self.reason}): {install}"
        super().__init__(" ".join(message.split()), name=self.modules[0] if self.modules else None)


def require(module: str, *, needed_for: str) -> ModuleType:
    """The module ``module`` (``"optuna"``, ``"torchao.quantization.pt2e"``), imported;
    :class:`MissingExtra` naming ``needed_for`` and the extra where it cannot be."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(module, exc, needed_for) from exc


def check(*modules: str, needed_for: str) -> None:
    """:class:`MissingExtra` naming every one of ``modules`` that cannot be imported, if any."""
    missing: list[str] = []
    reasons: list[str] = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            error = _missing(module, exc, needed_for)
            missing.append(module)
            if error.reason != "not installed":
                reasons.append(error.reason)
    if missing:
        reason = "; ".join(reasons) if reasons else None
        raise MissingExtra(missing, needed_for=needed_for, reason=reason)


@contextmanager
def importing(needed_for: str) -> Iterator[None]:
    """Turn an ImportError of an optional module (one of :data:`EXTRAS`) inside the block
    into :class:`MissingExtra` for ``needed_for``:
    ``with importing("int8 quantization"): from torchao.quantization.pt2e import ...``."""
    try:
        yield
    except MissingExtra:
        raise
    except ImportError as exc:
        error = missing_extra(exc, needed_for=needed_for)
        if error is None:
            raise
        raise error from exc


@contextmanager
def exit_if_missing(program: str, *, needed_for: str | None = None) -> Iterator[None]:
    """For a script: an optional module missing inside the block (:func:`missing_extra`;
    ``needed_for``, default ``program``, says what needs it where the error does not) is
    printed as one line, ``program: error: ...``, on stderr, and the script exits with status 2."""
    try:
        yield
    except ImportError as exc:
        error = missing_extra(exc, needed_for=needed_for or program)
        if error is None:
            raise
        print(f"{program}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def missing_extra(exc: BaseException, *, needed_for: str) -> MissingExtra | None:
    """``exc`` as a :class:`MissingExtra` when it (or an exception it was raised from) is a
    MissingExtra or an ImportError of an optional module; else None."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MissingExtra):
            return error
        if isinstance(error, ImportError) and error.name and _top(error.name) in EXTRAS:
            return _missing(error.name, error, needed_for)
        error = error.__cause__ or error.__context__
    return None


def _missing(module: str, exc: ImportError, needed_for: str) -> MissingExtra:
    """The MissingExtra for ``module``, whose import raised ``exc``: "not installed" where its
    package is not there, else why it cannot be imported (a broken or too old install)."""
    reason = None if not _installed(_top(module)) else f"cannot be imported: {exc}"
    return MissingExtra(module, needed_for=needed_for, reason=reason)


def _installed(package: str) -> bool:
    """Whether the top-level ``package`` is imported or importable (found, not run)."""
    if package in sys.modules:
        return sys.modules[package] is not None  # None: its import is blocked
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _top(module: str) -> str:
    return module.split(".", 1)[0]
