""".pre-commit-hooks.yaml, run by the real pre-commit in a new git repository of specs.

The hook's repository is a copy of the files the package is built from (pyproject.toml, the
README and licence, archbuilder/ with the specs and schema it links to, the hooks file), taken
from this working tree and committed in a temporary repository: nothing of the checkout's own
git state (its index, its other uncommitted files) is used or changed. pre-commit pip-installs
it into a venv of its own, as for any user: the spec-only install, which must hold no torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = [
    pytest.mark.slow,  # pre-commit pip-installs the hook's package: 10 to 60 s
    pytest.mark.skipif(shutil.which("git") is None, reason="the pre-commit hook test needs git"),
    pytest.mark.skipif(
        subprocess.run([sys.executable, "-m", "pre_commit", "--version"], capture_output=True).returncode,
        reason="the pre-commit hook test needs pre-commit (pip install 'archbuilder[test]')",
    ),
]

SMALL = (ROOT / "tests" / "data" / "bases" / "small.yaml").read_text()
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    """This environment less the checkout's venv, with a git identity and pre-commit's own cache."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    home = tmp_path_factory.mktemp("home")
    return {**env, **GIT_IDENTITY, "HOME": str(home), "PRE_COMMIT_HOME": str(home / "pre-commit")}


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory, environment) -> tuple[Path, str]:
    """A git repository holding the package's files, committed; its path and that commit."""
    folder = tmp_path_factory.mktemp("hooks")
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, folder / name)
    # archbuilder/specs and archbuilder/schema are links to the root's folders: copied as folders
    shutil.copytree(
        ROOT / "archbuilder", folder / "archbuilder", ignore=shutil.ignore_patterns("__pycache__")
    )
    git(folder, "init", "-q", env=environment)
    git(folder, "add", ".", env=environment)
    assert git(folder, "commit", "-q", "-m", "hooks", env=environment).returncode == 0
    return folder, git(folder, "rev-parse", "HEAD", env=environment).stdout.strip()


def test_a_bad_spec_fails_the_commit_with_its_located_error(tmp_path, hook_repository, environment):
    hooks, rev = hook_repository
    specs = tmp_path / "specs-repo"
    (specs / "specs" / "spaces").mkdir(parents=True)
    git(specs, "init", "-q", env=environment)
    (specs / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: archbuild-validate\n"
    )
    installed = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=specs,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr

    # A good spec, and YAML that is no spec (a CI file, a search space): the hook passes them.
    (specs / "specs" / "small.yaml").write_text(SMALL)
    (specs / "ci.yaml").write_text("jobs: {test: {runs-on: linux}}\n")
    (specs / "specs" / "spaces" / "widths.yaml").write_text(
        "extends: ../small.yaml\nscale: {width: {choice: [1]}}\n"
    )
    git(specs, "add", ".", env=environment)
    started = time.perf_counter()
    good = git(specs, "commit", "-m", "a good spec", env=environment)
    install_seconds = time.perf_counter() - started  # the hook's environment is made here
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"archbuild validate\.+Passed", good.stdout + good.stderr)

    (hook_env,) = Path(environment["PRE_COMMIT_HOME"]).glob("repo*/py_env-*")
    (site,) = hook_env.glob("lib/python3*/site-packages")
    assert (site / "archbuilder").is_dir() and (site / "yaml").is_dir()
    assert not (site / "torch").exists() and not (site / "numpy").exists()  # the spec-only install
    print(f"pre-commit made the hook's environment in {install_seconds:.1f} s")

    # A misspelt key: the commit fails, naming the file, line, column and key.
    bad = SMALL.replace("ch3x3red: 8", "ch3x3redd: 8")
    (specs / "specs" / "bad.yaml").write_text(bad)
    (line,) = [number for number, text in enumerate(bad.splitlines(), 1) if "ch3x3redd" in text]
    column = bad.splitlines()[line - 1].index("ch3x3redd") + 1
    git(specs, "add", ".", env=environment)
    failed = git(specs, "commit", "-m", "a bad spec", env=environment)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert re.search(r"archbuild validate\.+Failed", output)
    assert f"specs/bad.yaml:{line}:{column}: blocks.1.ch3x3redd: unknown key 'ch3x3redd'" in output
    assert git(specs, "rev-list", "--count", "HEAD", env=environment).stdout.strip() == "1"  # not committed
