"""Features for the naive Bayes classifier, declared in a TOML feature set (configuration, not code).

A feature set is a list of ``[[feature]]`` tables; each feature has a ``name``, a ``category``
(location / spectrum / multiwavelength / variability, as in Tranin et al. 2022, A&A 657, A138), a
``kind`` saying how it is computed from catalogue columns, a ``transform`` and what to do when
the table lacks its columns (``when_absent``).  Kinds and their column keys:

============================  ==================================================================
``column``                    ``columns = [A, B, ...]``: the first finite value of A, B, ...
``galactic_latitude``         ``ra``, ``dec`` (deg, ICRS) -> \\|b\\| (deg)
``flux_ratio``                ``flux`` (list, erg/cm2/s), ``mag``, ``band`` -> Fx / F_band
``luminosity``                ``flux`` (list), ``distance`` (pc) -> 4 pi d^2 Fx (erg/s)
``ratio``                     ``numerator``, ``denominator`` -> numerator / denominator
``difference``                ``a``, ``b`` -> a - b (a colour)
``hardness``                  ``soft``, ``hard`` -> (hard - soft) / (hard + soft)
============================  ==================================================================

Band zero points live in ``[bands.NAME]`` of the same file, either as a flux density per
wavelength and an effective width (``f_lambda0`` erg/cm2/s/A, ``width`` A: F = f_lambda0 W 10^-0.4m)
or as a flux density per frequency at a wavelength (``f_nu0`` Jy, ``wavelength`` micron:
F = nu f_nu0 10^-0.4m), each with its ``reference``.  Column names are 4XMM names (resolved with
:func:`xmmtools.columns.resolve`, so VizieR/HEASARC spellings and ``--columns`` work) or the
table's own names.  Non-finite results (missing magnitudes, log of zero) are *missing* values,
which the classifier treats as evidence.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from xmmtools.errors import DataError

CATEGORIES = ("location", "spectrum", "multiwavelength", "variability")
TRANSFORMS = ("linear", "log10", "squash")
WHEN_ABSENT = ("error", "missing", "ignore")
#: ``presence = "evidence"``: P(present | c) / P(missing | c) enter the likelihood (Tranin et al.
#: 2022); ``"ignore"``: only the density of a measured value counts and a missing value is
#: neutral -- for features whose presence was fixed by how the training set was built
PRESENCE = ("evidence", "ignore")

#: column keys of each kind; list-valued keys hold alternatives taken in order (coalesce)
KINDS: dict[str, tuple[str, ...]] = {
    "column": ("columns",),
    "galactic_latitude": ("ra", "dec"),
    "flux_ratio": ("flux", "mag"),
    "luminosity": ("flux", "distance"),
    "ratio": ("numerator", "denominator"),
    "difference": ("a", "b"),
    "hardness": ("soft", "hard"),
}

PC_CM = 3.0856775814913673e18  # IAU 2015 Resolution B2: 1 pc in cm
C_MICRON_HZ = 2.99792458e14  # speed of light in micron/s
JY = 1e-23  # erg/s/cm2/Hz


@dataclass(frozen=True)
class Band:
    """Magnitude zero point: flux (erg/cm2/s) of a zero-magnitude source in this band."""

    name: str
    f0: float
    reference: str

    @staticmethod
    def from_toml(name: str, d: Mapping[str, Any], where: str) -> Band:
        ref = str(d.get("reference", ""))
        if "f_lambda0" in d and "width" in d:
            f0 = float(d["f_lambda0"]) * float(d["width"])
        elif "f_nu0" in d and "wavelength" in d:
            f0 = float(d["f_nu0"]) * JY * C_MICRON_HZ / float(d["wavelength"])
        else:
            raise DataError(f"{where}: band {name} needs f_lambda0 + width or f_nu0 + wavelength")
        if not np.isfinite(f0) or f0 <= 0:
            raise DataError(f"{where}: band {name} has a non-positive zero-point flux")
        return Band(name, f0, ref)


@dataclass(frozen=True)
class Feature:
    name: str
    category: str
    kind: str
    columns: Mapping[str, tuple[str, ...]]
    transform: str = "linear"
    when_absent: str = "error"
    band: Band | None = None
    description: str = ""
    presence: str = "evidence"  # see PRESENCE
    #: class -> {"low", "high", "reference"}: the range of this feature a class with no
    #: measured training value takes (``[feature.unmeasured.CLASS]``), instead of a flat density
    #: over the whole training range
    unmeasured: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def all_columns(self) -> list[str]:
        return [c for key in KINDS[self.kind] for c in self.columns[key]]

    def to_json(self) -> dict:
        d = {
            "name": self.name,
            "category": self.category,
            "kind": self.kind,
            "columns": {k: list(v) for k, v in self.columns.items()},
            "transform": self.transform,
            "when_absent": self.when_absent,
            "description": self.description,
        }
        if self.presence != "evidence":
            d["presence"] = self.presence
        if self.unmeasured:
            d["unmeasured"] = {c: dict(v) for c, v in self.unmeasured.items()}
        if self.band is not None:
            d["band"] = {"name": self.band.name, "f0": self.band.f0, "reference": self.band.reference}
        return d

    @staticmethod
    def from_json(d: Mapping[str, Any], where: str = "model file") -> Feature:
        band = d.get("band")
        return Feature(
            d["name"],
            d["category"],
            d["kind"],
            {k: tuple(v) for k, v in d["columns"].items()},
            d["transform"],
            d["when_absent"],
            Band(band["name"], float(band["f0"]), band["reference"]) if band else None,
            d.get("description", ""),
            d.get("presence", "evidence"),
            _unmeasured(d.get("unmeasured"), d["name"], where),
        )


@dataclass(frozen=True)
class FeatureSet:
    name: str
    features: tuple[Feature, ...]
    categories: tuple[str, ...]
    source: str = ""
    sha256: str = ""
    #: columns declared as canonical counterpart bands (``[inputs]``: ``G = {band = "GAIA_G",
    #: system = "Vega"}``), so crossmatch's GAIA_G feeds G (see xmmtools.bands)
    inputs: tuple = ()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def presence_free(self) -> np.ndarray:
        """(F,) True for features declared ``presence = "ignore"``."""
        return np.array([f.presence == "ignore" for f in self.features], bool)

    def unmeasured_ranges(self, classes: Sequence[str]) -> list[dict[int, tuple[float, float]]]:
        """Per feature, class index -> (low, high) of its ``unmeasured`` declarations, for
        :func:`xmmtools.classify.naive_bayes.fit_densities` (classes not trained are skipped)."""
        index = {c: i for i, c in enumerate(classes)}
        return [
            {index[c]: (float(v["low"]), float(v["high"])) for c, v in f.unmeasured.items() if c in index}
            for f in self.features
        ]

    def category_index(self) -> np.ndarray:
        """Index into :attr:`categories` of each feature."""
        return np.array([self.categories.index(f.category) for f in self.features], dtype=int)

    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "name": self.name,
            "categories": list(self.categories),
            "features": [f.to_json() for f in self.features],
            "source": self.source,
            "sha256": self.sha256,
        }
        if self.inputs:
            d["inputs"] = {i.name: i.to_json() for i in self.inputs}
        return d

    @staticmethod
    def from_json(d: Mapping[str, Any], where: str = "model file") -> FeatureSet:
        from xmmtools.bands import inputs_from_mapping

        return FeatureSet(
            d["name"],
            tuple(Feature.from_json(f, where) for f in d["features"]),
            tuple(d["categories"]),
            d.get("source", ""),
            d.get("sha256", ""),
            inputs_from_mapping(d.get("inputs"), f"feature set {d['name']}"),
        )


# ----------------------------------------------------------------------------------------
# Loading a feature set
# ----------------------------------------------------------------------------------------


def default_feature_set_path(name: str = "xclass") -> Path:
    """Shipped feature sets: ``xclass`` (the Lin et al. 2024 4XMM-DR13 training table),
    ``4xmm`` (X-ray-only 4XMM slim/detection catalogues), ``cscv2`` (MUWCLASS CSCv2 table)."""
    p = resources.files("xmmtools") / "data" / "classify" / f"features_{name}.toml"
    return Path(str(p))


def load_feature_set(path: str | Path) -> FeatureSet:
    """Read and validate a TOML feature set; every problem is a one-line DataError."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such feature-set file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read feature set ({e.strerror})") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid TOML feature set ({e})") from None
    return parse_feature_set(doc, where=path, sha256=hashlib.sha256(raw).hexdigest())


