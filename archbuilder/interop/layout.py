"""Weight layouts: how a reference implementation's tensor names pair with a spec's, as data.

A layout is a YAML file (the shipped ones are ``archbuilder/interop/layouts/*.yaml``); its
format is in docs/python-api.md#weight-layouts. :func:`load_layout` reads one, by shipped name
or path, and refuses a bad one with located ``file:line:col`` problems; :func:`layout_for`
finds the shipped layout that fits a spec-built model and a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, PrivateAttr, ValidationError, field_validator

from archbuilder.core.errors import SpecError
from archbuilder.interop.rules import Renamer, Rule, RuleError
from archbuilder.spec.layers import SpecModel
from archbuilder.spec.load import read_spec_text
from archbuilder.spec.source import parse_yaml
from archbuilder.spec.validate import problems_from_validation

__all__ = ["LAYOUTS", "Layout", "Pass", "layout_for", "load_layout", "shipped_layouts"]

LAYOUTS = Path(__file__).parent / "layouts"

Template = Annotated[str, Field(pattern=r"^[A-Za-z0-9_{}+\-]+(\.[A-Za-z0-9_{}+\-]+)*$", max_length=200)]


class Pass(SpecModel):
    """One pass of rename rules: the first rule that matches a name rewrites it."""

    name: str = ""
    """What this pass does, for readers."""
    rules: Annotated[list[tuple[Template, Template]], Field(min_length=1)]
    """`[reference module, model module]` pairs; everything below a paired module keeps its name."""


class Layout(SpecModel):
    """How a reference implementation's state dict pairs with a spec-built model's."""

    reference: Annotated[str, Field(min_length=1, max_length=200)]
    """The reference as messages name it, e.g. `timm inception_v4`."""
    library: Annotated[str, Field(min_length=1, max_length=50)]
    """The library it comes from: `torchvision`, `timm`, `pretrainedmodels`, …"""
    spec: Annotated[str, Field(min_length=1, max_length=200)]
    """Name of the spec (its `name:`) whose models this layout fits; the shipped file is `specs/<spec>.yaml`."""
    spec_file: str | None = None
    """The shipped spec file, in messages. Unset: `specs/<spec>.yaml`."""
    fields: dict[str, str] = {}
    """Mapping of field name to the regular expression its text matches."""
    passes: Annotated[list[Pass], Field(min_length=1)]
    """The rename passes, run in order."""
    aux: list[str] = []
    """Reference name prefixes of aux-head tensors (`aux1.`), for the aux hints."""
    classifier: list[str] = []
    """Reference modules whose shapes follow the class count, main classifier first."""
    reshape: list[str] = []
    """Regular expressions of model tensor names (whole names) that take their reference tensor
    in the model's shape when the two hold the same number of values: an `nn.Linear` weight
    `[out, in]` as a 1×1 conv's `[out, in, 1, 1]`, a `[C, 1, 1]` layer scale as `[C]`. A
    reshaped tensor's modules are paired by name and shape alone, not by their settings."""
    name: str = ""
    """The layout's name (its file name without `.yaml`); set when loaded."""

    _renamer: Renamer | None = PrivateAttr(default=None)

    @field_validator("fields")
    @classmethod
    def _fields_compile(cls, fields: dict[str, str]) -> dict[str, str]:
        for field, pattern in fields.items():
            if not re.fullmatch(r"\w+", field):
                raise ValueError(f"field name {field!r} must be letters, digits and _")
            try:
                if re.compile(pattern).groups:
                    raise ValueError(f"field {field}: use (?:…), not capturing groups, in {pattern!r}")
            except re.error as exc:
                raise ValueError(f"field {field}: not a regular expression ({exc}): {pattern!r}") from None
        return fields

    @field_validator("reshape")
    @classmethod
    def _reshape_compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"reshape: not a regular expression ({exc}): {pattern!r}") from None
        return patterns

    def reshapes(self, model_name: str) -> bool:
        """Whether the model tensor ``model_name`` may take its reference tensor reshaped."""
        return any(re.fullmatch(pattern, model_name) for pattern in self.reshape)

    @property
    def shipped_spec(self) -> str:
        return self.spec_file or f"specs/{self.spec}.yaml"

    def renamer(self) -> Renamer:
        """The compiled passes (see :mod:`archbuilder.interop.rules`)."""
        if self._renamer is None:
            passes = [[Rule.compile(a, b, self.fields) for a, b in step.rules] for step in self.passes]
            self._renamer = Renamer(passes)
        return self._renamer

    def is_aux(self, name: str) -> bool:
        return bool(self.aux) and name.startswith(tuple(self.aux))

    def is_classifier(self, name: str) -> bool:
        module = name.rpartition(".")[0]
        return any(re.fullmatch(pattern, module) for pattern in self.classifier)


def load_layout(name_or_path: str | Path) -> Layout:
    """A layout by shipped name (``timm-inception-v4``) or from a YAML file; SpecError if bad."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and not name_or_path.endswith((".yaml", ".yml")):
        path = LAYOUTS / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(shipped_layouts())
            raise ValueError(f"no shipped weight layout {name_or_path!r}; shipped: {known}")
    return _load_file(path)


def _load_file(path: Path) -> Layout:
    text, file = read_spec_text(path)
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "a weight layout is a mapping (reference:, spec:, passes:, …)")])
    try:
        layout = Layout.model_validate({**data, "name": path.stem})
    except ValidationError as exc:
        raise SpecError(problems_from_validation(exc, data, source)) from None
    problems = []
    for index, step in enumerate(layout.passes):
        for number, (left, right) in enumerate(step.rules):
            try:
                Rule.compile(left, right, layout.fields)
            except RuleError as exc:
                problems.append(source.problem(("passes", index, "rules", number), str(exc)))
    if problems:
        raise SpecError(problems)
    return layout


@cache
def shipped_layouts() -> tuple[str, ...]:
    """Names of the layouts shipped with archbuilder."""
    return tuple(sorted(path.stem for path in LAYOUTS.glob("*.yaml")))


@cache
def _shipped(name: str) -> Layout:
    return _load_file(LAYOUTS / f"{name}.yaml")


def layout_for(spec_name: str | None, source_names: Iterable[str]) -> Layout:
    """The shipped layout for models of spec ``spec_name``; with several, the one that maps
    most of ``source_names``. ValueError naming the shipped layouts when none fits."""
    candidates = [_shipped(name) for name in shipped_layouts() if _shipped(name).spec == spec_name]
    if not candidates:
        known = ", ".join(f"{name} ({_shipped(name).spec})" for name in shipped_layouts())
        raise ValueError(
            f"no shipped weight layout fits spec {spec_name!r}; pass layout= one of: {known}, "
            "or the path of your own layout file"
        )
    names = list(source_names)
    return max(candidates, key=lambda layout: sum(layout.renamer().to_model(n) is not None for n in names))
