"""Regenerate the PyTorch-made golden data in ``tests/data/golden/``.

Run from the repository root::

    pip install torch==2.13.0 && python tools/make_goldens.py

Small randomly initialised recurrent models are saved in the file formats nbrnn
reads (AGM JSON, PyTorch state_dict JSON, NeuralAmpModeler ``.nam`` LSTM, and
RTNeural's Keras JSON for dense layers with selu, softplus and gelu around a
recurrent layer),
together with an input signal and the outputs PyTorch computes for it in
float64 and float32.  Everything is seeded, and the npz archives are written
with fixed zip timestamps, so two runs produce byte-identical files.

After writing, every model file is read back and its float64 output recomputed
with the plain NumPy cells at the bottom of this script; a mismatch beyond
1e-12 aborts the run, because it would mean a file does not say what its
golden output was computed from.
"""

from __future__ import annotations

import io
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden"
N_SAMPLES = 1500
AGM_SAMPLE_RATE = 44100
NAM_SAMPLE_RATE = 48000
# .nam files store the state the LSTM reaches after a stretch of silence, and
# the runtime prewarms 0.5 s of zeros after each reset.  The burn-in here
# (0.1 s at 48 kHz) is shorter than the trainer's, so that the slow unit of
# each layer is still drifting and the prewarm golden differs visibly.
NAM_STATE_BURN_IN = 4800
# Forget-gate bias of the slow unit: 1 - sigmoid(9) ~ 1.2e-4, a time constant
# of about 8000 samples; its candidate drive is small so its cell settles
# near 1.6 instead of saturating tanh.
NAM_SLOW_FORGET_BIAS = 9.0
NAM_SLOW_CANDIDATE_BIAS = 4e-4
NAM_PREWARM_SECONDS = 0.5
CHECK_TOLERANCE = 1e-12
# A float32 run should stay close to the float64 one; a larger gap would mean
# the random model is chaotic and its goldens useless for comparing engines.
F32_GAP_LIMIT = 1e-4

CELLS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}

# (cell, layers, inputs, hidden, skip): a Latin square over cell x layers x
# inputs, with skip alternating, plus wider single-layer models.
AGM_MODELS = [
    ("LSTM", 1, 1, 8, 1),
    ("LSTM", 2, 2, 6, 0),
    ("LSTM", 3, 3, 5, 1),
    ("GRU", 1, 2, 7, 1),
    ("GRU", 2, 3, 6, 0),
    ("GRU", 3, 1, 4, 0),
    ("RNN", 1, 3, 9, 0),
    ("RNN", 2, 1, 5, 1),
    ("RNN", 3, 2, 3, 1),
    ("LSTM", 1, 2, 16, 0),
    ("GRU", 1, 1, 12, 1),
    ("RNN", 1, 1, 16, 0),
]

# name -> list of (module name, cell, hidden, layers); the dense head follows.
TORCH_JSON_MODELS = {
    "torch_lstm8_gru6x2": [("lstm", "LSTM", 8, 1), ("gru2", "GRU", 6, 2)],
    "torch_gru5_rnn7_lstm4x3": [
        ("gru", "GRU", 5, 1),
        ("rnn", "RNN", 7, 1),
        ("lstm3", "LSTM", 4, 3),
    ],
    "torch_rnn6x2_lstm10": [("rnn2", "RNN", 6, 2), ("lstm", "LSTM", 10, 1)],
}

# (hidden, layers)
NAM_MODELS = [(3, 1), (5, 2)]

