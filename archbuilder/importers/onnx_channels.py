"""ONNX op handlers for channel-wise ops: slices and splits of the channels (a ``split: true``
block's branches), a per-channel multiplier (layer scale), layer norm, over features or,
between the two transposes torch writes around it, over the channels of a feature map, and
the channel shuffle (Reshape to N×g×C/g×H×W, Transpose of the two channel axes, Reshape back)."""

from __future__ import annotations

from typing import Any

from archbuilder.importers.onnx_layernorm import written_out_layer_norm
from archbuilder.importers.onnx_ops import Unconvertible

__all__ = ["ChannelOps"]

_TO_LAST, _TO_FIRST = [0, 2, 3, 1], [0, 3, 1, 2]


class ChannelOps:
    """Mixed into the converter beside :class:`~archbuilder.importers.onnx_ops.OnnxOps`."""

    def channels(self, tensor: str) -> tuple[int, int]:
        """(rank, channels) of a data tensor, from onnx's shape inference."""
        dims = self.shapes.get(tensor)
        if not dims or len(dims) < 2 or not isinstance(dims[1], int):
            raise Unconvertible(f"the channels of {tensor} are not known (onnx shape inference)")
        return len(dims), dims[1]

    def _slice(self, node, x: str, start: int, end: int, output: str | None = None) -> None:
        _, total = self.channels(x)
        start, end = (min(max(v + total if v < 0 else v, 0), total) for v in (start, end))
        if end <= start:
            raise Unconvertible("an empty slice of the channels")
        self.add(node, "slice", [x], {"start": start, "channels": end - start, "of": total}, output=output)

    def _Slice(self, node, inputs, a):
        if len(inputs) >= 3:
            starts, ends = (self.const(inputs[i], what) for i, what in ((1, "starts"), (2, "ends")))
            axes = self.const(inputs[3], "axes") if len(inputs) > 3 and inputs[3] else range(len(starts))
            steps = self.const(inputs[4], "steps") if len(inputs) > 4 and inputs[4] else [1] * len(starts)
        else:  # opset < 10: attributes
            starts, ends = a["starts"], a["ends"]
            axes, steps = a.get("axes", range(len(starts))), [1] * len(starts)
        starts, ends, axes, steps = (
            [int(v) for v in getattr(x, "flat", x)] for x in (starts, ends, axes, steps)
        )
        rank, _ = self.channels(inputs[0])
        if len(starts) != 1 or axes[0] % rank != 1 or steps[0] != 1:
            raise Unconvertible(
                f"only a slice of the channels (axis 1, step 1), not axes {axes} steps {steps}"
            )
        self._slice(node, inputs[0], starts[0], ends[0])

    def _Split(self, node, inputs, a):
        rank, total = self.channels(inputs[0])
        if int(a.get("axis", 0)) % rank != 1:
            raise Unconvertible("only a split of the channels (axis 1)")
        sizes = a.get("split")
        if sizes is None and len(inputs) > 1 and inputs[1]:
            sizes = self.const(inputs[1], "split").reshape(-1)
        count = len(node.output)
        if sizes is None:  # equal parts, the last one smaller (ONNX's rule)
            part = -(-total // count)
            sizes = [min(part, total - part * i) for i in range(count)]
        start = 0
        for output, size in zip(node.output, (int(s) for s in sizes)):
            self._slice(node, inputs[0], start, start + size, output=output)
            start += size

    def _SplitToSequence(self, node, inputs, a):
        """torch.split in an unoptimized export: a sequence that SequenceAt nodes index."""
        rank, total = self.channels(inputs[0])
        if int(a.get("axis", 0)) % rank != 1 or len(inputs) < 2 or not inputs[1]:
            raise Unconvertible("only a split of the channels (axis 1) with its sizes given")
        sizes = [int(s) for s in self.const(inputs[1], "split").reshape(-1)]
        if len(sizes) == 1:  # one size: chunks of it, the last one smaller
            sizes = [min(sizes[0], total - start) for start in range(0, total, max(sizes[0], 1))]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.sequences[node.output[0]] = (inputs[0], list(zip(starts, sizes)))
        self.data.add(node.output[0])

    def _SequenceAt(self, node, inputs, a):
        if inputs[0] not in self.sequences:
            raise Unconvertible("indexes a sequence that is not a split of the channels")
        x, parts = self.sequences[inputs[0]]
        start, size = parts[int(self.const(inputs[1], "position").reshape(-1)[0])]
        self._slice(node, x, start, start + size)

    def per_channel(self, node, x: str, factor: Any) -> bool:
        """Add ``x · factor`` as a layer scale when ``factor`` has one value per channel."""
        rank, total = self.channels(x)
        shape = list(factor.shape)
        while shape and shape[0] == 1 and len(shape) > rank - 1:
            shape.pop(0)
        if shape != [total] + [1] * (rank - 2):
            return False
        self.add(node, "layer_scale", [x], {}, {"gamma": factor.reshape(-1)})
        return True

    def _layernorm(self, node, x: str, a: dict[str, Any], output: str | None = None) -> None:
        inputs = list(node.input)
        if len(inputs) < 3 or not inputs[2]:
            raise Unconvertible("a layer norm without bias (archbuilder's has one)")
        weights = {"weight": self.const(inputs[1], "scale"), "bias": self.const(inputs[2], "bias")}
        if weights["weight"].ndim != 1:
            raise Unconvertible("a layer norm over more than the last axis")
        attrs = {"eps": float(a.get("epsilon", 1e-5)), "path": inputs[1].rsplit(".", 1)[0]}
        self.add(node, "layernorm", [x], attrs, weights, output=output)

    def _LayerNormalization(self, node, inputs, a):
        rank, _ = self.channels(inputs[0])
        if rank != 2 or int(a.get("axis", -1)) % rank != 1:
            raise Unconvertible("a layer norm over features (N×F) or, between transposes, over channels")
        self._layernorm(node, inputs[0], a)

    def _Transpose(self, node, inputs, a):
        """NCHW → NHWC, a layer norm over the last axis, and back: a layer norm over channels."""
        if list(a.get("perm", [])) == _TO_LAST:
            norm = self._sole_reader(node.output[0], "LayerNormalization")
            back = self._sole_reader(norm.output[0], "Transpose") if norm is not None else None
            attrs = {x.name: x for x in norm.attribute} if norm is not None else {}
            axis = attrs["axis"].i if "axis" in attrs else -1
            perm = [list(x.ints) for x in back.attribute if x.name == "perm"] if back is not None else []
            if perm == [_TO_FIRST] and axis in (-1, 3):
                epsilon = {"epsilon": attrs["epsilon"].f} if "epsilon" in attrs else {}
                self.skip.update((id(norm), id(back)))
                self._layernorm(norm, inputs[0], epsilon, output=back.output[0])
                return
            if norm is None and self.written_out(node, inputs[0]):
                return
        raise Unconvertible("only the transposes around a layer norm over channels")

    def written_out(self, node, x: str) -> bool:
        """A layer norm written out (opset < 17) between the transposes: one ``layernorm``."""
        found = written_out_layer_norm(node.output[0], self.readers, self.consts)
        back = self._sole_reader(found.output, "Transpose") if found is not None else None
        perm = [list(a.ints) for a in back.attribute if a.name == "perm"] if back is not None else []
        if perm != [_TO_FIRST]:
            return False
        self.skip.update(id(n) for n in (*found.nodes, back))
        attrs = {"eps": found.eps, "path": found.weight_name.rsplit(".", 1)[0]}
        weights = {"weight": found.weight, "bias": found.bias}
        self.add(found.nodes[-1], "layernorm", [x], attrs, weights, output=back.output[0])
        return True

    def shuffle(self, node, x: str) -> bool:
        """Add a channel shuffle where ``node`` (a Reshape of ``x``) opens one; torch.onnx may
        put an Identity (a ``.contiguous()`` clone) before the Reshape back."""
        before, split = self.shapes.get(x), self.shapes.get(node.output[0])
        if not before or not split or len(before) != 4 or len(split) != 5:
            return False
        groups, width = split[1], split[2]
        if not all(isinstance(d, int) for d in (*before[1:], groups, width, *split[3:])):
            return False
        swap = self._sole_reader(node.output[0], "Transpose")
        perm = [list(a.ints) for a in swap.attribute if a.name == "perm"] if swap is not None else []
        if perm != [[0, 2, 1, 3, 4]] or groups * width != before[1] or tuple(split[3:]) != before[2:]:
            return False
        chain, tensor = [swap], swap.output[0]
        while (copy := self._sole_reader(tensor, "Identity")) is not None:
            chain.append(copy)
            tensor = copy.output[0]
        back = self._sole_reader(tensor, "Reshape")
        if back is None or tuple(self.shapes.get(back.output[0], ())[1:]) != tuple(before[1:]):
            return False
        self.skip.update(id(n) for n in (*chain, back))
        self.add(node, "channel_shuffle", [x], {"groups": int(groups)}, output=back.output[0])
        return True

    def _sole_reader(self, tensor: str, op: str) -> Any:
        readers = self.readers.get(tensor, [])
        return readers[0] if len(readers) == 1 and readers[0].op_type == op else None
