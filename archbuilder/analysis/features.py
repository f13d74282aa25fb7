"""Feature maps of a model's top-level entries: which ones a request names, their shapes and
reductions. Computed from the IR, so nothing is built and torch is not imported.

Reductions follow timm's ``feature_info`` convention: the *nominal* stride, the product of
the strides on the way from the input (an unpadded 3×3 conv shrinks a map by two pixels but
does not change it), so Inception-v3's maps are at 2, 4, 8, 16 and 32 however its convs pad.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from archbuilder.core.errors import did_you_mean
from archbuilder.ir import IR, as_ir
from archbuilder.ir.graph import Shape, TopLevel
from archbuilder.spec import ArchSpec

__all__ = ["FeatureInfo", "FeatureMap", "check_taps", "feature_info", "nominal_strides", "stages"]


@dataclass(frozen=True)
class FeatureMap:
    """One feature map: the top-level entry producing it, its shape and its reduction."""

    name: str
    shape: Shape  # (C, H, W) of one sample
    reduction: int  # the nominal stride: product of the strides from the input (timm's convention)

    @property
    def channels(self) -> int:
        return self.shape[0]


class FeatureInfo(tuple[FeatureMap, ...]):
    """The feature maps a ``features_only`` model returns, in its output order."""

    def names(self) -> list[str]:
        return [feature.name for feature in self]

    def channels(self) -> list[int]:
        return [feature.channels for feature in self]

    def reductions(self) -> list[int]:
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


_NORMS = frozenset({"batchnorm", "layernorm"})


def nominal_strides(ir: IR) -> dict[str, int]:
    """Each op's nominal stride along the height: the largest product of the strides on a path
    from the input. A pool to a fixed size counts as the stride that gives it (rounded)."""
    strides: dict[str, int] = {}
    for op in ir.ops():
        inputs = list(ir.graph.predecessors(op.id))
        base = max((strides[source] for source in inputs), default=1)
        own = op.attrs.get("stride", (1, 1))[0]
        if op.kind in ("adaptive_avgpool", "global_avgpool"):
            own = max(1, round(ir.op(inputs[0]).shape[1] / op.shape[1]))
        strides[op.id] = base * own
    return strides


def stages(ir: IR) -> tuple[str, ...]:
    """The last stem/blocks entry at each nominal stride, in order: the feature pyramid timm's
    ``features_only`` models return.

    A standalone norm entry just before a downsampling entry opens the next stage (the
    downsample of ConvNeXt-style stages, norm then strided conv), so the stage before it ends
    at its input. A spec's ``feature_maps``, when it lists them, are the stages instead.
    """
    if ir.feature_maps:
        return ir.feature_maps
    strides = nominal_strides(ir)
    entries = _mappable(ir)
    stage = [strides[entry.output] for entry in entries]
    for index in range(len(entries) - 2, -1, -1):
        if entries[index].kind in _NORMS and stage[index + 1] > stage[index]:
            stage[index] = stage[index + 1]
    last: list[str] = []
    for index, entry in enumerate(entries):
        if index and stage[index] == stage[index - 1]:
            last[-1] = entry.name
        else:
            last.append(entry.name)
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
    ir = as_ir(spec)
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
    strides = nominal_strides(ir)
    features = []
    for name in names:
        output = _entry(ir, name).output
        features.append(FeatureMap(name, ir.op(output).shape, strides[output]))
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
