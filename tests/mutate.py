"""Text-level mutations of spec files, for fuzzing the loader (used by tests and bench/fuzz_specs.py)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

KEY = re.compile(r"(?P<indent>[ -]*)(?P<key>[A-Za-z_0-9]+):")
SCALAR = re.compile(r"(?<=: )[^,{}\[\]\n#]+")
BAD_SCALARS = [
    "-1",
    "0",
    "1e309",
    "-.inf",
    ".nan",
    "1000000000000",
    "-0.0",
    "x",
    "~",
    "[]",
    "{}",
    "[3, x]",
    "true",
    "'3'",
    "3.5",
    "num_classes",
    "same",
    "\U0001d6fc",
    "0x1F",
    "&a 1",
    "*nope",
]
TAGS = ["!!python/object/apply:os.system ['true'] ", "!!python/name:os.system ", "!custom ", "!!binary aGk= "]
BOMB = "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(9))


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def typo_in_key(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if KEY.match(line)]
    i = rng.choice(candidates)
    match = KEY.match(lines[i])
    key = match.group("key")
    j = rng.randrange(len(key))
    mutated = rng.choice(
        [key[:j] + key[j + 1 :], key[:j] + rng.choice("aex_") + key[j:], key.upper(), key + "s"]
    )
    lines[i] = lines[i][: match.start("key")] + (mutated or "k") + lines[i][match.end("key") :]
    return "".join(lines)


def bad_scalar(text: str, rng: random.Random) -> str:
    matches = list(SCALAR.finditer(text))
    match = rng.choice(matches)
    return text[: match.start()] + rng.choice(BAD_SCALARS) + text[match.end() :]


def delete_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "".join(lines)


def duplicate_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "".join(lines)


def inject_tag(text: str, rng: random.Random) -> str:
    matches = list(SCALAR.finditer(text))
    match = rng.choice(matches)
    return text[: match.start()] + rng.choice(TAGS) + text[match.start() :]


def truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text))]


def bomb(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if line.startswith("description:")] or [0]
    i = rng.choice(candidates)
    lines[i] = "description: *x8\n"
    return BOMB + "".join(lines)


def shift_indent(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = (" " * rng.choice([1, 2, 4])) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
    return "".join(lines)


def swap_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


TEXT_MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "typo in a key": typo_in_key,
    "bad scalar": bad_scalar,
    "deleted line": delete_line,
    "duplicated line": duplicate_line,
    "injected tag": inject_tag,
    "truncation": truncate,
    "alias bomb": bomb,
    "indentation": shift_indent,
    "swapped lines": swap_lines,
}


def binary_bytes(data: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(data))
    return data[:position] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[position:]


def mutants(text: str, count: int, seed: int = 0):
    """``count`` (operator name, mutated bytes) pairs, reproducible from ``seed``."""
    rng = random.Random(seed)
    names = [*TEXT_MUTATIONS, "binary bytes"]
    for _ in range(count):
        name = rng.choice(names)
        if name == "binary bytes":
            yield name, binary_bytes(text.encode(), rng)
            continue
        mutated = text
        for _ in range(rng.randint(1, 2)):
            mutated = TEXT_MUTATIONS[name](mutated, rng) if mutated.strip() else mutated
        yield name, mutated.encode()
