"""Readers of files the user names: calibration arrays, checkpoints, and the shared reader
under them. Only regular files, never blocking, capped while reading and before allocating."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from archbuilder.cli.main import main

from .conftest import ROOT
from .test_hostile_files import finishes


def test_a_small_file_read_under_a_large_cap_allocates_only_its_size(tmp_path):
    """read_regular's cap is a bound, not an allocation: a 2 GiB cap reads a 3-byte file in a
    process that may map only 1 GiB."""
    small = tmp_path / "small.txt"
    small.write_bytes(b"hi\n")
    code = "from archbuilder.core.files import read_regular; import sys; print(read_regular(sys.argv[1], max_bytes=2 << 30))"
    done = subprocess.run(
        ["prlimit", f"--as={1 << 30}", sys.executable, "-c", code, str(small)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout == "b'hi\\n'\n", done.stderr


# -- calibration arrays (archbuild export --calibration) ----------------------------------------
np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
npy = np.lib.format
SPEC = ROOT / "tests" / "data" / "bases" / "small.yaml"


def _header_only(path, shape, descr="<f4", data: bytes = b"\0" * 64):
    """A .npy file whose header declares ``shape`` and whose data is ``data``."""
    with path.open("wb") as file:
        npy.write_array_header_1_0(file, {"descr": descr, "fortran_order": False, "shape": shape})
        file.write(data)
    return path


def _export_error(tmp_path, capsys, calibration) -> str:
    """archbuild export --dtype int8 --calibration FILE: exit 1 within seconds, one line."""
    argv = ["export", str(SPEC), "--dtype", "int8", "--calibration", str(calibration)]
    code = finishes(lambda: main([*argv, "-o", str(tmp_path / "out.onnx")]))
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("archbuild")]  # not torchao's import warning
    assert code == 1 and len(said) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out.onnx").exists()
    return said[0]


def test_a_fifo_or_a_device_as_calibration_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    (tmp_path / "zero.npy").symlink_to("/dev/zero")
    assert "pipe.npy: cannot read calibration images: is a FIFO" in _export_error(tmp_path, capsys, fifo)
    assert "is a character device" in _export_error(tmp_path, capsys, tmp_path / "zero.npy")


def test_a_huge_declared_shape_is_refused_before_allocating(tmp_path, capsys):
    """11 TiB declared by a 200-byte file: refused from the header, in a process that could not
    allocate it (the issue's case ran out of memory in numpy.load)."""
    huge = _header_only(tmp_path / "huge.npy", (1_000_000, 3, 1024, 1024))
    err = _export_error(tmp_path, capsys, huge)
    assert "(1000000, 3, 1024, 1024) of float32 is 11.4 TiB, over the limit of 2.0 GiB" in err


@pytest.mark.parametrize(
    ("shape", "descr", "words"),
    [
        ((4, 3, 16, 16), "<f4", "the header declares 12,288 bytes of images; the file holds 64"),
        ((4, 3, 16), "<f4", "must be an N×C×H×W float array, not a <f4 array of shape (4, 3, 16)"),
        ((4, 3, 16, 16), "<i4", "not a <i4 array"),
        ((0, 3, 16, 16), "<f4", "not a <f4 array of shape (0, 3, 16, 16)"),
        ((2, 1, 1, 1), "|O", "not a |O array"),
    ],
)
def test_a_calibration_header_is_checked_before_its_data(tmp_path, capsys, shape, descr, words):
    assert words in _export_error(tmp_path, capsys, _header_only(tmp_path / "bad.npy", shape, descr))


def test_calibration_images_in_either_order_and_byte_order_read_as_written(tmp_path):
    from archbuilder.cli.export import _calibration

    images = np.random.default_rng(0).standard_normal((10, 3, 4, 5))
    for index, array in enumerate([images.astype("<f4"), np.asfortranarray(images).astype(">f8")]):
        np.save(tmp_path / f"{index}.npy", array)
        batches = _calibration(str(tmp_path / f"{index}.npy"))
        assert [len(batch) for batch in batches] == [8, 2]
        np.testing.assert_allclose(torch.cat(batches).numpy(), images, rtol=1e-6)


# -- checkpoints ----------------------------------------------------------------------------------
def _rewritten(path, replace=lambda name, data: data, compress=zipfile.ZIP_STORED):
    """``path``'s zip archive written again, each entry's bytes through ``replace``."""
    source = zipfile.ZipFile(path)
    entries = [(name, replace(name, source.read(name))) for name in source.namelist()]
    out = path.with_name(f"re-{path.name}")
    with zipfile.ZipFile(out, "w", compress) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out


def _nested(tmp_path, key: str, levels: int):
    """A checkpoint whose ``key`` holds a list nested ``levels`` deep (pickle opcodes: ``levels``
    empty lists, then as many appends; no saver can write it: pickling it recurses)."""
    from .test_hostile_files import saved

    marker = b"X\x0b\x00\x00\x00PLACEHOLDER"
    nested = b"]" * levels + b"a" * (levels - 1)
    path = saved(tmp_path, **{key: "PLACEHOLDER"})
    return _rewritten(
        path, lambda name, data: data.replace(marker, nested) if name.endswith(".pkl") else data
    )


@pytest.mark.parametrize("key", ["archbuilder_checkpoint", "extra"])
def test_data_nested_50000_levels_is_a_checkpoint_error(tmp_path, key):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    error = finishes(load_checkpoint, _nested(tmp_path, key, 50_000))
    assert isinstance(error, CheckpointError), error
    assert f"key '{key}' nests deeper than 100 levels" in str(error) and "re-model.pt" in str(error)


def test_a_checkpoint_declaring_more_than_its_limit_is_refused_before_reading(tmp_path):
    """A 64 MiB entry deflated to a few KiB: refused from the sizes the archive declares."""
    from archbuilder.builder.checkpoint import load_checkpoint
    from archbuilder.core.errors import SpecError

    from .test_hostile_files import saved

    bomb = _rewritten(
        saved(tmp_path),
        lambda name, data: b"\0" * (64 << 20) if name.endswith("/0") else data,
        zipfile.ZIP_DEFLATED,
    )
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(SpecError, match=r"holds 64\.\d MiB of data, over the limit of 4\.0 MiB"):
        load_checkpoint(bomb, max_param_bytes=1 << 20)


@pytest.mark.parametrize(
    ("limit", "value", "words"),
    [
        ("MAX_ENTRIES", 3, "entries, more than the 3 a checkpoint may hold"),
        ("MAX_PICKLE_BYTES", 100, "of pickled structure, more than the 100 bytes"),
        ("MAX_VALUES", 1000, "more than 1,000 values"),
    ],
)
def test_checkpoint_budgets_name_what_is_over(tmp_path, monkeypatch, limit, value, words):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    from .test_hostile_files import saved

    monkeypatch.setattr(f"archbuilder.builder.checkpoint.{limit}", value)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(saved(tmp_path, extra={"history": list(range(2000))}))
