"""``xmmtools sensitivity`` and ``xmmtools sensitivity-map``: thin wiring of the library."""

from __future__ import annotations

import json
import os

import click

from xmmtools.cli import common_options, engine_options, output_options, pass_settings
from xmmtools.cli.options import renamed

_TEXT_LISTS = (".txt", ".lis", ".list", ".dat", ".pos", ".coo")


def _method_options(f):
    f = click.option(
        "--ecf",
        "ecf",
        multiple=True,
        metavar="VALUE|CAM=VALUE",
        help="Override ECFs (1e11 counts cm2/erg): one value for all cameras or PN=6.85 etc.",
    )(f)
    f = click.option(
        "--nh",
        type=click.FloatRange(min=0),
        default=3e20,
        show_default=True,
        help="Absorbing column (cm-2) of the power-law spectrum for the ECFs.",
    )(f)
    f = click.option(
        "--gamma",
        type=float,
        default=1.7,
        show_default=True,
        help="Photon index of the power-law spectrum for the ECFs.",
    )(f)
    f = click.option(
        "--integer-threshold",
        is_flag=True,
        help="Threshold = smallest integer N (default: the continuous root, as esensmap).",
    )(f)
    f = click.option(
        "--bkg-annulus",
        nargs=2,
        type=click.FloatRange(min=0),
        default=(60.0, 120.0),
        show_default=True,
        metavar="IN OUT",
        help="Background annulus radii (arcsec).",
    )(f)
    f = click.option(
        "--band",
        "bands",
        multiple=True,
        metavar="N|LO-HI",
        help="4XMM band number or keV range (repeatable); default: every band with exposure maps.",
    )(f)
    f = click.option(
        "--aperture-radius",
        "radius",
        **renamed("sensitivity", "--aperture-radius"),
        type=click.FloatRange(min=1, max=600),
        default=30.0,
        show_default=True,
        help="Aperture radius (arcsec).",
    )(f)
    f = click.option(
        "--likelihood",
        type=click.FloatRange(min=0.1, max=200),
        default=10.0,
        show_default=True,
        help="Detection likelihood L = -ln P of the threshold (10 = 4XMM).",
    )(f)
    f = click.option(
        "--obs",
        "obs_dir",
        metavar="DIR",
        help="Folder of observation products (exposure maps, counts images, optional "
        "background maps and masks), searched recursively.",
    )(f)
    return f


