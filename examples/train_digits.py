"""Train a small Inception on scikit-learn's handwritten digits, on one process or many.

    python examples/train_digits.py                                  # one process
    torchrun --standalone --nproc_per_node 2 examples/train_digits.py  # DistributedDataParallel
    torchrun --nnodes 2 --nproc_per_node 1 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \
        --max-restarts 1 examples/train_digits.py --auto-resume      # on each of two machines
    python examples/train_digits.py --set scale.width=0.5 --epochs 10
    python examples/train_digits.py --resume digits.pt --epochs 20   # continue a run

The model is built from specs/inception-digits.yaml (``--spec``, ``--set``); its aux losses
are weighted as the spec says (``model.compute_loss``). The 1,797 8×8 digits ship with
scikit-learn (no download); 20% are held out for the test accuracy. Under torchrun every
process trains on its share of each batch (DistributedSampler), gradients are averaged by
DistributedDataParallel (gloo on CPU, nccl on GPU), and rank 0 alone logs and writes the
checkpoint. With ``--auto-resume`` a job that torchrun restarts (``--max-restarts``) after a
process or node died continues from the last checkpoint: rank 0 reads it and sends it to
every rank, so the other nodes need no shared file system. Needs the ``examples`` extra:
``pip install "archbuilder[examples]"``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import archbuilder
from archbuilder.core.extras import check, exit_if_missing, require
from archbuilder.core.files import write_atomic

NEEDED_FOR = "training on the digits"  # what a missing optional package's message says needs it
with exit_if_missing("train_digits.py", needed_for=NEEDED_FOR):  # without torch: one line, exit 2
    import torch
    import torch.distributed as dist
    from torch import Tensor, nn
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "specs" / "inception-digits.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, help=f"the model's spec (default {DEFAULT_SPEC.name})")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value"
    )
    parser.add_argument("--epochs", type=int, default=10, help="total epochs, resumed ones included (10)")
    parser.add_argument(
        "--stop-after", type=int, metavar="N", help="stop after epoch N (the schedule still spans --epochs)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="global batch, split across processes (64)"
    )
    parser.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (3e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=Path("digits.pt"), help="written after each epoch")
    parser.add_argument("--no-checkpoint", action="store_true", help="write no checkpoint")
    parser.add_argument(
        "--resume", type=Path, help="continue from this checkpoint (its spec, weights, optimizer)"
    )
    parser.add_argument(
        "--auto-resume",
        action="store_true",
        help="continue from --checkpoint when it exists (a job torchrun restarted, or run again)",
    )
    parser.add_argument("--metrics", type=Path, help="write losses, accuracies and weight digests as JSON")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="train through archbuilder.optimize_for_training (the same parameters and checkpoints)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads per process (1: a model this small gains little "
        "from more and collapses when another program holds a core; 0: cores / processes)"
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.resume and (args.spec or args.set):
        parser.error("--resume rebuilds the model from the checkpoint; leave out --spec and --set")
    if args.auto_resume and (args.resume or args.no_checkpoint):
        parser.error("--auto-resume continues from --checkpoint; leave out --resume and --no-checkpoint")
    return args


class Run:
    """Where this process stands: rank, world size, device, and the process group if any."""

    def __init__(self, device: str, threads: int | None, *, quiet: bool = False):
        self.quiet = quiet  # no log lines (a search's trials)
        self.distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # set by torchrun
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        local_rank, local_world = (
            int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
        )
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        self.device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        else:
            torch.set_num_threads(threads or max(1, len(os.sched_getaffinity(0)) // local_world))
        if self.distributed:
            dist.init_process_group("nccl" if use_cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, message: str) -> None:
        if self.main and not self.quiet:
            print(message, flush=True)

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums of ``values`` over all processes."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's batch-norm statistics everywhere. DDP broadcasts them before each forward,
        so after the last step of an epoch each rank still holds its own update."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def close(self) -> None:
        if self.distributed:
            # Every rank done (rank 0 writes its files last) before any tears gloo down, and
            # no DDP reducer left holding the group (reducers sit in reference cycles until a
            # collection): otherwise gloo's threads outlive destroy_process_group and abort a
            # rank at exit ("terminate called without an active exception") now and then.
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()


def digits() -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 8×8 digits scaled to [0, 1], split 80/20 with the classes balanced."""
    datasets = require("sklearn.datasets", needed_for=NEEDED_FOR)
    model_selection = require("sklearn.model_selection", needed_for=NEEDED_FOR)

    images, labels = datasets.load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )

    def dataset(x, y) -> TensorDataset:
        return TensorDataset(
            torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0,
            torch.tensor(y, dtype=torch.long),
        )

    return dataset(x_train, y_train), dataset(x_test, y_test)


