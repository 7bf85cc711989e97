"""Throughput of nbrnn's per-sample kernels, beside PyTorch and a plain NumPy loop, in one run.

    python tools/bench.py [--quick] [--csv out.csv] [--timer wall|cpu] [--processes N]
    python tools/bench.py --model FILE [FILE ...] [--timer wall|cpu]

For LSTM and GRU of hidden size H (1 input -> recurrent(H) -> Dense(1), skip on,
random weights, trained rate 44.1 kHz), float32 and float64, both activation
paths, it streams 2 s of audio through ``Stream.feed`` in blocks of 4096 samples,
plain (the naive plan at the trained rate) and with cubic Lagrange at
R = 48000/44100, and reports samples/s and how many times real time that is at
48 kHz: the median of 7 runs after a warm-up.  In the same run:

* PyTorch's ``nn.LSTM`` / ``nn.GRU`` (+ ``nn.Linear``) with the same weights, one
  thread, the whole signal in one call, float32 and float64 (when torch is
  importable; its float64 output is checked against nbrnn's);
* a plain Python + NumPy per-sample loop, on a short signal;
* compiled C (when a C compiler is found: ``$CC``, else ``cc``): ``tools/bench_peer.c``, the same
  model written plainly in C with the hidden size fixed at compile time, built with ``-O3 -march=native
  -ffast-math -fopenmp-simd`` (reassociation allowed, which nbrnn's kernels forbid themselves), on the
  same activation path: the accurate rows beside the C library's ``tanh``, the fast rows beside nbrnn's
  fast rational tanh; its output is checked against nbrnn's;
* the read bound: how many times per second this core can merely read the
  layer's packed weights (everything the kernel reads per sample; a vectorised
  sum over them), from L1 or L2 as their size decides.  No kernel that reads its
  weights once per sample can run faster; a row far below it is bound by the
  sample-to-sample dependency chain instead (small H);
* 8 channels on all cores against 1 channel (throughput ratio);
* small blocks: the LSTM of 8 units fed blocks of 64 and 512 samples against blocks of 4096, and the
  time per ``Stream.feed`` call with one sample per block (what a call costs besides its samples);
* cold compile (a fresh process without the on-disk cache: its first ``process``
  call) and warm start (a fresh process with a filled cache: ``import nbrnn``
  to the first processed block; median of START_RUNS (3) processes, with
  Python's bytecode cache on even where PYTHONDONTWRITEBYTECODE is set), timed
  inside the subprocesses.  The warm start is also split in as many more
  processes: Numba's own start (``import numba`` and the first call of a cached
  one-line kernel, which any program with a cached Numba kernel pays) and
  nbrnn's share after it.

``--timer cpu`` times single-thread measurements with the thread's CPU time
instead of the wall clock, which leaves out the time spent waiting for a core
on a shared machine; the multichannel ratio is always wall-clock.  ``--processes N``
measures every row group in N fresh processes (3 runs each) and reports the
median over processes, with the spread between them: a compiled kernel can sit
in a slower mode for a whole process (docs/speed.md), so one process is one
draw.  The table is printed and written as CSV (``--csv``, default ``bench.csv``).

``--model`` times model files instead (any format nbrnn loads; knobs held at 0.5):
both activation paths and float types, plain at the model's trained rate and
with cubic Lagrange at 48000/44100 times it, the same signal in blocks of 4096,
beside the table-driven kernel (``engine.pack(..., specialise=False)``, the
path every network with a dense layer outside the recurrent stack took before
the dense block passes), and names the kernel that runs it.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbrnn  # noqa: E402
from nbrnn import _kernels, engine  # noqa: E402
from nbrnn.adapt import make_plan  # noqa: E402

TRAINED = 44100.0
RATE = 48000.0  # the cubic Lagrange run: R = 48000 / 44100
BLOCK = 4096
PROCESS_RUNS = 3  # runs per process with --processes
SECONDS = {False: 2.0, True: 0.5}  # audio per run, by --quick
GATES = {"lstm": 4, "gru": 3}


def network(cell: str, hidden: int, seed: int = 0) -> nbrnn.Network:
    """1 input -> cell(hidden) -> Dense(1), skip on, PyTorch's default initialisation U(-1/sqrt(H), 1/sqrt(H))."""
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden)
    g = GATES[cell] * hidden
    rec = nbrnn.Recurrent(cell, rng.uniform(-k, k, (g, 1)), rng.uniform(-k, k, (g, hidden)), rng.uniform(-k, k, g),
                          rng.uniform(-k, k, g))
    head = nbrnn.Dense(rng.uniform(-k, k, (1, hidden)), rng.uniform(-k, k, 1))
    return nbrnn.Network((rec, head), skip=1, trained_rate=TRAINED)


