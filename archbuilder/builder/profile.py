"""Where a model's time goes on this machine: each top-level block's and each layer's real time.

Attribution (CPU, where torch runs each op to completion before returning):

* forward: a block's time is the wall time between the forward pre-hook and the forward hook
  of its top-level module; a layer's, the same on each leaf module (its ms summed into the op
  the module belongs to: a conv's batch norm and activation count as the conv's). What lies
  between one block's end and the next one's start is the model's own Python glue, reported
  as ``between blocks``.
* backward (``train=True``): a block's backward starts when autograd runs the node that made
  its output (a pre-hook on that node) and ends when the last node recorded inside the block
  (parameter-gradient accumulation included) has run (post-hooks on every such node). The
  CPU engine runs one node at a time, so the spans do not overlap; an aux head's backward
  is its own span. A block's train time is its forward plus its backward.

Blocks, layers and the end-to-end time are measured in separate passes, interleaved repeat by
repeat, so the layer hooks never slow the block times down, and the end-to-end time (one
whole step, no hooks at all) is independent of both. Each figure is a mean over the middle
half of the ``repeats`` (the interquartile mean: robust to a step another process slowed, and,
unlike a median, additive): the blocks' figures come from whole repeats, those whose hooked
step is in the middle half, so they add up as the steps do.
The per-block times add up to the end-to-end time within a few per cent (tested on two
shipped specs at 10 %); the difference is the glue between blocks plus the hooks' own cost.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from archbuilder.analysis.overlay import ProfileData, spec_digest
from archbuilder.builder.build import build
from archbuilder.builder.modules import ArchModel, ModelOutputs
from archbuilder.core.machine import cpu_model
from archbuilder.ir import IR, as_spec, lower
from archbuilder.spec import ArchSpec

__all__ = ["DTYPES", "Profile", "profile"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Profile(ProfileData):
    """ms per top-level block and per op (``layers``), end to end, and the machine."""

    def to_json(self) -> str:
        """The versioned JSON ``render --overlay`` reads (:mod:`archbuilder.analysis.overlay`)."""
        import json

        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @property
    def blocks_ms(self) -> float:
        return sum(self.blocks.values())

    def machine_line(self) -> str:
        m = self.machine
        return (
            f"{m['cpu']}, {_count(m['cores'], 'logical core')}, {_count(m['torch_threads'], 'torch thread')}, "
            f"torch {m['torch']}"
        )

    def table(self) -> str:
        """Each block's ms and share of the end-to-end time, the glue, the totals."""
        what = "forward + backward" if self.mode == "train" else "forward"
        rows = [(name, ms) for name, ms in self.blocks.items()]
        rows.append(("(between blocks)", self.between_blocks_ms))
        width = max(len(name) for name, _ in [*rows, ("end to end", 0.0)])
        total = self.end_to_end_ms or 1.0
        lines = [
            f"{self.spec_name}: {what}, batch {self.batch}, {self.dtype}, "
            f"mean of the middle half of {self.repeats} repeats",
            f"machine: {self.machine_line()}",
            f"{'block'.ljust(width)}  {'ms':>9}  {'share':>6}",
        ]
        lines += [f"{name.ljust(width)}  {ms:9.3f}  {100 * ms / total:5.1f}%" for name, ms in rows]
        lines += [
            f"{'sum of blocks'.ljust(width)}  {self.blocks_ms:9.3f}  {100 * self.blocks_ms / total:5.1f}%",
            f"{'end to end'.ljust(width)}  {self.end_to_end_ms:9.3f}  100.0%  (timed apart, without hooks)",
        ]
        return "\n".join(lines)


