import getpass
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

# Where the environment asks Python not to cache bytecode (PYTHONDONTWRITEBYTECODE), every
# `python -m archbuilder` the tests start would compile the package again, and every worker
# would rewrite every test module's asserts again: cache it, for this run and its subprocesses
# (into __pycache__ folders, which git ignores).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on two cores: one thread per worker (and its subprocesses), not two each
    # contending; set before torch is imported, which reads it once.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def inductor_cache_for_this_cpu() -> str:
    """A compile cache for this CPU's flags and the ISA caps set. Inductor keys its caches
    without ATen's cap (torch 2.14.1): kernels compiled under ATEN_CPU_CAPABILITY=avx2 and loaded
    by a later native run corrupted the heap (CI). Torch's default folder, shared with every
    other run on the machine, is never read by the tests."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        flags = ""
    caps = [os.environ.get(name, "") for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")]
    key = hashlib.sha256("|".join([flags, *caps]).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"torchinductor-{getpass.getuser()}-tests-{key}")


os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", inductor_cache_for_this_cpu())

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOOGLENET = SPECS / "googlenet.yaml"


@pytest.fixture(autouse=True)
def inductor_passes_left_as_found():
    """A test that leaves an inductor graph pass installed fails. Importing torchao's x86
    quantizer installs one for the whole process; quantize puts it back, a test that imports
    the module itself must too: later compiles of float models in the worker ran it."""
    config = sys.modules.get("torch._inductor.config")
    before = config.pre_grad_custom_pass if config else None
    yield
    config = sys.modules.get("torch._inductor.config")
    if config is not None and config.pre_grad_custom_pass is not before:
        leaked, config.pre_grad_custom_pass = config.pre_grad_custom_pass, before
        pytest.fail(f"the test left inductor's pre_grad_custom_pass set to {leaked!r}")


@pytest.fixture(scope="session")
def googlenet_path() -> Path:
    return GOOGLENET


def load_module(path: Path) -> ModuleType:
    """A Python file (a script, not a package member) imported as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped_spec_params(fast_macs: float = 6e9) -> list:
    """Every shipped spec as a test parameter; those over ``fast_macs`` per image (a forward
    pass of seconds on 2 cores) are marked slow: CI runs them, the fast subset skips them."""
    import archbuilder

    params = []
    for path in sorted(SPECS.glob("*.yaml")):
        macs = archbuilder.summarize(archbuilder.load_spec(path)).inference_macs
        marks = [pytest.mark.slow] if macs > fast_macs else []
        params.append(pytest.param(path, marks=marks, id=path.name))
    return params


@pytest.fixture(scope="session")
def digits_default_run(tmp_path_factory) -> tuple[dict, Path]:
    """examples/train_digits.py with its default settings, run once for every test that needs
    a trained model: its metrics (as written by ``--metrics``) and its checkpoint. Under
    `pytest -n`, the first worker to ask trains and the others wait for its files (the
    session's temporary folder is shared by its workers, and a lock orders them)."""
    import json

    import torch
    from filelock import FileLock  # a dependency of torch's

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # pytest-N/, above each worker's popen-gwK/
    folder = shared / "digits-default-run"
    metrics, checkpoint = folder / "metrics.json", folder / "digits.pt"
    with FileLock(f"{folder}.lock"):
        if not metrics.exists():  # written last, after the final checkpoint
            folder.mkdir(exist_ok=True)
            train_digits = load_module(ROOT / "examples" / "train_digits.py")
            threads = torch.get_num_threads()
            # one thread: a busy machine slows it less; the count changes only float rounding
            argv = [
                "--no-progress",
                "--threads",
                "1",
                "--metrics",
                str(metrics),
                "--checkpoint",
                str(checkpoint),
            ]
            try:
                assert train_digits.main(argv) == 0
            finally:
                torch.set_num_threads(threads)  # main() sets its own
    return json.loads(metrics.read_text()), checkpoint
