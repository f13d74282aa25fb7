"""``quantize``: post-training static int8 quantization through PyTorch's PT2E flow.

PyTorch's recommended path for x86 CPUs is PT2E (export, ``prepare_pt2e``, calibrate,
``convert_pt2e``) with ``X86InductorQuantizer``, lowered by ``torch.compile`` (inductor, with
weight freezing) onto oneDNN's int8 convs. torch 2.14 no longer ships
``torch.ao.quantization.quantize_pt2e``: the flow lives in ``torchao``
(``torchao.quantization.pt2e``), and ``torch.ao.quantization``'s eager and FX modes are
deprecated.

What the spec contributes, by the same rewrite as ``optimize_for_inference``:

* batch norm folded and **sibling 1×1 convs fused** where another layer follows them in
  their branch (Inception's two 1×1 reductions become one int8 conv); a branch that is one
  conv keeps it apart, so that no slice feeds a concat;
* so **concatenations and max pools stay int8**: the quantizer gives a concat's inputs shared
  scales (``X86InductorQuantizer``'s int8-in, int8-out ops) when every input is a conv, and a
  pool reading an int8 concat stays int8; a **ceil-mode pool** is an edge pad and a floor-mode
  pool (inductor's int8 pool drops ceil mode), and the pad copies uint8 values too;
* the **precision policy** (``precision.keep_fp32`` or ``keep_fp32``; default: the classifier)
  names top-level layers the quantizer leaves in float32.

Weights are int8 per output channel (symmetric), activations uint8 per tensor (affine),
observed on the calibration batches (histogram observer).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from archbuilder.builder import precision_cpu
from archbuilder.builder.inference_modules import FusedConv, InferenceParallel
from archbuilder.builder.modules import ArchModel
from archbuilder.builder.pooling import EdgePaddedMaxPool2d
from archbuilder.builder.precision import compile_frozen, kept_in_fp32
from archbuilder.builder.rewrite import Rewriter, concat_convs
from archbuilder.core.extras import importing

__all__ = ["QuantizedModel", "calibration_batches", "quantize", "quantize_module"]


class QuantizedModel(nn.Module):
    """The int8 model: ``program`` is the converted PT2E graph (quantize/dequantize ops around
    float ops, what ONNX export and ``torch.export`` take); calls run its compiled form, which
    inductor lowers to oneDNN int8 kernels (compiled on the first call for each input shape)."""

    def __init__(
        self, program: torch.fx.GraphModule, spec: object, compiled: bool, cpp_wrapper: bool = False
    ):
        super().__init__()
        self.program = program
        self.spec = spec
        # Frozen, the int8 weights are constants that inductor prepacks for oneDNN's int8 convs.
        passes = {"pre_grad_custom_pass": _torchao().lift_up}  # torchao's int8 pass, for this model only
        self._run = compile_frozen(program, cpp_wrapper=cpp_wrapper, inductor=passes) if compiled else program
        self.training = False

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x.contiguous(memory_format=torch.channels_last))

    def train(self, mode: bool = True) -> QuantizedModel:
        if mode:
            raise RuntimeError("a quantized model is eval only; train the model it was made from")
        return self


def calibration_batches(model: ArchModel, count: int = 8, batch: int = 8, seed: int = 0) -> list[Tensor]:
    """``count`` batches of uniform [0, 1) noise at the spec's input shape: a stand-in for real
    data where none is at hand (real images calibrate activation ranges better)."""
    spec = model.spec
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, spec.input.channels, spec.input.height, spec.input.width)
    return [torch.rand(shape, generator=generator) for _ in range(count)]


def quantize(
    model: ArchModel,
    calibration: Iterable[Tensor],
    *,
    keep_fp32: Sequence[str] | None = None,
    fuse_siblings: bool = True,
    compile: bool = True,
    cpp_wrapper: bool = False,
) -> QuantizedModel:
    """An int8 copy of ``model`` (eval only; ``model`` is untouched), calibrated on ``calibration``
    (batches of inputs, as the model takes them). ``keep_fp32`` names top-level layers left in
    float32 (default: the spec's ``precision.keep_fp32``, else the classifier). ``compile=False``
    leaves the reference graph (exact int8 arithmetic simulated in float32: slow, for export);
    ``cpp_wrapper`` is :func:`compile_frozen`'s."""
    if not isinstance(model, ArchModel):
        raise TypeError(f"quantize takes a model made by archbuilder.build, not {type(model).__name__}")
    if compile and not torch.backends.mkldnn.is_available():
        raise precision_cpu.UnsupportedOnThisCPU(
            "int8 kernels need oneDNN, which this torch build lacks (torch.backends.mkldnn.is_available() "
            "is False): quantize(..., compile=False) keeps the reference graph (slow; what the exporters "
            "take), or run in float32"
        )
    keep = kept_in_fp32(model, keep_fp32)
    program = quantize_module(_float_body(model, fuse_siblings), calibration, keep_fp32=keep)
    return QuantizedModel(program, getattr(model, "spec", None), compile, cpp_wrapper)


def quantize_module(
    module: nn.Module, calibration: Iterable[Tensor], *, keep_fp32: Iterable[str] = ()
) -> torch.fx.GraphModule:
    """The PT2E flow on any eval-mode image model (torchvision's too, for a like-for-like peer):
    export with a dynamic batch, ``X86InductorQuantizer`` (submodules named in ``keep_fp32``
    left float32), calibrate on channels-last ``calibration`` batches, convert."""
    prepare_pt2e, convert_pt2e, allow_train_eval, quantizer = _pt2e(frozenset(keep_fp32))
    batches = [batch.float().contiguous(memory_format=torch.channels_last) for batch in calibration]
    if not batches:
        raise ValueError("quantize needs at least one calibration batch")
    precision_cpu.warn_if_not_accelerated("int8", batches[0].device)
    example = batches[0].expand(max(2, len(batches[0])), *batches[0].shape[1:])  # batch 1 specializes
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's notes on the IR
        warnings.filterwarnings("ignore", "The input of maxpool2d is not quantized")  # it stays float
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},)).module()
        prepared = prepare_pt2e(program, quantizer)
        for batch in batches:
            prepared(batch)
        converted = convert_pt2e(prepared)
    _edge_pads_in_int8(converted)
    allow_train_eval(converted)  # an exported graph refuses .eval() otherwise (exporters call it)
    converted.training = False
    return converted


