"""Photometric attributes of a photo-z model: magnitudes, colours and their errors.

An attribute is a column of the table (``u``, ``W1``) or, written ``A-B`` when no column has
that name, the colour A − B of two columns.  Each attribute's perturbation (TPZ's NRandom
realisations, Carrasco Kind & Brunner 2013, MNRAS 432, 1483, Sect. 3) is a linear combination of independent
Gaussian draws of the *measured* quantities ("bases"): a magnitude column is its own base,
and a colour — derived, or a colour column whose two magnitudes are known — moves by
δA − δB, so colours stay consistent with the perturbed magnitudes (MLZ perturbs colour columns
independently of their magnitudes; we do not).

Missing values: a null/NaN, or a value listed in ``missing`` (sentinels such as -99, or 0 for
2MASS non-detections), makes a magnitude missing; a colour with a missing magnitude is
missing.  Nothing is imputed: missing attributes stay NaN and the trees route them
(see :mod:`xmmtools.photoz.tpz`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xmmtools.errors import ColumnError, DataError

#: Error-column spellings tried for a quantity X when none is given (MLZ's ``eX`` first).
ERROR_PATTERNS = ("e{x}", "{x}_err", "{x}err", "err_{x}", "sig_{x}", "sigma_{x}", "{x}_magerr", "e_{x}")
#: Perturbation widths are clipped to this range (mag), as in the issue / MLZ practice.
SIGMA_CLIP = (0.001, 0.3)


@dataclass(frozen=True)
class Attribute:
    """One model attribute as resolved on a table."""

    name: str  # as the model writes it: "u", "u-g"
    column: str | None  # the table column holding it (None for a derived colour)
    parts: tuple[str, str] | None  # base names (A, B) when it moves as A − B


@dataclass
class AttributeSet:
    """Attributes resolved on one table: where each value and each error comes from."""

    attributes: list[Attribute]
    bases: list[str]  # measured quantities that get perturbed
    base_columns: dict[str, str]  # base name -> table column
    error_columns: dict[str, str | None]  # base name -> error column (None: unknown)
    missing: tuple[float, ...] = ()
    coef: np.ndarray = field(init=False)  # (n_attributes, n_bases): attribute = Σ coef·base

    def __post_init__(self) -> None:
        idx = {b: k for k, b in enumerate(self.bases)}
        c = np.zeros((len(self.attributes), len(self.bases)))
        for j, a in enumerate(self.attributes):
            if a.parts is not None:
                c[j, idx[a.parts[0]]] = 1.0
                c[j, idx[a.parts[1]]] = -1.0
            else:
                c[j, idx[a.name]] = 1.0
        self.coef = c

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def columns_needed(self) -> list[str]:
        cols = list(self.base_columns.values())
        cols += [a.column for a in self.attributes if a.column]
        cols += [e for e in self.error_columns.values() if e]
        return list(dict.fromkeys(cols))

    def require_errors(self, what: str) -> None:
        lacking = [b for b in self.bases if not self.error_columns.get(b)]
        if lacking:
            tried = ", ".join(p.format(x=lacking[0]) for p in ERROR_PATTERNS[:4])
            raise ColumnError(
                f"{what}: no error column for {', '.join(lacking)} (tried {tried}, ...); "
                "give --errors, or --nrandom 1 to train without perturbations"
            )

    def values(self, get: Callable[[str], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(X, sigma): attribute matrix (n, n_attr) with NaN for missing, and the clipped
        1σ errors of the bases (n, n_bases) for perturbations (NaN error -> upper clip)."""
        base = {}
        for b in self.bases:
            v = np.array(get(self.base_columns[b]), dtype=float)
            base[b] = self._blank(v)
        cols = []
        for a in self.attributes:
            if a.parts is not None:
                v = base[a.parts[0]] - base[a.parts[1]]
                if a.column is not None:  # a colour column: its own value, missing with its parts
                    own = self._blank(np.array(get(a.column), dtype=float), sentinels=False)
                    v = np.where(np.isnan(v), np.nan, own)
            else:
                v = base[a.name]
            cols.append(v)
        n = len(cols[0]) if cols else 0
        X = np.column_stack(cols) if cols else np.zeros((n, 0))
        sig = np.empty((n, len(self.bases)))
        for k, b in enumerate(self.bases):
            e = self.error_columns.get(b)
            s = np.array(get(e), dtype=float) if e else np.full(n, np.nan)
            sig[:, k] = clip_sigma(s)
        return X, sig

    def _blank(self, v: np.ndarray, sentinels: bool = True) -> np.ndarray:
        v = v.copy()
        v[~np.isfinite(v)] = np.nan
        if sentinels:
            for m in self.missing:
                v[v == m] = np.nan
        return v


def clip_sigma(s: np.ndarray) -> np.ndarray:
    """σ clipped to [0.001, 0.3] mag; a NaN/absent error counts as the upper clip."""
    s = np.where(np.isfinite(s), s, SIGMA_CLIP[1])
    return np.clip(s, *SIGMA_CLIP)


