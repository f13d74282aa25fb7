"""The top-level spec model: input, defaults, stem / blocks / head, auxiliary heads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr

from archbuilder.spec.blocks import Layer
from archbuilder.spec.layers import ConvOptions, Name, Positive, SpecModel, Width
from archbuilder.spec.source import Source

__all__ = ["ArchSpec", "AuxHead", "Defaults", "InputShape", "Scale"]


class InputShape(SpecModel):
    """Shape of one input sample."""

    channels: Width
    height: Positive
    width: Positive


class Defaults(SpecModel):
    """Settings layers inherit unless they override them."""

    conv: ConvOptions = ConvOptions()


class Scale(SpecModel):
    """Compound scaling: every conv width times ``width`` (rounded to a multiple of
    ``divisor``, never below it), every ``repeat`` above 1 times ``depth`` (rounded, at least 1).
    Linear layers keep their widths."""

    width: Annotated[float, Field(gt=0, le=16)] = 1.0
    depth: Annotated[float, Field(gt=0, le=16)] = 1.0
    divisor: Annotated[int, Field(strict=True, ge=1, le=256)] = 8


class AuxHead(SpecModel):
    """An auxiliary classifier that taps the output of a named stem layer or block."""

    name: Name
    tap: Name
    loss_weight: Annotated[float, Field(ge=0, le=1000)]
    layers: Annotated[list[Layer], Field(min_length=1)]


class ArchSpec(SpecModel):
    """A whole network. Top-level layers run in order: ``stem``, then ``blocks``, then ``head``.

    The three sections differ only in what they tell readers and tools (diagrams group by
    them; feature extraction stops before ``head``).
    """

    format: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    input: InputShape
    num_classes: Width | None = None
    defaults: Defaults = Defaults()
    scale: Scale | None = None
    stem: list[Layer] = []
    blocks: Annotated[list[Layer], Field(min_length=1)]
    head: list[Layer] = []
    aux_heads: list[AuxHead] = []

    _source: Source | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # Specs are equal when their data is; where they were loaded from does not matter.
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable

    @property
    def source(self) -> Source | None:
        """Where this spec was loaded from (file and key positions), if it was loaded."""
        return self._source

    def to_dict(self) -> dict[str, Any]:
        """Plain data, leaving out values equal to their defaults (``format`` is always kept)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return {"format": self.format, **data}

    def to_yaml(self) -> str:
        """YAML text that loads back to an equal spec."""
        from archbuilder.spec.dump import dump_yaml

        return dump_yaml(self.to_dict())
