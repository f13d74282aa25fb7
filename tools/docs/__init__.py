"""The docs' generated regions and pages, and the one command that writes or checks them:

    python -m tools.docs                 # regenerate every target
    python -m tools.docs --check         # exit 1 naming every stale region; writes nothing
    python -m tools.docs spec variants   # only these targets
    python -m tools.docs --list          # the targets and what each writes

``registry`` lists the targets; each target module renders its own regions (``regions`` is
their one marker format, ``markdown`` their one table and number formatter) and ``run``
checks or writes what they render.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
TEMPLATES = ROOT / "tools" / "templates"
RESULTS = ROOT / "bench" / "results"
