"""Outputs into folders: never through a planted symbolic link, never over what is not a file.

``archbuild sample -o DIR`` writes many files into DIR; whatever DIR already holds (a link to
a file outside it, a FIFO, a folder where a file goes), nothing outside DIR changes and
nothing in it that is not a regular file is replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

import archbuilder
from archbuilder.cli import main
from archbuilder.core.files import shown_path, write_atomic, write_into
from archbuilder.space.output import read_header

from .test_space import SMALL

VICTIM = b"precious bytes the user never asked to overwrite\n"


def _space(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def _sample(tmp_path: Path, folder: Path) -> int:
    return main(["sample", str(_space(tmp_path)), "-n", "3", "--seed", "0", "-o", str(folder)])


def test_sample_never_follows_a_planted_symlink_out_of_its_folder(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    out = tmp_path / "out"
    out.mkdir()
    (out / "small-002.yaml").symlink_to("../victim.txt")
    assert _sample(tmp_path, out) == 1
    assert victim.read_bytes() == VICTIM
    assert (out / "small-002.yaml").is_symlink()
    err = capsys.readouterr().err
    assert "small-002.yaml" in err and "symbolic link" in err and "Traceback" not in err
    assert sorted(path.name for path in out.iterdir()) == ["small-002.yaml"]  # refused before any write


def test_a_link_to_samples_json_outside_is_refused_too(tmp_path, capsys):
    victim = tmp_path / "victim.json"
    victim.write_bytes(VICTIM)
    out = tmp_path / "out"
    out.mkdir()
    (out / "samples.json").symlink_to(victim)
    assert _sample(tmp_path, out) == 1
    assert victim.read_bytes() == VICTIM and "samples.json" in capsys.readouterr().err


def test_a_fifo_or_folder_in_the_way_is_refused_without_blocking(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "small-001.yaml")
    (out / "samples.json").mkdir()
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(_sample(tmp_path, out)), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "sample blocked on a FIFO"
    assert box == [1] and (out / "small-001.yaml").is_fifo() and (out / "samples.json").is_dir()
    assert "FIFO" in capsys.readouterr().err


def test_existing_regular_files_are_replaced_and_the_folder_made(tmp_path):
    out = tmp_path / "new" / "out"
    assert _sample(tmp_path, out) == 0
    first = (out / "small-001.yaml").read_bytes()
    (out / "small-001.yaml").write_text("old")
    assert _sample(tmp_path, out) == 0
    assert (out / "small-001.yaml").read_bytes() == first
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no temporary left


def test_write_into_refuses_a_file_as_folder_and_odd_names(tmp_path):
    file = tmp_path / "file"
    file.write_bytes(VICTIM)
    with pytest.raises(OSError, match="not a folder"):
        write_into(file, {"a.yaml": b"x"})
    for name in ("../escape.yaml", "", "..", "a/b"):
        with pytest.raises(OSError, match="plain file name"):
            write_into(tmp_path / "out", {name: b"x"})
    assert file.read_bytes() == VICTIM and not (tmp_path / "escape.yaml").exists()
    with pytest.raises(OSError, match="system folder"):
        write_into("/dev", {"archbuilder-test": b"x"})
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OSError, match="symbolic link to nothing"):
        write_into(tmp_path / "dangling", {"a.yaml": b"x"})
    assert not (tmp_path / "nowhere").exists()


def test_write_into_keeps_the_replaced_files_mode(tmp_path):
    (tmp_path / "a").write_bytes(b"old")
    os.chmod(tmp_path / "a", 0o640)
    write_into(tmp_path, {"a": b"new"})
    assert (tmp_path / "a").read_bytes() == b"new"
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


UMASK_PROBE = """
import os, sys
from archbuilder.core.files import shown_path, write_atomic, write_into
from archbuilder.space.output import read_header
from archbuilder.core.files import shown_path
os.umask(0o027)
def forbidden(*args):
    raise AssertionError("os.umask called: it changes the whole process's umask")
os.umask = forbidden
write_atomic(sys.argv[1] + "/one", b"x")
write_into(sys.argv[1] + "/sub", {"two": b"x"})
"""


def test_new_files_get_the_umask_without_the_umask_being_changed(tmp_path):
    # os.umask can only read the umask by setting it, which races with other threads.
    result = subprocess.run(
        [sys.executable, "-c", UMASK_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "one").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "sub" / "two").stat().st_mode & 0o777 == 0o640


def test_a_single_output_file_still_follows_its_link(tmp_path):
    # -o FILE keeps its documented rule: the file a link names is replaced, the link stays.
    real = tmp_path / "real.yaml"
    real.write_text("old")
    (tmp_path / "link.yaml").symlink_to(real)
    write_atomic(tmp_path / "link.yaml", b"new")
    assert real.read_text() == "new" and (tmp_path / "link.yaml").is_symlink()


# -- the text of a sampled spec ---------------------------------------------------------------
OPTIONS = [
    "a\nb: c\n\ndescription: injected",
    "x\u2028description: injected",
    "y\u0085z: 1",
    "p\rq: 2",
    "#\u2029w: 3",
]


def test_an_option_string_never_starts_a_line_of_a_sampled_spec(tmp_path):
    # One file per option; each reads back (PyYAML, load_spec, read_header) as the option itself.
    choice = "[" + ", ".join(json.dumps(option) for option in OPTIONS) + "]"
    space = tmp_path / "evil\u2028seed: 7\u0085x.yaml"
    space.write_text(SMALL.replace("name: small", f"name: small\ndescription: {{choice: {choice}}}"))
    argv = ["sample", str(space), "-n", "40", "--seed", "0", "-o", str(tmp_path / "out")]
    assert main(argv) in (0, 1)  # the space may hold fewer than 40
    seen = set()
    for path in sorted((tmp_path / "out").glob("*.yaml")):
        text = path.read_text()
        header = read_header(text)
        data = yaml.safe_load(text)
        assert set(data) == {"format", "name", "description", "input", "num_classes", "blocks"}
        assert data["description"] == header["decisions"]["description"] in OPTIONS
        assert archbuilder.load_spec(path).description == data["description"]
        assert header["space"] == shown_path(space) and header["seed"] == 0
        injected = ("b: c", "description: injected", "z: 1", "q: 2", "w: 3", "seed: 7", "x.yaml")
        assert not [line for line in text.splitlines() if line.lstrip("# ").startswith(injected)]
        seen.add(data["description"])
    assert seen == set(OPTIONS)
