"""The article's experiment: a 100 Hz sine through a model at its training rate and at R times it.

The article (and RTNeural's ``LinInterp`` correction) runs the model at
``R·fs`` with the fed-back state delayed by ``R`` samples through linear
interpolation, and passes the *delayed* state on to the output layer
(``output='delayed'``).  Its figures show 0.01-0.05 s of the output at the
training rate against the output at ``R·fs``: uncorrected (the plain model) at
R = 2, corrected at R = 2, 3, 1.5, 1.25, 1.75 and 4.33.

With the shared data the article's own model (``models/article``, trained at
96 kHz) is used; without it the embedded model at its trained rate.
"""

from __future__ import annotations

import math

import numpy as np

from . import sources
from .evaluation import ideal_resample, snr_db
from .tables import fmt, fmt_hz, read_csv, write_csv

FREQUENCY = 100.0
SECONDS = 0.1
WINDOW = (0.01, 0.05)

#: (ratio, method) of each panel, in the article's order; 'naive' is its "uncorrected".
CASES = ((2.0, "naive"), (2.0, "linear"), (3.0, "linear"), (1.5, "linear"), (1.25, "linear"), (1.75, "linear"),
         (4.33, "linear"))


def run_rate(base_rate: float, ratio: float) -> float:
    """R·fs, rounded to 1 mHz so that 4.33 x 96 kHz is 415680 Hz, not 415679.99999999994."""
    return round(base_rate * ratio, 3)


def sine(sample_rate: float) -> np.ndarray:
    """The article's input: sin(2π·100·n/fs), amplitude 1, 0.1 s, computed in float64."""
    n = int(round(SECONDS * sample_rate))
    return np.sin(2.0 * np.pi * FREQUENCY * np.arange(n) / sample_rate)


def sine_response(model, sample_rate: float, method: str) -> np.ndarray:
    """The model's output for the article's sine at ``sample_rate`` (delayed-output convention)."""
    return model.process(sine(sample_rate), sample_rate, method=method, output="delayed")


def case_name(ratio: float, method: str) -> str:
    return f"x{ratio:.2f}_{'uncorrected' if method == 'naive' else 'corrected'}"


def compute(spec: sources.ModelSpec) -> dict:
    """Every curve of the article's figures for one model.

    Returns
    -------
    dict
        ``'base'`` and one entry per case name: (ratio, method, sample rate, output);
        ``'snr'``: per case, the SNR (dB) of the output (ideally resampled to the
        training rate) against the training-rate output over the plotted window.
    """
    model = sources.load_model(spec)
    base_rate = model.trained_rate
    base = sine_response(model, base_rate, "naive")
    curves = {"base": (1.0, "naive", base_rate, base)}
    first, last = (int(round(t * base_rate)) for t in WINDOW)
    snr = {}
    for ratio, method in CASES:
        rate = run_rate(base_rate, ratio)
        y = sine_response(model, rate, method)
        name = case_name(ratio, method)
        curves[name] = (ratio, method, rate, y)
        back = ideal_resample(y, base.size)[first:last]
        ref = base[first:last]
        snr[name] = snr_db(math.fsum(ref ** 2), math.fsum((back - ref) ** 2))
    curves["snr"] = snr
    return curves


def make(settings) -> list:
    """Write the article's curves (CSV), a summary and the figure into ``settings.out``."""
    shared = settings.shared
    spec = sources.article_model(shared) if shared is not None else sources.embedded_model()
    settings.progress.say(f"[article] 100 Hz sine through {spec.name} at {len(CASES) + 1} rates")
    data = compute(spec)
    model = sources.load_model(spec)
    tag = f"article_{spec.name}"
    comments = [f"model: {spec.name}, trained at {model.trained_rate:g} Hz",
                f"input: sin(2*pi*{FREQUENCY:g}*n/fs), amplitude 1, {SECONDS:g} s; rows cover t = "
                f"{WINDOW[0]:g}..{WINDOW[1]:g} s",
                "method naive = uncorrected; linear = the article's linear-interpolation delay; both pass the "
                "delayed state to the output layer (output='delayed')"]
    rows = []
    for name, value in data.items():
        if name == "snr":
            continue
        ratio, method, rate, y = value
        first, last = int(math.ceil(WINDOW[0] * rate)), int(math.floor(WINDOW[1] * rate))
        for n in range(first, last + 1):
            rows.append([name, fmt(ratio, 2), method, fmt_hz(rate), n, f"{y[n]:.6e}"])
    curves = write_csv(settings.out / f"{tag}_curves.csv.gz", ["case", "ratio", "method", "fs_hz", "n", "y"],
                       rows, comments)
    summary_rows = [[case_name(r, m), fmt(r, 2), m, fmt_hz(run_rate(model.trained_rate, r)),
                     fmt(data["snr"][case_name(r, m)], 2)] for r, m in CASES]
    summary = write_csv(settings.out / f"{tag}_summary.csv", ["case", "ratio", "method", "fs_hz", "snr_db"],
                        summary_rows, comments[:3] + [
                            f"snr_db: output resampled (FFT) to the training rate against the training-rate output "
                            f"over {WINDOW[0]:g}..{WINDOW[1]:g} s; includes the R-1 sample lag of the delayed "
                            f"output"])
    png = render(curves, summary, settings.out / f"{tag}.png")
    return [curves, summary, png]


def render(curves_csv, summary_csv, png_path):
    """Draw the article's seven panels from the CSV data."""
    from .plotting import figure, save_png

    comments, rows = read_csv(curves_csv)
    _, summary = read_csv(summary_csv)
    snr = {row["case"]: row["snr_db"] for row in summary}
    series = {}
    for row in rows:
        t = int(row["n"]) / float(row["fs_hz"])
        series.setdefault(row["case"], ([], [], row))[0].append(t)
        series[row["case"]][1].append(float(row["y"]))
    model_line = comments[0].split(",")[0].replace("model: ", "")
    fig = figure(10.0, 12.0)
    axes = fig.subplots(4, 2, sharex=True)
    base_t, base_y, _ = series["base"]
    cases = [name for name in series if name != "base"]
    for ax, name in zip(axes.flat, cases):
        t, y, row = series[name]
        ratio = float(row["ratio"])
        corrected = row["method"] != "naive"
        ax.plot(base_t, base_y, color="#1f77b4", label="Training Sample Rate")
        ax.plot(t, y, "--", color="#ff7f0e", label=f"{ratio:.2f}x Training Sample Rate")
        ax.set_title(f"{ratio:.2f}x Sample Rate{' (Corrected)' if corrected else ''}: SNR {snr[name]} dB")
        ax.set_xlim(*WINDOW)
        ax.legend(loc="lower left", fontsize=7)
    for ax in axes.flat[len(cases) - 2:len(cases)]:
        ax.set_xlabel("Time [seconds]")
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("Amplitude")
    notes = axes.flat[len(cases)]
    notes.axis("off")
    notes.text(0.0, 0.9, "\n".join([
        f"Model: {model_line}",
        "Input: 100 Hz sine, amplitude 1, 0.1 s, at each rate.",
        "Uncorrected: the plain model (method 'naive').",
        "Corrected: fed-back state delayed by R samples with",
        "linear interpolation; the delayed state feeds the",
        "output layer (the article's / RTNeural's convention).",
        "SNR: output resampled to the training rate vs the",
        "training-rate output, 0.01-0.05 s.",
    ]), va="top", fontsize=9, transform=notes.transAxes)
    fig.suptitle(f"RNN processing at R x the training sample rate: {model_line}")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return save_png(fig, png_path)
