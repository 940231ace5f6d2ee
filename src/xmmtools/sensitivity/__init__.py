"""FLIX-style sensitivity: detection thresholds, upper limits and HEALPix sensitivity maps.

Carrera et al. 2007, A&A 469, 27 (FLIX); Kraft, Burrows & Nousek 1991, ApJ 374, 344 (upper
limits); Ruiz et al. 2022, MNRAS 511, 4265 (RapidXMM).  This module stays light (no scipy,
astropy or healpy imports): ``xmmtools info`` imports it to learn the stage's columns.
"""

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

SPEC = register(
    StageSpec(
        name="sensitivity",
        summary="detection thresholds and Bayesian upper limits at sky positions (FLIX-style)",
        needs=[Need("RA", "right ascension (deg)"), Need("DEC", "declination (deg)")],
    )
)