def shift(images: Tensor) -> Tensor:
    """Move each image by up to one pixel in each direction (the only augmentation)."""
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2,)).tolist()
    return padded[:, :, dy : dy + 8, dx : dx + 8]


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warmup = max(1, total // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def accuracy(model: nn.Module, data: TensorDataset, run: Run) -> float:
    """Test accuracy, each process scoring every ``world``-th sample."""
    model.eval()
    images, labels = data.tensors
    images, labels = (
        images[run.rank :: run.world].to(run.device),
        labels[run.rank :: run.world].to(run.device),
    )
    correct = (model(images).argmax(1) == labels).sum().item() if len(labels) else 0
    correct, total = run.sum(correct, len(labels))
    return correct / total


def state_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, by name: equal digests mean equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def progress(batches: DataLoader, run: Run, args: argparse.Namespace, epoch: int):
    if args.no_progress or not run.main:
        return batches
    tqdm = require("tqdm", needed_for=NEEDED_FOR)
    return tqdm.tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, unit="batch")


def train_epoch(
    trainer: nn.Module,
    model: archbuilder.ArchModel,
    batches,
    optimizer: torch.optim.Optimizer,
    run: Run,
    args: argparse.Namespace,
    epoch: int,
) -> float:
    """One pass over this process's share of the data; the mean loss over all processes."""
    trainer.train()
    steps = len(batches)
    loss_sum, samples = 0.0, 0
    for step, (images, labels) in enumerate(batches, start=epoch * steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.epochs * steps, args.lr)
        images, labels = shift(images).to(run.device), labels.to(run.device)
        loss = model.compute_loss(trainer(images), labels)  # main loss + aux losses times their weights
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP, gradients are averaged over the processes here
        optimizer.step()
        loss_sum += loss.item() * len(labels)
        samples += len(labels)
    loss_sum, samples = run.sum(loss_sum, samples)
    return loss_sum / samples