# name -> (inputs, skip, layers): ("dense", units, activation) or (cell, hidden); a linear Dense(1) head follows.
# The activations no other golden holds, in front of and behind a recurrent layer.
KERAS_MODELS = {
    "keras_selu_lstm8_softplus_gelu": (1, 1, [("dense", 6, "selu"), ("LSTM", 8), ("dense", 8, "softplus"),
                                              ("dense", 8, "gelu")]),
    "keras_gelu_gru8_softplus_selu": (2, 1, [("dense", 8, "gelu"), ("GRU", 8), ("dense", 6, "softplus"),
                                             ("dense", 4, "selu")]),
}
KERAS_SAMPLE_RATE = 48000
# PyTorch's softplus returns x itself above 20, TensorFlow's above about 13.9 in float32 (34 in float64); the
# models keep its input below 10 (it peaks below 1), where every implementation computes log(1 + e^x).
SOFTPLUS_LIMIT = 10.0
# gelu: PyTorch's default is the exact (erf) form, as is Keras'.
TORCH_ACTIVATIONS = {"selu": functional.selu, "softplus": functional.softplus, "gelu": functional.gelu}


# --------------------------------------------------------------------------
# models


def randomise_recurrent(module: nn.RNNBase, gen: torch.Generator, cell: str) -> None:
    """Make a default-initialised module drive its state hard enough to matter.

    Default init gives weights of about 1/sqrt(H), which leaves a
    0.6-amplitude input in the gates' linear range; larger input and recurrent
    weights and random biases make the nonlinearity and the memory matter,
    without making the recurrence chaotic (checked later through the
    float32/float64 gap).
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("weight_ih"):
                p.mul_(4.0)
            elif name.startswith("weight_hh"):
                p.mul_(1.5)
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        if cell == "LSTM":
            # A positive forget bias, as trainers commonly set, gives the cell
            # memory longer than a few samples.
            for k in range(module.num_layers):
                b = getattr(module, f"bias_ih_l{k}")
                h = module.hidden_size
                b[h : 2 * h] += 0.5


class SequentialRnn(nn.Module):
    """RNN modules in sequence, a linear head, and an optional input skip."""

    def __init__(self, recurrent: list[tuple[str, nn.RNNBase]], head_name: str,
                 head: nn.Linear, skip: int):
        super().__init__()
        self.names = [n for n, _ in recurrent]
        for n, m in recurrent:
            self.add_module(n, m)
        self.head_name = head_name
        self.add_module(head_name, head)
        self.skip = skip

    def forward(self, x: torch.Tensor, states=None):
        """Run ``x`` of shape (N, I); return (y (N, 1), final states)."""
        h = x.unsqueeze(1)  # (N, batch=1, I)
        finals = []
        for k, n in enumerate(self.names):
            s = None if states is None else states[k]
            h, f = getattr(self, n)(h, s)
            finals.append(f)
        y = getattr(self, self.head_name)(h[:, 0, :])
        if self.skip:
            y = y + x[:, : self.skip].sum(dim=1, keepdim=True)
        return y, finals


class KerasLike(nn.Module):
    """Dense layers with an activation and one-layer LSTMs or GRUs in sequence, a linear head and an optional
    input skip: the networks RTNeural's Keras JSON holds (the interface of :class:`SequentialRnn`)."""

    def __init__(self, inputs: int, skip: int, spec, gen: torch.Generator):
        super().__init__()
        self.steps = []
        width = inputs
        for k, item in enumerate(spec):
            if item[0] == "dense":
                module, act = nn.Linear(width, item[1]), item[2]
            else:
                module, act = CELLS[item[0]](width, item[1]), None
                randomise_recurrent(module, gen, item[0])
                if item[0] == "LSTM":  # Keras' LSTM has one bias: all of it in bias_ih
                    with torch.no_grad():
                        module.bias_ih_l0.add_(module.bias_hh_l0)
                        module.bias_hh_l0.zero_()
            self.add_module(f"layer{k}", module)
            self.steps.append((f"layer{k}", item[0], act))
            width = item[1]
        self.head_name = "head"
        self.add_module("head", nn.Linear(width, 1))
        self.skip = skip
        self.softplus_peak = -np.inf

    def forward(self, x: torch.Tensor, states=None):
        h = x
        for name, kind, act in self.steps:
            module = getattr(self, name)
            if kind == "dense":
                h = module(h)
                if act == "softplus":
                    self.softplus_peak = max(self.softplus_peak, float(h.max()))
                h = TORCH_ACTIVATIONS[act](h)
            else:
                h = module(h.unsqueeze(1))[0][:, 0, :]
        y = self.head(h)
        if self.skip:
            y = y + x[:, : self.skip].sum(dim=1, keepdim=True)
        return y, None


