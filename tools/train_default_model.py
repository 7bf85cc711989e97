"""Train the small LSTM that ships in ``nbrnn/data/default_model.json``.

Run from the repository root::

    pip install torch==2.13.0 && python tools/train_default_model.py

The target is the diode clipper of :mod:`nbrnn.circuit` at 48 kHz.  Training
and validation audio are deterministic mixes of synthetic guitar-like material
(plucked notes at many pitches and levels, strummed chords, sine sweeps with
level ramps, filtered noise bursts, pauses), generated here with seeded NumPy
generators and passed through :func:`nbrnn.circuit.simulate_diode_clipper`.

The model is the one Automated-GuitarAmpModelling calls ``SimpleRNN``: one
LSTM layer, a linear head and, optionally, the input added to the output
(``skip``).  Training uses truncated back-propagation through time: each
sequence is first run for a warm-up without gradients, then in chunks, with a
parameter update after every chunk and the state carried (detached) from chunk
to chunk.  The loss is the error-to-signal ratio plus a DC term.  The state
with the best validation ESR is kept.

Everything runs on one CPU thread with fixed seeds, so a rerun on the same
build writes the same file.  The result is written atomically (to a temporary
file, then renamed), so an interrupted run leaves the previous model intact.
Before writing, the float32 PyTorch output is compared with a plain float64
NumPy LSTM reading the exported weights; a mismatch aborts the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# One thread: the machine is shared, and a single thread also keeps the
# floating-point reduction order, hence the result, reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import signal as sps  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbrnn.circuit import DIODE_CLIPPER, simulate_diode_clipper, test_signal  # noqa: E402

SAMPLE_RATE = 48000
OUT_PATH = ROOT / "nbrnn" / "data" / "default_model.json"
COMMAND = "pip install torch==2.13.0 && python tools/train_default_model.py"

TRAIN_SECONDS = 48.0
VALIDATION_SECONDS = 8.0
TRAIN_SEED = 20240601
VALIDATION_SEED = 20240602
TORCH_SEED = 7

HIDDEN_SIZE = 8
SKIP = 1
EPOCHS = 300
WARMUP = 1000
CHUNK = 2048
CHUNKS_PER_SEQUENCE = 4
BATCH = 16
LEARNING_RATE = 3e-3
FINAL_LEARNING_RATE = 1e-4
DC_WEIGHT = 0.25
VALIDATE_EVERY = 2
# The exported weights must give the same output in float64 NumPy as the
# float32 PyTorch model, up to float32 rounding.
EXPORT_CHECK_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------
# Synthetic guitar-like material


def _attack(n: int, fs: float, attack_s: float) -> np.ndarray:
    ramp = np.ones(n)
    m = min(n, max(1, int(attack_s * fs)))
    ramp[:m] = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    return ramp


def _plucked_note(rng, fs, f0, level, duration):
    n = int(duration * fs)
    t = np.arange(n) / fs
    pluck = rng.uniform(0.08, 0.35)
    brightness = rng.uniform(0.8, 1.6)
    base_decay = rng.uniform(0.8, 4.0)
    inharmonicity = rng.uniform(0.0, 3e-4)
    y = np.zeros(n)
    total = 0.0
    for k in range(1, 80):
        fk = k * f0 * math.sqrt(1.0 + inharmonicity * k * k)
        if fk > 0.42 * fs:
            break
        amplitude = abs(math.sin(math.pi * k * pluck)) / k**brightness
        decay = base_decay + rng.uniform(0.002, 0.008) * fk
        y += amplitude * np.exp(-decay * t) * np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
        total += amplitude
    return level * y * _attack(n, fs, rng.uniform(0.3e-3, 3e-3)) / total


def _chord(rng, fs, level, duration):
    shapes = ([0, 7, 12, 16, 19, 24], [0, 7, 12, 15, 19, 24], [0, 5, 10, 15, 19, 24], [0, 7, 12], [0, 4, 7, 12])
    shape = shapes[rng.integers(len(shapes))]
    root = 82.41 * 2 ** (rng.integers(0, 12) / 12)
    strum = rng.uniform(0.004, 0.03) * (1 if rng.random() < 0.7 else -1)
    n = int(duration * fs)
    y = np.zeros(n)
    order = range(len(shape)) if strum > 0 else reversed(range(len(shape)))
    for j, semitones in enumerate(order):
        start = int(j * abs(strum) * fs)
        f0 = root * 2 ** (shape[semitones] / 12)
        note = _plucked_note(rng, fs, f0, 1.0, duration - start / fs)
        y[start : start + note.size] += note
    return level * y / len(shape)


def _sweep(rng, fs, level, duration):
    n = int(duration * fs)
    t = np.arange(n) / fs
    f_lo = rng.uniform(30, 300)
    f_hi = rng.uniform(2000, 16000)
    if rng.random() < 0.5:
        f_lo, f_hi = f_hi, f_lo
    rate = math.log(f_hi / f_lo) / duration
    phase = 2 * np.pi * f_lo * np.expm1(rate * t) / rate
    # Level ramps show the model every point of the clipping curve.
    ramp = np.linspace(rng.uniform(0.0, 0.3), 1.0, n) if rng.random() < 0.5 else np.ones(n)
    return level * ramp * np.sin(phase) * _attack(n, fs, 0.005) * _attack(n, fs, 0.005)[::-1]


def _level_ramp_tone(rng, fs, level, duration):
    n = int(duration * fs)
    t = np.arange(n) / fs
    f0 = 60 * 2 ** rng.uniform(0, 5)
    envelope = np.sin(np.pi * t / duration) ** 2
    return level * envelope * np.sin(2 * np.pi * f0 * t)


def _noise_burst(rng, fs, level, duration):
    n = int(duration * fs)
    cutoff = rng.uniform(400, 15000)
    b, a = sps.butter(2, cutoff / (fs / 2))
    noise = sps.lfilter(b, a, rng.standard_normal(n))
    noise /= max(np.max(np.abs(noise)), 1e-12)
    t = np.arange(n) / fs
    return level * noise * np.exp(-rng.uniform(2, 20) * t) * _attack(n, fs, 0.002)


EVENTS = (
    (_plucked_note, 0.35),
    (_chord, 0.25),
    (_sweep, 0.12),
    (_level_ramp_tone, 0.1),
    (_noise_burst, 0.1),
    (None, 0.08),  # a pause: the circuit's and the model's return to rest
)


def synthesize(seed: int, seconds: float, fs: int = SAMPLE_RATE) -> np.ndarray:
    """Deterministic mix of guitar-like events, peak <= 1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    x = np.zeros(n)
    position = 0
    weights = np.array([w for _, w in EVENTS])
    while position < n:
        kind = EVENTS[rng.choice(len(EVENTS), p=weights / weights.sum())][0]
        duration = rng.uniform(0.3, 1.6)
        # Levels spread log-uniformly from nearly linear to hard clipping.
        level = 10 ** rng.uniform(-2.0, 0.0)
        spacing = int(rng.uniform(0.25, 1.0) * duration * fs)
        if kind is None:
            position += int(rng.uniform(0.05, 0.3) * fs)
            continue
        if kind is _plucked_note:
            event = kind(rng, fs, 82.41 * 2 ** rng.uniform(0, 3.3), level, duration)
        else:
            event = kind(rng, fs, level, duration)
        # Most events are muted when the next one starts, as a player would.
        if rng.random() < 0.6:
            event = event[: spacing + int(0.01 * fs)]
            tail = min(event.size, int(0.01 * fs))
            event[-tail:] *= np.linspace(1.0, 0.0, tail)
        end = min(n, position + event.size)
        x[position:end] += event[: end - position]
        position += spacing
    return x / max(1.0, float(np.max(np.abs(x))))


