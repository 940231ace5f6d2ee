"""Crossmatch stage: positional (KD-tree) and NWAY-style Bayesian counterparts.

Kept light: only the stage spec is registered here; the science lives in positional.py,
bayes.py, priors.py and poserr.py, the command in cli.py.
"""

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

SPEC = register(
    StageSpec(
        name="crossmatch",
        summary="counterparts in other catalogues: nearest, all pairs, or NWAY-style Bayesian (P_ANY, P_I)",
        needs=(Need("RA", "right ascension (deg)"), Need("DEC", "declination (deg)")),
    )
)
