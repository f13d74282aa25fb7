"""specs/inception-next-tiny.yaml against timm's inception_next_tiny (random weights, nothing
downloaded): parameters, state-dict tensors, every top-level block's output, eval logits."""

from __future__ import annotations

import pytest
import torch

timm = pytest.importorskip("timm")

import archbuilder  # noqa: E402
from archbuilder.builder.build import build_from_ir  # noqa: E402
from archbuilder.interop import load_weights  # noqa: E402

from .conftest import ROOT, SPECS  # noqa: E402
from .shape_check import outputs_of  # noqa: E402

SPEC = SPECS / "inception-next-tiny.yaml"
DEPTHS, DIMS, RATIOS = (3, 3, 9, 3), (96, 192, 384, 768), (4, 4, 4, 3)


def _randomize(model: torch.nn.Module) -> None:
    """Non-trivial batch-norm statistics and affine parameters, and layer scales near 1 (at
    timm's 1e-6 every residual branch would vanish from the logits)."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith(".bias"):
                tensor.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith("gamma") or (name.endswith(".weight") and tensor.dim() == 1):
                tensor.uniform_(0.5, 1.5)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    reference = timm.create_model("inception_next_tiny", pretrained=False).eval()
    _randomize(reference)
    ours = archbuilder.build(SPEC).eval()
    # The module itself, not its state dict: its convs' and norms' settings are checked too.
    load_weights(ours, reference)  # layout timm-inception-next-tiny, found from the spec's name
    return ours, reference


def test_parameters_equal_timms():
    summary = archbuilder.summarize(archbuilder.load_spec(SPEC))
    assert summary.params == summary.inference_params == 28_055_680  # no aux head
    with torch.device("meta"):  # shapes only, no memory
        reference = timm.create_model("inception_next_tiny", pretrained=False)
    assert sum(p.numel() for p in reference.parameters()) == 28_055_680


@pytest.mark.slow
def test_every_state_dict_tensor_has_its_counterpart(pair):
    ours, reference = pair
    theirs, mine = reference.state_dict(), ours.state_dict()
    assert len(theirs) == len(mine) == 322
    # load_weights copied every tensor: each of timm's is found, by value, in the loaded model.
    values = {
        (tuple(tensor.shape), tensor.sum().item(), tensor.abs().sum().item()) for tensor in mine.values()
    }
    assert all((tuple(t.shape), t.sum().item(), t.abs().sum().item()) in values for t in theirs.values())


def test_block_macs_equal_a_hand_count():
    rows = {row.name: row for row in archbuilder.summarize(archbuilder.load_spec(SPEC)).rows}
    sizes = (56, 28, 14, 7)
    for stage, (dim, ratio, size) in enumerate(zip(DIMS, RATIOS, sizes)):
        gc, hidden, pixels = dim // 8, dim * ratio, size * size
        depthwise = gc * (3 * 3 + 1 * 11 + 11 * 1) * pixels
        mlp = 2 * dim * hidden * pixels
        assert rows[f"stages_{stage}_blocks_0"].macs == depthwise + mlp
        params = gc * (9 + 11 + 11) + 3 * gc + 2 * dim + (dim * hidden + hidden) + (hidden * dim + dim) + dim
        assert rows[f"stages_{stage}_blocks_0"].params == params
    assert rows["stem_conv"].macs == 4 * 4 * 3 * 96 * 56 * 56


# Each of timm's top-level blocks and the last of our entries it corresponds to.
TIMM_BLOCKS = {"stem": "stem_norm"}
for _stage, _depth in enumerate(DEPTHS):
    if _stage:
        TIMM_BLOCKS[f"stages.{_stage}.downsample"] = f"stages_{_stage}_downsample_conv"
    for _block in range(_depth):
        TIMM_BLOCKS[f"stages.{_stage}.blocks.{_block}"] = f"stages_{_stage}_blocks_{_block}"


@pytest.mark.slow
def test_every_block_output_and_the_logits_equal_timms(pair):
    ours, reference = pair
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    theirs, their_logits = outputs_of(reference, list(TIMM_BLOCKS), x)
    mine, my_logits = outputs_of(ours, list(TIMM_BLOCKS.values()), x)
    for timm_name, name in TIMM_BLOCKS.items():
        assert mine[name].shape == theirs[timm_name].shape, name
        error = (mine[name] - theirs[timm_name]).abs().max() / theirs[timm_name].abs().max()
        assert error < 1e-5, (name, error.item())
    assert my_logits.shape == (2, 1000)
    assert ((my_logits - their_logits).abs().max() / their_logits.abs().max()).item() < 1e-5


def test_drop_path_rate_gives_each_block_timms_rate():
    spec = archbuilder.load_spec(SPEC, overrides=["drop_path_rate=0.1"])
    ours = build_from_ir(archbuilder.lower(spec))  # made on the meta device, cheap
    with torch.device("meta"):
        reference = timm.create_model("inception_next_tiny", pretrained=False, drop_path_rate=0.1)
    for timm_name, name in TIMM_BLOCKS.items():
        if ".blocks." in timm_name:
            expected = reference.get_submodule(timm_name).drop_path
            rate = ours.get_submodule(name).main.drop_path.rate
            assert rate == pytest.approx(getattr(expected, "drop_prob", 0.0), abs=1e-7), name


def test_features_only_maps_match_timms_feature_info():
    info = archbuilder.feature_info(SPEC)
    with torch.device("meta"):
        reference = timm.create_model("inception_next_tiny", pretrained=False, features_only=True)
    assert info.channels() == reference.feature_info.channels() == [96, 192, 384, 768]
    assert info.reductions() == reference.feature_info.reduction() == [4, 8, 16, 32]
    assert info.names() == [f"stages_{stage}_blocks_{depth - 1}" for stage, depth in enumerate(DEPTHS)]


def test_the_family_page_quotes_the_specs_sizes():
    page = (ROOT / "docs" / "inception-family.md").read_text(encoding="utf-8")
    summary = archbuilder.summarize(archbuilder.load_spec(SPEC))
    assert f"{summary.params:,} parameters and {summary.macs / 1e9:.2f} G MACs at 224×224" in page
