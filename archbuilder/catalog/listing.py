"""The shipped specs listed with the metadata an experiment chooses by: parameters, MACs,
input size, a one-line description. No torch."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archbuilder.analysis.summary import summarize
from archbuilder.ir import load_spec
from archbuilder.spec.shipped import shipped_names, shipped_path

__all__ = ["ShippedSpec", "list_specs"]


@dataclass(frozen=True)
class ShippedSpec:
    """One shipped spec: its name (what ``load_spec`` takes), file and sizes."""

    name: str
    path: Path
    model: str  # the spec's own ``name:``
    description: str  # its first sentence
    input: tuple[int, ...]
    params: int  # with aux heads
    inference_params: int  # without aux heads
    inference_macs: int  # one sample at the spec's input size, without aux heads

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "input": list(self.input)}


def list_specs(pattern: str | None = None) -> list[ShippedSpec]:
    """The shipped specs whose names match the shell-style ``pattern`` (all when None), by name."""
    names = [name for name in shipped_names() if pattern is None or fnmatch.fnmatchcase(name, pattern)]
    return [_entry(name) for name in names]


def _entry(name: str) -> ShippedSpec:
    path = shipped_path(name)
    spec = load_spec(path)
    summary = summarize(spec)
    return ShippedSpec(
        name=name,
        path=path,
        model=spec.name,
        description=_first_sentence(spec.description or ""),
        input=summary.input_shape,
        params=summary.params,
        inference_params=summary.inference_params,
        inference_macs=summary.inference_macs,
    )


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = re.match(r"(.+?[.:;])(\s|$)", flat)
    return match.group(1).rstrip(".:;") if match else flat
