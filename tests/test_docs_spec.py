"""docs/spec.md: its generated field tables are current, complete, and say what the models do.

The tables are written by `python -m tools.docs spec` (tools/docs/spec_reference.py) from the JSON Schema of the spec
models. The first tests fail when they are stale or a model has no table; the others read
the tables as a reader would and check them against pydantic's own view of the models and
against the hand-written tables they replaced.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tools.docs import regions, spec_reference
from tools.docs.target import Tree

from .conftest import ROOT

DOC = ROOT / "docs" / "spec.md"
REGENERATE = "python -m tools.docs spec"


@pytest.fixture(scope="module")
def tool():
    return spec_reference


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def table_rows(text: str) -> list[dict[str, str]]:
    """The body rows of the markdown table in ``text``, by column; an escaped ``\\|`` stays in its cell."""
    lines = [line.strip().strip("|") for line in text.splitlines() if line.startswith("|")]
    header, *body = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)] for line in lines]
    return [dict(zip(header, cells)) for cells in body if not all(set(cell) <= set(":-") for cell in cells)]


@pytest.fixture(scope="module")
def rows(tool, doc) -> dict[str, dict[str, dict[str, str]]]:
    """Each generated table's rows, by model and field name."""
    return {
        model: {row["Field"].strip("`"): row for row in table_rows(part)}
        for model, part in tool.tables(doc).items()
    }


def test_generated_parts_are_current(tool, doc):
    assert tool.render(doc) == doc, f"docs/spec.md is stale: run `{REGENERATE}`"


def test_every_model_has_a_table(tool, doc):
    missing = [model for model in tool.documented_models() if model not in tool.tables(doc)]
    assert missing == [], (
        f"docs/spec.md has no field table for {', '.join(missing)}: add the lines "
        f"'{tool.begin_line(missing[0])}' and '{tool.end_line(missing[0])}' where the model is explained, "
        f"then run `{REGENERATE}`"
    )


def test_the_tool_refuses_a_page_without_a_models_table(tool, tmp_path):
    """What the test above asks, the tool asks too: it names the model and writes nothing."""
    (tmp_path / "docs").mkdir()
    page = tmp_path / tool.DOC
    table = f"{tool.begin_line('Scale')}\n{tool.tables(DOC.read_text(encoding='utf-8'))['Scale']}"
    page.write_text(DOC.read_text(encoding="utf-8").replace(f"{table}{tool.end_line('Scale')}\n", ""))
    with pytest.raises(ValueError, match=r"no field table for Scale: add the lines"):
        tool.outputs(Tree(root=tmp_path))


def test_render_needs_the_kinds_markers(tool):
    with pytest.raises(ValueError, match="needs the lines"):
        tool.render("# no markers\n")


def test_a_table_for_no_model_is_an_error(tool):
    kinds = f"{regions.begin_line(tool.KINDS)}\n{regions.end_line(tool.KINDS)}\n"
    text = f"{kinds}{tool.begin_line('Convolution')}\n{tool.end_line('Convolution')}\n"
    with pytest.raises(ValueError, match="Convolution, which is no spec model"):
        tool.render(text)


def test_every_layer_kind_is_listed(tool, doc):
    from archbuilder.spec.blocks import LAYER_TYPES

    listed = doc.split(regions.begin_line(tool.KINDS))[1].split(regions.end_line(tool.KINDS))[0]
    kinds = [cls.model_fields["kind"].annotation.__args__[0] for cls in LAYER_TYPES]
    assert [kind for kind in kinds if f"| `{kind}` |" not in listed] == []


def test_required_and_defaults_are_the_models(tool, rows):
    """What a table says is required or the default is what pydantic does with the field."""
    models = tool.models()
    checked = 0
    for model, fields in rows.items():
        for name, row in fields.items():
            if name == "extends":
                continue
            field = next(f for key, f in models[model].model_fields.items() if (f.alias or key) == name)
            if row["Default"] == "required":
                assert field.is_required(), (model, name)
            elif row["Default"] == "unset":
                assert not field.is_required() and field.default is None, (model, name)
            else:
                default = (
                    field.default.model_dump(exclude_none=True)
                    if hasattr(field.default, "model_dump")
                    else field.default
                )
                assert yaml.safe_load(row["Default"].strip("`")) == default, (model, name)
            checked += 1
    assert checked > 60


@pytest.mark.parametrize(
    ("model", "field", "type_", "default"),
    [  # rows of the hand-written tables these replaced
        ("Conv", "padding", "padding", "`0`"),
        ("Conv", "kernel", "size", "required"),
        ("MaxPool", "stride", "size", "unset"),
        ("Inception", "kernel_5x5", "integer 1–15", "`5`"),
        ("Inception", "ch3x3red", "width", "unset"),
        ("Dropout", "p", "float, 0 ≤ x < 1", "required"),
        ("LocalResponseNorm", "alpha", "float ≥ 0", "`0.0001`"),
        ("BatchNorm", "eps", "float, 0 < x < 1", "`1.0e-5`"),
        ("Scale", "divisor", "integer 1–256", "`8`"),
        ("AuxHead", "loss_weight", "float, 0 ≤ x ≤ 1,000", "required"),
        ("Branches", "merge", "`concat` \\| `add` \\| `mul`", "`concat`"),
        ("ArchSpec", "blocks", "list of layers, at least one", "required"),
        ("ArchSpec", "name", "string, 1–200 characters", "required"),
        ("Linear", "out", "width or `num_classes`", "required"),
        ("InceptionPool", "padding", "integer or pair", "unset"),
    ],
)
def test_rows_read_as_written_by_hand(rows, model, field, type_, default):
    row = rows[model][field]
    assert (row["Type"], row["Default"]) == (type_, default)
    assert row["Meaning"], "every field has a description"
