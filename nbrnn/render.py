"""Offline rendering of audio files through a model, streamed in blocks.

Nothing is lost: the output is written to a temporary file beside the
destination and moved into place only when complete; an existing file is kept
unless ``overwrite=True``; no file the render reads (input, control file, model
file) is ever overwritten; an interruption (Ctrl-C, and SIGTERM, SIGHUP or SIGQUIT in
the command) or a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

from ._atomic import atomic_output, check_destination, check_flag
from .engine import check_dtype
from .errors import ArgumentError, AudioError, NbrnnError, OutputError, names_text, plain, shown
from .adapt import is_integer
from .model import Model, check_options, check_rate, no_conditioning
from .network import beyond_range, range_text, real_array

#: Default output subtype: 32-bit float, so nothing above full scale is clipped.
DEFAULT_SUBTYPE = "FLOAT"
DEFAULT_BLOCK = 1 << 16


class Progress:
    """Seconds of audio done and × real time, on one refreshed line; silent when not a terminal."""

    def __init__(self, total_seconds: float, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total_seconds
        self.start = time.perf_counter()
        self.last = 0.0

    def end(self) -> None:
        """End a progress line that is showing (before an error message takes the next line)."""
        if self.enabled and self.last:
            self.stream.write("\n")
            self.stream.flush()
            self.last = 0.0

    def update(self, done_seconds: float, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        speed = done_seconds / elapsed
        self.stream.write(f"\r{done_seconds:8.1f} / {self.total:.1f} s of audio  {speed:6.1f}x real time")
        if final:
            self.stream.write("\n")
            self.last = 0.0
        self.stream.flush()


def _open_input(path, what: str = "input file"):
    import soundfile as sf

    if not os.path.exists(path):  # libsndfile would say only "System error"
        raise AudioError(f"{what} '{path}' does not exist")
    if os.path.isdir(path):
        raise AudioError(f"{what} '{path}' is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{what} '{path}' cannot be read: permission denied")
    try:
        return sf.SoundFile(os.fsencode(path))  # bytes: soundfile encodes str names as strict UTF-8
    except FileNotFoundError:
        raise AudioError(f"{what} '{path}' does not exist") from None
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:  # "Error opening b'...': <reason>"
        raise AudioError(f"{what} '{path}' cannot be read as audio: {str(exc).rsplit(': ', 1)[-1]}") from None


def _read(f, frames: int, path):
    import soundfile as sf

    try:
        return f.read(frames, dtype="float64", always_2d=True)
    except sf.SoundFileRuntimeError as exc:
        raise AudioError(f"'{path}' cannot be read past frame {f.tell()}: {exc}") from None


#: Frames × channels read per block at most (the block size shrinks for files of many channels).
MAX_BLOCK_VALUES = 1 << 19
#: Bits per sample of the subtypes that store samples exactly (to a step of 2^(1 − bits)), whose probe must read
#: back to within two steps of what it wrote; lossy codecs (µ-law, A-law, ADPCM, DPCM, GSM, G.72x, Vorbis, Opus,
#: MP3) are held to their length only.
EXACT_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "ALAC_16": 16, "ALAC_20": 20,
              "ALAC_24": 24, "ALAC_32": 32, "DWVW_12": 12, "DWVW_16": 16, "DWVW_24": 24, "FLOAT": 24, "DOUBLE": 53}

#: Formats libsndfile reads but cannot write as one file.
UNWRITABLE_FORMATS = {"SD2": "nbrnn does not write Sound Designer II (.sd2) files (libsndfile keeps their header in "
                             "a separate '._' resource file, which a file moved into place leaves behind)"}


def _output_format(out: str, subtype: str | None):
    import soundfile as sf

    ext = os.path.splitext(out)[1].lstrip(".").upper()
    if not ext:
        raise OutputError(f"output '{out}' has no extension to choose the audio format by "
                          f"(use one of .wav, .flac, .aiff, .ogg, ...)")
    formats = sf.available_formats()
    fmt = {"AIF": "AIFF", "OGA": "OGG", "OPUS": "OGG"}.get(ext, ext)
    if ext == "OPUS":  # Ogg Opus: an Ogg container whose only valid subtype is OPUS
        if subtype is not None and subtype.upper() != "OPUS":
            raise ArgumentError(f"Argument 'subtype' {subtype!r} is not valid for .opus files, which hold Opus only "
                                f"(for Vorbis use .ogg)")
        subtype = "OPUS"
    if fmt not in formats:
        raise OutputError(f"output '{out}': unknown audio file extension '.{ext.lower()}' "
                          f"(use one of .wav, .flac, .aiff, .ogg, ...)")
    if fmt in UNWRITABLE_FORMATS:
        raise OutputError(f"output '{out}': {UNWRITABLE_FORMATS[fmt]}; use .wav or .aiff")
    if subtype is None:
        subtype = DEFAULT_SUBTYPE if sf.check_format(fmt, DEFAULT_SUBTYPE) else sf.default_subtype(fmt)
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise ArgumentError(f"Argument 'subtype' {subtype!r} is not valid for {fmt} files "
                            f"(valid: {', '.join(sf.available_subtypes(fmt))})")
    return fmt, subtype


#: libsndfile's Vorbis encoder crashes the process beyond 255 channels and above 200 kHz (it refuses what the
#: other formats cannot hold with an error); checked before anything is written.
MAX_VORBIS_CHANNELS = 255
MAX_VORBIS_RATE = 200000
#: The only rates and the most channels libsndfile writes as Ogg Opus (more channels fail as "Format not
#: recognised"); checked up front too, so that the message says what the format holds.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MAX_OPUS_CHANNELS = 255
#: The most channels of the formats that hold fewer than the input may have (libsndfile: "Format not recognised").
MAX_CHANNELS = {"FLAC": 8, "MP3": 2}


def _check_output_limits(out: str, rate: int, channels: int, fmt: str, subtype: str) -> None:
    """Refuse what the encoders cannot take, before libsndfile crashes on it or fails obscurely."""
    if channels > MAX_CHANNELS.get(fmt, channels):
        raise OutputError(f"output '{out}': {fmt} holds at most {MAX_CHANNELS[fmt]} channels, the input has "
                          f"{channels}; use .wav, .w64 or .caf")
    if subtype == "VORBIS" and channels > MAX_VORBIS_CHANNELS:
        raise OutputError(f"output '{out}': Ogg Vorbis holds at most {MAX_VORBIS_CHANNELS} channels, the input has "
                          f"{channels}; use .wav, .w64 or .caf")
    if subtype == "VORBIS" and rate > MAX_VORBIS_RATE:
        raise OutputError(f"output '{out}': Ogg Vorbis holds sample rates up to {MAX_VORBIS_RATE} Hz, the input has "
                          f"{rate} Hz; use .wav or .flac")
    if subtype == "OPUS" and channels > MAX_OPUS_CHANNELS:
        raise OutputError(f"output '{out}': Ogg Opus holds at most {MAX_OPUS_CHANNELS} channels, the input has "
                          f"{channels}; use .wav, .w64 or .caf")
    if subtype == "OPUS" and rate not in OPUS_RATES:
        raise OutputError(f"output '{out}': Ogg Opus holds only the sample rates {', '.join(map(str, OPUS_RATES))} "
                          f"Hz, the input has {rate} Hz; use Vorbis (the default subtype of .ogg), .wav or .flac")


def _open_output(tmp: str, out: str, rate: int, channels: int, fmt: str, subtype: str):
    import soundfile as sf

    try:
        return sf.SoundFile(os.fsencode(tmp), "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype)
    except sf.SoundFileRuntimeError as exc:
        raise _cannot_write(out, tmp, rate, channels, fmt, subtype, exc) from None


def _cannot_write(out: str, tmp: str, rate: int, channels: int, fmt: str, subtype: str,
                  exc: Exception) -> OutputError:
    """The error of a file ``tmp`` (written for ``out``) that libsndfile could not open or begin: a full disk, else a
    format that cannot hold the audio."""
    full = _disk_full(os.path.dirname(tmp), 0)
    if full:
        return OutputError(f"cannot write '{out}': {_reason(exc)}{full}")
    other = "another subtype" if fmt == "WAV" else ".wav"
    return OutputError(f"output '{out}': libsndfile cannot write {channels} channel(s) at {rate} Hz as {fmt} "
                       f"{subtype} ({_reason(exc)}); try {other}")


def _reason(exc: Exception) -> str:
    """libsndfile's own words in a soundfile error (after "Error opening ...: ")."""
    return str(exc).rsplit(": ", 1)[-1] if str(exc).startswith("Error") else str(exc)


