"""Optional packages: a missing one is one line naming the extra to install, exit status 2.

The commands run as a user runs them, in a subprocess whose Python cannot import the
packages named (a ``sitecustomize`` on PYTHONPATH puts a finder in front that reports them
not installed, as an environment without them does).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import warnings

import pytest

import archbuilder
from archbuilder.cli.main import GROUP_OF
from archbuilder.cli.main import main as archbuild
from archbuilder.core.extras import EXTRAS, MissingExtra, check, require
from archbuilder.export import NoiseCalibrationWarning, export_program

from .conftest import ROOT

SMALL = ROOT / "tests" / "data" / "bases" / "small.yaml"  # 16×16, one Inception block
DISTRIBUTIONS = {"sklearn": "scikit-learn"}  # where the module's name is not its distribution's
LINE = re.compile(
    r"^[\w./ ()-]+: error: .+ needs [\w ]+ \(not installed\): pip install 'archbuilder\[\w+\]'\n$"
)

NOT_INSTALLED = """\
import sys


class NotInstalled:
    \"\"\"Finds the packages named here nowhere, as where they are not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""


def without(tmp_path, *packages: str, command: list[str]) -> subprocess.CompletedProcess:
    """``command`` run by this Python where ``packages`` cannot be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NOT_INSTALLED.format(blocked=set(packages)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )


def assert_one_line(result: subprocess.CompletedProcess, program: str, module: str, extra: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert LINE.match(result.stderr), result.stderr
    assert result.stderr.startswith(f"{program}: error: ")
    assert f"needs {module} (not installed): pip install 'archbuilder[{extra}]'" in result.stderr


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What needs torch: export (ONNX too), int8, bench and the examples' training.
NEED_TORCH = {"torch", "onnx", "int8", "bench", "examples"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[\w.-]+", requirement)[0].lower() for requirement in requirements}


def pulled_extras(extra: str) -> set[str]:
    """The extras that ``extra`` pulls in by naming ``archbuilder[...]``."""
    found = (re.fullmatch(r"archbuilder\[([\w,]+)\]", r) for r in PROJECT["optional-dependencies"][extra])
    return {name for match in found if match for name in match[1].split(",")}


def test_the_table_is_pyprojects_extras():
    """Each optional module's extra installs it, and each package of those extras has a module."""
    extras = PROJECT["optional-dependencies"]

    def names(extra: str) -> set[str]:
        return requirement_names(extras[extra]) - {"archbuilder"}  # the extras it pulls in: below

    for module, extra in EXTRAS.items():
        assert DISTRIBUTIONS.get(module, module) in names(extra), (module, extra)
    optional = {extra for extra in extras if extra not in ("test", "dev")}
    assert optional == set(EXTRAS.values())
    for extra in optional:
        tabled = {DISTRIBUTIONS.get(module, module) for module, its in EXTRAS.items() if its == extra}
        assert names(extra) == tabled, extra
    for extra in optional:  # the test extra holds every optional package, for the suite
        assert names(extra) <= names("test"), extra
        assert pulled_extras(extra) <= optional, extra


def test_torch_is_an_extra_that_each_extra_needing_it_pulls_in():
    """A spec-only install has no torch; `archbuilder[torch]` brings it (each extra that needs
    it too), and the test extra keeps the verified pair pinned."""
    assert "torch" not in requirement_names(PROJECT["dependencies"])
    assert PROJECT["optional-dependencies"]["torch"] == ["torch>=2.9", "numpy>=1.24"]
    assert "numpy" not in requirement_names(PROJECT["dependencies"])  # validate, render, serve need none
    needing = {extra for extra in PROJECT["optional-dependencies"] if "torch" in pulled_extras(extra)}
    assert needing | {"torch"} == NEED_TORCH
    test = PROJECT["optional-dependencies"]["test"]
    assert "torch==2.14.1" in test and "torchvision==0.29.1" in test
    assert archbuilder.MissingExtra("torch", needed_for="x").extras == ("torch",)


def test_the_message_is_one_line_naming_the_extra():
    error = MissingExtra("onnxscript", needed_for="ONNX export")
    assert isinstance(error, ImportError) and error.name == "onnxscript"
    assert str(error) == "ONNX export needs onnxscript (not installed): pip install 'archbuilder[onnx]'"
    both = MissingExtra(["sklearn.datasets", "optuna"], needed_for="the digits search")
    assert both.modules == ("sklearn", "optuna") and both.extras == ("examples", "search")
    assert str(both).endswith(
        "needs sklearn and optuna (not installed): pip install 'archbuilder[examples,search]'"
    )
    assert "\n" not in str(MissingExtra("torchao", needed_for="x", reason="cannot be imported:\n  why"))


