"""Import existing networks as specs: Caffe ``.prototxt``, ONNX ``.onnx`` and torch modules.

:func:`import_model` reads a file, :func:`import_module` traces a module; both give an
:class:`ImportResult` (the spec, its weights, where it came from). What cannot be imported is
raised as one :class:`ImportFailure` listing every unsupported op with its name and reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.core.extras import importing
from archbuilder.core.formats import FORMATS_BY_USE, extensions, format_of
from archbuilder.importers.caffe_files import attach_caffemodel, caffe_file
from archbuilder.importers.graph import ImportFailure, Unsupported
from archbuilder.importers.pipeline import finish
from archbuilder.importers.result import IMPORTER_VERSION, ImportResult

if TYPE_CHECKING:
    import torch

__all__ = [
    "FORMATS",
    "IMPORTER_VERSION",
    "ImportFailure",
    "ImportResult",
    "Unsupported",
    "import_model",
    "import_module",
]

FORMATS = FORMATS_BY_USE["import"]


def import_model(
    path: str | Path,
    *,
    partial: bool = False,
    input_shape: tuple[int, int, int] | None = None,
    phase: str = "TRAIN",
    name: str | None = None,
    caffemodel: str | Path | None = None,
    allowed_roots: Iterable[str | Path] = (),
) -> ImportResult:
    """Import a Caffe ``.prototxt`` or an ``.onnx`` file as a spec.

    ``partial`` imports up to the first unsupported op instead of failing; ``input_shape``
    (C, H, W) replaces the file's (required where it writes none); ``phase`` picks the Caffe
    layers whose ``include``/``exclude`` rules name it; ``name`` replaces the model name;
    ``caffemodel`` (with a prototxt) is Caffe's binary weights file, read into the result's
    weights; ``allowed_roots`` are folders, besides the ``.onnx`` file's own, where its
    external data may be.
    """
    path = Path(path)
    kind = format_of(path, "import")
    if kind is None:
        raise ImportFailure(
            str(path),
            [
                Unsupported(
                    "(file)",
                    path.suffix or "-",
                    f"unknown format; give one of {', '.join(extensions('import'))}",
                )
            ],
        )
    if kind == "caffe":
        graph, default_name, raw = caffe_file(path, phase, input_shape, partial)
        if caffemodel is not None:
            attach_caffemodel(graph, Path(caffemodel))
    elif caffemodel is not None:
        raise ImportFailure(str(caffemodel), [Unsupported("(file)", "-", "weights for a .prototxt only")])
    else:
        from archbuilder.importers.onnx_graph import onnx_file

        graph, default_name, raw = onnx_file(
            path, allowed_roots=allowed_roots, input_shape=input_shape, partial=partial
        )
    digest = hashlib.sha256(raw).hexdigest()
    name = name or default_name or path.stem
    return finish(graph, source=str(path), sha256=digest, format=kind, name=name, partial=partial)


def import_module(
    module: torch.nn.Module,
    example_input: torch.Tensor,
    *,
    partial: bool = False,
    aux_loss_weight: float = 0.3,
    name: str | None = None,
) -> ImportResult:
    """Trace ``module`` with torch.fx on ``example_input`` (N×C×H×W) and import it as a spec,
    its weights included. Extra outputs (a module's aux logits in training mode) become aux
    heads with ``aux_loss_weight``."""
    with importing("archbuilder.import_module"):
        from archbuilder.importers.torch_module import module_graph

    graph, digest = module_graph(module, example_input, aux_loss_weight=aux_loss_weight, partial=partial)
    label = type(module).__name__
    return finish(
        graph, source=f"<{label} module>", sha256=digest, format="torch", name=name or label, partial=partial
    )