def train(
    model: archbuilder.ArchModel,
    optimizer: torch.optim.Optimizer,
    args: argparse.Namespace,
    run: Run,
    *,
    first_epoch: int = 0,
    history: list[dict] | None = None,
    on_epoch: Callable[[int, list[dict]], None] | None = None,
) -> float:
    """Train ``model`` on the digits for epochs ``first_epoch + 1`` to ``--epochs`` (or
    ``--stop-after``), as ``args`` (from :func:`parse_args`) say; the last test accuracy.

    ``history`` gets one entry per epoch; ``on_epoch(epoch, history)`` runs after each
    (main writes its checkpoint there). examples/search_digits.py trains each trial with this.
    """
    history = [] if history is None else history
    trainer: nn.Module = DistributedDataParallel(model) if run.distributed else model
    train_set, test = digits()
    if args.batch_size % run.world:
        raise SystemExit(f"--batch-size {args.batch_size} does not split into {run.world} processes")
    sampler = DistributedSampler(
        train_set, num_replicas=run.world, rank=run.rank, shuffle=True, seed=args.seed
    )
    batches = DataLoader(train_set, batch_size=args.batch_size // run.world, sampler=sampler, drop_last=True)
    run.log(
        f"{len(train_set)} training and {len(test)} test images; {run.world} process(es) on {run.device}, "
        f"global batch {args.batch_size}, epochs {first_epoch + 1}-{args.epochs}"
    )

    last_epoch = min(args.epochs, args.stop_after or args.epochs)
    test_accuracy = accuracy(model, test, run) if first_epoch >= last_epoch else float("nan")
    for epoch in range(first_epoch, last_epoch):
        sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
        # Dropout and shifts from a per-epoch seed, so a resumed run repeats them exactly.
        torch.manual_seed(args.seed + 1000 * epoch + run.rank)
        epoch_start = time.perf_counter()
        loss = train_epoch(trainer, model, progress(batches, run, args, epoch), optimizer, run, args, epoch)
        run.sync_buffers(model)
        test_accuracy = accuracy(model, test, run)
        history.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": test_accuracy})
        run.log(
            f"epoch {epoch + 1:3d}/{args.epochs}  loss {loss:.4f}  "
            f"test accuracy {test_accuracy:.2%}  ({time.perf_counter() - epoch_start:.1f} s)"
        )
        if on_epoch is not None:
            on_epoch(epoch, history)
    return test_accuracy


def read_checkpoint(args: argparse.Namespace, run: Run) -> archbuilder.Checkpoint | None:
    """The checkpoint to continue from: ``--resume``, or with ``--auto-resume`` ``--checkpoint``
    if it exists; None to start afresh. Rank 0 reads the file and broadcasts its bytes, so
    every rank resumes from the same one. With ``--auto-resume`` the checkpoint must hold
    the model ``--spec`` and ``--set`` describe."""
    path = args.resume or (args.checkpoint if args.auto_resume else None)
    if path is None:
        return None
    data = None
    if run.main and (args.resume or path.exists()):
        data = path.read_bytes()  # a missing --resume file: OSError, shown as one line by exit_if_missing
    if run.distributed:
        box = [data]
        dist.broadcast_object_list(box, src=0)
        data = box[0]
    if data is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(data)
        try:
            checkpoint = archbuilder.load_checkpoint(copy)
        except archbuilder.CheckpointError as error:  # named by the file given, not the copy
            raise SystemExit(f"train_digits.py: error: {str(error).replace(str(copy), str(path))}") from None
    if args.auto_resume:
        wanted = archbuilder.load_spec(args.spec or DEFAULT_SPEC, overrides=args.set)
        if checkpoint.spec != wanted:
            raise SystemExit(
                f"train_digits.py: error: {path} holds another model than --spec/--set describe; "
                "remove it to start afresh, or give another --checkpoint"
            )
    return checkpoint


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The examples extra's packages, checked before anything is built or trained.
    check("sklearn", *([] if args.no_progress else ["tqdm"]), needed_for=NEEDED_FOR)
    run = Run(args.device, args.threads)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    start = time.perf_counter()

    checkpoint = read_checkpoint(args, run)
    if checkpoint is not None:
        model, overrides, history = (
            checkpoint.model,
            checkpoint.overrides,
            checkpoint.extra.get("history", []),
        )
        first_epoch = 0 if checkpoint.epoch is None else checkpoint.epoch + 1
        run.log(f"resumed {args.resume or args.checkpoint} after epoch {first_epoch}")
    else:
        spec = archbuilder.load_spec(args.spec or DEFAULT_SPEC, overrides=args.set)
        model, overrides, first_epoch, history = archbuilder.build(spec), args.set, 0, []
    model.to(run.device)
    params = sum(p.numel() for p in model.parameters())
    run.log(f"{model.spec.name}: {params:,} parameters, aux loss weights {list(model.aux_weights)}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    if checkpoint is not None and checkpoint.optimizer_state is not None:
        optimizer.load_state_dict(checkpoint.optimizer_state)

    def save(epoch: int, history: list[dict]) -> None:
        if run.main and not args.no_checkpoint:
            archbuilder.save_checkpoint(
                args.checkpoint,
                model,
                optimizer=optimizer,
                epoch=epoch,
                overrides=overrides,
                extra={"history": history},
            )

    trained = archbuilder.optimize_for_training(model) if args.optimize else model  # shares its parameters
    test_accuracy = train(
        trained, optimizer, args, run, first_epoch=first_epoch, history=history, on_epoch=save
    )

    digests = [state_digest(model)]
    if run.distributed:
        digests = [None] * run.world
        dist.all_gather_object(digests, state_digest(model))
    elapsed = time.perf_counter() - start
    run.log(f"final test accuracy {test_accuracy:.2%} after {elapsed:.1f} s")
    if run.distributed:
        same = len(set(digests)) == 1
        run.log(
            f"weights {'identical' if same else 'DIFFER'} on all {run.world} ranks (sha256 {digests[0][:16]}...)"
        )
    if run.main and args.metrics:
        metrics = {
            "spec": model.spec.name,
            "world_size": run.world,
            "device": str(run.device),
            "history": history,
            "test_accuracy": test_accuracy,
            "seconds": elapsed,
            "rank_digests": digests,
        }
        write_atomic(args.metrics, (json.dumps(metrics, indent=2) + "\n").encode())
    run.close()
    return 0


if __name__ == "__main__":
    with exit_if_missing("train_digits.py", needed_for=NEEDED_FOR):  # a missing package: one line, exit 2
        sys.exit(main())