def signal(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / TRAINED) + 0.05 * rng.standard_normal(n)


class Clock:
    def __init__(self, kind: str):
        self.now = time.thread_time if kind == "cpu" else time.perf_counter


def median_rates(runners: dict, runs: int, clock: Clock, best: bool = False) -> dict:
    """Samples per second of each ``(run, n)`` in ``runners``: n over its median duration (or its shortest).

    The runners take turns (one warm-up call each first), so that a busy spell on
    a shared machine falls on all of them alike and their ratios stay fair.
    """
    durations = {name: [] for name in runners}
    for run, _ in runners.values():
        run()
    for _ in range(runs):
        for name, (run, _) in runners.items():
            t = clock.now()
            run()
            durations[name].append(clock.now() - t)
    pick = np.min if best else np.median
    return {name: runners[name][1] / float(pick(durations[name])) for name in runners}


@numba.njit(fastmath=True)  # reassociation lets the vectoriser keep several partial sums
def _read(a, reps):
    s = a.dtype.type(0)
    for _ in range(reps):
        for i in range(a.shape[0]):
            s += a[i]
    return s


def read_runner(net, dtype, n):
    """The packed weights of ``net`` read ``n`` times (the read bound; see the module's docstring)."""
    params = engine.pack_stack(net, dtype).params

    def run():
        _read(params, n)

    return run, n


def nbrnn_runner(net, dtype, activations, rate, x, channels=1, trained=TRAINED, specialise=True, block=BLOCK):
    """Plain (the naive plan) at the trained rate, cubic Lagrange at any other; blocks of ``block`` samples
    through Stream.feed.  Conditioning inputs (after the first) are held at 0.5."""
    plan = make_plan(trained, rate, "naive") if rate == trained else make_plan(trained, rate, "lagrange", order=3)
    stream = engine.Stream(engine.pack(net, dtype, specialise), plan, channels, rate, trained,
                           activations=activations)
    inp = np.full((channels, x.size, net.input_size), 0.5, dtype=dtype)
    inp[:, :, 0] = x

    def run():
        for s in range(0, x.size, block):
            stream.feed(inp[:, s:s + block])

    run.stream = stream
    return run, x.size * channels


def model_table(paths, runs: int, clock: Clock) -> None:
    """``--model``: each file's M samples/s on both activation paths and float types, and the kernel running it."""
    x = signal(int(SECONDS[False] * RATE))
    print("model | kernel | dtype | accurate plain | accurate cubic | fast plain | fast cubic | "
          "table-driven plain | accurate plain / table-driven   (M samples/s)")
    for path in paths:
        model = nbrnn.load(path)
        trained = model.trained_rate
        for dtype in ("float32", "float64"):
            runners = {f"{activations} {label}": nbrnn_runner(model.network, dtype, activations, rate, x,
                                                              trained=trained)
                       for activations in ("accurate", "fast")
                       for label, rate in (("plain", trained), ("cubic", trained * RATE / TRAINED))}
            runners["table"] = nbrnn_runner(model.network, dtype, "accurate", trained, x, trained=trained,
                                            specialise=False)
            stream = runners["accurate plain"][0].stream
            kernel = "table-driven" if stream.stack is None else ", ".join(e.__name__ for e in stream.entries)
            rates = median_rates(runners, runs, clock)
            print(" | ".join([Path(path).name, kernel, dtype] + [fmt(rates[name] / 1e6) for name in runners]
                             + [fmt(rates["accurate plain"] / rates["table"], ".1f")]), flush=True)