@click.command("sensitivity")
@click.argument("input")
@click.option(
    "-o",
    "--output",
    help="Output table (format from extension) or '-'. Default: INPUT stem + _sensitivity beside the input.",
)
@click.option(
    "--from-catalog",
    "from_catalogue",
    **renamed("sensitivity", "--from-catalog"),
    is_flag=True,
    help="Catalogue-only mode: thresholds at each detection of a 4XMM detection catalogue "
    "from its EXP/BG/OFFAX columns (no maps).",
)
@_method_options
@click.option(
    "--cl",
    default="3s",
    show_default=True,
    metavar="1s|2s|3s|P",
    help="Confidence level of FLUX_UL: 1s, 2s, 3s (0.6827/0.9545/0.9973) or a probability "
    "(default 3s, as the upper limits STONKS uses, Quintin et al. 2024).",
)
@click.option(
    "--gauss-above-80",
    is_flag=True,
    help="Use the Gaussian upper limit N - B + z sqrt(N) where N >= 80 counts (SAS eupper-like).",
)
@click.option(
    "--fov",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    help="Field radius (arcmin): zero exposure within it is a chip gap, beyond it outside the field.",
)
@click.option(
    "--download",
    is_flag=True,
    help="Fetch the PPS products of the observations within --fov of the positions from the "
    "XMM-Newton Science Archive (astroquery) into --cache-dir; excludes --obs.",
)
@click.option(
    "--obslist",
    metavar="FILE",
    help="With --download: table of OBS_ID, RA_PNT, DEC_PNT (default: the input's own columns).",
)
@click.option(
    "--cache-dir",
    "cache_dir",
    **renamed("sensitivity", "--cache-dir"),
    metavar="DIR",
    help="With --download: product cache (default $XDG_CACHE_HOME/xmmtools/xsa or ~/.cache/xmmtools/xsa).",
)
@output_options
@engine_options
@common_options
@pass_settings
def sensitivity(
    s,
    input,
    output,
    from_catalogue,
    obs_dir,
    likelihood,
    radius,
    bands,
    bkg_annulus,
    integer_threshold,
    gamma,
    nh,
    ecf,
    cl,
    gauss_above_80,
    fov,
    download,
    obslist,
    cache_dir,
    overwrite,
    column_map,
    chunk_size,
    engine="local",
    scheduler=None,
    workers=None,
):
    """Detection thresholds, upper limits and encircled fluxes at sky positions (FLIX-style).

    INPUT is a table with RA/DEC (any format, or '-') or a text list with one position per
    line (degrees or sexagesimal, optional name).  One row per position x observation x camera
    x band whose image holds the position, plus a stacked row per position and band
    (OBS_ID ALL); positions outside every observation get a COVERED=false row.

    \b
    Examples:
      xmmtools sensitivity positions.txt --obs products/ --band 0.5-2 -o limits.parquet
      xmmtools sensitivity 4XMM_DR14cat.fits --from-catalog --band 8 -o thresholds.fits
      xmmtools sensitivity positions.txt --download --obslist obs.csv --cache-dir xsa/ -o limits.parquet
    """
    from xmmtools import engine as engines
    from xmmtools.columns import parse_column_map
    from xmmtools.errors import DataError

    user_map = parse_column_map(column_map)
    eng = engines.from_options(engine, scheduler, workers)
    if eng.dask and not from_catalogue:
        raise DataError("--engine dask runs sensitivity's catalogue mode (--from-catalogue); positions run locally")
    if from_catalogue:
        return _catalogue_mode(input, output, bands, likelihood, radius, overwrite, user_map, chunk_size, s, eng)
    if obs_dir and download:
        raise click.UsageError("--obs DIR and --download exclude each other (downloads go to --cache-dir DIR)")
    if (obslist or cache_dir) and not download:
        raise click.UsageError("--obslist and --cache-dir go with --download")
    if not obs_dir and not download:
        raise click.UsageError("give --obs DIR (observation products), --download, or --from-catalog")
    settings = _settings(
        likelihood,
        radius,
        integer_threshold,
        gamma,
        nh,
        ecf,
        fov,
        _parse_cl(cl),
        "kbn+gauss" if gauss_above_80 else "kbn",
    )
    _positions_mode(
        input,
        output,
        obs_dir,
        bands,
        bkg_annulus,
        settings,
        overwrite,
        user_map,
        chunk_size,
        s,
        download=(obslist, cache_dir) if download else None,
    )


