"""Variability: short term (within an observation: light curves, event lists) and long term
(between epochs and catalogues, with upper limits).

Layout: ``short/`` (light curves: reading, statistics, table/catalogue mode, plots, the
``short`` command), ``events/`` (event lists: EXOD and EXOD2 searches, the ``events`` command),
``long/`` (epochs, statistics, alerts, run, band factors, the ``long`` command), ``gti`` (good
time intervals, shared by light curves and event lists) and ``cli`` (the ``variability`` group).

Each half registers its own StageSpec from a light module (no scipy/astropy imports here).
"""

import importlib as _importlib

for _half in ("short.spec", "long.spec"):
    _mod = f"xmmtools.variability.{_half}"
    try:
        _importlib.import_module(_mod)
    except ModuleNotFoundError as _e:  # that half is not part of this version yet
        if _e.name not in (_mod, _mod.rsplit(".", 1)[0]):
            raise
