"""Atomic files: the bytes of an output live in a :class:`TempFile` in the target folder
(flushed, fsync'ed and renamed into place on commit), so an output either appears whole or
not at all."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import IO, Any

import pyarrow as pa


def close_quietly(*closers: Any) -> None:
    """Close writers and sinks on an error path, ignoring what closing them raises."""
    for closer in closers:
        with contextlib.suppress(Exception):
            if closer is not None:
                closer.close()


_ANON_OK: dict[int, bool] = {}


def _remove_stale_parts(folder: str, name: str) -> None:
    """Remove ``.NAME.<pid>.*.part`` files left by a writer that was killed (SIGKILL, power
    loss) and whose process no longer exists."""
    pat = re.compile(r"^\." + re.escape(name) + r"\.(\d+)\.[^/]*\.part$")
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            m = pat.match(entry)
            if not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # that writer is still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))


#: hidden temporary files of xmmtools writes: ``.NAME.<pid>.<anything>.part`` (tables, figures)
#: and ``.NAME.<pid>.tmp`` (model files)
_LEFTOVER = re.compile(r"^\..+\.(\d+)\.(?:[^/]*\.part|tmp)$")


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def leftover_files(folder: str) -> list[str]:
    """Hidden temporary files in ``folder`` left by xmmtools writes whose process no longer
    exists (killed by SIGKILL or a power cut before it could remove them)."""
    out = []
    for entry in sorted(os.listdir(folder)):
        m = _LEFTOVER.match(entry)
        full = os.path.join(folder, entry)
        if m and _process_gone(int(m.group(1))) and os.path.isfile(full) and not os.path.islink(full):
            out.append(full)
    return out


def _anonymous_files_work(folder: str) -> bool:
    """Can this folder's file system create an O_TMPFILE and link it in?  (Probed once per
    device: some kernels and sandboxes refuse the link with EXDEV or EOPNOTSUPP.)"""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        dev = os.stat(folder).st_dev
    except OSError:
        return False
    if dev in _ANON_OK:
        return _ANON_OK[dev]
    ok = False
    probe = os.path.join(folder, f".xmmtools-probe.{os.getpid()}")
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            os.link(f"/proc/self/fd/{fd}", probe, follow_symlinks=True)
            ok = True
        finally:
            os.close(fd)
    except OSError:
        ok = False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    _ANON_OK[dev] = ok
    return ok


class TempFile:
    """The bytes of an output before it exists.

    On Linux an anonymous ``O_TMPFILE`` in the target folder: it has no name until
    :meth:`commit` links it in (fsync, link to a hidden name, rename over the output), so a
    process killed at any moment - even by SIGKILL - leaves no partial file behind.  Where the
    file system lacks ``O_TMPFILE`` a hidden ``.NAME.XXXX.part`` file is used instead (removed
    on errors and signals the process can catch).
    """

    def __init__(self, final: str):
        self.final = final
        self.folder = os.path.dirname(os.path.abspath(final))
        self.name: str | None = None
        self.fd: int | None = None
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
        with contextlib.suppress(OSError):
            mode = os.stat(final).st_mode & 0o777  # keep the mode of the file being replaced
        if _anonymous_files_work(self.folder):
            with contextlib.suppress(OSError):
                self.fd = os.open(self.folder, os.O_TMPFILE | os.O_RDWR, mode)
        if self.fd is None:
            _remove_stale_parts(self.folder, os.path.basename(final))
            fd, self.name = tempfile.mkstemp(
                prefix=f".{os.path.basename(final)}.{os.getpid()}.", suffix=".part", dir=self.folder
            )
            os.close(fd)
            with contextlib.suppress(OSError):
                os.chmod(self.name, mode)

    @property
    def read_path(self) -> str:
        if self.fd is not None:
            return f"/proc/self/fd/{self.fd}"
        assert self.name is not None
        return self.name

    def open(self, mode: str = "wb") -> IO[Any]:
        if self.fd is not None:
            return os.fdopen(os.dup(self.fd), mode)
        assert self.name is not None
        return open(self.name, mode)

    def arrow_sink(self) -> Any:
        """A pyarrow output stream writing the file."""
        if self.fd is not None:
            return pa.PythonFile(self.open("wb"), mode="w")
        return pa.OSFile(self.name, "wb")

    def commit(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)
            hidden = os.path.join(self.folder, f".{os.path.basename(self.final)}.{os.getpid()}.{id(self):x}.part")
            os.link(f"/proc/self/fd/{self.fd}", hidden, follow_symlinks=True)
            try:
                os.replace(hidden, self.final)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(hidden)
                raise
            os.close(self.fd)
            self.fd = None
        else:
            assert self.name is not None
            _fsync_path(self.name)
            os.replace(self.name, self.final)
            self.name = None
        _fsync_dir(self.folder)

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.name:
            with contextlib.suppress(OSError):
                os.unlink(self.name)
            self.name = None


def _fsync_path(p: str) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
