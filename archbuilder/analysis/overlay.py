"""Values to colour a diagram by (``--color-by``), and the profile JSON they may come from.

Four metrics, keyed by the node ids the IR and the page use (a top-level entry's name, an
op's dotted id, a nested block's id): ``params``, ``macs`` and ``activations`` (the float32
bytes of the outputs a node's ops write, per sample: what training keeps for backward) come
from the IR; ``latency`` (ms) from a profile written by ``archbuild profile``
(:func:`read_profile`). A block's value is the sum over its ops.

The profile format (version 1), one JSON object::

    {"format": "archbuilder-profile", "version": 1,
     "spec": {"name": "googlenet", "sha256": "<sha256 of the spec as loaded, canonical JSON>"},
     "machine": {"cpu": "...", "cores": 2, "torch_threads": 2, "python": "3.11.9", "torch": "2.5.1"},
     "batch": 1, "dtype": "fp32", "mode": "eval", "repeats": 10,
     "end_to_end_ms": 41.2, "between_blocks_ms": 0.3,
     "blocks": {"conv1": 3.1, ...}, "layers": {"3a.branch1x1.conv": 0.2, ...}}

``blocks`` holds each top-level entry's ms, ``layers`` each op's. The reader treats the
file as hostile: it is size-limited, every key and type is checked, numbers must be finite
and not negative, an id the spec does not have is an error, and the text it carries (the
machine) is only ever shown as text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from archbuilder.ir.graph import IR, Item, Parallel, Sequence
from archbuilder.spec import ArchSpec

__all__ = [
    "FORMAT",
    "MAX_PROFILE_BYTES",
    "METRICS",
    "VERSION",
    "Overlay",
    "OverlayError",
    "ProfileData",
    "metric_values",
    "overlay_for",
    "read_profile",
    "spec_digest",
]

FORMAT = "archbuilder-profile"
VERSION = 1
MAX_PROFILE_BYTES = 4 * 2**20  # a profile of the largest shipped spec is a few tens of KB
METRICS = ("params", "macs", "activations", "latency")
UNITS = {"params": "params", "macs": "MACs", "activations": "bytes per sample", "latency": "ms"}

# Viridis, sampled at nine even steps: sequential, readable by the colour-blind and in grey.
VIRIDIS = (
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
)
NO_VALUE = "#e6e6e6"  # a node nothing was measured for (a concat, which has no module)
LOG_SPAN = 100.0  # values spanning more than this factor are coloured on a log scale


class OverlayError(ValueError):
    """A profile that cannot be overlaid: unreadable, malformed, or of another spec."""


def spec_digest(spec: ArchSpec) -> str:
    """The sha256 of ``spec`` as loaded (its canonical JSON: ``extends`` and ``--set`` count,
    comments and layout of the YAML do not)."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True)
class ProfileData:
    """A profile as read back: what :func:`read_profile` checked."""

    spec_name: str
    spec_sha256: str
    machine: dict[str, str | int]
    batch: int
    dtype: str
    mode: str
    repeats: int
    end_to_end_ms: float
    between_blocks_ms: float
    blocks: dict[str, float]
    layers: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "spec": {"name": self.spec_name, "sha256": self.spec_sha256},
            "machine": dict(self.machine),
            "batch": self.batch,
            "dtype": self.dtype,
            "mode": self.mode,
            "repeats": self.repeats,
            "end_to_end_ms": self.end_to_end_ms,
            "between_blocks_ms": self.between_blocks_ms,
            "blocks": dict(self.blocks),
            "layers": dict(self.layers),
        }


_TOP_KEYS = {
    "format",
    "version",
    "spec",
    "machine",
    "batch",
    "dtype",
    "mode",
    "repeats",
    "end_to_end_ms",
    "between_blocks_ms",
    "blocks",
    "layers",
}
_MACHINE_KEYS = {"cpu": str, "cores": int, "torch_threads": int, "python": str, "torch": str}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DTYPES, _MODES = ("fp32", "bf16"), ("eval", "train")


