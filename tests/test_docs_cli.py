"""docs/cli.md documents exactly the command line there is: every subcommand has a section, and
every option a subcommand takes appears in its section's table (and nothing it doesn't take)."""

from __future__ import annotations

import argparse
import re

from archbuilder.cli.main import _parser

from .test_docs import DOCS

COMMON = {"-h", "--help", "--debug", "--set", "--max-ops", "--allow-path"}  # under "Common options"
_OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _sections() -> dict[str, str]:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `archbuild (\w+)`\s*$", text, flags=re.MULTILINE)
    return {name: body.split("\n## ", 1)[0] for name, body in zip(parts[1::2], parts[2::2])}


def _documented_options(section: str) -> set[str]:
    """Options named in the first column of the section's option table."""
    found = set()
    for line in section.splitlines():
        if line.startswith("| `") and not line.startswith("| `PATTERN"):
            found.update(_OPTION.findall(line.split("|")[1]))
    return found


def test_every_subcommand_has_a_section_and_nothing_else_does():
    assert sorted(_sections()) == sorted(_subcommands())


def test_every_option_is_documented_in_its_section():
    sections = _sections()
    for name, parser in _subcommands().items():
        takes = {option for action in parser._actions for option in action.option_strings} - COMMON
        assert _documented_options(sections[name]) == takes, name


def test_the_overview_table_lists_every_subcommand():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    overview = text.split("## Common options", 1)[0]
    assert sorted(set(re.findall(r"^\| `archbuild (\w+)", overview, flags=re.MULTILINE))) == sorted(
        _subcommands()
    )


def test_common_options_are_documented():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    common = text.split("## Common options", 1)[1].split("\n## ", 1)[0]
    assert COMMON | {"--version"} <= _documented_options(common)
