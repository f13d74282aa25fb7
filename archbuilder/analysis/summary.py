"""Model summary from the IR: per top-level layer/block output shape, parameters and MACs.

MACs (multiply-accumulates) count k_h·k_w·(C_in/groups)·C_out·H_out·W_out per convolution
and in·out per linear layer; pooling, normalization, activations and merges count 0.
No weights are allocated and torch is not imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbuilder.ir import IR, as_ir
from archbuilder.ir.memory import activation_bytes, training_activation_bytes
from archbuilder.spec import ArchSpec

__all__ = ["Summary", "SummaryRow", "summarize"]


@dataclass(frozen=True)
class SummaryRow:
    name: str
    kind: str
    section: str
    out_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """What ``archbuild summary`` prints. Totals include the aux heads; ``inference_*`` don't."""

    model: str
    input_shape: tuple[int, ...]
    rows: tuple[SummaryRow, ...]
    activation_bytes: int = 0  # peak float32 activations of one eval forward pass, per sample
    training_activation_bytes: int = 0  # every op's output, kept for backward, per sample

    @property
    def params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.rows)

    @property
    def inference_params(self) -> int:
        return sum(row.params for row in self.rows if row.section != "aux")

    @property
    def inference_macs(self) -> int:
        return sum(row.macs for row in self.rows if row.section != "aux")

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form: totals, totals without aux heads, one entry per top-level entry."""
        return {
            "model": self.model,
            "input": list(self.input_shape),
            "total": {"params": self.params, "macs": self.macs},
            "without_aux": {"params": self.inference_params, "macs": self.inference_macs},
            "activation_bytes": {"eval": self.activation_bytes, "training": self.training_activation_bytes},
            "blocks": [
                {
                    "name": row.name,
                    "kind": row.kind,
                    "section": row.section,
                    "out_shape": list(row.out_shape),
                    "params": row.params,
                    "macs": row.macs,
                }
                for row in self.rows
            ],
        }

    def table(self) -> str:
        """A fixed-width table like torchinfo's."""
        header = ("Layer", "Kind", "Output shape", "Params", "MACs")
        body = [
            (
                row.name if row.section != "aux" else f"{row.name} (aux)",
                row.kind,
                "×".join(map(str, row.out_shape)),
                f"{row.params:,}",
                f"{row.macs:,}",
            )
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(5)]
        rule = "─" * (sum(widths) + 8)

        def line(cells: tuple[str, ...]) -> str:
            left = "  ".join(cell.ljust(width) for cell, width in zip(cells[:3], widths))
            right = "  ".join(cell.rjust(width) for cell, width in zip(cells[3:], widths[3:]))
            return f"{left}  {right}"

        input_shape = "×".join(map(str, self.input_shape))
        return "\n".join(
            [
                f"{self.model}  (input {input_shape})",
                rule,
                line(header),
                rule,
                *(line(cells) for cells in body),
                rule,
                f"Total params:           {self.params:>15,}",
                f"Total MACs:             {self.macs:>15,}  ({self.macs / 1e9:.2f} G)",
                f"Without aux heads:      {self.inference_params:>15,} params, "
                f"{self.inference_macs:,} MACs ({self.inference_macs / 1e9:.2f} G)",
                f"Params size (float32):  {self.params * 4 / 2**20:>12.2f} MiB",
                f"Activations (float32):  {self.activation_bytes / 2**20:>12.2f} MiB per sample at peak "
                f"(eval; training keeps {self.training_activation_bytes / 2**20:.2f} MiB)",
            ]
        )


def summarize(spec: ArchSpec | IR | str | Path) -> Summary:
    """Summary of a spec (loaded, a path, YAML text) or of its IR."""
    ir = as_ir(spec)
    rows = []
    for entry in ir.top_level:
        ops = [ir.op(op_id) for op_id in entry.ops]
        rows.append(
            SummaryRow(
                entry.name,
                entry.kind,
                entry.section,
                ir.op(entry.output).shape,
                sum(op.params for op in ops),
                sum(op.macs for op in ops),
            )
        )
    peak, kept = activation_bytes(ir), training_activation_bytes(ir)
    return Summary(ir.name, ir.input_shape, tuple(rows), peak, kept)