@dataclasses.dataclass(frozen=True)
class _Torchao:
    prepare_pt2e: object
    convert_pt2e: object
    allow_train_eval: object
    x86: object  # the x86 quantizer's module
    lift_up: object  # the inductor pass its import installs


@functools.cache
def _torchao() -> _Torchao:
    """torchao's PT2E entry points, imported once. Importing the x86 quantizer sets inductor's
    ``pre_grad_custom_pass`` for the whole process (its int8 pass); it is put back, and the
    int8 programs' compiles set it for themselves. Left set, a float model compiled in the
    same process crashed (heap corruption, torch 2.14.1, torchao 0.18)."""
    config = torch._inductor.config
    before = config.pre_grad_custom_pass
    try:
        with importing("int8 quantization (PyTorch's PT2E flow)"):
            from torchao.quantization.pt2e import allow_exported_model_train_eval
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
        lift_up = config.pre_grad_custom_pass
    finally:
        config.pre_grad_custom_pass = before
    return _Torchao(prepare_pt2e, convert_pt2e, allow_exported_model_train_eval, x86, lift_up)


def _pt2e(keep: frozenset[str]):
    """torchao's PT2E entry points and an X86 quantizer leaving ``keep`` in float32."""
    torchao = _torchao()
    prepare_pt2e, convert_pt2e, x86 = torchao.prepare_pt2e, torchao.convert_pt2e, torchao.x86
    allow_exported_model_train_eval = torchao.allow_train_eval
    quantizer = _edge_pad_aware(x86)()
    reduce_range = precision_cpu.cpu_support().int8_reduce_range
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    for name in sorted(keep):
        quantizer.set_module_name_qconfig(name, None)
    return prepare_pt2e, convert_pt2e, allow_exported_model_train_eval, quantizer