def profile(
    spec: ArchSpec | str | Path,
    *,
    batch: int = 1,
    dtype: str = "fp32",
    train: bool = False,
    repeats: int = 10,
    warmup: int = 2,
) -> Profile:
    """Time ``spec``'s model on this machine (see the module docstring for the attribution).

    ``train``: forward + backward in training mode (aux heads included), else an eval-mode
    forward under ``torch.no_grad``. ``dtype``: ``fp32`` or ``bf16`` (weights and input cast).
    Training with batch norm needs ``batch`` ≥ 2 where a map shrinks to 1×1.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch and repeats must be at least 1, warmup at least 0")
    loaded = as_spec(spec)
    ir = lower(loaded)
    model = build(loaded).to(DTYPES[dtype]).train(train)
    x = torch.randn(batch, *ir.input_shape, dtype=DTYPES[dtype])
    step = _Step(model, x, train)
    tops = _top_modules(model)
    leaves = _leaf_ops(model, ir)
    whole: list[float] = []
    block_runs: list[tuple[float, dict[str, float]]] = []  # (the step's hooked total, each block's ms)
    layer_runs: list[tuple[float, dict[str, float]]] = []
    passes = [step.run, lambda: step.run_timed(tops), lambda: step.run_timed(leaves)]
    for index in range(warmup + repeats):
        # each pass takes each place in turn: none is always the one after another's caches
        ran = {which: passes[which]() for which in _rotated(range(3), index)}
        if index < warmup:
            continue
        whole.append(ran[0])
        block_runs.append((ran[1][1], ran[1][0]))
        per_op: dict[str, float] = defaultdict(float)
        for path, ms in ran[2][0].items():
            per_op[leaves[path][1]] += ms
        layer_runs.append((sum(per_op.values()), per_op))
    kept = _middle(block_runs)
    blocks = _mean_of(run for _, run in kept)
    between = statistics.fmean(total - sum(run.values()) for total, run in kept)
    return Profile(
        spec_name=ir.name,
        spec_sha256=spec_digest(loaded),
        machine=machine_info(),
        batch=batch,
        dtype=dtype,
        mode="train" if train else "eval",
        repeats=repeats,
        end_to_end_ms=statistics.fmean(sorted(whole)[_middle_slice(len(whole))]),
        between_blocks_ms=max(0.0, between),
        blocks={name: blocks[name] for name in tops if name in blocks},  # a block that ran (no aux in eval)
        layers=_mean_of(run for _, run in _middle(layer_runs)),
    )


def _middle_slice(count: int) -> slice:
    """The middle half of ``count`` sorted values (all of them when there are under four)."""
    cut = count // 4
    return slice(cut, count - cut)


def _middle(runs: list[tuple[float, dict[str, float]]]) -> list[tuple[float, dict[str, float]]]:
    """The repeats whose totals are the middle half: whole repeats, so their parts still add up."""
    return sorted(runs, key=lambda run: run[0])[_middle_slice(len(runs))]


def _mean_of(runs) -> dict[str, float]:
    runs = list(runs)
    names = dict.fromkeys(name for run in runs for name in run)
    return {name: statistics.fmean(run[name] for run in runs if name in run) for name in names}


def _rotated(items, by: int) -> list:
    items = list(items)
    by %= len(items)
    return items[by:] + items[:by]


def machine_info() -> dict[str, str | int]:
    """This machine as a profile names it: CPU, logical cores, torch's threads, versions."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _top_modules(model: ArchModel) -> dict[str, tuple[nn.Module, str]]:
    """The body entries and aux heads: name -> (module, the id its time is reported under)."""
    return {name: (module, name) for name, module in model.named_children()}


def _leaf_ops(model: ArchModel, ir: IR) -> dict[str, tuple[nn.Module, str]]:
    """Each leaf module that belongs to an op: path -> (module, the op's id). A module belongs
    to the op whose id is the longest prefix of its path (``3a.branch1x1.conv.bn`` →
    ``3a.branch1x1.conv``)."""
    ids = set(ir.graph.nodes)
    found = {}
    for path, module in model.named_modules():
        if next(module.children(), None) is not None or not path:
            continue
        parts = path.split(".")
        owner = next(
            (".".join(parts[:end]) for end in range(len(parts), 0, -1) if ".".join(parts[:end]) in ids), None
        )
        if owner is not None:
            found[path] = (module, owner)
    return found


