"""xmmtools: value-added catalogues from XMM-Newton 4XMM source catalogues."""

#: the package version (pyproject.toml reads it from here; a literal, so that importing
#: xmmtools does not import importlib.metadata, 0.05 s, on every command)
__version__ = "0.1.0"

__all__ = ["__version__"]