def read_profile(path: str | Path, spec: ArchSpec, ir: IR) -> ProfileData:
    """The profile at ``path``, checked against ``spec`` (and its IR's ids); OverlayError
    (one line) when it is too big, malformed, of another spec, or names ids the spec lacks."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise OverlayError(f"cannot read profile {path.name}: {exc.strerror}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise OverlayError(f"{path.name} is over {MAX_PROFILE_BYTES // 2**20} MiB: not a profile")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise OverlayError(f"{path.name} is not JSON: {str(exc)[:200]}") from None
    return check_profile(data, spec, ir, name=path.name)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def check_profile(data: Any, spec: ArchSpec, ir: IR, *, name: str = "profile") -> ProfileData:
    """``data`` (parsed JSON) as a :class:`ProfileData` of ``spec``, or OverlayError."""

    def fail(message: str) -> OverlayError:
        return OverlayError(f"{name}: {message}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise fail(f'not an archbuilder profile (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise fail(f"profile format version {_shown(data.get('version'))}; this archbuilder reads {VERSION}")
    if set(data) != _TOP_KEYS:
        extra, missing = sorted(set(data) - _TOP_KEYS), sorted(_TOP_KEYS - set(data))
        raise fail(f"unexpected keys {_listed(extra)}" if extra else f"missing keys {_listed(missing)}")
    about = _object(data["spec"], {"name": str, "sha256": str}, "spec", fail)
    if not _HEX64.fullmatch(about["sha256"]):
        raise fail("spec.sha256 is not a sha256 digest")
    if about["sha256"] != spec_digest(spec):
        raise fail(
            f"a profile of {_shown(about['name'])}, not of this spec ({_shown(spec.name)}, "
            "or an edited version of it): run archbuild profile again"
        )
    machine = _object(data["machine"], _MACHINE_KEYS, "machine", fail)
    batch, repeats = (_integer(data[key], key, fail) for key in ("batch", "repeats"))
    if data["dtype"] not in _DTYPES or data["mode"] not in _MODES:
        raise fail(f"dtype must be one of {', '.join(_DTYPES)} and mode one of {', '.join(_MODES)}")
    end_to_end, between = (_number(data[key], key, fail) for key in ("end_to_end_ms", "between_blocks_ms"))
    blocks = _times(data["blocks"], "blocks", {top.name for top in ir.top_level}, fail)
    layers = _times(data["layers"], "layers", set(ir.graph.nodes), fail)
    return ProfileData(
        about["name"], about["sha256"], machine, batch, data["dtype"], data["mode"], repeats,
        end_to_end, between, blocks, layers,
    )  # fmt: skip


def _object(value: Any, keys: Mapping[str, type], where: str, fail) -> dict:
    if not isinstance(value, dict) or set(value) != set(keys):
        raise fail(f"{where} must be an object with exactly {_listed(sorted(keys))}")
    for key, kind in keys.items():
        if type(value[key]) is not kind or (kind is str and len(value[key]) > 200):
            raise fail(f"{where}.{key} must be {'a short string' if kind is str else 'an integer'}")
    return value


def _integer(value: Any, where: str, fail) -> int:
    if type(value) is not int or not 1 <= value <= 1_000_000:
        raise fail(f"{where} must be an integer from 1 to 1,000,000")
    return value


def _number(value: Any, where: str, fail) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise fail(f"{where} must be a number of at least 0")
    return float(value)


def _times(value: Any, where: str, known: set[str], fail) -> dict[str, float]:
    if not isinstance(value, dict):
        raise fail(f"{where} must be an object of id: milliseconds")
    unknown = [key for key in value if key not in known]
    if unknown:
        raise fail(f"{where} names ids this spec does not have: {_listed(unknown)}")
    return {key: _number(ms, f"{where}.{_shown(key)}", fail) for key, ms in value.items()}


def _shown(value: Any) -> str:
    """A value from the file, quoted and cut short for a one-line message."""
    return json.dumps(value, ensure_ascii=True)[:60]


def _listed(names: list[str], most: int = 5) -> str:
    shown = ", ".join(_shown(name) for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# -- values and colours --------------------------------------------------------


def metric_values(ir: IR, metric: str, profile: ProfileData | None = None) -> dict[str, float]:
    """``metric`` for every op and block of ``ir``, by id (latency: what ``profile`` measured)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if metric == "latency":
        if profile is None:
            raise ValueError("colouring by latency needs a profile (archbuild profile SPEC -o prof.json)")
        values = {**profile.layers, **profile.blocks}
        for block in _nested_blocks(ir):  # a block inside a block: the layers measured in it
            if block.id not in values:
                inside = [profile.layers[op_id] for op_id in _op_ids(block) if op_id in profile.layers]
                if inside:
                    values[block.id] = sum(inside)
        return values
    per_op = {
        op.id: float(op.params if metric == "params" else op.macs if metric == "macs" else prod(op.shape) * 4)
        for op in ir.ops()
        if op.kind != "input"
    }
    values = dict(per_op)
    for top in ir.top_level:
        values[top.name] = sum(per_op[op_id] for op_id in top.ops)
    for block in _nested_blocks(ir):
        values[block.id] = sum(per_op[op_id] for op_id in _op_ids(block))
    return values


