"""The continuous sweep: SNR against R = fs'/fs from 0.5 to 4.5 for eight methods, over a set of models.

Protocol (per model, at its trained rate ``fs``): a 1 s excerpt (a riff
from the shared data, else the built-in test signal), band-limited to
``R_min · fs/2`` (the lowest run rate's Nyquist) so that every run rate sees
the same input band, with 50 ms of silence before it (the model settles there:
the start-up transient is skipped) and 20 ms of silence after it.  For
each run rate the input is ideally resampled (one FFT) to ``fs' = R·fs``, the
adapted model runs there, and its output is compared with the plain model at
``fs`` at the lower of the two rates (:mod:`nbrnn.figures.evaluation`).

Methods: naive, stn, linear, allpass, cubic Lagrange (``lagrange3``), minimax
order 3 (``minimax3``), ``oversample`` and the ``resample`` baseline (polyphase).
Linear and allpass do not apply below R = 1 ('n/a').  ``oversample`` runs the
model at L·fs' with the smallest integer L with L·R >= 1 and cubic Lagrange
inside; for R >= 1, L = 1 and it *is* cubic Lagrange (same plan, so the run is
shared and the rows are equal).

A run is unstable when the engine reports divergence (``UnstableError``) or
the output is not finite (status 'diverged'); a stable run with an SNR below
0 dB (status 'negative', as the unadapted model far from its rate) is counted
apart.  The plot draws ``oversample`` below R = 1 only: above, it is the
cubic Lagrange curve.

The rates are 60 geometrically spaced values of R rounded to a whole grid of
Hz (so the polyphase resampler's fractions stay small and the padded signals
map to whole samples) plus the common rates 22.05 ... 192 kHz in range.
The runs are float32 with ``activations='fast'``, about four times faster than
float64: checked against float64 (accurate activations) at seven rates from
R = 0.5 to 4.5 on the embedded model and on a DAFx-24 model, the SNRs agree
within 0.05 dB and the same runs are flagged unstable, except next to an
instability (0.25 dB at R = 0.5, where cubic Lagrange scores 7 dB).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from . import sources
from .evaluation import evaluate, method, plain_output, snr_db, status_counts
from .tables import fmt, fmt_hz, read_csv, write_csv

METHODS = (
    method("naive", "naive"),
    method("stn", "stn"),
    method("linear", "linear"),
    method("allpass", "allpass"),
    method("lagrange3", "lagrange", order=3),
    method("minimax3", "minimax", order=3),
    method("oversample", "oversample"),
    method("resample", "resample"),
)

COMMON_RATES = (22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)

#: Candidate rate grids (Hz): the finest one whose ratios the polyphase resampler accepts is used.
GRID_STEPS = (10, 20, 25, 50, 100, 200, 250, 500, 1000)
MAX_FRACTION_TERM = 4096

LOW, HIGH, COUNT = 0.5, 4.5, 60
SECONDS = 1.0
LEAD = 0.05
TAIL = 0.02
RIFF_START = 1.0


def _fraction_ok(rate, trained_rate) -> bool:
    frac = Fraction(rate) / Fraction(trained_rate)
    return max(frac.numerator, frac.denominator) <= MAX_FRACTION_TERM


def grid_step(trained_rate: float, high: float = HIGH) -> int:
    """The finest grid (Hz) on which every rate up to ``high·fs`` is a small fraction of ``fs``.

    A rate k·step is (k·step)/fs, whose reduced denominator divides fs/gcd(fs, step), so the
    numerator stays below ``high·fs/gcd(fs, step)``.
    """
    if not float(trained_rate).is_integer():
        return GRID_STEPS[-1]
    fs = int(trained_rate)
    for step in GRID_STEPS:
        if high * fs / math.gcd(fs, step) <= MAX_FRACTION_TERM:
            return step
    return GRID_STEPS[-1]


def rate_grid(trained_rate: float, low: float = LOW, high: float = HIGH, count: int = COUNT) -> list:
    """Run rates (Hz, sorted): ``count`` geometric values of R on a whole-Hz grid, plus common rates in range."""
    step = grid_step(trained_rate, high)
    targets = np.geomspace(low, high, count) if count > 1 else np.array([low])
    rates = {int(round(r * trained_rate / step)) * step for r in targets}
    rates.update(r for r in COMMON_RATES if low * trained_rate - 1e-9 <= r <= high * trained_rate + 1e-9)
    rates.add(int(round(trained_rate)) if float(trained_rate).is_integer() else trained_rate)
    return sorted(r for r in rates if r > 0 and _fraction_ok(r, trained_rate))


def default_models(settings) -> list:
    if settings.models_dir is not None:
        return sources.models_in(settings.models_dir)
    if settings.shared is not None:
        return sources.proteus_models(settings.shared)
    return [sources.embedded_model()]


def input_for(model_spec, settings_shared, rates, *, seconds: float = SECONDS, low: float = LOW):
    """The sweep's input for one model: a riff excerpt (shared data) or the built-in test signal."""
    fs = sources.load_model(model_spec).trained_rate
    multiple = sources.common_multiple(fs, rates)
    bandlimit = min(1.0, low)
    if settings_shared is not None:
        riff = sources.riff_paths(settings_shared)[0]
        return sources.InputSpec("wav", riff, fs, RIFF_START, seconds, LEAD, TAIL, multiple, bandlimit)
    return sources.InputSpec("test_signal", "", fs, 0.0, seconds, LEAD, TAIL, multiple, bandlimit)


