"""Shipped specs by name: loading, extends, did-you-mean, and archbuild list / show / new."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

import archbuilder
from archbuilder.cli import main
from archbuilder.spec.schema import SHIPPED_SCHEMA

from .conftest import GOOGLENET, ROOT, SPECS

SHIPPED = sorted(path.stem for path in SPECS.glob("*.yaml"))
# Published sizes without aux heads: the article and paper (GoogLeNet with BN keeps conv bias),
# torchvision's inception_v3 (27,161,264 with its aux head), Keras' Xception.
PUBLISHED = {"googlenet": 7_013_112, "inception-v3": 23_834_568, "xception": 22_855_952}


def test_a_bare_name_loads_the_shipped_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nowhere near the checkout's specs/
    for name in ("googlenet", "googlenet.yaml"):
        assert archbuilder.load_spec(name) == archbuilder.load_spec(GOOGLENET)
    assert archbuilder.summarize(archbuilder.load_spec("inception-v3")).inference_params == 23_834_568


def test_an_existing_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "googlenet").write_text(
        "name: mine\ninput: {channels: 1, height: 8, width: 8}\nblocks: [{kind: flatten}]\n"
    )
    assert archbuilder.load_spec("googlenet").name == "mine"
    assert archbuilder.load_spec("googlenet.yaml").name == "googlenet"  # no such file here: shipped


def test_unknown_names_suggest_a_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(archbuilder.SpecError, match=r"did you mean 'googlenet'\?.*archbuild list"):
        archbuilder.load_spec("googlnet")
    with pytest.raises(archbuilder.SpecError) as raised:
        archbuilder.load_spec("./googlnet.yaml")  # a path, not a name: no catalog suggestion
    assert "did you mean" not in str(raised.value) and "no such file" in str(raised.value)


def test_extends_a_shipped_name(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text("extends: googlenet\nname: mine\nnum_classes: 10\nblocks: {3a: {ch1x1: 32}}\n")
    spec = archbuilder.load_spec(child)
    base = archbuilder.load_spec("googlenet")
    assert (spec.name, spec.num_classes, spec.blocks[0].ch1x1) == ("mine", 10, 32)
    assert spec.blocks[1:] == base.blocks[1:]
    child.write_text("extends: googlnet\n")
    with pytest.raises(archbuilder.SpecError, match="did you mean 'googlenet'"):
        archbuilder.load_spec(child)


def test_build_takes_a_name():
    torch = pytest.importorskip("torch")
    model = archbuilder.build("inception-digits", num_classes=3)
    assert model.eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_list_shows_every_shipped_spec_with_its_sizes(capsys):
    assert main(["list", "--json"]) == 0
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert sorted(entries) == SHIPPED
    for name, params in PUBLISHED.items():
        assert entries[name]["inference_params"] == params
    assert entries["googlenet"]["input"] == [3, 224, 224] and entries["googlenet"]["params"] == 13_393_352
    assert entries["googlenet"]["inference_macs"] == 1_582_671_872  # README's figure
    assert main(["list"]) == 0
    table = capsys.readouterr().out
    for name in SHIPPED:
        assert f"\n{name} " in table
    assert "7,013,112" in table and "3×299×299" in table
    assert main(["list", "googlenet-*", "--json"]) == 0
    assert all(e["name"].startswith("googlenet-") for e in json.loads(capsys.readouterr().out))


def test_show_prints_the_spec_pointing_at_an_existing_schema(capsys, tmp_path):
    assert main(["show", "googlenet"]) == 0
    text = capsys.readouterr().out
    first, rest = text.split("\n", 1)
    assert rest == GOOGLENET.read_text().split("\n", 1)[1]
    reference = first.removeprefix("# yaml-language-server: $schema=")
    assert reference != first and os.path.isfile(reference) and os.path.samefile(reference, SHIPPED_SCHEMA)
    mine = tmp_path / "mine.yaml"
    mine.write_text(text)
    assert archbuilder.load_spec(mine) == archbuilder.load_spec("googlenet")
    assert main(["show", "googlnet"]) == 1
    assert "did you mean 'googlenet'" in capsys.readouterr().err


def test_new_copies_a_shipped_spec_under_a_header(tmp_path, capsys):
    output = tmp_path / "my-net.yaml"
    assert main(["new", str(output), "--from", "inception-v3"]) == 0
    text = output.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    header = [line for line in text.splitlines() if line.startswith("#")][:8]
    assert any("extends: inception-v3" in line for line in header)
    spec = archbuilder.load_spec(output)
    assert spec.name == "my-net"
    assert (
        yaml.safe_load(text)["blocks"] == yaml.safe_load((SPECS / "inception-v3.yaml").read_text())["blocks"]
    )
    assert main(["new", str(output)]) == 2  # never over an existing file
    assert "exists" in capsys.readouterr().err and output.read_text() == text


def test_a_schema_copy_beside_the_spec_is_named_relatively(tmp_path, capsys):
    assert main(["schema", "-o", str(tmp_path / "archbuilder.schema.json")]) == 0
    assert main(["new", str(tmp_path / "net.yaml")]) == 0
    assert (
        (tmp_path / "net.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=archbuilder.schema.json\n")
    )


def test_commands_take_names_from_any_folder(tmp_path):
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=tmp_path
    )
    summary = run("summary", "inception-v3", "--json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["without_aux"]["params"] == 23_834_568
    assert run("validate", "googlenet", "xception").returncode == 0
    assert ROOT not in tmp_path.parents
