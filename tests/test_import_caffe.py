"""Caffe prototxt import, against BVLC's GoogLeNet definition and hand-written networks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import archbuilder
from archbuilder.importers import ImportFailure, import_model
from archbuilder.importers.prototxt import PrototxtError, parse_prototxt

from .conftest import ROOT, SPECS

# BVLC/caffe's models/bvlc_googlenet/deploy.prototxt, unchanged, and a training definition
# written from it: their provenance and Caffe's license are in tests/data/import/NOTICE.
DATA = ROOT / "tests" / "data" / "import"
DEPLOY = DATA / "bvlc_googlenet_deploy.prototxt"
TRAIN_VAL = DATA / "bvlc_googlenet_train_val.prototxt"
V1 = SPECS / "googlenet-v1-original.yaml"


def test_the_fixtures_are_in_the_checkout_with_their_notice():
    """A clone runs every test: BVLC's deploy definition ships in tests/data/import, unchanged
    (the digest NOTICE and docs/import.md give), with Caffe's BSD 2-Clause notice."""
    notice = (DATA / "NOTICE").read_text(encoding="utf-8")
    assert hashlib.sha256(DEPLOY.read_bytes()).hexdigest() in notice
    assert "Redistribution and use in source and binary forms" in notice
    assert "NOTICE" in TRAIN_VAL.read_text(encoding="utf-8").split("\nname:", 1)[0]


def _ops(ir, *, aux: bool):
    aux_names = {head.name for head in ir.aux_heads}
    return [
        (op.kind, dict(op.attrs), op.shape, op.params, op.macs)
        for op in ir.ops()
        if op.kind != "input" and (aux or op.item not in aux_names)
        for _ in [op.attrs.pop("inputs", None) if False else None]
    ]


def _strip_inputs(ops):
    return [(k, {key: v for key, v in a.items() if key != "inputs"}, s, p, m) for k, a, s, p, m in ops]


def test_bvlc_deploy_is_the_shipped_v1_spec_without_aux_heads():
    result = import_model(DEPLOY)
    imported, shipped = archbuilder.lower(result.spec), archbuilder.lower(archbuilder.load_spec(V1))
    assert imported.total() == (6_998_552, imported.total()[1])  # BVLC GoogLeNet's published count
    assert _strip_inputs(_ops(imported, aux=True)) == _strip_inputs(_ops(shipped, aux=False))
    assert imported.total() == shipped.total(aux=False)
    assert result.weights is None


def test_bvlc_deploy_recognizes_nine_inception_modules_by_role():
    spec = import_model(DEPLOY).spec
    inception = [layer for layer in spec.blocks if layer.kind == "inception"]
    shipped = [layer for layer in archbuilder.load_spec(V1).blocks if layer.kind == "inception"]
    assert [layer.name for layer in inception] == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    fields = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
    assert [[getattr(b, f) for f in fields] for b in inception] == [
        [getattr(b, f) for f in fields] for b in shipped
    ]
    # The paper's table 1, inception (3a): 64, 96, 128, 16, 32, 32.
    assert [getattr(inception[0], f) for f in fields] == [64, 96, 128, 16, 32, 32]


@pytest.mark.slow
def test_bvlc_deploy_weights_transfer_by_module_order():
    torch = pytest.importorskip("torch")
    ours = archbuilder.build(import_model(DEPLOY).spec).eval()
    theirs = archbuilder.build(V1, aux=False).eval()
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in theirs.state_dict().values()]
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_training_definition_gives_the_aux_heads():
    result = import_model(TRAIN_VAL)
    ir = archbuilder.lower(result.spec)
    assert ir.total()[0] == 13_378_280
    heads = [(h.tap, h.loss_weight) for h in result.spec.aux_heads]
    assert heads == [("4a", 0.3), ("4d", 0.3)]
    shipped = archbuilder.lower(archbuilder.load_spec(V1))
    kinds = lambda ir, head: [(o.kind, o.shape, o.params) for o in ir.ops() if o.item == head]  # noqa: E731
    assert kinds(ir, "loss1") == kinds(shipped, "aux1")
    assert kinds(ir, "loss2") == kinds(shipped, "aux2")
    assert [layer.name for layer in result.spec.aux_heads[0].layers] == [
        "ave_pool",
        "conv",
        "flatten",
        "fc",
        "relu_fc",
        "drop_fc",
        "classifier",
    ]


