"""Registers the short-term variability stage (kept light: no scipy/astropy imports)."""

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

SPEC = register(
    StageSpec(
        name="variability-short",
        summary="light-curve constancy tests (chi2/Poisson/KS), Fvar, excess variance, shape features, blocks",
        needs=[
            Need("OBS_ID", "XMM-Newton observation id the light curves belong to", kind="any"),
            Need("SRC_NUM", optional=True),
            Need("RA", optional=True),
            Need("DEC", optional=True),
        ],
    )
)
