"""Experiments and figures: the article's plots, the papers' tables and sample-rate sweeps.

A sibling of the engine that uses only its public face (``nbrnn.load``,
``Model.process``, ``nbrnn.circuit``).  Every figure computes its data first
(CSV files) and renders its plot from those files, headless and
deterministically, into one folder (``figures/`` by default):

``article``
    The Medium article's 100 Hz sine at R x the training rate, uncorrected and corrected.
``dafx24``
    The DAFx-24 table (18 models x 48 / 88.2 / 96 kHz x five methods), ours beside the published means.
``icassp25``
    The ICASSP-25 order sweep: Lagrange and minimax orders 1-5, up 44.1 -> 48 kHz and down to R = 0.91875.
``sweep``
    SNR against R = 0.5 ... 4.5 for eight methods over a set of models.
``circuit``
    The embedded model against the true diode clipper at many rates, beside model-against-model.

Figures that need the third-party data (``$NBRNN_SHARED`` or ``../shared``)
are skipped, with the reason, when it is absent.  Run ``nbrnn figures --help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

#: Figure names, in the order they are made, and their modules.
FIGURES = {"article": "article", "dafx24": "dafx24", "icassp25": "icassp25", "sweep": "sweep",
           "circuit": "circuit_truth"}
#: The figures whose model set ``--models`` replaces.
USE_MODELS = ("dafx24", "icassp25", "sweep")


def build_parser() -> argparse.ArgumentParser:
    from ..cli import Parser

    parser = Parser(
        prog="nbrnn figures",
        description="Compute the figures' data (CSV) and plots (PNG): the article's sine plots, the DAFx-24 table, "
                    "the ICASSP-25 order sweep, a continuous sample-rate sweep and the embedded model against "
                    "the true circuit.  Progress goes to stderr.")
    parser.add_argument("--only", action="append", metavar="NAME", default=None,
                        help=f"make only this figure (repeatable, or comma-separated): {', '.join(FIGURES)}")
    parser.add_argument("--models", metavar="DIR", default=None,
                        help="a folder of models (or one model file) for the sweep and the paper protocols "
                             "(default: the 18 DAFx-24 models from the shared data, else the embedded model)")
    parser.add_argument("--out", metavar="DIR", default="figures", help="output folder (default: figures/)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: the number of CPUs)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run the tasks on a Dask cluster (tcp://host:port; needs nbrnn[dask])")
    parser.add_argument("--quick", action="store_true",
                        help="short excerpts instead of the papers' full-length signals (a smoke run)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return parser


def selected(only) -> list:
    """Figure names chosen by ``--only`` (all when None), in the canonical order."""
    from ..errors import ArgumentError

    if not only:
        return list(FIGURES)
    names = {part.strip() for item in only for part in item.split(",") if part.strip()}
    if not names:
        raise ArgumentError(f"Argument '--only' must name at least one figure among {', '.join(FIGURES)}")
    unknown = sorted(names - set(FIGURES))
    if unknown:
        raise ArgumentError(f"Argument '--only' must name figures among {', '.join(FIGURES)}, "
                            f"not {', '.join(unknown)}")
    return [name for name in FIGURES if name in names]


def main(argv=None) -> int:
    """Entry point of ``nbrnn figures``: make the chosen figures, say which were skipped and why.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``figures`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every chosen figure was made or skipped for want of data.
    """
    from ..errors import ArgumentError
    from .parallel import Progress, check_scheduler, check_workers
    from .settings import Settings
    from .sources import shared_dir
    from .tables import check_out

    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    names = selected(args.only)
    out = check_out(args.out)
    if args.models is not None and not args.models.strip():
        raise ArgumentError(f"Argument '--models' must be a folder of model files or a model file, not "
                            f"{args.models!r}")
    models_dir = Path(args.models) if args.models is not None else None
    if models_dir is not None and not set(names) & set(USE_MODELS):
        raise ArgumentError(f"Argument '--models' applies to the figures {', '.join(USE_MODELS)}, not to "
                            f"{', '.join(names)}")
    if models_dir is not None and not models_dir.exists():
        raise ArgumentError(f"Argument '--models' must be a folder of model files or a model file, not "
                            f"{args.models!r} (no such file or folder)")
    if args.scheduler is not None:
        check_scheduler(args.scheduler)
    settings = Settings(out=out, shared=shared_dir(), models_dir=models_dir,
                        workers=check_workers(args.workers), scheduler=args.scheduler,
                        progress=Progress(enabled=not args.quiet), quick=args.quick)
    say = settings.progress.say
    say(f"[figures] output folder {settings.out}; shared data "
        f"{settings.shared if settings.shared else 'not found (set NBRNN_SHARED or place shared/ beside the repo)'}")
    made, skipped = [], []
    start = time.perf_counter()
    for name in names:
        module = importlib.import_module(f".{FIGURES[name]}", __name__)
        reason = module.missing(settings) if hasattr(module, "missing") else None
        if reason:
            skipped.append((name, reason))
            say(f"[figures] skipped {name}: {reason}")
            continue
        t0 = time.perf_counter()
        paths = module.make(settings)
        made.extend(paths)
        say(f"[figures] {name}: wrote {', '.join(p.name for p in paths)} in {time.perf_counter() - t0:.1f} s")
    say(f"[figures] done in {time.perf_counter() - start:.1f} s: {len(made)} file(s) written"
        + (f"; skipped {', '.join(name for name, _ in skipped)}" if skipped else ""))
    return 0
