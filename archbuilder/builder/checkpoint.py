"""Checkpoints that rebuild their own model: weights plus the spec they were built from.

A checkpoint is a ``torch.save`` file of plain data (so ``torch.load(weights_only=True)``
reads it and loading runs no pickled code) holding the spec as YAML text, how the model was
built, its ``state_dict`` and, optionally, the optimizer state, the epoch and extra data.

Before torch reads a file, its zip archive is checked from what it declares: a regular
file, at most :data:`MAX_ENTRIES` entries, its data at most four times the parameter limit
(the weights and an optimizer's two states per weight) and its pickled structure at most
:data:`MAX_PICKLE_BYTES`. After, the data is walked (iteratively) to at most
:data:`MAX_DEPTH` levels and :data:`MAX_VALUES` values, so nothing that formats or copies
it later recurses past Python's stack.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archbuilder.analysis.limits import check_limit, format_bytes
from archbuilder.builder.build import DEFAULT_MAX_PARAM_BYTES, build
from archbuilder.builder.features import FeatureModel
from archbuilder.builder.modules import ArchModel
from archbuilder.core.errors import Problem, SpecError, escape
from archbuilder.core.files import UnreadableFile, open_regular, shown_path, write_atomic
from archbuilder.ir import load_spec_text
from archbuilder.spec import ArchSpec

__all__ = ["FORMAT_VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1
_KEY = "archbuilder_checkpoint"  # holds FORMAT_VERSION; marks the file as ours
MAX_ENTRIES = 200_000  # one per tensor storage: ResNet-152 with Adam's state has about 2,800
MAX_PICKLE_BYTES = 16 << 20  # names, settings and numbers; the tensors are entries of their own
MAX_DEPTH = 100  # a state_dict is 1 level deep, an optimizer's state 4
MAX_VALUES = 10_000_000  # every value, counted once per path that reaches it


class CheckpointError(ValueError):
    """A file is not a readable archbuilder checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (weights loaded, on the CPU) and what was saved with it."""

    model: ArchModel | FeatureModel
    spec: ArchSpec
    epoch: int | None = None
    optimizer_state: dict[str, Any] | None = None
    source: str | None = None  # the spec file the model was first loaded from, if any (files.shown_path)
    overrides: Sequence[str] | Mapping[str, Any] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (built by ``build``; a DistributedDataParallel or DataParallel wrapper is
    unwrapped) with its spec to ``path``, atomically. Returns ``path`` as a ``Path``.

    ``overrides`` records the ``--set`` options the spec was loaded with (they are already
    part of ``model.spec``); ``extra`` is any plain data (numbers, strings, lists, dicts,
    tensors), for example a learning-rate scheduler's ``state_dict()``.
    """
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    spec = getattr(model, "spec", None)
    if not isinstance(model, (ArchModel, FeatureModel)) or not isinstance(spec, ArchSpec):
        raise TypeError("save_checkpoint needs a model made by archbuilder.build (with its .spec)")
    if isinstance(model, FeatureModel):
        how: dict[str, Any] = {"features_only": True, "out_names": model.feature_info.names()}
    else:
        how = {"aux": bool(model.aux_names) or not spec.aux_heads}
    data = {
        _KEY: FORMAT_VERSION,
        "spec": spec.to_yaml(),
        "build": how,
        "state_dict": model.state_dict(),
        "epoch": epoch,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "source": shown_path(spec.source.file) if spec.source and spec.source.file else None,
        "overrides": list(overrides) if not isinstance(overrides, Mapping) else dict(overrides),
        "extra": dict(extra or {}),
    }
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, *, max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES) -> Checkpoint:
    """Rebuild the model saved in ``path`` and load its weights; nothing else is needed.

    The model is on the CPU, in training mode. Raises ``CheckpointError`` for a file that is
    not an archbuilder checkpoint (a missing key, a value of the wrong type, a spec or weights
    that do not fit together), and ``SpecError`` when its spec would exceed
    ``max_param_bytes`` or its file holds more than four times that (the weights and an
    optimizer's state). The spec is always read as text, never as a path. Loading does not
    change torch's random state.
    """
    path = Path(path)
    data = _read(path, 4 * check_limit("max_param_bytes", max_param_bytes))
    try:
        spec = load_spec_text(data["spec"], allowed_roots=[])
    except SpecError as error:
        raise CheckpointError(f"{path}: the spec in the checkpoint is invalid:\n{error}") from None
    how = data["build"]
    with torch.random.fork_rng(devices=[]):
        if how.get("features_only"):
            model = build(
                spec, features_only=True, out_names=how["out_names"], max_param_bytes=max_param_bytes
            )
        else:
            model = build(spec, aux=how["aux"], max_param_bytes=max_param_bytes)
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: the weights do not fit the spec saved with them: {error}") from None
    return Checkpoint(
        model=model,
        spec=spec,
        epoch=data["epoch"],
        optimizer_state=data["optimizer"],
        source=data["source"],
        overrides=data["overrides"],
        extra=data["extra"],
    )


# Each key of a checkpoint, what it must hold, and whether it may be left out (older files).
_KEYS: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "spec": ((str,), "the spec's YAML text", False),
    "build": ((dict,), "a mapping", False),
    "state_dict": ((Mapping,), "a mapping of names to tensors", False),
    "epoch": ((int, type(None)), "an integer or null", True),
    "optimizer": ((dict, type(None)), "a mapping or null", True),
    "source": ((str, type(None)), "a file name or null", True),
    "overrides": ((list, dict), "a list or mapping", True),
    "extra": ((dict,), "a mapping", True),
}


