"""The ICASSP-25 order sweep: Lagrange and minimax kernels of order 1-5, up and down.

Protocol (the paper's, on the clips it published): the 18 DAFx-24 models
(trained at 44.1 kHz) run up at 48 kHz (R = 160/147, delta = +0.088) and down
at R = 0.91875 = 147/160 (40 516.875 Hz, delta = -0.081: 48 -> 44.1 kHz
relative to the trained rate).  Each of the four clips (``audio/clips``, 16-bit,
scaled by 1/32767 as the authors did) is ideally resampled (one FFT) to the
new rate and run through the adapted model; the reference is the plain model
at 44.1 kHz, ideally resampled to the new rate.  The SNR is measured at the new
rate skipping the first 2000 samples, energies pooled over the four clips.
The clips get no leading silence (the model starts from its zero state inside
the skipped samples) and 50 ms of trailing silence (keeps the FFT's circular
wrap off the clip).

Kernels: Lagrange order N on delays 1..N+1 at delta = R - 1 (extrapolation
below the trained rate) and minimax (L-infinity optimal over 0..0.5 x Nyquist)
of order N on the same delays.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from . import sources
from .evaluation import Outcome, evaluate, method, plain_output, pooled, snr_db, status_counts
from .tables import fmt, fmt_hz, read_csv, write_csv

ORDERS = (1, 2, 3, 4, 5)
DIRECTIONS = {"up": Fraction(48000, 44100), "down": Fraction(147, 160)}
KERNELS = ("lagrange", "minimax")
SKIP = 2000
TAIL = 0.05

METHODS = tuple(method(f"{kernel}{order}", kernel, order=order) for kernel in KERNELS for order in ORDERS)


def run_rate(trained_rate: float, direction: str) -> Fraction:
    return Fraction(trained_rate) * DIRECTIONS[direction]


@functools.lru_cache(maxsize=4)
def _reference(spec, input_spec):
    return plain_output(sources.load_model(spec), sources.prepare_input(input_spec).x)


def icassp25_task(spec, input_spec, rate, methods) -> list:
    """One model, one clip, one direction, every kernel: [(signal, error, status), ...]."""
    model = sources.load_model(spec)
    prepared = sources.prepare_input(input_spec)
    outcomes = evaluate(model, prepared.x, prepared.begin, prepared.end, rate, methods,
                        reference=_reference(spec, input_spec), compare_at="run", skip=SKIP)
    return [(o.signal, o.error, o.status) for o in outcomes]


def compute(models, shared, settings, *, seconds: float | None = None, methods=METHODS) -> list:
    """Rows (model, direction, fs_hz, kernel, order, snr_db, status), pooled over the clips, in a fixed order."""
    params, keys = [], []
    for spec in models:
        fs = sources.load_model(spec).trained_rate
        for direction in DIRECTIONS:
            rate = run_rate(fs, direction)
            multiple = sources.common_multiple(fs, [rate])
            for clip in sources.clip_paths(shared):
                input_spec = sources.InputSpec("wav16", clip, fs, 0.0, seconds, 0.0, TAIL, multiple)
                params.append((spec, input_spec, rate, tuple(methods)))
                keys.append((spec.name, direction, rate))
    results = settings.run(icassp25_task, params, "icassp25")
    per = {}
    for key, result in zip(keys, results):
        for meth, (signal, error, status) in zip(methods, result):
            per.setdefault(key + (meth,), []).append(Outcome(signal, error, status))
    rows = []
    for (name, direction, rate, meth), outcomes in per.items():
        total = pooled(outcomes)
        rows.append({"model": name, "direction": direction, "fs_hz": float(rate), "kernel": meth.method,
                     "order": meth.kwargs["order"], "snr_db": snr_db(total.signal, total.error),
                     "status": total.status})
    return rows


def summarise(rows) -> list:
    groups = {}
    for r in rows:
        groups.setdefault((r["direction"], r["kernel"], r["order"]), []).append(r)
    out = []
    for (direction, kernel, order), group in groups.items():
        values = np.array([r["snr_db"] if not math.isnan(r["snr_db"]) else -math.inf for r in group])
        finite = np.sort(values)
        out.append({"direction": direction, "kernel": kernel, "order": order, "models": len(group),
                    **status_counts(group),
                    "mean": float(np.mean(values)), "median": float(np.median(values)),
                    "q25": float(np.percentile(finite, 25, method="lower")),
                    "q75": float(np.percentile(finite, 75, method="higher")),
                    "min": float(finite[0]), "max": float(finite[-1])})
    return out


def write(rows, out, *, suffix="", comments=()) -> list:
    table = [[r["model"], r["direction"], fmt_hz(r["fs_hz"]), r["kernel"], r["order"], fmt(r["snr_db"], 2),
              r["status"]] for r in rows]
    per_model = write_csv(out / f"icassp25{suffix}_snr.csv",
                          ["model", "direction", "fs_hz", "kernel", "order", "snr_db", "status"], table, comments)
    summary_rows = [[s["direction"], s["kernel"], s["order"], s["models"], s["diverged"], s["negative"],
                     *(fmt(s[k], 2) for k in ("mean", "median", "q25", "q75", "min", "max"))]
                    for s in summarise(rows)]
    summary = write_csv(out / f"icassp25{suffix}_summary.csv",
                        ["direction", "kernel", "order", "models", "diverged", "negative", "mean_db", "median_db",
                         "q25_db", "q75_db", "min_db", "max_db"], summary_rows,
                        list(comments) + ["across models: mean, median, quartiles (nearest model), min, max"])
    png = render(summary, out / f"icassp25{suffix}_orders.png")
    return [per_model, summary, png]


def render(summary_csv, png_path):
    """SNR against order: median over models with the interquartile range, up (solid) and down (dashed)."""
    from .plotting import figure, save_png

    comments, rows = read_csv(summary_csv)
    fig = figure(9.0, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    colours = {"up": "#1f77b4", "down": "#d62728"}
    for ax, kernel in zip(axes, KERNELS):
        for direction in DIRECTIONS:
            mine = [r for r in rows if r["kernel"] == kernel and r["direction"] == direction]
            order = np.array([int(r["order"]) for r in mine])
            med = np.array([float(r["median_db"]) for r in mine])
            lo = np.array([float(r["q25_db"]) for r in mine])
            hi = np.array([float(r["q75_db"]) for r in mine])
            shift = -0.06 if direction == "up" else 0.06
            ratio = DIRECTIONS[direction]
            ax.errorbar(order + shift, med, yerr=[np.clip(med - lo, 0, 200), np.clip(hi - med, 0, 200)],
                        fmt="o-" if direction == "up" else "s--", color=colours[direction], capsize=3,
                        label=f"{direction}: R = {float(ratio):.5g}")
            for o, r in zip(order, mine):
                if int(r["diverged"]):
                    ax.annotate(f"{r['diverged']} diverged", (o + shift, float(r["median_db"])), fontsize=6,
                                xytext=(3, -10), textcoords="offset points", color=colours[direction])
        ax.set_title(f"{kernel.capitalize()} kernels")
        ax.set_xlabel("order")
        ax.set_xticks(ORDERS)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("SNR at the new rate (dB), median and IQR over models")
    fig.suptitle("ICASSP-25 protocol: SNR against interpolation order")
    fig.tight_layout()
    return save_png(fig, png_path)


def protocol_lines(seconds) -> list:
    length = "whole clips" if seconds is None else f"the first {seconds:g} s of each clip"
    return [f"ICASSP-25 protocol: {length} (audio/clips, 4 files, int16/32767), FFT-resampled 44.1 kHz -> fs'; "
            f"reference = plain model at 44.1 kHz resampled to fs'",
            f"SNR (dB) at fs' skipping the first {SKIP} samples, energies pooled over the clips; float64; "
            f"up: fs' = 48 kHz (R = 160/147), down: fs' = 40516.875 Hz (R = 147/160 = 0.91875)",
            "status: ok, diverged (UnstableError / non-finite output) or negative (SNR < 0 dB)"]


def missing(settings):
    if settings.shared is None:
        return ("needs the shared data (models/proteus and audio/clips); "
                "set NBRNN_SHARED or place shared/ beside the repo")
    return None


def make(settings) -> list:
    models = sources.models_in(settings.models_dir) if settings.models_dir else sources.proteus_models(settings.shared)
    seconds = 0.5 if settings.quick else None
    settings.progress.say(f"[icassp25] {len(models)} model(s) x up/down x {len(METHODS)} kernels on "
                          f"{'0.5 s of each clip' if settings.quick else 'the whole clips'}")
    rows = compute(models, settings.shared, settings, seconds=seconds)
    tag = "" if sources.is_paper_set(models) else "_" + sources.model_set_name(settings.models_dir, settings.shared)
    return write(rows, settings.out, suffix=tag + ("_quick" if settings.quick else ""),
                 comments=protocol_lines(seconds))
