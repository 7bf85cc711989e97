"""nbrnn: run recurrent audio-effect models trained elsewhere, per sample, at any sample rate.

>>> import nbrnn
>>> model = nbrnn.load("amp.json")                 # AGM / Keras / NAM / PyTorch / npz / safetensors
>>> y = model.process(x, 48000, method="lagrange", order=3)
"""

from .adapt import METHODS, Plan, make_plan
from .errors import (ArgumentError, AudioError, ModelFormatError, ModelShapeError, NbrnnError, OutputError,
                     UnsafeModelError, UnstableError)
from .model import Model, load, load_default
from .network import Dense, Network, Recurrent

__version__ = "0.1.0"

__all__ = [
    "load", "load_default", "Model", "Network", "Dense", "Recurrent", "make_plan", "Plan", "METHODS", "NbrnnError",
    "ModelFormatError", "ModelShapeError", "UnsafeModelError", "ArgumentError", "AudioError", "UnstableError",
    "OutputError", "__version__",
]
