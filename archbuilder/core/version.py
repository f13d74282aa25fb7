"""archbuilder's version, for what it writes (import headers, ``--version``): a module of its
own so that the packages below the top level can name it without importing the top level."""

__all__ = ["__version__"]

__version__ = "0.1.0"