def perturb(X: np.ndarray, sigma: np.ndarray, coef: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One TPZ realisation: bases drawn from N(x, σ) and propagated to every attribute
    (Carrasco Kind & Brunner 2013, MNRAS 432, 1483, Sect. 3), so colours move with their magnitudes."""
    delta = rng.standard_normal(sigma.shape) * sigma
    return X + delta @ coef.T


def resolve_attributes(
    specs: Sequence[str],
    available: Sequence[str],
    *,
    source: str,
    user_map: Mapping[str, str] | None = None,
    errors: Sequence[str] | Mapping[str, str] | None = None,
    missing: Sequence[float] = (),
    stored_errors: Mapping[str, str | None] | None = None,
) -> AttributeSet:
    """Resolve attribute names on a table's columns (raises a one-line ColumnError).

    ``errors``: a list with one error column per attribute that is a real column (same
    order), or a mapping NAME=ERR.  ``stored_errors``: error columns recorded in a model
    (used only when present in this table).
    """
    find = _finder(available, user_map)
    specs = [s.strip() for s in specs if s.strip()]
    if not specs:
        raise DataError("no attributes given")
    dup = next((s for s in specs if specs.count(s) > 1), None)
    if dup:
        raise DataError(f"attribute {dup} given twice")
    attrs: list[Attribute] = []
    bases: list[str] = []
    base_cols: dict[str, str] = {}
    for s in specs:
        col = find(s)
        parts = _colour_parts(s, find)
        if col is None and parts is None:
            raise ColumnError(
                f"attribute {s}: {source} has no column {s}"
                + (" (nor the two magnitudes of the colour)" if "-" in s else "")
                + (_near(s, available) or f"; map one with --columns {s}=COLUMN")
            )
        if parts is not None:
            for p in parts:
                if p not in base_cols:
                    bases.append(p)
                    base_cols[p] = find(p)
        else:
            bases.append(s)
            base_cols[s] = col
        attrs.append(Attribute(s, col, parts))
    err_cols = _errors(attrs, bases, base_cols, errors, find, available, source, stored_errors)
    return AttributeSet(attrs, list(dict.fromkeys(bases)), base_cols, err_cols, tuple(missing))


def missing_attributes(
    specs: Sequence[str], available: Sequence[str], user_map: Mapping[str, str] | None = None
) -> list[str]:
    """Attributes :func:`resolve_attributes` could not find on a table (same name resolution),
    in order; a colour ``A-B`` is left out when its magnitude A or B is already listed."""
    find = _finder(available, user_map)
    out: list[str] = []
    for s in (x.strip() for x in specs if x.strip()):
        if find(s) is not None or _colour_parts(s, find) is not None:
            continue
        halves = {h.strip() for i, ch in enumerate(s) if ch == "-" for h in (s[:i], s[i + 1 :])}
        if not halves & set(out):
            out.append(s)
    return out


def taking_rows(get: Callable[[str], np.ndarray], rows: np.ndarray) -> Callable[[str], np.ndarray]:
    """A column getter for :meth:`AttributeSet.values` that keeps only ``rows``."""
    return lambda c: np.asarray(get(c))[rows]


def _finder(available: Sequence[str], user_map: Mapping[str, str] | None):
    avail = list(available)
    upper: dict[str, str] = {}
    for a in avail:
        upper.setdefault(a.upper(), a)
    user = {k.upper(): v for k, v in (user_map or {}).items()}

    def find(name: str) -> str | None:
        target = user.get(name.upper(), name)
        if target in avail:
            return target
        return upper.get(target.upper())

    return find


def _colour_parts(spec: str, find) -> tuple[str, str] | None:
    """'A-B' -> (A, B) when both are columns; tries every '-' position (names may hold '-')."""
    for i, ch in enumerate(spec):
        if ch == "-" and 0 < i < len(spec) - 1:
            a, b = spec[:i].strip(), spec[i + 1 :].strip()
            if find(a) is not None and find(b) is not None:
                return a, b
    return None


def _errors(attrs, bases, base_cols, errors, find, available, source, stored):
    given: dict[str, str] = {}
    if isinstance(errors, Mapping):
        given = dict(errors)
    elif errors:
        errors = [e.strip() for e in errors if e.strip()]
        if any("=" in e for e in errors):
            for e in errors:
                if "=" not in e:
                    raise DataError(f"--errors: mix of NAME=ERR pairs and plain names ({e!r})")
                k, v = (x.strip() for x in e.split("=", 1))
                given[k] = v
        else:
            real = [a for a in attrs if a.column is not None]
            if len(errors) != len(real):
                raise DataError(
                    f"--errors lists {len(errors)} columns but {len(real)} attributes are "
                    f"columns ({', '.join(a.name for a in real)}); give one per column "
                    "attribute in the same order, or NAME=ERR pairs"
                )
            given = {a.name: e for a, e in zip(real, errors, strict=True)}
    known = {a.name for a in attrs} | set(bases)
    for k in given:
        if k not in known:
            raise DataError(f"--errors names {k}, which is not an attribute or magnitude of the model")
    out: dict[str, str | None] = {}
    for b in bases:
        if b in given:
            col = find(given[b])
            if col is None:
                raise ColumnError(
                    f"error column {given[b]} for {b}: {source} has no such column" + _near(given[b], available)
                )
            out[b] = col
            continue
        if stored and stored.get(b) and find(stored[b]) is not None:
            out[b] = find(stored[b])
            continue
        out[b] = _guess_error(b, base_cols[b], find)
    return out


def _guess_error(name: str, column: str, find) -> str | None:
    for x in dict.fromkeys([name, column, column.split("_")[0]]):
        for pat in ERROR_PATTERNS:
            col = find(pat.format(x=x))
            if col is not None and col != column:
                return col
    return None


def _near(name: str, available: Sequence[str]) -> str:
    import difflib

    hits = difflib.get_close_matches(name, list(available), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(hits)}?" if hits else ""