def _disk_full(folder: str, written: int) -> str:
    """" (the disk is full: ...)" if the file system of ``folder`` has no more room than the ``written`` bytes of a
    partial file already removed, plus 1 MiB; else "".  libsndfile says only "System error." when the disk is full."""
    import shutil

    try:
        free = shutil.disk_usage(folder or ".").free
    except OSError:
        return ""
    if free >= written + (1 << 20):
        return ""
    held = f" once the {written} bytes written so far are removed" if written else ""
    return f" (the disk is full: the file system of '{folder}' has {free} bytes free{held})"


def _check_written(tmp: str, out: str, rate: int, channels: int, frames: int, fmt: str, subtype: str) -> None:
    """Refuse a written file that does not read back as what was meant (before it is moved into place)."""
    import soundfile as sf

    try:
        info = sf.info(os.fsencode(tmp))
    except (RuntimeError, sf.LibsndfileError, OSError, TypeError) as exc:  # TypeError: a headerless file
        empty = " from an input without samples" if frames == 0 else ""
        raise OutputError(f"output '{out}': libsndfile wrote a {fmt} {subtype} file{empty} that it cannot read back "
                          f"({str(exc).rsplit(': ', 1)[-1]}); use .wav") from None
    if info.samplerate != rate or info.channels != channels:
        raise OutputError(f"output '{out}': {fmt} {subtype} cannot hold {channels} channel(s) at {rate} Hz (the file "
                          f"written says {info.channels} at {info.samplerate} Hz); use .wav or .flac")
    if info.frames != frames:  # ADPCM and GSM codecs pad to whole blocks
        raise OutputError(f"output '{out}': {fmt} {subtype} holds {info.frames} frames for {frames} written (the "
                          f"codec pads the audio to whole blocks); use PCM_16 or .flac")


