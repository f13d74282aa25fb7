"""Limits that keep untrusted specs from exhausting the machine (shared by the builder and the CLI)."""

DEFAULT_MAX_PARAM_BYTES = 4 << 30  # refuse to allocate more than 4 GiB of float32 parameters
