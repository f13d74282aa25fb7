"""Readers of files the user names: calibration arrays, checkpoints, and the shared reader
under them. Only regular files, never blocking, capped while reading and before allocating."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_a_small_file_read_under_a_large_cap_allocates_only_its_size(tmp_path):
    """read_regular's cap is a bound, not an allocation: a 2 GiB cap reads a 3-byte file in a
    process that may map only 1 GiB."""
    small = tmp_path / "small.txt"
    small.write_bytes(b"hi\n")
    code = "from archbuilder.files import read_regular; import sys; print(read_regular(sys.argv[1], max_bytes=2 << 30))"
    done = subprocess.run(
        ["prlimit", f"--as={1 << 30}", sys.executable, "-c", code, str(small)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout == "b'hi\\n'\n", done.stderr