def _nested_blocks(ir: IR):
    def walk(sequence: Sequence):
        for item in sequence.items:
            if isinstance(item, Parallel):
                yield item
                for _, branch in item.branches:
                    yield from walk(branch)

    yield from walk(ir.body)
    for head in ir.aux_heads:
        yield from walk(head.layers)


def _op_ids(item: Item) -> list[str]:
    if isinstance(item, str):
        return [item]
    return [op for _, branch in item.branches for child in branch.items for op in _op_ids(child)] + [
        item.merge
    ]


@dataclass(frozen=True)
class Overlay:
    """Values to colour nodes by, on one scale: viridis, log when they span over 100×."""

    metric: str
    values: dict[str, float]
    total: float  # what a share is of: the whole model's (inference) value
    low: float
    high: float
    log: bool

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    def value(self, ids: str | tuple[str, ...]) -> float | None:
        """The value of one id, or the sum over several (a roll-up); None when none has one."""
        names = (ids,) if isinstance(ids, str) else tuple(ids)
        found = [self.values[name] for name in names if name in self.values]
        return sum(found) if found else None

    def position(self, value: float) -> float:
        """Where ``value`` sits on the scale, 0 to 1."""
        if self.high <= self.low:
            return 1.0
        value = min(max(value, self.low), self.high)
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def fill(self, value: float | None) -> str:
        return NO_VALUE if value is None else colour_at(self.position(value))

    def ink(self, value: float | None) -> str:
        """Text colour that reads on ``fill(value)``: white on the dark end of the scale."""
        return "#ffffff" if value is not None and self.position(value) < 0.45 else "#000000"

    def share(self, value: float | None) -> float | None:
        return None if value is None or not self.total else value / self.total

    def ticks(self, count: int = 5) -> list[float]:
        """``count`` values spread evenly over the scale, low to high."""
        steps = [index / (count - 1) for index in range(count)]
        if self.log:
            return [self.low * (self.high / self.low) ** step for step in steps]
        return [self.low + (self.high - self.low) * step for step in steps]

    def caption(self) -> str:
        scale = "log scale" if self.log else "linear scale"
        return f"coloured by {self.metric} ({self.unit}, {scale})"

    def page_data(self) -> dict[str, Any]:
        """What the interactive page's legend draws."""
        return {
            "metric": self.metric,
            "unit": self.unit,
            "log": self.log,
            "caption": self.caption(),
            "total": self.total,
            "none": NO_VALUE,
            "ticks": [{"value": tick, "text": format_value(tick, self.metric), "fill": self.fill(tick)}
                      for tick in self.ticks()],
        }  # fmt: skip


def overlay_for(ir: IR, metric: str, profile: ProfileData | None = None) -> Overlay:
    """The overlay of ``metric`` on ``ir``: its values and scale. The scale spans the values of
    the ops (the finest nodes) and the top-level entries, so both are told apart."""
    values = metric_values(ir, metric, profile)
    positive = [value for value in values.values() if value > 0]
    low, high = (min(positive), max(positive)) if positive else (0.0, 0.0)
    log = bool(positive) and high / low > LOG_SPAN
    if metric == "latency" and profile is not None:
        total = profile.end_to_end_ms
    else:
        aux = {head.name for head in ir.aux_heads}
        total = sum(values[top.name] for top in ir.top_level if top.name not in aux)
    return Overlay(metric, values, total, low, high, log)


def colour_at(position: float) -> str:
    """The viridis colour at ``position`` (0 to 1), interpolated between its samples."""
    scaled = min(max(position, 0.0), 1.0) * (len(VIRIDIS) - 1)
    index = min(int(scaled), len(VIRIDIS) - 2)
    fraction = scaled - index
    start, end = (_rgb(VIRIDIS[index]), _rgb(VIRIDIS[index + 1]))
    mixed = (round(a + (b - a) * fraction) for a, b in zip(start, end))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def format_value(value: float, metric: str) -> str:
    """A value as the legend and labels write it: ``1.2 ms``, ``3.4 M params``, ``1.5 MB``."""
    if metric == "latency":
        return f"{value:.3g} ms" if value >= 0.01 else f"{value * 1000:.3g} µs"
    if metric == "activations":
        for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if value >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.0f} B"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit} {UNITS[metric]}"
    return f"{value:.3g} {UNITS[metric]}"
