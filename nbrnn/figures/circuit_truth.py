"""The embedded model against the true circuit at every rate, beside model against model.

The embedded model was trained at 48 kHz on :func:`nbrnn.circuit.simulate_diode_clipper`,
which simulates the same analog circuit at any rate.  So at a run rate fs' the
adapted model can be judged against the truth it is meant to approximate, not
only against itself at 48 kHz:

- *vs circuit*: input ``test_signal(fs', 2 s)`` (the same continuous-time
  signal sampled at fs'), SNR of the adapted model's output against
  ``simulate_diode_clipper`` of that input at fs';
- *vs model*: the usual SNR against the plain model at 48 kHz on
  ``test_signal(48 kHz, 2 s)``, compared at the lower of the two rates after
  ideal (FFT) resampling.

Both skip the first 10 ms (the start-up transient; the test signal is silent
there).  Rates: 22.05, 32, 44.1, 48, 88.2, 96, 176.4 and 192 kHz, and a
continuous sweep of 40 rates between them.  At 48 kHz the vs-circuit SNR is
the model's own accuracy: no adaptation can be expected to beat it by much.
"""

from __future__ import annotations

import functools

import numpy as np

from . import sources
from .evaluation import compare, evaluate, plain_output, snr_db
from .sweep import METHODS, rate_grid
from .tables import fmt, fmt_hz, read_csv, write_csv