def parse_feature_set(doc: Mapping[str, Any], *, where: str = "feature set", sha256: str = "") -> FeatureSet:
    bands = {name: Band.from_toml(name, d, where) for name, d in doc.get("bands", {}).items()}
    meta = doc.get("feature_set", {})
    items = doc.get("feature", [])
    if not items:
        raise DataError(f"{where}: no [[feature]] entries")
    feats = []
    seen = set()
    for i, d in enumerate(items, 1):
        name = str(d.get("name", "")).strip()
        if not name:
            raise DataError(f"{where}: feature #{i} has no name")
        if name in seen:
            raise DataError(f"{where}: feature {name} declared twice")
        seen.add(name)
        kind = d.get("kind", "column")
        if kind not in KINDS:
            raise DataError(f"{where}: feature {name} has unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        cat = d.get("category")
        if cat not in CATEGORIES:
            raise DataError(f"{where}: feature {name} has category {cat!r}; use one of {', '.join(CATEGORIES)}")
        tr = d.get("transform", "linear")
        if tr not in TRANSFORMS:
            raise DataError(f"{where}: feature {name} has transform {tr!r}; use one of {', '.join(TRANSFORMS)}")
        wa = d.get("when_absent", "error")
        if wa not in WHEN_ABSENT:
            raise DataError(f"{where}: feature {name} has when_absent {wa!r}; use one of {', '.join(WHEN_ABSENT)}")
        pr = d.get("presence", "evidence")
        if pr not in PRESENCE:
            raise DataError(f"{where}: feature {name} has presence {pr!r}; use one of {', '.join(PRESENCE)}")
        cols = {}
        for key in KINDS[kind]:
            v = d.get(key)
            if v is None or v == [] or v == "":
                raise DataError(f"{where}: feature {name} (kind {kind}) needs {key} = column name(s)")
            cols[key] = tuple([v] if isinstance(v, str) else [str(x) for x in v])
        band = None
        if kind == "flux_ratio":
            bname = d.get("band")
            if bname not in bands:
                raise DataError(f"{where}: feature {name} uses band {bname!r}, not defined in [bands]")
            band = bands[bname]
        um = _unmeasured(d.get("unmeasured"), name, where)
        feats.append(Feature(name, cat, kind, cols, tr, wa, band, str(d.get("description", "")), pr, um))
    used = [c for c in CATEGORIES if any(f.category == c for f in feats)]
    from xmmtools.bands import inputs_from_mapping

    return FeatureSet(
        str(meta.get("name", Path(where).stem)),
        tuple(feats),
        tuple(used),
        Path(where).name,  # the file's name (its SHA-256 identifies it), not a machine's path
        sha256,
        inputs_from_mapping(doc.get("inputs"), where),
    )


def _unmeasured(d: Any, name: str, where: str) -> dict[str, dict[str, Any]]:
    """Validate ``[feature.unmeasured.CLASS]`` tables: numbers low < high (in the feature's
    transformed units) and a reference; DataError otherwise."""
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise DataError(f"{where}: feature {name}: unmeasured must be a table of CLASS = {{low, high, reference}}")
    out = {}
    for c, v in d.items():
        try:
            low, high = float(v["low"]), float(v["high"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: feature {name}: unmeasured.{c} needs numbers low and high") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise DataError(f"{where}: feature {name}: unmeasured.{c} needs finite low < high (got {low}, {high})")
        out[str(c)] = {"low": low, "high": high, "reference": str(v.get("reference", ""))}
    return out


# ----------------------------------------------------------------------------------------
# Computing features
# ----------------------------------------------------------------------------------------


@dataclass
class FeatureMatrix:
    """Feature values (n_rows, n_features), NaN = missing; ``ignored`` marks features whose
    columns the table lacks and which the feature set says to ignore (neutral evidence)."""

    values: np.ndarray
    ignored: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def compute_features(fs: FeatureSet, get: Callable[[str], np.ndarray | None], n: int) -> FeatureMatrix:
    """Compute every feature of ``fs``; ``get(column)`` returns a float array or None if the
    table lacks that column (the caller has already raised for ``when_absent = "error"``)."""
    out = np.full((n, len(fs.features)), np.nan)
    ignored = np.zeros(len(fs.features), bool)
    for j, f in enumerate(fs.features):
        arrays = {key: [a for a in (get(c) for c in f.columns[key]) if a is not None] for key in KINDS[f.kind]}
        if any(not v for v in arrays.values()):
            ignored[j] = f.when_absent == "ignore"
            continue  # "missing": left NaN
        x = _raw_feature(f, {k: _coalesce(v) for k, v in arrays.items()})
        out[:, j] = _transform(x, f.transform)
    return FeatureMatrix(out, ignored)


def check_positions(fs: FeatureSet, get: Callable[[str], np.ndarray | None], where: str, offset: int = 0) -> None:
    """One-line DataError (naming ``where`` and the file row, ``offset`` = row of the first
    value) when a galactic-latitude feature's RA/DEC are out of range, infinite or booleans; a
    NaN position is a missing feature, not an error (:func:`xmmtools.sky.check_coordinates`)."""
    from xmmtools.sky import check_coordinates

    for f in fs.features:
        if f.kind != "galactic_latitude":
            continue
        ra = next((a for a in (get(c) for c in f.columns["ra"]) if a is not None), None)
        dec = next((a for a in (get(c) for c in f.columns["dec"]) if a is not None), None)
        if ra is not None and dec is not None:
            check_coordinates(ra, dec, where, offset, allow_missing=True)


def _coalesce(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """First finite value among alternative columns, row by row."""
    x = np.array(arrays[0], dtype=float, copy=True)
    for a in arrays[1:]:
        bad = ~np.isfinite(x)
        x[bad] = a[bad]
    return x


def _raw_feature(f: Feature, a: Mapping[str, np.ndarray]) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if f.kind == "column":
            return a["columns"]
        if f.kind == "galactic_latitude":
            return np.abs(galactic_latitude(a["ra"], a["dec"]))
        if f.kind == "flux_ratio":
            if f.band is None:  # the feature-set parser requires one; a hand-made Feature may not
                raise DataError(f"feature {f.name} (kind flux_ratio) has no band")
            return xray_to_band_flux_ratio(a["flux"], a["mag"], f.band.f0)
        if f.kind == "luminosity":
            return xray_luminosity(a["flux"], a["distance"])
        if f.kind == "ratio":
            return a["numerator"] / a["denominator"]
        if f.kind == "difference":
            return a["a"] - a["b"]
        if f.kind == "hardness":
            return (a["hard"] - a["soft"]) / (a["hard"] + a["soft"])
    raise AssertionError(f.kind)  # pragma: no cover - kinds are validated on load


def _transform(x: np.ndarray, how: str) -> np.ndarray:
    """linear; log10 (non-positive -> missing); squash = x / (1 + |x|) (Tranin et al. 2022)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "log10":
            y = np.where(x > 0, np.log10(np.where(x > 0, x, 1.0)), np.nan)
        elif how == "squash":
            y = x / (1.0 + np.abs(x))
        else:
            y = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    y[~np.isfinite(y)] = np.nan
    return y


# ----------------------------------------------------------------------------------------
# Physical quantities
# ----------------------------------------------------------------------------------------

#: ICRS -> Galactic rotation matrix (Hipparcos catalogue, ESA 1997, Vol. 1, Sect. 1.5.3, eq. 1.5.11;
#: the definition astropy uses for its Galactic frame).
_ICRS_TO_GAL = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
    ]
)


def galactic_latitude(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Galactic latitude b (deg) of ICRS positions, by the Hipparcos rotation matrix (ESA 1997,
    eq. 1.5.11): sin b is the third component of R·(cos d cos a, cos d sin a, sin d)."""
    a = np.radians(ra_deg)
    d = np.radians(dec_deg)
    cd = np.cos(d)
    r = _ICRS_TO_GAL[2]
    sinb = r[0] * cd * np.cos(a) + r[1] * cd * np.sin(a) + r[2] * np.sin(d)
    return np.degrees(np.arcsin(np.clip(sinb, -1.0, 1.0)))


def magnitude_to_flux(mag: np.ndarray, f0: float) -> np.ndarray:
    """Band flux (erg/cm2/s) of a magnitude: F = F0 · 10^(-0.4 m), F0 the zero-magnitude flux."""
    return f0 * np.power(10.0, -0.4 * np.asarray(mag, dtype=float))


def xray_to_band_flux_ratio(fx: np.ndarray, mag: np.ndarray, f0: float) -> np.ndarray:
    """Fx / F_band with Fx in erg/cm2/s and F_band from the magnitude and zero point
    (the X-ray-to-optical ratio of Maccacaro et al. 1988, ApJ 326, 680, generalised to any band;
    Tranin et al. 2022 use it with Gaia G and WISE W1/W2)."""
    return np.asarray(fx, dtype=float) / magnitude_to_flux(mag, f0)


def xray_luminosity(fx: np.ndarray, distance_pc: np.ndarray) -> np.ndarray:
    """Isotropic luminosity L = 4 pi d^2 Fx (erg/s), d in pc (Fx in erg/cm2/s)."""
    d = np.asarray(distance_pc, dtype=float) * PC_CM
    return 4.0 * np.pi * d * d * np.asarray(fx, dtype=float)
