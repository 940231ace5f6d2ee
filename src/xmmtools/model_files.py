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
import stat
import zipfile
import zlib
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


#: largest array file a model may have, and largest single array in it (bytes): checked before
#: anything is read, so a crafted file claiming terabytes fails at once
MAX_NPZ_BYTES = 2 * 2**30
MAX_ARRAY_BYTES = 2 * 2**30


def read_npz(npz_path: str, expected_sha256: str | None, *, json_path: str) -> dict[str, np.ndarray]:
    """The arrays of a model, after checking the file's SHA-256 against the JSON's record.

    Only a regular file is read (an ``arrays`` entry naming a device or a FIFO would be read
    forever), at most :data:`MAX_NPZ_BYTES`; each member's declared size and its ``.npy``
    header (shape x item size) are checked before the member is decompressed."""
    try:
        st = os.stat(npz_path)
    except OSError:
        raise DataError(f"{json_path}: its array file {npz_path} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{npz_path}: the model's array file is not a regular file")
    if st.st_size > MAX_NPZ_BYTES:
        raise DataError(f"{npz_path}: model array file of {st.st_size} bytes is larger than {MAX_NPZ_BYTES}")
    try:
        with open(npz_path, "rb") as fh:
            blob = fh.read(MAX_NPZ_BYTES + 1)
    except OSError as e:
        raise DataError(f"{npz_path}: cannot read the model arrays ({e.strerror or e})") from None
    if sha256(blob) != expected_sha256:
        raise DataError(
            f"{npz_path}: checksum differs from the one recorded in {json_path}; "
            "the model files were modified or mixed up"
        )
    try:
        return _npz_arrays(blob, npz_path)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{npz_path}: unreadable model arrays ({' '.join(str(e).split())[:120]})") from None


def _npz_arrays(blob: bytes, where: str) -> dict[str, np.ndarray]:
    from numpy.lib import format as npy

    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.file_size > MAX_ARRAY_BYTES:
                raise DataError(f"{where}: array {key} claims {info.file_size} bytes (more than {MAX_ARRAY_BYTES})")
            with zf.open(info) as fp:
                version = npy.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = npy.read_array_header_1_0(fp)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = npy.read_array_header_2_0(fp)
                else:
                    raise DataError(f"{where}: array {key} has an unknown .npy version {version}")
                if dtype.hasobject:
                    raise DataError(f"{where}: array {key} holds Python objects, which models never do")
                need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if need > info.file_size:
                    raise DataError(
                        f"{where}: array {key} header claims shape {shape} ({need} bytes) "
                        f"but its member holds {info.file_size} bytes"
                    )
                data = bytearray(fp.read(need))
                if len(data) != need:
                    raise DataError(f"{where}: array {key} is cut short ({len(data)} of {need} bytes)")
                arr = np.frombuffer(data, dtype=dtype)
                out[key] = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return out


def check_arrays(where: str, arrays: Mapping[str, np.ndarray], kinds: Mapping[str, tuple[str, int]]) -> None:
    """Each required array is present, with a dtype kind in ``kinds[name][0]`` (numpy kind
    letters, e.g. ``"iu"``) and ``kinds[name][1]`` dimensions."""
    for name, (kind, ndim) in kinds.items():
        if name not in arrays:
            raise DataError(f"{where}: model array {name} is missing")
        a = arrays[name]
        if a.dtype.kind not in kind or a.ndim != ndim:
            raise DataError(
                f"{where}: model array {name} has dtype {a.dtype} and {a.ndim} dimension(s) "
                f"(expected kind {kind!r}, {ndim} dimension(s))"
            )
