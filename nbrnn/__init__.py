"""nbrnn: run recurrent audio-effect models trained elsewhere, per sample, at any sample rate.

>>> import nbrnn
>>> model = nbrnn.load("amp.json")                 # AGM / Keras / NAM / PyTorch / npz / safetensors
>>> y = model.process(x, 48000, method="lagrange", order=3)
"""

from .adapt import METHODS, Plan, make_plan
from .errors import (ArgumentError, AudioError, ModelFormatError, ModelShapeError, NbrnnError, OutputError,
                     UnsafeModelError, UnstableError)
from .network import Dense, Network, Recurrent

__version__ = "0.1.0"

#: Names imported from ``nbrnn.model`` on first use: that module imports Numba (0.3-0.9 s), which the
#: command line's help and its argument checks do without.
_FROM_MODEL = ("Model", "load", "load_default")
#: Modules reachable as ``nbrnn.<name>`` without importing them first (imported on first use).
_MODULES = ("model", "engine", "reference", "stability", "formats", "render", "minimax", "circuit")


def __getattr__(name):
    if name in _FROM_MODEL:
        from . import model

        value = getattr(model, name)
        globals()[name] = value
        return value
    if name in _MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nbrnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_FROM_MODEL) | set(_MODULES))

__all__ = [
    "load", "load_default", "Model", "Network", "Dense", "Recurrent", "make_plan", "Plan", "METHODS", "NbrnnError",
    "ModelFormatError", "ModelShapeError", "UnsafeModelError", "ArgumentError", "AudioError", "UnstableError",
    "OutputError", "__version__",
]
