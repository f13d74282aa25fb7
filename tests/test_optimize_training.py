"""optimize_for_training: the same parameters, the same function, the same training.

The truth each test compares with is the plain build of the same spec with the same weights,
trained by the same steps from the same random state. Exactness is checked in float64, where
the rewritten arithmetic (concatenated sibling convs, channels-last, recomputed blocks) agrees
with the plain model to rounding; in float32 the same rewrite moves gradients by rounding,
which ReLU gates and max-pool ties can amplify, so those checks are looser.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import Tensor, nn

import archbuilder
from archbuilder.builder.training_siblings import SiblingParallelBlock

from .conftest import ROOT, SPECS

# spec -> (a small input side it builds and runs at, with aux heads): the aux heads' fixed
# pools need a larger input than the rest (inception-v3's about 299², so it runs without here)
FAMILY = {
    "googlenet-torchvision": (64, True),
    "googlenet": (64, True),
    "googlenet-factorized": (64, True),
    "inception-digits": (8, True),
    "inception-v3": (96, False),
    "resnet50": (64, True),  # at 32², layer4 normalizes over 2 values and amplifies any rounding
}
FAMILY_SLOW = {
    "bn-inception": (224, True),
    "googlenet-naive": (64, True),
    "googlenet-v1-original": (224, True),
    "inception-v3": (299, True),
    "inception-v4": (160, True),  # at 96², the last blocks normalize 1×1 maps over a batch of 2
    "inception-resnet-v2": (160, True),
    "xception": (96, True),
    "inception-next-tiny": (64, True),
}


def twins(
    spec: str, dtype: torch.dtype = torch.float64, aux: bool = True, **options
) -> tuple[nn.Module, nn.Module]:
    """The plain build and an optimized build of ``spec`` with the same weights."""
    torch.manual_seed(0)
    plain = archbuilder.build(SPECS / f"{spec}.yaml", aux=aux, max_param_bytes=1 << 40).to(dtype)
    other = archbuilder.build(SPECS / f"{spec}.yaml", aux=aux, max_param_bytes=1 << 40).to(dtype)
    other.load_state_dict(plain.state_dict())
    return plain, archbuilder.optimize_for_training(other, **options)


def batch(
    model: nn.Module, side: int, size: int = 2, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    torch.manual_seed(1)
    channels = model.spec.input.channels
    return torch.randn(size, channels, side, side, dtype=dtype), torch.randint(
        0, model.spec.num_classes, (size,)
    )


def one_step(model: nn.Module, x: Tensor, target: Tensor) -> tuple[float, dict[str, Tensor]]:
    """The loss of one forward/backward in training mode (dropout masks from seed 5) and the grads."""
    torch.manual_seed(5)
    model.train()
    model.zero_grad(set_to_none=True)
    loss = model.compute_loss(model(x), target)
    loss.backward()
    return loss.item(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def assert_close_tensors(expected: dict[str, Tensor], actual: dict[str, Tensor], rtol: float) -> None:
    """Every tensor within ``rtol`` of the largest value among them all (a bias before a batch
    norm has a gradient that is zero but for rounding, so a per-tensor ratio means nothing)."""
    assert expected.keys() == actual.keys()
    scale = max(t.detach().double().abs().max().item() for t in expected.values() if t.is_floating_point())
    for name, tensor in expected.items():
        error = (actual[name].double() - tensor.double()).abs().max().item()
        assert error <= rtol * scale, f"{name}: off by {error:.3g} (scale {scale:.3g})"


def global_error(expected: dict[str, Tensor], actual: dict[str, Tensor]) -> float:
    """‖actual − expected‖ / ‖expected‖ over all the tensors as one vector."""
    difference = sum(((actual[k].double() - v.double()) ** 2).sum() for k, v in expected.items())
    return (difference / sum((v.double() ** 2).sum() for v in expected.values())).sqrt().item()


def check_one_step(spec: str, side: int, aux: bool = True, **options) -> None:
    plain, optimized = twins(spec, aux=aux, **options)
    x, target = batch(plain, side)
    loss, grads = one_step(plain, x, target)
    optimized_loss, optimized_grads = one_step(optimized, x, target)
    assert optimized_loss == pytest.approx(loss, rel=1e-9)
    assert_close_tensors(grads, optimized_grads, rtol=1e-8)
    assert_close_tensors(plain.state_dict(), optimized.state_dict(), rtol=1e-9)  # running statistics


@pytest.mark.parametrize("spec", FAMILY)
def test_one_step_gives_the_plain_models_loss_gradients_and_statistics(spec):
    check_one_step(spec, *FAMILY[spec])


@pytest.mark.slow
@pytest.mark.parametrize("spec", FAMILY_SLOW)
def test_one_step_on_the_larger_family_specs(spec):
    check_one_step(spec, *FAMILY_SLOW[spec])


def test_inception_blocks_run_their_sibling_convs_as_one():
    _, optimized = twins("googlenet-torchvision")
    blocks = {name: m for name, m in optimized.named_modules() if isinstance(m, SiblingParallelBlock)}
    assert sorted(blocks) == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    # the 1×1 branch and the 3×3 and 5×5 branches' 1×1 reductions; the pool branch opens with a pool
    assert all(block.groups == ((0, 1, 2),) for block in blocks.values())
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append(module) if isinstance(module, nn.Conv2d) else None
    )
    try:
        x, target = batch(optimized, 64)
        one_step(optimized, x, target)
    finally:
        handle.remove()
    convs = sum(isinstance(m, nn.Conv2d) for m in optimized.modules())
    assert len(calls) == convs - 3 * len(blocks)  # three convs of each block run as one, by no module


def test_the_same_parameters_under_the_same_keys():
    torch.manual_seed(0)
    model = archbuilder.build(SPECS / "googlenet-torchvision.yaml")
    keys = list(model.state_dict())
    parameters = dict(model.named_parameters())
    optimized = archbuilder.optimize_for_training(model, dtype="bf16")
    assert list(optimized.state_dict()) == keys
    assert all(p is parameters[name] for name, p in optimized.named_parameters())  # shared, not copied
    assert isinstance(optimized, archbuilder.ArchModel) and optimized.spec is model.spec
    assert optimized.aux_names == model.aux_names and optimized.aux_weights == model.aux_weights
    fresh = archbuilder.build(SPECS / "googlenet-torchvision.yaml")
    fresh.load_state_dict(optimized.state_dict())  # a checkpoint of one loads into the other
    archbuilder.optimize_for_training(fresh).load_state_dict(model.state_dict())


def test_checkpoints_and_a_new_classifier_work_on_the_optimized_model(tmp_path):
    plain, optimized = twins("inception-digits", dtype=torch.float32)
    archbuilder.save_checkpoint(tmp_path / "digits.pt", optimized)
    loaded = archbuilder.load_checkpoint(tmp_path / "digits.pt")
    for name, tensor in plain.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    archbuilder.reset_classifier(optimized, 3)
    x, _ = batch(optimized, 8, dtype=torch.float32)
    _, grads = one_step(optimized, x, torch.tensor([0, 2]))
    assert optimized.eval()(x).shape == (2, 3) and optimized.spec.num_classes == 3
    assert all(g.isfinite().all() for g in grads.values())


def test_eval_mode_gives_the_plain_models_logits():
    plain, optimized = twins("googlenet-torchvision")
    x, _ = batch(plain, 64)
    with torch.no_grad():
        torch.testing.assert_close(optimized.eval()(x), plain.eval()(x), rtol=1e-10, atol=1e-12)


def sgd_steps(model: nn.Module, x: Tensor, target: Tensor, steps: int) -> dict[str, Tensor]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for step in range(steps):
        torch.manual_seed(step)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        model.compute_loss(model(x), target).backward()
        optimizer.step()
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_ten_sgd_steps_reach_the_plain_models_weights():
    """On the digits model at batch 32 (GoogLeNet at 64² and batch 2-4 amplifies any rounding
    tenfold per step, its own layouts against each other included)."""
    plain, optimized = twins("inception-digits")
    x, target = batch(plain, 8, size=32)
    assert_close_tensors(sgd_steps(plain, x, target, 10), sgd_steps(optimized, x, target, 10), rtol=1e-9)


def test_in_float32_the_training_agrees_within_rounding():
    """The yardstick is float64: the optimized model's float32 gradients are as close to the
    float64 ones as the plain model's are when torch runs it channels-last, as the optimized
    one does. (torch's own float32 channels-last kernels round more with one thread than with
    two: 3.5e-3 of the gradients' norm against 3e-4 for googlenet-torchvision here.)"""
    plain, optimized = twins("googlenet-torchvision", dtype=torch.float32)
    x, target = batch(plain, 64, size=4, dtype=torch.float32)
    truth_model, _ = twins("googlenet-torchvision", dtype=torch.float64)
    _, truth = one_step(truth_model, x.double(), target)
    loss, grads = one_step(plain, x, target)
    optimized_loss, optimized_grads = one_step(optimized, x, target)
    assert optimized_loss == pytest.approx(loss, rel=1e-5)
    channels_last, _ = twins("googlenet-torchvision", dtype=torch.float32)
    channels_last = channels_last.to(memory_format=torch.channels_last)
    _, torch_grads = one_step(channels_last, x.contiguous(memory_format=torch.channels_last), target)
    assert global_error(truth, optimized_grads) <= 1.5 * global_error(truth, torch_grads) + 1e-4
    assert global_error(grads, optimized_grads) < 1e-2
    plain, optimized = twins("inception-digits", dtype=torch.float32)
    x, target = batch(plain, 8, size=32, dtype=torch.float32)
    assert global_error(sgd_steps(plain, x, target, 10), sgd_steps(optimized, x, target, 10)) < 1e-3


def test_bf16_is_as_close_to_float32_as_autocast_on_the_plain_model():
    """The yardstick is what torch.autocast gives the plain model, as it gives torchvision's."""
    plain, optimized = twins_bf16()
    x, target = batch(plain, 64, size=4, dtype=torch.float32)
    loss, grads = one_step(plain, x, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_loss, autocast_grads = one_step(plain, x, target)
    bf16_loss, bf16_grads = one_step(optimized, x, target)
    assert all(g.dtype == torch.float32 for g in bf16_grads.values())
    assert abs(bf16_loss - loss) <= 1.5 * abs(autocast_loss - loss) + 1e-3 * abs(loss)
    assert global_error(grads, bf16_grads) <= 1.5 * global_error(grads, autocast_grads)


def twins_bf16() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    plain = archbuilder.build(SPECS / "googlenet-torchvision.yaml")
    other = archbuilder.build(SPECS / "googlenet-torchvision.yaml")
    other.load_state_dict(plain.state_dict())
    return plain, archbuilder.optimize_for_training(other, dtype="bf16")


def saved_bytes(model: nn.Module, x: Tensor, target: Tensor) -> int:
    """Bytes of the activations autograd keeps for the backward pass of one training forward:
    each storage once, the parameters' left out."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    torch.manual_seed(5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.compute_loss(model.train()(x), target)
    return sum(saved.values())


def test_checkpointed_blocks_train_alike_and_keep_less_for_backward():
    check_one_step("googlenet-torchvision", 64, checkpoint_blocks="3a:5b")
    check_one_step("inception-v3", 96, aux=False, checkpoint_blocks=["Mixed_5b:Mixed_6e", "Mixed_7c"])
    plain, optimized = twins("googlenet-torchvision", checkpoint_blocks="3a:5b")
    x, target = batch(plain, 64)
    assert optimized.steps["checkpoint_blocks"] == [
        "3a",
        "3b",
        "pool3",
        "4a",
        "4b",
        "4c",
        "4d",
        "4e",
        "pool4",
        "5a",
        "5b",
    ]
    assert saved_bytes(optimized, x, target) < 0.6 * saved_bytes(plain, x, target)  # the stem keeps the rest


def test_checkpointed_blocks_update_running_statistics_once_per_step():
    plain, optimized = twins("inception-digits", checkpoint_blocks="3a:4c")
    x, target = batch(plain, 8, size=32)
    assert_close_tensors(sgd_steps(plain, x, target, 3), sgd_steps(optimized, x, target, 3), rtol=1e-9)
    assert optimized.get_submodule("4a.branch1x1.conv.bn").num_batches_tracked.item() == 3


def test_pools_without_stored_indices_train_alike_and_keep_less():
    check_one_step("googlenet-torchvision", 64, recompute_pools=True)
    check_one_step("inception-v3", 96, aux=False, recompute_pools=True)
    plain, lean = twins("googlenet-torchvision", dtype=torch.float32, recompute_pools=True)
    _, optimized = twins("googlenet-torchvision", dtype=torch.float32)
    x, target = batch(plain, 128, dtype=torch.float32)  # at 64², weights outweigh the maps
    assert saved_bytes(lean, x, target) < 0.85 * saved_bytes(optimized, x, target)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "int8"}, "dtype must be None, 'bf16' or 'fp16'"),
        ({"dtype": torch.float64}, "dtype must be None"),
        ({"checkpoint_blocks": "4z"}, "'4z' names no top-level layer"),
        ({"checkpoint_blocks": "4e:4a"}, "runs backwards"),
        ({"keep_fp32": ["nope"], "dtype": "bf16"}, "'nope' names no top-level layer"),
    ],
)
def test_bad_options_are_refused(options, message):
    model = archbuilder.build(SPECS / "googlenet-torchvision.yaml")
    with pytest.raises(ValueError, match=message):
        archbuilder.optimize_for_training(model, **options)


def test_only_a_built_model_is_taken():
    with pytest.raises(TypeError, match=r"made by archbuilder\.build"):
        archbuilder.optimize_for_training(nn.Conv2d(3, 3, 1))


def test_the_classifier_stays_float32_under_bf16():
    seen: dict[str, torch.dtype] = {}
    _, optimized = twins_bf16()
    optimized.fc.register_forward_hook(lambda m, args, out: seen.update(fc=out.dtype))
    optimized.get_submodule("conv1.conv").register_forward_hook(
        lambda m, args, out: seen.update(conv=out.dtype)
    )
    x, target = batch(optimized, 64, dtype=torch.float32)
    one_step(optimized, x, target)
    assert seen == {"fc": torch.float32, "conv": torch.bfloat16}


@pytest.mark.slow
def test_compiled_optimized_model_trains_like_the_plain_one():
    """Inductor draws dropout masks from torch's own generator here (``fallback_random``), so
    both draw the same ones."""
    plain, optimized = twins("inception-digits", dtype=torch.float32)
    compiled = torch.compile(optimized)
    x, target = batch(plain, 8, size=8, dtype=torch.float32)
    loss, grads = one_step(plain, x, target)
    torch.manual_seed(5)
    compiled.train()
    optimized.zero_grad(set_to_none=True)
    with torch._inductor.config.patch(fallback_random=True):
        compiled_loss = optimized.compute_loss(compiled(x), target)
    compiled_loss.backward()
    assert compiled_loss.item() == pytest.approx(loss, rel=1e-4)
    compiled_grads = {name: p.grad for name, p in optimized.named_parameters() if p.grad is not None}
    assert global_error(grads, compiled_grads) < 1e-3
    assert_close_tensors(plain.state_dict(), optimized.state_dict(), rtol=1e-5)


DDP_SCRIPT = """
import gc, sys, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
import archbuilder

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
plain = archbuilder.build(sys.argv[1])
other = archbuilder.build(sys.argv[1])
other.load_state_dict(plain.state_dict())
optimized = archbuilder.optimize_for_training(other)
torch.manual_seed(1)
x, target = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
x, target = x[rank * 4 : rank * 4 + 4], target[rank * 4 : rank * 4 + 4]
weights = []
for model in (plain, optimized):
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        torch.manual_seed(10 + step)
        optimizer.zero_grad()
        model.compute_loss(ddp(x), target).backward()
        optimizer.step()
    weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
error = ((weights[1] - weights[0]).norm() / weights[0].norm()).item()
others = [torch.zeros_like(weights[1]) for _ in range(2)]
dist.all_gather(others, weights[1])
print(f"rank {rank} error {error:.3g} ranks_equal {torch.equal(others[0], others[1])}", flush=True)
# No DDP reducer left holding the group (they sit in reference cycles until a collection),
# and both ranks done, before gloo is torn down, as examples/train_digits.py closes: else the
# group outlives destroy_process_group and a rank aborts at exit ("terminate called without
# an active exception") in about one run in ten.
del ddp
gc.collect()
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_ddp_with_two_processes_trains_the_optimized_model_as_the_plain_one(tmp_path):
    script = tmp_path / "ddp_step.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(SPECS / "inception-digits.yaml")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # the two ranks print at once, so their lines may run together
    reports = re.findall(r"rank (\d) error (\S+) ranks_equal (True|False)", result.stdout)
    assert sorted(rank for rank, _, _ in reports) == ["0", "1"], result.stdout
    for rank, error, equal in reports:
        assert float(error) < 1e-4 and equal == "True", (rank, error, equal)
