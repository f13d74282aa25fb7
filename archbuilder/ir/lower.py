"""Lower a validated spec to the graph IR, inferring every shape on the way.

Every problem found (duplicate or reserved names, unknown taps, shapes that don't work) is
collected and raised together as one SpecError, located in the spec's source.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import networkx as nx

from archbuilder.core.errors import KeyPath, Problem, SpecError, did_you_mean
from archbuilder.core.gcpause import gc_paused
from archbuilder.ir.graph import IR, AuxHeadIR, Item, Op, Parallel, Sequence, Shape, TopLevel
from archbuilder.ir.merge import merge_attrs, merged_shape
from archbuilder.ir.names import RESERVED_NAMES, assign_names
from archbuilder.ir.ops import Context, ShapeError, rule_for, scope_conv
from archbuilder.ir.repeat import expand_repeats
from archbuilder.ir.split import channel_slices
from archbuilder.ir.stages import declared_stages
from archbuilder.ir.stochastic import ramp_drop_paths
from archbuilder.spec.blocks import Branch, Branches, Inception, InvertedResidual, Layer
from archbuilder.spec.layers import MAX_WIDTH
from archbuilder.spec.model import ArchSpec, AuxHead
from archbuilder.spec.scale import apply_scale
from archbuilder.spec.templates import TemplateUse

__all__ = ["lower"]


class _Stop(Exception):
    """A chain of layers cannot continue (its problem is already recorded)."""


@gc_paused
def lower(spec: ArchSpec) -> IR:
    """The IR of ``spec`` (its ``scale`` applied); raises SpecError listing every problem it finds."""
    return _Lowering(apply_scale(spec)).run()


class _Lowering:
    def __init__(self, spec: ArchSpec):
        self.spec = spec
        self.graph = nx.DiGraph()
        self.problems: list[Problem] = []
        self.outputs: dict[str, str] = {}  # top-level name -> id of its output op
        self.groups: dict[str, str] = {}  # name of a repeated layer -> name of its last copy

    # -- reporting -------------------------------------------------------------
    def fail(self, path: KeyPath, message: str) -> None:
        source = self.spec.source
        self.problems.append(source.problem(path, message) if source else Problem(path, message))

    def check_names(self, names: list[str], written: Seq[str | None], paths: Seq[KeyPath]) -> None:
        seen: set[str] = set()
        for name, explicit, path in zip(names, written, paths):
            if explicit is None:
                continue
            if name in seen:
                self.fail((*path, "name"), f"duplicate name '{name}'; names must be unique in their scope")
            elif name in RESERVED_NAMES:
                self.fail(
                    (*path, "name"),
                    f"'{name}' is reserved (it is an attribute of torch modules); pick another name",
                )
            seen.add(name)

    # -- the walk --------------------------------------------------------------
    def run(self) -> IR:
        spec = self.spec
        shape: Shape = (spec.input.channels, spec.input.height, spec.input.width)
        self.add(Op("input", "input", {}, shape, 0, 0, "input", ("input",)), [])
        entries = []
        for section in ("stem", "blocks", "head"):
            layers = getattr(spec, section)
            layers, paths, last_copies = expand_repeats(
                layers, [(section, index) for index in range(len(layers))]
            )
            self.groups.update(last_copies)  # only top-level names can be tapped
            entries += [(section, layer, path) for layer, path in zip(layers, paths)]
        written = [layer.name for _, layer, _ in entries] + [head.name for head in spec.aux_heads]
        kinds = [layer.kind for _, layer, _ in entries] + ["aux"] * len(spec.aux_heads)
        paths = [path for _, _, path in entries] + [("aux_heads", i) for i in range(len(spec.aux_heads))]
        names = assign_names(written, kinds)
        self.check_names(names, written, paths)
        body_names, aux_names = names[: len(entries)], names[len(entries) :]

        context = Context(spec.num_classes, scope_conv(spec.defaults.conv))
        items, top_level, output = self.body(entries, body_names, shape, context)
        tappable = [name for (section, _, _), name in zip(entries, body_names) if section != "head"]
        tappable += [group for group, last in self.groups.items() if last in tappable]
        aux_heads = []
        for index, (head, name) in enumerate(zip(spec.aux_heads, aux_names)):
            aux = self.aux_head(head, index, tappable, context)
            if aux is not None:
                aux_heads.append(aux)
                top_level.append(TopLevel(name, "aux_head", "aux", self._last(aux.layers), ()))
        feature_maps = declared_stages(spec.feature_maps or (), tappable, self.groups, self.rank, self.fail)
        self.check_precision(body_names)
        if self.problems:
            raise SpecError(self.problems)
        blocks = [name for (section, _, _), name in zip(entries, body_names) if section == "blocks"]
        aux = {head.name for head in aux_heads}
        ramp_drop_paths(self.graph, spec.drop_path_rate, aux, spec.drop_path_ramp, blocks)
        return IR(
            name=spec.name,
            input_shape=(spec.input.channels, spec.input.height, spec.input.width),
            num_classes=spec.num_classes,
            graph=self.graph,
            body=Sequence(tuple(items)),
            aux_heads=tuple(aux_heads),
            top_level=self.with_ops(top_level),
            output=output,
            feature_maps=feature_maps,
        )

    def body(
        self, entries: list[tuple[str, Layer, KeyPath]], names: list[str], shape: Shape, context: Context
    ) -> tuple[list[Item], list[TopLevel], str]:
        """Lower stem, blocks and head in order, up to the first layer that cannot continue."""
        items: list[Item] = []
        top_level: list[TopLevel] = []
        previous = "input"
        try:
            for (section, layer, path), name in zip(entries, names):
                item, previous, shape = self.layer(layer, name, name, path, previous, shape, context)
                items.append(item)
                self.outputs[name] = previous
                top_level.append(TopLevel(name, layer.kind, section, previous, ()))
        except _Stop:
            pass
        return items, top_level, previous

    def with_ops(self, entries: list[TopLevel]) -> tuple[TopLevel, ...]:
        """The entries with the ids of their ops filled in, in graph order."""
        ops: dict[str, list[str]] = {}
        for op_id, data in self.graph.nodes(data=True):
            ops.setdefault(data["op"].item, []).append(op_id)
        return tuple(
            TopLevel(e.name, e.kind, e.section, e.output, tuple(ops.get(e.name, ()))) for e in entries
        )

    def check_precision(self, body_names: list[str]) -> None:
        """``precision.keep_fp32`` names top-level entries (a repeated layer's group name too)."""
        kept = self.spec.precision.keep_fp32 if self.spec.precision else None
        known = [*body_names, *self.groups]
        for index, name in enumerate(kept or ()):
            if name not in known:
                hint = did_you_mean(name, known) or "; it names stem, blocks or head entries"
                self.fail(("precision", "keep_fp32", index), f"'{name}' names no top-level layer{hint}")

    def aux_head(self, head: AuxHead, index: int, tappable: list[str], context: Context) -> AuxHeadIR | None:
        path: KeyPath = ("aux_heads", index)
        if head.tap not in tappable:
            hint = did_you_mean(head.tap, tappable) or (
                f"; it can name: {', '.join(tappable)}" if len(tappable) <= 12 else ""
            )
            self.fail((*path, "tap"), f"tap '{head.tap}' names no stem layer or block{hint}")
            return None
        tap = self.groups.get(head.tap, head.tap)
        if tap not in self.outputs:
            return None  # the tapped layer has a problem of its own
        source = self.outputs[tap]
        try:
            layers, _, _ = self.sequence(
                head.layers, head.name, head.name, (*path, "layers"), source, self.op(source).shape, context
            )
        except _Stop:
            return None
        return AuxHeadIR(head.name, tap, head.loss_weight, layers)

    def sequence(
        self,
        layers: Seq[Layer],
        prefix: str,
        item: str,
        path: KeyPath,
        previous: str,
        shape: Shape,
        context: Context,
        paths: Seq[KeyPath] | None = None,
    ) -> tuple[Sequence, str, Shape]:
        """Lower ``layers`` one after another; returns the sequence, its output op and shape."""
        layers, paths, _ = expand_repeats(layers, paths or [(*path, index) for index in range(len(layers))])
        written = [layer.name for layer in layers]
        names = assign_names(written, [layer.kind for layer in layers])
        self.check_names(names, written, paths)
        items = []
        for layer, name, layer_path in zip(layers, names, paths):
            op_id = f"{prefix}.{name}" if prefix else name
            entry, previous, shape = self.layer(layer, op_id, item, layer_path, previous, shape, context)
            items.append(entry)
        return Sequence(tuple(items)), previous, shape

    def layer(
        self,
        layer: Layer,
        op_id: str,
        item: str,
        path: KeyPath,
        previous: str,
        shape: Shape,
        context: Context,
    ) -> tuple[Item, str, Shape]:
        if isinstance(layer, InvertedResidual):
            if layer.expanded_width(shape[0]) > MAX_WIDTH:
                where = "expanded" if layer.expanded is not None else "expansion"
                self.fail((*path, where), f"{op_id}: the expanded width is over {MAX_WIDTH:,} channels")
                raise _Stop
            block = layer.as_branches(shape[0])
            fields = {f"block.{sub.name}": layer.field_of(sub.name) for sub in block.branches[0].layers}
            return self.parallel(block, op_id, item, path, previous, shape, context, fields, layer.kind)
        if isinstance(layer, (Inception, Branches)):
            return self.parallel(layer, op_id, item, path, previous, shape, context)
        if isinstance(layer, TemplateUse):  # only a spec validated piecemeal can still hold one
            self.fail(path, f"{op_id}: template '{layer.use}' was not expanded; load the spec with load_spec")
            raise _Stop
        try:
            result = rule_for(layer)(layer, shape, context)
        except ShapeError as exc:
            self.fail(path, f"{op_id}: {exc}")
            if exc.fallback is None:
                raise _Stop from None
            result = exc.fallback  # carry on to find the problems further down
        self.add(
            Op(op_id, layer.kind, result.attrs, result.shape, result.params, result.macs, item, path),
            [previous],
        )
        return op_id, op_id, result.shape

    def parallel(
        self,
        block: Inception | Branches,
        block_id: str,
        item: str,
        path: KeyPath,
        source: str,
        shape: Shape,
        context: Context,
        fields: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> tuple[Item, str, Shape]:
        """A multi-branch block; ``fields`` says which field of the block as written each
        generated layer comes from (``branch.layer`` → field), for blocks written by role."""
        is_inception = isinstance(block, Inception)
        fields = Inception.ROLES if is_inception else fields
        branches: list[Branch] = block.as_branches() if is_inception else block.branches
        inner = context.inner(block.conv)
        merge = "concat" if is_inception else block.merge
        written = [branch.name for branch in branches]
        names = assign_names(written, ["branch"] * len(branches), positional=True)
        branch_paths = [(*path, "branches", index) for index in range(len(branches))]
        self.check_names(names, written, branch_paths)

        slices = self.channel_slices(block, shape, path) if not is_inception else None

        lowered: list[tuple[str, Sequence]] = []
        ends: list[tuple[str, Shape]] = []
        broken = False
        for index, (name, branch, branch_path) in enumerate(zip(names, branches, branch_paths)):
            layer_paths = None
            if fields is not None:
                layer_paths = [(*path, fields[f"{name}.{layer.name}"]) for layer in branch.layers]
            where = slices[index] if slices is not None else None
            try:
                sequence, end, end_shape = self.branch(
                    branch, f"{block_id}.{name}", item, branch_path, source, shape, inner, layer_paths, where
                )
            except _Stop:
                broken = True
                continue
            lowered.append((name, sequence))
            ends.append((end, end_shape))
        if broken:
            raise _Stop
        merged, problem = merged_shape(block_id, merge, names, [s for _, s in ends])
        if problem:
            self.fail(path, problem)
        merge_id = f"{block_id}.{merge}"
        inputs = tuple(end for end, _ in ends)
        attrs, problems = merge_attrs(block, inputs, [end_shape[0] for _, end_shape in ends])
        for where, message in problems:
            self.fail((*path, *where), message)
        self.add(Op(merge_id, merge, attrs, merged, 0, 0, item, path), inputs)
        return Parallel(block_id, kind or block.kind, tuple(lowered), merge_id), merge_id, merged

    def branch(
        self,
        branch: Branch,
        prefix: str,
        item: str,
        path: KeyPath,
        source: str,
        shape: Shape,
        context: Context,
        layer_paths: list[KeyPath] | None,
        where: tuple[int, int] | None,
    ) -> tuple[Sequence, str, Shape]:
        """One branch's layers, reading the block input or (``where``) its channel slice."""
        start = source
        if where is not None:
            start, shape = self.slice_op(prefix, item, branch, path, source, shape, where)
        sequence, end, end_shape = self.sequence(
            branch.layers, prefix, item, (*path, "layers"), start, shape, context, layer_paths
        )
        if where is not None:
            sequence = Sequence((start, *sequence.items))
        return sequence, end, end_shape

    def channel_slices(self, block: Branches, shape: Shape, path: KeyPath) -> list[tuple[int, int]] | None:
        """Each branch's (start, count) of the input channels in a split block; None otherwise."""
        sizes = [branch.channels for branch in block.branches]
        if not block.split:
            for index, size in enumerate(sizes):
                if size is not None:
                    where = (*path, "branches", index, "channels")
                    self.fail(where, "channels picks a slice of the input; it needs split: true on the block")
            return None
        slices, problems = channel_slices(sizes, shape[0])
        for problem in problems:
            where = (*path, "split") if problem.branch is None else (*path, "branches", problem.branch)
            channels_given = problem.branch is not None and sizes[problem.branch] is not None
            self.fail((*where, "channels") if channels_given else where, problem.message)
        if problems:
            raise _Stop
        return slices

    def slice_op(
        self,
        prefix: str,
        item: str,
        branch: Branch,
        branch_path: KeyPath,
        source: str,
        shape: Shape,
        where: tuple[int, int],
    ) -> tuple[str, Shape]:
        """The op reading a branch's channel slice; returns its id and shape."""
        for index, layer in enumerate(branch.layers):
            if layer.name == "slice":
                message = "'slice' is the name of the branch's channel slice; pick another name"
                self.fail((*branch_path, "layers", index, "name"), message)
        start, count = where
        sliced = (count, *shape[1:])
        op_id = f"{prefix}.slice"
        attrs = {"start": start, "channels": count}
        self.add(Op(op_id, "slice", attrs, sliced, 0, 0, item, (*branch_path, "channels")), [source])
        return op_id, sliced

    # -- graph -------------------------------------------------------------------
    def add(self, op: Op, inputs: Seq[str]) -> None:
        self.graph.add_node(op.id, op=op)
        for index, source in enumerate(inputs):
            self.graph.add_edge(source, op.id, index=index)

    def op(self, op_id: str) -> Op:
        return self.graph.nodes[op_id]["op"]

    def rank(self, name: str) -> int | None:
        """The rank of a top-level entry's output shape; None if it was not lowered."""
        return len(self.op(self.outputs[name]).shape) if name in self.outputs else None

    def _last(self, sequence: Sequence) -> str:
        last = sequence.items[-1]
        return last if isinstance(last, str) else last.merge