@functools.lru_cache(maxsize=8)
def _reference(spec, input_spec, dtype, activations):
    prepared = sources.prepare_input(input_spec)
    return plain_output(sources.load_model(spec), prepared.x, dtype, activations)


def sweep_task(spec, input_spec, run_rate, methods, dtype, activations) -> list:
    """One model at one run rate, every method: [(signal energy, error energy, status), ...]."""
    model = sources.load_model(spec)
    prepared = sources.prepare_input(input_spec)
    reference = _reference(spec, input_spec, dtype, activations)
    outcomes = evaluate(model, prepared.x, prepared.begin, prepared.end, run_rate, methods, reference=reference,
                        compare_at="lower", dtype=dtype, activations=activations)
    return [(o.signal, o.error, o.status) for o in outcomes]


def compute(models, settings, *, low=LOW, high=HIGH, count=COUNT, seconds=SECONDS, dtype="float32",
            activations="fast", methods=METHODS, label="sweep") -> list:
    """Run the sweep; rows of (model, trained rate, run rate, ratio, method, snr_db, status), in a fixed order."""
    params, keys = [], []
    for spec in models:
        fs = sources.load_model(spec).trained_rate
        rates = rate_grid(fs, low, high, count)
        input_spec = input_for(spec, settings.shared, rates, seconds=seconds, low=low)
        for rate in rates:
            params.append((spec, input_spec, rate, tuple(methods), dtype, activations))
            keys.append((spec, fs, rate, input_spec))
    # submitted longest first, so that no long run starts last and leaves the other workers idle;
    # the results are then put back in the order of `keys`
    order = sorted(range(len(params)), key=lambda i: -params[i][2] / keys[i][1])
    results = settings.run(sweep_task, [params[i] for i in order], label)
    by_index = dict(zip(order, results))
    rows = []
    for i, (spec, fs, rate, input_spec) in enumerate(keys):
        for meth, (signal, error, status) in zip(methods, by_index[i]):
            rows.append({"model": spec.name, "trained_hz": fs, "fs_hz": rate, "ratio": rate / fs,
                         "method": meth.label, "snr_db": snr_db(signal, error), "status": status,
                         "input": input_spec})
    return rows


def quantile(values, p: float) -> float:
    """Linear-interpolation quantile of sorted ``values``; beside an infinite value the lower one is taken."""
    n = len(values)
    if n == 0:
        return math.nan
    pos = p * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = values[lo], values[hi]
    if lo == hi or a == b:
        return a
    if not (math.isfinite(a) and math.isfinite(b)):
        return a
    return a + (b - a) * (pos - lo)


def summarise(rows) -> list:
    """Per (ratio, method): number of models, diverged, negative and n/a counts, median, quartiles, min and max
    SNR."""
    groups = {}
    for row in rows:
        groups.setdefault((round(row["ratio"], 6), row["method"]), []).append(row)
    labels = list(dict.fromkeys(row["method"] for row in rows))
    out = []
    for ratio, label in sorted(groups, key=lambda k: (k[0], labels.index(k[1]))):
        group = groups[(ratio, label)]
        applicable = [r for r in group if r["status"] != "n/a"]
        values = sorted(r["snr_db"] if not math.isnan(r["snr_db"]) else -math.inf for r in applicable)
        out.append({"ratio": ratio, "fs_hz": group[0]["fs_hz"], "method": label, "models": len(group),
                    **status_counts(group),
                    "na": len(group) - len(applicable),
                    "median": quantile(values, 0.5), "q25": quantile(values, 0.25), "q75": quantile(values, 0.75),
                    "min": values[0] if values else math.nan, "max": values[-1] if values else math.nan})
    return out


def describe_input(spec: sources.InputSpec) -> str:
    if spec.kind == "test_signal":
        what = f"nbrnn.circuit.test_signal from {spec.start:g} s"
    else:
        what = f"{spec.source.rsplit('/', 1)[-1]} from {spec.start:g} s"
    return (f"{what}, {spec.seconds:g} s, band-limited to {spec.bandlimit:g} x Nyquist, after {spec.lead:g} s of "
            f"silence (the start-up transient, skipped) and before {spec.tail:g} s of silence")


