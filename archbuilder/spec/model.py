"""The top-level spec model: input, defaults, stem / blocks / head, auxiliary heads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from archbuilder.spec.blocks import Layer
from archbuilder.spec.layers import ConvOptions, Name, Positive, SpecModel, Width
from archbuilder.spec.source import Source
from archbuilder.spec.templates import Template

__all__ = ["ArchSpec", "AuxHead", "Defaults", "InputShape", "Precision", "Scale"]


class InputShape(SpecModel):
    """Shape of one input sample."""

    channels: Width
    """Input channels."""
    height: Positive
    """Input height."""
    width: Positive
    """Input width."""


class Defaults(SpecModel):
    """Settings layers inherit unless they override them."""

    conv: ConvOptions = ConvOptions()
    """Conv settings every conv inherits unless a block or the layer sets them."""


class Scale(SpecModel):
    """Compound scaling: every conv width times ``width`` (rounded to a multiple of
    ``divisor``, never below it, as torchvision's and timm's ``make_divisible``), every
    ``repeat`` above 1 — and every ``inverted_residual`` stage's, even 1 — times ``depth``
    (rounded half up, or up with ``depth_rounding: ceil``; at least 1). Linear layers keep
    their widths."""

    width: Annotated[float, Field(gt=0, le=16)] = 1.0
    """Width multiplier for every conv's `out`, every Inception width and inverted-residual
    width (`out`, `expanded`, an SE's `squeeze_channels`), aux heads included (linear layers keep theirs)."""
    depth: Annotated[float, Field(gt=0, le=16)] = 1.0
    """Depth multiplier for every `repeat` above 1, and for every `inverted_residual` stage's
    repeat even at 1 (rounded as `depth_rounding` says, at least 1)."""
    depth_rounding: Literal["round", "ceil"] = "round"
    """How a scaled repeat is rounded: `round` (half up) or `ceil` (torchvision's EfficientNet:
    `math.ceil(n · depth)`)."""
    divisor: Annotated[int, Field(strict=True, ge=1, le=256)] = 8
    """Scaled widths are multiples of this, never below it."""


class Precision(SpecModel):
    """How reduced-precision inference (bf16, int8) treats this network's layers."""

    keep_fp32: list[Name] | None = None
    """Top-level layers (stem, blocks or head entries, by name) that bf16 and int8 inference keep
    in float32. Default: the head's linear layers (the classifier). `[]` keeps none."""


class AuxHead(SpecModel):
    """An auxiliary classifier that taps the output of a named stem layer or block."""

    name: Name
    """Name of the head; shares the top-level name scope."""
    tap: Name
    """The stem or blocks entry whose output the head reads, by name (automatic names such as
    `inception1` work too); not a `head` entry, nor a layer inside a block. The name of a
    repeated layer reads its last copy."""
    loss_weight: Annotated[float, Field(ge=0, le=1000)]
    """Weight of this head's loss in `compute_loss`."""
    layers: Annotated[list[Layer], Field(min_length=1)]
    """The head's layers."""


class ArchSpec(SpecModel):
    """A whole network. Top-level layers run in order: ``stem``, then ``blocks``, then ``head``.

    The three sections differ only in what they tell readers and tools (diagrams group by
    them; feature extraction stops before ``head``). ``templates`` holds block templates as
    written; validation replaces each ``kind: template`` layer by its expansion.
    """

    format: Literal[1] = 1
    """Spec format version. This archbuilder reads only `1`."""
    name: Annotated[str, Field(min_length=1, max_length=200)]
    """Model name, shown by `summary` and `build`."""
    description: str = ""
    """Free text."""
    input: InputShape
    """Shape of one input sample (no batch dimension)."""
    num_classes: Width | None = None
    """The value of `out: num_classes` in linear layers."""
    defaults: Defaults = Defaults()
    """Settings every layer inherits unless a block or the layer sets them."""
    drop_path_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Stochastic depth for the `drop_path` layers that leave `rate` unset: their rates ramp
    linearly from 0 at the first to this at the last, in network order (timm's `drop_path_rate`)."""
    drop_path_ramp: Literal["linear", "block_index"] = "linear"
    """How `drop_path_rate` ramps: `linear` from 0 at the first unset `drop_path` to the rate at
    the last (timm; torchvision's ConvNeXt), or `block_index`: rate · i / N, where i is the
    0-based index of the layer's `blocks` entry among the N `blocks` entries (torchvision's
    EfficientNet, `stochastic_depth_prob * block_id / total_blocks`, blocks without a drop path counted too)."""
    scale: Scale | None = None
    """Width and depth multipliers applied when the spec is lowered."""
    templates: dict[Name, Template] = {}
    """Mapping of template name to template: a block written once with parameters, used by `kind: template` layers."""
    stem: list[Layer] = []
    """Layers that run first."""
    blocks: Annotated[list[Layer], Field(min_length=1)]
    """Layers that run after the stem."""
    head: list[Layer] = []
    """Layers that run last; their output is the model's output."""
    aux_heads: list[AuxHead] = []
    """Auxiliary classifiers for training, each reading a stem or blocks entry."""
    feature_maps: list[Name] | None = None
    """The stem/blocks entries a `features_only` build returns by default (its stages), in
    order, as a reference implementation lists them (timm's `feature_info`). Unset: the last
    entry at each nominal stride."""
    precision: Precision | None = None
    """Per-layer precision policy for bf16 and int8 inference (`optimize_for_inference`, `quantize`)."""

    _source: Source | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _expand_templates(cls, data: Any, info: ValidationInfo) -> Any:
        # load_spec expands first, with locations, and says so; plain model_validate calls land here.
        if (info.context or {}).get("templates_expanded"):
            return data
        from archbuilder.spec.expand import expand_templates

        expanded, _, problems, _ = expand_templates(data, Source())
        if problems:
            raise ValueError("; ".join(str(problem).removeprefix("<spec>: ") for problem in problems))
        return expanded

    def __eq__(self, other: object) -> bool:
        # Specs are equal when their data is; where they were loaded from does not matter.
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable

    @classmethod
    def from_data(
        cls, data: dict[str, Any], source: Source | None = None, *, templates_expanded: bool = False
    ) -> ArchSpec:
        """The spec ``data`` describes (pydantic's ValidationError when it is not valid), with
        ``source`` (where each key was written) kept for error locations and the page."""
        context = {"templates_expanded": True} if templates_expanded else None
        spec = cls.model_validate(data, context=context)
        spec._source = source
        return spec

    @property
    def source(self) -> Source | None:
        """Where this spec was loaded from (file and key positions), if it was loaded."""
        return self._source

    def to_dict(self) -> dict[str, Any]:
        """Plain data, leaving out values equal to their defaults (``format`` is always kept)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return {"format": self.format, **data}

    def with_num_classes(self, num_classes: int) -> ArchSpec:
        """This spec with ``num_classes`` replaced (its source kept, for error locations)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, not {num_classes!r}")
        return type(self).from_data({**self.to_dict(), "num_classes": num_classes}, self._source)

    def to_yaml(self) -> str:
        """YAML text that loads back to an equal spec."""
        from archbuilder.spec.dump import dump_yaml

        return dump_yaml(self.to_dict())
