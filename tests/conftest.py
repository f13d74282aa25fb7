from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOOGLENET = SPECS / "googlenet.yaml"


@pytest.fixture(scope="session")
def googlenet_path() -> Path:
    return GOOGLENET
