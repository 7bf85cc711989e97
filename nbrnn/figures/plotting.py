"""Headless, reproducible PNG output with matplotlib (imported only when a plot is drawn).

``import nbrnn`` never imports matplotlib; the figure modules call
:func:`pyplot` inside their render functions.  Every plot uses the Agg
backend, one fixed style (matplotlib's defaults, DejaVu Sans), a fixed size
and dpi, and PNG metadata without the software version, so a rerun writes the
same bytes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..errors import ArgumentError
from .tables import atomic_write

DPI = 100

#: Method colours, shared by every figure so one method looks the same everywhere.
METHOD_COLOURS = {
    "naive": "#7f7f7f",
    "stn": "#8c564b",
    "linear": "#1f77b4",
    "allpass": "#ff7f0e",
    "lagrange3": "#2ca02c",
    "cubic": "#2ca02c",
    "minimax3": "#9467bd",
    "oversample": "#e377c2",
    "resample": "#17becf",
}

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.4,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}


def pyplot():
    """matplotlib.pyplot on the Agg backend, with a clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ArgumentError("plots need matplotlib, which is not installed: pip install 'nbrnn[plots]' "
                            "(the CSV data are written without it)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(width: float, height: float):
    """A new figure of ``width`` x ``height`` inches in the house style."""
    plt = pyplot()
    plt.rcdefaults()
    plt.rcParams.update(_STYLE)
    return plt.figure(figsize=(width, height), dpi=DPI)


def save_png(fig, path) -> Path:
    """Write ``fig`` as a PNG (atomically) and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return atomic_write(Path(path), buf.getvalue())


def covered(label: str, ratio: float) -> bool:
    """Whether a point is left out of a plot: ``oversample`` at R >= 1 is cubic Lagrange (factor 1), whose curve
    it would cover."""
    return label == "oversample" and ratio >= 1.0


def legend_label(label: str) -> str:
    """A method's name in a legend (``oversample`` says where it is drawn: :func:`covered`)."""
    return label + (" (R < 1)" if label == "oversample" else "")


def method_colour(label: str) -> str:
    return METHOD_COLOURS.get(label, "#000000")


def snr_axis_range(values, floor: float = -10.0, exact: float = 100.0, margin: float = 8.0) -> tuple:
    """(floor, ceiling) of an SNR axis.

    Values above ``exact`` dB are (near) bit-exact matches, such as every method at
    R = 1; they would squash the rest of the plot, so the ceiling follows the
    other values and those points are drawn on it (see :func:`clip_marks`).
    """
    ordinary = [v for v in values if math.isfinite(v) and v < exact]
    return floor, max(40.0, max(ordinary) + margin if ordinary else exact)


def clip_marks(ax, x, y, ceiling: float, colour: str) -> None:
    """Mark with a triangle on the ceiling the points above it."""
    above = [(xi, yi) for xi, yi in zip(x, y) if yi > ceiling]
    if above:
        ax.plot([a for a, _ in above], [ceiling] * len(above), "^", color=colour, ms=5, clip_on=False)