def write(rows, out, tag, *, dtype="float32", activations="fast") -> list:
    """Write the per-model rows, the summary and the plot for one sweep."""
    inputs = sorted({describe_input(r["input"]) for r in rows})
    comments = [f"SNR (dB) of the adapted model at fs' = R*fs against the plain model at fs, compared at the lower "
                f"of the two rates after ideal (FFT) resampling; dtype {dtype}, activations {activations}",
                *(f"input: {text}" for text in inputs),
                "status: ok; diverged (UnstableError / non-finite output: unstable); negative (stable, SNR < 0 dB); "
                "n/a = method needs R >= 1",
                "oversample at R >= 1 is cubic Lagrange (factor 1, the same plan and run)"]
    table = [[r["model"], fmt_hz(r["trained_hz"]), fmt_hz(r["fs_hz"]), fmt(r["ratio"], 6),
              r["method"], fmt(r["snr_db"], 2), r["status"]] for r in rows]
    per_model = write_csv(out / f"sweep_{tag}.csv", ["model", "trained_hz", "fs_hz", "ratio", "method", "snr_db",
                                                     "status"], table, comments)
    summary_rows = [[fmt(s["ratio"], 6), fmt_hz(s["fs_hz"]), s["method"], s["models"], s["diverged"],
                     s["negative"], s["na"],
                     *(fmt(s[k], 2) for k in ("median", "q25", "q75", "min", "max"))] for s in summarise(rows)]
    summary = write_csv(out / f"sweep_{tag}_summary.csv",
                        ["ratio", "fs_hz", "method", "models", "diverged", "negative", "na", "median_db", "q25_db",
                         "q75_db", "min_db", "max_db"], summary_rows,
                        comments + ["across models: median and quartiles (IQR), min and max; a diverged run counts "
                                    "as -inf; fs_hz is that of the first model"])
    png = render(summary, out / f"sweep_{tag}.png", tag)
    return [per_model, summary, png]


def render(summary_csv, png_path, tag):
    """SNR median (line) and IQR (band) against R per method; below, the count of diverged models.
    ``oversample`` is drawn below R = 1 only (above, it is cubic Lagrange, whose curve it would cover)."""
    from .plotting import clip_marks, covered, figure, legend_label, method_colour, save_png, snr_axis_range

    comments, rows = read_csv(summary_csv)
    labels = list(dict.fromkeys(r["method"] for r in rows))
    n_models = max(int(r["models"]) for r in rows)
    fig = figure(9.0, 7.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    floor, ceiling = snr_axis_range([float(r["median_db"]) for r in rows])
    for index, label in enumerate(labels):
        mine = [r for r in rows if r["method"] == label and int(r["na"]) < int(r["models"])
                and not covered(label, float(r["ratio"]))]
        ratio = np.array([float(r["ratio"]) for r in mine])
        median = np.array([float(r["median_db"]) for r in mine])
        colour = method_colour(label)
        top.plot(ratio, np.clip(median, floor - 1, ceiling), "-", color=colour, lw=1.4, label=legend_label(label))
        clip_marks(top, ratio, median, ceiling, colour)
        if n_models > 1:
            lo = np.clip([float(r["q25_db"]) for r in mine], floor - 1, ceiling)
            hi = np.clip([float(r["q75_db"]) for r in mine], floor - 1, ceiling)
            top.fill_between(ratio, lo, hi, color=colour, alpha=0.15, lw=0)
        bad = [(float(r["ratio"]), int(r["diverged"])) for r in mine if int(r["diverged"]) > 0]
        if bad:
            x, count = zip(*bad)
            bottom.plot(x, np.array(count) + 0.06 * (index - len(labels) / 2), "x", color=colour, ms=4)
            # diverged points on the main axes too, in one row per method above the floor
            top.plot(x, [floor + 0.8 + 0.5 * index] * len(x), "x", color=colour, ms=4)
    top.set_ylim(floor, ceiling)
    top.axvline(1.0, color="k", lw=0.6, ls=":")
    top.set_ylabel("SNR (dB)")
    spread = "median and interquartile range over " if n_models > 1 else ""
    top.set_title(f"Sample-rate sweep, {tag}: {spread}{n_models} model(s); x: diverged; ^: above the axis")
    top.legend(ncol=4, fontsize=8, loc="lower center")
    bottom.set_xscale("log")
    ticks = [0.5, 0.75, 1, 1.5, 2, 3, 4]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([f"{t:g}" for t in ticks])
    bottom.minorticks_off()
    bottom.set_xlim(min(float(r["ratio"]) for r in rows) * 0.97, max(float(r["ratio"]) for r in rows) * 1.03)
    bottom.set_ylim(-0.5, n_models + 0.5)
    bottom.set_ylabel("diverged models")
    bottom.set_xlabel("R = run rate / trained rate")
    fig.tight_layout()
    return save_png(fig, png_path)


def make(settings) -> list:
    models = default_models(settings)
    tag = sources.model_set_name(settings.models_dir, settings.shared)
    settings.progress.say(f"[sweep] {len(models)} model(s) x ~{COUNT + 6} rates x {len(METHODS)} methods")
    rows = compute(models, settings)
    return write(rows, settings.out, tag)