NAMED_RATES = (22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
SECONDS = 2.0
SKIP = 0.01
COUNT = 40


def rates_for(trained_rate: float, count: int = COUNT) -> list:
    low, high = min(NAMED_RATES) / trained_rate, max(NAMED_RATES) / trained_rate
    return rate_grid(trained_rate, low, high, count)


@functools.lru_cache(maxsize=2)
def _reference(spec, seconds):
    from ..circuit import test_signal

    model = sources.load_model(spec)
    return plain_output(model, test_signal(model.trained_rate, seconds))


def circuit_task(spec, rate, methods, seconds) -> list:
    """One run rate, every method: [(vs-model outcome, vs-circuit outcome) as (signal, error, status) pairs]."""
    from ..circuit import simulate_diode_clipper, test_signal

    model = sources.load_model(spec)
    fs = model.trained_rate
    x = test_signal(fs, seconds)
    x_run = test_signal(rate, seconds)
    truth = simulate_diode_clipper(x_run, rate)
    outputs = {}
    vs_model = evaluate(model, x, 0, x.size, rate, methods, reference=_reference(spec, seconds), compare_at="lower",
                        skip=int(round(SKIP * min(fs, rate))), x_run=x_run, outputs=outputs)
    first = int(round(SKIP * rate))
    target = truth[first:]
    result = []
    for meth, mm in zip(methods, vs_model):
        if mm.status == "n/a":
            vc = mm
        else:
            vc = compare(outputs[meth.label], target, first, x_run.size)
        result.append(((mm.signal, mm.error, mm.status), (vc.signal, vc.error, vc.status)))
    return result


def compute(spec, settings, *, count=COUNT, seconds=SECONDS, methods=METHODS) -> list:
    model = sources.load_model(spec)
    rates = rates_for(model.trained_rate, count)
    results = settings.run(circuit_task, [(spec, rate, tuple(methods), seconds) for rate in rates], "circuit")
    rows = []
    for rate, result in zip(rates, results):
        for meth, (mm, vc) in zip(methods, result):
            rows.append({"fs_hz": rate, "ratio": rate / model.trained_rate, "method": meth.label,
                         "named": rate in NAMED_RATES, "vs_model": snr_db(mm[0], mm[1]), "model_status": mm[2],
                         "vs_circuit": snr_db(vc[0], vc[1]), "circuit_status": vc[2]})
    return rows


def write(rows, out, spec_name, trained_rate, seconds=SECONDS) -> list:
    comments = [f"model: {spec_name} (trained at {trained_rate:g} Hz on nbrnn.circuit.simulate_diode_clipper)",
                f"vs_circuit: SNR (dB) of the adapted model on test_signal(fs', {seconds:g} s) against "
                f"simulate_diode_clipper of that input at fs'",
                f"vs_model: SNR (dB) against the plain model at {trained_rate:g} Hz on test_signal("
                f"{trained_rate:g}, {seconds:g} s), compared at the lower rate after FFT resampling",
                f"both skip the first {SKIP:g} s; status: ok, diverged (UnstableError / non-finite output), "
                f"negative (stable, SNR < 0 dB), n/a (needs R >= 1); "
                f"oversample at R >= 1 is cubic Lagrange; named = one of the common rates"]
    table = [[fmt_hz(r["fs_hz"]), fmt(r["ratio"], 6), r["method"], int(r["named"]), fmt(r["vs_circuit"], 2),
              r["circuit_status"], fmt(r["vs_model"], 2), r["model_status"]] for r in rows]
    csv_path = write_csv(out / "circuit_snr.csv", ["fs_hz", "ratio", "method", "named", "vs_circuit_db",
                                                    "circuit_status", "vs_model_db", "model_status"], table, comments)
    return [csv_path, render(csv_path, out / "circuit_snr.png")]


def render(csv_path, png_path):
    """SNR against run rate, against the circuit (top) and against the model at its trained rate (bottom)."""
    from .plotting import clip_marks, covered, figure, legend_label, method_colour, save_png, snr_axis_range

    comments, rows = read_csv(csv_path)
    labels = list(dict.fromkeys(r["method"] for r in rows))
    trained = float(comments[0].split("trained at ")[1].split(" Hz")[0])
    fig = figure(9.0, 8.0)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, column, status, title in ((top, "vs_circuit_db", "circuit_status", "against the true circuit at fs'"),
                                      (bottom, "vs_model_db", "model_status",
                                       f"against the model at its trained rate ({trained / 1000:g} kHz)")):
        floor, ceiling = snr_axis_range([float(r[column]) for r in rows if r[status] == "ok"])
        for label in labels:
            mine = [r for r in rows if r["method"] == label and r[status] != "n/a"
                    and not covered(label, float(r["fs_hz"]) / trained)]
            khz = np.array([float(r["fs_hz"]) / 1000 for r in mine])
            snr = np.array([float(r[column]) for r in mine])
            stable = np.array([r[status] != "diverged" for r in mine])
            seen = stable & (snr >= floor)
            named = np.array([r["named"] == "1" for r in mine])
            colour = method_colour(label)
            shown = np.where(seen, np.minimum(snr, ceiling), np.nan)
            ax.plot(khz, shown, "-", color=colour, lw=1.3, label=legend_label(label))
            ax.plot(khz[seen & named], shown[seen & named], "o", color=colour, ms=3.5)
            clip_marks(ax, khz[stable], snr[stable], ceiling, colour)
            below = stable & ~seen
            if below.any():
                ax.plot(khz[below], np.full(below.sum(), floor), "v", color=colour, ms=5, clip_on=False)
            if (~stable).any():
                ax.plot(khz[~stable], np.full((~stable).sum(), floor + 2.0), "x", color=colour, ms=5)
        ax.set_ylim(floor, ceiling)
        ax.axvline(trained / 1000, color="k", lw=0.6, ls=":")
        ax.set_ylabel("SNR (dB)")
        ax.set_title(f"Embedded model adapted to fs', {title}", fontsize=9)
    top.legend(ncol=4, fontsize=8, loc="lower right")
    bottom.set_xscale("log")
    ticks = [22.05, 32, 44.1, 48, 88.2, 96, 192]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([f"{t:g}" for t in ticks])
    bottom.minorticks_off()
    bottom.set_xlabel("run rate fs' (kHz); dots: common rates; x: diverged; ^ / v: above / below the axis "
                      "(exact at R = 1)")
    fig.tight_layout()
    return save_png(fig, png_path)


def make(settings) -> list:
    spec = sources.embedded_model()
    model = sources.load_model(spec)
    settings.progress.say(f"[circuit] embedded model vs simulate_diode_clipper at "
                          f"{len(rates_for(model.trained_rate))} rates x {len(METHODS)} methods")
    rows = compute(spec, settings)
    return write(rows, settings.out, spec.name, model.trained_rate)
