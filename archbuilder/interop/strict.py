"""The strict loader: a reference's state dict, renamed by a layout, into a spec-built model.

Loading is all or nothing: every source tensor must be used and every model parameter and
buffer filled, with the same shapes and (for a module source) the same conv and batch-norm
settings, or :class:`InteropError` says what differs on both sides and, where it is clear,
how to fix it. Nothing is changed before everything fits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from torch import Tensor, nn

from archbuilder.interop.layout import Layout

__all__ = ["InteropError", "load_strict"]

M = TypeVar("M", bound=nn.Module)

# Module settings that change what a paired module computes but not its tensors' shapes.
_SETTINGS = ("stride", "padding", "dilation", "groups", "padding_mode", "eps")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile
_EPS = re.compile(r"\beps (\S+) vs ")
_SHOWN = 12  # entries per list in an error message; the exception's attributes hold them all


class InteropError(ValueError):
    """A source's tensors do not fit the model; nothing was loaded.

    ``missing``: model names that no source tensor fills. ``unexpected``: source names that no
    model tensor takes. ``mismatched``: ``(source name, model name, difference)`` for tensors of
    different shapes and modules with different settings. ``hints``: suggested fixes.
    ``layout``: the :class:`~archbuilder.interop.layout.Layout` the names were paired by.
    """

    def __init__(
        self,
        missing: tuple[str, ...],
        unexpected: tuple[str, ...],
        mismatched: tuple[tuple[str, str, str], ...],
        hints: tuple[str, ...],
        *,
        layout: Layout,
    ):
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.hints = hints
        self.layout = layout
        renamer, library = layout.renamer(), layout.library
        lines = [f"the {layout.reference} does not fit the model; nothing was loaded"]
        sections = (
            (
                f"missing from the source (model name ← the {library} name it needs)",
                missing,
                lambda name: f"{name} ← {renamer.to_source(name) or f'(no {library} counterpart)'}",
            ),
            (
                f"unexpected in the source ({library} → model name)",
                unexpected,
                lambda name: f"{name} → {_target(renamer.to_model(name))}",
            ),
            (f"mismatched ({library} → model)", mismatched, lambda entry: "{} → {}: {}".format(*entry)),
        )
        for title, entries, line in sections:
            if entries:
                lines.append(f"{title}: {len(entries)}")
                lines.extend(f"  {line(entry)}" for entry in entries[:_SHOWN])
                if len(entries) > _SHOWN:
                    lines.append(f"  … and {len(entries) - _SHOWN} more")
        lines.extend(f"fix: {hint}" for hint in hints)
        super().__init__("\n".join(lines))


def _target(name: str | None) -> str:
    return f"{name} (not in the model)" if name else "(no rule maps it)"


def load_strict(model: M, source: nn.Module | Mapping[str, Tensor], layout: Layout) -> M:
    """Load ``source`` (a module or its state dict) into ``model`` by ``layout``, in place."""
    if not isinstance(source, nn.Module | Mapping):
        raise TypeError(
            f"source must be a {layout.reference} or its state dict, not {type(source).__name__}"
            " (load a checkpoint file with torch.load first)"
        )
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    expected = model.state_dict()
    renamer = layout.renamer()
    renamed: dict[str, Tensor] = {}
    origins: dict[str, str] = {}  # model name → the source name loaded into it
    unexpected: list[str] = []
    mismatched: list[tuple[str, str, str]] = []
    reshaped: set[str] = set()  # model names whose tensor the layout lets take another shape
    for name, tensor in state.items():
        target = renamer.to_model(name)
        if target is None or target not in expected:
            unexpected.append(name)
        elif tensor.shape != expected[target].shape and not _reshapes(layout, target, tensor, expected):
            mismatched.append((name, target, f"shape {_shape(tensor)} vs {_shape(expected[target])}"))
        else:
            if tensor.shape != expected[target].shape:
                tensor = tensor.reshape(expected[target].shape)
                reshaped.add(target)
            renamed[target], origins[target] = tensor, name
    shapeless = {target for _, target, _ in mismatched}
    missing = tuple(name for name in expected if name not in renamed and name not in shapeless)
    if isinstance(source, nn.Module):
        free = {target.rpartition(".")[0] for target in reshaped}  # paired by name and shape only
        paired = {target: name for target, name in origins.items() if target.rpartition(".")[0] not in free}
        mismatched.extend(_setting_mismatches(model, source, paired))
    if missing or unexpected or mismatched:
        hints = _hints(model, state, expected, missing, tuple(unexpected), mismatched, layout)
        raise InteropError(missing, tuple(unexpected), tuple(mismatched), hints, layout=layout)
    model.load_state_dict(renamed)
    return model


_SETTING_OWNERS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.Linear)


def _reshapes(layout: Layout, target: str, tensor: Tensor, expected: Mapping[str, Tensor]) -> bool:
    """Whether the layout lets ``tensor`` fill model tensor ``target`` in its shape."""
    return layout.reshapes(target) and tensor.numel() == expected[target].numel()


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _setting_mismatches(
    model: nn.Module, source: nn.Module, origins: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """Paired conv, batch-norm and linear modules whose kind, stride, padding, eps, … differ.

    Only these carry settings that change what the same tensors compute; a tensor owned by
    a larger module on one side (timm's layer-scale ``gamma`` belongs to its whole block) is
    paired by name and shape alone."""
    pairs = {target.rpartition(".")[0]: name.rpartition(".")[0] for target, name in origins.items()}
    found = []
    for target, source_name in pairs.items():
        ours, theirs = model.get_submodule(target), source.get_submodule(source_name)
        if not isinstance(ours, _SETTING_OWNERS):
            continue
        # A subclass computes the same (timm's BatchNormAct2d is a BatchNorm2d with its activation).
        if not isinstance(theirs, type(ours)):
            found.append((source_name, target, f"{type(theirs).__name__} vs {type(ours).__name__}"))
            continue
        differences = [
            f"{setting} {getattr(theirs, setting)!r} vs {getattr(ours, setting)!r}"
            for setting in _SETTINGS
            if hasattr(ours, setting) and getattr(theirs, setting) != getattr(ours, setting)
        ]
        if differences:
            found.append((source_name, target, ", ".join(differences)))
    return found


def _hints(
    model: nn.Module,
    state: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    missing: tuple[str, ...],
    unexpected: tuple[str, ...],
    mismatched: list[tuple[str, str, str]],
    layout: Layout,
) -> tuple[str, ...]:
    for prefix in _WRAPPER_PREFIXES:
        if unexpected and all(name.startswith(prefix) for name in unexpected):
            return (f"the source's names start with {prefix!r} (a wrapped model): load its inner module",)
    hints = [*_aux_hints(state, expected, layout), *_class_hints(state, expected, layout)]
    hints += _eps_hints(mismatched)
    renamer = layout.renamer()
    model_aux = [name for name in missing if layout.is_aux(renamer.to_source(name) or "")]
    layout_problems = (
        [name for name in missing if name not in model_aux]
        + [name for name in unexpected if not layout.is_aux(name)]
        + [name for name, _, difference in mismatched if not _explained(name, difference, layout)]
    )
    if layout_problems:
        spec = getattr(model, "spec", None)
        built_from = f" (it was built from spec {spec.name!r})" if spec is not None else ""
        hints.append(
            f"the model does not have the {layout.reference} layout{built_from}: build it from {layout.shipped_spec}"
        )
    return tuple(hints)


def _explained(name: str, difference: str, layout: Layout) -> bool:
    """A mismatch another hint already accounts for (the class count, a batch-norm eps)."""
    return layout.is_classifier(name) or difference.startswith("eps ")


def _aux_hints(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], layout: Layout) -> list[str]:
    if not layout.aux:
        return []
    renamer = layout.renamer()
    source_aux = any(layout.is_aux(name) for name in state)
    model_aux = any(layout.is_aux(renamer.to_source(name) or "") for name in expected)
    if source_aux and not model_aux:
        tensors = " and ".join(f"{prefix}*" for prefix in layout.aux)
        return [
            "the source has aux heads and the model none: build the model with aux=True (the default), "
            f"or load the source's state dict without its {tensors} tensors"
        ]
    if model_aux and not source_aux:
        return ["the source has no aux heads (aux_logits=False): build the model with aux=False"]
    return []


def _class_hints(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], layout: Layout) -> list[str]:
    if not layout.classifier:
        return []
    weight = f"{layout.classifier[0]}.weight"
    target = layout.renamer().to_model(weight)
    if weight in state and target in expected:
        classes, ours = state[weight].shape[0], expected[target].shape[0]
        if classes != ours:
            return [
                f"the source has {classes} classes, the model {ours}: build it with num_classes={classes}"
            ]
    return []


def _eps_hints(mismatched: list[tuple[str, str, str]]) -> list[str]:
    values = {found[1] for _, _, difference in mismatched if (found := _EPS.search(difference))}
    if len(values) != 1:
        return []
    (eps,) = values
    return [f"the source's batch norms have eps {eps}: build from the spec with defaults.conv.bn_eps: {eps}"]
