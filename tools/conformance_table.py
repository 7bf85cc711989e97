"""Print how closely nbrnn reproduces the reference outputs (max absolute error per file).

    python tools/conformance_table.py            # needs ../shared (or $NBRNN_SHARED) for the third-party rows

Rows: the project's own PyTorch goldens (tests/data/golden), RTNeural's Keras / PyTorch test
data, RTNeural's sample-rate-corrected outputs and the article's curves (delayed-state convention).
"""

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np

import nbrnn
from nbrnn.figures.sources import shared_dir

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"


def row(name, errors):
    cells = " | ".join(f"{errors[d]:.1e}" if d in errors else "–" for d in ("float64", "float32"))
    print(f"| {name} | {cells} |")


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    print("| reference | max abs error float64 | float32 |")
    print("|---|---:|---:|")
    worst = {"float64": 0.0, "float32": 0.0}
    for entry in json.loads((GOLDEN / "manifest.json").read_text())["models"]:
        model = nbrnn.load(GOLDEN / entry["file"])
        data = np.load(GOLDEN / entry["golden"])
        x = data["x"]
        cond = [x[:, i] for i in range(1, x.shape[1])] or None
        for dtype, key in (("float64", "y64"), ("float32", "y32")):
            y = model.process(x[:, 0], model.trained_rate, method="naive", cond=cond, dtype=dtype)
            worst[dtype] = max(worst[dtype], float(np.abs(y - data[key][:, 0]).max()))
    row(f"own PyTorch goldens ({len(json.loads((GOLDEN / 'manifest.json').read_text())['models'])} models, "
        f"LSTM/GRU/RNN, 1-3 layers)", worst)
    shared = shared_dir()
    if shared is None:
        print("(third-party rows skipped: no ../shared or $NBRNN_SHARED)", file=sys.stderr)
        return
    for name, path in [(f"RTNeural Keras {n}", f"keras/rtneural_{n}.json") for n in
                       ("lstm", "gru", "lstm_1d", "gru_1d", "dense")] + [
            (f"RTNeural torch {n}", f"torch-json/rtneural_{n}_torch.json") for n in ("lstm", "gru")]:
        model = nbrnn.load(shared / "models" / path)
        stem = path.split("/")[1].replace("rtneural_", "").replace(".json", "")
        x = np.loadtxt(shared / f"reference/rtneural/{stem}_x_python.csv")
        y = np.loadtxt(shared / f"reference/rtneural/{stem}_y_python.csv")
        row(name, {d: float(np.abs(model.process(x, model.trained_rate, method="naive", dtype=d) - y).max())
                   for d in ("float64", "float32")})
    for folder, model_path, rate in (("rtneural-sr", None, 48000), ("article", "article/metal_face_lstm28_96k.json",
                                                                   96000)):
        worst = 0.0
        files = sorted((shared / "reference" / folder).glob("*.csv.gz"))
        for path in files:
            head = gzip.open(path, "rt").readline()
            y = np.loadtxt(path)
            fs = float(re.search(r" fs=(\d+)", head).group(1))
            if model_path is None:
                cell = "lstm_1d" if "lstm" in path.name else "gru_1d"
                model = nbrnn.load(shared / f"models/keras/rtneural_{cell}.json", trained_rate=rate)
                mode = re.search(r"mode=(\w+)", head).group(1)
                method = {"LinInterp": "linear", "NoInterp": "integer", "None": "naive"}[mode]
                x = np.sin(600 * np.arange(len(y)) / fs)
            else:
                model = nbrnn.load(shared / "models" / model_path, trained_rate=rate)
                method = "naive" if "uncorrected" in path.name else "linear"
                x = np.sin(2 * np.pi * 100 * np.arange(len(y)) / fs)
            out = model.process(x, fs, method=method, output="delayed")
            worst = max(worst, float(np.abs(out - y).max()))
        row(f"{folder} ({len(files)} files, delayed-state convention)", {"float64": worst})


if __name__ == "__main__":
    main()
