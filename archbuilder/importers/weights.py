"""An import's weights as torch tensors: the ``state_dict`` a spec's built model loads, and
the file ``torch.save`` writes of it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archbuilder.builder import build
from archbuilder.core.files import write_atomic
from archbuilder.spec import ArchSpec

__all__ = ["save_state_dict", "state_dict"]


def state_dict(spec: ArchSpec, weights: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``weights`` (``state_dict`` keys to arrays) as the ``state_dict`` of ``build(spec)``;
    ValueError naming the keys that do not match."""
    model = build(spec, max_param_bytes=1 << 40)
    state = model.state_dict()
    missing = [key for key in state if key not in weights and not key.endswith("num_batches_tracked")]
    unused = [key for key in weights if key not in state]
    if missing or unused:
        raise ValueError(f"weights do not match the spec: missing {missing[:5]}, unused {unused[:5]}")
    for key, value in weights.items():
        tensor = torch.tensor(np.array(value), dtype=state[key].dtype)
        if tuple(tensor.shape) != tuple(state[key].shape):
            tensor = tensor.reshape(state[key].shape)  # e.g. a Gemm's bias written as 1×N
        state[key] = tensor.clone()
    return state


def save_state_dict(state: dict[str, torch.Tensor], path: str | Path) -> Path:
    """``torch.save`` of ``state`` into ``path``, written atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_atomic(path, buffer.getvalue())
