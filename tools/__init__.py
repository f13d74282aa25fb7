"""The repository's maintainer tools (not shipped with archbuilder): ``python -m tools.docs``."""
