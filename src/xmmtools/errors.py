"""User-facing errors.

Anything a user can cause (a missing file, a bad column, an existing output) raises one of
these; the CLI prints ``error: <message>`` on one line and exits with status 1.  Internal
bugs are ordinary exceptions and keep their traceback under ``--verbose``.
"""

from __future__ import annotations


class XmmtoolsError(Exception):
    """Base class: a problem with the user's data or request, reported in one line."""

    exit_code = 1

    def __init__(self, message: str):
        # One line, always: a multi-line message would break log parsers and pipelines.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return self.args[0]


class DataError(XmmtoolsError):
    """Unreadable, malformed or unsuitable input data (exit 1)."""


class ColumnError(DataError):
    """A required column is missing or has the wrong type."""


class OutputError(XmmtoolsError):
    """The output cannot be written as asked (exists, equals the input, bad extension)."""


class PipeClosed(XmmtoolsError):
    """The reader of standard output went away (``| head``): the producer ends quietly with
    the shell's SIGPIPE status, 128 + 13 = 141."""

    exit_code = 141
