"""Sampled candidates as spec files whose header traces them back to their space.

The header is YAML comments (:func:`archbuilder.core.escaping.yaml_header`): the space file and
its SHA-256, the seed, the candidate's counts and every decision taken. Each value is written
as JSON with non-ASCII escaped, so no value (a name, an option, a file name) can end a comment
line and start YAML of its own, and :func:`read_header` reads each back exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archbuilder.core.escaping import yaml_header
from archbuilder.core.files import shown_path, write_into
from archbuilder.space.evaluate import Candidate
from archbuilder.space.sampling import Sample

__all__ = ["read_header", "sample_text", "write_sample"]

_MARK = "# archbuilder: candidate"
_DECODER = json.JSONDecoder()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def sample_text(
    candidate: Candidate,
    *,
    space: str,
    sha256: str | None,
    seed: int | None,
    index: int,
    by: str = "sample",
    overrides: list[str] | None = None,
) -> str:
    """The spec file of one candidate: header, then the spec as ``to_yaml`` writes it.
    ``by`` names what picked it (``sample``, or a study's trial); ``overrides`` are the
    space's ``--set`` values, recorded when there are any. ``space`` is written as
    :func:`~archbuilder.core.files.shown_path` shows it: never an absolute path of this machine."""
    lines = [
        f"{_MARK[2:]} {index} of a search space, picked by {_json(by)}; the decisions below rebuild it",
        f"space: {_json(shown_path(space))}",
        f"space_sha256: {_json(sha256)}",
        *([f"overrides: {_json(list(overrides))}"] if overrides else []),
        f"seed: {_json(seed)}",
        f"params: {_json(candidate.params)}",
        f"macs: {_json(candidate.macs)}",
        "decisions:",
        *(f"  {_json(name)}: {_json(value)}" for name, value in candidate.choices.items()),
    ]
    return yaml_header(lines) + candidate.spec.to_yaml()


def read_header(text: str) -> dict[str, Any]:
    """The header of a sampled spec file as data: ``space``, ``space_sha256``, ``seed``,
    ``params``, ``macs`` and ``decisions`` (name → value). Empty when the file has none."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_MARK):
        return {}
    header: dict[str, Any] = {"decisions": {}}
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            name, end = _DECODER.raw_decode(line, 4)  # a name may hold ": " itself
            header["decisions"][name] = json.loads(line[end:].removeprefix(": "))
        elif ": " in line:
            key, _, value = line[2:].partition(": ")
            header[key] = json.loads(value)
    return header


def write_sample(
    sample: Sample,
    folder: str | Path,
    *,
    space: str,
    stem: str,
    sha256: str | None,
    seed: int,
    overrides: list[str] | None = None,
) -> list[Path]:
    """One spec file per candidate (``{stem}-001.yaml`` ...) and ``samples.json`` listing them
    with their decisions and counts, written with :func:`archbuilder.core.files.write_into`: each
    file atomically, and none over a symbolic link, a folder or a special file in ``folder``."""
    width = max(3, len(str(len(sample))))
    files: dict[str, bytes] = {}
    listing = []
    for index, candidate in enumerate(sample, start=1):
        name = f"{stem}-{index:0{width}d}.yaml"
        text = sample_text(candidate, space=space, sha256=sha256, seed=seed, index=index, overrides=overrides)
        files[name] = text.encode()
        listing.append(
            {
                "file": name,
                "params": candidate.params,
                "macs": candidate.macs,
                "decisions": candidate.choices,
            }
        )
    manifest = {
        "space": shown_path(space),
        "space_sha256": sha256,
        "overrides": list(overrides or []),
        "seed": seed,
        "candidates": listing,
    }
    files["samples.json"] = (json.dumps(manifest, indent=2, ensure_ascii=True) + "\n").encode()
    return write_into(folder, files)[:-1]