@click.command("sensitivity-map")
@click.option(
    "-o", "--output", help="Sparse map table (.parquet, .fits ...). Default: <obs folder>_sensmap_o<ORDER>.parquet."
)
@click.option(
    "--order",
    type=click.IntRange(0, 29),
    default=16,
    show_default=True,
    help='HEALPix order (nested); 16 = 3.2" cells as RapidXMM.',
)
@_method_options
@click.option("--moc", "moc_path", metavar="FILE", help="Also write the coverage MOC (NUNIQ table).")
@click.option("--plot", "plot_path", metavar="PNG", help="Also write a quick-look figure of the first band.")
@click.option(
    "--download",
    is_flag=True,
    help="Fetch the PPS products of --obs-id/--obslist observations from the XMM-Newton Science "
    "Archive (astroquery) into --cache-dir; excludes --obs.",
)
@click.option(
    "--obs-id",
    "obs_ids",
    multiple=True,
    metavar="ID[,ID...]",
    help="With --download: observation(s) to map (10-digit OBS_ID; repeatable).",
)
@click.option("--obslist", metavar="FILE", help="With --download: map every OBS_ID of this table.")
@click.option(
    "--cache-dir",
    "cache_dir",
    **renamed("sensitivity", "--cache-dir"),
    metavar="DIR",
    help="With --download: product cache (default $XDG_CACHE_HOME/xmmtools/xsa or ~/.cache/xmmtools/xsa).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@engine_options
@common_options
@pass_settings
def sensitivity_map(
    s,
    output,
    order,
    obs_dir,
    likelihood,
    radius,
    bands,
    bkg_annulus,
    integer_threshold,
    gamma,
    nh,
    ecf,
    moc_path,
    plot_path,
    download,
    obs_ids,
    obslist,
    cache_dir,
    overwrite,
    engine="local",
    scheduler=None,
    workers=None,
):
    """HEALPix (nested) map of the detection-threshold flux per band, as a sparse table.

    Columns NPIX and THRESH_FLUX_<band> (best over observations and cameras); only covered
    cells are written.

    \b
    Examples:
      xmmtools sensitivity-map --obs products/ --order 16 -o sensmap.parquet --plot sensmap.png
      xmmtools sensitivity-map --download --obs-id 0201903501 --cache-dir xsa/ --order 14
    """
    import numpy as np

    from xmmtools import tables
    from xmmtools.sensitivity import maps as hmaps

    if obs_dir and download:
        raise click.UsageError("--obs DIR and --download exclude each other (downloads go to --cache-dir DIR)")
    if (obs_ids or obslist or cache_dir) and not download:
        raise click.UsageError("--obs-id, --obslist and --cache-dir go with --download")
    if download and not (obs_ids or obslist):
        raise click.UsageError("--download needs the observations: --obs-id ID or --obslist FILE")
    if not obs_dir and not download:
        raise click.UsageError("give --obs DIR (observation products) or --download --obs-id ID")
    settings = _settings(likelihood, radius, integer_threshold, gamma, nh, ecf, 15.0, 0.9545, "kbn")
    ids = _map_obs_ids(obs_ids, obslist) if download else []
    name = (
        os.path.basename(os.path.normpath(obs_dir))
        if obs_dir
        else ("xsa_" + ("_".join(ids) if len(ids) <= 3 else f"{len(ids)}obs"))
    )
    output = output or f"{name}_sensmap_o{order}.parquet"
    tables.check_outputs({"-o": output, "--moc": moc_path, "--plot": plot_path}, overwrite=overwrite, plain=("--plot",))
    extra = {}
    if download:
        from xmmtools.sensitivity.archive import default_cache, fetch_products

        cache = cache_dir or default_cache()
        fetched = fetch_products(ids, cache, log=None if s.quiet else (lambda m: click.echo(m, err=True)))
        obs_dir, extra["archive"] = fetched.folders, fetched.provenance(cache)
    products, pmaps = _load_products(obs_dir, bands, bkg_annulus, settings, s)
    from xmmtools import engine as engines

    eng = engines.from_options(engine, scheduler, workers)
    with engines.session(eng) as client:
        mapper = (lambda fn, items: engines.map_ordered(client, fn, items)) if client is not None else map
        result = hmaps.sensitivity_map(pmaps, order, settings, mapper=mapper)
    cells, values = hmaps.merge_bands(result)
    table = _map_table(cells, values, order, settings)
    files = _product_files(products)
    params = {
        "order": order,
        "likelihood": likelihood,
        "radius": radius,
        "bands": list(bands) or None,
        "gamma": gamma,
        "nh": nh,
        "bkg_annulus": list(bkg_annulus),
    }
    if download:
        params.update(download=True, obs_ids=ids)
    step = tables.Provenance("sensitivity-map", params, files, extra)
    tables.write_table(table, output, provenance=step, overwrite=overwrite)
    if moc_path:
        tables.write_table(
            _moc_table(hmaps.moc_uniq(cells, order), order), moc_path, provenance=step, overwrite=overwrite
        )
    if plot_path and cells.size:
        label = next(iter(values))
        ok = np.isfinite(values[label])
        hmaps.plot_map(
            cells[ok],
            values[label][ok],
            order,
            plot_path,
            f"threshold flux L={likelihood:g}, band {label} keV, order {order}",
        )
    if not s.quiet:
        click.echo(f"wrote {cells.size} HEALPix cells (order {order}, bands {', '.join(values)}) to {output}", err=True)


# ----------------------------------------------------------------------------------------


def _map_obs_ids(obs_ids, obslist) -> list[str]:
    """--obs-id values (comma lists allowed) and every OBS_ID of --obslist, checked, in order."""
    from xmmtools import tables
    from xmmtools.errors import DataError
    from xmmtools.sensitivity.archive import pointings

    ids = [i.strip() for item in obs_ids for i in item.split(",") if i.strip()]
    for i in ids:
        if not (len(i) == 10 and i.isdigit()):
            raise DataError(f"--obs-id {i!r} is not a 10-digit XMM-Newton OBS_ID")
    if obslist:  # only its OBS_ID column is needed here (no pointing selection)
        ids += pointings(tables.read_table(obslist), obslist, need_pointing=False)[0]
    return list(dict.fromkeys(ids))


def _parse_cl(text: str) -> float:
    from xmmtools.sensitivity.upper_limits import SIGMA_CL

    t = text.strip().lower()
    if t in ("1s", "2s", "3s"):
        return SIGMA_CL[int(t[0])]
    try:
        v = float(t)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use 1s, 2s, 3s or a probability such as 0.9", param_hint="--cl") from None
    if not 0 < v < 1:
        raise click.BadParameter(f"{text!r}: a confidence level is between 0 and 1", param_hint="--cl")
    return v


def _settings(likelihood, radius, integer_threshold, gamma, nh, ecf, fov, cl, method):
    from xmmtools.sensitivity.positions import Settings

    return Settings(
        likelihood=likelihood,
        cl=cl,
        radius_arcsec=radius,
        integer_threshold=integer_threshold,
        ul_method=method,
        gamma=gamma,
        nh=nh,
        fov_arcmin=fov,
        ecf=_parse_ecf(ecf),
    )


def _parse_ecf(items) -> tuple[tuple[str, float], ...]:
    from xmmtools.columns import _CAMERA_ALIASES

    out = []
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            cam, _, val = part.rpartition("=")
            cam = _CAMERA_ALIASES.get(cam.strip().upper(), cam.strip().upper()) if cam else "*"
            try:
                v = float(val)
            except ValueError:
                v = -1.0
            if cam not in ("*", "PN", "M1", "M2") or not v > 0:
                raise click.BadParameter(f"{part!r}: want a positive ECF, or PN=/M1=/M2= one", param_hint="--ecf")
            out.append((cam, v))
    return tuple(out)


def _bands(bands):
    from xmmtools.columns import band_range

    return [band_range(b) for b in bands] or None


def _load_products(obs_dir, bands, annulus, settings, s):
    from xmmtools.sensitivity.io import discover_products, read_image
    from xmmtools.sensitivity.products import build_maps

    if isinstance(obs_dir, list):  # --download: one folder per observation
        from xmmtools.sensitivity.archive import discover

        products = discover(obs_dir, _bands(bands))
    else:
        products = discover_products(obs_dir, _bands(bands))
    for p in products:  # fail before the slow part when a product has no ECF
        settings.ecf_for(p.instrument, p.band, p.filter)
    pmaps = []
    for p in products:
        pmaps.append(
            build_maps(
                p,
                read_image(p.expmap),
                read_image(p.image) if p.image else None,
                read_image(p.bkgmap) if p.bkgmap else None,
                read_image(p.mask) if p.mask else None,
                radius_arcsec=settings.radius_arcsec,
                annulus_arcsec=tuple(annulus),
            )
        )
    if not s.quiet:
        obs = sorted({p.obs_id for p in products})
        click.echo(
            f"{len(products)} products: {len(obs)} observations, bands "
            f"{', '.join(sorted({f'{b[0]:g}-{b[1]:g}' for b in (p.band for p in products)}))} keV",
            err=True,
        )
    return products, pmaps


def _product_files(products) -> list[str]:
    return [f for p in products for f in (p.expmap, p.image, p.bkgmap, p.mask) if f]


def _read_positions(input, user_map):
    """(table of the input's columns, ra, dec): a text list or any table with RA/DEC."""
    import numpy as np
    import pyarrow as pa

    from xmmtools import tables
    from xmmtools.sensitivity import SPEC
    from xmmtools.sensitivity.io import read_position_list

    if input != tables.STDIO and input.lower().endswith(_TEXT_LISTS):
        ra, dec, names = read_position_list(input)
        return pa.table({"NAME": names, "RA": ra, "DEC": dec}), ra, dec
    t = tables.read_table(input)
    mapping = SPEC.check(t.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(t.schema))
    ra = tables.to_numpy(t.column(mapping["RA"]), float)
    dec = tables.to_numpy(t.column(mapping["DEC"]), float)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        from xmmtools.errors import DataError

        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"{input}: row {k} has no valid position (RA {ra[k]}, DEC {dec[k]})")
    return t, np.mod(ra, 360.0), dec


