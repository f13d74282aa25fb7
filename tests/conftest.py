import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOOGLENET = SPECS / "googlenet.yaml"


@pytest.fixture(scope="session")
def googlenet_path() -> Path:
    return GOOGLENET


def load_tool(name: str) -> ModuleType:
    """A script from tools/ (not a package) imported as a module."""
    if str(ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(ROOT / "tools"))  # where the scripts find their shared docgen
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
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
