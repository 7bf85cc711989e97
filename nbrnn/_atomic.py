"""Write a file so that its destination never holds a partial result."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

import numpy as np

from .errors import ArgumentError, OutputError, shown


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


#: What a path that is neither a regular file nor a directory leads to, as the messages name it.
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def check_flag(value, name: str) -> bool:
    """``value`` if it is True or False (also NumPy's); anything else is an error, not taken for its truth."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"Argument '{name}' must be True or False, not {shown(value)}")
    return bool(value)


def check_destination(output_path, protected=(), overwrite: bool = False) -> str:
    """The absolute output path, after checking that writing it loses nothing.

    ``protected``: (what, path) pairs of the files the job reads (input audio, control file, model
    file; a path that is None or empty is skipped); the output may be none of them, whatever the
    spelling (links included), even with ``overwrite``.  An existing output is kept unless
    ``overwrite``, and is replaced only if it is a regular file (or a symbolic link to one, which is
    replaced by the new file): a device, FIFO or socket would become a regular file, even with
    ``overwrite``.  The output's folder must exist and be writable.
    """
    check_flag(overwrite, "overwrite")
    try:
        given = os.fsdecode(os.fspath(output_path))
    except (TypeError, ValueError) as exc:
        raise OutputError(f"output path {output_path!r} is not a usable file name ({exc})") from None
    if "\0" in given:
        raise OutputError(f"output path {output_path!r} is not a usable file name (it holds a NUL character)")
    if given.endswith(("/", os.sep)):
        raise OutputError(f"output '{output_path}' ends with a slash, which names a folder; give a file name")
    # the folder as the system resolves it ('link/..' is the link target's parent, not the current folder);
    # the name itself stays as given (a link there is replaced, not followed)
    out = os.path.join(os.path.realpath(os.path.dirname(given) or "."), os.path.basename(given))
    for what, path in protected:
        if path and _same_file(out, os.path.realpath(os.fspath(path))):
            raise OutputError(f"output '{output_path}' is the {what}; nbrnn never overwrites a file it reads")
    if os.path.isdir(out):
        raise OutputError(f"output '{output_path}' is a directory; give a file name")
    try:
        mode = os.stat(out).st_mode  # what a link leads to
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise OutputError(f"output '{output_path}' is {kind}; nbrnn replaces only regular files, even with "
                          f"overwrite=True (--overwrite)")
    if os.path.lexists(out) and not overwrite:  # a dangling link too: the rename would replace it
        raise OutputError(f"output '{output_path}' exists; pass overwrite=True (--overwrite) to replace it")
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        state = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputError(f"output folder '{folder}' {state}")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder '{folder}' is not writable")
    return out


_SUFFIX = ".partial"
#: Characters mkstemp puts between the prefix and the suffix.
_RANDOM = 8


def _temp_prefix(folder: str, name: str) -> str:
    """``.<name>.``, the name shortened so that the temporary file's name fits the folder's limit (any legal
    output name works, 255 bytes included)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = -1
    if limit <= 0:
        limit = 255
    room = limit - len("..") - _RANDOM - len(_SUFFIX)
    while name and len(os.fsencode(name)) > room:
        name = name[:-1]  # whole characters, never part of a multibyte one
    return f".{name}."


@contextlib.contextmanager
def atomic_output(target: str, overwrite: bool = True):
    """Yield a temporary path beside ``target``; on success it becomes ``target``, on any failure it vanishes.

    The temporary file lives in the destination folder, so the final rename is atomic;
    an interruption (Ctrl-C) or an error leaves neither a partial ``target`` nor a
    stray temporary file.  Without ``overwrite`` a ``target`` that appeared while the
    temporary file was written (another job, a user) is kept and the job fails: the
    file is linked into place, which fails if the name exists.
    """
    target = os.fspath(target)
    folder = os.path.realpath(os.path.dirname(target) or ".")  # as the system resolves it (check_destination)
    target = os.path.join(folder, os.path.basename(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(folder, os.path.basename(target)), suffix=_SUFFIX, dir=folder)
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
        if overwrite:
            os.replace(tmp, target)
        else:
            _place_new(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write '{target}': {exc.strerror or exc}") from None
        raise


def _place_new(tmp: str, target: str) -> None:
    """Move ``tmp`` to ``target`` only if no file of that name exists, at that moment."""
    try:
        os.link(tmp, target)
    except OSError as exc:
        # FileExistsError; or a file system without hard links: check, then rename (a narrow race remains)
        if isinstance(exc, FileExistsError) or os.path.lexists(target):
            raise OutputError(f"output '{target}' appeared while it was being written (another job?); it is "
                              f"kept: pass overwrite=True (--overwrite) to replace it") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
