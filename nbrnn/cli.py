"""The ``nbrnn`` command: render, info, demo, figures, export."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from .adapt import ALIASES, INNER_METHODS, METHODS, OPTION_METHODS, OUTPUTS, PLACEMENTS, RESAMPLERS
from .errors import NbrnnError, one_line, shown


def _given_once(action, parser, namespace) -> None:
    """An option given twice is an error (``--cond``, which collects, is the exception)."""
    seen = namespace.__dict__.setdefault("_given", set())
    if action.dest in seen:
        parser.error(f"{'/'.join(action.option_strings)} was given twice")
    seen.add(action.dest)


class _Once(argparse._StoreAction):
    def __call__(self, parser, namespace, values, option_string=None):
        _given_once(self, parser, namespace)
        super().__call__(parser, namespace, values, option_string)


class _OnceTrue(argparse._StoreTrueAction):
    def __call__(self, parser, namespace, values, option_string=None):
        _given_once(self, parser, namespace)
        super().__call__(parser, namespace, values, option_string)


class Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error; options spelled out in full, each given once."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)
        self.register("action", "store_true", _OnceTrue)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _model(args):
    from .model import DEFAULT_MODEL, load

    return load(DEFAULT_MODEL if args.model is None else args.model, trained_rate=args.trained_rate, skip=args.skip,
                prewarm=getattr(args, "prewarm", False))


def _cond(values):
    """``['drive=0.5', '2=0.3']`` → ``{'drive': 0.5, '2': 0.3}``."""
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise NbrnnError(f"--cond must look like NAME=VALUE or INDEX=VALUE, not {shown(item)}")
        if name.strip() in out:
            raise NbrnnError(f"--cond {name.strip()} is given twice")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise NbrnnError(f"--cond {item!r}: the value must be a number") from None
    return out or None


def _method_options(args) -> dict:
    from .adapt import canonical_method

    method = canonical_method(args.method)
    opts = {"output": args.output_convention}
    for option, owners in OPTION_METHODS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if method not in owners:
            flag = "--" + option.replace("_", "-")
            raise NbrnnError(f"{flag} applies to --method {' or '.join(owners)}, not to --method {args.method}")
        opts[option] = value
    if method == "fir" and args.kernel is not None:  # absent: make_plan says what --method fir needs
        try:
            opts["kernel"] = [float(v) for v in args.kernel.split(",")]
        except ValueError:
            raise NbrnnError(f"--kernel must be comma-separated numbers, not {shown(args.kernel)}") from None
    return opts


def _add_model_args(p, default_help="the embedded diode-clipper LSTM"):
    p.add_argument("--model", "-m", default=None, help=f"model file (default: {default_help})")
    p.add_argument("--trained-rate", type=float, default=None,
                   help="the rate the model was trained at, in Hz (default: from the file or the format's convention)")
    p.add_argument("--skip", type=int, default=None, help="leading input channels added to the output "
                   "(default: from the file; 0 for raw state_dicts)")
    p.add_argument("--prewarm", action="store_true", help="NAM: process 0.5 s of silence first, as the NAM runtime does")


def _add_method_args(p):
    p.add_argument("--method", default="lagrange", choices=METHODS + tuple(sorted(ALIASES)),
                   help="sample-rate adaptation method (cubic = lagrange order 3)")
    p.add_argument("--order", type=int, default=None, help="order of 'lagrange' / 'minimax' (default 3)")
    p.add_argument("--placement", default=None, choices=PLACEMENTS, help="Lagrange tap placement (default paper)")
    p.add_argument("--bandwidth", type=float, default=None,
                   help="minimax design band, fraction of Nyquist (default 0.5)")
    p.add_argument("--kernel", default=None, help="FIR taps for --method fir, comma-separated")
    p.add_argument("--resampler", default=None, choices=RESAMPLERS,
                   help="resampler of --method resample (default polyphase)")
    p.add_argument("--inner", default=None, choices=INNER_METHODS + tuple(sorted(ALIASES)),
                   help="method of --method oversample at the oversampled rate: a delay-line method or stn "
                        "(default lagrange)")
    p.add_argument("--inner-order", type=int, default=None,
                   help="order of --inner lagrange / minimax (default 3)")
    p.add_argument("--factor", type=int, default=None,
                   help="oversampling factor of --method oversample (default: the smallest L with L*R >= 1)")
    p.add_argument("--output-convention", default="fresh", choices=OUTPUTS,
                   help="state passed on: fresh (no latency) or delayed (article / RTNeural convention)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="float type of the run")
    p.add_argument("--activations", default="accurate", choices=("accurate", "fast"), help="activation functions")


def build_parser() -> argparse.ArgumentParser:
    fmt = _Help
    parser = Parser(
        prog="nbrnn", formatter_class=fmt,
        description="Run recurrent audio-effect models trained elsewhere at any sample rate.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"nbrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # name -> the command's own parser

    p = sub.add_parser("render", formatter_class=fmt, help="render an audio file through a model",
                       description="Render IN through a model into OUT at IN's sample rate, streamed in blocks. "
                                   "OUT is written only when complete; existing files are kept without --overwrite.")
    p.add_argument("input", metavar="IN", help="input audio file (any rate, any channel count)")
    p.add_argument("output", metavar="OUT", help="output audio file (format from the extension)")
    _add_model_args(p)
    _add_method_args(p)
    p.add_argument("--cond", action="append", metavar="NAME=VALUE",
                   help="a conditioning (knob) value by name or 1-based index; repeat for several")
    p.add_argument("--control", default=None, metavar="FILE",
                   help="audio file whose channels are time-varying conditioning signals")
    p.add_argument("--subtype", default=None, help="output subtype, e.g. FLOAT, PCM_24 (default: FLOAT where the "
                   "format has it, else the format's own: PCM_16 for FLAC, VORBIS for .ogg, OPUS for .opus)")
    p.add_argument("--block-size", type=int, default=1 << 16, help="frames per processing block")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT (never IN)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line and no closing summary")

    p = sub.add_parser("info", formatter_class=fmt, help="describe a model file",
                       description="Print what was loaded: format, layers, sizes, inputs, skip, trained rate "
                                   "and its source, parameter count.")
    p.add_argument("model", metavar="MODEL", nargs="?", default=None, help="model file (default: the embedded model)")
    p.add_argument("--trained-rate", type=float, default=None, help="override the trained rate (Hz)")
    p.add_argument("--skip", type=int, default=None, help="override the skip connection")

    p = sub.add_parser("demo", formatter_class=fmt, help="show the idea on the embedded model, no files needed",
                       description="Render a built-in test signal through the embedded model at several rates with "
                                   "each main method, print SNRs against the model at its trained rate and against "
                                   "the true circuit, and write audio and a plot. Files of an earlier run are "
                                   "kept without --overwrite.")
    p.add_argument("--out", default="nbrnn-demo", help="folder for the audio and the plot")
    p.add_argument("--seconds", type=float, default=2.0, help="length of the test signal")
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"), help="float type of the runs")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in the folder")

    p = sub.add_parser("figures", help="regenerate the article's plots, the papers' tables and the sweeps",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser("export", formatter_class=fmt, help="save a model as .npz or .safetensors",
                       description="Save any loaded model in nbrnn's container form (.npz or .safetensors), "
                                   "with its layers, skip, inputs, trained rate and warm-up in the metadata.")
    p.add_argument("model", metavar="MODEL", help="model file")
    p.add_argument("output", metavar="OUT", help="output path ending in .npz or .safetensors")
    p.add_argument("--trained-rate", type=float, default=None, help="override the trained rate (Hz)")
    p.add_argument("--skip", type=int, default=None, help="override the skip connection")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return parser


def _render(args) -> int:
    from .render import render

    model = _model(args)
    result = render(args.input, args.output, model, method=args.method, cond=_cond(args.cond),
                    control_path=args.control, dtype=args.dtype, activations=args.activations,
                    overwrite=args.overwrite, subtype=args.subtype, block_size=args.block_size,
                    progress=False if args.quiet else None, **_method_options(args))
    if not args.quiet:
        speed = result["seconds"] / max(result["elapsed"], 1e-9)
        print(f"wrote {one_line(args.output)}: {result['frames']} frames x {result['channels']} channel(s) at "
              f"{result['sample_rate']:g} Hz ({result['subtype']}), {speed:.1f}x real time; {result['plan']}",
              file=sys.stderr)
    if result["frames"] < result["declared_frames"]:
        print(f"nbrnn: warning: the input ended after {result['frames']} frames, although its header declares "
              f"{result['declared_frames']} (a truncated file, or one streamed through a pipe); they were rendered",
              file=sys.stderr)
    if result["clipped"]:
        import soundfile as sf

        fmt = result["format"]
        cure = ("use --subtype FLOAT to keep them" if sf.check_format(fmt, "FLOAT") else
                f"{fmt} has no float subtype: write a .wav, .aiff or .caf (32-bit float by default) to keep them")
        print(f"nbrnn: warning: {result['clipped']} sample(s) exceeded full scale and were clipped in the "
              f"{result['subtype']} output; {cure}", file=sys.stderr)
    return 0


def _info(args) -> int:
    print(_model(args).info())
    return 0


def _export(args) -> int:
    from .formats.containers import export
    from .model import load

    model = load(args.model, trained_rate=args.trained_rate, skip=args.skip)
    export(model.network, args.output, overwrite=args.overwrite, warmup=model.warmup, argument="OUT")
    print(f"wrote {one_line(args.output)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["figures"]:
        return _guard(lambda: _figures(argv[1:]))
    args, extra = parser.parse_known_args(argv)
    if extra:  # say so in the words of the command's own parser, which points to its help
        parser.commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"render": _render, "info": _info, "export": _export, "demo": _demo}[args.command]
    return _guard(lambda: handler(args))


def _figures(argv) -> int:
    from .figures import main as figures_main

    return figures_main(argv)


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, seconds=args.seconds, dtype=args.dtype, overwrite=args.overwrite)
    return 0


class _Terminated(BaseException):
    """SIGTERM, SIGHUP or SIGQUIT, raised where the program is, so that every output in progress is removed."""


def _terminate(signum, frame):
    raise _Terminated(signum)


def _guard(fn) -> int:
    previous = {}
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            with contextlib.suppress(ValueError):  # not the main thread
                previous[name] = signal.signal(getattr(signal, name), _terminate)
    try:
        return int(fn() or 0)
    except NbrnnError as exc:
        print(f"nbrnn: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nbrnn: interrupted; no partial output was left behind", file=sys.stderr)
        return 130
    except _Terminated as exc:
        signum = exc.args[0]
        print(f"nbrnn: stopped by {signal.Signals(signum).name}; no partial output was left behind", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # disk full, permissions changing under us: one line, no traceback
        print(one_line(f"nbrnn: error: {exc.strerror or exc}" + (f": '{exc.filename}'" if exc.filename else "")),
              file=sys.stderr)
        return 1
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


if __name__ == "__main__":
    sys.exit(main())
