"""Variability: short term (within an observation: light curves, event lists) and long term
(between epochs and catalogues, with upper limits).

Each half registers its own StageSpec from a light module (no scipy/astropy imports here).
"""

import importlib as _importlib

for _half in ("short_spec", "long_spec"):
    try:
        _importlib.import_module(f"xmmtools.variability.{_half}")
    except ModuleNotFoundError as _e:  # that half is not part of this version yet
        if _e.name != f"xmmtools.variability.{_half}":
            raise