def _positions_mode(
    input, output, obs_dir, bands, annulus, settings, overwrite, user_map, chunk_size, s, download=None
):
    import numpy as np
    import pyarrow as pa

    from xmmtools import tables
    from xmmtools.sensitivity.positions import DESCRIPTIONS, evaluate_positions
    from xmmtools.stage_io import default_output

    if output is None:
        if input != tables.STDIO and input.lower().endswith(_TEXT_LISTS):
            output = os.path.splitext(input)[0] + "_sensitivity.parquet"
        else:
            output = default_output(input, "sensitivity")
    tables.check_output(output, inputs=[input], overwrite=overwrite)
    intable, ra, dec = _read_positions(input, user_map)
    extra = {}
    if download:
        from xmmtools.sensitivity.archive import products_for

        obs_dir, extra["archive"] = products_for(
            intable,
            ra,
            dec,
            input,
            download[0],
            download[1],
            settings.fov_arcmin,
            log=None if s.quiet else (lambda m: click.echo(m, err=True)),
        )
    products, pmaps = _load_products(obs_dir, bands, annulus, settings, s)
    ours = set(DESCRIPTIONS)
    renamed = [f"{n}_INPUT" if n in ours else n for n in intable.schema.names]
    intable = intable.rename_columns(renamed)
    have = set(intable.schema.names)
    params = {
        "obs": obs_dir,
        "likelihood": settings.likelihood,
        "cl": settings.cl,
        "radius": settings.radius_arcsec,
        "bands": list(bands) or None,
        "integer_threshold": settings.integer_threshold,
        "ul_method": settings.ul_method,
        "gamma": settings.gamma,
        "nh": settings.nh,
        "ecf": dict(settings.ecf) or None,
        "bkg_annulus": list(annulus),
        "fov": settings.fov_arcmin,
    }
    if download:
        params.update(obs=None, download=True, obslist=download[0], cache=extra["archive"]["cache"])
    inputs = [input, *_product_files(products)]
    step = tables.Provenance("sensitivity", params, inputs, extra)
    step_chunk = chunk_size or 20_000

    def chunks():
        for start in range(0, len(ra), step_chunk):
            sl = slice(start, min(start + step_chunk, len(ra)))
            pos, new = evaluate_positions(ra[sl], dec[sl], pmaps, settings)
            base = intable.slice(sl.start, sl.stop - sl.start).take(pa.array(pos))
            front = []
            if "NAME" not in have:
                front.append(
                    tables.NewColumn(
                        "NAME",
                        np.asarray(pos + start).astype(str),
                        "",
                        "row number of the position in the input (0-based)",
                    )
                )
            if "RA" not in have:
                front.append(tables.NewColumn("RA", ra[sl][pos], "deg", "right ascension of the position"))
            if "DEC" not in have:
                front.append(tables.NewColumn("DEC", dec[sl][pos], "deg", "declination of the position"))
            yield tables.add_columns(base, front + new)

    writer = tables.write_chunks(chunks(), output, provenance=step, overwrite=overwrite, inputs=inputs)
    if output != "-" and not s.quiet:
        click.echo(f"wrote {writer.rows} rows for {len(ra)} positions to {output}", err=True)


