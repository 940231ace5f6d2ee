"""``xmmtools clean``: remove the hidden temporary files that writes killed by SIGKILL (or a
power cut) left in a folder.

Writes are atomic: an output appears whole or not at all.  On file systems without anonymous
temporary files (``O_TMPFILE``) the bytes of an output being written live in a hidden
``.NAME.<pid>.XXXX.part`` file beside it; a process killed by SIGKILL cannot remove it, and the
next write of the same output name removes it.  This command removes such files of processes
that no longer exist, in any folder, without writing anything else.
"""

from __future__ import annotations

import os

import click

from xmmtools.cli import pass_settings
from xmmtools.errors import DataError
from xmmtools.tables import leftover_files


@click.command("clean")
@click.argument("folders", nargs=-1, required=True, metavar="DIR...")
@click.option("--dry-run", "-n", is_flag=True, help="Only list the files that would be removed.")
@pass_settings
def clean(s, folders, dry_run):
    """Remove leftover temporary files of killed xmmtools runs from DIR.

    Only hidden ``.NAME.<pid>.*.part`` / ``.NAME.<pid>.tmp`` files whose process no longer
    exists are removed; outputs and files of running processes are left alone.

    \b
    Example:
      xmmtools clean results/
    """
    removed = 0
    for folder in folders:
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: not a folder")
        try:
            found = leftover_files(folder)
        except OSError as e:
            raise DataError(f"{folder}: cannot list it ({e.strerror or e})") from None
        for path in found:
            if not dry_run:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise DataError(f"{path}: cannot remove it ({e.strerror or e})") from None
            removed += 1
            if not s.quiet:
                click.echo(f"{'would remove' if dry_run else 'removed'} {path}", err=True)
    if not s.quiet:
        click.echo(f"{removed} leftover file(s) {'found' if dry_run else 'removed'}", err=True)
