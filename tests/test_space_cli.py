"""archbuild space / sample: the files written, byte for byte, their headers, and the report."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import archbuilder
from archbuilder.cli import main
from archbuilder.core.files import shown_path
from archbuilder.space.output import read_header

from .conftest import ROOT
from .test_space import SMALL


def _files(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_sample_writes_the_same_bytes_for_the_same_seed(tmp_path, capsys):
    space_file = tmp_path / "small.yaml"
    space_file.write_text(SMALL)
    for folder in ("a", "b"):
        assert main(["sample", str(space_file), "-n", "6", "--seed", "3", "-o", str(tmp_path / folder)]) == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert main(["sample", str(space_file), "-n", "6", "--seed", "4", "-o", str(tmp_path / "c")]) == 0
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert "wrote 6 spec files" in capsys.readouterr().err

    # Each file is an ordinary spec: the candidate the same seed gives from Python.
    expected = archbuilder.load_space(str(space_file)).sample(6, seed=3)
    written = sorted((tmp_path / "a").glob("small-*.yaml"))
    assert len(written) == 6
    for path, candidate in zip(written, expected):
        text = path.read_text()
        assert archbuilder.load_spec(path) == candidate.spec
        header = read_header(text)
        assert header["decisions"] == candidate.choices
        assert header["space_sha256"] == archbuilder.load_space(str(space_file)).sha256
        assert header["params"] == candidate.params and header["seed"] == 3
    assert main(["summary", str(written[0])]) == 0  # an ordinary spec to every command
    assert main(["render", str(written[0]), "-o", str(tmp_path / "one.dot")]) == 0
    assert "digraph" in (tmp_path / "one.dot").read_text()
    listing = json.loads((tmp_path / "a" / "samples.json").read_text())
    assert [entry["file"] for entry in listing["candidates"]] == [path.name for path in written]


def test_a_header_cannot_inject_yaml(tmp_path):
    # A file name and options with line breaks (\r, \n, and YAML's U+2028 / U+0085 too).
    space_file = tmp_path / "evil\rnum_classes: 3\u2028y: 1\u0085x.yaml"
    space_file.write_text(
        SMALL.replace("name: small", 'name: small\ndescription: {choice: ["a\\nnum_classes: 3", "b: c # d"]}')
    )
    assert main(["sample", str(space_file), "-n", "4", "--seed", "0", "-o", str(tmp_path / "out")]) == 0
    for path in sorted((tmp_path / "out").glob("*.yaml")):
        text = path.read_text()
        header = text[: text.index("format: 1")]
        assert all(line.startswith("#") for line in header.splitlines())
        assert header.isascii()
        spec = archbuilder.load_spec(path)
        assert spec.num_classes == 10 and spec.description in ("a\nnum_classes: 3", "b: c # d")
        assert read_header(text)["decisions"]["description"] == spec.description
        assert read_header(text)["space"] == shown_path(space_file)


def test_space_prints_decisions_size_and_valid_fraction(tmp_path, capsys):
    space_file = tmp_path / "small.yaml"
    space_file.write_text(SMALL)
    assert main(["space", str(space_file), "--draws", "100"]) == 0
    out = capsys.readouterr().out
    for name in ("w", "blocks.c1.kernel", "blocks.b", "blocks.b[conv].out"):
        assert f"\n{name} " in out
    assert "raw size: 45 combinations" in out
    assert "of 100 random candidates valid" in out
    assert "blocks.c1.kernel = 9: no valid candidate in 8 tries" in out  # 9×9 on an 8×8 input

    assert main(["space", str(space_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["size"] == 45 and data["constraints"] == {"max_params": 20_000, "min_params": 300}
    valid = sum(1 for _ in archbuilder.load_space(SMALL).enumerate())
    low, high = data["valid"]["interval"]
    assert low <= valid / 45 <= high


def test_sample_says_when_the_space_holds_fewer(tmp_path, capsys):
    space_file = tmp_path / "small.yaml"
    space_file.write_text(SMALL)
    assert main(["sample", str(space_file), "-n", "500", "-o", str(tmp_path / "out")]) == 1
    assert "the space holds no more" in capsys.readouterr().err


def test_a_bad_space_exits_1_with_located_problems_and_no_traceback(tmp_path):
    space_file = tmp_path / "bad.yaml"
    space_file.write_text(SMALL.replace("{choice: [1, 3, 9]}", "{choice: [1, 3, 9], idd: k}"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "archbuilder",
            "sample",
            str(space_file),
            "-n",
            "2",
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "bad.yaml:7:91: blocks.0.kernel.idd: unknown key 'idd' in a choice (did you mean 'id'?)"
        in result.stderr
    )
    assert not (tmp_path / "o").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_on_a_terminal_and_degrades_without_tqdm(monkeypatch):
    from archbuilder.cli import search

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    update, close = search._bar(3, "spec", disabled=False)
    update(1, 2)
    close()
    assert "1/3" in terminal.getvalue() and "tried=2" in terminal.getvalue()
    assert search._bar(3, "spec", disabled=True)[0] is None
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed: no bar, no error
    assert search._bar(3, "spec", disabled=False)[0] is None


def test_set_fixes_a_decision_and_the_header_records_it(tmp_path):
    space_file = tmp_path / "small.yaml"
    space_file.write_text(SMALL)
    argv = ["sample", str(space_file), "--set", "blocks.c1.kernel=3", "-n", "2", "-o", str(tmp_path / "o")]
    assert main(argv) == 0
    path = sorted((tmp_path / "o").glob("small-*.yaml"))[0]
    header = read_header(path.read_text())
    assert header["overrides"] == ["blocks.c1.kernel=3"] and "blocks.c1.kernel" not in header["decisions"]
    space = archbuilder.load_space(space_file, overrides=header["overrides"])
    assert space.candidate(header["decisions"]) == archbuilder.load_spec(path)
    assert archbuilder.load_spec(path).blocks[0].kernel == 3