def torch_model(net, cell, dtype):
    import torch

    rec, head = net.layers
    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    module = getattr(torch.nn, cell.upper())(1, rec.hidden_size, batch_first=True).to(torch_dtype)
    linear = torch.nn.Linear(rec.hidden_size, 1).to(torch_dtype)

    def put(param, value):
        param.copy_(torch.tensor(np.array(value), dtype=torch_dtype))

    with torch.no_grad():
        put(module.weight_ih_l0, rec.weight_ih)
        put(module.weight_hh_l0, rec.weight_hh)
        put(module.bias_ih_l0, rec.bias_ih)
        put(module.bias_hh_l0, rec.bias_hh)
        put(linear.weight, head.weight)
        put(linear.bias, head.bias)
    return module, linear, torch_dtype


def torch_runner(net, cell, dtype, x):
    """The whole signal through nn.LSTM / nn.GRU and nn.Linear in one call (plus the skip)."""
    import torch

    module, linear, torch_dtype = torch_model(net, cell, dtype)
    inp = torch.from_numpy(x).to(torch_dtype).reshape(1, -1, 1)

    def run():
        with torch.inference_mode():
            h, _ = module(inp)
            return linear(h) + inp

    return run, x.size


def numpy_runner(net, cell, dtype, x):
    """A plain per-sample loop: what the model costs written directly in Python with NumPy."""
    rec, head = net.layers
    dt = np.dtype(dtype)
    w_ih, w_hh = rec.weight_ih[:, 0].astype(dt), rec.weight_hh.astype(dt)
    b_ih, b_hh = rec.bias_ih.astype(dt), rec.bias_hh.astype(dt)
    w_out, b_out = head.weight[0].astype(dt), dt.type(head.bias[0])
    h_size = rec.hidden_size
    xs = x.astype(dt)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    def run():
        h = np.zeros(h_size, dt)
        c = np.zeros(h_size, dt)
        out = np.empty_like(xs)
        for n, xn in enumerate(xs):
            if cell == "lstm":
                z = w_ih * xn + b_ih + b_hh + w_hh @ h
                i, f, g, o = sigmoid(z[:h_size]), sigmoid(z[h_size:2 * h_size]), np.tanh(z[2 * h_size:3 * h_size]), \
                    sigmoid(z[3 * h_size:])
                c = f * c + i * g
                h = o * np.tanh(c)
            else:
                a = w_ih * xn + b_ih
                b = w_hh @ h + b_hh
                r, u = sigmoid(a[:h_size] + b[:h_size]), sigmoid(a[h_size:2 * h_size] + b[h_size:2 * h_size])
                m = np.tanh(a[2 * h_size:] + r * b[2 * h_size:])
                h = (1 - u) * m + u * h
            out[n] = w_out @ h + b_out + xn
        return out

    return run, x.size


PEER_SOURCE = Path(__file__).resolve().with_name("bench_peer.c")
PEER_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC"]


def c_compiler() -> list | None:
    """The command of the C compiler for the compiled peer (``$CC``, else ``cc``), or None when not found."""
    cmd = shlex.split(os.environ.get("CC") or "cc")
    found = shutil.which(cmd[0]) if cmd else None
    return [found] + cmd[1:] if found else None


def c_compiler_name() -> str:
    """The compiler's name and version as the table's header shows it, or why there is no C column."""
    cc = c_compiler()
    if cc is None:
        return f"absent (no {os.environ.get('CC') or 'cc'} on PATH)"
    res = subprocess.run(cc + ["--version"], capture_output=True, text=True, timeout=60)
    return f"{(res.stdout.splitlines() or [cc[0]])[0]} {' '.join(PEER_FLAGS[:4])}"


