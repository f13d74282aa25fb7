"""Feature maps of a model's top-level entries: which ones a request names, their shapes and
reductions. Computed from the IR, so nothing is built and torch is not imported."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from archbuilder.errors import did_you_mean
from archbuilder.ir import IR, lower
from archbuilder.ir.graph import Shape, TopLevel
from archbuilder.spec import ArchSpec, load_spec

__all__ = ["FeatureInfo", "FeatureMap", "check_taps", "feature_info", "stages"]


@dataclass(frozen=True)
class FeatureMap:
    """One feature map: the top-level entry producing it, its shape and its reduction."""

    name: str
    shape: Shape  # (C, H, W) of one sample
    reduction: float  # input height / feature map height (an int when it divides)

    @property
    def channels(self) -> int:
        return self.shape[0]


class FeatureInfo(tuple[FeatureMap, ...]):
    """The feature maps a ``features_only`` model returns, in its output order."""

    def names(self) -> list[str]:
        return [feature.name for feature in self]

    def channels(self) -> list[int]:
        return [feature.channels for feature in self]

    def reductions(self) -> list[float]:
        return [feature.reduction for feature in self]


def check_taps(at: str | Iterable[str], available: Sequence[str]) -> list[str]:
    """``at`` as a list of distinct names, each one of ``available``; ValueError otherwise."""
    names = [at] if isinstance(at, str) else list(at)
    if not names:
        raise ValueError("no feature maps requested: name at least one top-level entry")
    known = set(available)
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"feature map names are strings, not {name!r}")
        if name not in known:
            raise ValueError(_unknown(name, available))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"feature map{'s' if len(duplicates) > 1 else ''} requested twice: {', '.join(duplicates)}"
        )
    return names


def _unknown(name: str, available: Sequence[str]) -> str:
    copies = [
        entry for entry in available if entry.startswith(f"{name}_") and entry[len(name) + 1 :].isdigit()
    ]
    if copies:
        return f"'{name}' is a repeated layer; name one of its copies: {', '.join(copies)}"
    return (
        f"no top-level entry named '{name}'{did_you_mean(name, available)}; "
        f"the entries are: {', '.join(available)}"
    )


def stages(ir: IR) -> tuple[str, ...]:
    """The last stem/blocks entry at each spatial size, in order: the usual feature pyramid."""
    last: list[str] = []
    size: tuple[int, ...] | None = None
    for entry in _mappable(ir):
        shape = ir.op(entry.output).shape
        if shape[1:] == size:
            last[-1] = entry.name
        else:
            last.append(entry.name)
            size = shape[1:]
    return tuple(last)


def feature_info(
    spec: ArchSpec | IR | str | Path,
    *,
    out_names: Iterable[str] | None = None,
    out_indices: Iterable[int] | None = None,
) -> FeatureInfo:
    """The feature maps a ``features_only`` build of ``spec`` returns.

    ``out_names`` picks stem/blocks entries by name; ``out_indices`` picks from
    :func:`stages` (negative indices count from the end); neither gives every stage.
    """
    ir = spec if isinstance(spec, IR) else lower(spec if isinstance(spec, ArchSpec) else load_spec(spec))
    mappable = [entry.name for entry in _mappable(ir)]
    if out_names is not None and out_indices is not None:
        raise ValueError("give out_names or out_indices, not both")
    if out_indices is not None:
        names = _by_index(stages(ir), out_indices)
    elif out_names is not None:
        head = [entry.name for entry in ir.top_level if entry.section == "head"]
        names = list([out_names] if isinstance(out_names, str) else out_names)
        for name in names:
            if name in head:
                raise ValueError(
                    f"'{name}' is in the head, which a features_only model leaves out; "
                    f"use model.features(x, at=[{name!r}]) on the full model"
                )
        names = check_taps(names, mappable)
    else:
        names = list(stages(ir))
    height = ir.input_shape[1]
    features = []
    for name in names:
        shape = ir.op(_entry(ir, name).output).shape
        reduction = height // shape[1] if height % shape[1] == 0 else height / shape[1]
        features.append(FeatureMap(name, shape, reduction))
    return FeatureInfo(features)


def _mappable(ir: IR) -> list[TopLevel]:
    """Stem and blocks entries whose output is a (C, H, W) feature map."""
    return [
        entry
        for entry in ir.top_level
        if entry.section in ("stem", "blocks") and len(ir.op(entry.output).shape) == 3
    ]


def _entry(ir: IR, name: str) -> TopLevel:
    return next(entry for entry in ir.top_level if entry.name == name)


def _by_index(names: tuple[str, ...], indices: Iterable[int]) -> list[str]:
    picked = []
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not -len(names) <= index < len(names):
            raise ValueError(
                f"out_indices: {index!r} is not an index of the {len(names)} stages "
                f"({', '.join(names)}); use 0 to {len(names) - 1} or negative indices"
            )
        picked.append(names[index])
    return check_taps(picked, names)