def scale_head(model: SequentialRnn, x: np.ndarray, states=None) -> None:
    """Scale the head so the network's own contribution varies by about 0.25.

    Random heads partly cancel their hidden units; without this some models
    would give outputs of a few hundredths, too small to show a bug.  The
    bias then keeps the mean within +-0.5, as an audio effect's would be.
    """
    head = getattr(model, model.head_name)

    def net_output():
        y, _ = model(torch.from_numpy(x).float(), states)
        if model.skip:
            y = y - torch.from_numpy(x[:, : model.skip]).float().sum(dim=1, keepdim=True)
        return y

    with torch.no_grad():
        factor = float(np.clip(0.25 / max(float(net_output().std()), 1e-6), 0.5, 8.0))
        head.weight.mul_(factor)
        mean = float(net_output().mean())
        head.bias.sub_(mean - float(np.clip(mean, -0.5, 0.5)))


def tensor_to_lists(t: torch.Tensor):
    """Nested lists of Python floats that print as the float32 values."""
    return t.detach().float().double().tolist()


def run_both(model: SequentialRnn, x: np.ndarray, states=None, prewarm: int = 0):
    """Outputs in float64 and float32 of the same float32-valued weights."""
    outs = {}
    for dtype in (torch.float64, torch.float32):
        m = model.to(dtype)
        s = None
        if states is not None:
            s = [tuple(t.to(dtype) for t in st) for st in states]
        with torch.no_grad():
            if prewarm:
                _, s = m(torch.zeros((prewarm, x.shape[1]), dtype=dtype), s)
            y, _ = m(torch.from_numpy(x).to(dtype), s)
        outs[dtype] = y.numpy().copy()
    model.float()
    return outs[torch.float64], outs[torch.float32].astype(np.float32)


# --------------------------------------------------------------------------
# inputs


def make_input(rng: np.random.Generator, n_inputs: int, sample_rate: int,
               cond_kind: int) -> np.ndarray:
    """Audio in channel 0, conditioning in 0..1 in the others.

    Values are rounded to float32 so that the float32 and float64 runs see
    exactly the same input.
    """
    t = np.arange(N_SAMPLES) / sample_rate
    n_sines = int(rng.integers(2, 4))
    freqs = rng.uniform(80.0, 2500.0, n_sines)
    amps = rng.dirichlet(np.ones(n_sines)) * 0.6
    phases = rng.uniform(0.0, 2 * np.pi, n_sines)
    audio = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in zip(amps, freqs, phases))
    audio = audio + 0.01 * rng.standard_normal(N_SAMPLES)
    channels = [audio]
    for c in range(1, n_inputs):
        if (c + cond_kind) % 2:
            channels.append(np.full(N_SAMPLES, round(float(rng.uniform(0.1, 0.9)), 3)))
        else:
            # Slow LFO: under one cycle over the clip, like a swept knob.
            f = rng.uniform(5.0, 20.0)
            channels.append(0.5 + 0.45 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)))
    x = np.stack(channels, axis=1)
    return x.astype(np.float32).astype(np.float64)


# --------------------------------------------------------------------------
# writing (deterministic bytes)


