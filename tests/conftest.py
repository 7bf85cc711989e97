"""Shared fixtures: where the third-party conformance data lives, and the project's own goldens."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbrnn.figures.sources import shared_dir

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"


@pytest.fixture(scope="session")
def shared():
    path = shared_dir()
    if path is None:
        pytest.skip("third-party conformance data not found (set NBRNN_SHARED or place shared/ beside the repo)")
    return path


def golden_manifest():
    return json.loads((GOLDEN / "manifest.json").read_text())["models"]


def run_golden(model, x, dtype, **kw):
    """A golden's input (audio in column 0, conditioning after) through ``model`` at its trained rate, unadapted."""
    cond = [x[:, i] for i in range(1, x.shape[1])] or None
    return model.process(x[:, 0], model.trained_rate, method="naive", cond=cond, dtype=dtype, **kw)


def run_fresh(code, **env):
    """Run ``code`` in a new Python process (the project and tests/ importable, ``env`` added to the
    environment); assert that it succeeded and return what it printed."""
    prelude = "import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n" % (str(ROOT), str(ROOT / "tests"))
    res = subprocess.run([sys.executable, "-c", prelude + code], env=dict(os.environ, **env), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout
