"""xmmtools: value-added catalogues from XMM-Newton 4XMM source catalogues."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("xmmtools")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
