"""Deterministic CSV files: fixed float formatting, no timestamps, atomic replacement.

A figure's data file is written to a temporary file beside its target and
renamed into place, so an interrupted run never leaves a half-written file,
and a rerun writes the same bytes.  Leading ``#`` lines describe the protocol.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import tempfile
from pathlib import Path


def fmt(value, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` decimals ('inf', '-inf', 'nan' spelled out), the rest as str."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:.{digits}f}"
        return "0." + "0" * digits if text == "-0." + "0" * digits else text
    return str(value)


def fmt_hz(rate) -> str:
    """A rate in Hz: whole numbers without decimals, others with three."""
    rate = float(rate)
    return str(int(rate)) if rate.is_integer() else f"{rate:.3f}"


def check_out(text: str, argument: str = "--out") -> Path:
    """The output folder ``text``, checked before any figure is computed: not empty, and it or the nearest folder
    above it that exists (where it will be made) is a folder this process can write to."""
    from ..errors import ArgumentError, shown

    if not isinstance(text, str) or not text.strip():
        raise ArgumentError(f"Argument '{argument}' must name a folder, not {shown(text)}")
    out = Path(text)
    there = out
    while not there.exists() and there.parent != there:
        there = there.parent
    if there == out and not out.is_dir():
        raise ArgumentError(f"Argument '{argument}' must be a folder, not the file {shown(text)}")
    if not there.is_dir():
        raise ArgumentError(f"Argument '{argument}' must be a folder, not {shown(text)}: {shown(str(there))} is a file")
    if not os.access(there, os.W_OK | os.X_OK):
        raise ArgumentError(f"Argument '{argument}' must be a folder you can write to, not {shown(text)} "
                            f"({shown(str(there))} is not writable)")
    return out


def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private; give it the permissions an ordinary new file gets
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def csv_bytes(header, rows, comments=()) -> bytes:
    """The CSV text of ``rows`` (already formatted cells) under ``header``, ``# comments`` first."""
    out = io.StringIO()
    for line in comments:
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def write_csv(path, header, rows, comments=()) -> Path:
    """Write a CSV file (gzip-compressed, reproducibly, when ``path`` ends in ``.gz``)."""
    data = csv_bytes(header, rows, comments)
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        # mtime=0 and no file name in the gzip header: the same bytes on every run
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = buf.getvalue()
    return atomic_write(path, data)


def read_csv(path) -> tuple[list[str], list[dict]]:
    """The ``#`` comment lines and the rows (dicts of strings) of a file written by :func:`write_csv`."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    comments = [line[2:] for line in lines if line.startswith("# ")]
    body = [line for line in lines if not line.startswith("#")]
    return comments, list(csv.DictReader(body))

