"""Write a file so that its destination never holds a partial result."""

from __future__ import annotations

import contextlib
import os
import tempfile

from .errors import OutputError


@contextlib.contextmanager
def atomic_output(target: str):
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on any failure it vanishes.

    The temporary file lives in the destination folder, so the final rename is atomic;
    an interruption (Ctrl-C) or an error leaves neither a partial ``target`` nor a
    stray temporary file.
    """
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write '{target}': {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        try:
            mode = os.stat(target).st_mode & 0o777
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write '{target}': {exc.strerror or exc}") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
