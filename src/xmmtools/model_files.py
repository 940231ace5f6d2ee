"""Safe model files shared by the trained stages: a JSON document plus an NPZ of arrays.

No pickle anywhere: the JSON is parsed as data, the NPZ is read with ``allow_pickle=False``
and its SHA-256 must equal the one recorded in the JSON, so a damaged, edited or mismatched
pair is refused with a one-line error.  Files are written atomically (temporary file in the
target folder, fsync, rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from xmmtools.errors import DataError, OutputError


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Compressed NPZ of plain (non-object) arrays, in memory."""
    buf = io.BytesIO()
    # numpy's stub: a **mapping could hold the key "allow_pickle" (bool); ours are array names
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(f"{path}: cannot write the model ({e.strerror or e})") from None
        raise


def write_json(path: str, doc: Mapping[str, Any]) -> None:
    write_atomic(path, (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode())


def read_json(path: str, *, fmt: str, version: int, what: str) -> dict:
    """The model document, checked for its format name and version."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: no such model file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: not a readable {what} ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        got = doc.get("format") if isinstance(doc, dict) else None
        article = "an" if what[:1].lower() in "aeiox" else "a"
        raise DataError(f"{path}: not {article} {what} (format {got!r}, expected {fmt!r})")
    if doc.get("format_version") != version:
        raise DataError(
            f"{path}: {what} format version {doc.get('format_version')!r} is not supported "
            f"(this xmmtools reads version {version}); retrain the model"
        )
    return doc


def read_npz(npz_path: str, expected_sha256: str | None, *, json_path: str) -> dict[str, np.ndarray]:
    """The arrays of a model, after checking the file's SHA-256 against the JSON's record."""
    try:
        with open(npz_path, "rb") as fh:
            blob = fh.read()
    except OSError:
        raise DataError(f"{json_path}: its array file {npz_path} is missing") from None
    if sha256(blob) != expected_sha256:
        raise DataError(
            f"{npz_path}: checksum differs from the one recorded in {json_path}; "
            "the model files were modified or mixed up"
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{npz_path}: unreadable model arrays ({' '.join(str(e).split())[:120]})") from None
