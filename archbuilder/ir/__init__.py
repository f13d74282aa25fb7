"""The graph IR: ops with inferred shapes, parameters and MACs, grouped by block."""

from archbuilder.ir.graph import IR, AuxHeadIR, Op, Parallel, Sequence, Shape, TopLevel
from archbuilder.ir.lower import lower

__all__ = ["IR", "AuxHeadIR", "Op", "Parallel", "Sequence", "Shape", "TopLevel", "lower"]
