"""``features_only`` models: the stem and blocks up to the last feature map asked for."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from archbuilder.analysis.features import FeatureInfo

__all__ = ["FeatureModel"]


class FeatureModel(nn.Module):
    """A backbone whose ``forward`` returns the feature maps of ``feature_info``, in its order.

    Children are the spec's top-level entries by name, as in the full model, so its
    ``state_dict`` keys are a subset of the full model's.
    """

    def __init__(self, body: Sequence[tuple[str, nn.Module]], feature_info: FeatureInfo):
        super().__init__()
        for name, module in body:
            self.add_module(name, module)
        self.body_names = tuple(name for name, _ in body)
        self.feature_info = feature_info
        self._outputs = tuple(feature_info.names())
        self._wanted = frozenset(self._outputs)

    def forward(self, x: Tensor) -> list[Tensor]:
        found: dict[str, Tensor] = {}
        for name in self.body_names:
            x = self._modules[name](x)
            if name in self._wanted:
                found[name] = x
        return [found[name] for name in self._outputs]