@functools.cache  # one class per torchao module, not one per quantize call
def _edge_pad_aware(x86):
    """``X86InductorQuantizer`` that also passes int8 through the edge pad of an
    :class:`EdgePaddedMaxPool2d`, as it does through a max pool (shared scale, in and out).

    Without this the quantizer leaves the pad, and so the pool, in float: the conv before it
    writes fp32, the pad and pool run in float and quantize again (GoogLeNet's pool1, pool2
    and pool3, and the pool branches reading them). Copying edge values is exact in int8.
    The hooks are the quantizer's own (private, torchao 0.18): :func:`_private_api_matches`
    checks every one used, with the arguments passed; where one differs, the plain quantizer
    is used, which is correct, only slower.
    """
    base = x86.X86InductorQuantizer
    if not _private_api_matches(x86):
        return base

    def is_edge_pad(node: torch.fx.Node) -> bool:
        return (
            node.op == "call_function"
            and node.target is torch.ops.aten.pad.default
            and node.args[2:3] == ("replicate",)
            and bool(node.users)
            and all(user.target is torch.ops.aten.max_pool2d.default for user in node.users)
        )

    class EdgePadAwareQuantizer(base):
        def _annotate_propagation_quantizable_pattern(self, node, quantization_config, filter_fn):
            if not is_edge_pad(node):
                return super()._annotate_propagation_quantizable_pattern(node, quantization_config, filter_fn)
            source, pools = node.all_input_nodes[0], list(node.users)
            # The filters know quantizable ops, which a pad is not: it goes where its pool goes.
            if x86._is_any_annotated([node]) or not (filter_fn and filter_fn(pools)):
                return None
            if quantization_config is None:
                return x86._annotate_nodes_not_quantize(node)
            if not x86._is_quantized_op_pt2e(source):
                return None
            node.meta[x86.QUANT_ANNOTATION_KEY] = x86._X86InductorQuantizationAnnotation(
                input_qspec_map={source: x86.get_input_act_qspec(quantization_config)},
                _annotated=True,
                _is_output_of_quantized_pattern=True,
            )
            return None

        def _annotate_output_for_int8_in_int8_out_pattern(self, node):
            if is_edge_pad(node) and x86._is_any_annotated([node]):
                return self._annotate_output_share_observer_as_input(node.all_input_nodes[0], node)
            return super()._annotate_output_for_int8_in_int8_out_pattern(node)

    return EdgePadAwareQuantizer


# What _edge_pad_aware uses of torchao's x86 quantizer module, privates included: the
# quantizer's methods (with the parameters they are called with), the module's functions,
# and the annotation's fields.
_QUANTIZER_METHODS = {
    "_annotate_propagation_quantizable_pattern": ("node", "quantization_config", "filter_fn"),
    "_annotate_output_for_int8_in_int8_out_pattern": ("node",),
    "_annotate_output_share_observer_as_input": ("input_node", "source_node"),
}
_MODULE_FUNCTIONS = (
    "_is_any_annotated",
    "_is_quantized_op_pt2e",
    "_annotate_nodes_not_quantize",
    "get_input_act_qspec",
)
_ANNOTATION_FIELDS = ("input_qspec_map", "_annotated", "_is_output_of_quantized_pattern")


def _private_api_matches(x86) -> bool:
    """Whether torchao's x86 quantizer module still has every private name and parameter that
    :func:`_edge_pad_aware` uses."""
    base = getattr(x86, "X86InductorQuantizer", None)
    annotation = getattr(x86, "_X86InductorQuantizationAnnotation", None)
    if base is None or not hasattr(x86, "QUANT_ANNOTATION_KEY") or not dataclasses.is_dataclass(annotation):
        return False
    if not all(callable(getattr(x86, name, None)) for name in _MODULE_FUNCTIONS):
        return False
    if not set(_ANNOTATION_FIELDS) <= {field.name for field in dataclasses.fields(annotation)}:
        return False
    for name, parameters in _QUANTIZER_METHODS.items():
        method = getattr(base, name, None)
        if method is None or tuple(inspect.signature(method).parameters)[1:] != parameters:
            return False
    return True


