"""Registers the long-term variability stage (kept light: no scipy/astropy imports)."""

from xmmtools.columns import Need
from xmmtools.stages import StageSpec, register

SPEC = register(
    StageSpec(
        name="variability-long",
        summary="long-term flux ratios between epochs and missions, upper limits, STONKS alerts",
        needs=[
            Need("SRCID", "unique-source id grouping the detections of a source", kind="any", optional=True),
            Need("RA", optional=True),
            Need("DEC", optional=True),
            Need("POSERR", optional=True),
        ],
        any_of=[
            [Need("EP_8_FLUX"), Need("SC_EP_8_FLUX"), Need("FLUX", "flux in erg/cm2/s (band from --input-catalog)")],
            [Need("MJD_START"), Need("MJD", "epoch time (MJD)"), Need("DATE_OBS", "epoch date (ISO)")],
        ],
    )
)
