"""docs/import.md shows what the importer really writes and says."""

from __future__ import annotations

import pytest

from archbuilder.importers import import_model

from .conftest import ROOT
from .test_import_caffe import DEPLOY

PAGE = (ROOT / "docs" / "import.md").read_text()


def _blocks(lang: str) -> list[str]:
    parts = PAGE.split("```")
    return [part[len(lang) + 1 :] for part in parts[1::2] if part.startswith(f"{lang}\n")]


def test_the_worked_example_is_the_real_import(monkeypatch):
    monkeypatch.chdir(DEPLOY.parent)  # the header names the file as the user would: from its folder
    text = import_model(DEPLOY).to_yaml()
    [excerpt] = [block for block in _blocks("yaml") if "3a" in block]
    for line in excerpt.splitlines():
        if line != "...":
            assert line in text.splitlines(), line
    header = next(block for block in _blocks("text") if block.startswith("# imported by"))
    assert header.splitlines() == text.splitlines()[:4]


def test_the_error_listing_is_the_real_one(tmp_path):
    from .test_import_caffe import INPUT, _conv, _layer

    text = INPUT + _conv("conv1", "data", 8) + _layer("up", "Deconvolution", "conv1")
    text += _layer("pow", "Power", "up") + _layer(
        "pool", "Pooling", "pow", extra="pooling_param { pool: STOCHASTIC }"
    )
    (tmp_path / "net.prototxt").write_text(text)
    with pytest.raises(Exception) as failure:
        import_model(tmp_path / "net.prototxt")
    shown = next(block for block in _blocks("text") if "unsupported ops" in block)
    assert str(failure.value).replace(str(tmp_path / "net.prototxt"), "net.prototxt") == shown.rstrip("\n")


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_compile(index):
    compile(_blocks("python")[index], f"import.md python block {index}", "exec")
