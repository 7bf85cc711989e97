"""Exceptions raised by nbrnn.

Every error nbrnn raises on purpose derives from :class:`NbrnnError`.  The
subclasses also derive from the built-in exception a caller would expect
(``ValueError``, ``TypeError``, ``OSError``), so ``except ValueError`` keeps
working.  Messages name the argument, the constraint and the offending value.
"""


class NbrnnError(Exception):
    """Root of every error nbrnn raises on purpose."""


class ModelFormatError(NbrnnError, ValueError):
    """A model file could not be read: unknown format, malformed or hostile content."""


class ModelShapeError(ModelFormatError):
    """A model's weights do not fit together (declared sizes versus stored arrays)."""


class UnsafeModelError(ModelFormatError):
    """A model file asked for something nbrnn refuses to do (e.g. a pickle naming a forbidden global)."""


class ArgumentError(NbrnnError, ValueError):
    """An argument has an impossible value (sample rate, method, order, ...)."""


class AudioError(NbrnnError, ValueError):
    """Audio given to a model has the wrong type, shape or non-finite samples."""


class UnstableError(NbrnnError, ArithmeticError):
    """The adapted model produced non-finite output (the interpolated feedback loop diverged)."""


class OutputError(NbrnnError, OSError):
    """An output file cannot be written (exists, is the input, or the folder is not writable)."""


def plain(value, limit: int = 120) -> str:
    """Text taken from a file, fit for a one-line message: control characters escaped (others, accented ones too,
    kept), at most ``limit`` characters (a file can hold terminal escape codes, line breaks or megabytes in a
    name)."""
    text = one_line((value if isinstance(value, str) else repr(value))[:2 * limit])
    return text if len(text) <= limit else text[:limit - 3] + "..."


def names_text(names, most: int = 8) -> str:
    """Names from a model file (its knobs) for a one-line message: each through :func:`plain`, at most ``most``."""
    text = ", ".join(plain(name, 60) for name in names[:most])
    return text + (f", ... ({len(names)} in all)" if len(names) > most else "")


def shown(value, limit: int = 60) -> str:
    """A value from a file as Python writes it (strings quoted), fit for a one-line message: ``repr`` already
    escapes control characters (escaping its text again, as :func:`plain` would, doubled every backslash)."""
    text = repr(value[:2 * limit] if isinstance(value, (str, bytes)) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(text: str) -> str:
    """``text`` with its control characters (line breaks, tabs, terminal escapes) written as Python escapes, so that
    a message naming a path or a value stays one line; other characters, accented ones too, are kept."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
