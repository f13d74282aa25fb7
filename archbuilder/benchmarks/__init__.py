"""Timing a spec's model against its torchvision twin and a stored reference (``archbuild
bench``): above the builder and the weights interop, which both serve it."""
