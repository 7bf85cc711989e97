"""Shared fixtures: where the third-party conformance data lives, and the project's own goldens."""

import json
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