def _edge_pads_in_int8(program: torch.fx.GraphModule) -> None:
    """Each ``quantize(pad(dequantize(x)))`` with one scale throughout as ``pad(x)``: the
    replicate pad of the uint8 tensor itself, the same values without a float round trip
    (inductor otherwise spends a pass converting each element there and back)."""
    decomposed = torch.ops.quantized_decomposed
    for pad in list(program.graph.nodes):
        if pad.op != "call_function" or pad.target is not torch.ops.aten.pad.default:
            continue
        if pad.args[2:3] != ("replicate",):  # a constant pad's value is a float, not a code
            continue
        source, users = pad.args[0], list(pad.users)
        if not (
            isinstance(source, torch.fx.Node)
            and source.target is decomposed.dequantize_per_tensor.default
            and len(users) == 1
            and users[0].target is decomposed.quantize_per_tensor.default
            and tuple(users[0].args[1:6]) == tuple(source.args[1:6])
        ):
            continue
        requantize = users[0]
        with program.graph.inserting_before(pad):
            int8_pad = program.graph.call_function(
                torch.ops.aten.pad.default, (source.args[0], *pad.args[1:])
            )
        int8_pad.meta = dict(requantize.meta)
        requantize.replace_all_uses_with(int8_pad)
        program.graph.erase_node(requantize)
        program.graph.erase_node(pad)
        if not source.users:
            program.graph.erase_node(source)
    program.graph.lint()
    program.recompile()


def _float_body(model: ArchModel, fuse_siblings: bool) -> nn.Module:
    """The model's eval body after folding and sibling fusion, top-level names kept (the
    quantizer's module names), each conv a plain ``nn.Conv2d`` whose weight the quantizer sees."""
    rewriter = Rewriter(fold_bn=True, fuse_siblings=fuse_siblings)
    with torch.no_grad():
        layers = [(name, rewriter.rewrite(model.get_submodule(name))) for name in model.body_names]
    kept = OrderedDict((name, _plain(layer)) for name, layer in layers if not isinstance(layer, nn.Identity))
    return nn.Sequential(kept).eval().to(memory_format=torch.channels_last)


def _bare_siblings_apart(block: InferenceParallel) -> InferenceParallel:
    """``block`` with each branch that is only its opening conv taken out of the fused head.

    Such a branch reaches the concat through a slice of the head's output, and the x86
    quantizer keeps a concat with a slice among its inputs in float, and so the pools that
    read it. Apart, every concat input is a conv, and concats and pools stay int8.
    """
    heads, routes, branches = [], list(block.routes), list(block.branches)
    for index, head in enumerate(block.heads):
        members = [(i, route) for i, route in enumerate(block.routes) if route and route[0] == index]
        bare = [i for i, _ in members if isinstance(branches[i], nn.Identity)]
        kept = [(i, route) for i, route in members if i not in bare]
        for i, (_, start, width) in members:
            if i in bare or len(kept) == 1:
                conv = _slice_conv(head, start, width)
                branches[i] = conv if i in bare else nn.Sequential(conv, branches[i])
                routes[i] = None
        if len(kept) > 1:
            convs = [_slice_conv(head, start, width) for _, (_, start, width) in kept]
            heads.append(concat_convs(convs))
            offset = 0
            for i, (_, _, width) in kept:
                routes[i] = (len(heads) - 1, offset, width)
                offset += width
    return InferenceParallel(
        heads, routes, branches, block.merge, block.scales, block.activation, block.shuffle
    )


def _slice_conv(conv: FusedConv, start: int, width: int) -> FusedConv:
    weight, bias = conv.weight[start : start + width].clone(), conv.bias[start : start + width].clone()
    return FusedConv(weight, bias, conv, copy.deepcopy(conv.act))


def _plain(module: nn.Module) -> nn.Module:
    """``module`` with each FusedConv replaced by an ``nn.Conv2d`` (and its activation), and
    each ceil-mode max pool by an :class:`EdgePaddedMaxPool2d` (inductor's int8 pool drops
    ceil mode)."""
    if isinstance(module, InferenceParallel) and module.heads:
        module = _bare_siblings_apart(module)
    if isinstance(module, nn.MaxPool2d):  # InferenceMaxPool2d too: the quantizer knows torch's pool
        return EdgePaddedMaxPool2d.replacing(module)
    if isinstance(module, FusedConv):
        out_channels, in_per_group, kh, kw = module.weight.shape
        conv = nn.Conv2d(
            in_per_group * module.groups, out_channels, (kh, kw), module.stride, module.padding,
            module.dilation, module.groups, bias=True,
        )  # fmt: skip
        conv.weight = nn.Parameter(module.weight.detach().clone(), requires_grad=False)
        conv.bias = nn.Parameter(module.bias.detach().clone(), requires_grad=False)
        return conv if module.act is None else nn.Sequential(conv, copy.deepcopy(module.act))
    for name, child in module.named_children():
        setattr(module, name, _plain(child))
    return module
