"""Weights from torchvision: its GoogLeNet into a model built from ``specs/googlenet-torchvision.yaml``.

The two models compute the same function with different module names. :data:`GOOGLENET_RULES`
pairs them, module by module; everything below a paired module keeps its name (torchvision's
``BasicConv2d`` has the same ``conv``/``bn`` children as a spec conv unit). Loading is all or
nothing: every source tensor must be used and every model parameter and buffer filled, with
the same shapes and the same conv and batch-norm settings, or :class:`InteropError` says what
differs on both sides and, where it is clear, how to fix it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = ["GOOGLENET_RULES", "InteropError", "load_torchvision_googlenet", "torchvision_input_transform"]

M = TypeVar("M", bound=nn.Module)

# (torchvision module, spec-built module). ``{block}`` is an Inception block (3a … 5b), ``{n}``
# an aux head's number; a rule pairs the module and everything below it.
GOOGLENET_RULES: tuple[tuple[str, str], ...] = (
    ("conv1", "conv1"),
    ("conv2", "conv2_reduce"),
    ("conv3", "conv2"),
    ("inception{block}.branch1", "{block}.branch1x1.conv"),
    ("inception{block}.branch2.0", "{block}.branch3x3.reduce"),
    ("inception{block}.branch2.1", "{block}.branch3x3.conv"),
    ("inception{block}.branch3.0", "{block}.branch5x5.reduce"),  # a 3×3 conv in both models
    ("inception{block}.branch3.1", "{block}.branch5x5.conv"),
    ("inception{block}.branch4.1", "{block}.branch_pool.proj"),  # branch4.0 is the max pool
    ("aux{n}.conv", "aux{n}.conv"),
    ("aux{n}.fc1", "aux{n}.fc1"),
    ("aux{n}.fc2", "aux{n}.fc2"),
    ("fc", "fc"),
)
_FIELDS = {"block": r"\d[a-z]", "n": r"\d"}

# Module settings that change what a paired module computes but not its tensors' shapes.
_SETTINGS = ("stride", "padding", "dilation", "groups", "padding_mode", "eps")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile
_CLASSIFIER = re.compile(r"(fc|aux\d\.fc2)\.(weight|bias)")  # its shapes follow num_classes
_SHOWN = 12  # entries per list in an error message; the exception's attributes hold them all


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # literal, field, literal, field, …
    pattern = "".join(
        f"(?P<{part}>{_FIELDS[part]})" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(pattern + r"\.")


_TO_MODEL = [(_compile(source), target) for source, target in GOOGLENET_RULES]
_TO_SOURCE = [(_compile(target), source) for source, target in GOOGLENET_RULES]


def _rename(name: str, rules: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, template in rules:
        match = pattern.match(name)
        if match:
            return f"{template.format(**match.groupdict())}.{name[match.end() :]}"
    return None


class InteropError(ValueError):
    """A source's tensors do not fit the model; nothing was loaded.

    ``missing``: model names that no source tensor fills. ``unexpected``: source names that no
    model tensor takes. ``mismatched``: ``(source name, model name, difference)`` for tensors of
    different shapes and modules with different settings. ``hints``: suggested fixes.
    """

    def __init__(
        self,
        missing: tuple[str, ...],
        unexpected: tuple[str, ...],
        mismatched: tuple[tuple[str, str, str], ...],
        hints: tuple[str, ...],
    ):
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.hints = hints
        lines = ["the torchvision GoogLeNet does not fit the model; nothing was loaded"]
        sections = (
            ("missing from the source (model name ← the torchvision name it needs)", missing, _missing_line),
            ("unexpected in the source (torchvision → model name)", unexpected, _unexpected_line),
            ("mismatched (torchvision → model)", mismatched, _mismatch_line),
        )
        for title, entries, line in sections:
            if entries:
                lines.append(f"{title}: {len(entries)}")
                lines.extend(f"  {line(entry)}" for entry in entries[:_SHOWN])
                if len(entries) > _SHOWN:
                    lines.append(f"  … and {len(entries) - _SHOWN} more")
        lines.extend(f"fix: {hint}" for hint in hints)
        super().__init__("\n".join(lines))


def _missing_line(name: str) -> str:
    return f"{name} ← {_rename(name, _TO_SOURCE) or '(no torchvision counterpart)'}"


def _unexpected_line(name: str) -> str:
    target = _rename(name, _TO_MODEL)
    return f"{name} → {f'{target} (not in the model)' if target else '(no rule maps it)'}"


def _mismatch_line(entry: tuple[str, str, str]) -> str:
    source, target, difference = entry
    return f"{source} → {target}: {difference}"


def load_torchvision_googlenet(model: M, source: nn.Module | Mapping[str, Tensor]) -> M:
    """Load a torchvision ``GoogLeNet`` (the module or its state dict) into ``model``, in place.

    ``model`` is built from ``specs/googlenet-torchvision.yaml``, with ``aux=False`` when the
    source has no aux heads (``aux_logits=False``). Returns ``model``. Raises
    :class:`InteropError`, before changing anything, when a tensor is left over on either side
    or differs in shape, or (for a module source) a paired conv or batch norm has other settings.

    A source module with ``transform_input=True`` re-normalizes its input inside ``forward``;
    the built model does not, so this warns: feed it :func:`torchvision_input_transform` ``(x)``.
    A state dict does not record ``transform_input``: torchvision's ImageNet weights set it.
    """
    if not isinstance(source, nn.Module | Mapping):
        raise TypeError(
            f"source must be a torchvision GoogLeNet or its state dict, not {type(source).__name__}"
            " (load a checkpoint file with torch.load first)"
        )
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    expected = model.state_dict()
    renamed: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[tuple[str, str, str]] = []
    for name, tensor in state.items():
        target = _rename(name, _TO_MODEL)
        if target is None or target not in expected:
            unexpected.append(name)
        elif tensor.shape != expected[target].shape:
            mismatched.append((name, target, f"shape {_shape(tensor)} vs {_shape(expected[target])}"))
        else:
            renamed[target] = tensor
    shapeless = {target for _, target, _ in mismatched}
    missing = tuple(name for name in expected if name not in renamed and name not in shapeless)
    if isinstance(source, nn.Module):
        mismatched.extend(_setting_mismatches(model, source, renamed))
    if missing or unexpected or mismatched:
        hints = _hints(model, state, expected, missing, tuple(unexpected), mismatched)
        raise InteropError(missing, tuple(unexpected), tuple(mismatched), hints)
    if getattr(source, "transform_input", False):
        warnings.warn(
            "the torchvision GoogLeNet has transform_input=True: its forward re-normalizes the input "
            "(from ImageNet mean and std to mean 0.5, std 0.5) and the spec-built model does not; to get "
            "its outputs, call the model on archbuilder.interop.torchvision_input_transform(x)",
            UserWarning,
            stacklevel=2,
        )
    model.load_state_dict(renamed)
    return model


def torchvision_input_transform(x: Tensor) -> Tensor:
    """torchvision GoogLeNet's ``transform_input``, exactly: channels 0–2 of an ImageNet-normalized
    batch re-normalized to mean 0.5, std 0.5 (further channels dropped, as torchvision does)."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _setting_mismatches(
    model: nn.Module, source: nn.Module, renamed: Mapping[str, Tensor]
) -> list[tuple[str, str, str]]:
    """Paired conv and batch-norm modules whose stride, padding, eps, … differ."""
    pairs = {}
    for target in renamed:
        source_name = _rename(target, _TO_SOURCE)
        assert source_name is not None  # every loaded name came through a rule
        pairs[target.rpartition(".")[0]] = source_name.rpartition(".")[0]
    found = []
    for target, source_name in pairs.items():
        ours, theirs = model.get_submodule(target), source.get_submodule(source_name)
        if type(ours) is not type(theirs):
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
) -> tuple[str, ...]:
    for prefix in _WRAPPER_PREFIXES:
        if unexpected and all(name.startswith(prefix) for name in unexpected):
            return (f"the source's names start with {prefix!r} (a wrapped model): load its inner module",)
    hints = []
    source_aux = any(name.startswith("aux") for name in state)
    model_aux = any(name.startswith("aux") for name in expected)
    if source_aux and not model_aux:
        hints.append(
            "the source has aux heads and the model none: build the model with aux=True (the default), "
            "or load the source's state dict without its aux1.* and aux2.* tensors"
        )
    if model_aux and not source_aux:
        hints.append("the source has no aux heads (aux_logits=False): build the model with aux=False")
    if "fc.weight" in state and "fc.weight" in expected:
        classes, ours = state["fc.weight"].shape[0], expected["fc.weight"].shape[0]
        if classes != ours:
            hints.append(
                f"the source has {classes} classes, the model {ours}: build it with num_classes={classes}"
            )
    layout_problems = (
        [name for name in missing if not name.startswith("aux")]
        + [name for name in unexpected if not name.startswith("aux")]
        + [source for source, _, _ in mismatched if not _CLASSIFIER.fullmatch(source)]
    )
    if layout_problems:
        spec = getattr(model, "spec", None)
        built_from = f" (it was built from spec {spec.name!r})" if spec is not None else ""
        hints.append(
            "the model does not have torchvision's GoogLeNet layout"
            f"{built_from}: build it from specs/googlenet-torchvision.yaml"
        )
    return tuple(hints)