def write_json(path: Path, obj, indent=None) -> None:
    path.write_text(json.dumps(obj, indent=indent) + "\n", encoding="utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An npz readable by ``np.load`` with fixed timestamps, hence reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data.getvalue())
    path.write_bytes(buf.getvalue())


def check_f32_gap(name: str, y64: np.ndarray, y32: np.ndarray) -> float:
    gap = float(np.max(np.abs(y64 - y32)))
    if gap > F32_GAP_LIMIT:
        raise SystemExit(f"{name}: float32 and float64 outputs differ by {gap:.3g}; "
                         "the random model is too sensitive to rounding")
    return gap


def round_gap(gap: float) -> float:
    """Two significant digits: enough to pick a float32 test tolerance."""
    return float(f"{gap:.2g}")


def describe(name: str, y64: np.ndarray, x: np.ndarray, skip: int, gap: float) -> None:
    net = y64[:, 0] - (x[:, :skip].sum(axis=1) if skip else 0.0)
    print(f"  {name:34s} net rms {np.sqrt(np.mean(net**2)):.3f}  "
          f"net std {net.std():.3f}  |y32-y64| {gap:.1e}")


# --------------------------------------------------------------------------
# the three formats


def build_agm(index: int, spec) -> dict:
    cell, layers, inputs, hidden, skip = spec
    name = f"agm_{cell.lower()}_l{layers}_i{inputs}_h{hidden}_skip{skip}"
    torch.manual_seed(1000 + index)
    gen = torch.Generator().manual_seed(2000 + index)
    rec = CELLS[cell](inputs, hidden, num_layers=layers)
    randomise_recurrent(rec, gen, cell)
    lin = nn.Linear(hidden, 1)
    model = SequentialRnn([("rec", rec)], "lin", lin, skip)
    rng = np.random.default_rng(3000 + index)
    x = make_input(rng, inputs, AGM_SAMPLE_RATE, index)
    scale_head(model, x)

    state_dict = {k: tensor_to_lists(v) for k, v in model.state_dict().items()}
    doc = {
        "model_data": {
            "model": "SimpleRNN",
            "input_size": inputs,
            "skip": skip,
            "output_size": 1,
            "unit_type": cell,
            "num_layers": layers,
            "hidden_size": hidden,
            "bias_fl": True,
            "sample_rate": AGM_SAMPLE_RATE,
        },
        "state_dict": state_dict,
    }
    y64, y32 = run_both(model, x)
    gap = check_f32_gap(name, y64, y32)
    describe(name, y64, x, skip, gap)
    write_json(OUT_DIR / f"{name}.json", doc)
    write_npz(OUT_DIR / f"{name}.npz", {"x": x, "y64": y64, "y32": y32})
    return {
        "file": f"{name}.json",
        "format": "agm",
        "cell": cell,
        "num_layers": layers,
        "hidden_size": hidden,
        "input_size": inputs,
        "skip": skip,
        "sample_rate": AGM_SAMPLE_RATE,
        "golden": f"{name}.npz",
        "max_abs_y32_minus_y64": round_gap(gap),
    }


def build_torch_json(index: int, name: str, modules) -> dict:
    torch.manual_seed(4000 + index)
    gen = torch.Generator().manual_seed(5000 + index)
    recurrent = []
    width = 1
    for mod_name, cell, hidden, layers in modules:
        m = CELLS[cell](width, hidden, num_layers=layers)
        randomise_recurrent(m, gen, cell)
        recurrent.append((mod_name, m))
        width = hidden
    model = SequentialRnn(recurrent, "dense", nn.Linear(width, 1), skip=0)
    rng = np.random.default_rng(6000 + index)
    x = make_input(rng, 1, AGM_SAMPLE_RATE, index)
    scale_head(model, x)
    # state_dict order is registration order, i.e. module order.
    doc = {k: tensor_to_lists(v) for k, v in model.state_dict().items()}

    y64, y32 = run_both(model, x)
    gap = check_f32_gap(name, y64, y32)
    describe(name, y64, x, 0, gap)
    write_json(OUT_DIR / f"{name}.json", doc)
    write_npz(OUT_DIR / f"{name}.npz", {"x": x, "y64": y64, "y32": y32})
    return {
        "file": f"{name}.json",
        "format": "torch_json",
        "cell": [{"module": n, "cell": c, "num_layers": l, "hidden_size": h}
                 for n, c, h, l in modules],
        "num_layers": sum(l for _, _, _, l in modules),
        "hidden_size": modules[-1][2],
        "input_size": 1,
        "skip": 0,
        "sample_rate": None,
        "golden": f"{name}.npz",
        "max_abs_y32_minus_y64": round_gap(gap),
    }


def _gru_rows(hidden: int) -> np.ndarray:
    """PyTorch's GRU rows r, z, n in Keras' order z, r, h (the same permutation maps back)."""
    return np.r_[hidden:2 * hidden, 0:hidden, 2 * hidden:3 * hidden]


def build_keras(index: int, name: str, spec) -> dict:
    inputs, skip, layers = spec
    torch.manual_seed(7000 + index)
    gen = torch.Generator().manual_seed(8000 + index)
    model = KerasLike(inputs, skip, layers, gen)
    rng = np.random.default_rng(9000 + index)
    x = make_input(rng, inputs, KERAS_SAMPLE_RATE, index)
    scale_head(model, x)

    def dense(module: nn.Linear, act: str) -> dict:
        return {"type": "dense", "activation": act, "shape": [None, None, module.out_features],
                "weights": [tensor_to_lists(module.weight.T), tensor_to_lists(module.bias)]}

    doc_layers = []
    for layer_name, kind, act in model.steps:
        module = getattr(model, layer_name)
        if kind == "dense":
            doc_layers.append(dense(module, act))
            continue
        hidden = module.hidden_size
        if kind == "LSTM":  # Keras' columns i, f, c, o are PyTorch's rows i, f, g, o
            weights = [module.weight_ih_l0.T, module.weight_hh_l0.T, module.bias_ih_l0]
        else:  # reset_after=True: a row of input biases, a row of recurrent biases
            rows = torch.from_numpy(_gru_rows(hidden))
            weights = [module.weight_ih_l0[rows].T, module.weight_hh_l0[rows].T,
                       torch.stack([module.bias_ih_l0[rows], module.bias_hh_l0[rows]])]
        doc_layers.append({"type": kind.lower(), "activation": "tanh", "shape": [None, None, hidden],
                           "weights": [tensor_to_lists(w) for w in weights]})
    doc_layers.append(dense(model.head, ""))
    doc = {"in_shape": [None, None, inputs], "in_skip": skip, "metadata": {"samplerate": KERAS_SAMPLE_RATE},
           "layers": doc_layers}

    model.softplus_peak = -np.inf
    y64, y32 = run_both(model, x)
    if not model.softplus_peak < SOFTPLUS_LIMIT:
        raise SystemExit(f"{name}: a softplus input reached {model.softplus_peak:.3g}, where PyTorch's and "
                         f"Keras' cut-offs differ")
    gap = check_f32_gap(name, y64, y32)
    describe(name, y64, x, skip, gap)
    write_json(OUT_DIR / f"{name}.json", doc)
    write_npz(OUT_DIR / f"{name}.npz", {"x": x, "y64": y64, "y32": y32})
    recurrent = [item for item in layers if item[0] != "dense"]  # (cell, hidden)
    return {
        "file": f"{name}.json",
        "format": "keras",
        "cell": recurrent[0][0],
        "num_layers": len(recurrent),
        "hidden_size": recurrent[-1][1],
        "input_size": inputs,
        "skip": skip,
        "sample_rate": KERAS_SAMPLE_RATE,
        "activations": sorted({item[2] for item in layers if item[0] == "dense"}),
        "golden": f"{name}.npz",
        "max_abs_y32_minus_y64": round_gap(gap),
    }


def build_nam(index: int, hidden: int, layers: int) -> dict:
    name = f"nam_lstm_l{layers}_h{hidden}"
    torch.manual_seed(7000 + index)
    gen = torch.Generator().manual_seed(8000 + index)
    rec = nn.LSTM(1, hidden, num_layers=layers)
    randomise_recurrent(rec, gen, "LSTM")
    with torch.no_grad():
        for k in range(layers):
            # .nam holds only the summed bias; keep it in bias_ih so the module
            # computes with exactly the float32 value the file stores.
            b_ih = getattr(rec, f"bias_ih_l{k}")
            b_hh = getattr(rec, f"bias_hh_l{k}")
            b_ih.copy_((b_ih.float() + b_hh.float()))
            b_hh.zero_()
            # The NAM trainer starts its forget bias at 2, which lets the
            # stored cell state grow large.
            b_ih[hidden : 2 * hidden] += 1.5
            # Unit 0 integrates slowly and independently of the signal, so
            # the stored, prewarmed and zero initial states all give
            # different outputs.
            w_ih = getattr(rec, f"weight_ih_l{k}")
            w_hh = getattr(rec, f"weight_hh_l{k}")
            for row in (0, hidden, 2 * hidden):
                w_ih[row].zero_()
                w_hh[row].zero_()
            b_ih[0] = 0.0
            b_ih[hidden] = NAM_SLOW_FORGET_BIAS
            b_ih[2 * hidden] = NAM_SLOW_CANDIDATE_BIAS
    head = nn.Linear(hidden, 1)
    model = SequentialRnn([("rec", rec)], "head", head, skip=0)

    with torch.no_grad():
        _, finals = model(torch.zeros((NAM_STATE_BURN_IN, 1)))
    h0 = finals[0][0][:, 0, :].float()  # (L, H)
    c0 = finals[0][1][:, 0, :].float()
    state = [(h0.unsqueeze(1), c0.unsqueeze(1))]
    rng = np.random.default_rng(9000 + index)
    x = make_input(rng, 1, NAM_SAMPLE_RATE, index)
    scale_head(model, x, state)

    weights: list[float] = []
    for k in range(layers):
        w = torch.cat([getattr(rec, f"weight_ih_l{k}"), getattr(rec, f"weight_hh_l{k}")], dim=1)
        weights += tensor_to_lists(w.reshape(-1))
        weights += tensor_to_lists(getattr(rec, f"bias_ih_l{k}"))
        weights += tensor_to_lists(h0[k])
        weights += tensor_to_lists(c0[k])
    weights += tensor_to_lists(head.weight.reshape(-1))
    weights += tensor_to_lists(head.bias)
    doc = {
        "version": "0.5.4",
        "architecture": "LSTM",
        "config": {"input_size": 1, "hidden_size": hidden, "num_layers": layers},
        "weights": weights,
        "sample_rate": NAM_SAMPLE_RATE,
    }

    prewarm = round(NAM_PREWARM_SECONDS * NAM_SAMPLE_RATE)
    y64, y32 = run_both(model, x, state)
    y64p, y32p = run_both(model, x, state, prewarm=prewarm)
    gap = check_f32_gap(name, y64, y32)
    gap_prewarm = check_f32_gap(name, y64p, y32p)
    describe(name, y64, x, 0, max(gap, gap_prewarm))
    print(f"  {'':34s} max|h0| {h0.abs().max():.3f}  max|c0| {c0.abs().max():.3f}  "
          f"prewarm changes y by {np.abs(y64p - y64).max():.3f}")
    write_json(OUT_DIR / f"{name}.nam", doc)
    write_npz(OUT_DIR / f"{name}.npz", {"x": x, "y64": y64, "y32": y32,
                                         "y64_prewarm": y64p, "y32_prewarm": y32p})
    return {
        "file": f"{name}.nam",
        "format": "nam",
        "cell": "LSTM",
        "num_layers": layers,
        "hidden_size": hidden,
        "input_size": 1,
        "skip": 0,
        "sample_rate": NAM_SAMPLE_RATE,
        "golden": f"{name}.npz",
        "prewarm_samples": prewarm,
        "max_abs_y32_minus_y64": round_gap(gap),
        "max_abs_y32_minus_y64_prewarm": round_gap(gap_prewarm),
    }


# --------------------------------------------------------------------------
# independent NumPy re-computation from the written files


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_layer(cell: str, x: np.ndarray, w_ih, w_hh, b_ih, b_hh, h=None, c=None):
    """One recurrent layer over x (N, I) in PyTorch gate conventions."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden) if h is None else h.copy()
    c = np.zeros(hidden) if c is None else c.copy()
    out = np.empty((x.shape[0], hidden))
    for n in range(x.shape[0]):
        gi = w_ih @ x[n] + b_ih
        gh = w_hh @ h + b_hh
        if cell == "LSTM":
            g = gi + gh
            i, f, z, o = (g[k * hidden:(k + 1) * hidden] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(z)
            h = sigmoid(o) * np.tanh(c)
        elif cell == "GRU":
            r = sigmoid(gi[:hidden] + gh[:hidden])
            z = sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
            cand = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
            h = (1.0 - z) * cand + z * h
        else:
            h = np.tanh(gi + gh)
        out[n] = h
    return out, h, c


def cell_from_shapes(w_ih, w_hh) -> str:
    ratio = w_ih.shape[0] // w_hh.shape[1]
    return {4: "LSTM", 3: "GRU", 1: "RNN"}[ratio]


def np_stack(sd: dict, prefixes: list[str], x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    h = x
    found = []
    for p in prefixes:
        k = 0
        while f"{p}weight_ih_l{k}" in sd:
            w_ih = np.asarray(sd[f"{p}weight_ih_l{k}"], dtype=np.float64)
            w_hh = np.asarray(sd[f"{p}weight_hh_l{k}"], dtype=np.float64)
            cell = cell_from_shapes(w_ih, w_hh)
            h, _, _ = np_layer(cell, h, w_ih, w_hh,
                               np.asarray(sd[f"{p}bias_ih_l{k}"], dtype=np.float64),
                               np.asarray(sd[f"{p}bias_hh_l{k}"], dtype=np.float64))
            found.append(cell)
            k += 1
    return h, found


def check_agm(entry: dict) -> float:
    doc = json.loads((OUT_DIR / entry["file"]).read_text())
    g = np.load(OUT_DIR / entry["golden"])
    md, sd = doc["model_data"], doc["state_dict"]
    x = g["x"]
    h, cells = np_stack(sd, ["rec."], x)
    assert cells == [md["unit_type"]] * md["num_layers"], cells
    y = h @ np.asarray(sd["lin.weight"]).T + np.asarray(sd["lin.bias"])
    y = y + x[:, : md["skip"]].sum(axis=1, keepdims=True)
    return float(np.max(np.abs(y - g["y64"])))


def np_activation(name: str, v: np.ndarray) -> np.ndarray:
    if name == "selu":
        return 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * np.expm1(np.minimum(v, 0.0)))
    if name == "softplus":
        return np.logaddexp(0.0, v)
    if name == "gelu":
        return 0.5 * v * (1.0 + np.vectorize(math.erf)(v / math.sqrt(2.0)))
    assert name == "", name
    return v


def check_keras(entry: dict) -> float:
    doc = json.loads((OUT_DIR / entry["file"]).read_text())
    g = np.load(OUT_DIR / entry["golden"])
    x = g["x"]
    h = x
    for layer in doc["layers"]:
        w = [np.asarray(a, dtype=np.float64) for a in layer["weights"]]
        if layer["type"] == "dense":
            h = np_activation(layer["activation"], h @ w[0] + w[1])
        elif layer["type"] == "lstm":
            h, _, _ = np_layer("LSTM", h, w[0].T, w[1].T, w[2], np.zeros_like(w[2]))
        else:
            rows = _gru_rows(w[1].shape[0])
            h, _, _ = np_layer("GRU", h, w[0].T[rows], w[1].T[rows], w[2][0][rows], w[2][1][rows])
    y = h + x[:, : doc["in_skip"]].sum(axis=1, keepdims=True)
    return float(np.max(np.abs(y - g["y64"])))


def check_torch_json(entry: dict) -> float:
    sd = json.loads((OUT_DIR / entry["file"]).read_text())
    g = np.load(OUT_DIR / entry["golden"])
    prefixes = []
    for key in sd:  # key order is module order
        if key.endswith("weight_ih_l0"):
            prefixes.append(key[: -len("weight_ih_l0")])
    h, cells = np_stack(sd, prefixes, g["x"])
    expected = [m["cell"] for m in entry["cell"] for _ in range(m["num_layers"])]
    assert cells == expected, (cells, expected)
    assert list(sd)[-2:] == ["dense.weight", "dense.bias"]
    y = h @ np.asarray(sd["dense.weight"]).T + np.asarray(sd["dense.bias"])
    return float(np.max(np.abs(y - g["y64"])))


def check_nam(entry: dict) -> float:
    doc = json.loads((OUT_DIR / entry["file"]).read_text())
    g = np.load(OUT_DIR / entry["golden"])
    cfg = doc["config"]
    hidden, layers, width = cfg["hidden_size"], cfg["num_layers"], cfg["input_size"]
    w = np.asarray(doc["weights"], dtype=np.float64)
    pos = 0

    def take(count):
        nonlocal pos
        pos += count
        return w[pos - count: pos]

    params = []
    for _ in range(layers):
        mat = take(4 * hidden * (width + hidden)).reshape(4 * hidden, width + hidden)
        params.append((mat[:, :width], mat[:, width:], take(4 * hidden),
                       take(hidden), take(hidden)))
        width = hidden
    head_w, head_b = take(hidden), take(1)
    assert pos == w.size, (pos, w.size)

    def run(x, prewarm):
        # The prewarm silence passes through the whole stack, so deeper layers
        # see the upper layers' response to it, not zeros.
        h = np.concatenate([np.zeros((prewarm, x.shape[1])), x])
        for w_ih, w_hh, b, h0, c0 in params:
            h, _, _ = np_layer("LSTM", h, w_ih, w_hh, b, 0.0, h0, c0)
        return (h[prewarm:] @ head_w + head_b[0])[:, None]

    prewarm = round(NAM_PREWARM_SECONDS * doc["sample_rate"])
    err = float(np.max(np.abs(run(g["x"], 0) - g["y64"])))
    return max(err, float(np.max(np.abs(run(g["x"], prewarm) - g["y64_prewarm"]))))


# --------------------------------------------------------------------------


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    print("writing models and goldens")
    entries = [build_agm(i, spec) for i, spec in enumerate(AGM_MODELS)]
    entries += [build_torch_json(i, name, mods)
                for i, (name, mods) in enumerate(TORCH_JSON_MODELS.items())]
    entries += [build_nam(i, h, l) for i, (h, l) in enumerate(NAM_MODELS)]
    entries += [build_keras(i, name, spec) for i, (name, spec) in enumerate(KERAS_MODELS.items())]

    manifest = {
        "generated_by": "pip install torch==2.13.0 && python tools/make_goldens.py",
        "torch_version": torch.__version__,
        "n_samples": N_SAMPLES,
        "models": entries,
    }
    write_json(OUT_DIR / "manifest.json", manifest, indent=2)

    print("re-reading files and recomputing float64 outputs with NumPy")
    checks = {"agm": check_agm, "torch_json": check_torch_json, "nam": check_nam, "keras": check_keras}
    worst = 0.0
    for entry in entries:
        err = checks[entry["format"]](entry)
        print(f"  {entry['file']:38s} max |numpy - torch| = {err:.2e}")
        if not err <= CHECK_TOLERANCE:
            raise SystemExit(f"{entry['file']}: NumPy re-computation differs by {err:.3g}")
        worst = max(worst, err)
    print(f"all {len(entries)} models agree to {worst:.2e} (limit {CHECK_TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
