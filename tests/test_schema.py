"""The JSON Schema of spec files: shipped and current, accepts what load_spec accepts, rejects typos.

The loader is the independent truth here: specs it accepts (the shipped ones, the complete
examples in docs/) must validate, and mistakes it reports as unknown keys or kinds must fail.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import archbuilder
from archbuilder.spec.schema import SHIPPED_SCHEMA, json_schema, schema_text

from .conftest import GOOGLENET, ROOT, SPECS
from .test_docs import complete_specs

SCHEMA_LINE = "# yaml-language-server: $schema=../schema/archbuilder.schema.json"
REGENERATE = "archbuild schema -o schema/archbuilder.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator, data) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(data)
    ]


def googlenet() -> dict:
    return yaml.safe_load(GOOGLENET.read_text())


def test_shipped_schema_is_current():
    assert SHIPPED_SCHEMA == ROOT / "schema" / "archbuilder.schema.json"
    assert SHIPPED_SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        f"schema/ is stale: run `{REGENERATE}`"
    )


def test_schema_command_prints_it(tmp_path):
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "archbuilder", "schema", *args], capture_output=True, text=True, cwd=ROOT
    )
    result = run()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json_schema()
    assert run("-o", str(tmp_path / "s.json")).returncode == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == result.stdout
    failed = run("-o", str(tmp_path / "missing" / "s.json"))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_name_the_schema_and_validate(validator, path: Path):
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE, f"{path.name}: the first line should be {SCHEMA_LINE!r}"
    assert (path.parent / SCHEMA_LINE.split("=", 1)[1]).resolve() == SHIPPED_SCHEMA
    assert errors(validator, yaml.safe_load(text)) == []
    # the line is a comment to archbuilder: the spec loads the same without it
    without = "\n".join(text.splitlines()[1:]) + "\n"
    assert archbuilder.load_spec(without) == archbuilder.load_spec(path)


@pytest.mark.parametrize("block", complete_specs(), ids=lambda block: block.id)
def test_documented_specs_validate(validator, block):
    assert errors(validator, yaml.safe_load(block.text)) == []


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        (lambda d: d.update(num_clases=10), "num_clases"),  # top level
        (lambda d: d["blocks"][0].update(ch1x11=64), "blocks.0"),  # in an inception block
        (lambda d: d["stem"][0].update(activaton="relu"), "stem.0"),  # in a conv
        (lambda d: d["defaults"]["conv"].update(nrom="batch"), "defaults.conv"),  # conv settings
        (lambda d: d["blocks"][0].update(pool={"kind": "max", "kernal": 3}), "blocks.0"),  # nested pool
        (lambda d: d["input"].update(depth=3), "input"),
        (lambda d: d["aux_heads"][0].update(weight=0.3), "aux_heads.0"),
        (lambda d: d["stem"][1].update(kind="maxpol"), "stem.1"),  # unknown kind
        (lambda d: d["stem"][0].update(kernel=[3, 3, 3]), "stem.0"),  # not a size
        (lambda d: d.update(extends=None), "extends"),  # a null extends is no file
    ],
)
def test_mistakes_fail(validator, patch, where):
    data = googlenet()
    patch(data)
    found = errors(validator, data)
    assert found, "the schema accepted a spec with a mistake"
    assert any(line.startswith(f"{where}:") or line.startswith(":") for line in found), found
    with pytest.raises(archbuilder.SpecError):  # and the loader agrees it is a mistake
        archbuilder.load_spec(yaml.safe_dump(data, sort_keys=False))


def test_required_keys(validator):
    data = googlenet()
    del data["input"]
    assert errors(validator, data) == [": 'input' is a required property"]


def test_a_patch_over_a_base(validator, tmp_path):
    """A spec with extends may leave keys out, null them, and patch entries by name."""
    text = (
        "extends: googlenet.yaml\n"
        "num_classes: 10\n"
        "input: {height: 96, width: 96}\n"
        "blocks: {3a: {ch1x1: 32, pool: {kind: avg}}, pool3: null}\n"
        "aux_heads: {aux2: null}\n"
    )
    assert errors(validator, yaml.safe_load(text)) == []
    spec = tmp_path / "child.yaml"
    spec.write_text(text)
    (tmp_path / "googlenet.yaml").write_text(GOOGLENET.read_text())
    assert archbuilder.load_spec(spec).blocks[0].ch1x1 == 32  # the loader takes it too
    for typo in ("blocks: {3a: {ch1x11: 32}}", "num_clases: 10", "input: {depth: 3}"):
        assert errors(validator, yaml.safe_load(f"extends: googlenet.yaml\n{typo}\n")), typo


def test_every_field_has_a_description():
    """Descriptions are the editor's hover text and the Meaning column of docs/spec.md."""
    missing = [
        f"{model}.{field}"
        for model, body in json_schema()["definitions"].items()
        if not model.endswith("Patch")
        for field, prop in body.get("properties", {}).items()
        if field != "kind" and not prop.get("description")
    ]
    assert missing == [], (
        "add a docstring under each of these fields of archbuilder/spec/ (it becomes the description), "
        f"then run `{REGENERATE}` and `python -m tools.docs spec`"
    )


def test_schema_does_not_change_the_models():
    """Generating the schema twice gives the same result: nothing is shared and mutated."""
    first = json_schema()
    snapshot = copy.deepcopy(first)
    assert json_schema() == snapshot == first
