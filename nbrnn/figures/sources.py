"""Where the figures' inputs come from: the shared data folder, model sets and audio.

The third-party data (models trained elsewhere, the papers' audio and
published numbers) is never part of the repository.  It is found at
``$NBRNN_SHARED`` or, when that variable is unset, at ``../shared`` beside the
repository root (of the checkout the package runs from, else of the current
directory: a package installed into a virtual environment and run from its
checkout); figures that need it are skipped when it is absent.

Models and inputs are described by small frozen specs (:class:`ModelSpec`,
:class:`InputSpec`) so that a parallel task can be a pure function of its
parameters: each worker process loads and caches what a spec names.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, shown

REPO_ROOT = Path(__file__).resolve().parents[2]

#: File-name stems of the DAFx-24 model set (``<shared>/models/proteus``) and the labels the paper's
#: per-model table (``reference/dafx24/dafx24_audio_snr_db.csv``) uses for them.
PROTEUS_LABELS = {
    "6505Plus_Red_DirectOut": "6505Plus",
    "BlackstarHT40_AmpClean": "HT40_Clean",
    "BlackstarHT40_AmpHighGain": "HT40_HighG",
    "BossMT2_PedalHighGain": "BossMT2",
    "DumbleKit_HighG_DirectOut": "Dumble_HighG",
    "DumbleKit_LowG_DirectOut": "Dumble_LowG",
    "GoatPedal_HighGain": "GoatPedal",
    "LittleBigMuff_HighGainPedal": "LittleBigMuff",
    "MatchlessSC30_Ch1_DirectOut": "MatchlessSC30",
    "MesaIICplus_Drive8_5EQoff": "MesaIICplus",
    "MesaMiniRec_HighGain_DirectOut": "MesaMiniRec",
    "PlexiBreed_JTM_pedal": "PlexiBreed_JTM",
    "PrincetonAmp_Clean": "PrincetonAmp",
    "ProcoRatPedal_HighGain": "ProcoRat",
    "RockmanAcoustic_Pedal": "RockmanAc.",
    "RockmanXPR_HighGain": "RockmanXPR",
    "Splawn_OD_FractalFM3_HighGain": "Splawn",
    "XComp_Pedal": "XComp",
}

#: The article's model and the rate it was trained at (the file does not record it).
ARTICLE_MODEL = ("models", "article", "metal_face_lstm28_96k.json")
ARTICLE_RATE = 96000.0

#: Model file suffixes a model folder is scanned for.
MODEL_SUFFIXES = (".json", ".nam", ".pt", ".pth", ".ckpt", ".npz", ".safetensors")


def shared_dir() -> Path | None:
    """The shared data folder, or None when it is absent.

    ``$NBRNN_SHARED`` when set (an empty or missing folder counts as absent),
    else ``../shared`` beside the repository root: the checkout the package runs from (an editable install),
    else the current directory (an installed package run from its checkout).
    """
    env = os.environ.get("NBRNN_SHARED")
    paths = [Path(env)] if env else [REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"]
    return next((path for path in paths if (path / "models").is_dir()), None)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to load in a worker: a file (or None for the embedded model) and an optional trained rate.

    Attributes
    ----------
    name : str
        Short label used in tables and plots.
    path : str or None
        Model file; None is the embedded model (:func:`nbrnn.load_default`).
    trained_rate : float or None
        Overrides the rate recorded in the file (or the format's default).
    """

    name: str
    path: str | None = None
    trained_rate: float | None = None


@functools.lru_cache(maxsize=8)
def load_model(spec: ModelSpec):
    """Load (once per process) the model a spec names."""
    import nbrnn

    if spec.path is None:
        return nbrnn.load_default()
    return nbrnn.load(spec.path, trained_rate=spec.trained_rate)


def embedded_model() -> ModelSpec:
    """The embedded model (a small LSTM trained on the diode clipper)."""
    return ModelSpec("embedded")


