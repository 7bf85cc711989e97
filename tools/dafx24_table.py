"""Print the DAFx-24 means table: our SNRs beside the published ones, in one command.

Run from the repository root (needs the shared data: ``$NBRNN_SHARED`` or ``../shared``)::

    python tools/dafx24_table.py                 # the full protocol: 18 models, whole riffs (~500 M samples)
    python tools/dafx24_table.py --seconds 0.1   # a quick look on the first 0.1 s of each riff

The protocol is :mod:`nbrnn.figures.dafx24`'s (the same as ``nbrnn figures --only dafx24``):
riffs at 44.1 kHz, FFT-resampled up to 48 / 88.2 / 96 kHz, run through the adapted model,
resampled back and compared with the plain model at 44.1 kHz, 0.1 s start-up skipped.
The exit status is 1 when our ranking of the methods disagrees with the published one
wherever the published means differ by more than 2 dB, 2 on an error (one line on stderr).
With ``--models`` naming other models than the paper's 18, only ours are printed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbrnn.errors import ArgumentError, NbrnnError  # noqa: E402
from nbrnn.figures import dafx24, sources  # noqa: E402
from nbrnn.figures.parallel import Progress, check_workers  # noqa: E402
from nbrnn.figures.settings import Settings  # noqa: E402
from nbrnn.figures.tables import check_out  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="use only the first SECONDS of each riff (default: whole riffs, the paper's protocol)")
    parser.add_argument("--riffs", type=int, default=None, help="use only the first RIFFS riffs (default: all 5)")
    parser.add_argument("--models", default=None, help="folder of models (default: <shared>/models/proteus)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address")
    parser.add_argument("--out", default=None, help="also write the CSV files and the bar chart into this folder")
    parser.add_argument("--per-model", action="store_true",
                        help="also print every model's SNRs beside the paper's per-model values")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    shared = sources.shared_dir()
    if shared is None:
        print("dafx24_table: the shared data was not found (set NBRNN_SHARED or place shared/ beside the repo)",
              file=sys.stderr)
        return 2
    try:
        return run(args, shared)
    except NbrnnError as exc:
        print(f"dafx24_table: error: {exc}", file=sys.stderr)
        return 2


def run(args, shared) -> int:
    available = len(sources.riff_paths(shared))
    if args.riffs is not None and not 1 <= args.riffs <= available:
        raise ArgumentError(f"Argument '--riffs' must be from 1 to {available} (the riffs in the shared data), "
                            f"not {args.riffs}")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise ArgumentError(f"Argument '--seconds' must be a positive number of seconds, not {args.seconds:g}")
    models = sources.models_in(args.models) if args.models else sources.proteus_models(shared)
    paper = sources.is_paper_set(models)
    published = dafx24.PUBLISHED_MEANS if paper else {}
    settings = Settings(out=check_out(args.out) if args.out is not None else Path("."), shared=shared,
                        workers=check_workers(args.workers), scheduler=args.scheduler,
                        progress=Progress(enabled=not args.quiet))
    start = time.perf_counter()
    rows = dafx24.compute(models, shared, settings, seconds=args.seconds, riffs=args.riffs)
    elapsed = time.perf_counter() - start
    comments = dafx24.protocol_lines(args.seconds, dafx24.LEAD, dafx24.TAIL, "float64")
    if args.riffs is not None:
        comments.append(f"only the first {args.riffs} riff(s)")
    if args.out:
        suffix = "" if args.seconds is None and args.riffs is None else "_excerpt"
        tag = "" if paper else "_" + sources.model_set_name(args.models, shared)
        dafx24.write(rows, settings.out, suffix=tag + suffix, comments=comments, published=published or None)
    ours = dafx24.means(rows)
    print(f"DAFx-24 mean SNR (dB) over {len(models)} model(s): "
          + ("ours / published" if paper else "ours (not the paper's 18 models: no published means beside them)"))
    for line in comments:
        print(f"  {line}")
    print(dafx24.table_text(ours, published))
    if args.per_model:
        print("\nper model (dB): ours / paper")
        print(dafx24.per_model_text(rows, dafx24.published_per_model(shared)))
    problems = dafx24.ranking_disagreements(ours, published)
    if problems:
        print("ranking DISAGREES with the published means where they differ by > 2 dB:")
        for problem in problems:
            print(f"  {problem}")
    elif paper:
        print("ranking agrees with the published means wherever they differ by > 2 dB")
    print(f"computed in {elapsed:.0f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