def test_phase_rules_pick_the_data_layer_and_skip_test_only_layers():
    for phase in ("TRAIN", "TEST"):
        spec = import_model(TRAIN_VAL, phase=phase).spec
        assert (spec.input.channels, spec.input.height) == (3, 224)
        assert archbuilder.lower(spec).total()[0] == 13_378_280


def _write(tmp_path: Path, text: str, name: str = "net.prototxt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LAYER = 'layer {{ name: "{name}" type: "{type}" bottom: "{bottom}" top: "{top}" {extra} }}\n'
INPUT = 'name: "tiny"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'


def _layer(name, type, bottom, top=None, extra=""):
    return LAYER.format(name=name, type=type, bottom=bottom, top=top or name, extra=extra)


def _conv(name, bottom, out, kernel=3, pad=1, bias=True):
    extra = f"convolution_param {{ num_output: {out} kernel_size: {kernel} pad: {pad} bias_term: {str(bias).lower()} }}"
    return _layer(name, "Convolution", bottom, extra=extra)


def test_batchnorm_scale_and_a_residual_eltwise(tmp_path):
    text = INPUT + _conv("stem/conv", "data", 16, bias=False)
    text += _layer("stem/bn", "BatchNorm", "stem/conv", "stem/conv", "batch_norm_param { eps: 0.001 }")
    text += _layer("stem/scale", "Scale", "stem/conv", "stem/conv", "scale_param { bias_term: true }")
    text += _layer("stem/relu", "ReLU", "stem/conv", "stem/conv")
    text += _conv("res/conv_a", "stem/conv", 16) + _layer("res/relu_a", "ReLU", "res/conv_a", "res/conv_a")
    text += _conv("res/conv_b", "res/conv_a", 16)
    text += (
        'layer { name: "res/sum" type: "Eltwise" bottom: "stem/conv" bottom: "res/conv_b" top: "res/sum" }\n'
    )
    text += _layer("res/relu", "ReLU", "res/sum", "res/sum")
    text += _layer("pool", "Pooling", "res/sum", extra="pooling_param { pool: AVE global_pooling: true }")
    text += _layer("fc", "InnerProduct", "pool", extra="inner_product_param { num_output: 10 }")
    spec = import_model(_write(tmp_path, text)).spec
    ir = archbuilder.lower(spec)
    stem = ir.op(spec.stem[0].name).attrs
    assert (stem["norm"], stem["bias"], stem["bn_eps"], stem["activation"]) == ("batch", False, 0.001, "relu")
    block = spec.blocks[0]
    assert (block.kind, block.merge, block.activation) == ("branches", "add", "relu")
    assert [len(b.layers) for b in block.branches] == [0, 2]  # the identity shortcut, then the convs
    assert ir.op(f"{block.name}.branch2.{block.branches[1].layers[1].name}").attrs["activation"] == "none"
    # by hand: conv 3·16·9 + BN 2·16; two convs 16·16·9 + 16 each; fc 16·10 + 10
    assert archbuilder.lower(spec).total()[0] == 432 + 32 + 2 * (2304 + 16) + 170


def test_an_inception_in_another_concat_order_stays_branches(tmp_path):
    text = INPUT + _conv("b/1x1", "data", 8, 1, 0) + _conv("b/3x3", "data", 8)
    text += 'layer { name: "b/out" type: "Concat" bottom: "b/3x3" bottom: "b/1x1" top: "b/out" }\n'
    spec = import_model(_write(tmp_path, text)).spec
    block = spec.blocks[0]
    assert block.kind == "branches" and block.name == "b"
    assert [branch.name for branch in block.branches] == ["3x3", "1x1"]


def test_eltwise_coefficients_become_branch_scales(tmp_path):
    text = INPUT + _conv("a", "data", 3)
    eltwise = "eltwise_param { operation: SUM coeff: 1 coeff: 0.2 }"
    text += f'layer {{ name: "sum" type: "Eltwise" bottom: "data" bottom: "a" top: "sum" {eltwise} }}\n'
    block = import_model(_write(tmp_path, text)).spec.blocks[0]
    assert [branch.scale for branch in block.branches] == [1.0, 0.2]


def test_caffe_rounds_pooling_up(tmp_path):
    pool = "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"
    text = INPUT.replace("dim: 32 dim: 32", "dim: 112 dim: 112") + _layer(
        "pool", "Pooling", "data", extra=pool
    )
    spec = import_model(_write(tmp_path, text)).spec
    # Caffe: ceil((112 - 3) / 2) + 1 = 56; torch's floor rule would give 55
    assert archbuilder.lower(spec).op("pool").shape == (3, 56, 56)
    assert spec.blocks[0].ceil_mode is True


def test_unsupported_layers_are_all_reported_and_partial_stops_at_the_first(tmp_path):
    text = INPUT + _conv("conv1", "data", 8) + _layer("up", "Deconvolution", "conv1")
    text += _layer("pow", "Power", "up") + _layer(
        "pool", "Pooling", "pow", extra="pooling_param { pool: STOCHASTIC }"
    )
    path = _write(tmp_path, text)
    with pytest.raises(ImportFailure) as failure:
        import_model(path)
    assert [(p.node, p.op) for p in failure.value.problems] == [
        ("up", "Deconvolution"),
        ("pow", "Power"),
        ("pool", "Pooling"),
    ]
    assert "STOCHASTIC" in str(failure.value)
    result = import_model(path, partial=True)
    assert result.stopped.startswith("up (Deconvolution)")
    assert [layer.name for layer in result.spec.blocks] == ["conv1"]
    assert "partial: stopped before up (Deconvolution)" in result.to_yaml()


def test_header_names_the_source_and_its_hash(tmp_path):
    path = _write(tmp_path, INPUT + _conv("conv1", "data", 8), 'odd "name".prototxt')
    text = import_model(path).to_yaml()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"# sha256: {digest}\n" in text
    assert '# source: "' in text and '\\"name\\"' in text
    assert archbuilder.load_spec(text) == import_model(path).spec


def test_prototxt_errors_say_where():
    with pytest.raises(PrototxtError, match="line 2, column 9"):
        parse_prototxt('layer {\n  name: @"x"\n}')
    with pytest.raises(PrototxtError, match="missing '}'"):
        parse_prototxt("layer { name: 'x'")
    assert parse_prototxt('a: 1 b: -2.5e1 c: "x\\"y" d { e: MAX } d { e: AVE } f: [1, 2]') == {
        "a": [1],
        "b": [-25.0],
        "c": ['x"y'],
        "d": [{"e": ["MAX"]}, {"e": ["AVE"]}],
        "f": [1, 2],
    }


def _branch_of(name: str) -> int:
    """Which Inception branch a BVLC layer belongs to (4: the concat, which stays last)."""
    leaf = name.split("/")[-1].removeprefix("relu_")
    order = {"1x1": 0, "3x3_reduce": 1, "3x3": 1, "5x5_reduce": 2, "5x5": 2, "pool": 3, "pool_proj": 3}
    return order.get(leaf, 4)


def test_layers_written_in_another_order_import_the_same(tmp_path):
    """Each Inception module written pool branch first, 1×1 branch last: the concat order
    (not the file order) decides, so the spec is the same."""
    text = DEPLOY.read_text()
    head, *layers = text.split("layer {")
    groups: list[list[str]] = []
    for layer in layers:
        name = layer.split('name: "', 1)[1].split('"', 1)[0]
        scope = name.split("/")[0] if name.startswith("inception_") else None
        if groups and scope is not None and groups[-1][0] == scope:
            groups[-1][1].append((name, layer))
        else:
            groups.append([scope, [(name, layer)]])
    shuffled = []
    for scope, members in groups:
        if scope is not None:
            members = sorted(members, key=lambda m: (_branch_of(m[0]) == 4, -_branch_of(m[0])))
        shuffled += [layer for _, layer in members]
    assert shuffled != layers
    path = _write(tmp_path, head + "".join(f"layer {{{layer}" for layer in shuffled))
    assert import_model(path).spec == import_model(DEPLOY).spec


def test_names_are_sanitized_unique_and_never_a_module_attribute(tmp_path):
    text = (
        INPUT + _conv("conv 1(a)", "data", 4) + _conv("forward", "conv 1(a)", 4) + _conv("a/x", "forward", 4)
    )
    text += _conv("a/y", "a/x", 4)
    spec = import_model(_write(tmp_path, text)).spec
    assert [layer.name for layer in spec.blocks] == ["conv_1_a", "forward_", "a_x", "a_y"]


def test_a_layer_missing_a_required_parameter_is_reported(tmp_path):
    text = INPUT + _layer("conv1", "Convolution", "data", extra="convolution_param { kernel_size: 3 }")
    text += _layer("fc", "InnerProduct", "conv1", extra="inner_product_param { num_output: many }")
    with pytest.raises(ImportFailure) as failure:
        import_model(_write(tmp_path, text))
    assert [(p.node, p.op) for p in failure.value.problems] == [
        ("conv1", "Convolution"),
        ("fc", "InnerProduct"),
    ]
    assert all("malformed parameters" in p.reason for p in failure.value.problems)