#: A probe written ahead of a render has the input's length if shorter than twice this, else this many frames plus
#: the input's length modulo this: a codec that pads to whole blocks, or drops a last partial one, pads or drops as
#: it would in the render wherever its block divides this (AIFF's 8-bit pad byte, PAF's 10 frames, ...).
PROBE_FRAMES = 1000


def _probe_frames(frames: int) -> int:
    return frames if frames < 2 * PROBE_FRAMES else PROBE_FRAMES + frames % PROBE_FRAMES


def _is_fixed(subtype: str) -> bool:
    """Whether ``subtype`` stores samples as integers (full scale ±1: what lies beyond is clipped)."""
    return not subtype.startswith(("FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG"))


def _probe_signal(frames: int, channels: int, dtype) -> np.ndarray:
    """+1, −1, then noise over the whole range: what a loud render writes, in the render's float type."""
    x = np.random.default_rng(PROBE_FRAMES).uniform(-1.0, 1.0, (frames, channels))
    x[:2] = np.array([[1.0], [-1.0]])[:frames]
    return x.astype(dtype)


def _probe_output(out: str, rate: int, channels: int, frames: int, fmt: str, subtype: str, dtype) -> None:
    """Write a short loud file in the output's format, beside the output, and read it back, so that a format that
    cannot hold the render (a fixed sample rate, a headerless .raw, a codec that pads or drops frames, an encoder
    that garbles loud audio or turns full scale to the other sign) is refused before the render, not after it."""
    import tempfile

    import soundfile as sf

    x = _probe_signal(_probe_frames(frames), channels, dtype)
    fd, tmp = tempfile.mkstemp(prefix=".nbrnn-probe.", suffix=".partial", dir=os.path.dirname(out) or ".")
    os.close(fd)
    try:
        try:  # FLAC, for one, opens at 96001 Hz and fails at the first write (above 65535 Hz in 10 Hz steps)
            with _open_output(tmp, out, rate, channels, fmt, subtype) as dst:
                dst.write(x)
        except sf.SoundFileRuntimeError as exc:
            raise _cannot_write(out, tmp, rate, channels, fmt, subtype, exc) from None
        _check_written(tmp, out, rate, channels, len(x), fmt, subtype)
        try:
            y = sf.read(os.fsencode(tmp), dtype="float64", always_2d=True)[0]
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise OutputError(f"output '{out}': libsndfile writes {fmt} {subtype} files it cannot read back "
                              f"({_reason(exc)}); use .wav or .flac") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if _is_fixed(subtype) and len(x) and (y[0] < 0).any():
        raise OutputError(f"output '{out}': libsndfile writes a full-scale sample as {fmt} {subtype} with the wrong "
                          f"sign; use .wav or .flac")
    bits = EXACT_BITS.get(subtype)
    error = np.abs(y - x)
    if bits is not None and not error.max(initial=0.0) <= 2.0 ** (2 - bits):  # two steps; NaN too
        frame = int(np.argmax(error.max(axis=1)))
        raise OutputError(f"output '{out}': libsndfile's {fmt} {subtype} encoder does not write back what it is "
                          f"given (a probe of {len(x)} frames of loud noise read back {error.max():.3g} off "
                          f"at frame {frame}); use .wav or .flac")


