"""``nbrnn demo``: the whole idea on the embedded model, with no files and no network.

The embedded LSTM was trained on a simulated diode clipper at 48 kHz.  The demo
runs the same continuous-time test signal at several rates through the model
with each main adaptation method and prints two SNR tables:

* against the model at its trained rate (the usual model-vs-model measure,
  compared at the trained rate: every R-th sample for integer R, else after
  ideal FFT resampling), and
* against the true circuit simulated at the run rate (what no published model allows).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from ._atomic import _place_new, atomic_output, check_destination, check_flag
from .errors import ArgumentError, NbrnnError, OutputError, shown
from .network import is_real

RATES = (44100, 48000, 88200, 96000, 192000)
METHODS = (("naive", {}), ("stn", {}), ("linear", {}), ("allpass", {}), ("lagrange", {"order": 3}),
           ("oversample", {}), ("resample", {}))
LABELS = {"naive": "naive", "stn": "STN", "linear": "linear", "allpass": "allpass", "lagrange": "cubic",
          "oversample": "oversample", "resample": "resample"}
#: Methods whose output is written as audio, beside the input and the circuit's output at each rate.
AUDIO_METHODS = ("naive", "lagrange")
#: Seconds skipped at both ends of every comparison (FFT resampling treats the signal as periodic).
EDGE = 0.1
#: Test signal lengths accepted (s): long enough to leave something between the edges, short enough to fit memory.
SECONDS = (0.25, 600.0)


def snr_db(y, ref) -> float:
    """10·log10(Σ ref² / Σ (y − ref)²); +inf when identical."""
    err = float(np.sum((np.asarray(y, np.float64) - ref) ** 2))
    power = float(np.sum(np.asarray(ref, np.float64) ** 2))
    return math.inf if err == 0.0 else 10.0 * math.log10(power / err)


def at_trained_rate(y: np.ndarray, rate: float, trained: float, n_trained: int) -> np.ndarray:
    """Bring an output at ``rate`` to the trained rate: exact sample picking for integer ratios."""
    ratio = rate / trained
    if float(ratio).is_integer():
        return y[::int(ratio)][:n_trained]
    from scipy.signal import resample

    return resample(y, n_trained)


def output_names() -> list:
    """The files the demo writes in its folder."""
    return ["snr.csv", "demo.png"] + [f"{kind}_{rate}.wav" for rate in RATES
                                      for kind in ("input", "circuit") + tuple(LABELS[m] for m in AUDIO_METHODS)]


def run_demo(out_dir: str, *, seconds: float = 2.0, dtype: str = "float64", stream=None,
             overwrite: bool = False) -> dict:
    """Run the demo, print the tables, write audio, ``snr.csv`` and (with matplotlib) ``demo.png``.

    Files of an earlier run in ``out_dir`` (any of :func:`output_names`) are kept: the demo refuses to
    start unless ``overwrite``.  The files are written in a hidden folder inside ``out_dir`` and moved into
    place at the end, so a run that is stopped or fails leaves ``out_dir`` as it found it (and removes it
    if it created it, with any parent folder it made).
    """

    log = stream or sys.stdout
    overwrite = check_flag(overwrite, "overwrite")
    if not is_real(seconds) or not SECONDS[0] <= seconds <= SECONDS[1]:  # NaN too
        raise ArgumentError(f"Argument 'seconds' must be from {SECONDS[0]:g} to {SECONDS[1]:g}, not {shown(seconds)}")
    seconds = float(seconds)
    created, path = [], os.path.abspath(out_dir)  # the folders this run makes, innermost first
    while not os.path.lexists(path) and path != os.path.dirname(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the demo folder '{out_dir}': {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"demo folder '{out_dir}' is not writable")
    existing = [name for name in output_names() if os.path.lexists(os.path.join(out_dir, name))]
    if existing and not overwrite:
        names = ", ".join(existing[:4]) + (f" and {len(existing) - 4} more" if len(existing) > 4 else "")
        raise OutputError(f"demo folder '{out_dir}' already holds {len(existing)} of the files the demo writes "
                          f"({names}); pass overwrite=True (--overwrite) to replace them, or choose another folder "
                          f"(--out)")
    for name in existing:  # overwrite: regular files only
        check_destination(os.path.join(out_dir, name), overwrite=True)
    started = time.perf_counter()
    try:
        stage = tempfile.mkdtemp(prefix=".nbrnn-demo.", suffix=".partial", dir=out_dir)
    except OSError as exc:
        raise OutputError(f"cannot write in the demo folder '{out_dir}': {exc.strerror or exc}") from None
    try:
        rows, plot = _run(stage, seconds, dtype, log)
        written = 0
        for name in output_names():
            if os.path.exists(os.path.join(stage, name)):
                target = os.path.join(out_dir, name)
                try:
                    (os.replace if overwrite else _place_new)(os.path.join(stage, name), target)
                except OutputError:
                    raise
                except OSError as exc:
                    raise OutputError(f"cannot write '{target}': {exc.strerror or exc}") from None
                written += 1
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in created:  # a run that wrote nothing leaves no empty folder behind, nor the parents it made
            try:
                os.rmdir(folder)
            except OSError:
                break
    print(f"\nwrote {written} files to {os.path.abspath(out_dir)}"
          f"{'' if plot else ' (no plot: pip install matplotlib)'} in {time.perf_counter() - started:.1f} s",
          file=log)
    return {"rows": rows, "out": out_dir}


def _run(folder, seconds, dtype, log):
    """The demo's work, its files written in ``folder``: (the table's rows, whether the plot was drawn)."""
    from .circuit import simulate_diode_clipper, test_signal
    from .model import load_default

    model = load_default()
    trained = model.trained_rate
    print(f"nbrnn demo: embedded model {model.network.layers[0].describe()} -> Dense, trained at {trained:g} Hz "
          f"on a simulated diode clipper; {seconds:g} s test signal", file=log)
    x_ref = test_signal(trained, seconds)
    y_ref = model.process(x_ref, trained, method="naive", dtype=dtype)
    n_ref = y_ref.size
    edge_ref = slice(int(EDGE * trained), n_ref - int(EDGE * trained))
    rows = []
    for rate in RATES:
        x = test_signal(rate, seconds)
        truth = simulate_diode_clipper(x, rate)
        edge = slice(int(EDGE * rate), x.size - int(EDGE * rate))
        _wav(os.path.join(folder, f"input_{rate}.wav"), x, rate)
        _wav(os.path.join(folder, f"circuit_{rate}.wav"), truth, rate)
        for method, opts in METHODS:
            row = {"rate": rate, "method": LABELS[method]}
            try:
                y = model.process(x, rate, method=method, dtype=dtype, **opts)
            except NbrnnError as exc:
                row.update(vs_model=None, vs_circuit=None, note=str(exc).split(":")[0])
                rows.append(row)
                continue
            back = at_trained_rate(y, rate, trained, n_ref)
            row.update(vs_model=snr_db(back[edge_ref], y_ref[edge_ref]), vs_circuit=snr_db(y[edge], truth[edge]),
                       note="")
            rows.append(row)
            if method in AUDIO_METHODS:
                _wav(os.path.join(folder, f"{LABELS[method]}_{rate}.wav"), y, rate)
    _print_tables(rows, trained, log)
    _write_csv(rows, os.path.join(folder, "snr.csv"))
    plot = _plot(rows, trained, os.path.join(folder, "demo.png"))
    return rows, plot


def _wav(path, y, rate) -> None:
    """32-bit float WAV, whole or not at all (like every file the demo writes)."""
    import soundfile as sf

    try:
        with atomic_output(path) as tmp:
            sf.write(tmp, y.astype(np.float32), rate, subtype="FLOAT", format="WAV")
    except sf.SoundFileRuntimeError as exc:
        raise OutputError(f"cannot write '{path}': {exc}") from None


def _fmt(value) -> str:
    if value is None:
        return "refused"
    if math.isinf(value):
        return "exact"
    return f"{value:.1f}"


def _print_tables(rows, trained, log):
    methods = [LABELS[m] for m, _ in METHODS]
    rates = sorted({r["rate"] for r in rows})
    for key, title in (("vs_model", f"SNR (dB) against the model at its trained rate ({trained / 1000:g} kHz)"),
                       ("vs_circuit", "SNR (dB) against the true circuit at the run rate")):
        print(f"\n{title}", file=log)
        print(f"{'rate':>9} " + " ".join(f"{m:>10}" for m in methods), file=log)
        for rate in rates:
            cells = {r["method"]: r[key] for r in rows if r["rate"] == rate}
            mark = " *" if rate == trained else "  "
            print(f"{rate / 1000:>7g}k{mark}" + " ".join(f"{_fmt(cells.get(m)):>10}" for m in methods), file=log)
    print("\n* the trained rate. 'exact': bit-identical to the model at its trained rate. 'refused': the method "
          "needs R >= 1 (below the trained rate use cubic (extrapolation), oversample or resample).", file=log)


def _write_csv(rows, path):
    with atomic_output(path) as tmp, open(tmp, "w") as fh:
        fh.write("rate_hz,method,snr_vs_model_db,snr_vs_circuit_db\n")
        for r in rows:
            cells = ["" if r[k] is None else ("inf" if math.isinf(r[k]) else f"{r[k]:.3f}")
                     for k in ("vs_model", "vs_circuit")]
            fh.write(f"{r['rate']},{r['method']},{cells[0]},{cells[1]}\n")


def _plot(rows, trained, path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, key, title in ((axes[0], "vs_model", "against the model at its trained rate\n(bit-exact drawn at 150 dB)"),
                           (axes[1], "vs_circuit", "against the true circuit")):
        for method, _ in METHODS:
            label = LABELS[method]
            pts = [(r["rate"] / 1000, r[key]) for r in rows if r["method"] == label and r[key] is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ys = [min(v, 150.0) for v in ys]  # 'exact' drawn at the top
            ax.plot(xs, ys, "o-", label=label)
        ax.axvline(trained / 1000, color="0.6", ls=":", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([r / 1000 for r in RATES])
        ax.set_xticklabels([f"{r / 1000:g}" for r in RATES], fontsize=8)
        ax.set_xlabel("run rate (kHz)")
        ax.set_ylabel("SNR (dB)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Embedded diode-clipper LSTM (trained at {trained / 1000:g} kHz) at other rates")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)
    return True
