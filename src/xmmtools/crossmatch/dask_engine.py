"""Crossmatch on the Dask engine (``--engine dask``): the candidate search of every primary runs
as an LSDB crossmatch algorithm of our own, partition by partition, on a Dask cluster.

Why this split.  What grows with the counterpart catalogue (10^9 Gaia rows, more for the Legacy
Surveys) is finding, for every primary, the counterparts within the radius; what a primary's
probabilities need is then only its candidates and *global* numbers (the catalogues' row counts
and sky areas).  So:

1. the primaries become an LSDB catalogue (partitioned by HEALPix like the counterparts);
2. :class:`CandidateSearch`, an ``AbstractCrossmatchAlgorithm``, calls the local engine's
   :func:`~xmmtools.crossmatch.positional.search_around` on each aligned pair of partitions;
   the counterpart side comes with its *margin cache* (rows within the margin threshold outside
   the pixel, threshold >= the radius), so a pair across a partition border is found exactly
   once: by the partition that holds the primary;
3. the candidates (a few per primary) come back to the driver, de-duplicated and in the
   catalogue's order, with every column the output needs; positional (nearest/all) and Bayesian
   matching then run on them with the local code (:func:`~xmmtools.crossmatch.bayes.match`) and
   the catalogue's full row count and stated area, exactly as the local engine does: the same
   pairs, P_ANY and P_I.

The driver holds the primaries and their candidates, never the counterpart catalogue.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from xmmtools import tables
from xmmtools.crossmatch.hats_source import HatsNear, path_of
from xmmtools.crossmatch.positional import search_around
from xmmtools.errors import DataError

#: primaries per partition of the primaries' LSDB catalogue
PRIMARY_PARTITION_ROWS = 200_000
#: counterpart rows per partition when a counterpart *file* is partitioned in memory
COUNTERPART_PARTITION_ROWS = 1_000_000
#: finest HEALPix order of in-memory partitions (13.7 arcmin pixels; the partitioner histograms
#: 12*4^order cells, 4 s at order 10)
HIGHEST_ORDER = 8
ROW = "_XMM_ROW"
CROW = "_XMM_CROW"
SEP = "_XMM_SEP"


def _lsdb():
    try:
        import lsdb
        from lsdb.core.crossmatch.abstract_crossmatch_algorithm import AbstractCrossmatchAlgorithm
    except ImportError:
        raise DataError("--engine dask needs LSDB: pip install 'xmmtools[scale]' (lsdb, hats, dask)") from None
    return lsdb, AbstractCrossmatchAlgorithm


def candidate_search(radius_arcsec: float):
    """An instance of our LSDB crossmatch algorithm: every (primary, counterpart) pair within
    ``radius_arcsec`` (the local engine's :func:`search_around`), with the separation."""
    _, base = _lsdb()

    class CandidateSearch(base):  # type: ignore[misc,valid-type]
        extra_columns = pd.DataFrame({SEP: pd.Series(dtype=pd.ArrowDtype(pa.float64()))})

        def __init__(self, radius: float):
            self.radius = radius

        def validate(self, left, right):
            super().validate(left, right)
            margin = getattr(right, "margin", None)
            threshold = margin.hc_structure.catalog_info.margin_threshold if margin is not None else None
            if threshold is None or threshold < self.radius:
                have = "no margin cache" if threshold is None else f"a margin cache of {threshold:g} arcsec"
                raise DataError(
                    f"the counterpart HATS catalogue has {have}; pairs across partition borders within "
                    f"{self.radius:g} arcsec would be lost. Rebuild it with "
                    f"`xmmtools hats import TABLE -o hats:DIR --margin-arcsec {max(self.radius, 30):g}`"
                )

        def perform_crossmatch(self, args):
            li, ri = args.left_catalog_info, args.right_catalog_info
            left, right = args.left_df, args.right_df
            pairs = search_around(
                left[li.ra_column].to_numpy(dtype=float),
                left[li.dec_column].to_numpy(dtype=float),
                right[ri.ra_column].to_numpy(dtype=float),
                right[ri.dec_column].to_numpy(dtype=float),
                self.radius,
            )
            extra = pd.DataFrame({SEP: pd.array(pairs.sep, dtype=pd.ArrowDtype(pa.float64()))})  # type: ignore[call-overload]  # pandas-stubs lack ArrowDtype here
            return pairs.idx1.astype(np.int64), pairs.idx2.astype(np.int64), extra

    return CandidateSearch(radius_arcsec)


def _primaries(lsdb, ra: np.ndarray, dec: np.ndarray, partition_rows: int):
    df = pd.DataFrame({ROW: np.arange(len(ra), dtype=np.int64), "ra": ra, "dec": dec})
    return lsdb.from_dataframe(
        df,
        ra_column="ra",
        dec_column="dec",
        lowest_order=0,
        highest_order=HIGHEST_ORDER,
        partition_rows=partition_rows,
        margin_threshold=None,
        should_generate_moc=False,
    )


def _quiet():
    warnings.simplefilter("ignore")
    for name in ("lsdb", "hats", "distributed"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _pairs(lsdb, ra, dec, right, radius: float, keep: Sequence[str], partition_rows: int) -> pd.DataFrame:
    """The candidate pairs: ``ROW`` (primary row), ``SEP`` and the counterpart's ``keep``
    columns, computed on the cluster."""
    left = _primaries(lsdb, ra, dec, partition_rows)
    xm = left.crossmatch(right, algorithm=candidate_search(radius), suffixes=("_L", "_R"), suffix_method="all_columns")
    want = [f"{ROW}_L", SEP, *[f"{c}_R" for c in keep]]
    df = xm[want].compute(progress_bar=False)
    df.columns = [ROW, SEP, *keep]
    return df.reset_index(drop=True)


@dataclass
class FileNear:
    table: pa.Table  # the counterpart rows near the primaries (the columns read)
    rows: np.ndarray  # their file row numbers
    total_rows: int
    sample: tuple[np.ndarray, np.ndarray]  # every position, for the footprint estimate
    pairs: int


def load_near_hats(
    src: str,
    ra: np.ndarray,
    dec: np.ndarray,
    radius_arcsec: float,
    needed_for: Callable[[Sequence[str]], Sequence[str]],
    *,
    where: str,
    partition_rows: int = PRIMARY_PARTITION_ROWS,
) -> HatsNear:
    """The HATS catalogue's candidates of the primaries (every row within the radius of one),
    found on the cluster; the same rows, columns and order as the local engine's
    :func:`~xmmtools.crossmatch.hats_source.load_near` keeps for matching."""
    from xmmtools.crossmatch.hats_source import _area

    lsdb, _ = _lsdb()
    path = path_of(src)
    if not os.path.exists(path):
        raise DataError(f"{where}: no such HATS catalogue directory {path}")
    with warnings.catch_warnings():
        _quiet()
        try:
            whole = lsdb.open_catalog(path)
        except Exception as e:  # hats raises assorted errors on a directory that is not a catalogue
            raise DataError(f"{where}: not a readable HATS catalogue ({' '.join(str(e).split())[:160]})") from None
        info = whole.hc_structure.catalog_info
        ra_c, dec_c = info.ra_column, info.dec_column
        needed = list(needed_for(list(whole.all_columns)))
        columns = list(dict.fromkeys([*whole.columns, ra_c, dec_c, *needed]))
        right = lsdb.read_hats(path, columns=columns)
        index = right.hc_structure.catalog_info.healpix_column or "_healpix_29"
        keep = list(dict.fromkeys([*columns, index])) if index in right.columns else columns
        df = _pairs(lsdb, ra, dec, right, radius_arcsec, keep, partition_rows)
    # one row per counterpart, in HEALPix order as the partitions are read
    sort_by = [c for c in (index, ra_c, dec_c) if c in df.columns]
    uniq = df.drop_duplicates(subset=sort_by if index in df.columns else columns).sort_values(sort_by, kind="stable")
    uniq = uniq[columns]
    table = pa.Table.from_pandas(uniq, preserve_index=False)
    area, note = _area(whole)
    return HatsNear(table, int(info.total_rows), area, note, ra_c, dec_c)


def load_near_file(
    src: str,
    columns: Sequence[str],
    ra_col: str,
    dec_col: str,
    ra: np.ndarray,
    dec: np.ndarray,
    radius_arcsec: float,
    *,
    partition_rows: int = PRIMARY_PARTITION_ROWS,
    counterpart_partition_rows: int = COUNTERPART_PARTITION_ROWS,
    progress: bool = False,
) -> FileNear:
    """A counterpart *file* partitioned in memory (HEALPix partitions with a margin of the
    radius), its candidates found on the cluster.  For catalogues larger than memory, make a
    HATS copy once (``xmmtools hats import``)."""
    lsdb, _ = _lsdb()
    t = tables.read_table(src, list(dict.fromkeys([*columns, ra_col, dec_col])), progress=progress)
    n = t.num_rows
    df = t.to_pandas(types_mapper=pd.ArrowDtype)
    df[CROW] = np.arange(n, dtype=np.int64)
    cra = tables.to_numpy(t.column(ra_col), float)
    cdec = tables.to_numpy(t.column(dec_col), float)
    df["_xmm_ra"], df["_xmm_dec"] = cra, cdec
    with warnings.catch_warnings():
        _quiet()
        right = lsdb.from_dataframe(
            df[[CROW, "_xmm_ra", "_xmm_dec"]],
            ra_column="_xmm_ra",
            dec_column="_xmm_dec",
            lowest_order=0,
            highest_order=HIGHEST_ORDER,
            partition_rows=counterpart_partition_rows,
            margin_threshold=float(radius_arcsec) * 1.05 + 0.1,
            should_generate_moc=False,
        )
        pairs = _pairs(lsdb, ra, dec, right, radius_arcsec, [CROW], partition_rows)
    rows = np.unique(pairs[CROW].to_numpy(dtype=np.int64))
    return FileNear(t.take(tables.arrow_from_numpy(rows)), rows, n, (cra, cdec), len(pairs))
