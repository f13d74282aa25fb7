"""What changed between two specs, entry by entry: ``diff(a, b)`` and ``archbuild diff``.

An entry is one layer as written in ``stem``, ``blocks``, ``head`` or ``aux_heads`` (a
``repeat`` is one entry, all its copies counted). Entries are matched by name, then a renamed
entry by equal content, then by position in its section; what is left is added or removed.
Each changed field is reported with its old and new value and where each side wrote it.
Parameters, MACs and output shapes come from the two IRs, so an entry whose text did not
change but whose numbers did (an inherited default, a wider input) is reported as
``affected``. No torch.
"""

from archbuilder.diff.match import diff
from archbuilder.diff.result import EntryDiff, FieldChange, SpecDiff

__all__ = ["EntryDiff", "FieldChange", "SpecDiff", "diff"]