def models_in(folder) -> list[ModelSpec]:
    """Every model file in ``folder`` (sorted by name), or the one model file ``folder`` names.

    Models are labelled with the DAFx-24 labels where known, else with their file name's stem.
    """
    folder = Path(folder)
    if folder.is_file():
        return [_one_in_one_out(ModelSpec(PROTEUS_LABELS.get(folder.stem, folder.stem), str(folder)))]
    if not folder.is_dir():
        raise ArgumentError(f"Argument 'models' must be a model file or a folder of model files, not "
                            f"{str(folder)!r} (no such file or folder)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    if not files:
        raise ArgumentError(f"Argument 'models' names {str(folder)!r}, which holds no model files "
                            f"({', '.join(MODEL_SUFFIXES)})")
    return [_one_in_one_out(ModelSpec(PROTEUS_LABELS.get(p.stem, p.stem), str(p))) for p in files]


def _one_in_one_out(spec: ModelSpec) -> ModelSpec:
    """``spec`` if its model maps one audio input to one output; the figures have no knobs to set and plot one
    output (checked before any run starts, not in a worker midway)."""
    model = load_model(spec)
    if model.conditioning_names or model.network.output_size != 1:
        what = (f"conditioning input(s) {', '.join(model.conditioning_names)}" if model.conditioning_names
                else f"{model.network.output_size} outputs")
        raise ArgumentError(f"Argument 'models' names '{spec.path}', which has {what}; the figures run models "
                            f"with one audio input and one output")
    return spec


def proteus_models(shared: Path) -> list[ModelSpec]:
    """The 18 models of the DAFx-24 set."""
    return models_in(shared / "models" / "proteus")


def is_paper_set(models) -> bool:
    """Whether ``models`` are the papers' 18 (DAFx-24 labels): the published figures are of that set only, and
    the files of another set carry its name."""
    return sorted(spec.name for spec in models) == sorted(PROTEUS_LABELS.values())


def article_model(shared: Path) -> ModelSpec:
    return ModelSpec("metal_face_lstm28_96k", str(shared.joinpath(*ARTICLE_MODEL)), ARTICLE_RATE)


def model_set_name(models_dir, shared: Path | None) -> str:
    """A file-name-safe tag for a model set: the folder's name, ``proteus`` or ``embedded``."""
    if models_dir is not None:
        path = Path(models_dir).resolve()
        name = path.stem if path.is_file() else path.name
    elif shared is not None:
        name = "proteus"
    else:
        name = "embedded"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "models"


# -- audio -------------------------------------------------------------------------------------------------------

def riff_paths(shared: Path) -> list[str]:
    return [str(p) for p in sorted((shared / "audio" / "riffs").glob("*.wav"))]


def clip_paths(shared: Path) -> list[str]:
    return [str(p) for p in sorted((shared / "audio" / "clips").glob("*.wav"))]


@functools.lru_cache(maxsize=16)
def read_wav(path: str, int16_scale: bool = False) -> tuple[np.ndarray, int]:
    """Mono float64 samples and rate of a wav file.

    ``int16_scale`` reads 16-bit PCM as integers divided by 32767, as the
    ICASSP-25 authors did (soundfile's own float conversion divides by 32768).
    """
    import soundfile

    if int16_scale:
        data, rate = soundfile.read(path, dtype="int16", always_2d=True)
        x = data[:, 0].astype(np.float64) / 32767.0
    else:
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
        x = data[:, 0].copy()
    x.setflags(write=False)
    return x, int(rate)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """A deterministic input signal at a model's trained rate, padded for exact resampling.

    Attributes
    ----------
    kind : {'wav', 'wav16', 'test_signal'}
        A wav file (``wav16``: 16-bit PCM scaled by 1/32767), ideally
        resampled to ``rate`` if it has another rate, or :func:`nbrnn.circuit.test_signal`.
    source : str
        The wav path (ignored for ``test_signal``).
    rate : float
        The rate the signal is prepared at (the model's trained rate).
    start, seconds : float
        Excerpt: from ``start`` seconds, ``seconds`` long (None = to the end).
    lead, tail : float
        Seconds of silence added before and after.  The model settles on the
        lead silence, and the tail keeps the circular wrap of FFT resampling
        away from the signal.
    multiple : int
        The padded length is rounded up to a multiple of this (so that every
        run rate in use maps it to a whole number of samples).
    bandlimit : float
        Keep only frequencies below ``bandlimit`` x Nyquist (1.0 = unchanged);
        a sweep going below the trained rate band-limits every run alike.
    """

    kind: str
    source: str = ""
    rate: float = 44100.0
    start: float = 0.0
    seconds: float | None = None
    lead: float = 0.0
    tail: float = 0.0
    multiple: int = 1
    bandlimit: float = 1.0


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A padded input at the trained rate and where the signal itself sits in it."""

    x: np.ndarray
    begin: int
    end: int


@functools.lru_cache(maxsize=32)
def prepare_input(spec: InputSpec) -> Prepared:
    """Build the signal an :class:`InputSpec` describes (cached per process)."""
    if spec.kind in ("wav", "wav16"):
        x, rate = read_wav(spec.source, int16_scale=spec.kind == "wav16")
        first = int(round(spec.start * rate))
        last = x.size if spec.seconds is None else min(x.size, first + int(round(spec.seconds * rate)))
        signal = np.array(x[first:last], dtype=np.float64)
        if rate != spec.rate:
            # a model trained at another rate hears the same excerpt, ideally resampled to its rate
            from .evaluation import ideal_resample

            signal = ideal_resample(signal, int(round(signal.size * spec.rate / rate)))
    elif spec.kind == "test_signal":
        from ..circuit import test_signal

        total = spec.start + (2.0 if spec.seconds is None else spec.seconds)
        full = test_signal(spec.rate, total)
        signal = full[int(round(spec.start * spec.rate)):].copy()
    else:
        raise ArgumentError(f"input kind must be 'wav', 'wav16' or 'test_signal', not {shown(spec.kind)}")
    if signal.size == 0:
        raise ArgumentError(f"the input excerpt {spec} is empty")
    if spec.bandlimit < 1.0:
        spectrum = np.fft.rfft(signal)
        keep = int(math.floor(spec.bandlimit * (signal.size // 2)))
        spectrum[keep + 1:] = 0.0
        signal = np.fft.irfft(spectrum, signal.size)
    lead = _round_up(int(round(spec.lead * spec.rate)), spec.multiple)
    tail = int(round(spec.tail * spec.rate))
    total = _round_up(lead + signal.size + tail, spec.multiple)
    x = np.zeros(total)
    x[lead:lead + signal.size] = signal
    x.setflags(write=False)
    return Prepared(x, lead, lead + signal.size)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def common_multiple(trained_rate: float, run_rates) -> int:
    """Smallest length unit that every ``run_rate / trained_rate`` maps to whole samples."""
    unit = 1
    for rate in run_rates:
        ratio = Fraction(rate) / Fraction(trained_rate)
        unit = unit * ratio.denominator // math.gcd(unit, ratio.denominator)
    if unit > 1 << 20:
        raise ArgumentError(f"the run rates {list(run_rates)} against {trained_rate:g} Hz need signals that are a "
                            f"multiple of {unit} samples long; use rates on a coarser grid (e.g. whole 100 Hz)")
    return unit
