"""Fixtures of the sensitivity tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def poslist(tmp_path) -> Path:
    """A FLIX-style position list: a chip gap and the centre of 0201903501 (sexagesimal), and a
    position no observation covers."""
    p = tmp_path / "pos.txt"
    p.write_text("# FLIX-style list\n149.50 -11.00 gap\n09:58:21.6, -11:05:24 centre\n10.0 5.0 far\n")
    return p
