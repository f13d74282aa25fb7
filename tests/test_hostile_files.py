"""Files: read only regular files, only where the user allowed; never replace what is not ours.

Each case is a real file system object (a FIFO, /dev/zero, a symbolic link loop, a folder)
made in a temporary folder; a test that would block is run under a thread timeout.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.core.files import UnreadableFile, read_regular, write_atomic

from .conftest import ROOT

SMALL = (ROOT / "tests" / "data" / "bases" / "small.yaml").read_text()
SECRET = "root:$6$s3cr3t-hash:19000:0:99999:7:::\nfoo: bar\ndaemon:*:19000:0:99999:7:::\n"


def finishes(function, *args, seconds: float = 10):
    """``function(*args)``'s exception or result, failing the test if it blocks."""
    box: list = []

    def run():
        try:
            box.append(function(*args))
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked"
    return box[0]


def spec_error(*args, **kwargs) -> SpecError:
    result = finishes(lambda: archbuilder.load_spec(*args, **kwargs))
    assert isinstance(result, SpecError), result
    return result


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


# -- reading ----------------------------------------------------------------------------------
def test_a_fifo_is_refused_without_blocking(fifo):
    (problem,) = spec_error(fifo).problems
    assert "FIFO" in problem.message and "not a regular file" in problem.message


def test_dev_zero_is_refused_not_read_until_memory_runs_out():
    (problem,) = spec_error(Path("/dev/zero")).problems
    assert "character device" in problem.message


def test_the_size_cap_holds_while_reading(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 5000)
    with pytest.raises(UnreadableFile, match="larger than 4,096 bytes"):
        read_regular(path, max_bytes=4096)


def test_a_symlink_loop_and_a_nul_byte_are_spec_errors(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    assert "symbolic link loop" in spec_error(tmp_path / "a.yaml").problems[0].message
    assert "NUL byte" in spec_error(str(tmp_path / "x\0.yaml")).problems[0].message


def test_a_directory_says_so(tmp_path):
    assert "is a directory" in spec_error(tmp_path / ".").problems[0].message
    assert "is a directory" in spec_error(tmp_path).problems[0].message


# -- extends: only where allowed ----------------------------------------------------------------
def test_extends_cannot_leave_the_top_level_folder_by_default(tmp_path):
    (tmp_path / "base.yaml").write_text(SMALL)
    child = tmp_path / "specs" / "child.yaml"
    child.parent.mkdir()
    child.write_text("extends: ../base.yaml\nnum_classes: 3\n")
    (problem,) = spec_error(child).problems
    assert problem.path == ("extends",) and problem.line == 1 and "outside the folders" in problem.message
    assert archbuilder.load_spec(child, allowed_roots=[tmp_path]).num_classes == 3


def test_extends_through_a_symlink_is_judged_by_its_target(tmp_path):
    outside, inside = tmp_path / "outside", tmp_path / "inside"
    outside.mkdir()
    inside.mkdir()
    (outside / "base.yaml").write_text(SMALL)
    (inside / "base.yaml").symlink_to(outside / "base.yaml")
    (inside / "child.yaml").write_text("extends: base.yaml\n")
    assert "outside the folders" in spec_error(inside / "child.yaml").problems[0].message


def test_a_file_that_is_not_a_spec_is_never_echoed(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {secret}\n")
    error = spec_error(child)
    assert "is not an archbuilder spec" in str(error)
    assert "s3cr3t" not in str(error) and "daemon" not in str(error) and "foo" not in str(error)


def test_extends_to_a_fifo_a_device_or_a_folder_says_what_it_is(tmp_path, fifo):
    (tmp_path / "folder").mkdir()
    for target, words in [(fifo, "FIFO"), ("/dev/zero", "character device"), ("folder", "directory")]:
        child = tmp_path / "child.yaml"
        child.write_text(f"extends: {target}\n")
        roots = [tmp_path, "/dev"]
        (problem,) = spec_error(child, allowed_roots=roots).problems
        assert words in problem.message and "no such file" not in problem.message


def test_spec_text_may_extend_nothing_outside_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "base.yaml").write_text(SMALL)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert "outside the folders" in spec_error("extends: ../base.yaml\n").problems[0].message


# -- checkpoints --------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def saved(tmp_path, **changes) -> Path:
    from archbuilder.builder.checkpoint import FORMAT_VERSION

    model = archbuilder.build(SMALL)
    data = {
        "archbuilder_checkpoint": FORMAT_VERSION,
        "spec": model.spec.to_yaml(),
        "build": {"aux": True},
        "state_dict": model.state_dict(),
        "epoch": None,
        "optimizer": None,
        "source": None,
        "overrides": [],
        "extra": {},
    }
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "model.pt"
    torch.save(data, path)
    return path


def test_a_checkpoints_spec_is_text_never_a_path(tmp_path, monkeypatch):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    secret = tmp_path / "secret.yaml"
    secret.write_text(SECRET)
    monkeypatch.chdir(tmp_path)
    for spec in ["secret.yaml", str(secret), "/dev/zero"]:
        error = finishes(load_checkpoint, saved(tmp_path, spec=spec))
        assert isinstance(error, CheckpointError) and "s3cr3t" not in str(error), error


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"spec": KeyError}, "key 'spec' is missing"),
        ({"build": KeyError}, "key 'build' is missing"),
        ({"spec": 5}, "key 'spec' holds int"),
        ({"build": "aux"}, "key 'build' holds str"),
        ({"build": {"aux": "yes"}}, "build.aux"),
        ({"build": {"features_only": True, "out_names": 3}}, "build.out_names"),
        ({"state_dict": [1, 2]}, "key 'state_dict' holds list"),
        ({"state_dict": {"nope": torch.zeros(1)}}, "do not fit"),
        ({"epoch": "one"}, "key 'epoch' holds str"),
        ({"archbuilder_checkpoint": "\x1b[2Kforged"}, "checkpoint format"),
    ],
)
def test_malformed_checkpoints_are_checkpoint_errors(tmp_path, changes, words):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match=words) as caught:
        load_checkpoint(saved(tmp_path, **changes))
    assert "\x1b" not in str(caught.value)


