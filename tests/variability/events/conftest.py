"""Fixtures of the event-list (EXOD, EXOD2) tests."""

from __future__ import annotations

import pytest
from helpers import DATA


@pytest.fixture(scope="module")
def m1_events():
    """Real HD 159176 field MOS1 clean events (0001730201) with their GTIs: ``(events, meta)``."""
    from xmmtools.variability.events.eventlist import read_events
    from xmmtools.variability.gti import read_gti

    ev = DATA / "variability" / "events" / "0001730201"
    return read_events(str(ev / "M1_clean.fits.gz"), gti=read_gti(str(ev / "M1_gti.fits")))
