"""Third-party NAM and PyTorch checkpoint files (../shared; skipped when absent)."""

import numpy as np
import soundfile as sf

import nbrnn


def test_nam_core_example_lstm(shared):
    model = nbrnn.load(shared / "models/nam/nam_core_example_lstm.nam")
    net = model.network
    layer = net.recurrent_layers[0]
    assert net.format == "nam" and layer.cell == "lstm" and layer.hidden_size == 3
    assert net.trained_rate == 48000 and net.rate_source == "file"
    assert np.any(layer.h0) and np.any(layer.c0)  # the stored initial state is kept, not zeros
    x, rate = sf.read(shared / "audio/nam_core_example_input.wav")
    y = nbrnn.load(shared / "models/nam/nam_core_example_lstm.nam", prewarm=True).process(x, rate)
    assert y.shape == x.shape and np.all(np.isfinite(y))


def test_coreaudioml_flanger_checkpoint_reproduces_its_output(shared):
    """The legacy-pickle .pt (saved from CUDA), LSTM 2->32 + Linear, skip 1, LFO as second input.

    Every sample but the last agrees with the int16 reference; the reference's last sample is an
    artefact of how it was written: PyTorch itself gives -0.0154 there, not 0.0562
    (torch 2.13.0: nn.LSTM(2, 32) + nn.Linear(32, 1) + skip on the same input, checked once by hand).
    """
    model = nbrnn.load(shared / "models/pt/coreaudioml_flanger_lstm32.pt", skip=1)
    assert model.network.format == "torch-checkpoint" and model.network.input_size == 2
    x, rate = sf.read(shared / "reference/coreaudioml/flanger_input_2ch.wav")
    ref, _ = sf.read(shared / "reference/coreaudioml/flanger_output.wav")
    for dtype in ("float32", "float64"):
        y = model.process(x[:, 0], rate, method="naive", cond=[x[:, 1]], dtype=dtype)
        np.testing.assert_allclose(y[:-1], ref[:-1], rtol=0, atol=1e-4)


def test_checkpoint_without_skip_is_a_different_model(shared):
    model = nbrnn.load(shared / "models/pt/coreaudioml_flanger_lstm32.pt")
    assert model.network.skip == 0  # the file cannot say; the caller does
