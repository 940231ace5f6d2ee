"""Model files are validated structurally when loaded (issue 18): a crafted model with a valid
checksum but inconsistent arrays gives a one-line DataError naming the array - never a
segmentation fault, an IndexError mid-run, NaN probabilities or silently wrong output.

Each test copies a shipped model, edits one array or value, rewrites the NPZ and the checksum
recorded in the JSON (so only the structural checks can catch it)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, run_main

from xmmtools.errors import DataError

MODELS = Path(__file__).resolve().parents[1] / "src" / "xmmtools" / "data" / "models"
PHOTOZ = MODELS / "photoz" / "agn.json"
CLASSIFY = MODELS / "classify" / "default.json"


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _photoz(tmp: Path, edit: Callable[[dict[str, np.ndarray], dict], None]) -> Path:
    doc = json.loads(PHOTOZ.read_text())
    with np.load(PHOTOZ.with_suffix(".npz")) as z:
        a = {k: z[k] for k in z.files}
    edit(a, doc)
    blob = _npz(a)
    (tmp / "m.npz").write_bytes(blob)
    doc["arrays"] = "m.npz"
    doc["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    (tmp / "m.json").write_text(json.dumps(doc))
    return tmp / "m.json"


def _load_photoz(path: Path):
    from xmmtools.photoz.model import load_model

    return load_model(str(path))


def _set(name: str, index: int, value) -> Callable[[dict[str, np.ndarray], dict], None]:
    def edit(a, doc):
        arr = a[name].copy()
        arr[index] = value
        a[name] = arr

    return edit


def _inner(a) -> int:
    return int(np.flatnonzero(a["right_step"] > 0)[0])


def _feature(value: int):
    def edit(a, doc):
        f = a["feature"].astype(np.int64)
        f[_inner(a)] = value
        a["feature"] = f

    return edit


def _threshold_nan(a, doc):
    t = a["threshold"].copy()
    t[_inner(a)] = np.nan
    a["threshold"] = t


def _right_step_huge(a, doc):
    s = a["right_step"].copy()
    s[_inner(a)] = 10**8
    a["right_step"] = s


def _drop(name: str):
    def edit(a, doc):
        del a[name]

    return edit


def _grid(zmin: float, zmax: float):
    def edit(a, doc):
        doc["grid"]["zmin"], doc["grid"]["zmax"] = zmin, zmax

    return edit


PHOTOZ_CASES = [
    ("feature-1e8", _feature(10**8), "feature"),
    ("feature-just-out", _feature(9), "feature"),
    ("feature-negative", _feature(-1), "feature"),
    ("children-outside-tree", _right_step_huge, "right_step"),
    ("threshold-nan", _threshold_nan, "threshold"),
    ("leaf-offsets", _set("leaf_offsets", 3, 10**9), "leaf_offsets"),
    ("member-offsets", _set("member_offsets", -1, 5), "member_offsets"),
    ("node-offsets", _set("node_offsets", 0, 1), "node_offsets"),
    ("leaf-sizes", _set("leaf_sizes", 0, 60000), "member_offsets"),
    ("leaf-bins", _set("leaf_bins", 0, 250), "leaf_bins"),
    ("missing-array", _drop("leaf_bins"), "leaf_bins"),
    ("dtype", lambda a, d: a.__setitem__("feature", a["feature"].astype(float)), "feature"),
    ("ranges-shape", lambda a, d: a.__setitem__("ranges", a["ranges"][:3]), "ranges"),
    ("zmin-above-zmax", _grid(6.0, 0.0), "zmin"),
    ("zmin-nan", _grid(float("nan"), 6.0), "zmin"),
    ("nzbins-zero", lambda a, d: d["grid"].__setitem__("nzbins", 0), "nzbins"),
    ("missing-parameters", lambda a, d: d.pop("parameters"), "malformed"),
]


@pytest.mark.parametrize(("edit", "needle"), [c[1:] for c in PHOTOZ_CASES], ids=[c[0] for c in PHOTOZ_CASES])
def test_photoz_forest_structure_checked_on_load(tmp_path, edit, needle):
    path = _photoz(tmp_path, edit)
    with pytest.raises(DataError, match=needle):
        _load_photoz(path)


def test_shipped_photoz_models_pass_the_checks():
    for p in (MODELS / "photoz").glob("*.json"):
        _load_photoz(p)


def test_photoz_feature_index_1e8_is_a_clean_error_from_the_cli(tmp_path, capsys):
    """Issue 18: this crashed the process with a segmentation fault."""
    path = _photoz(tmp_path, _feature(10**8))
    cat = Path(__file__).resolve().parent / "data" / "photoz" / "sdss_mgs_test.parquet"
    out = tmp_path / "o.parquet"
    code, _, err = run_main(["photoz", cat, "--model", path, "-o", out], capsys)
    assert code == 1 and "model array feature" in err and "internal" not in err
    assert not out.exists()


# ---- classify -----------------------------------------------------------------------------


def _classify(tmp: Path, edit: Callable[[dict[str, np.ndarray], dict], None]) -> Path:
    doc = json.loads(CLASSIFY.read_text())
    with np.load(CLASSIFY.with_suffix(".npz")) as z:
        a = {k: z[k] for k in z.files}
    edit(a, doc)
    blob = _npz(a)
    (tmp / "m.npz").write_bytes(blob)
    doc["arrays"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (tmp / "m.json").write_text(json.dumps(doc))
    return tmp / "m.json"


def _prior(value: float):
    def edit(a, doc):
        doc["priors"]["AGN"] = value

    return edit


def _weight(value: float):
    def edit(a, doc):
        doc["category_weights"]["location"] = value

    return edit


CLASSIFY_CASES = [
    ("prior-nan", _prior(float("nan")), "priors"),
    ("prior-negative", _prior(-0.5), "priors"),
    ("prior-zero", _prior(0.0), "priors"),
    ("weight-nan", _weight(float("nan")), "weights"),
    ("weight-negative", _weight(-1.0), "weights"),
    ("log-density-nan", _set("log_density", (0, 0, 0), np.nan), "log_density"),
    ("log-present-positive", _set("log_present", (0, 0), 0.5), "log_present"),
    ("lo-above-hi", _set("lo", 0, 1e9), "lo/hi"),
    ("histogram-shape", lambda a, d: a.__setitem__("histogram", a["histogram"][:2]), "histogram"),
    ("log-density-dtype", lambda a, d: a.__setitem__("log_density", a["log_density"].astype(int)), "log_density"),
    ("reference-shape", lambda a, d: a.__setitem__("reference_ll", a["reference_ll"][:, :3]), "reference_ll"),
    ("missing-array", _drop("log_neutral"), "log_neutral"),
    ("quantile", lambda a, d: d["outlier"].__setitem__("quantile", 2.0), "quantile"),
    (
        "unmeasured-range",
        lambda a, d: d["features"]["features"][14].__setitem__("unmeasured", {"AGN": {"low": 4.0, "high": 3.0}}),
        r"m\.json: feature LOG_DIST: unmeasured\.AGN needs finite low < high",
    ),
]


@pytest.mark.parametrize(("edit", "needle"), [c[1:] for c in CLASSIFY_CASES], ids=[c[0] for c in CLASSIFY_CASES])
def test_classify_model_checked_on_load(tmp_path, edit, needle):
    from xmmtools.classify.model_io import load_model

    path = _classify(tmp_path, edit)
    with pytest.raises(DataError, match=needle):
        load_model(path)


def test_classify_nan_prior_is_a_clean_error_from_the_cli(tmp_path, capsys):
    """Issue 18: NaN priors gave NaN probabilities with CLASS=AGN and exit 0."""
    path = _classify(tmp_path, _prior(float("nan")))
    out = tmp_path / "o.parquet"
    code, _, err = run_main(["classify", SAMPLE, "--model", path, "-o", out], capsys)
    assert code == 1 and "priors" in err and not out.exists()


# ---- the array file itself ------------------------------------------------------------------


def _read(npz: Path, blob: bytes):
    from xmmtools import model_files

    npz.write_bytes(blob)
    return model_files.read_npz(str(npz), hashlib.sha256(blob).hexdigest(), json_path="m.json")


def test_npz_member_claiming_gigabytes_is_refused_before_reading(tmp_path):
    blob = bytearray(_npz({"a": np.arange(10)}))
    # the local and central headers record the uncompressed size: claim 4 GiB in both
    zf = zipfile.ZipFile(io.BytesIO(bytes(blob)))
    info = zf.infolist()[0]
    size = info.file_size.to_bytes(4, "little")
    huge = (2**32 - 1).to_bytes(4, "little")
    blob = bytes(blob).replace(size, huge)
    with pytest.raises(DataError, match="array a claims"):
        _read(tmp_path / "m.npz", blob)


def test_npy_header_claiming_a_huge_shape_is_refused(tmp_path):
    arr = io.BytesIO()
    np.lib.format.write_array(arr, np.arange(4, dtype=np.int64))
    # rewrite the header text keeping the .npy header length (padding spaces absorb the change)
    head_len = int.from_bytes(arr.getvalue()[8:10], "little")
    header = arr.getvalue()[10 : 10 + head_len].decode().replace("(4,)", "(10000000000000,)")
    header = header.rstrip("\n").rstrip()[: head_len - 1].ljust(head_len - 1) + "\n"
    npy = arr.getvalue()[:10] + header.encode() + arr.getvalue()[10 + head_len :]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.npy", npy)
    with pytest.raises(DataError, match="array a header claims shape"):
        _read(tmp_path / "m.npz", buf.getvalue())


def test_arrays_path_pointing_at_a_device_is_refused(tmp_path):
    from xmmtools import model_files

    with pytest.raises(DataError, match="not a regular file"):
        model_files.read_npz("/dev/zero", "0" * 64, json_path="m.json")


def test_arrays_path_pointing_at_a_fifo_is_refused(tmp_path):
    from xmmtools import model_files

    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        model_files.read_npz(str(fifo), "0" * 64, json_path="m.json")


def test_npz_with_object_arrays_is_refused(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataError, match="Python objects"):
        _read(tmp_path / "m.npz", buf.getvalue())


def test_truncated_npz_is_a_data_error(tmp_path):
    blob = _npz({"a": np.arange(1000)})[:-100]
    with pytest.raises(DataError):
        _read(tmp_path / "m.npz", blob)


def test_arrays_read_back_identical(tmp_path):
    arrays = {"a": np.arange(12).reshape(3, 4), "b": np.asfortranarray(np.ones((2, 3))), "s": np.array(["x", "yz"])}
    got = _read(tmp_path / "m.npz", _npz(arrays))
    for k, v in arrays.items():
        assert np.array_equal(got[k], v) and got[k].dtype == v.dtype