def c_runner(net, cell, dtype, fast, x, build_dir, cc):
    """The model through ``tools/bench_peer.c`` compiled by ``cc`` (:func:`c_compiler`) for its H, float type and
    activation path (the whole signal in one call), as nbrnn's kernels take the weights: W_hh transposed, sigmoid
    rows halved."""
    rec, head = net.layers
    dt = np.dtype(dtype)
    h = rec.hidden_size
    real = "float" if dt == np.float32 else "double"
    lib_path = Path(build_dir) / f"peer_{h}_{real}_{'fast' if fast else 'accurate'}.so"
    cmd = [*cc, *PEER_FLAGS, f"-DH={h}", f"-DREAL={real}", *(["-DFAST"] if fast else []),
           str(PEER_SOURCE), "-o", str(lib_path), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()[-1000:]}")
    lib = ctypes.CDLL(str(lib_path))
    scale = np.repeat(np.where(engine._HALVED[cell], 0.5, 1.0), h)  # the sigmoid gates, as pack() scales them
    keep = {"x": x.astype(dt), "w_ih": rec.weight_ih[:, 0] * scale, "w_hh": (rec.weight_hh * scale[:, None]).T,
            "w_out": head.weight[0], "k": _kernels.constants(dt)[_kernels.FAST:_kernels.FAST + _kernels.N_FAST]}
    if cell == "lstm":
        keep["bias"] = (rec.bias_ih + rec.bias_hh) * scale
    else:
        keep["bias"] = (rec.bias_ih + np.r_[rec.bias_hh[:2 * h], np.zeros(h)]) * scale
        keep["bias_n"] = rec.bias_hh[2 * h:]
    keep = {name: np.ascontiguousarray(v, dtype=dt) for name, v in keep.items()}
    keep["y"] = np.empty_like(keep["x"])
    real_t = ctypes.c_float if real == "float" else ctypes.c_double
    ptrs = [keep[name].ctypes.data_as(ctypes.c_void_p) for name in
            ["x", "y", "w_ih", "w_hh", "bias"] + (["bias_n"] if cell == "gru" else []) + ["w_out", "k"]]
    fn = getattr(lib, cell)
    fn.restype = None
    args = ptrs[:2] + [ctypes.c_long(x.size)] + ptrs[2:-1] + [real_t(head.bias[0]), ptrs[-1]]

    def run():
        fn(*args)
        return keep["y"]

    return run, x.size


def in_subprocess(script: Path, env: dict, values: int = 1):
    """The last number the script prints (or the last ``values`` numbers, as a list), run in a fresh process."""
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=1800)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    found = [float(v) for v in res.stdout.split()[-values:]]
    return found[0] if values == 1 else found


START_CODE = """
import time
t0 = time.perf_counter()
import sys
sys.path.insert(0, {root!r})
import numpy as np
{floor}
import nbrnn
rng = np.random.default_rng(0)
h = 32
rec = nbrnn.Recurrent("lstm", rng.uniform(-0.2, 0.2, (4 * h, 1)), rng.uniform(-0.2, 0.2, (4 * h, h)),
                      np.zeros(4 * h), np.zeros(4 * h))
model = nbrnn.Model(nbrnn.Network((rec, nbrnn.Dense(np.ones((1, h)) / h, [0.0])), skip=1, trained_rate=44100.0))
x = np.sin(np.arange(512) * 0.05)
t1 = time.perf_counter()
model.process(x, 48000, dtype={dtype!r})
t2 = time.perf_counter()
print(t2 - ({mark}))
"""

# Numba's own start, which every program with a cached kernel pays before nbrnn's code runs: importing numba
# and the first call of a cached one-line kernel (it initialises Numba's compiler context, which imports
# numba.np.arraymath and, through its BLAS check, scipy.linalg).  With it in front of START_CODE and mark
# "tf", the subprocess prints that floor and then what nbrnn adds (import nbrnn -> first block).
FLOOR_CODE = """
import numba
@numba.njit(cache=True)
def _floor(x):
    return x[0] + 1.0
_floor(np.ones(2))
tf = time.perf_counter()
print(tf - t0)
"""


#: Fresh processes per warm-start figure (their median).
START_RUNS = 3


