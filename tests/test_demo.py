"""nbrnn demo on the embedded model: plausible numbers, files written."""

import io
import math
import os
import subprocess
import sys

import pytest

import nbrnn
from conftest import ROOT
from nbrnn.demo import run_demo


def test_embedded_model_loads():
    model = nbrnn.load_default()
    assert model.trained_rate == 48000 and model.network.rate_source == "file"
    assert model.network.recurrent_layers[0].cell == "lstm"


def test_demo_table_is_plausible(tmp_path):
    log = io.StringIO()
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "snr.csv").write_text("an earlier run")
    (tmp_path / "demo" / "notes.txt").write_text("the user's, not counted among the files the demo wrote")
    result = run_demo(str(tmp_path / "demo"), seconds=0.4, stream=log, overwrite=True)
    rows = {(r["rate"], r["method"]): r for r in result["rows"]}
    for rate in (96000, 192000):  # integer ratios: the delay methods are bit-exact
        for method in ("linear", "allpass", "cubic"):
            assert math.isinf(rows[(rate, method)]["vs_model"]), (rate, method)
    for rate in (44100, 88200, 96000, 192000):  # naive is the worst away from the trained rate
        naive = rows[(rate, "naive")]["vs_model"]
        others = [r["vs_model"] for (ra, m), r in rows.items() if ra == rate and m != "naive" and r["vs_model"]]
        assert naive < min(others), rate
    assert rows[(44100, "linear")]["vs_model"] is None  # refused below the trained rate
    text = log.getvalue()
    assert "SNR (dB) against the true circuit" in text and "exact" in text and "refused" in text
    names = {p.name for p in (tmp_path / "demo").iterdir()} - {"notes.txt"}
    assert f"wrote {len(names)} files to" in text
    assert {"snr.csv", "input_96000.wav", "cubic_192000.wav", "circuit_44100.wav"} <= names
    from nbrnn.demo import output_names

    assert names <= set(output_names()) and (tmp_path / "demo" / "snr.csv").read_text().startswith("rate_hz,")
    before = {p.name: p.read_bytes() for p in (tmp_path / "demo").iterdir()}
    with pytest.raises(nbrnn.OutputError, match=r"already holds \d+ of the files the demo writes \(snr.csv, "
                                                r".* more\); pass overwrite=True \(--overwrite\)"):
        run_demo(str(tmp_path / "demo"), seconds=0.4, stream=log)
    with pytest.raises(nbrnn.ArgumentError, match="'overwrite' must be True or False, not 'no'"):
        run_demo(str(tmp_path / "demo"), seconds=0.4, stream=log, overwrite="no")  # not taken for its truth
    assert {p.name: p.read_bytes() for p in (tmp_path / "demo").iterdir()} == before


def test_demo_keeps_an_earlier_run_without_overwrite(tmp_path):
    """A second 'nbrnn demo' replaced the first run's files without a word."""
    folder = tmp_path / "nbrnn-demo"  # the default --out, as the README's first command runs it
    folder.mkdir()
    (folder / "demo.png").write_bytes(b"first run")
    (folder / "notes.txt").write_bytes(b"the user's")
    res = subprocess.run([sys.executable, "-m", "nbrnn", "demo", "--seconds", "0.4"], capture_output=True, text=True,
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert ("nbrnn: error: demo folder 'nbrnn-demo' already holds 1 of the files the demo writes (demo.png); "
            "pass overwrite=True (--overwrite)") in res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["demo.png", "notes.txt"]
    assert (folder / "demo.png").read_bytes() == b"first run"


@pytest.mark.parametrize("earlier", [False, True])
def test_a_stopped_demo_leaves_the_folder_as_it_was(tmp_path, monkeypatch, earlier):
    """Ctrl-C in the middle left the files written so far, and the next 'nbrnn demo' refused to start."""
    import nbrnn.demo as demo

    folder = tmp_path / "nbrnn-demo" if earlier else tmp_path / "new" / "nbrnn-demo"  # 'new' was left behind
    if earlier:  # a folder of the user's, with an earlier run's table in it
        folder.mkdir()
        (folder / "notes.txt").write_bytes(b"the user's")
        (folder / "snr.csv").write_bytes(b"an earlier run")
    before = {p.name: p.read_bytes() for p in folder.iterdir()} if earlier else None

    def stop(*args):  # after every audio file is written, before the table
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_print_tables", stop)
    with pytest.raises(KeyboardInterrupt):
        run_demo(str(folder), seconds=0.4, stream=io.StringIO(), overwrite=earlier)
    if earlier:
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    else:
        assert not folder.exists() and not folder.parent.exists()
    monkeypatch.undo()
    log = io.StringIO()
    run_demo(str(folder), seconds=0.4, stream=log, overwrite=earlier)  # the next run starts
    names = {p.name for p in folder.iterdir()}
    assert "cubic_192000.wav" in names and not any(n.startswith(".") for n in names), names
    assert f"wrote {len(names - {'notes.txt'})} files to" in log.getvalue()
    assert (folder / "snr.csv").read_text().startswith("rate_hz,")
