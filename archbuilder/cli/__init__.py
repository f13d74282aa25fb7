"""``archbuild``: a thin command line over the public Python API.

:mod:`archbuilder.cli.main` wires the parser and maps errors to exit codes; each other module
is one group of subcommands and registers its own arguments. Exit codes: 0 success, 1 invalid
spec (or an output that cannot be produced), 2 usage error or a missing optional package (one
line naming the extra to install), 130 interrupted. A bad spec never prints a traceback
unless ``--debug`` is given.
"""

from archbuilder.cli.main import main

__all__ = ["main"]
