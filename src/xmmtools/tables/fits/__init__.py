"""FITS binary tables: :mod:`~xmmtools.tables.fits.header` (cards read and written without
astropy), :mod:`~xmmtools.tables.fits.reader` and :mod:`~xmmtools.tables.fits.writer`."""
