"""nbrnn demo on the embedded model: plausible numbers, files written."""

import io
import math

import nbrnn
from nbrnn.demo import run_demo


def test_embedded_model_loads():
    model = nbrnn.load_default()
    assert model.trained_rate == 48000 and model.network.rate_source == "file"
    assert model.network.recurrent_layers[0].cell == "lstm"


def test_demo_table_is_plausible(tmp_path):
    log = io.StringIO()
    result = run_demo(str(tmp_path / "demo"), seconds=0.4, stream=log)
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
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"snr.csv", "input_96000.wav", "cubic_192000.wav", "circuit_44100.wav"} <= names
