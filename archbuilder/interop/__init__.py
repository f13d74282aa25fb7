"""Weights from torchvision: its GoogLeNet into a model built from ``specs/googlenet-torchvision.yaml``,
its Inception-v3 into a model built from ``specs/inception-v3.yaml``.

The two models compute the same function with different module names. A layout's rules
(:data:`GOOGLENET_RULES`, :data:`INCEPTION_V3_RULES`) pair them, module by module; everything
below a paired module keeps its name (torchvision's ``BasicConv2d`` has the same
``conv``/``bn`` children as a spec conv unit). Loading is all or nothing: every source tensor
must be used and every model parameter and buffer filled, with the same shapes and the same
conv and batch-norm settings, or :class:`InteropError` says what differs on both sides and,
where it is clear, how to fix it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = [
    "GOOGLENET_RULES",
    "INCEPTION_V3_RULES",
    "InteropError",
    "load_torchvision_googlenet",
    "load_torchvision_inception_v3",
    "torchvision_input_transform",
]

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

# specs/inception-v3.yaml names its blocks, branches and convs after torchvision's modules:
# torchvision's flat ``Mixed_5b.branch5x5_1`` is the conv ``branch5x5_1`` of branch
# ``branch5x5``; the E blocks' 1×3 / 3×1 pair ``branch3x3_2a``/``_2b`` is the nested block
# ``branch3x3_2`` with branches ``a`` and ``b``; a one-conv branch holds a conv named ``conv``.
INCEPTION_V3_RULES: tuple[tuple[str, str], ...] = (
    ("Conv2d_{stem}", "Conv2d_{stem}"),
    ("Mixed_{block}.{branch}_{n}{side}", "Mixed_{block}.{branch}.{branch}_{n}.{side}.conv"),
    ("Mixed_{block}.{branch}_{n}", "Mixed_{block}.{branch}.{branch}_{n}"),
    ("Mixed_{block}.{single}", "Mixed_{block}.{single}.conv"),
    ("AuxLogits.{aux}", "AuxLogits.{aux}"),
    ("fc", "fc"),
)
_FIELDS = {
    "block": r"\d[a-z]",
    "n": r"\d",
    "stem": r"\d[a-z]_\dx\d",
    "branch": r"branch[0-9a-z]+",
    "single": r"branch(?:_pool|[0-9a-z]+)",
    "side": r"[ab]",
    "aux": r"conv0|conv1|fc",
}

# Module settings that change what a paired module computes but not its tensors' shapes.
_SETTINGS = ("stride", "padding", "dilation", "groups", "padding_mode", "eps")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile
_SHOWN = 12  # entries per list in an error message; the exception's attributes hold them all


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # literal, field, literal, field, …
    seen: set[str] = set()
    pattern = ""
    for i, part in enumerate(parts):
        if not i % 2:
            pattern += re.escape(part)
        elif part in seen:  # a field written twice matches the same text twice
            pattern += f"(?P={part})"
        else:
            seen.add(part)
            pattern += f"(?P<{part}>{_FIELDS[part]})"
    return re.compile(pattern + r"\.")


@dataclass(frozen=True)
class _Layout:
    """What differs between the torchvision models archbuilder loads."""

    model: str  # torchvision's name for it, in messages
    spec: str  # the shipped spec that has its layout
    rules: tuple[tuple[str, str], ...]
    aux_prefixes: tuple[str, ...]  # torchvision names of aux-head tensors start so
    classifier: re.Pattern[str]  # tensors whose shapes follow num_classes
    to_model: list[tuple[re.Pattern[str], str]] = field(init=False)
    to_source: list[tuple[re.Pattern[str], str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "to_model", [(_compile(s), t) for s, t in self.rules])
        object.__setattr__(self, "to_source", [(_compile(t), s) for s, t in self.rules])


_GOOGLENET = _Layout(
    "GoogLeNet",
    "specs/googlenet-torchvision.yaml",
    GOOGLENET_RULES,
    ("aux1.", "aux2."),
    re.compile(r"(fc|aux\d\.fc2)\.(weight|bias)"),
)
_INCEPTION_V3 = _Layout(
    "Inception3",
    "specs/inception-v3.yaml",
    INCEPTION_V3_RULES,
    ("AuxLogits.",),
    re.compile(r"(fc|AuxLogits\.fc)\.(weight|bias)"),
)


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
        *,
        model: str = "GoogLeNet",
    ):
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.hints = hints
        layout = _LAYOUTS[model]
        lines = [f"the torchvision {model} does not fit the model; nothing was loaded"]
        sections = (
            ("missing from the source (model name ← the torchvision name it needs)", missing, _missing_line),
            ("unexpected in the source (torchvision → model name)", unexpected, _unexpected_line),
            ("mismatched (torchvision → model)", mismatched, _mismatch_line),
        )
        for title, entries, line in sections:
            if entries:
                lines.append(f"{title}: {len(entries)}")
                lines.extend(f"  {line(entry, layout)}" for entry in entries[:_SHOWN])
                if len(entries) > _SHOWN:
                    lines.append(f"  … and {len(entries) - _SHOWN} more")
        lines.extend(f"fix: {hint}" for hint in hints)
        super().__init__("\n".join(lines))


_LAYOUTS = {layout.model: layout for layout in (_GOOGLENET, _INCEPTION_V3)}


def _missing_line(name: str, layout: _Layout) -> str:
    return f"{name} ← {_rename(name, layout.to_source) or '(no torchvision counterpart)'}"


def _unexpected_line(name: str, layout: _Layout) -> str:
    target = _rename(name, layout.to_model)
    return f"{name} → {f'{target} (not in the model)' if target else '(no rule maps it)'}"


def _mismatch_line(entry: tuple[str, str, str], _: _Layout) -> str:
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
    return _load(model, source, _GOOGLENET)


def load_torchvision_inception_v3(model: M, source: nn.Module | Mapping[str, Tensor]) -> M:
    """Load a torchvision ``Inception3`` (``torchvision.models.inception_v3``; the module or its
    state dict) into ``model``, built from ``specs/inception-v3.yaml``, in place.

    As :func:`load_torchvision_googlenet`: ``aux=False`` for a source without its aux head,
    all or nothing, :class:`InteropError` listing what differs, and a warning for a source with
    ``transform_input=True`` (torchvision's ImageNet weights set it), whose transform
    :func:`torchvision_input_transform` reproduces.
    """
    return _load(model, source, _INCEPTION_V3)


def _load(model: M, source: nn.Module | Mapping[str, Tensor], layout: _Layout) -> M:
    if not isinstance(source, nn.Module | Mapping):
        raise TypeError(
            f"source must be a torchvision {layout.model} or its state dict, not {type(source).__name__}"
            " (load a checkpoint file with torch.load first)"
        )
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    expected = model.state_dict()
    renamed: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[tuple[str, str, str]] = []
    for name, tensor in state.items():
        target = _rename(name, layout.to_model)
        if target is None or target not in expected:
            unexpected.append(name)
        elif tensor.shape != expected[target].shape:
            mismatched.append((name, target, f"shape {_shape(tensor)} vs {_shape(expected[target])}"))
        else:
            renamed[target] = tensor
    shapeless = {target for _, target, _ in mismatched}
    missing = tuple(name for name in expected if name not in renamed and name not in shapeless)
    if isinstance(source, nn.Module):
        mismatched.extend(_setting_mismatches(model, source, renamed, layout))
    if missing or unexpected or mismatched:
        hints = _hints(model, state, expected, missing, tuple(unexpected), mismatched, layout)
        raise InteropError(missing, tuple(unexpected), tuple(mismatched), hints, model=layout.model)
    if getattr(source, "transform_input", False):
        warnings.warn(
            f"the torchvision {layout.model} has transform_input=True: its forward re-normalizes the input "
            "(from ImageNet mean and std to mean 0.5, std 0.5) and the spec-built model does not; to get "
            "its outputs, call the model on archbuilder.interop.torchvision_input_transform(x)",
            UserWarning,
            stacklevel=3,
        )
    model.load_state_dict(renamed)
    return model


def torchvision_input_transform(x: Tensor) -> Tensor:
    """torchvision GoogLeNet's and Inception3's ``transform_input``, exactly: channels 0–2 of an
    ImageNet-normalized batch re-normalized to mean 0.5, std 0.5 (further channels dropped, as
    torchvision does)."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _setting_mismatches(
    model: nn.Module, source: nn.Module, renamed: Mapping[str, Tensor], layout: _Layout
) -> list[tuple[str, str, str]]:
    """Paired conv and batch-norm modules whose stride, padding, eps, … differ."""
    pairs = {}
    for target in renamed:
        source_name = _rename(target, layout.to_source)
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
    layout: _Layout,
) -> tuple[str, ...]:
    for prefix in _WRAPPER_PREFIXES:
        if unexpected and all(name.startswith(prefix) for name in unexpected):
            return (f"the source's names start with {prefix!r} (a wrapped model): load its inner module",)
    hints = []
    is_aux = lambda name: name.startswith(layout.aux_prefixes)  # noqa: E731
    source_aux = any(is_aux(name) for name in state)
    model_aux = any(is_aux(name) for name in expected)
    if source_aux and not model_aux:
        tensors = " and ".join(f"{prefix}*" for prefix in layout.aux_prefixes)
        hints.append(
            "the source has aux heads and the model none: build the model with aux=True (the default), "
            f"or load the source's state dict without its {tensors} tensors"
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
        [name for name in missing if not is_aux(name)]
        + [name for name in unexpected if not is_aux(name)]
        + [source for source, _, _ in mismatched if not layout.classifier.fullmatch(source)]
    )
    if layout_problems:
        spec = getattr(model, "spec", None)
        built_from = f" (it was built from spec {spec.name!r})" if spec is not None else ""
        hints.append(
            f"the model does not have torchvision's {layout.model} layout{built_from}: build it from {layout.spec}"
        )
    return tuple(hints)
