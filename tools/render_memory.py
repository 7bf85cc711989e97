"""Peak memory of a long render: an hour of 96 kHz stereo through the embedded model, streamed.

    python tools/render_memory.py                 # 3600 s (writes a ~1.4 GB temporary input)
    python tools/render_memory.py --seconds 600   # shorter

Writes the input (PCM_16, generated block by block) to a temporary folder, runs
``nbrnn render`` in a child process and prints its peak resident memory
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``), the audio length and the speed.
Peak memory does not grow with the file's length: blocks are read, processed
and written one at a time.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf


def write_input(path, seconds, rate, channels, block=1 << 18):
    rng = np.random.default_rng(0)
    total = int(seconds * rate)
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, subtype="PCM_16") as fh:
        done = 0
        while done < total:
            n = min(block, total - done)
            t = (done + np.arange(n)) / rate
            x = 0.4 * np.sin(2 * np.pi * 110 * t)[:, None] * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))[:, None]
            fh.write(x + 0.01 * rng.standard_normal((n, channels)))
            done += n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--rate", type=int, default=96000)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--method", default="lagrange")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.wav")
        t0 = time.perf_counter()
        write_input(src, args.seconds, args.rate, args.channels)
        print(f"input: {args.seconds:g} s, {args.rate} Hz, {args.channels} ch, "
              f"{os.path.getsize(src) / 2**20:.0f} MiB written in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "nbrnn", "render", src, os.path.join(tmp, "out.wav"),
                              "--method", args.method, "--dtype", args.dtype, "--quiet"])
        elapsed = time.perf_counter() - t0
        if res.returncode:
            sys.exit(res.returncode)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
        out_mib = os.path.getsize(os.path.join(tmp, "out.wav")) / 2**20
    print("| audio | method | dtype | peak RSS of the render | time | x real time |")
    print("|---|---|---|---:|---:|---:|")
    print(f"| {args.seconds:g} s, {args.rate / 1000:g} kHz, {args.channels} ch | {args.method} | {args.dtype} | "
          f"{peak:.0f} MiB | {elapsed:.0f} s | {args.seconds / elapsed:.1f} |")
    print(f"(output {out_mib:.0f} MiB float)")


if __name__ == "__main__":
    main()