def test_require_imports_or_names_the_extra(monkeypatch):
    assert require("tomllib", needed_for="nothing") is tomllib
    monkeypatch.setitem(sys.modules, "optuna", None)  # its import is blocked: not installed
    with pytest.raises(MissingExtra, match=r"^a study needs optuna \(not installed\).*\[search\]'$"):
        require("optuna", needed_for="a study")
    with pytest.raises(MissingExtra) as raised:
        check("json", "optuna", needed_for="a study")
    assert raised.value.modules == ("optuna",)


def test_suggest_without_optuna_raises_missing_extra(monkeypatch):
    space = archbuilder.load_space(ROOT / "specs" / "spaces" / "inception-digits.yaml")
    monkeypatch.setitem(sys.modules, "optuna", None)

    class Trial:  # asked nothing: optuna is checked first
        def __getattr__(self, name):
            raise AssertionError(f"the trial was asked {name}")

    with pytest.raises(MissingExtra, match=r"SearchSpace\.suggest needs optuna .*'archbuilder\[search\]'"):
        space.suggest(Trial())


@pytest.mark.slow  # over 2.5 s (loads torch): CI runs it
def test_bench_int8_without_torchao(tmp_path):
    command = ["-m", "archbuilder", "bench", str(SMALL), "--dtype", "int8", "--batch", "1", "--repeats", "1"]
    result = without(tmp_path, "torchao", command=command)
    assert_one_line(result, "archbuild", "torchao", "int8")
    assert result.stdout == ""


def test_export_onnx_without_onnxscript(tmp_path):
    output = tmp_path / "x.onnx"
    result = without(
        tmp_path, "onnxscript", command=["-m", "archbuilder", "export", str(SMALL), "-o", str(output)]
    )
    assert_one_line(result, "archbuild", "onnxscript", "onnx")
    assert result.stderr.startswith("archbuild: error: ONNX export needs onnxscript")
    assert not output.exists()


def test_export_int8_without_torchao(tmp_path):
    command = ["-m", "archbuilder", "export", str(SMALL), "--dtype", "int8", "-o", str(tmp_path / "x.pt2")]
    result = without(tmp_path, "torchao", command=command)
    assert_one_line(result, "archbuild", "torchao", "int8")  # no calibration warning before it either
    assert result.stderr.startswith("archbuild: error: int8 export needs torchao")


def test_import_onnx_without_onnx(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not read")
    result = without(tmp_path, "onnx", command=["-m", "archbuilder", "import", "model.onnx"])
    assert_one_line(result, "archbuild", "onnx", "onnx")
    assert "reading ONNX files needs onnx" in result.stderr


@pytest.mark.slow  # over 2.5 s (loads torch): CI runs it
def test_train_digits_without_sklearn(tmp_path):
    result = without(
        tmp_path, "sklearn", command=[str(ROOT / "examples" / "train_digits.py"), "--epochs", "1"]
    )
    assert_one_line(result, "train_digits.py", "sklearn", "examples")
    assert result.stdout == "" and not (tmp_path / "digits.pt").exists()  # nothing built or trained


@pytest.mark.slow  # over 2.5 s (loads torch): CI runs it
def test_search_digits_without_optuna(tmp_path):
    result = without(
        tmp_path, "optuna", command=[str(ROOT / "examples" / "search_digits.py"), "--trials", "1"]
    )
    assert_one_line(result, "search_digits.py", "optuna", "search")
    assert not (tmp_path / "search-digits.db").exists()


@pytest.mark.slow  # a real int8 export (PT2E) of the 16×16 spec, twice: 5 to 10 s
@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="int8 export needs torchao")
def test_int8_export_without_calibration_says_it_calibrates_on_noise(tmp_path, capsys):
    import torch

    model = archbuilder.build(SMALL)
    with pytest.warns(NoiseCalibrationWarning, match="64 uniform-noise images") as caught:
        export_program(model, dtype="int8")
    assert [w.filename for w in caught if w.category is NoiseCalibrationWarning] == [__file__]
    with warnings.catch_warnings():  # with calibration batches, no warning
        warnings.simplefilter("error", NoiseCalibrationWarning)
        export_program(model, dtype="int8", calibration=[torch.rand(2, 3, 16, 16)])

    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoiseCalibrationWarning)  # the command says it its own way
        assert archbuild(["export", str(SMALL), "--dtype", "int8", "-o", str(tmp_path / "x.pt2")]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "calibrat" in line]
    assert said == [
        "archbuild export: warning: no --calibration, so int8 activation ranges are calibrated on 64 "
        "uniform-noise images, not on real inputs; pass real images with --calibration FILE.npy"
    ]
    assert (tmp_path / "x.pt2").exists()


