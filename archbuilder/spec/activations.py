"""The activation functions a spec can name, and what each is everywhere else: the one table
the spec's validation, the builder, the inference optimizer, the torch importer and the
diagrams read. Strings only, no torch: the builder looks the torch names up itself."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ACTIVATION_NAMES", "REGISTRY", "Activation", "display_name"]


@dataclass(frozen=True)
class Activation:
    """One activation function.

    ``module``: the ``torch.nn`` class built for it, with ``module_args``; ``function``: the
    ``torch.nn.functional`` function (or ``torch.<name>``) used where no module is wanted;
    ``onednn``: the name oneDNN fuses into a conv, None when it cannot.
    """

    name: str
    display: str
    module: str
    function: str
    onednn: str | None
    module_args: dict[str, float] = field(default_factory=dict)
    inplace: bool = True  # the module takes inplace=True


REGISTRY: dict[str, Activation] = {
    entry.name: entry
    for entry in (
        Activation("relu", "ReLU", "ReLU", "relu", "relu"),
        Activation("relu6", "ReLU6", "ReLU6", "relu6", "hardtanh"),
        Activation(
            "leaky_relu", "LeakyReLU", "LeakyReLU", "leaky_relu", "leaky_relu", {"negative_slope": 0.01}
        ),
        Activation("gelu", "GELU", "GELU", "gelu", "gelu", inplace=False),
        Activation("silu", "SiLU", "SiLU", "silu", "swish"),
        Activation("hardswish", "Hardswish", "Hardswish", "hardswish", "hardswish"),
        Activation("hardsigmoid", "Hardsigmoid", "Hardsigmoid", "hardsigmoid", None),
        Activation("sigmoid", "Sigmoid", "Sigmoid", "torch.sigmoid", "sigmoid", inplace=False),
        Activation("tanh", "Tanh", "Tanh", "torch.tanh", "tanh", inplace=False),
    )
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(REGISTRY)


def display_name(function: str) -> str:
    """How a person writes the activation (``ReLU``, ``SiLU``); the name itself if unknown."""
    entry = REGISTRY.get(function)
    return entry.display if entry else function