def test_random_bytes_and_special_files_are_checkpoint_errors(tmp_path, fifo):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    for path, words in [(junk, "not a readable checkpoint"), (fifo, "FIFO"), ("/dev/zero", "device")]:
        error = finishes(load_checkpoint, path)
        assert isinstance(error, CheckpointError) and words in str(error), error


# -- outputs ------------------------------------------------------------------------------------
def test_an_existing_special_file_is_never_replaced(tmp_path, fifo):
    for target in [fifo, tmp_path, "/dev/null", "/dev/full"]:
        with pytest.raises(OSError):
            write_atomic(target, b"data")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()


def test_nothing_is_written_into_the_system_folders_of_special_files():
    with pytest.raises(OSError, match="system folder"):
        write_atomic("/dev/archbuilder-test.svg", b"data")
    assert not Path("/dev/archbuilder-test.svg").exists()


def test_a_symlink_is_resolved_and_a_loop_is_an_error(tmp_path):
    real = tmp_path / "real.svg"
    real.write_text("old")
    (tmp_path / "link.svg").symlink_to(real)
    write_atomic(tmp_path / "link.svg", b"new")
    assert real.read_text() == "new" and (tmp_path / "link.svg").is_symlink()
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError, match="symbolic link loop"):
        write_atomic(tmp_path / "a", b"x")


def test_a_cancelled_write_leaves_nothing_and_cancellation_is_scoped(tmp_path):
    """Inside ``cancelled_by(event)`` with the event set, write_atomic renames nothing into
    place (KeyboardInterrupt, no file, no temporary); outside it, or in another thread, the
    same write goes through: no process-wide flag."""
    import threading

    from archbuilder.core.files import cancelled_by, write_atomic

    event = threading.Event()
    event.set()
    target = tmp_path / "out.svg"
    with cancelled_by(event), pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"<svg/>")
    assert list(tmp_path.iterdir()) == []
    with cancelled_by(event):
        other = threading.Thread(target=write_atomic, args=(tmp_path / "thread.svg", b"x"))
        other.start()
        other.join()
    write_atomic(target, b"<svg/>")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.svg", "thread.svg"]
