"""docs/editor.md's settings against what they set up: the hook's file filter and the VS Code
problem matcher, checked on the paths and the output of archbuild itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

from .conftest import ROOT

HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
EDITOR = (ROOT / "docs" / "editor.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", EDITOR, re.DOTALL | re.MULTILINE)


def selected(hook: dict, path: str) -> bool:
    """Whether pre-commit passes ``path`` (a YAML file) to ``hook``: `files` and not `exclude`."""
    return bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)


def test_the_hook_runs_archbuild_validate_on_specs_only():
    (hook,) = HOOKS
    assert hook["id"] == "archbuild-validate" and hook["entry"] == "archbuild validate"
    assert hook["language"] == "python" and hook.get("pass_filenames", True)
    specs = ["specs/googlenet.yaml", "specs/my-net.yml", "models/specs/a/b.yaml", "exp/run1.arch.yaml"]
    others = [".pre-commit-config.yaml", ".github/workflows/ci.yaml", "specs/spaces/widths.yaml", "data.yaml"]
    assert [selected(hook, path) for path in specs + others] == [True] * len(specs) + [False] * len(others)
    documented = [yaml.safe_load(block) for block in blocks("yaml") if "repos:" in block]
    assert documented[0]["repos"][0]["hooks"] == [{"id": hook["id"]}]


def test_the_vs_code_problem_matcher_reads_validates_output(tmp_path):
    (tasks,) = [json.loads(block) for block in blocks("json") if '"tasks"' in block]
    (validate,) = [task for task in tasks["tasks"] if task["label"] == "archbuild validate"]
    pattern = validate["problemMatcher"]["pattern"]
    spec = (ROOT / "tests" / "data" / "bases" / "small.yaml").read_text().replace("pool_proj:", "pool_prj:")
    (tmp_path / "net.yaml").write_text(spec)
    (line,) = [n for n, text in enumerate(spec.splitlines(), 1) if "pool_prj" in text]
    column = spec.splitlines()[line - 1].index("pool_prj") + 1
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "validate", "net.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    found = [match for text in result.stderr.splitlines() if (match := re.match(pattern["regexp"], text))]
    assert [
        (m[pattern["file"]], int(m[pattern["line"]]), int(m[pattern["column"]]), m[pattern["message"]][:21])
        for m in found
    ] == [("net.yaml", line, column, "blocks.1.pool_prj: un")]
