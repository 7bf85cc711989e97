"""The public face: :func:`load` and the stateful :class:`Model`."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ._atomic import check_flag
from .adapt import Plan, check_rate, is_choice, is_integer, make_plan, real_float
from .engine import ACTIVATION_PATHS, Stream, check_dtype, pack
from .errors import ArgumentError, AudioError, names_text, plain, shown
from .network import Network, beyond_range, is_real, range_text, real_array

#: Options of :func:`nbrnn.adapt.make_plan` that ``process`` passes through.
PLAN_OPTIONS = ("order", "placement", "kernel", "bandwidth", "output", "inner", "inner_order", "factor", "resampler")


#: Most channels one stream (``Model.stream``, ``Model.process``) runs.
MAX_CHANNELS = 4096


def check_warmup(value) -> float:
    """Seconds of warm-up: a real number from 0 to 60."""
    if not is_real(value):
        raise ArgumentError(f"Argument 'warmup' must be a number of seconds from 0 to 60, not {shown(value)}")
    if not 0 <= value <= 60:
        raise ArgumentError(f"Argument 'warmup' must be between 0 and 60 seconds, not {real_float(value)!r}")
    return float(value)


def check_activations(value) -> str:
    if not is_choice(value, ACTIVATION_PATHS):
        raise ArgumentError(f"Argument 'activations' must be one of {', '.join(ACTIVATION_PATHS)}, not {shown(value)}")
    return value


def no_conditioning(cond) -> bool:
    """Whether ``cond`` gives no conditioning values: None, or an empty dict, list or tuple."""
    return cond is None or (isinstance(cond, (Mapping, list, tuple)) and len(cond) == 0)


def check_audio(x, name: str = "x") -> np.ndarray:
    """Float audio of shape (n,) or (n, channels), every sample finite."""
    if isinstance(x, np.ma.MaskedArray):
        raise AudioError(f"Argument '{name}' is a masked array; every sample is processed, masked or not: "
                         f"pass {name}.filled(0.0) (or another fill value)")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError):
            raise AudioError(f"Argument '{name}' must be an array of float samples, not {type(x).__name__}") from None
    if x.dtype.kind != "f":
        hint = " (integer PCM: divide by 32768 for int16, 2**31 for int32)" if x.dtype.kind in "iu" else ""
        raise AudioError(f"Argument '{name}' must hold float samples, not {x.dtype}{hint}")
    if x.ndim not in (1, 2):
        raise AudioError(f"Argument '{name}' must have shape (samples,) or (samples, channels), not {x.shape}")
    if x.ndim == 2 and x.shape[1] == 0:
        raise AudioError(f"Argument '{name}' has shape {x.shape}: no channels")
    if x.ndim == 2 and x.shape[1] > MAX_CHANNELS:
        hint = f"; audio is (samples, channels): for {x.shape[0]} channel(s) pass {name}.T" if (
            x.shape[0] <= MAX_CHANNELS) else ""
        raise AudioError(f"Argument '{name}' has shape {x.shape}: {x.shape[1]} channels, more than "
                         f"{MAX_CHANNELS}{hint}")
    finite = np.isfinite(x)
    if not finite.all():
        first = np.argwhere(~finite)[0]
        raise AudioError(f"Argument '{name}' holds {x.size - int(finite.sum())} NaN/Inf sample(s); "
                         f"the first at index {tuple(int(i) for i in first)}")
    return x


def check_options(options: dict) -> None:
    """Refuse keyword arguments that are no method option (:data:`PLAN_OPTIONS`)."""
    unknown = set(options) - set(PLAN_OPTIONS)
    if unknown:
        raise ArgumentError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                            f"the method options are {', '.join(PLAN_OPTIONS)}")


class Model:
    """A loaded model that processes audio at any sample rate.

    Parameters
    ----------
    network : Network
        The canonical description (from :func:`load` or built by hand).
    warmup : float
        Seconds of silence processed after every reset (NAM files loaded with
        ``prewarm=True`` use 0.5, as the NAM runtime does).

    Notes
    -----
    ``process`` keeps the recurrent state between calls when ``reset=False``,
    so a long signal can be processed block by block; the result equals one
    call on the whole signal, bit for bit.
    """

    def __init__(self, network: Network, *, warmup: float = 0.0):
        if not isinstance(network, Network):
            raise ArgumentError(f"Argument 'network' must be an nbrnn Network, not {type(network).__name__}")
        self._network = network
        self._warmup = check_warmup(warmup)
        self._packed = {}
        self._stream = None
        self._stream_key = None

    # -- description -------------------------------------------------------------------------------------------
    # Read-only: the packed weights and a continuing stream are built from them (``Model(network, warmup=...)``
    # makes another model).
    @property
    def network(self) -> Network:
        return self._network

    @property
    def warmup(self) -> float:
        """Seconds of silence run after every reset: 0, NAM's prewarm (``load(..., prewarm=True)``), what
        ``Model(network, warmup=...)`` was given, or what a file written by :meth:`save` stored."""
        return self._warmup

    @property
    def trained_rate(self) -> float:
        return self.network.trained_rate

    @property
    def input_names(self) -> tuple:
        return self.network.input_names

    @property
    def conditioning_names(self) -> tuple:
        return self.network.input_names[1:]

    def __repr__(self) -> str:
        layers = ", ".join(layer.describe() for layer in self.network.layers)
        return (f"<nbrnn.Model {self.network.format} [{layers}] skip={self.network.skip} "
                f"trained at {self.trained_rate:g} Hz ({self.network.rate_source})>")

    def info(self) -> str:
        """What was loaded: format, layers, sizes, inputs, skip, trained rate and its source, parameters."""
        text = self.network.describe()
        if self.warmup:
            text += f"\nwarm-up:      {self.warmup:g} s of silence after every reset"
        return text

    def save(self, path, *, overwrite: bool = False) -> None:
        """Save the model as ``.npz`` or ``.safetensors`` (nbrnn's container layout, float64 weights), with its
        warm-up, which :func:`load` restores."""
        from .formats.containers import export

        if not isinstance(path, (str, bytes, os.PathLike)):
            raise ArgumentError(f"Argument 'path' must be a file path, not {type(path).__name__}")
        export(self.network, os.fsdecode(path), overwrite=check_flag(overwrite, "overwrite"), warmup=self.warmup)

    # -- processing --------------------------------------------------------------------------------------------
    def plan(self, sample_rate: float, method: str = "lagrange", **options) -> Plan:
        """The adaptation plan ``process`` would use (see :func:`nbrnn.adapt.make_plan`)."""
        check_options(options)
        return make_plan(self.trained_rate, check_rate(sample_rate), method, **options)

    def _packed_for(self, dtype):
        dt = check_dtype(dtype)
        if dt.name not in self._packed:
            self._packed[dt.name] = pack(self.network, dt)
        return self._packed[dt.name]

    def stream(self, sample_rate: float, *, channels: int = 1, method: str = "lagrange", dtype="float64",
               activations: str = "accurate", **options) -> Stream:
        """A fresh :class:`~nbrnn.engine.Stream` (feed/finish block processing) for this model.

        Inputs to ``Stream.feed`` are arrays of shape (channels, n, inputs) in the
        stream's dtype; see :meth:`inputs` to build them from audio and conditioning.
        """
        plan = self.plan(sample_rate, method, **options)
        if not is_integer(channels) or not 1 <= channels <= MAX_CHANNELS:
            raise ArgumentError(
                f"Argument 'channels' must be an integer from 1 to {MAX_CHANNELS}, not {shown(channels)}")
        return Stream(self._packed_for(dtype), plan, int(channels), float(sample_rate), self.trained_rate,
                      context=f"{os.path.basename(self.network.source) or 'model'} at {float(sample_rate):g} Hz",
                      activations=check_activations(activations), warmup=self.warmup)

    def inputs(self, x: np.ndarray, cond=None, dtype="float64") -> np.ndarray:
        """Stack audio (n,) / (n, channels) and conditioning into the kernel layout (channels, n, inputs)."""
        dt = check_dtype(dtype)
        x = check_audio(x)
        where = beyond_range(x, dt)
        if where is not None:
            remedy = "use dtype='float64'" if dt != np.float64 else "scale it down (float64 is the widest dtype)"
            raise AudioError(f"Argument 'x' holds values beyond {range_text(dt)}, "
                             f"the first {x[where]:.6g} at index {where}; {remedy}")
        audio = x[:, None] if x.ndim == 1 else x
        n, channels = audio.shape
        inp = np.empty((channels, n, self.network.input_size), dtype=dt)
        inp[:, :, 0] = audio.T
        names = self.conditioning_names
        if not names:
            if not no_conditioning(cond):
                raise ArgumentError(f"Argument 'cond' was given but the model has no conditioning inputs "
                                    f"(its only input is {shown(self.input_names[0])})")
            return inp
        values = self._cond_values(cond)
        for i, value in enumerate(values, start=1):
            column = self._cond_column(value, names[i - 1], n, channels)
            if beyond_range(column, dt) is not None:
                raise ArgumentError(f"conditioning value for {names[i - 1]!r} holds values beyond {range_text(dt)}; "
                                    f"use dtype='float64'")
            inp[:, :, i] = column
        return inp

    def _cond_values(self, cond) -> list:
        names = self.conditioning_names
        if cond is None:
            raise ArgumentError(
                f"the model has {len(names)} conditioning input(s) ({names_text(names)}); pass Argument 'cond', "
                f"e.g. cond={{{shown(names[0])}: 0.5}} or a list of {len(names)} value(s) in the model's range "
                f"(often 0..1)")
        if isinstance(cond, Mapping):
            values = [None] * len(names)
            keys = {}
            for key, value in cond.items():
                index = self._cond_index(key)
                if index in keys:
                    raise ArgumentError(f"Argument 'cond' gives {shown(names[index])} twice, as {shown(keys[index])} "
                                        f"and as {shown(key)}; give each conditioning input one value")
                keys[index] = key
                values[index] = value
            missing = [names[i] for i, v in enumerate(values) if v is None]
            if missing:
                raise ArgumentError(f"Argument 'cond' misses a value for {names_text(missing)} "
                                    f"(the model's conditioning inputs are {names_text(names)})")
            return values
        if isinstance(cond, (set, frozenset)):
            raise ArgumentError(f"Argument 'cond' is a set, whose order is arbitrary: give a dict by name "
                                f"({names_text(names)}) or a list in that order")
        if np.isscalar(cond) or (isinstance(cond, np.ndarray) and (cond.ndim == 0 or (
                cond.ndim >= 1 and len(names) == 1 and cond.size != 1))):
            cond = [cond]
        try:
            cond = list(cond)
        except TypeError:
            raise ArgumentError(f"Argument 'cond' must be a dict of values by name or index, a sequence of "
                                f"{len(names)} value(s) or a number, not {type(cond).__name__}") from None
        if len(cond) != len(names):
            raise ArgumentError(f"Argument 'cond' has {len(cond)} value(s) but the model has {len(names)} "
                                f"conditioning input(s): {names_text(names)}")
        return cond

    def _cond_index(self, key) -> int:
        names = self.conditioning_names
        index = key
        if isinstance(key, str):
            if key in names:
                return names.index(key)
            if not (key.isascii() and key.isdigit()):  # '²' is a digit that int() refuses
                raise ArgumentError(f"Argument 'cond' names {shown(key)}, which is not one of {names_text(names)}")
            index = int(key) if len(key) <= 18 else 0  # no 4300-digit int(): out of range either way
        if is_integer(index) and 1 <= index <= len(names):
            return int(index) - 1
        raise ArgumentError(f"Argument 'cond' key {shown(key)} must be a name ({names_text(names)}) "
                            f"or an input index from 1 to {len(names)}")

    @staticmethod
    def _cond_column(value, name: str, n: int, channels: int) -> np.ndarray:
        if isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"conditioning value for {shown(name)} is a masked array; every sample is used, "
                                f"masked or not: pass .filled(...) with the value the masked samples should have")
        arr, what = real_array(value)
        if arr is None:
            raise ArgumentError(f"conditioning value for {shown(name)} must be a real number or an array of them, "
                                f"not {what}")
        if not np.all(np.isfinite(arr)):
            raise ArgumentError(f"conditioning value for {shown(name)} holds NaN/Inf (or a number beyond "
                                f"float64's range): {shown(value)}")
        if arr.ndim == 0:
            return np.full((channels, n), float(arr))
        if arr.ndim == 1 and arr.shape[0] == n:
            return np.broadcast_to(arr, (channels, n))
        if arr.ndim == 2 and arr.shape == (n, channels):
            return arr.T
        raise ArgumentError(f"conditioning signal for {shown(name)} must be a number, shape ({n},) or "
                            f"({n}, {channels}) to match the audio, not shape {arr.shape}")

    def reset(self) -> None:
        """Forget the running state: the next ``process`` starts from the model's initial state."""
        self._stream = None
        self._stream_key = None

    def process(self, x, sample_rate: float, *, method: str = "lagrange", reset: bool = True, cond=None,
                dtype="float64", activations: str = "accurate", warmup: float | None = None,
                **options) -> np.ndarray:
        """Run audio through the model at ``sample_rate``, adapting it from its trained rate.

        Parameters
        ----------
        x : ndarray, shape (n,) or (n, channels)
            Float audio; channels are independent streams.
        sample_rate : float
            The rate of ``x`` in Hz.
        method : str
            How the model is adapted (:data:`nbrnn.adapt.METHODS`); default cubic Lagrange.
        reset : bool
            Start from the initial state (True) or continue the previous call's
            state (False: the same rate, method, dtype, activations and channel count).
        cond : dict, sequence or None
            Conditioning values (knobs) by name or 1-based index, each knob once:
            numbers, or per-sample arrays of length n.
        dtype : {'float64', 'float32'}
            Float type of the whole run.
        activations : {'accurate', 'fast'}
            ``'accurate'``: tanh / sigmoid to within a few ulp (matches PyTorch to float
            precision); ``'fast'``: branch-free approximations (error below float32
            resolution, not for float64 reference work).
        warmup : float, optional
            Seconds of silence run through the model after the reset, before ``x``, with the knobs
            at their first sample's values (for an empty ``x``: before the next call's samples); it
            settles the state; default: the model's own (:attr:`warmup`).  Rounded
            to whole samples at the model's rate: less than half a sample is no warm-up.
        **options
            Method options: order, placement, kernel, bandwidth, output
            ('fresh' or 'delayed'), inner, inner_order, factor, resampler.

        Returns
        -------
        ndarray
            The output, shape (n,) or (n, channels) (a trailing axis for models with
            several outputs), in ``dtype``.
        """
        rate = check_rate(sample_rate)
        reset = check_flag(reset, "reset")
        seconds = None if warmup is None else check_warmup(warmup)
        if reset:
            self.reset()  # a call that fails below leaves nothing for reset=False to continue
        inp = self.inputs(x, cond, dtype)
        channels = inp.shape[0]
        plan = self.plan(rate, method, **options)
        key = (rate, plan.key(), check_dtype(dtype).name, channels, check_activations(activations))
        if reset or self._stream is None:
            if not reset and self._stream is None:
                reset = True
            self._stream = Stream(self._packed_for(dtype), plan, channels, rate, self.trained_rate,
                                  context=f"{os.path.basename(self.network.source) or 'model'} at {rate:g} Hz",
                                  activations=activations, warmup=self.warmup if seconds is None else seconds)
            self._stream_key = key
        elif key != self._stream_key:
            names = ("sample rate", "method or its options", "dtype", "channel count", "activations")
            changed = [name for name, old, new in zip(names, self._stream_key, key) if old != new]
            if "sample rate" in changed:  # the plan (its taps) follows the rate
                changed = [name for name in changed if name != names[1]]
            raise ArgumentError(
                f"reset=False continues the previous call's stream, but the {' and '.join(changed)} changed; pass "
                f"reset=True (or call model.reset()) to start a new stream")
        elif seconds is not None:
            raise ArgumentError(f"Argument 'warmup' ({seconds:g} s) applies after a reset; with reset=False the "
                                f"call continues the previous call's stream, whose warm-up is done")
        stream = self._stream
        if not stream.streams_exactly:
            if not reset:
                raise ArgumentError(
                    f"method '{plan.method}' resamples whole signals and cannot continue a stream with reset=False; "
                    f"use Model.stream(...).feed()/finish() or a delay-line method")
            out = np.concatenate([stream.feed(inp), stream.finish()], axis=1)
        else:
            out = stream.feed(inp)
        result = out.transpose(1, 0, 2)  # (n, channels, outputs)
        if self.network.output_size == 1:
            result = result[:, :, 0]
        if np.ndim(x) == 1:
            result = result[:, 0]
        return np.ascontiguousarray(result)


def load(path, *, trained_rate: float | None = None, skip: int | None = None, format: str | None = None,
         prewarm: bool = False, rnn_nonlinearity: str | None = None) -> Model:
    """Load a model file trained elsewhere.

    Parameters
    ----------
    path : str or path-like
        AGM / Proteus JSON, RTNeural Keras JSON (AIDA-X), PyTorch state_dict JSON,
        NAM ``.nam`` (LSTM), PyTorch checkpoint (``.pt``/``.pth``/``.ckpt``, read
        without torch and without executing anything), ``.npz`` or ``.safetensors``.
        The format is recognised from the content.
    trained_rate : float, optional
        The rate the model was trained at, overriding the file (or the format's default).
    skip : int, optional
        Number of leading input channels added to the output (for formats that do
        not record it, such as raw state_dicts; overrides the file otherwise).
    format : str, optional
        Force a format (see ``nbrnn.formats.FORMAT_NAMES``).
    prewarm : bool
        NAM only: process 0.5 s of silence after every reset, as the NAM runtime does.  Without it the
        model's warm-up is 0, or what :meth:`Model.save` stored with it.
    rnn_nonlinearity : {'tanh', 'relu'}, optional
        For plain ``nn.RNN`` layers in files that do not record it (PyTorch state_dicts and checkpoints,
        PyTorch-named ``.npz`` / ``.safetensors`` without that metadata); default tanh.  Giving another
        than a file records is an error.

    Returns
    -------
    Model
    """
    from .formats import read_network

    prewarm = check_flag(prewarm, "prewarm")
    if rnn_nonlinearity is not None and not is_choice(rnn_nonlinearity, ("tanh", "relu")):
        raise ArgumentError(f"Argument 'rnn_nonlinearity' must be 'tanh' or 'relu', not {shown(rnn_nonlinearity)}")
    if skip is not None and (not is_integer(skip) or skip < 0):
        raise ArgumentError(f"Argument 'skip' must be a non-negative integer, not {shown(skip)}")
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ArgumentError(f"Argument 'path' must be a file path, not {type(path).__name__}")
    network = read_network(path, format=format, skip=skip, rnn_nonlinearity=rnn_nonlinearity)
    if trained_rate is not None:
        network = network.with_trained_rate(check_rate(trained_rate, "trained_rate"))
    warmup = float(network.metadata.get("warmup_seconds", 0.0))  # a model saved by Model.save
    if prewarm:
        if "prewarm_seconds" not in network.metadata:
            raise ArgumentError(f"Argument 'prewarm' applies to NAM files; '{plain(network.source)}' is "
                                f"{network.format}")
        warmup = float(network.metadata["prewarm_seconds"])
    return Model(network, warmup=warmup)


DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "default_model.json")


def load_default() -> Model:
    """The embedded model: a small LSTM trained by the project on a simulated diode clipper (48 kHz).

    The circuit itself is :func:`nbrnn.circuit.simulate_diode_clipper`, so at any rate
    the adapted model can be compared with the true circuit.
    """
    return load(DEFAULT_MODEL)
