"""examples/train_digits.py on two nodes (two torchrun processes on this machine, a c10d
rendezvous on 127.0.0.1), and the elastic case: one node's worker SIGKILLed mid-epoch, the
job restarted by torchrun and resumed from the last checkpoint."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import archbuilder

from .conftest import ROOT
from .processes import Watched, free_port, one_thread_env
from .test_train_digits import digest

pytest.importorskip("sklearn")

SCRIPT = ROOT / "examples" / "train_digits.py"
EPOCHS = 4
TRAIN = ["--epochs", str(EPOCHS), "--no-progress", "--threads", "1"]
NODE_SECONDS = 300  # each torchrun process, at most
TEST_IMAGES = 360


def torchrun(port: int, restarts: int) -> list[str]:
    """One node of two: its own torchrun, meeting the other at 127.0.0.1:port."""
    return [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"),
        *("--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "digits"),
        *("--local-addr", "127.0.0.1", "--max-restarts", str(restarts)),
    ]


def start_two_nodes(cwd: Path, args: list[str], restarts: int = 0) -> list[Watched]:
    command = [*torchrun(free_port(), restarts), str(SCRIPT), *TRAIN, *args]
    # gloo's sockets on loopback too; each restart's workers meet in a store of their own
    env = one_thread_env(GLOO_SOCKET_IFNAME="lo", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    return [Watched(command, cwd, env) for _ in range(2)]


def finish(nodes: list[Watched]) -> str:
    try:
        deadline = time.monotonic() + NODE_SECONDS
        for node in nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):  # reported below, with the output
                node.finish(max(1.0, deadline - time.monotonic()))
        outputs = [node.text() for node in nodes]
        codes = [node.process.poll() for node in nodes]
        shown = "".join(
            f"--- node {n}, exit status {code}:\n{out}" for n, (code, out) in enumerate(zip(codes, outputs))
        )
        assert codes == [0, 0], shown
        return "".join(outputs)
    finally:
        for node in nodes:
            node.stop()


class CheckpointWatch:
    """Reads the checkpoint each time the file changes while a job runs: every version must
    load (a half-written file would not). ``versions`` counts those read."""

    def __init__(self, path: Path):
        self.path, self.versions, self.errors = path, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        seen = None
        while not self._stop.is_set():
            try:
                stamp = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = None
            if stamp is not None and stamp != seen:
                try:
                    archbuilder.load_checkpoint(self.path)
                    self.versions += 1
                except FileNotFoundError:
                    continue  # replaced between stat and open: read the new one
                except Exception as error:  # a half-written file
                    self.errors.append(repr(error))
                seen = stamp
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory) -> dict[int, dict]:
    """One process, seeds 0, 1 and 2: the reference and the spread seeds alone make."""
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    train_digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_digits)
    threads, folder, runs = torch.get_num_threads(), tmp_path_factory.mktemp("single"), {}
    try:
        for seed in (0, 1, 2):
            metrics = folder / f"seed{seed}.json"
            argv = [*TRAIN, "--seed", str(seed), "--metrics", str(metrics), "--no-checkpoint"]
            assert train_digits.main(argv) == 0
            runs[seed] = json.loads(metrics.read_text())
    finally:
        torch.set_num_threads(threads)
    return runs


def noise(single_runs: dict[int, dict]) -> float:
    """The accuracy spread over seeds, at least two test images."""
    accuracies = [run["test_accuracy"] for run in single_runs.values()]
    return max(max(accuracies) - min(accuracies), 2 / TEST_IMAGES)


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory) -> tuple[dict, str]:
    """Two nodes, uninterrupted: the metrics (rank 0's) and the checkpoint's digest."""
    folder = tmp_path_factory.mktemp("two-nodes")
    start = time.perf_counter()
    output = finish(start_two_nodes(folder, ["--metrics", "m.json", "--checkpoint", "c.pt"]))
    metrics = json.loads((folder / "m.json").read_text())
    metrics["wall_seconds"] = time.perf_counter() - start
    assert "weights identical on all 2 ranks" in output
    return metrics, digest(archbuilder.load_checkpoint(folder / "c.pt").model.state_dict())


@pytest.mark.slow
def test_two_nodes_end_with_identical_weights_and_one_process_accuracy(two_node_run, single_runs, capsys):
    metrics, checkpoint_digest = two_node_run
    assert metrics["world_size"] == 2
    first, second = metrics["rank_digests"]
    assert first == second == checkpoint_digest  # both ranks, and the file rank 0 wrote
    assert [e["epoch"] for e in metrics["history"]] == list(range(1, EPOCHS + 1))
    one = single_runs[0]
    spread = noise(single_runs)
    assert abs(metrics["test_accuracy"] - one["test_accuracy"]) <= spread
    with capsys.disabled():
        print(
            f"\none process: {one['test_accuracy']:.2%} in {one['seconds']:.1f} s of training; "
            f"two nodes: {metrics['test_accuracy']:.2%} in {metrics['seconds']:.1f} s of training "
            f"({metrics['wall_seconds']:.1f} s with start-up); seeds 0-2 spread {spread:.2%}"
        )


@pytest.mark.slow
def test_a_node_killed_mid_epoch_resumes_from_the_last_checkpoint(
    tmp_path, two_node_run, single_runs, capsys
):
    checkpoint = tmp_path / "c.pt"
    watch = CheckpointWatch(checkpoint)
    args = ["--auto-resume", "--metrics", "m.json", "--checkpoint", "c.pt"]
    nodes = start_two_nodes(tmp_path, args, restarts=1)
    try:
        # Rank 0 logs; once it has finished epoch 2, the other node's worker dies mid-epoch 3.
        epoch_line = rf"epoch\s+2/{EPOCHS} .*\((\d+\.\d+) s\)"
        found = None
        deadline = time.monotonic() + NODE_SECONDS
        while found is None and time.monotonic() < deadline:
            for node in nodes:
                if any(re.match(epoch_line, line) for line in node.output):
                    found = node
            time.sleep(0.05)
        assert found is not None, "rank 0 never finished epoch 2"
        seconds = float(re.search(epoch_line, found.text())[1])
        victim = nodes[1 - nodes.index(found)]
        time.sleep(seconds / 3)  # into the next epoch
        saved = archbuilder.load_checkpoint(checkpoint).epoch  # the last one written (0-based)
        (worker,) = victim.children()
        os.kill(worker, signal.SIGKILL)
        output = finish(nodes)
    finally:
        for node in nodes:
            node.stop()
        watch.stop()

    # torchrun restarted both nodes' workers; they resumed after the last saved epoch and ran
    # only the epochs left.
    resumed = re.findall(r"^resumed c\.pt after epoch (\d+)$", output, re.MULTILINE)
    assert resumed == [str(saved + 1)], output
    after = output[output.index("resumed c.pt") :]
    assert [int(n) for n in re.findall(rf"^epoch\s+(\d+)/{EPOCHS} ", after, re.MULTILINE)] == list(
        range(saved + 2, EPOCHS + 1)
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [e["epoch"] for e in metrics["history"]] == list(range(1, EPOCHS + 1))
    first, second = metrics["rank_digests"]
    assert first == second
    # Weights, optimizer state, epoch and the per-epoch randomness restored: the interrupted
    # job ends exactly where the uninterrupted one did.
    reference, reference_digest = two_node_run
    assert first == reference_digest
    assert abs(metrics["test_accuracy"] - reference["test_accuracy"]) <= noise(single_runs)

    # Never a half-written checkpoint: every version the watcher saw loaded, and no partial
    # file is left beside it.
    assert watch.errors == [] and watch.versions >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "m.json"]
    assert archbuilder.load_checkpoint(checkpoint).epoch == EPOCHS - 1
    with capsys.disabled():
        print(
            f"\nkilled after epoch {saved + 1} was saved; resumed, {metrics['test_accuracy']:.2%} "
            f"(uninterrupted {reference['test_accuracy']:.2%}), weights "
            f"{'identical' if first == reference_digest else 'different'}; {watch.versions} checkpoint versions read"
        )