# ---------------------------------------------------------------------------
# Model


class SimpleRNN(nn.Module):
    """LSTM + linear head (+ input skip), named as in AGM JSON files."""

    def __init__(self, hidden_size: int, skip: int):
        super().__init__()
        self.skip = skip
        self.rec = nn.LSTM(1, hidden_size, batch_first=True)
        self.lin = nn.Linear(hidden_size, 1)

    def forward(self, x, state=None):
        h, state = self.rec(x, state)
        y = self.lin(h)
        if self.skip:
            y = y + x[..., : self.skip]
        return y, state


def esr(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return torch.sum((target - output) ** 2) / (torch.sum(target**2) + 1e-10)


def loss_fn(target, output):
    dc = torch.mean(torch.mean(target - output, dim=1) ** 2) / (torch.mean(target**2) + 1e-10)
    return esr(target, output) + DC_WEIGHT * dc


def run_full(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Whole-signal output from the zero state (float32)."""
    with torch.no_grad():
        y, _ = model(torch.from_numpy(x.astype(np.float32)).view(1, -1, 1))
    return y.view(-1).numpy().astype(np.float64)


def esr_numpy(target: np.ndarray, output: np.ndarray) -> float:
    return float(np.sum((target - output) ** 2) / np.sum(target**2))


def batched_validation_esr(model, x_val_batch, y_val_batch) -> float:
    with torch.no_grad():
        out, _ = model(x_val_batch)
    return float(esr(y_val_batch[:, WARMUP:], out[:, WARMUP:]))


# ---------------------------------------------------------------------------
# Export


def export_agm(model: SimpleRNN, hidden_size: int, skip: int, provenance: dict) -> dict:
    def listed(tensor):
        # float32 values written as Python floats: exact when read back.
        return np.asarray(tensor.detach().numpy(), dtype=np.float32).astype(np.float64).tolist()

    state = model.state_dict()
    names = ("rec.weight_ih_l0", "rec.weight_hh_l0", "rec.bias_ih_l0", "rec.bias_hh_l0", "lin.weight", "lin.bias")
    return {
        "model_data": {
            "model": "SimpleRNN",
            "input_size": 1,
            "skip": skip,
            "output_size": 1,
            "unit_type": "LSTM",
            "num_layers": 1,
            "hidden_size": hidden_size,
            "bias_fl": True,
            "sample_rate": SAMPLE_RATE,
        },
        "state_dict": {name: listed(state[name]) for name in names},
        "provenance": provenance,
    }


def numpy_lstm(document: dict, x: np.ndarray) -> np.ndarray:
    """Plain float64 LSTM (PyTorch gate order i, f, g, o) reading an AGM document."""
    sd = {k: np.asarray(v, dtype=np.float64) for k, v in document["state_dict"].items()}
    w_ih, w_hh = sd["rec.weight_ih_l0"], sd["rec.weight_hh_l0"]
    bias = sd["rec.bias_ih_l0"] + sd["rec.bias_hh_l0"]
    w_out, b_out = sd["lin.weight"][0], sd["lin.bias"][0]
    hidden = w_hh.shape[1]
    skip = document["model_data"]["skip"]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    y = np.empty(x.size)
    for n, sample in enumerate(x):
        z = w_ih[:, 0] * sample + w_hh @ h + bias
        i = 1.0 / (1.0 + np.exp(-z[:hidden]))
        f = 1.0 / (1.0 + np.exp(-z[hidden : 2 * hidden]))
        g = np.tanh(z[2 * hidden : 3 * hidden])
        o = 1.0 / (1.0 + np.exp(-z[3 * hidden :]))
        c = f * c + i * g
        h = o * np.tanh(c)
        y[n] = w_out @ h + b_out + (sample if skip else 0.0)
    return y


def write_atomically(path: Path, document: dict) -> None:
    text = json.dumps(document, indent=1) + "\n"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-size", type=int, default=HIDDEN_SIZE)
    parser.add_argument("--skip", type=int, choices=(0, 1), default=SKIP)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--output", type=Path, default=OUT_PATH, help="where to write the AGM JSON model")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(TORCH_SEED)
    rng = np.random.default_rng(TORCH_SEED)

    t0 = time.perf_counter()
    x_train = synthesize(TRAIN_SEED, TRAIN_SECONDS)
    x_val = synthesize(VALIDATION_SEED, VALIDATION_SECONDS)
    y_train = simulate_diode_clipper(x_train, SAMPLE_RATE)
    y_val = simulate_diode_clipper(x_val, SAMPLE_RATE)
    print(
        f"data: {TRAIN_SECONDS:g} s training, {VALIDATION_SECONDS:g} s validation at {SAMPLE_RATE} Hz, "
        f"output peak {np.max(np.abs(y_train)):.3f} V ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )

    # Validation while training: 1-second pieces in one batch, each from the
    # zero state with the warm-up excluded (fast); the final report runs the
    # whole validation signal in one piece.
    piece = SAMPLE_RATE
    count = x_val.size // piece
    x_val_batch = torch.from_numpy(x_val[: count * piece].astype(np.float32)).view(count, piece, 1)
    y_val_batch = torch.from_numpy(y_val[: count * piece].astype(np.float32)).view(count, piece, 1)

    model = SimpleRNN(args.hidden_size, args.skip)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    sequence = WARMUP + CHUNKS_PER_SEQUENCE * CHUNK
    sequences_per_epoch = x_train.size // sequence
    batches_per_epoch = sequences_per_epoch // BATCH
    total_updates = args.epochs * batches_per_epoch * CHUNKS_PER_SEQUENCE
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        # Cosine decay from LEARNING_RATE to FINAL_LEARNING_RATE.
        lambda step: (
            FINAL_LEARNING_RATE
            + 0.5 * (LEARNING_RATE - FINAL_LEARNING_RATE) * (1 + math.cos(math.pi * min(step / total_updates, 1.0)))
        )
        / LEARNING_RATE,
    )

    best = (math.inf, None, -1)
    t_train = time.perf_counter()
    for epoch in range(args.epochs):
        # Fresh random crops each epoch, so chunk boundaries move.
        starts = rng.integers(0, x_train.size - sequence, size=batches_per_epoch * BATCH)
        epoch_loss = 0.0
        for b in range(batches_per_epoch):
            idx = starts[b * BATCH : (b + 1) * BATCH, None] + np.arange(sequence)[None, :]
            xb = torch.from_numpy(x_train[idx].astype(np.float32)).unsqueeze(-1)
            yb = torch.from_numpy(y_train[idx].astype(np.float32)).unsqueeze(-1)
            with torch.no_grad():
                _, state = model(xb[:, :WARMUP])
            for k in range(CHUNKS_PER_SEQUENCE):
                part = slice(WARMUP + k * CHUNK, WARMUP + (k + 1) * CHUNK)
                out, state = model(xb[:, part], state)
                loss = loss_fn(yb[:, part], out)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                state = tuple(s.detach() for s in state)
                epoch_loss += float(loss.detach())
        epoch_loss /= batches_per_epoch * CHUNKS_PER_SEQUENCE
        line = f"epoch {epoch + 1:3d}/{args.epochs}  loss {epoch_loss:.5f}"
        if (epoch + 1) % VALIDATE_EVERY == 0 or epoch + 1 == args.epochs:
            val = batched_validation_esr(model, x_val_batch, y_val_batch)
            line += f"  val ESR {val:.5f}"
            if val < best[0]:
                best = (val, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
        elapsed = time.perf_counter() - t_train
        audio = (epoch + 1) * batches_per_epoch * BATCH * sequence / SAMPLE_RATE
        print(f"{line}  {elapsed:6.1f} s  ({audio / elapsed:.1f}x real time)", flush=True)
    training_seconds = time.perf_counter() - t_train

    model.load_state_dict(best[1])
    validation_esr = esr_numpy(y_val, run_full(model, x_val))
    demo_x = test_signal(SAMPLE_RATE, 2.0)
    demo_y = simulate_diode_clipper(demo_x, SAMPLE_RATE)
    test_signal_esr = esr_numpy(demo_y, run_full(model, demo_x))
    print(
        f"best epoch {best[2]}: validation ESR {validation_esr:.5f} (whole {VALIDATION_SECONDS:g} s, from zero state), "
        f"test-signal ESR {test_signal_esr:.5f}; training {training_seconds:.0f} s",
        flush=True,
    )

    provenance = {
        "description": "LSTM model of the diode clipper in nbrnn.circuit, trained at 48 kHz",
        "circuit": DIODE_CLIPPER.as_dict(),
        "target": "nbrnn.circuit.simulate_diode_clipper(x, 48000) with default arguments, output in volts",
        "training_sample_rate": SAMPLE_RATE,
        "command": COMMAND,
        "torch_version": torch.__version__,
        "seeds": {"train_audio": TRAIN_SEED, "validation_audio": VALIDATION_SEED, "torch": TORCH_SEED},
        "training": {
            "audio_seconds": TRAIN_SECONDS,
            "epochs": args.epochs,
            "best_epoch": best[2],
            "batch": BATCH,
            "warmup_samples": WARMUP,
            "tbptt_chunk_samples": CHUNK,
            "optimizer": f"Adam, learning rate {LEARNING_RATE:g} cosine-decayed to {FINAL_LEARNING_RATE:g}",
            "loss": f"ESR + {DC_WEIGHT:g} * DC",
            "threads": 1,
        },
        "validation_esr": round(validation_esr, 7),
        "validation_note": (
            f"{VALIDATION_SECONDS:g} s of held-out synthetic audio (seed {VALIDATION_SEED}) at 48 kHz, run from "
            "the zero state, float32 PyTorch"
        ),
        "test_signal_esr": round(test_signal_esr, 7),
        "test_signal_note": "nbrnn.circuit.test_signal(48000, 2.0) at 48 kHz, run from the zero state",
    }
    document = export_agm(model, args.hidden_size, args.skip, provenance)

    check = demo_x[:4800]
    gap = float(np.max(np.abs(numpy_lstm(document, check) - run_full(model, check))))
    if gap > EXPORT_CHECK_TOLERANCE:
        print(f"export check failed: NumPy and PyTorch outputs differ by {gap:.3g}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.output, document)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); export check gap {gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
