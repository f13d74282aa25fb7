"""The built wheel, installed in a fresh venv outside the checkout, with no system Graphviz,
runs the README's quick start and Python example: what a user of ``pip install`` gets."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, SPECS
from .readme_blocks import python_example, quick_start_commands

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (found,) = folder.glob("archbuilder-*.whl")
    return found


def test_the_wheel_ships_every_spec_and_the_schema_unchanged(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for spec in SPECS.glob("*.yaml"):
            assert archive.read(f"archbuilder/specs/{spec.name}") == spec.read_bytes(), spec.name
        assert (
            archive.read("archbuilder/schema/archbuilder.schema.json")
            == (ROOT / "schema" / "archbuilder.schema.json").read_bytes()
        )
        assert {name for name in names if name.startswith("archbuilder/specs/")} == {
            f"archbuilder/specs/{spec.name}" for spec in SPECS.glob("*.yaml")
        }
        assert any(name.endswith("licenses/LICENSE") for name in names)


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> dict[str, str]:
    """A new venv with only the wheel installed; its dependencies are seen through a path file
    pointing at this interpreter's site-packages (so nothing is downloaded)."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=env)  # nothing else on its path
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Written after the install, which would otherwise find this checkout's editable install there.
    # The path comes after the venv's own site-packages, so the wheel's archbuilder is the one imported.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env["PATH"] = str(venv / "bin")  # no `dot`: system Graphviz is not installed for this user
    return env


def test_readme_from_the_installed_wheel(fresh_venv, tmp_path):
    run = lambda command, **kw: subprocess.run(  # noqa: E731
        command, cwd=tmp_path, env=fresh_venv, capture_output=True, text=True, **kw
    )
    where = run(["python", "-c", "import archbuilder; print(archbuilder.__file__)"])
    assert where.returncode == 0, where.stderr
    assert ROOT not in Path(where.stdout.strip()).parents  # the installed copy, not the checkout
    for command in quick_start_commands():
        result = run(command)
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "googlenet.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for extra in (["archbuild", "render", "googlenet", "-o", "g.pdf"], ["archbuild", "validate", "xception"]):
        result = run(extra)
        assert result.returncode == 0, (extra, result.stderr)
    assert (tmp_path / "g.pdf").read_bytes().startswith(b"%PDF-")
    shown = run(["archbuild", "show", "googlenet"])
    (tmp_path / "mine.yaml").write_text(shown.stdout)
    summary = run(["archbuild", "summary", "mine.yaml"])
    assert summary.returncode == 0 and "13,393,352" in summary.stdout, summary.stderr
    schema = shown.stdout.split("\n", 1)[0].split("$schema=", 1)[1]
    assert Path(schema).is_file() and ROOT not in Path(schema).parents
    example = run(["python", "-c", python_example()])
    assert example.returncode == 0, example.stderr
