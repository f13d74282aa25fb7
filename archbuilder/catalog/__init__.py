"""The shipped specs as a catalog: list them with their sizes, print one, start a spec from one.

timm's ``list_models`` and torchtune's ``tune ls`` / ``tune cp`` are the models: a name is
shipped data (``specs/*.yaml``, installed with the package), and the listing carries the
metadata an experiment needs to choose (parameters, MACs, input size). No torch is imported.
"""

from archbuilder.catalog.listing import ShippedSpec, list_specs
from archbuilder.catalog.starters import new_spec_text, shipped_spec_text

__all__ = ["ShippedSpec", "list_specs", "new_spec_text", "shipped_spec_text"]
