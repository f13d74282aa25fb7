"""Spec, IR and summary work without importing torch; only the builder imports it."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import GOOGLENET, ROOT


def test_spec_ir_and_summary_do_not_import_torch():
    code = f"""
import sys
import archbuilder
spec = archbuilder.load_spec({str(GOOGLENET)!r})
archbuilder.summarize(archbuilder.lower(spec))
spec.to_yaml()
import archbuilder.cli
assert "torch" not in sys.modules, "torch was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_only_builder_modules_import_torch():
    offenders = []
    for path in (ROOT / "archbuilder").rglob("*.py"):
        if "builder" in path.relative_to(ROOT / "archbuilder").parts[:1]:
            continue
        text = path.read_text()
        imports_torch = re.search(r"^\s*(import torch|from torch)", text, re.MULTILINE)
        # cli: inside `build` only; export: inside the exporters only
        if imports_torch and path.name not in ("cli.py", "interop.py", "export.py"):
            offenders.append(path.name)
    assert offenders == []