PROTOTXT = ROOT / "tests" / "data" / "import" / "bvlc_googlenet_deploy.prototxt"
SPEC_ONLY = (  # what the spec-only install (no torch, no numpy) does
    ["validate", "googlenet", str(SMALL)],
    ["summary", "googlenet"],
    ["render", "googlenet", "-o", "g.svg", "--engine", "embedded"],
    ["diff", "googlenet", str(SMALL)],
    ["import", str(PROTOTXT), "-o", "g.yaml"],
)


def test_the_spec_only_commands_work_without_torch(tmp_path):
    for command in SPEC_ONLY:
        result = without(tmp_path, "torch", "torchvision", "numpy", command=["-m", "archbuilder", *command])
        assert result.returncode == 0 and "torch" not in result.stderr, (command, result.stderr)
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<")
    imported = archbuilder.summarize(archbuilder.load_spec(tmp_path / "g.yaml"))
    assert imported.params == 6_998_552  # BVLC GoogLeNet's, as Caffe counts them


TORCH_COMMANDS = {
    "build": ["build", str(SMALL)],
    "bench": ["bench", str(SMALL), "--repeats", "1"],
    "profile": ["profile", str(SMALL)],
    "export": ["export", str(SMALL), "-o", "x.pt2"],
    "import": [
        "import",
        str(PROTOTXT),
        "-o",
        "x.yaml",
        "--weights",
        "x.pt",
        "--caffemodel",
        "x.caffemodel",
    ],
}


@pytest.mark.parametrize("name", TORCH_COMMANDS)
def test_torch_commands_without_torch(tmp_path, name):
    if name not in GROUP_OF:
        pytest.skip(f"archbuild has no {name} command")
    result = without(tmp_path, "torch", command=["-m", "archbuilder", *TORCH_COMMANDS[name]])
    assert_one_line(result, "archbuild", "torch", "torch")
    assert result.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing written


def test_onnx_export_without_torch_names_torch(tmp_path):
    command = ["-m", "archbuilder", "export", str(SMALL), "-o", "x.onnx"]
    result = without(tmp_path, "torch", command=command)
    assert_one_line(result, "archbuild", "torch", "torch")
    assert result.stderr.startswith("archbuild: error: ONNX export needs torch")


PYTHON_API = f"""
import archbuilder
from archbuilder.core.extras import MissingExtra
for call in (
    lambda: archbuilder.build({str(SMALL)!r}),
    lambda: archbuilder.import_module(None, None),
    lambda: archbuilder.export_pt2({str(SMALL)!r}, "x.pt2"),
    lambda: archbuilder.export_onnx({str(SMALL)!r}, "x.onnx"),
):
    try:
        call()
    except MissingExtra as error:
        print(error)
"""


def test_the_python_api_without_torch_raises_missing_extra(tmp_path):
    result = without(tmp_path, "torch", command=["-c", PYTHON_API])
    assert result.returncode == 0, result.stderr
    install = "needs torch (not installed): pip install 'archbuilder[torch]'"
    assert result.stdout.splitlines() == [
        f"building models (archbuilder.builder) {install}",
        f"archbuilder.import_module {install}",
        f".pt2 export {install}",
        f"ONNX export {install}",
    ]


@pytest.mark.parametrize("example", ["train_digits.py", "search_digits.py"])
def test_the_examples_without_torch(tmp_path, example):
    result = without(tmp_path, "torch", command=[str(ROOT / "examples" / example), "--help"])
    assert_one_line(result, example, "torch", "torch")


def test_the_readmes_install_figures_are_the_stored_logs():
    log = (ROOT / "bench" / "results" / "xeon2-install-size.txt").read_text()
    measured = {
        extra: (float(seconds), int(mib), int(count))
        for extra, seconds, mib, count in re.findall(
            r"^\| pip install archbuilder(\S*) +\| +([\d.]+) \| +(\d+) \| +(\d+) \|$", log, re.MULTILINE
        )
    }
    readme = (ROOT / "README.md").read_text()
    quoted = re.findall(
        r"^\| `archbuilder(\S*)` \| (\d+) s \| ([\d.]+) (MiB|GiB)[^|]*\| (\d+)", readme, re.MULTILINE
    )
    assert sorted(measured) == sorted(extra for extra, *_ in quoted) == ["", "[torch]"]
    for extra, seconds, size, unit, count in quoted:
        log_seconds, log_mib, log_count = measured[extra]
        assert int(seconds) == round(log_seconds) and int(count) == log_count, extra
        assert float(size) == (log_mib if unit == "MiB" else round(log_mib / 1024, 1)), extra