def _write_error(out: str, exc: Exception, written: int) -> OutputError:
    """An error while writing ``out`` after about ``written`` bytes (measured once the partial file is gone)."""
    return OutputError(f"cannot write '{out}': {_reason(exc)}{_disk_full(os.path.dirname(out), written)}")


def render(input_path, output_path, model: Model, *, method: str = "lagrange", cond=None, control_path=None,
           dtype="float32", activations: str = "accurate", overwrite: bool = False, subtype: str | None = None,
           block_size: int = DEFAULT_BLOCK, progress: bool | None = None, **options) -> dict:
    """Render ``input_path`` through ``model`` into ``output_path`` at the input's own sample rate.

    Parameters
    ----------
    input_path, output_path : path-like
        Any file soundfile reads; the output format follows the output's extension.
    model : Model
    method, **options
        Adaptation method and its options (see :meth:`Model.process`).
    cond : dict or sequence, optional
        Constant conditioning values by name or 1-based index.
    control_path : path-like, optional
        An audio file at the input's rate and length whose channels are the
        time-varying conditioning signals, in the model's conditioning order.
    dtype : {'float32', 'float64'}
        The float type the model runs in (and of a FLOAT or DOUBLE output's samples).
    activations : {'accurate', 'fast'}
        The activation path (see :meth:`Model.process`).
    overwrite : bool
        Replace an existing output (never the input).
    subtype : str, optional
        soundfile subtype; default 32-bit float where the format has it.
    block_size : int
        Frames read, processed and written per block, at most :data:`MAX_BLOCK_VALUES` / channels (memory
        stays bounded; the output does not depend on it).
    progress : bool, optional
        Show progress on stderr; default: only when stderr is a terminal.

    Returns
    -------
    dict
        ``frames`` (rendered: all the input holds), ``declared_frames`` (what its header declares: more when the
        file is truncated or was streamed through a pipe), ``channels``, ``sample_rate``, ``seconds``,
        ``elapsed``, ``clipped`` (samples beyond full scale in a fixed-point output), ``plan`` (the method's
        description), ``format`` and ``subtype`` (soundfile's names of what was written).
    """
    import soundfile as sf

    for name, path in (("input_path", input_path), ("output_path", output_path), ("control_path", control_path)):
        if not isinstance(path, (str, os.PathLike)) and not (path is None and name == "control_path"):
            raise ArgumentError(f"Argument '{name}' must be a file path (str or path-like), not {type(path).__name__}")
    if not isinstance(model, Model):
        raise ArgumentError(f"Argument 'model' must be an nbrnn Model (nbrnn.load(path) reads a model file), "
                            f"not {type(model).__name__}")
    if subtype is not None and not isinstance(subtype, str):
        raise ArgumentError(
            f"Argument 'subtype' must be a soundfile subtype name such as 'PCM_24', not {shown(subtype)}")
    if not is_integer(block_size) or not 1 <= block_size <= 1 << 24:
        raise ArgumentError(f"Argument 'block_size' (--block-size) must be an integer from 1 to {1 << 24}, "
                            f"not {shown(block_size)}")
    check_options(options)
    progress = None if progress is None else check_flag(progress, "progress")
    if model.network.output_size != 1:
        raise ArgumentError(f"the model has {model.network.output_size} outputs; render writes one output per "
                            f"channel of the input (Model.process returns every output)")
    out = check_destination(output_path, [("input file", input_path), ("control file", control_path),
                                          ("model file", model.network.source)], overwrite)
    fmt, subtype = _output_format(out, subtype)
    with _open_input(input_path) as src:
        rate = check_rate(float(src.samplerate), "input sample rate")
        channels, frames = src.channels, src.frames
        _check_output_limits(out, src.samplerate, channels, fmt, subtype)
        _probe_output(out, src.samplerate, channels, frames, fmt, subtype, check_dtype(dtype))
        block_size = max(1, min(int(block_size), MAX_BLOCK_VALUES // channels))  # memory bounded for many channels
        control = None
        names = model.conditioning_names
        cond = None if no_conditioning(cond) else cond  # as Model.inputs takes it
        if cond is not None and not names:
            raise ArgumentError("conditioning values were given (cond, --cond) but the model has no conditioning "
                                "inputs")
        if cond is not None and control_path is not None:
            raise ArgumentError("give conditioning as constant values (cond, --cond) or as a control file "
                                "(control_path, --control), not both")
        if control_path is not None:
            if not names:
                raise ArgumentError("a control file was given but the model has no conditioning inputs")
            control = _open_input(control_path, "control file")
            if control.samplerate != src.samplerate or control.frames != frames:
                control.close()
                raise AudioError(f"control file '{control_path}' must match the input's rate and length "
                                 f"({src.samplerate} Hz, {frames} frames), not {control.samplerate} Hz, "
                                 f"{control.frames} frames")
            if control.channels != len(names):
                control.close()
                raise AudioError(f"control file '{control_path}' has {control.channels} channel(s) but the model "
                                 f"has {len(names)} conditioning input(s): {names_text(names)}")
        elif names and cond is None:
            raise ArgumentError(f"the model has conditioning input(s) {names_text(names)}: give values "
                                f"(--cond {plain(names[0], 60)}=0.5) or a control file (--control)")
        stream = model.stream(rate, channels=channels, method=method, dtype=dtype, activations=activations,
                              **options)
        consts = _constant_knobs(model, cond, dtype) if (names and control is None) else None
        meter = Progress(frames / rate, enabled=progress)
        clipped = 0
        started = time.perf_counter()
        done = partial = 0
        try:
            with atomic_output(out, overwrite) as tmp:
                try:
                    with _open_output(tmp, out, src.samplerate, channels, fmt, subtype) as dst:
                        fixed = _is_fixed(subtype)
                        single = None if subtype == "DOUBLE" or fixed else np.dtype(np.float32)  # what it holds
                        remedy = ("use --subtype DOUBLE (subtype='DOUBLE')" if sf.check_format(fmt, "DOUBLE") else
                                  f"{fmt} holds no float64: use .wav with --subtype DOUBLE")

                        def write(y):
                            nonlocal clipped
                            if y.shape[1] == 0:
                                return
                            block = np.ascontiguousarray(y[:, :, 0].T)
                            if fixed:  # clipped here: some encoders wrap what lies beyond full scale
                                over = (block > 1.0) | (block < -1.0)
                                if over.any():
                                    clipped += int(np.count_nonzero(over))
                                    block = np.clip(block, -1.0, 1.0)
                            elif single is not None and (where := beyond_range(block, single)) is not None:
                                raise OutputError(f"output '{output_path}': the output at frame {written + where[0]} "
                                                  f"is beyond what {subtype} holds, {range_text(single)}; {remedy}")
                            dst.write(block)

                        written = 0
                        while True:
                            x = _read(src, block_size, input_path)
                            if x.shape[0] == 0:
                                break
                            ctrl = _read(control, x.shape[0], control_path) if control is not None else None
                            if ctrl is not None and ctrl.shape[0] < x.shape[0]:
                                raise AudioError(f"control file '{control_path}' ends after {done + ctrl.shape[0]} "
                                                 f"frames, before the input (its header declares {frames})")
                            y = stream.feed(_inputs(model, x, consts, ctrl, stream.dtype, done, control_path))
                            write(y)
                            written += y.shape[1]
                            done += x.shape[0]
                            meter.update(done / rate)
                        write(stream.finish())
                    # what was read: a truncated file, or a WAV streamed through a pipe, holds fewer frames than
                    # its header declares (the result says both)
                    _check_written(tmp, out, src.samplerate, channels, done, fmt, subtype)
                except sf.SoundFileRuntimeError:
                    with contextlib.suppress(OSError):
                        partial = os.path.getsize(tmp)  # what reached the disk, before the file is removed
                    raise
        except sf.SoundFileRuntimeError as exc:  # writing: disk full and the like (reads raise AudioError)
            meter.end()
            raise _write_error(out, exc, partial) from None
        except BaseException:
            meter.end()
            raise
        finally:
            if control is not None:
                control.close()
        meter.update(done / rate, final=True)
    return {"frames": done, "declared_frames": frames, "channels": channels, "sample_rate": rate,
            "seconds": done / rate, "elapsed": time.perf_counter() - started, "clipped": clipped,
            "plan": stream.plan.description, "format": fmt, "subtype": subtype}


def _range_remedy(dt: np.dtype) -> str:
    return f"{range_text(dt)}; render with dtype='float64' (--dtype float64)"


def _inputs(model: Model, x: np.ndarray, consts, ctrl, dtype, offset: int, control_path=None) -> np.ndarray:
    """(frames, channels) audio → (channels, frames, inputs) with conditioning (``ctrl``: from ``control_path``)."""
    bad = ~np.isfinite(x)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise AudioError(f"input holds a NaN/Inf sample at frame {offset + int(where[0])}, channel {int(where[1])}")
    dt = np.dtype(dtype)
    where = beyond_range(x, dt)
    if where is not None:
        raise AudioError(f"input holds a sample of {x[where]:.6g} at frame {offset + where[0]}, channel {where[1]}, "
                         f"beyond {_range_remedy(dt)}")
    n, channels = x.shape
    inp = np.empty((channels, n, model.network.input_size), dtype=dtype)
    inp[:, :, 0] = x.T
    if ctrl is not None:
        bad = ~np.isfinite(ctrl)
        if bad.any():
            frame, channel = (int(i) for i in np.argwhere(bad)[0])
            raise AudioError(f"control file '{control_path}' holds a NaN/Inf value at frame {offset + frame}, "
                             f"channel {channel}")
        where = beyond_range(ctrl, dt)
        if where is not None:
            raise AudioError(f"control file '{control_path}' holds a value of {ctrl[where]:.6g} at frame "
                             f"{offset + where[0]}, channel {where[1]}, beyond {_range_remedy(dt)}")
        inp[:, :, 1:] = ctrl[None, :, :]
    elif consts is not None:
        inp[:, :, 1:] = consts
    return inp


def _constant_knobs(model: Model, cond, dtype) -> np.ndarray:
    """``cond`` as one finite real number per conditioning input that ``dtype`` holds, checked once before anything
    is rendered."""
    values = model._cond_values(cond)
    for name, value in zip(model.conditioning_names, values):
        arr, _ = real_array(value)
        if arr is None or arr.ndim != 0 or not np.isfinite(arr):
            raise ArgumentError(f"conditioning value for {shown(name)} must be one finite real number when rendering "
                                f"(use a control file for signals), not {shown(value)}")
    knobs = np.array(values, dtype=np.float64)
    dt = np.dtype(dtype)
    where = beyond_range(knobs, dt)
    if where is not None:
        raise ArgumentError(f"conditioning value for {model.conditioning_names[where[0]]!r} is {knobs[where]:.6g}, "
                            f"beyond {_range_remedy(dt)}")
    return knobs


__all__ = ["render", "Progress", "NbrnnError"]
