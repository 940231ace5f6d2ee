"""``xmmtools sensitivity --download``: observation choice, XSA cache, retries and errors — offline.

The archive is faked below astroquery's public ``download_data``: ``XMMNewtonClass._request``
(the HEAD request) and ``_download_file`` (the GET) are replaced, so astroquery's own link,
header parsing and file naming run.  The fake answers from ``data/sensitivity/xsa_listing.csv``
(PPS file names -> the shipped real maps; see that folder's README) with a tar laid out as the
archive's (``<obsid>/pps/<name>``), and with a text page when nothing matches, as the archive does.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tarfile
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
from helpers import DATA, run_main

from xmmtools import tables
from xmmtools.errors import DataError
from xmmtools.sensitivity import archive

pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")

SENS = DATA / "sensitivity"
OBS = SENS / "obs"
CENSUS = OBS / "census.csv"  # real XGA obslist: 0201903501, 0201901401, 0404910601
LISTING = SENS / "xsa_listing.csv"


class _Response:
    def __init__(self, status, headers):
        self.status_code = status
        self.headers = headers

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code} Client Error", response=self)


class FakeXSA:
    """The XSA's AIO servlet as astroquery sees it, serving the recorded listing."""

    def __init__(self, failures=0, status=200):
        with open(LISTING) as f:
            self.listing = list(csv.DictReader(f))
        self.failures = failures  # transient ConnectionErrors before answering
        self.status = status
        self.requests = []  # every HEAD or GET: (method, obsno, name)

    def _query(self, url):
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert q["level"] == "PPS" and q["extension"] == "FTZ"
        rows = [r for r in self.listing if r["obs_id"] == q["obsno"] and r["archive_name"][17:23] == q["name"]]
        return q, rows

    def request(self, client, method, url, **kw):
        q, rows = self._query(url)
        self.requests.append((method, q["obsno"], q["name"]))
        if self.failures:
            self.failures -= 1
            raise requests.ConnectionError(
                "HTTPSConnectionPool(host='nxsa.esac.esa.int', port=443): Max retries "
                "exceeded (Failed to establish a new connection: [Errno 101] "
                "Network is unreachable)"
            )
        if self.status != 200:
            return _Response(self.status, {"Content-Type": "text/html"})
        if not rows:
            return _Response(200, {"Content-Type": "text/html;charset=UTF-8"})
        return _Response(
            200,
            {"Content-Type": "application/x-tar", "Content-Disposition": f'attachment; filename="{q["obsno"]}.tar"'},
        )

    def download(self, client, url, local_filepath, **kw):
        q, rows = self._query(url)
        self.requests.append(("GET", q["obsno"], q["name"]))
        with tarfile.open(local_filepath, "w") as tar:
            for r in rows:
                data = _ftz(SENS / r["shipped_file"], int(r["pimin_ev"]), int(r["pimax_ev"]))
                info = tarfile.TarInfo(f"{q['obsno']}/pps/{r['archive_name']}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

    @property
    def downloads(self):
        return [r for r in self.requests if r[0] == "GET"]


def _ftz(path, pimin, pimax) -> bytes:
    """The shipped map as a PPS FTZ: gzip FITS, its band in PIMIN/PIMAX (eV) since the SAS maps
    carry it only in their file names."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdul[0].header["PIMIN"] = pimin
        hdul[0].header["PIMAX"] = pimax
        buf = io.BytesIO()
        hdul.writeto(buf)
    return gzip.compress(buf.getvalue())


@pytest.fixture
def xsa(monkeypatch):
    from astroquery.esa.xmm_newton import XMMNewtonClass

    fake = FakeXSA()
    monkeypatch.setattr(
        XMMNewtonClass, "_request", lambda self, method, url, **kw: fake.request(self, method, url, **kw)
    )
    monkeypatch.setattr(
        XMMNewtonClass, "_download_file", lambda self, url, local, **kw: fake.download(self, url, local, **kw)
    )
    sleeps = []
    monkeypatch.setattr(archive.time, "sleep", sleeps.append)
    fake.sleeps = sleeps
    return fake


def test_obslist_and_selection():
    ids, ra, dec = archive.read_obslist(str(CENSUS))
    assert ids == ["0201903501", "0201901401", "0404910601"]  # int64 column: leading zero restored
    near = archive.select_observations(np.array([149.5, 10.0]), np.array([-11.0, 5.0]), ids, ra, dec)
    assert near == ids  # the three pointings are 5.7' from (149.5, -11.0)
    assert archive.select_observations(np.array([10.0]), np.array([5.0]), ids, ra, dec) == []
    # 15' boundary: 14.9' north of 0201903501's pointing only, 15.1' selects none of them
    ra0, dec0 = ra[0], dec[0]
    assert "0201903501" in archive.select_observations(np.array([ra0]), np.array([dec0 + 14.9 / 60]), ids, ra, dec)
    assert archive.select_observations(np.array([ra0]), np.array([dec0 + 15.1 / 60]), ids[:1], ra[:1], dec[:1]) == []


def test_catalogue_obs_id_column_and_missing_columns():
    import pyarrow as pa

    t = pa.table({"RA": [149.5, 149.6], "DEC": [-11.0, -11.1], "OBS_ID": ["0201903501", "0201903501"]})
    assert archive.pointings(t, "cat.fits", need_pointing=False) == (["0201903501"], None, None)
    with pytest.raises(DataError, match="needs an OBS_ID column"):
        archive.pointings(pa.table({"RA": [1.0], "DEC": [2.0]}), "pos.txt", need_pointing=False)
    with pytest.raises(DataError, match="not a 10-digit"):
        archive.pointings(pa.table({"OBS_ID": ["abc"]}), "cat.fits", need_pointing=False)


def test_pps_names_get_band_and_role_for_discovery():
    assert archive._local_name("P0201903501M1S001EXPMAP2000.FTZ", {}) == "P0201903501M1S001EXPMAP2000_0.5-1keV.FTZ"
    assert archive._local_name("P0201903501PNS003IMAGE_8000.FTZ", {}) == "P0201903501PNS003IMAGE_8000_0.2-12keV.FTZ"
    assert archive._local_name("P0201903501PNS003DETMSK3000.FTZ", {}) == "P0201903501PNS003DETMSK3000_mask_1-2keV.FTZ"
    assert (
        archive._local_name("P0201903501M2S002BKGMAP4000.FTZ", {"PIMIN": 2000, "PIMAX": 4500})
        == "P0201903501M2S002BKGMAP4000.FTZ"
    )
    assert archive._local_name("P0201903501M2S002EXPMAP0000.FTZ", {}) is None  # no band: not kept


@pytest.mark.slow
def test_download_equals_obs_and_cache_is_reused(xsa, poslist, tmp_path, capsys):
    cache = tmp_path / "xsa"
    ref, dl, again = tmp_path / "ref.parquet", tmp_path / "dl.parquet", tmp_path / "again.parquet"
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "-o", ref], capsys)
    assert code == 0, err
    code, _, err = run_main(
        ["sensitivity", poslist, "--download", "--obslist", CENSUS, "--cache-dir", cache, "-o", dl], capsys
    )
    assert code == 0, err
    assert "3 of 3 observations" in err and "no EPIC exposure maps for 0404910601" in err
    # 2 observations x 4 PPS types asked + 0404910601's EXPMAP (none: its other types are not asked);
    # only EXPMAP/IMAGE_ of the two shipped observations exist
    assert len(xsa.requests) - len(xsa.downloads) == 9 and len(xsa.downloads) == 4
    assert sorted(p.name for p in (cache / "0201903501").glob("*.FTZ")) == sorted(
        r["archive_name"] for r in xsa.listing if r["obs_id"] == "0201903501"
    )
    _assert_same_rows(tables.read_table(str(ref)), tables.read_table(str(dl)))
    prov = tables.inspect_table(str(dl)).provenance[-1]
    assert prov["archive"]["service"].startswith("XMM-Newton Science Archive")
    assert prov["archive"]["observations"] == ["0201901401", "0201903501", "0404910601"]
    assert prov["archive"]["without_products"] == ["0404910601"]
    assert prov["archive"]["query_date"][:2] == "20" and prov["parameters"]["download"] is True
    assert any(i["name"] == "P0201903501PNS003EXPMAP4000.FTZ" for i in prov["inputs"])

    xsa.requests.clear()
    code, _, err = run_main(
        ["sensitivity", poslist, "--download", "--obslist", CENSUS, "--cache-dir", cache, "-o", again], capsys
    )
    assert code == 0, err
    assert xsa.requests == []  # everything (including "no products") came from the cache
    prov = tables.inspect_table(str(again)).provenance[-1]
    assert prov["archive"]["downloaded"] == [] and prov["archive"]["query_date"] is None
    _assert_same_rows(tables.read_table(str(ref)), tables.read_table(str(again)))


def _assert_same_rows(a, b):
    key = ("NAME", "OBS_ID", "INSTRUMENT", "BAND")
    assert a.schema.names == b.schema.names and a.num_rows == b.num_rows > 0
    ra = sorted(a.to_pylist(), key=lambda r: tuple(r[k] for k in key))
    rb = sorted(b.to_pylist(), key=lambda r: tuple(r[k] for k in key))
    for x, y in zip(ra, rb, strict=True):
        for col, v in x.items():
            w = y[col]
            if isinstance(v, float) and math.isnan(v):
                assert isinstance(w, float) and math.isnan(w), col
            else:
                assert v == w, (col, v, w)


def test_far_positions_select_nothing(xsa, tmp_path, capsys):
    far = tmp_path / "far.txt"
    far.write_text("10.0 5.0 far\n")
    code, _, err = run_main(
        [
            "sensitivity",
            far,
            "--download",
            "--obslist",
            CENSUS,
            "--cache-dir",
            tmp_path / "c",
            "-o",
            tmp_path / "o.parquet",
        ],
        capsys,
    )
    assert code == 1 and xsa.requests == []
    assert err.strip().count("\n") == 0 and "within 15' of any of the 1 position(s)" in err


def test_transient_errors_are_retried(xsa, tmp_path):
    xsa.failures = 2
    res = archive.fetch_products(["0201903501"], str(tmp_path), retries=3, backoff=0.5)
    assert res.folders == [str(tmp_path / "0201903501")] and res.downloaded == ["0201903501"]
    assert xsa.sleeps == [0.5, 1.0]
    assert xsa.requests[:3] == [("HEAD", "0201903501", "EXPMAP")] * 3
    assert len(list((tmp_path / "0201903501").glob("*EXPMAP*.FTZ"))) == 4


def test_offline_is_one_line_error(xsa, poslist, tmp_path, capsys):
    xsa.failures = 10**6
    code, _, err = run_main(
        [
            "sensitivity",
            poslist,
            "--download",
            "--obslist",
            CENSUS,
            "--cache-dir",
            tmp_path / "c",
            "-q",
            "-o",
            tmp_path / "o.parquet",
        ],
        capsys,
    )
    assert code == 1
    assert err.strip().count("\n") == 0, err
    assert err.startswith("error: cannot reach the XMM-Newton Science Archive for 0201903501 after 3 attempts")
    assert "Network is unreachable" in err and "--obs DIR" in err
    assert len(xsa.requests) == 3 and not (tmp_path / "c" / "0201903501" / ".xsa-EXPMAP.json").exists()


def test_refusal_and_no_products_are_errors(xsa, tmp_path):
    xsa.status = 403
    with pytest.raises(DataError, match=r"refused 0201903501 EXPMAP \(HTTP 403\)"):
        archive.fetch_products(["0201903501"], str(tmp_path / "a"))
    assert len(xsa.requests) == 1  # a refusal is not retried
    xsa.status = 200
    with pytest.raises(DataError, match="no EPIC PPS exposure maps for observation.s. 0404910601"):
        archive.fetch_products(["0404910601"], str(tmp_path / "b"))
    marker = json.loads((tmp_path / "b" / "0404910601" / ".xsa-EXPMAP.json").read_text())
    assert marker["files"] == []


def test_option_combinations(poslist, tmp_path, capsys):
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "--download"], capsys)
    assert code == 2 and "exclude each other" in err
    code, _, err = run_main(["sensitivity", poslist, "--obs", OBS, "--cache-dir", tmp_path], capsys)
    assert code == 2 and "go with --download" in err
    code, _, err = run_main(["sensitivity", poslist, "--download", "--cache-dir", tmp_path / "c"], capsys)
    assert code == 1 and "needs an OBS_ID column" in err


def test_default_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert archive.default_cache() == str(tmp_path / "xmmtools" / "xsa")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert archive.default_cache() == str(tmp_path / "home" / ".cache" / "xmmtools" / "xsa")


def test_catalogue_obs_ids_without_obslist(xsa, tmp_path, capsys):
    src = tmp_path / "cat.csv"
    src.write_text("SRCID,RA,DEC,OBS_ID\n1,149.5,-11.0,0201903501\n2,149.59,-11.09,0201903501\n")
    out = tmp_path / "o.parquet"
    code, _, err = run_main(
        ["sensitivity", src, "--download", "--cache-dir", tmp_path / "c", "--band", "2-10", "-o", out], capsys
    )
    assert code == 0, err
    t = tables.read_table(str(out))
    assert set(t.column("OBS_ID").to_pylist()) == {"0201903501", "ALL"}
    assert set(t.column("OBS_ID_INPUT").to_pylist()) == {"0201903501"}  # the input's column, kept
    assert {r[1] for r in xsa.requests} == {"0201903501"}
    assert tables.inspect_table(str(out)).provenance[-1]["archive"]["observations"] == ["0201903501"]


@pytest.mark.slow
def test_sensitivity_map_download_equals_obs(xsa, tmp_path, capsys, monkeypatch):
    # the map of a downloaded observation is the map of the same products given with --obs
    cache = tmp_path / "xsa"
    ref, dl = tmp_path / "ref.parquet", tmp_path / "dl.parquet"
    args = ["--order", "11", "--band", "0.5-2", "-q"]
    code, _, err = run_main(["sensitivity-map", "--obs", OBS / "0201903501", "-o", ref, *args], capsys)
    assert code == 0, err
    code, _, err = run_main(
        ["sensitivity-map", "--download", "--obs-id", "0201903501", "--cache-dir", cache, "-o", dl, *args], capsys
    )
    assert code == 0, err
    a, b = tables.read_table(str(ref)), tables.read_table(str(dl))
    assert a.num_rows > 100 and a.column("NPIX").to_pylist() == b.column("NPIX").to_pylist()
    np.testing.assert_allclose(
        b.column("THRESH_FLUX_0P5_2KEV").to_numpy(), a.column("THRESH_FLUX_0P5_2KEV").to_numpy(), rtol=1e-12
    )
    prov = tables.inspect_table(str(dl)).provenance[-1]
    assert prov["parameters"]["download"] is True and prov["parameters"]["obs_ids"] == ["0201903501"]
    assert prov["archive"]["observations"] == ["0201903501"] and prov["archive"]["query_date"]
    # default output name from the observations; the cache is reused
    monkeypatch.chdir(tmp_path)
    xsa.requests.clear()
    code, _, err = run_main(["sensitivity-map", "--download", "--obslist", CENSUS, "--cache-dir", cache, *args], capsys)
    assert code == 0, err
    assert all(r[1] != "0201903501" for r in xsa.requests)  # cached
    assert (tmp_path / "xsa_0201903501_0201901401_0404910601_sensmap_o11.parquet").exists()
    # an obslist with only OBS_ID is enough for a map (no pointing selection here)
    ids_only = tmp_path / "ids.csv"
    ids_only.write_text("OBS_ID\n0201903501\n")
    code, _, err = run_main(
        [
            "sensitivity-map",
            "--download",
            "--obslist",
            ids_only,
            "--cache-dir",
            cache,
            "-o",
            tmp_path / "ids.parquet",
            *args,
        ],
        capsys,
    )
    assert code == 0, err
    assert tables.read_table(str(tmp_path / "ids.parquet")).column("NPIX").to_pylist() == a.column("NPIX").to_pylist()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--download"], "--download needs the observations"),
        (["--obs-id", "0201903501"], "go with --download"),
        (["--download", "--obs-id", "12345"], "not a 10-digit"),
        (["--download", "--obs-id", "0201903501", "--obs", "x"], "exclude each other"),
    ],
)
def test_sensitivity_map_download_options(tmp_path, capsys, args, message):
    code, _, err = run_main(
        [
            "sensitivity-map",
            *args,
            "--cache" if "--download" in args else "--order",
            str(tmp_path) if "--download" in args else "10",
        ],
        capsys,
    )
    assert code != 0 and message in err, err
