"""Photometric redshifts with TPZ-style random forests (Carrasco Kind & Brunner 2013, MNRAS 432, 1483).

``xmmtools photoz CAT`` gives each extragalactic counterpart a redshift PDF and point estimates
from a shipped model (``galaxy``: SDSS Main Galaxy Sample; ``agn``: SDSS DR3 quasars) or one
trained with ``xmmtools photoz train``.  The model's attribute columns (e.g. u, g, r, i, z) are
resolved when the command runs, so the stage spec only names the optional CLASS column.

Kept light on purpose: ``xmmtools info`` imports this module (no scikit-learn/scipy here).
"""

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

SPEC = register(StageSpec(
    name="photoz",
    summary="TPZ photometric redshift PDFs (Z_PHOT, Z_PDF, ...) from optical/IR magnitudes",
    needs=[Need("CLASS", "source class from classify (only extragalactic rows are processed)",
                kind="any", optional=True)],
))