class _Step:
    """One forward (eval) or forward + backward (train) step of ``model`` on ``x``."""

    def __init__(self, model: ArchModel, x: Tensor, train: bool):
        self.model, self.x, self.train = model, x, train

    def run(self) -> float:
        """The step's wall time in ms, nothing hooked."""
        self.model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        if self.train:
            _loss(self.model(self.x)).backward()
        else:
            with torch.no_grad():
                self.model(self.x)
        return (time.perf_counter() - start) * 1e3

    def run_timed(self, modules: dict[str, tuple[nn.Module, str]]) -> tuple[dict[str, float], float]:
        """ms of each hooked module (forward, plus backward in training) that ran, and the
        step's total with those hooks (the time spent placing backward hooks left out)."""
        self.model.zero_grad(set_to_none=True)
        recorder = _Recorder(self.train)
        with recorder.hooked(modules):
            start = time.perf_counter()
            if not self.train:
                with torch.no_grad():
                    self.model(self.x)
                return recorder.spans(), (time.perf_counter() - start) * 1e3
            loss = _loss(self.model(self.x))
            forward = time.perf_counter() - start
            recorder.hook_backward()
            start = time.perf_counter()
            loss.backward()
            total = forward + time.perf_counter() - start
            recorder.remove_backward_hooks()
            return recorder.spans(), total * 1e3


def _loss(outputs: Tensor | ModelOutputs) -> Tensor:
    """A scalar to run backward from: any one does for timing, and this one fits any output."""
    tensors = [outputs.logits, *outputs.aux] if isinstance(outputs, ModelOutputs) else [outputs]
    return sum(tensor.float().square().mean() for tensor in tensors)


class _Recorder:
    """Forward spans from module hooks; in training, each module's autograd nodes for its
    backward span."""

    def __init__(self, train: bool):
        self.train = train
        self.forward: dict[str, float] = defaultdict(float)
        self.backward: dict[str, float] = defaultdict(float)
        self.started: dict[int, tuple[float, object]] = {}
        self.pending: list[tuple[str, object, object]] = []  # (path, output node, input node)
        self.backward_spans: list[tuple[str, list[float]]] = []
        self.handles: list = []

    def hooked(self, modules: dict[str, tuple[nn.Module, str]]):
        import contextlib

        @contextlib.contextmanager
        def hooks() -> Iterator[None]:
            handles = []
            for path, (module, _) in modules.items():
                handles.append(module.register_forward_pre_hook(self._pre(path)))
                handles.append(module.register_forward_hook(self._post(path)))
            try:
                yield
            finally:
                for handle in handles:
                    handle.remove()

        return hooks()

    def _pre(self, path: str) -> Callable:
        def hook(module, args):
            node = args[0].grad_fn if args and isinstance(args[0], Tensor) else None
            self.started[id(module)] = (time.perf_counter(), node)

        return hook

    def _post(self, path: str) -> Callable:
        def hook(module, args, output):
            now = time.perf_counter()
            start, input_node = self.started.pop(id(module))
            self.forward[path] += now - start
            if self.train and isinstance(output, Tensor) and output.grad_fn is not None:
                self.pending.append((path, output.grad_fn, input_node))

        return hook

    def hook_backward(self) -> None:
        """Hooks on each recorded module's autograd nodes: its span runs from the pre-hook of
        the node that made its output to the last post-hook of a node inside it."""
        for path, output_node, input_node in self.pending:
            span = [0.0, 0.0]

            def begin(grad_outputs, span=span):
                span[0] = time.perf_counter()

            def end(grad_inputs, grad_outputs, span=span):
                span[1] = time.perf_counter()

            self.handles.append(output_node.register_prehook(begin))
            self.handles += [node.register_hook(end) for node in _nodes_between(output_node, input_node)]
            self.backward_spans.append((path, span))

    def remove_backward_hooks(self) -> None:
        for handle in self.handles:
            handle.remove()

    def spans(self) -> dict[str, float]:
        totals = {path: seconds * 1e3 for path, seconds in self.forward.items()}
        for path, (begin, end) in self.backward_spans:
            if end > begin:
                totals[path] += (end - begin) * 1e3
        return totals


def _nodes_between(output_node, input_node) -> list:
    """The autograd nodes that lead from ``output_node`` back to ``input_node`` (the module's
    own nodes, with their parameters' gradient accumulators), ``input_node`` left out."""
    seen, stack, found = {input_node}, [output_node], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
