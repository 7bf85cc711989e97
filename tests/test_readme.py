"""The README's examples run as written: a guard against the documentation drifting from the API and the CLI.

The examples name placeholder files (``amp.json``, ``knob.json``, ``in.wav``); here they are the project's own
test models (an LSTM of 8 units, and a 2-layer GRU with the two knobs ``cond1``, ``cond2``, both at 44.1 kHz) and
a short sine at 40 kHz, so that the R < 1 examples are below the trained rate as the README says.
"""

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import nbrnn

from conftest import GOLDEN, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


@pytest.fixture
def placeholders(tmp_path, monkeypatch):
    shutil.copy(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json", tmp_path / "amp.json")
    shutil.copy(GOLDEN / "agm_gru_l2_i3_h6_skip0.json", tmp_path / "knob.json")
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 40000), 40000)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_python_examples_run(placeholders):
    statements = [stmt for block in _blocks("python") for stmt in ast.parse(block).body]
    assert len(statements) >= 20, "the README's Python examples were not found"
    amp, knob = nbrnn.load("amp.json"), nbrnn.load("knob.json")
    ns = {"np": np, "x": 0.3 * np.sin(2 * np.pi * 220 * np.arange(20000) / 48000), "fs": 48000}
    for stmt in statements:
        text = ast.unparse(stmt)
        if "cond=" in text:  # the examples list alternatives; the conditioned one is for a model with knobs
            ns["model"] = knob
        try:
            exec(compile(ast.Module([stmt], []), "README.md", "exec"), ns)
        except Exception as exc:  # noqa: BLE001 - report which example broke
            pytest.fail(f"README example {text!r} raised {type(exc).__name__}: {exc}")
        if "cond=" in text:
            ns["model"] = amp
    assert isinstance(ns["y"], np.ndarray) and np.all(np.isfinite(ns["y"]))


def test_cli_examples_run(placeholders):
    commands = [shlex.split(line.split("#")[0]) for block in _blocks("bash") for line in block.splitlines()
                if line.startswith("nbrnn ")]
    assert len(commands) >= 5, "the README's command-line examples were not found"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ran = 0
    for argv in commands:
        if argv[1] in ("demo", "figures"):  # minutes each; tests/test_demo.py and tests/test_figures.py run them
            continue
        # in order, in one folder, as a reader runs them: an example that writes another's output fails
        res = subprocess.run([sys.executable, "-m", "nbrnn", *argv[1:]], capture_output=True, text=True, env=env,
                             timeout=300)
        assert res.returncode == 0, f"README example {' '.join(argv)!r} failed: {res.stderr}"
        ran += 1
    assert ran >= 5


def test_render_default_subtypes_are_the_documented_ones():
    """The README said 'writes 32-bit float by default' for every format; FLAC, Ogg and MP3 have no float."""
    from nbrnn.render import _output_format

    floats = re.search(r"32-bit float by default where the format has it \(([^)]*)\)", README)
    assert floats, "the README does not say where nbrnn render writes float"
    for ext in ("wav", "aiff", "caf", "flac", "ogg", "opus", "mp3"):
        subtype = _output_format(f"out.{ext}", None)[1]
        assert f"`.{ext}`" in floats.group(1) if subtype == "FLOAT" else f"`.{ext}`: {subtype}" in README, ext
