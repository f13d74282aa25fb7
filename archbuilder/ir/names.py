"""Names of layers, branches and aux heads: defaults for unnamed ones, and collision checks.

Names become torch module names, so they must be unique in their scope and must not
shadow an attribute of the built module.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RESERVED_NAMES", "assign_names"]

RESERVED_NAMES = frozenset(
    [
        "T_destination",
        "add_module",
        "append",
        "extend",
        "insert",
        "pop",
        "aux_names",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
        "input",
        "spec",
        "merge",
        "aux_weights",
        "compute_loss",
        "features",
        "reset_classifier",
        "feature_info",
    ]
)


def assign_names(
    explicit: Sequence[str | None], kinds: Sequence[str], *, positional: bool = False
) -> list[str]:
    """Names for one scope: explicit names as written, others ``{kind}{n}``.

    ``n`` counts the unnamed entries of each kind (1, 2, ...), or with ``positional`` is the
    entry's 1-based position (branches: ``branch2`` is the second branch). Auto names skip
    every explicit name, so they never collide with one; duplicates among explicit names are
    left for the caller to report.
    """
    taken = {name for name in explicit if name is not None}
    counts: dict[str, int] = {}
    names = []
    for position, (name, kind) in enumerate(zip(explicit, kinds), start=1):
        if name is None:
            number = position if positional else counts.get(kind, 0) + 1
            while f"{kind}{number}" in taken:
                number += 1
            counts[kind] = number
            name = f"{kind}{number}"
            taken.add(name)
        names.append(name)
    return names
