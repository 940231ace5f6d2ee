"""Fixtures of the crossmatch tests."""

from __future__ import annotations

import pytest
from helpers import COSMOS

from xmmtools import tables
from xmmtools.crossmatch.synthetic import counterparts


@pytest.fixture(scope="module")
def cosmos_counterparts():
    """Synthetic optical counterparts (40 000 deg^-2, seed 21) of the 300 COSMOS X-ray sources of
    tests/data/cosmos_xmm_head.fits, with their truth labels."""
    t = tables.read_table(COSMOS)
    ra, dec, pe = (tables.to_numpy(t[c]) for c in ("RA", "DEC", "pos_err"))
    return counterparts(ra, dec, pe, density_deg2=40000.0, seed=21)