def _read(path: Path, max_bytes: int) -> dict[str, Any]:
    """The checkpoint's data, every key checked; CheckpointError naming what is wrong."""
    try:
        with open_regular(path) as file:
            _check_archive(path, file, max_bytes)
            data = torch.load(file, map_location="cpu", weights_only=True)
    except UnreadableFile as error:
        raise CheckpointError(f"{path}: {error.reason}") from None
    except (CheckpointError, SpecError):
        raise
    except Exception as error:  # torch raises several types for a file it cannot read
        detail = escape(f"{type(error).__name__}: {error}")[:300]
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    _check_nesting(path, data)
    if not isinstance(data, dict) or _KEY not in data:
        raise CheckpointError(f"{path}: not an archbuilder checkpoint (made by save_checkpoint)")
    if data[_KEY] != FORMAT_VERSION:
        shown = escape(repr(data[_KEY]))[:60]
        raise CheckpointError(
            f"{path}: checkpoint format {shown}; this archbuilder reads format {FORMAT_VERSION}"
        )
    defaults = {"epoch": None, "optimizer": None, "source": None, "overrides": [], "extra": {}}
    for key, (types, expected, optional) in _KEYS.items():
        if key not in data and optional:
            data[key] = defaults[key]
        elif key not in data:
            raise CheckpointError(f"{path}: key '{key}' is missing; a checkpoint holds {expected} there")
        elif not isinstance(data[key], types) or isinstance(data[key], bool):
            found = type(data[key]).__name__
            raise CheckpointError(f"{path}: key '{key}' holds {found}, not {expected}")
    _check_build(path, data["build"])
    return data


# The zip end records: the classic one (22 bytes, the file's last: torch writes no comment),
# the ZIP64 locator before it, and the ZIP64 record it points to (torch always writes both).
_END = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")


def _declared_entries(file: Any, size: int) -> int | None:
    """How many entries a zip archive's end records declare; None where they are not there."""
    if size < _END.size:
        return None
    file.seek(size - _END.size)
    signature, *_, entries, _, _, _ = _END.unpack(file.read(_END.size))
    if signature != b"PK\x05\x06":
        return None
    if entries != 0xFFFF or size < _END.size + _ZIP64_LOCATOR.size:
        return entries
    file.seek(size - _END.size - _ZIP64_LOCATOR.size)
    signature, _, offset, _ = _ZIP64_LOCATOR.unpack(file.read(_ZIP64_LOCATOR.size))
    if signature != b"PK\x06\x07" or offset + _ZIP64_END.size > size:
        return None
    file.seek(offset)
    record = _ZIP64_END.unpack(file.read(_ZIP64_END.size))
    return record[7] if record[0] == b"PK\x06\x06" else None


def _check_archive(path: Path, file: Any, max_bytes: int) -> None:
    """Refuse, from what the zip archive declares, one that would take more than ``max_bytes``
    (or a pickle over MAX_PICKLE_BYTES) to read, before torch reads it. Leaves ``file`` at 0."""
    size = os.fstat(file.fileno()).st_size
    entries = _declared_entries(file, size)
    if entries is None:
        raise CheckpointError(f"{path}: not a readable checkpoint (not a zip archive written by torch.save)")
    if entries > MAX_ENTRIES:
        raise CheckpointError(
            f"{path}: {entries:,} entries, more than the {MAX_ENTRIES:,} a checkpoint may hold"
        )
    file.seek(0)
    try:
        infos = zipfile.ZipFile(file).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint ({escape(str(error))[:200]})") from None
    declared = max(size, sum(info.file_size for info in infos))
    if declared > max_bytes:  # the parameter limit's error, as for a spec over it
        message = (
            f"the checkpoint holds {format_bytes(declared)} of data, over the limit of {format_bytes(max_bytes)} "
            "(four times max_param_bytes: the weights and an optimizer's state); raise max_param_bytes to load it"
        )
        raise SpecError([Problem((), message, str(path))])
    pickled = sum(info.file_size for info in infos if info.filename.endswith(".pkl"))
    if pickled > MAX_PICKLE_BYTES:
        raise CheckpointError(
            f"{path}: {format_bytes(pickled)} of pickled structure, more than the "
            f"{format_bytes(MAX_PICKLE_BYTES)} a checkpoint's names, settings and numbers take"
        )
    file.seek(0)


def _check_nesting(path: Path, data: Any) -> None:
    """CheckpointError where ``data`` nests deeper than MAX_DEPTH or holds more than MAX_VALUES
    values (a shared list counts at each place it appears); walked with a stack, not recursion."""
    top = data.items() if isinstance(data, Mapping) else [("", data)]
    stack = [(value, 1, str(key)) for key, value in top]  # (value, depth, the top-level key it is under)
    seen = 0
    while stack:
        value, depth, key = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise CheckpointError(
                f"{path}: more than {MAX_VALUES:,} values; not a checkpoint save_checkpoint writes"
            )
        if depth > MAX_DEPTH:
            where = f"key '{escape(key)[:60]}'" if key else "its data"
            raise CheckpointError(f"{path}: {where} nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            stack.extend((child, depth + 1, key) for child in value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((child, depth + 1, key) for child in value)


def _check_build(path: Path, how: dict[str, Any]) -> None:
    if how.get("features_only"):
        names = how.get("out_names")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise CheckpointError(f"{path}: key 'build.out_names' must be a list of layer names")
    elif not isinstance(how.get("aux"), bool):
        raise CheckpointError(f"{path}: key 'build.aux' must be true or false")
