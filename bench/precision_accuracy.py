"""The accuracy cost of bf16 and int8, on trained models (``bench/precision.py --accuracy``).

- **digits:** the model examples/train_digits.py trains (or a checkpoint of it), on its 360
  test images.
- **GoogLeNet at 224²:** ``specs/googlenet-torchvision.yaml`` with 10 classes, trained here
  for a few epochs on the same digits scaled up to 224² (bf16 autocast, channels-last; about
  50 s an epoch on 2 cores), on the scaled-up test images.

An untrained GoogLeNet is no measure of precision: with batch-norm statistics from data, it
amplifies any perturbation block by block (0.4% noise on the input is ~20% at 5b in fp32),
so its top-1 flips under any rounding. Training removes that. The script prints both models'
sensitivity: the logit error of fp32 itself when only the input is rounded to bf16.

Each table gives top-1 agreement with the fp32 model, the accuracy change, and the max and
mean over images of max |Δlogit| / max |logit|.
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch
from benchlib import ROOT, table
from precision_specs import calibrate_batch_norm
from torch.nn import functional as F

import archbuilder
from archbuilder.builder.quantize import quantize

HEADERS = [
    "precision",
    "test accuracy %",
    "change (points)",
    "top-1 agreement",
    "max rel. err",
    "mean rel. err",
]


@functools.cache  # loaded once, for both models
def train_digits_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logit_errors(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, float, float]:
    """Top-1 agreement, and the max and mean over images of max |Δlogit| / max |logit|."""
    agreement = (actual.argmax(1) == expected.argmax(1)).float().mean().item()
    per_image = (actual - expected).abs().amax(1) / expected.abs().amax(1)
    return agreement, per_image.max().item(), per_image.mean().item()


def autocast_bf16(model: torch.nn.Module):
    """The fp32 model under torch.autocast's bf16: what any user gets, a yardstick for our error."""

    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x).float()

    return run


def inputs_in_bf16(model: torch.nn.Module):
    """The fp32 model on its input rounded to bf16: how much the model itself amplifies one rounding."""
    return lambda x: model(x.bfloat16().float())


def compare(candidates: dict, model: torch.nn.Module, batches: list[torch.Tensor], labels: torch.Tensor):
    """The table's rows: fp32's accuracy, then each candidate against it."""
    with torch.inference_mode():
        expected = torch.cat([model(x) for x in batches])
        base = (expected.argmax(1) == labels).float().mean().item()
        rows = [["fp32", f"{base * 100:.2f}", "", "", "", ""]]
        for name, candidate in candidates.items():
            logits = torch.cat([candidate(x).float() for x in batches])
            agreement, worst, mean = logit_errors(logits, expected)
            accuracy = (logits.argmax(1) == labels).float().mean().item()
            rows.append(
                [name, f"{accuracy * 100:.2f}", f"{(accuracy - base) * 100:+.2f}", f"{agreement * 100:.2f}%",
                 f"{worst:.1e}", f"{mean:.1e}"]
            )  # fmt: skip
    return rows


def digits(checkpoint: Path | None) -> None:
    script = train_digits_script()
    if checkpoint is None:
        checkpoint = Path(tempfile.mkdtemp()) / "digits.pt"
        threads = torch.get_num_threads()
        script.main(["--no-progress", "--threads", "1", "--checkpoint", str(checkpoint)])
        torch.set_num_threads(threads)
    model = archbuilder.load_checkpoint(checkpoint).model.eval()
    train, test = script.digits()
    images, labels = test.tensors
    candidates = {
        "bf16": archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=tuple(images.shape)),
        "int8": quantize(model, list(train.tensors[0].split(64))),  # calibrated on training images
    }
    print(f"digits ({len(labels)} test images, model trained by examples/train_digits.py):")
    print(table(HEADERS, compare(candidates, model, [images], labels)))
    print()


def scaled_up(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """8×8 digits as ``size``² three-channel images, standardized, channels-last."""
    x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return ((x - 0.5) / 0.25).expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


def train_googlenet(script: ModuleType, epochs: int, batch: int = 16, seed: int = 0) -> archbuilder.ArchModel:
    """GoogLeNet (no aux heads, 10 classes) trained on the scaled-up digits: SGD with Nesterov
    momentum, a one-cycle schedule, the digits script's one-pixel shifts, bf16 autocast."""
    torch.manual_seed(seed)
    model = archbuilder.build(ROOT / "specs" / "googlenet-torchvision.yaml", aux=False, num_classes=10)
    model = model.to(memory_format=torch.channels_last)
    images, labels = script.digits()[0].tensors
    steps = epochs * -(-len(images) // batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=steps)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(len(images)).split(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(scaled_up(script.shift(images[index])))
            loss = F.cross_entropy(logits.float(), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    print(
        f"GoogLeNet 224² trained on the scaled-up digits: {epochs} epochs, {time.perf_counter() - start:.0f} s"
    )
    return model.eval()


def googlenet(epochs: int) -> None:
    script = train_digits_script()
    train, test = script.digits()
    test_batches = [scaled_up(x) for x in test.tensors[0].split(24)]
    calibration = [scaled_up(x) for x in train.tensors[0][:64].split(16)]

    untrained = archbuilder.build(ROOT / "specs" / "googlenet-torchvision.yaml", aux=False, num_classes=10)
    calibrate_batch_norm(untrained, torch.cat(calibration))
    model = train_googlenet(script, epochs)
    for name, net in (("untrained (batch-norm statistics from data)", untrained.eval()), ("trained", model)):
        with torch.inference_mode():
            x = test_batches[0]
            _, worst, mean = logit_errors(inputs_in_bf16(net)(x), net(x))
        print(f"  {name}: fp32 on inputs rounded to bf16 errs by {mean:.1e} (mean), {worst:.1e} (max)")
    candidates = {
        "bf16": archbuilder.optimize_for_inference(model, dtype="bf16"),
        "bf16 autocast (yardstick)": autocast_bf16(model),
        "fp32, input rounded to bf16 (yardstick)": inputs_in_bf16(model),
        "int8": quantize(model, calibration),
    }
    print(
        f"GoogLeNet 224², trained ({len(test.tensors[1])} scaled-up test digits; int8 calibrated on 64 training images):"
    )
    print(table(HEADERS, compare(candidates, model, test_batches, test.tensors[1])))


def accuracy(checkpoint: Path | None, googlenet_epochs: int) -> None:
    digits(checkpoint)
    googlenet(googlenet_epochs)
