"""A replay's output files: checked before anything is written, then written all or nothing.

:func:`check_outputs` refuses, before the trace is even opened, every output that
could only end in lost data or a half-written result: an output that is the trace
itself (also through another spelling, a symlink or a hard link), two outputs that
are the same file, a directory, something that is not a regular file (a device such
as ``/dev/null`` would be replaced by the rename), or a folder that does not exist.

:class:`AtomicOutput` writes to a hidden temp file beside its destination, created
with mode ``0o666`` so the umask applies as it would to any file the user makes
(``tempfile.mkstemp`` forces ``0o600``), and renames it into place only when
:meth:`AtomicOutput.commit` is called. Every ``OSError`` it raises names the
destination the user gave, never the hidden temp file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gate import ConfigurationError

__all__ = ["AtomicOutput", "OutputPathError", "check_outputs", "naming_dest"]


class OutputPathError(ConfigurationError):
    """An output path that would overwrite the input or another output, or can't be a file."""


def check_outputs(trace: str | Path, outputs: dict[str, str | Path | None]) -> None:
    """Refuse unusable outputs before anything is read or written.

    Args:
        trace: The input trace.
        outputs: Each output's role (e.g. ``"--out"``) and path; ``None`` is skipped.

    Raises:
        OutputPathError: Naming the role and the path, if an output is the trace, the
            same file as another output, a directory or not a regular file, or its
            folder does not exist.
    """
    seen: dict[str, tuple[str, Path]] = {}
    for role, value in outputs.items():
        if value is None:
            continue
        dest = Path(value)
        real = os.path.realpath(dest)
        if _same_file(dest, trace):
            raise OutputPathError(
                f"{role} {dest} is the trace being replayed; refusing to overwrite it"
            )
        if real in seen:
            other_role, other = seen[real]
            raise OutputPathError(f"{other_role} {other} and {role} {dest} are the same file")
        seen[real] = (role, dest)
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(dest).st_mode
            if stat.S_ISDIR(mode):
                raise OutputPathError(f"{role} {dest} is a directory")
            if not stat.S_ISREG(mode):
                raise OutputPathError(f"{role} {dest} exists and is not a regular file")
        if not dest.parent.is_dir():
            raise OutputPathError(f"{role} {dest}: folder {dest.parent} does not exist")


def _same_file(a: str | Path, b: str | Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


@contextlib.contextmanager
def naming_dest(dest: Path) -> Iterator[None]:
    """Re-raise any ``OSError`` inside as the same error naming ``dest``."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror or os.strerror(e.errno or 0), str(dest)) from None


class AtomicOutput:
    """A file written beside its destination and renamed into place on :meth:`commit`.

    Args:
        dest: The destination the user named.

    Raises:
        OSError: Naming ``dest``, if the temp file cannot be created.
    """

    def __init__(self, dest: str | Path) -> None:
        self.dest = Path(dest)
        self.tmp: Path | None = None
        with naming_dest(self.dest):
            for _ in range(100):
                name = self.dest.parent / f".{self.dest.name}.{secrets.token_hex(4)}.tmp"
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    continue
                self.tmp = name
                self.file: IO[bytes] = os.fdopen(fd, "wb")
                break
            else:  # pragma: no cover - 100 random names taken
                raise FileExistsError(errno.EEXIST, "no free temp file name")

    def write(self, data: bytes) -> None:
        """Append ``data``.

        Raises:
            OSError: Naming the destination.
        """
        with naming_dest(self.dest):
            self.file.write(data)

    def commit(self) -> None:
        """Close the temp file and rename it onto the destination.

        Raises:
            OSError: Naming the destination.
        """
        with naming_dest(self.dest):
            self.file.close()
            assert self.tmp is not None
            os.replace(self.tmp, self.dest)
            self.tmp = None

    def abort(self) -> None:
        """Close and remove the temp file; never raises."""
        with contextlib.suppress(Exception):
            self.file.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None
