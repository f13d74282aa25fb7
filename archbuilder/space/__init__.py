"""Search spaces: a spec whose values may be decisions, and the valid specs it holds.

Any value may be ``{choice: [...]}`` or ``{range: {low, high, step, log}}`` (named with
``id`` and reused with ``{same: id}``); ``constraints:`` bounds parameters, MACs and
activation memory. :func:`load_space` reads one; :class:`SearchSpace` samples, lists and
suggests (to Optuna) candidates, each checked before anything is built. No torch here.
"""

from archbuilder.space.check import OptionReport
from archbuilder.space.constraints import Constraints, parse_amount
from archbuilder.space.decisions import Decision
from archbuilder.space.evaluate import Candidate
from archbuilder.space.sampling import Estimate, Sample, SampleStats
from archbuilder.space.space import SearchSpace, load_space

__all__ = [
    "Candidate",
    "Constraints",
    "Decision",
    "Estimate",
    "OptionReport",
    "Sample",
    "SampleStats",
    "SearchSpace",
    "load_space",
    "parse_amount",
]
