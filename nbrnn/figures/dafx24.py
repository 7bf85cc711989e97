"""The DAFx-24 table: 18 models x 48 / 88.2 / 96 kHz x five adaptation methods, ours beside the published means.

Protocol (the paper's, on the inputs it published): each of the five riffs
(``audio/riffs``, 44.1 kHz) is processed on its own, whole, with 0.1 s of
silence before it (the model settles there from its zero state: this start-up
transient is skipped) and 0.1 s after it.  The padded riff is ideally
resampled (one FFT) up to fs', run through the adapted model, resampled back
to 44.1 kHz and compared with the plain model at 44.1 kHz over the riff
itself.  A model's SNR at one rate and method pools the five riffs (signal and
error energies summed).  The table's means are arithmetic means of the
per-model dB values, as the paper's are.

Methods: naive, stn, linear (LIDL), allpass (APDL), cubic Lagrange (CIDL);
all feed the fresh state to the output layer.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import sources
from .evaluation import Outcome, evaluate, method, plain_output, pooled, snr_db
from .tables import fmt, fmt_hz, read_csv, write_csv

RATES = (48000, 88200, 96000)

METHODS = (
    method("naive", "naive"),
    method("stn", "stn"),
    method("linear", "linear"),
    method("allpass", "allpass"),
    method("cubic", "lagrange", order=3),
)

#: Our method labels and the paper's.
PAPER_NAMES = {"naive": "naive", "stn": "stn", "linear": "lidl", "allpass": "apdl", "cubic": "cidl"}

#: The published means (dB) of the DAFx-24 paper's table (Carson et al., 2024).
PUBLISHED_MEANS = {
    48000: {"naive": 9.8, "stn": 29.9, "linear": 31.7, "allpass": 46.4, "cubic": 47.9},
    88200: {"naive": -1.4, "stn": 18.0, "linear": 57.3, "allpass": 57.3, "cubic": 57.3},
    96000: {"naive": -1.6, "stn": 17.6, "linear": 37.9, "allpass": 54.5, "cubic": 56.7},
}

LEAD = 0.1
TAIL = 0.1
RANKING_MARGIN = 2.0


def published_per_model(shared) -> dict:
    """{(paper label, rate, our method): SNR dB} from ``reference/dafx24/dafx24_audio_snr_db.csv``."""
    path = shared / "reference" / "dafx24" / "dafx24_audio_snr_db.csv"
    if not path.is_file():
        return {}
    _, rows = read_csv(path)
    ours = {v: k for k, v in PAPER_NAMES.items()}
    return {(r["model_label"], int(r["target_rate_hz"]), ours[r["method"]]): float(r["snr_db"])
            for r in rows if r["method"] in ours}


def inputs(shared, model_rate: float, *, seconds: float | None = None, lead: float = LEAD, tail: float = TAIL,
           riffs: int | None = None) -> list:
    """The riffs (all five, or the first ``riffs``; whole, or their first ``seconds``), padded for exact resampling."""
    multiple = sources.common_multiple(model_rate, RATES)
    return [sources.InputSpec("wav", path, model_rate, 0.0, seconds, lead, tail, multiple)
            for path in sources.riff_paths(shared)[:riffs]]


@functools.lru_cache(maxsize=4)
def _reference(spec, input_spec, dtype):
    return plain_output(sources.load_model(spec), sources.prepare_input(input_spec).x, dtype)


def dafx24_task(spec, input_spec, rates, methods, dtype) -> list:
    """One model, one riff, every rate and method: [[(signal, error, status) per method] per rate]."""
    model = sources.load_model(spec)
    prepared = sources.prepare_input(input_spec)
    reference = _reference(spec, input_spec, dtype)
    result = []
    for rate in rates:
        outcomes = evaluate(model, prepared.x, prepared.begin, prepared.end, rate, methods, reference=reference,
                            compare_at="trained", dtype=dtype)
        result.append([(o.signal, o.error, o.status) for o in outcomes])
    return result


def compute(models, shared, settings, *, seconds: float | None = None, lead: float = LEAD, tail: float = TAIL,
            riffs: int | None = None, rates=RATES, methods=METHODS, dtype: str = "float64") -> list:
    """Per-model SNRs: rows (model, rate, method, snr_db, status), pooled over the riffs, in a fixed order."""
    params = []
    for spec in models:
        rate = sources.load_model(spec).trained_rate
        for input_spec in inputs(shared, rate, seconds=seconds, lead=lead, tail=tail, riffs=riffs):
            params.append((spec, input_spec, tuple(rates), tuple(methods), dtype))
    results = settings.run(dafx24_task, params, "dafx24")
    per = {}
    for (spec, *_), result in zip(params, results):
        for rate, outcomes in zip(rates, result):
            for meth, (signal, error, status) in zip(methods, outcomes):
                per.setdefault((spec.name, rate, meth.label), []).append(Outcome(signal, error, status))
    rows = []
    for spec in models:
        for rate in rates:
            for meth in methods:
                total = pooled(per[(spec.name, rate, meth.label)])
                rows.append({"model": spec.name, "rate": rate, "method": meth.label,
                             "snr_db": snr_db(total.signal, total.error), "status": total.status})
    return rows


def means(rows) -> dict:
    """{rate: {method: mean dB over models}} (a diverged model makes the mean -inf)."""
    out = {}
    for row in rows:
        out.setdefault(row["rate"], {}).setdefault(row["method"], []).append(row["snr_db"])
    return {rate: {m: float(np.mean(v)) for m, v in by.items()} for rate, by in out.items()}


def ranking_disagreements(ours: dict, published: dict = PUBLISHED_MEANS, margin: float = RANKING_MARGIN) -> list:
    """Pairs of methods whose order differs from the published one where the published means differ by > margin.

    Returns
    -------
    list of str
        Empty when the ranking agrees.
    """
    problems = []
    for rate, pub in published.items():
        if rate not in ours:
            continue
        names = [m for m in pub if m in ours[rate]]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if abs(pub[a] - pub[b]) <= margin:
                    continue
                hi, lo = (a, b) if pub[a] > pub[b] else (b, a)
                if not ours[rate][hi] > ours[rate][lo]:
                    problems.append(f"{rate / 1000:g} kHz: published {hi} {pub[hi]:.1f} > {lo} {pub[lo]:.1f} dB, "
                                    f"ours {hi} {ours[rate][hi]:.1f} <= {lo} {ours[rate][lo]:.1f} dB")
    return problems


def per_model_text(rows, published: dict) -> str:
    """Our per-model SNRs beside the paper's (``published_per_model``), as aligned text."""
    lines = [f"{'model':<15} {'fs':>6}  " + "  ".join(f"{m.label:>13}" for m in METHODS)]
    by = {(r["model"], r["rate"], r["method"]): r["snr_db"] for r in rows}
    for name in dict.fromkeys(r["model"] for r in rows):
        for rate in RATES:
            cells = []
            for m in METHODS:
                pub = published.get((name, rate, m.label))
                ours = by.get((name, rate, m.label), math.nan)
                cells.append(f"{ours:5.1f} / {pub:5.1f}" if pub is not None else f"{ours:5.1f} /   -  ")
            lines.append(f"{name:<15} {rate / 1000:>6g}  " + "  ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def table_text(ours: dict, published: dict = PUBLISHED_MEANS) -> str:
    """The means table, ours beside the published, as aligned text."""
    labels = [m.label for m in METHODS]
    lines = [f"{'rate':>9}  " + "  ".join(f"{m:>15}" for m in labels),
             f"{'':>9}  " + "  ".join(f"{'ours / paper':>15}" for _ in labels)]
    for rate in sorted(ours):
        cells = []
        for m in labels:
            pub = published.get(rate, {}).get(m)
            cells.append(f"{ours[rate].get(m, math.nan):6.1f} / {pub:5.1f}" if pub is not None
                         else f"{ours[rate].get(m, math.nan):6.1f} /   -  ")
        lines.append(f"{rate / 1000:>6g} kHz  " + "  ".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def protocol_lines(seconds, lead, tail, dtype) -> list:
    length = "whole riffs" if seconds is None else f"the first {seconds:g} s of each riff"
    return [f"DAFx-24 protocol: {length} (audio/riffs, 5 files, each processed separately), {lead:g} s of silence "
            f"before (start-up transient, skipped) and {tail:g} s after; FFT resampling 44.1 kHz -> fs' -> 44.1 kHz",
            f"SNR (dB) against the plain model at 44.1 kHz over the riffs, energies pooled over the 5 riffs; "
            f"dtype {dtype}; fresh-state output",
            "status: ok, diverged (UnstableError / non-finite output) or negative (SNR < 0 dB)"]


def write(rows, out, *, suffix="", comments=(), published: dict | None = PUBLISHED_MEANS) -> list:
    """Write our per-model SNRs, the means beside the published means, and the bar chart.

    The paper's per-model values stay in the shared data (they are its authors'); only the
    published means, quoted in the project's documentation, go into the files.  ``published=None``
    for another set of models than the paper's 18: their means are not comparable, and are left out.
    """
    table = [[r["model"], fmt_hz(r["rate"]), r["method"], fmt(r["snr_db"], 2), r["status"]] for r in rows]
    per_model = write_csv(out / f"dafx24{suffix}_snr.csv", ["model", "fs_hz", "method", "snr_db", "status"], table,
                          comments)
    ours = means(rows)
    mean_rows = [[fmt_hz(rate), m, fmt(ours[rate][m], 2), fmt((published or {}).get(rate, {}).get(m, math.nan), 1)]
                 for rate in sorted(ours) for m in ours[rate]]
    problems = ranking_disagreements(ours, published or {})
    if published is None:
        verdict = (f"{len({r['model'] for r in rows})} model(s), not the paper's 18: the published means are left "
                   f"out")
    elif not problems:
        verdict = f"ranking agrees with the published means wherever they differ by more than {RANKING_MARGIN:g} dB"
    else:
        verdict = "ranking disagrees: " + "; ".join(problems)
    means_csv = write_csv(out / f"dafx24{suffix}_means.csv", ["fs_hz", "method", "mean_snr_db", "published_mean_db"],
                          mean_rows, list(comments) + [verdict])
    png = render(means_csv, out / f"dafx24{suffix}_bars.png")
    return [per_model, means_csv, png]


def render(means_csv, png_path):
    """Grouped bars: our mean SNR per rate and method (filled) beside the published mean (hatched)."""
    from .plotting import figure, method_colour, save_png

    comments, rows = read_csv(means_csv)
    rates = list(dict.fromkeys(r["fs_hz"] for r in rows))
    labels = list(dict.fromkeys(r["method"] for r in rows))
    value = {(r["fs_hz"], r["method"]): (float(r["mean_snr_db"]), float(r["published_mean_db"])) for r in rows}
    compared = not all(math.isnan(pub) for _, pub in value.values())
    fig = figure(9.0, 4.8)
    ax = fig.subplots()
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        x = np.arange(len(rates)) + (j - (len(labels) - 1) / 2) * width
        ours = [value[(r, label)][0] for r in rates]
        pub = [value[(r, label)][1] for r in rates]
        colour = method_colour(label)
        ax.bar(x - width * 0.2, ours, width * 0.45, color=colour, label=f"{label}")
        if compared:
            ax.bar(x + width * 0.25, pub, width * 0.45, facecolor="white", edgecolor=colour, hatch="////", lw=0.8)
        for xi, o in zip(x, ours):
            ax.text(xi - width * 0.2, max(o, 0) + 0.8, f"{o:.0f}", ha="center", fontsize=6)
    if compared:
        ax.bar([np.nan], [np.nan], facecolor="white", edgecolor="k", hatch="////", label="published (hatched)")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(rates)))
    ax.set_xticklabels([f"{float(r) / 1000:g} kHz" for r in rates])
    ax.set_ylabel("mean SNR over models (dB)")
    ax.set_title("DAFx-24 protocol: ours (filled) beside the published means (hatched)" if compared else
                 "DAFx-24 protocol on other models than the paper's (no published means)")
    ax.legend(ncol=3, fontsize=8, loc="upper left")
    ax.set_ylim(min(-5.0, ax.get_ylim()[0]), max(ax.get_ylim()[1], 70.0))
    fig.text(0.01, 0.01, comments[-1], fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_png(fig, png_path)


def missing(settings):
    if settings.shared is None:
        return ("needs the shared data (models/proteus and audio/riffs); "
                "set NBRNN_SHARED or place shared/ beside the repo")
    return None


def make(settings) -> list:
    models = sources.models_in(settings.models_dir) if settings.models_dir else sources.proteus_models(settings.shared)
    seconds = 1.0 if settings.quick else None
    paper = sources.is_paper_set(models)
    suffix = ("" if paper else "_" + sources.model_set_name(settings.models_dir, settings.shared)) + (
        "_quick" if settings.quick else "")
    settings.progress.say(f"[dafx24] {len(models)} model(s) x {len(RATES)} rates x {len(METHODS)} methods on "
                          f"{'1 s of each riff' if settings.quick else 'the whole riffs'}")
    rows = compute(models, settings.shared, settings, seconds=seconds)
    return write(rows, settings.out, suffix=suffix, comments=protocol_lines(seconds, LEAD, TAIL, "float64"),
                 published=PUBLISHED_MEANS if paper else None)
