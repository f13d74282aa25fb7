"""Write spec data as readable YAML: one line per simple layer, nested blocks indented."""

from __future__ import annotations

from typing import Any

import yaml

from archbuilder.core.escaping import LINE_BREAKS
from archbuilder.spec.yaml_core import add_core_resolvers

__all__ = ["dump_yaml"]

_FIRST_KEYS = ("format", "name", "kind")


class _Flow(dict):
    """A mapping written on one line, ``{name: conv1, kind: conv, out: 64}``."""


class _Dumper(yaml.SafeDumper):
    pass


add_core_resolvers(_Dumper)  # quote "1e3", "0o17": the loader reads YAML 1.2


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_block(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    """A string holding a line break double-quoted, each break an escape (``\\n``, ``\\L``):
    its text never starts a line of the file, and YAML 1.1 and 1.2 readers, which disagree on
    whether U+0085 and U+2028 break a line, read the same string back."""
    if any(char in LINE_BREAKS for char in data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(dict, _represent_block)
_Dumper.add_representer(str, _represent_str)


def _is_simple(value: Any) -> bool:
    if isinstance(value, list):
        return all(not isinstance(item, (dict, list)) for item in value)
    if isinstance(value, dict):
        return all(not isinstance(item, (dict, list)) for item in value.values())
    return True


def _shape(value: Any) -> Any:
    """Order keys (format, name, kind first) and mark flat mappings for one-line output."""
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if not isinstance(value, dict):
        return value
    ordered = {key: value[key] for key in _FIRST_KEYS if key in value}
    ordered.update((key, item) for key, item in value.items() if key not in ordered)
    shaped = {key: _shape(item) for key, item in ordered.items()}
    if "kind" in value and all(_is_simple(item) for item in value.values()):
        return _Flow(shaped)
    if value and all(not isinstance(item, (dict, list)) for item in value.values()):
        return _Flow(shaped)
    return shaped


def dump_yaml(data: dict[str, Any]) -> str:
    """YAML text for spec data; deterministic for equal input."""
    return yaml.dump(_shape(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