def _catalogue_mode(input, output, bands, likelihood, radius, overwrite, user_map, chunk_size, s, eng=None):
    from xmmtools.sensitivity.catalogue import DEFAULT_BANDS, catalogue_spec, catalogue_thresholds
    from xmmtools.stage_io import run_rowwise

    if bands:
        try:
            nums = tuple(int(b) for b in bands)
        except ValueError:
            raise click.BadParameter("catalogue mode takes 4XMM band numbers (1-5, 8)", param_hint="--band") from None
    else:
        nums = DEFAULT_BANDS
    spec = catalogue_spec(nums)
    out, rows = run_rowwise(
        input,
        output,
        spec=spec,
        compute=lambda cols: catalogue_thresholds(cols, nums, likelihood, radius),
        parameters={"mode": "catalogue", "bands": list(nums), "likelihood": likelihood, "radius": radius},
        user_map=user_map,
        overwrite=overwrite,
        chunk_rows=chunk_size,
        progress=s.progress,
        engine=eng,
    )
    if out != "-" and not s.quiet:
        click.echo(f"wrote {rows} rows to {out}", err=True)


def _map_table(cells, values, order, settings):
    import numpy as np
    import pyarrow as pa

    from xmmtools.tables import HEADER_KEY, field_meta

    fields = [pa.field("NPIX", pa.int64(), metadata=field_meta("", f"nested HEALPix cell index at order {order}"))]
    arrays = [pa.array(cells.astype(np.int64))]
    for label, v in values.items():
        name = "THRESH_FLUX_" + (label if "-" not in label else label.replace(".", "P").replace("-", "_") + "KEV")
        fields.append(
            pa.field(
                name,
                pa.float32(),
                metadata=field_meta(
                    "erg/cm2/s",
                    f"best detection-threshold flux (L={settings.likelihood:g}) in band {label} keV; NaN = not covered",
                ),
            )
        )
        arrays.append(pa.array(v))
    nside = 2**order
    cards = [
        ["PIXTYPE", "HEALPIX", "HEALPix sparse map"],
        ["ORDERING", "NESTED", ""],
        ["INDXSCHM", "EXPLICIT", "cells listed in NPIX"],
        ["OBJECT", "PARTIAL", ""],
        ["NSIDE", nside, ""],
        ["ORDER", order, "HEALPix order"],
        ["COORDSYS", "C", "equatorial"],
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={HEADER_KEY: json.dumps(cards).encode()}))


def _moc_table(uniq, order):
    import pyarrow as pa

    from xmmtools.tables import HEADER_KEY, field_meta

    cards = [
        ["PIXTYPE", "HEALPIX", ""],
        ["ORDERING", "NUNIQ", ""],
        ["COORDSYS", "C", ""],
        ["MOCORDER", order, "deepest order"],
        ["MOCVERS", "1.1", ""],
        ["MOCDIM", "SPACE", ""],
    ]
    schema = pa.schema(
        [pa.field("UNIQ", pa.int64(), metadata=field_meta("", "NUNIQ = 4 * 4^order + ipix (nested)"))],
        metadata={HEADER_KEY: json.dumps(cards).encode()},
    )
    return pa.Table.from_arrays([pa.array(uniq)], schema=schema)
