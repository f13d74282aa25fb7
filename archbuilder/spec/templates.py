"""Spec models of block templates: a definition under ``templates:``, and a layer that uses one.

Loading replaces every ``kind: template`` layer by its template's ``layer`` with the
parameters filled in (archbuilder/spec/expand.py), so a loaded spec holds no template uses;
these models give the two their keys, for validation messages and the JSON schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from archbuilder.spec.layers import LayerBase, Name, SpecModel

__all__ = ["PARAM_PATTERN", "Template", "TemplateUse"]

PARAM_PATTERN = r"^\$[A-Za-z_][A-Za-z0-9_]*$"  # a value that is exactly ``$name`` refers to a parameter


class Template(SpecModel):
    """A block written once: ``layer`` is any layer, with ``$name`` wherever a parameter goes.

    ``params`` must be given by every use; ``defaults`` are parameters with a value used when
    a use leaves them out.
    """

    description: str = ""
    """Free text."""
    params: list[Name] = []
    """Parameters every use must give under `with`."""
    defaults: dict[Name, Any] = {}
    """Mapping of parameter name to the value a use gets when it leaves the parameter out."""
    layer: dict[str, Any]
    """The layer mapping (any kind) a use stands for; a value written `$name` is parameter `name`."""


class TemplateUse(LayerBase):
    """A layer that is template ``use`` with the parameter values ``with``.

    ``name`` and ``repeat`` replace the template layer's own.
    """

    kind: Literal["template"]
    use: Name
    """The template's name (a key of `templates`)."""
    with_: Annotated[dict[Name, Any], Field(alias="with")] = {}
    """Mapping of parameter name to value."""
