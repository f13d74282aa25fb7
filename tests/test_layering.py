"""Spec, IR and summary work without importing torch; only the builder imports it."""

from __future__ import annotations

import ast
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
        # cli: inside the torch commands only; export: inside the exporters only
        allowed = path.parent.name in ("cli", "interop", "export", "benchmarks")
        # importers: the torch-module tracer, and weights turned into a state_dict on request
        allowed = allowed or (
            path.parent.name == "importers"
            and path.name in ("torch_module.py", "weights.py", "result.py", "__init__.py")
        )
        if imports_torch and not allowed:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _imports(path) -> set[str]:
    """Every archbuilder module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archbuilder"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("archbuilder"))
    return found


# The order packages import in, lowest first: a module imports its own level or below only.
LAYERS = (
    ("core",),
    ("spec",),
    ("ir",),
    ("render", "space", "analysis", "diff", "catalog", "schema"),
    ("serve",),  # archbuild serve: the page of render, served
    ("builder",),
    ("importers", "interop", "export", "benchmarks"),
    ("cli",),
    ("__init__", "__main__"),  # the package's facade and `python -m archbuilder`
)


def _layer_of(unit: str) -> int:
    return next(level for level, units in enumerate(LAYERS) if unit in units)


def back_edges(imports: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The (importer, imported) pairs of top-level units where the imported one sits higher."""
    return {
        (unit, target)
        for unit, targets in imports.items()
        for target in targets
        if target != unit and _layer_of(target) > _layer_of(unit)
    }


def _unit_imports() -> dict[str, set[str]]:
    """Top-level unit (``spec``, ``render``, ``export``…) -> the units its files import."""
    package = ROOT / "archbuilder"
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).parts
        unit = parts[0].removesuffix(".py") if len(parts) > 1 or parts[0] != "__init__.py" else "__init__"
        for module in _imports(path):
            names = module.split(".")
            target = names[1] if len(names) > 1 else "__init__"
            if (package / target).is_dir() or (package / f"{target}.py").is_file() or target == "__init__":
                found.setdefault(unit, set()).add(target)
    return found


def test_every_top_level_module_has_a_layer():
    package = ROOT / "archbuilder"
    units = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").is_file()
    }
    assert units <= {unit for layer in LAYERS for unit in layer}, units - {
        u for layer in LAYERS for u in layer
    }


def test_packages_import_only_downward():
    """cli > importers / interop / export / benchmarks > builder > render / space / analysis / diff /
    catalog / schema > ir > spec > core: any import upward is reported."""
    assert back_edges(_unit_imports()) == set(), "imports upward"


def test_a_planted_back_edge_is_caught():
    """The check itself: spec importing the builder, or the IR importing render, is upward."""
    imports = {unit: set(targets) for unit, targets in _unit_imports().items()}
    imports["spec"].add("builder")
    imports["ir"].add("render")
    assert {("spec", "builder"), ("ir", "render")} <= back_edges(imports)


def test_no_import_cycles_between_modules():
    package = ROOT / "archbuilder"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    # A package's __init__ re-exports its modules; the edges that matter are module to module.
    graph = {
        name: {
            target for target in _imports(path) if target in modules and modules[target].name != "__init__.py"
        }
        for name, path in modules.items()
        if path.name != "__init__.py"
    }
    cycles = []

    def visit(node, stack, on_stack, done):
        on_stack.add(node)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target in on_stack:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in done:
                visit(target, stack, on_stack, done)
        stack.pop()
        on_stack.discard(node)
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [], set(), done)
    assert cycles == []


TORCH_FREE_COMMANDS = (
    ["validate", "googlenet"],
    ["summary", "googlenet", "--json"],
    ["list"],
    ["show", "googlenet"],
    ["render", "googlenet", "-o", "g.svg", "--engine", "embedded"],
    ["render", "googlenet", "-o", "g.png", "--engine", "embedded"],
    ["emit", "googlenet", "--variant", "v1"],
    ["schema"],
)


def test_torch_free_commands_do_not_import_torch(tmp_path):
    code = f"""
import contextlib, io, sys
from archbuilder.cli import main
for args in {[list(command) for command in TORCH_FREE_COMMANDS]!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0, args
    assert "torch" not in sys.modules, f"archbuild {{' '.join(args)}} imported torch"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