def start_times(dtype: str, runs: int = START_RUNS) -> tuple:
    """Seconds, each in fresh processes: (cold first call, warm start: import nbrnn -> first block, and that
    warm start split into Numba's own start and what nbrnn adds after it); the warm figures are medians of
    ``runs`` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        def script(name, floor, mark):  # a file: Numba caches no function defined in ``python -c``
            path = Path(tmp) / f"{name}.py"
            path.write_text(START_CODE.format(root=str(ROOT), dtype=dtype, mark=mark, floor=floor))
            return path

        # with Python's bytecode cache too, as a user's second process finds it
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base["NUMBA_CACHE_DIR"] = str(Path(tmp) / "cache")
        first, warm_start, split_start = script("first", "", "t1"), script("warm", "", "t0"), script(
            "split", FLOOR_CODE, "tf")
        cold = in_subprocess(first, dict(base, NBRNN_NUMBA_CACHE="0"))
        in_subprocess(split_start, base)  # fills the cache
        warm = [in_subprocess(warm_start, base) for _ in range(runs)]
        split = np.array([in_subprocess(split_start, base, values=2) for _ in range(runs)])
    return cold, float(np.median(warm)), float(np.median(split[:, 0])), float(np.median(split[:, 1]))


def block_costs(x: np.ndarray, runs: int, clock: Clock) -> list:
    """Small blocks, as a host calling a plugin feeds them: what each Stream.feed call costs besides its samples
    (the checks, the kernel call's dispatch) weighs at a few hundred samples per block.  Rows for the extras."""
    net = network("lstm", 8)
    name = "LSTM H=8 float32 accurate"
    runners = {b: nbrnn_runner(net, "float32", "accurate", TRAINED, x, block=b) for b in (64, 512, BLOCK)}
    rates = median_rates(runners, runs, clock)
    rows = [[f"Stream.feed in blocks of {b} / in blocks of {BLOCK}, {name}", rates[b] / rates[BLOCK],
             f"({rates[BLOCK] / 1e6:.2f} -> {rates[b] / 1e6:.2f} M samples/s)"] for b in (64, 512)]
    single = median_rates({1: nbrnn_runner(net, "float32", "accurate", TRAINED, x[:20000], block=1)}, runs, clock)
    return rows + [[f"Stream.feed per call in blocks of 1 sample, {name}", 1e6 / single[1], "us"]]


def cpu_name() -> str:
    """The processor's name, family and model, and its L1 data cache: a virtual machine's name ("AMD EPYC")
    can stand for processors of different generations, whose speed differs far more than their clocks."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    details = [f"family {fields['cpu family']} model {fields['model']}"] if "cpu family" in fields else []
    try:
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if (index / "level").read_text().strip() == "1" and (index / "type").read_text().strip() == "Data":
                details.append(f"L1d {(index / 'size').read_text().strip()}")
    except OSError:
        pass
    return f"{name} ({', '.join(details)})" if details else name


def have_torch() -> bool:
    try:
        import torch
    except ImportError:
        return False
    torch.set_num_threads(1)
    return True


def measure(cell: str, h: int, dtype: str, quick: bool, runs: int, timer: str, torch_ok: bool) -> dict:
    """One row group, in this process: samples/s of PyTorch ("torch", when ``torch_ok``), of nbrnn
    ("accurate plain", "fast cubic", ...; the median of ``runs``), of compiled C ("c accurate", "c fast",
    when a compiler is found) and of the NumPy loop ("numpy"), and "warning" when nbrnn's float64 output
    and PyTorch's differ, or nbrnn's and C's."""
    net = network(cell, h)
    x = signal(int(SECONDS[quick] * RATE))
    clock = Clock(timer)
    runners, rates, outputs = {}, {}, {}

    def ours(activations):  # nbrnn's output on the plain plan, the reference for PyTorch's and C's
        if activations not in outputs:
            outputs[activations] = nbrnn.Model(net).process(x, TRAINED, method="naive", dtype=dtype,
                                                            activations=activations)
        return outputs[activations]

    if torch_ok:
        runners["torch"] = torch_runner(net, cell, dtype, x)
        if dtype == "float64":
            mine = ours("accurate")
            err = float(np.abs(mine - runners["torch"][0]()[0, :, 0].numpy()).max())
            if err > 1e-9:
                rates["warning"] = f"{cell} H={h}: nbrnn and torch differ by {err:.1e}"
    for activations in ("accurate", "fast"):
        runners[f"{activations} plain"] = nbrnn_runner(net, dtype, activations, TRAINED, x)
        runners[f"{activations} cubic"] = nbrnn_runner(net, dtype, activations, RATE, x)
    runners["read"] = read_runner(net, dtype, x.size)
    notes = [rates.pop("warning")] if "warning" in rates else []
    cc = c_compiler()
    with tempfile.TemporaryDirectory() as build:
        for activations in ("accurate", "fast") if cc else ():
            try:
                c_run = c_runner(net, cell, dtype, activations == "fast", x, build, cc)
            except (OSError, RuntimeError) as exc:  # a compiler that cannot build it: no C column, and why
                notes.append(f"no C {activations} column: {exc}")
                continue
            runners[f"c {activations}"] = c_run
            err = float(np.abs(ours(activations) - c_run[0]()).max())
            if not err <= (1e-5 if dtype == "float32" else 1e-12):
                notes.append(f"{cell} H={h} {activations}: nbrnn and C differ by {err:.1e}")
        rates.update(median_rates(runners, runs, clock))
    if notes:
        rates["warning"] = "; ".join(notes)
    short = signal(1000 if quick else 2000)
    rates["numpy"] = median_rates({"numpy": numpy_runner(net, cell, dtype, short)}, 3, clock)["numpy"]
    return rates


def in_processes(args, cell: str, h: int, dtype: str) -> tuple:
    """One row group measured in ``args.processes`` fresh processes, one after the other: the median rate of
    each variant over the processes, and for nbrnn's variants the spread (highest / lowest - 1, and the range).

    A compiled kernel can run in a faster or a slower mode for the whole life of a process (docs/speed.md),
    so a single process's figure is one draw; the median over processes is the typical one.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--group", f"{cell},{h},{dtype}", "--runs",
           str(PROCESS_RUNS), "--timer", args.timer] + (["--quick"] if args.quick else [])
    draws = []
    for _ in range(args.processes):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if res.returncode:
            raise RuntimeError(res.stderr[-2000:])
        draws.append(json.loads(res.stdout.strip().splitlines()[-1]))
    rates = {key: float(np.median([d[key] for d in draws])) for key in draws[0] if key != "warning"}
    rates["warning"] = "; ".join(sorted({d["warning"] for d in draws if d.get("warning")}))
    spread = {}
    for key in rates:
        if key.endswith(("plain", "cubic")):
            values = [d[key] for d in draws]
            spread[key] = max(values) / min(values) - 1
            spread[f"{key} range"] = (min(values), max(values))
    return rates, spread


def fmt(v, spec=".2f"):
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="H in {8, 32, 64}, 0.5 s of audio, 5 runs")
    ap.add_argument("--csv", default="bench.csv", help="where to write the table (default: bench.csv)")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="single-thread timings by wall clock (default) or by the thread's CPU time")
    ap.add_argument("--processes", type=int, default=1,
                    help="measure every row in this many fresh processes, %d runs each, and report the medians "
                         "over processes (default 1: all in this process)" % PROCESS_RUNS)
    ap.add_argument("--model", nargs="+", metavar="FILE", help="time these model files instead (see above)")
    ap.add_argument("--group", help=argparse.SUPPRESS)  # one row group, as JSON (used by --processes)
    ap.add_argument("--runs", type=int, default=PROCESS_RUNS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.processes < 1:
        ap.error(f"--processes must be at least 1, got {args.processes}")

    if args.model:
        model_table(args.model, 5, Clock(args.timer))
        return
    if args.group:
        cell, h, dtype = args.group.split(",")
        print(json.dumps(measure(cell, int(h), dtype, args.quick, args.runs, args.timer, have_torch())))
        return
    sizes = (8, 32, 64) if args.quick else (8, 16, 32, 40, 64, 128)
    runs = PROCESS_RUNS if args.processes > 1 else 5 if args.quick else 7
    x = signal(int(SECONDS[args.quick] * RATE))
    torch_ok = have_torch()
    if torch_ok:
        import torch
    print(f"nbrnn tools/bench.py  {datetime.date.today()}  {cpu_name()}, {os.cpu_count()} cores  "
          f"python {platform.python_version()}  numpy {np.__version__}  "
          f"numba {__import__('numba').__version__}  torch {torch.__version__ if torch_ok else 'absent'}  "
          f"C {c_compiler_name()}  "
          f"timer {args.timer}  {x.size} samples x {runs} runs"
          f"{f' in each of {args.processes} processes' if args.processes > 1 else ''}, blocks of {BLOCK}\n")

    header = ["cell", "H", "dtype", "activations", "plain Msps", "plain xRT48k", "cubic Msps", "cubic cost %",
              "torch Msps", "plain / torch", "cubic / torch", "C Msps", "plain / C", "numpy Msps", "read bound Msps",
              "plain / bound %", "process spread %"]
    rows, uneven = [], []
    print(" | ".join(header))
    for cell in ("lstm", "gru"):
        for h in sizes:
            for dtype in ("float32", "float64"):
                if args.processes > 1:
                    rates, spread = in_processes(args, cell, h, dtype)
                else:
                    rates, spread = measure(cell, h, dtype, args.quick, runs, args.timer, torch_ok), {}
                if rates.get("warning"):
                    print(f"  ! {rates['warning']}")
                t_rate = rates.get("torch")
                for activations in ("accurate", "fast"):
                    c_rate = rates.get(f"c {activations}")
                    plain, cubic = rates[f"{activations} plain"], rates[f"{activations} cubic"]
                    worst = max([spread.get(f"{activations} {v}", 0.0) for v in ("plain", "cubic")])
                    row = [cell, h, dtype, activations, plain / 1e6, plain / 48000, cubic / 1e6,
                           100 * (plain / cubic - 1), None if t_rate is None else t_rate / 1e6,
                           None if t_rate is None else plain / t_rate, None if t_rate is None else cubic / t_rate,
                           None if c_rate is None else c_rate / 1e6, None if c_rate is None else plain / c_rate,
                           rates["numpy"] / 1e6, rates["read"] / 1e6, 100 * plain / rates["read"],
                           100 * worst if spread else None]
                    rows.append(row)
                    if worst > 0.15:
                        uneven.append(f"{cell} H={h} {dtype} {activations}: " + ", ".join(
                            f"{v} {lo / 1e6:.2f}-{hi / 1e6:.2f}" for v in ("plain", "cubic")
                            for lo, hi in [spread[f"{activations} {v} range"]]))
                    print(" | ".join([cell, str(h), dtype, activations, fmt(row[4]), fmt(row[5], ".0f"), fmt(row[6]),
                                      fmt(row[7], "+.0f"), fmt(row[8], ".3f"), fmt(row[9], ".1f"),
                                      fmt(row[10], ".1f"), fmt(row[11]), fmt(row[12]), fmt(row[13], ".3f"),
                                      fmt(row[14]), fmt(row[15], ".0f"), fmt(row[16], ".0f")]), flush=True)
    if uneven:
        print(f"\nrows whose {args.processes} processes differ by more than 15 % (M samples/s, lowest-highest):")
        for line in uneven:
            print(f"  {line}")

    extras = []
    # Several channels: one stream of 8 channels on all cores against one channel, taking turns.  On a
    # shared machine the best runs show what the cores do when they are free, the medians what they did.
    for h in (16, 32):
        net = network("lstm", h)
        runners = {1: nbrnn_runner(net, "float32", "accurate", TRAINED, x),
                   8: nbrnn_runner(net, "float32", "accurate", TRAINED, x, channels=8)}
        med = median_rates(runners, runs, Clock("wall"))
        top = median_rates(runners, runs, Clock("wall"), best=True)
        name = f"8 channels / 1 channel, LSTM H={h} float32 accurate, {os.cpu_count()} cores"
        for label, rates in (("throughput, median", med), ("throughput, best", top)):
            extras.append([f"{name}, {label}", rates[8] / rates[1],
                           f"({rates[1] / 1e6:.2f} -> {rates[8] / 1e6:.2f} M samples/s)"])
    extras += block_costs(x, runs, Clock(args.timer))
    for dtype in ("float64", "float32"):
        cold, warm, numba_start, own = start_times(dtype)
        extras.append([f"cold compile: first process() without cache, LSTM H=32 {dtype} lagrange", cold, "s"])
        extras.append([f"warm start: import nbrnn -> first block with cache, {dtype}, median of {START_RUNS}", warm,
                       "s"])
        extras.append([f"  of which Numba's own start (import numba, first call of a cached one-line kernel), {dtype}",
                       numba_start, "s"])
        extras.append([f"  and nbrnn's share after it (import nbrnn -> first block), {dtype}", own, "s"])
    print()
    for name, value, unit in extras:
        print(f"{name}: {value:.2f} {unit}")

    with open(args.csv, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows([[("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for v in row]
                       for row in rows])
        out.writerow([])
        for name, value, unit in extras:
            out.writerow([name, f"{value:.4g}", unit])
    print(f"\nwritten: {args.csv}")


if __name__ == "__main__":
    main()
