"""Shared fixtures: where the third-party conformance data lives, and the project's own goldens."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"


def shared_dir():
    """``$NBRNN_SHARED`` or ``../shared`` beside the repository, or None."""
    env = os.environ.get("NBRNN_SHARED")
    path = Path(env) if env else ROOT.parent / "shared"
    return path if (path / "models").is_dir() else None


@pytest.fixture(scope="session")
def shared():
    path = shared_dir()
    if path is None:
        pytest.skip("third-party conformance data not found (set NBRNN_SHARED or place shared/ beside the repo)")
    return path


def golden_manifest():
    return json.loads((GOLDEN / "manifest.json").read_text())["models"]
