"""Rendering files: equals Model.process, streams, keeps inputs and existing files, leaves no partial output."""

import os
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import nbrnn
from conftest import GOLDEN, run_fresh
from nbrnn.render import render

MODEL = GOLDEN / "agm_lstm_l1_i1_h8_skip1.json"
COND_MODEL = GOLDEN / "agm_gru_l1_i2_h7_skip1.json"


def _signal(n, channels, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return (0.5 * np.sin(t * (0.01 + 0.013 * np.arange(channels))) + 0.05 * rng.standard_normal((n, channels)))


@pytest.mark.parametrize("channels,rate,subtype", [(1, 44100, "PCM_16"), (2, 48000, "FLOAT"), (2, 96000, "PCM_24"),
                                                   (6, 22050, "DOUBLE")])
def test_render_equals_process(tmp_path, channels, rate, subtype):
    x = _signal(3001, channels)
    src = tmp_path / "in.wav"
    sf.write(src, x, rate, subtype=subtype)
    x_read, _ = sf.read(src, always_2d=True)
    model = nbrnn.load(MODEL)
    out = tmp_path / "out.wav"
    info = render(src, out, model, method="lagrange", block_size=512, progress=False)
    y, out_rate = sf.read(out, always_2d=True, dtype="float32")
    assert out_rate == rate and y.shape == x.shape and sf.info(out).subtype == "FLOAT"
    assert info["frames"] == 3001 and info["channels"] == channels
    expected = model.process(x_read, rate, method="lagrange", dtype="float32")
    assert np.array_equal(y, expected)


@pytest.mark.parametrize("method", ["resample", "oversample", "allpass"])
def test_render_whole_signal_methods_equal_process(tmp_path, method):
    rate = 96000 if method != "oversample" else 32000
    x = _signal(4000, 2, 3)
    src = tmp_path / "in.wav"
    sf.write(src, x, rate, subtype="DOUBLE")
    model = nbrnn.load(MODEL)
    render(src, tmp_path / "out.wav", model, method=method, block_size=333, progress=False, dtype="float64",
           subtype="DOUBLE")
    y, _ = sf.read(tmp_path / "out.wav", always_2d=True)
    np.testing.assert_allclose(y, model.process(x, rate, method=method), rtol=0, atol=1e-12)


def test_fixed_point_output_counts_clipping(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, np.full(100, 0.99), 44100, subtype="FLOAT")
    gain = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[2.0]], [0.0]),)))
    info = render(src, tmp_path / "o.wav", gain, subtype="PCM_16", progress=False)
    assert info["subtype"] == "PCM_16" and info["clipped"] == 100
    assert render(src, tmp_path / "f.wav", gain, progress=False)["clipped"] == 0  # float output keeps 1.98


def test_clip_warning_names_a_cure_the_format_takes(tmp_path):
    """The warning said '--subtype FLOAT' for FLAC too, which FLAC refuses."""
    src = tmp_path / "in.wav"
    sf.write(src, np.full(100, 0.99), 44100, subtype="FLOAT")
    gain = tmp_path / "gain.npz"
    nbrnn.Model(nbrnn.Network((nbrnn.Dense([[2.0]], [0.0]),))).save(gain)
    res = _cli("render", src, tmp_path / "o.flac", "--model", gain, "-q")
    assert res.returncode == 0 and res.stderr.count("\n") == 1, res.stderr
    assert ("100 sample(s) exceeded full scale and were clipped in the PCM_16 output; FLAC has no float subtype: "
            "write a .wav, .aiff or .caf (32-bit float by default) to keep them") in res.stderr
    res = _cli("render", src, tmp_path / "o.wav", "--model", gain, "-q", "--subtype", "PCM_24")
    assert res.returncode == 0 and "clipped in the PCM_24 output; use --subtype FLOAT to keep them" in res.stderr
    for name in ("o.wav", "o.aiff", "o.caf"):  # the cures work: nothing clipped, no warning
        res = _cli("render", src, tmp_path / name, "--model", gain, "-q", *(["--subtype", "FLOAT"] * (name == "o.wav")),
                   "--overwrite")
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert np.all(sf.read(tmp_path / name)[0] > 1.9)


def test_overwrite_rules(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(500, 1), 44100)
    model = nbrnn.load(MODEL)
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    with pytest.raises(nbrnn.OutputError, match="exists.*overwrite"):
        render(src, out, model, progress=False)
    for truthy in ("no", 1, [False]):  # a value other than True or False is not taken for its truth
        with pytest.raises(nbrnn.ArgumentError, match=r"'overwrite' must be True or False, not"):
            render(src, out, model, overwrite=truthy, progress=False)
    assert out.read_bytes() == b"keep me"
    render(src, out, model, overwrite=True, progress=False)
    assert sf.info(out).frames == 500
    before = src.read_bytes()
    with pytest.raises(nbrnn.OutputError, match="is the input"):
        render(src, src, model, overwrite=True, progress=False)
    with pytest.raises(nbrnn.OutputError, match="is the input"):
        render(src, tmp_path / "." / "in.wav", model, overwrite=True, progress=False)
    assert src.read_bytes() == before


def test_overwrite_replaces_only_regular_files(tmp_path):
    """A FIFO or device at the output path (or a link to one) became a regular file with overwrite=True."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(500, 1), 44100)
    model = nbrnn.load(MODEL)
    fifo, device = tmp_path / "fifo.wav", tmp_path / "null.wav"
    os.mkfifo(fifo)
    device.symlink_to(os.devnull)
    for path, kind in ((fifo, "a FIFO"), (device, "a character device")):
        for overwrite in (False, True):
            with pytest.raises(nbrnn.OutputError, match=f"is {kind}; nbrnn replaces only regular files"):
                render(src, path, model, overwrite=overwrite, progress=False)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(device) == os.devnull
    regular, link = tmp_path / "regular.wav", tmp_path / "link.wav"
    regular.write_bytes(b"keep me")
    link.symlink_to(regular)  # a link to a regular file: the link is replaced, what it led to is kept
    render(src, link, model, overwrite=True, progress=False)
    assert not link.is_symlink() and sf.info(link).frames == 500 and regular.read_bytes() == b"keep me"
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "nowhere.wav")  # was replaced without overwrite: it did not "exist"
    with pytest.raises(nbrnn.OutputError, match="exists; pass overwrite=True"):
        render(src, dangling, model, progress=False)
    assert dangling.is_symlink()
    render(src, dangling, model, overwrite=True, progress=False)
    assert not dangling.is_symlink() and sf.info(dangling).frames == 500
    assert _leftovers(tmp_path) == ["dangling.wav", "fifo.wav", "link.wav", "null.wav", "regular.wav"]


@pytest.mark.parametrize("name", ["a" * 251 + ".wav", "\u00e9" * 125 + ".wav"])  # 255 and 254 bytes in UTF-8
def test_the_longest_output_names_work(tmp_path, name):
    """The temporary name '.<name>.XXXXXXXX.partial' was longer than the 255 bytes a file name may have."""
    from nbrnn._atomic import atomic_output

    src = tmp_path / "in.wav"
    sf.write(src, _signal(500, 1), 44100)
    render(src, tmp_path / name, nbrnn.load(MODEL), progress=False)
    assert sf.info(tmp_path / name).frames == 500 and _leftovers(tmp_path) == [name]
    (tmp_path / name).unlink()
    with pytest.raises(KeyboardInterrupt), atomic_output(str(tmp_path / name)) as tmp:
        base = os.path.basename(tmp)
        assert os.path.dirname(tmp) == str(tmp_path) and base.startswith("." + name[:100]) and base.endswith(".partial")
        assert len(base.encode("utf-8")) <= 255  # strict UTF-8: no character cut in half
        raise KeyboardInterrupt
    assert _leftovers(tmp_path) == []


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "in.wav")


def test_failure_midway_leaves_no_file(tmp_path):
    x = _signal(5000, 1)
    x[4000] = np.nan
    src = tmp_path / "in.wav"
    sf.write(src, x, 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.AudioError, match="NaN/Inf sample at frame 4000"):
        render(src, tmp_path / "out.wav", nbrnn.load(MODEL), block_size=1000, progress=False)
    assert _leftovers(tmp_path) == []


def _full_disk(monkeypatch, free, fail_at):
    """libsndfile fails with its "System error." at ``fail_at`` ('open' or 'write') on outputs (not on the format
    probe), and the file system reports ``free`` bytes."""
    import collections
    import shutil

    def check(name):
        if "probe" not in os.path.basename(os.fsdecode(name)):
            raise sf.LibsndfileError(2, f"Error {'opening' if fail_at == 'open' else 'writing'} {name!r}: ")

    class Full(sf.SoundFile):
        def __init__(self, file, mode="r", *args, **kwargs):
            if mode == "w" and fail_at == "open":
                check(file)
            super().__init__(file, mode, *args, **kwargs)

        def write(self, data):
            if fail_at == "write":
                check(self.name)
            return super().write(data)

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(sf, "SoundFile", Full)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 40, (1 << 40) - free, free))


@pytest.mark.parametrize("fail_at", ["open", "write"])
def test_a_full_disk_is_named_as_such_and_nothing_else_is(tmp_path, monkeypatch, fail_at):
    """A full disk when the output was opened was blamed on the format ("cannot write ... as WAV PCM_16; try
    another subtype"); and after a WAV streamed through a pipe (header: 0xFFFFFFFF bytes), any write error was
    called a full disk, measured against the header's length."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(3000, 2), 44100)
    model = nbrnn.load(MODEL)
    _full_disk(monkeypatch, 5000, fail_at)
    with pytest.raises(nbrnn.OutputError) as err:
        render(src, tmp_path / "out.wav", model, block_size=1000, progress=False)
    assert re.fullmatch(r"cannot write '.*out\.wav': System error\. \(the disk is full: the file system of '.*' "
                        r"has 5000 bytes free( once the \d+ bytes written so far are removed)?\)", str(err.value))
    _full_disk(monkeypatch, 1 << 30, fail_at)  # room enough: something else went wrong
    with pytest.raises(nbrnn.OutputError) as err:
        render(src, tmp_path / "out.wav", model, block_size=1000, progress=False)
    assert "disk is full" not in str(err.value) and "System error" in str(err.value)
    data = src.read_bytes()  # the same through a pipe, as sox writes it: the header declares 2**31 - 1 frames
    start = data.index(b"data") + 8
    read, write = os.pipe()
    with os.fdopen(write, "wb") as pipe:
        pipe.write(data[:4] + b"\xff" * 4 + data[8:start - 4] + b"\xff" * 4 + data[start:])
    with os.fdopen(read, "rb"), pytest.raises(nbrnn.OutputError) as err:
        render(f"/dev/fd/{read}", tmp_path / "out.wav", model, block_size=1000, progress=False)
    assert "disk is full" not in str(err.value) and "System error" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_interrupt_leaves_no_file(tmp_path, monkeypatch):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(5000, 1), 44100)
    from nbrnn import engine

    calls = {"n": 0}
    original = engine.Stream.feed

    def feed(self, inp):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, inp)

    monkeypatch.setattr(engine.Stream, "feed", feed)
    with pytest.raises(KeyboardInterrupt):
        render(src, tmp_path / "out.wav", nbrnn.load(MODEL), block_size=1000, progress=False)
    assert _leftovers(tmp_path) == []


def test_conditioning_by_name_and_control_file(tmp_path):
    model = nbrnn.load(COND_MODEL)
    x = _signal(2000, 2)
    src = tmp_path / "in.wav"
    sf.write(src, x, 44100, subtype="DOUBLE")
    render(src, tmp_path / "a.wav", model, cond={"cond1": 0.25}, dtype="float64", subtype="DOUBLE", progress=False)
    y, _ = sf.read(tmp_path / "a.wav", always_2d=True)
    assert np.array_equal(y, model.process(x, 44100, cond={"cond1": 0.25}))
    lfo = 0.5 + 0.5 * np.sin(np.arange(2000) * 0.003)
    sf.write(tmp_path / "ctrl.wav", lfo, 44100, subtype="DOUBLE")
    render(src, tmp_path / "b.wav", model, control_path=tmp_path / "ctrl.wav", dtype="float64", subtype="DOUBLE",
           block_size=300, progress=False)
    y, _ = sf.read(tmp_path / "b.wav", always_2d=True)
    assert np.array_equal(y, model.process(x, 44100, cond=[lfo]))
    with pytest.raises(nbrnn.ArgumentError, match="conditioning input.*--cond cond1=0.5"):
        render(src, tmp_path / "c.wav", model, progress=False)
    for value in (1j, "0.5", [0.1, 0.2], float("nan")):  # complex and text were raw TypeError / ValueError
        with pytest.raises(nbrnn.ArgumentError, match="one finite real number"):
            render(src, tmp_path / "c.wav", model, cond=[value], progress=False)
    with pytest.raises(nbrnn.ArgumentError, match=r"one finite real number.*not 10{40,}\.\.\.$"):  # not 401 digits
        render(src, tmp_path / "c.wav", model, cond=[10 ** 400], progress=False)
    assert not (tmp_path / "c.wav").exists()
    render(src, tmp_path / "d.wav", model, cond=[2 ** 70], dtype="float64", subtype="DOUBLE", progress=False)  # was
    y, _ = sf.read(tmp_path / "d.wav", always_2d=True)  # refused: NumPy holds an integer beyond 64 bits as an object
    assert np.array_equal(y, model.process(x, 44100, cond=[2.0 ** 70]))


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nbrnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=str(GOLDEN.parents[2])), timeout=300)


def test_cli_render_info_and_errors(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(1000, 2), 48000)
    res = _cli("render", src, tmp_path / "out.flac", "--model", MODEL, "--method", "allpass", "--subtype", "PCM_24")
    assert res.returncode == 0, res.stderr
    assert sf.info(tmp_path / "out.flac").channels == 2
    res = _cli("render", src, tmp_path / "out.flac", "--model", MODEL)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "exists" in res.stderr
    res = _cli("render", src, tmp_path / "x.wav", "--model", tmp_path / "nope.json")
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = _cli("render", src, tmp_path / "x.wav", "--model", MODEL, "--method", "linear", "--trained-rate", "96000")
    assert res.returncode == 1 and "R = sample_rate/trained_rate >= 1" in res.stderr
    res = _cli("info", MODEL)
    assert res.returncode == 0 and "LSTM 1->8" in res.stdout and "44100 Hz (file)" in res.stdout
    res = _cli("render", "--help")
    assert res.returncode == 0 and "(default: lagrange)" in res.stdout and "(default: float32)" in res.stdout
    assert not (tmp_path / "x.wav").exists()
    odd = tmp_path / "two\nlines\x1b[2J é.wav"  # a path with a line break and a terminal escape stays one line
    for args in (("render", odd, tmp_path / "x.wav"), ("render", src, tmp_path / "out.flac", "--method", "x\ny")):
        res = _cli(*args)
        assert res.returncode in (1, 2) and res.stderr.count("\n") == 1 and "\x1b" not in res.stderr, res.stderr
    assert "two\\nlines\\x1b[2J é.wav' does not exist" in _cli("render", odd, tmp_path / "x.wav").stderr


def _files_read(folder):
    """A conditioned model file, an input and a control file in ``folder``: (model, their paths, their bytes)."""
    model_path = folder / "model.json"
    model_path.write_bytes(COND_MODEL.read_bytes())
    src, ctrl = folder / "in.wav", folder / "ctrl.wav"
    sf.write(src, _signal(300, 1), 44100)
    sf.write(ctrl, np.full(300, 0.5), 44100)
    return nbrnn.load(model_path), (src, ctrl, model_path), {p: p.read_bytes() for p in (src, ctrl, model_path)}


def test_never_overwrites_a_file_it_reads(tmp_path):
    model, (src, ctrl, model_path), before = _files_read(tmp_path)
    with pytest.raises(nbrnn.OutputError, match="is the control file"):
        render(src, ctrl, model, control_path=ctrl, overwrite=True, progress=False)
    with pytest.raises(nbrnn.OutputError, match="is the model file"):
        render(src, tmp_path / "." / "model.json", model, cond=[0.5], overwrite=True, progress=False)
    assert {p: p.read_bytes() for p in before} == before
    model.save(tmp_path / "m.npz")
    saved = (tmp_path / "m.npz").read_bytes()
    with pytest.raises(nbrnn.OutputError, match="is the model file"):  # nbrnn export m.npz m.npz --overwrite
        nbrnn.load(tmp_path / "m.npz").save(tmp_path / "m.npz", overwrite=True)
    assert (tmp_path / "m.npz").read_bytes() == saved


def test_a_path_through_a_link_and_dotdot_is_resolved_as_the_system_does(tmp_path):
    """'link/../in.wav' is the link target's parent's in.wav, not the current folder's: the output check follows
    the system, so the input, control and model files stay protected, and the output lands where the name says."""
    real, work = tmp_path / "real", tmp_path / "work"
    (real / "sub").mkdir(parents=True)
    work.mkdir()
    (work / "lnk").symlink_to(real / "sub")
    model, (src, ctrl, model_path), before = _files_read(real)
    via = work / "lnk" / ".."
    with pytest.raises(nbrnn.OutputError, match="is the input file"):
        render(via / "in.wav", src, model, cond=[0.5], overwrite=True, progress=False)
    with pytest.raises(nbrnn.OutputError, match="is the control file"):
        render(src, ctrl, model, control_path=via / "ctrl.wav", overwrite=True, progress=False)
    for out, what in [(src, "input file"), (ctrl, "control file"), (model_path, "model file")]:
        with pytest.raises(nbrnn.OutputError, match=f"is the {what}"):
            render(src, via / out.name, model, overwrite=True, progress=False,
                   **({"cond": [0.5]} if what != "control file" else {"control_path": ctrl}))
    model.save(real / "m.npz")
    with pytest.raises(nbrnn.OutputError, match="is the model file"):
        nbrnn.load(via / "m.npz").save(real / "m.npz", overwrite=True)
    assert {p: p.read_bytes() for p in before} == before
    render(src, via / "new.wav", model, cond=[0.5], progress=False)
    assert (real / "new.wav").exists() and not (work / "new.wav").exists()


@pytest.mark.parametrize("out,subtype", [("u.wav", "ULAW"), ("a.wav", "ALAW"), ("p.wav", "PCM_16")])
def test_fixed_point_outputs_clip_and_never_wrap(tmp_path, out, subtype):
    """Some encoders wrap samples beyond full scale to the other sign (1.5 as +0.17 in ULAW): the render clips
    them first, as its warning says."""
    src = tmp_path / "in.wav"
    x = np.sin(np.arange(4800) / 7) * np.linspace(0, 2, 4800)
    sf.write(src, x, 48000, subtype="FLOAT")
    gain = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),)))
    info = render(src, tmp_path / out, gain, subtype=subtype, progress=False)
    y, _ = sf.read(tmp_path / out)
    big = np.abs(x) > 1
    assert info["clipped"] == int(np.count_nonzero(np.abs(x.astype(np.float32)) > 1.0)) > 0
    assert np.all(np.sign(y[big]) == np.sign(x[big])) and np.all(np.abs(y[big]) > 0.9)


@pytest.mark.parametrize("out,subtype,match", [
    ("a.wav", "IMA_ADPCM", r"WAV IMA_ADPCM holds 4089 frames for 1800 written \(the codec pads"),
    ("g.wav", "GSM610", r"WAV GSM610 holds \d+ frames for 1800 written"),
    # found by reading back loud noise, not 1000 frames of silence (libsndfile 1.2.2):
    ("p.paf", "PCM_24", "writes a full-scale sample as PAF PCM_24 with the wrong sign"),  # from float32
    ("s.sds", None, "writes a full-scale sample as SDS PCM_16 with the wrong sign"),  # and drops a last packet
    ("c.caf", "ALAC_32", "(writes a full-scale sample as CAF ALAC_32 with the wrong sign|CAF ALAC_32 encoder does "
                         "not write back what it is given)"),  # noise comes back up to 1 off
    ("d.aiff", "DWVW_16", r"libsndfile writes AIFF DWVW_16 files it cannot read back \(Internal psf_fseek"),
    ("o.raw", None, "RAW FLOAT file that it cannot read back"),
    ("o.htk", None, r"HTK PCM_16 cannot hold 1 channel\(s\) at 48000 Hz"),
])
def test_outputs_that_cannot_hold_the_input_are_refused_before_the_render(tmp_path, out, subtype, match,
                                                                           monkeypatch):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(4800, 1), 48000, subtype="FLOAT")
    model = nbrnn.load(MODEL)
    fed = []
    monkeypatch.setattr(nbrnn.engine.Stream, "feed", lambda self, inp: fed.append(inp))
    with pytest.raises(nbrnn.OutputError, match=match):
        render(src, tmp_path / out, model, subtype=subtype, progress=False)
    assert fed == [] and _leftovers(tmp_path) == []


def test_control_file_errors_name_the_file_and_the_frame(tmp_path):
    model = nbrnn.load(COND_MODEL)
    src, ctrl = tmp_path / "in.wav", tmp_path / "ctl.wav"
    sf.write(src, _signal(3000, 1), 44100)
    c = np.full(3000, 0.5)
    c[2100] = np.nan
    sf.write(ctrl, c, 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.AudioError, match=r"control file '.*ctl.wav' holds a NaN/Inf value at frame 2100, "
                                               r"channel 0"):
        render(src, tmp_path / "o.wav", model, control_path=ctrl, block_size=1000, progress=False)


def test_many_channels_are_read_in_shorter_blocks(tmp_path, monkeypatch):
    from nbrnn import render as render_module

    src = tmp_path / "in.wav"
    sf.write(src, _signal(700, 64), 44100, subtype="FLOAT")
    monkeypatch.setattr(render_module, "MAX_BLOCK_VALUES", 64 * 100)
    sizes = []
    real = render_module._read
    monkeypatch.setattr(render_module, "_read", lambda f, n, path: sizes.append(n) or real(f, n, path))
    model = nbrnn.load(MODEL)
    render(src, tmp_path / "o.wav", model, progress=False)
    assert set(sizes) == {100}
    y, _ = sf.read(tmp_path / "o.wav", always_2d=True, dtype="float32")
    x, _ = sf.read(src, always_2d=True)
    assert np.array_equal(y, model.process(x, 44100, dtype="float32"))


def test_an_error_ends_the_progress_line_first(tmp_path):
    import io

    from nbrnn.render import Progress

    screen = io.StringIO()
    meter = Progress(10.0, stream=screen, enabled=True)
    meter.update(1.0)
    meter.end()
    meter.end()
    assert screen.getvalue().endswith("real time\n") and screen.getvalue().count("\n") == 1


def test_what_libsndfile_cannot_write_is_one_error_and_no_file(tmp_path):
    model = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.0]),)))
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros((50, 256)), 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match="at most 255 channels"):  # the Vorbis encoder would crash
        render(src, tmp_path / "out.ogg", model, progress=False)
    sf.write(src, np.zeros((50, 9)), 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match="FLAC holds at most 8 channels, the input has 9"):
        render(src, tmp_path / "out.flac", model, progress=False)  # libsndfile: "Format not recognised"
    with pytest.raises(nbrnn.OutputError, match="MP3 holds at most 2 channels, the input has 9"):
        render(src, tmp_path / "out.mp3", model, progress=False)
    with pytest.raises(nbrnn.AudioError, match="input file '.*nothing.wav' does not exist"):
        render(tmp_path / "nothing.wav", tmp_path / "out.wav", model, progress=False)  # libsndfile: "System error"
    with pytest.raises(nbrnn.AudioError, match="is a folder, not an audio file"):
        render(tmp_path, tmp_path / "out.wav", model, progress=False)
    with pytest.raises(nbrnn.AudioError, match="control file '.*knobs.wav' does not exist"):
        render(src, tmp_path / "out.wav", nbrnn.load(COND_MODEL), control_path=tmp_path / "knobs.wav",
               progress=False)
    with pytest.raises(nbrnn.OutputError, match=r"does not write Sound Designer II \(.sd2\) files"):
        render(src, tmp_path / "out.sd2", model, progress=False)  # header in ._<name>: a stray file, unreadable audio
    assert _leftovers(tmp_path) == []


def test_rates_and_channels_the_encoders_cannot_take_are_refused(tmp_path):
    """Vorbis above 200 kHz crashed the process inside libsndfile (leaving the temporary file); Opus takes five rates
    and at most 255 channels. Each is one error before anything is written."""
    model = tmp_path / "half.npz"
    nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.0]),))).save(model)
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(480), 200001, subtype="FLOAT")
    res = _cli("render", src, tmp_path / "out.ogg", "--model", model)  # a crash would kill pytest: a child process
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res
    assert "Ogg Vorbis holds sample rates up to 200000 Hz, the input has 200001 Hz" in res.stderr
    assert _leftovers(tmp_path) == ["half.npz"]
    sf.write(src, np.zeros(480), 200000, subtype="FLOAT")  # the highest rate Vorbis takes
    res = _cli("render", src, tmp_path / "out.ogg", "--model", model, "-q")
    assert res.returncode == 0 and sf.info(tmp_path / "out.ogg").samplerate == 200000, res.stderr
    (tmp_path / "out.ogg").unlink()
    half = nbrnn.load(model)
    sf.write(src, np.zeros(480), 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match="Ogg Opus holds only the sample rates 8000, 12000, 16000, 24000, "
                                                "48000 Hz, the input has 44100 Hz"):
        render(src, tmp_path / "out.ogg", half, subtype="OPUS", progress=False)
    sf.write(src, np.zeros((50, 256)), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match="Ogg Opus holds at most 255 channels, the input has 256"):
        render(src, tmp_path / "out.ogg", half, subtype="OPUS", progress=False)
    sf.write(src, np.zeros((480, 2)), 48000, subtype="FLOAT")
    render(src, tmp_path / "out.ogg", half, subtype="OPUS", progress=False)
    assert sf.info(tmp_path / "out.ogg").subtype == "OPUS"
    # libFLAC opens at 96001 Hz and fails at the first write (above 65535 Hz it takes rates in 10 Hz steps): the
    # probe's write ended in soundfile's LibsndfileError from deep inside
    sf.write(src, np.zeros(480), 96001, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match=r"cannot write 1 channel\(s\) at 96001 Hz as FLAC PCM_16 .*; try .wav"):
        render(src, tmp_path / "out.flac", half, progress=False)
    assert _leftovers(tmp_path) == ["half.npz", "out.ogg"]


def test_cli_errors_name_the_cli_arguments(tmp_path):
    model = tmp_path / "half.npz"
    nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.0]),))).save(model)
    sf.write(tmp_path / "in.wav", np.zeros(480), 48000, subtype="FLOAT")
    res = _cli("render", tmp_path / "in.wav", tmp_path / "out.wav", "--model", "")  # rendered with the embedded one
    assert res.returncode == 1 and "model file '' does not exist" in res.stderr, res.stderr
    res = _cli("render", tmp_path / "in.wav", tmp_path / "out.wav", "--model", model, "--block-size", "0")
    assert res.returncode == 1 and "(--block-size) must be an integer from 1" in res.stderr, res.stderr
    res = _cli("export", model, tmp_path / "half.json")
    assert res.returncode == 1 and "'OUT' must end in .npz" in res.stderr, res.stderr
    assert _leftovers(tmp_path) == ["half.npz"]


def test_an_input_shorter_than_its_header_is_rendered_and_reported(tmp_path):
    """A WAV streamed through a pipe (its sizes 0xFFFFFFFF, as sox and ffmpeg write it) was run to its end, then
    refused with a message about the output codec padding blocks."""
    x = _signal(3000, 1)
    sf.write(tmp_path / "in.wav", x, 48000, subtype="PCM_16")
    data = (tmp_path / "in.wav").read_bytes()
    start = data.index(b"data") + 8
    streamed = data[:4] + b"\xff" * 4 + data[8:start - 4] + b"\xff" * 4 + data[start:]
    res = subprocess.run([sys.executable, "-m", "nbrnn", "render", "/dev/stdin", str(tmp_path / "out.wav"), "--model",
                          str(MODEL)], input=streamed, capture_output=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(GOLDEN.parents[2])))
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert "the input ended after 3000 frames, although its header declares 2147483647" in err, err
    y, _ = sf.read(tmp_path / "out.wav")
    expected = nbrnn.load(MODEL).process(sf.read(tmp_path / "in.wav")[0], 48000, dtype="float32")
    np.testing.assert_array_equal(y, expected.astype(np.float32))


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="this libsndfile has no MP3")
def test_a_control_file_shorter_than_its_header_is_an_audio_error(tmp_path):
    """A control file cut short (an MP3 whose header counts the frames it lost) ended in a numpy broadcast error."""
    sf.write(tmp_path / "knob.mp3", np.full(144000, 0.5), 48000)
    (tmp_path / "cut.mp3").write_bytes((tmp_path / "knob.mp3").read_bytes()[:6000])
    declared = sf.info(tmp_path / "cut.mp3").frames
    sf.write(tmp_path / "in.wav", _signal(declared, 1), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.AudioError, match=rf"control file '.*cut.mp3' ends after \d+ frames, before the "
                                               rf"input \(its header declares {declared}\)"):
        render(tmp_path / "in.wav", tmp_path / "out.wav", nbrnn.load(COND_MODEL), control_path=tmp_path / "cut.mp3",
               progress=False)
    assert not (tmp_path / "out.wav").exists()


def test_a_model_with_several_outputs_is_refused(tmp_path):
    """render wrote output 0 of a two-output model and dropped the other without a word."""
    two = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5], [2.0]], [0.0, 0.0]),)))
    sf.write(tmp_path / "in.wav", np.zeros((480, 2)), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.ArgumentError, match="the model has 2 outputs; render writes one output per channel"):
        render(tmp_path / "in.wav", tmp_path / "out.wav", two, progress=False)
    assert _leftovers(tmp_path) == []


def test_opus_extension_writes_ogg_opus(tmp_path):
    """.opus was refused as an unknown extension; it is Ogg Opus (with Opus's rates), and Opus only."""
    model = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.0]),)))
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(480), 44100, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match="Ogg Opus holds only the sample rates"):
        render(src, tmp_path / "out.opus", model, progress=False)
    sf.write(src, 0.5 * np.sin(np.arange(4800) * 0.05), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.ArgumentError, match="'vorbis' is not valid for .opus files"):
        render(src, tmp_path / "out.opus", model, subtype="vorbis", progress=False)
    assert _leftovers(tmp_path) == []
    render(src, tmp_path / "out.opus", model, progress=False)
    info = sf.info(tmp_path / "out.opus")
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 48000)
    assert _leftovers(tmp_path) == ["out.opus"]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGQUIT"])  # SIGQUIT: Ctrl-\\
def test_cli_stopped_by_a_signal_leaves_no_file(tmp_path, name):
    import signal
    import time

    src = tmp_path / "in.wav"
    sf.write(src, _signal(48000 * 20, 1), 48000, subtype="FLOAT")
    # tiny blocks keep the render going for seconds
    proc = subprocess.Popen([sys.executable, "-m", "nbrnn", "render", str(src), str(tmp_path / "out.wav"), "-q",
                             "--block-size", "16"], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(GOLDEN.parents[2])))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
        if partial and partial[0].stat().st_size > 100_000:  # compiled and writing
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the render ended before it could be stopped"
    signum = getattr(signal, name)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signum and name in err and "Traceback" not in err
    assert _leftovers(tmp_path) == []


def test_cli_options_are_checked_not_ignored(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(400, 1), 48000)
    cases = [
        (["--cond", "drive=0.5"], "no conditioning inputs"),
        (["--model", COND_MODEL, "--cond", "cond1=0.5", "--control", src], "not both"),
        (["--model", COND_MODEL, "--cond", "cond1=0.5", "--cond", "cond1=0.7"], "given twice"),
        (["--model", COND_MODEL, "--cond", "1=0.5", "--cond", "cond1=0.7"], "gives 'cond1' twice"),
        (["--model", COND_MODEL, "--cond", "\u00b2=0.5"], "names '\u00b2', which is not one of cond1"),
        (["--method", "allpass", "--kernel", "1,2"], "--kernel applies to --method fir"),
        (["--method", "fir"], "method 'fir' needs Argument 'kernel': the taps"),
        (["--method", "lagrange", "--resampler", "fft"], "--resampler applies to --method resample"),
        (["--method", "allpass", "--placement", "centred"], "--placement applies to --method lagrange, not"),
        (["--method", "lagrange", "--inner", "allpass"], "--inner applies to --method oversample"),
        (["--method", "oversample", "--inner", "allpass", "--inner-order", "3"], "'inner_order' applies to inner"),
        (["--trained-rate", "1e300"], "trained_rate' must be from 1 Hz to 100 MHz"),
        (["--prewarm"], "prewarm.*NAM"),
        (["--method", "wobble"], "invalid choice"),
    ]
    for extra, match in cases:
        res = _cli("render", src, tmp_path / "o.wav", *extra)
        assert res.returncode != 0 and res.stderr.count("\n") == 1, (extra, res.stderr)
        assert re.search(match, res.stderr) and "Traceback" not in res.stderr, (extra, res.stderr)
    res = _cli("render", src, tmp_path / "o.wav", "--method", "cubic", "-q")
    assert res.returncode == 0, res.stderr
    res = _cli("render", src, tmp_path / "o.wav", "--method", "oversample", "--inner", "allpass", "--factor", "2",
               "--trained-rate", "96000", "--overwrite", "-q")
    assert res.returncode == 0, res.stderr
    res = _cli("info", "--skip", "0")
    assert res.returncode == 0 and "skip:         0" in res.stdout, res.stdout
    assert _leftovers(tmp_path) == ["o.wav"]


def test_demo_checks_its_length_before_writing(tmp_path):
    from nbrnn.demo import run_demo

    for seconds in (1e-9, 0.1, 1e12, float("nan"), np.float32("nan"), True, "2"):
        with pytest.raises(nbrnn.ArgumentError, match="seconds"):
            run_demo(str(tmp_path / "demo"), seconds=seconds)
    assert not (tmp_path / "demo").exists()
    (tmp_path / "file").write_bytes(b"")
    for seconds in (np.float32(0.4), np.int64(1)):  # NumPy's numbers were refused; here the folder fails next
        with pytest.raises(nbrnn.OutputError, match="cannot create the demo folder"):
            run_demo(str(tmp_path / "file" / "demo"), seconds=seconds)


@pytest.mark.parametrize("empty", [{}, [], ()])
def test_empty_conditioning_is_no_conditioning(tmp_path, empty):
    """An empty ``cond`` means no values, as in Model.inputs: accepted for a model without knobs, and a model
    with knobs asks for them."""
    x = _signal(500, 1)[:, 0]
    src = tmp_path / "in.wav"
    sf.write(src, x, 48000, subtype="DOUBLE")
    model = nbrnn.load(MODEL)
    render(src, tmp_path / "out.wav", model, cond=empty, progress=False, dtype="float64", subtype="DOUBLE")
    y, _ = sf.read(tmp_path / "out.wav")
    np.testing.assert_array_equal(y, model.process(x, 48000, cond=empty))
    with pytest.raises(nbrnn.ArgumentError, match="has conditioning input"):
        render(src, tmp_path / "knobs.wav", nbrnn.load(COND_MODEL), cond=empty, progress=False)
    assert not (tmp_path / "knobs.wav").exists()


def test_samples_beyond_float32_name_the_frame_and_the_remedy(tmp_path):
    src, ctrl = tmp_path / "in.wav", tmp_path / "ctrl.wav"
    sf.write(src, np.r_[0.0, 0.5, 1e300, 0.1], 48000, subtype="DOUBLE")
    sf.write(ctrl, np.r_[0.0, 0.5, -1e300, 0.1], 48000, subtype="DOUBLE")
    with np.errstate(over="raise"):
        with pytest.raises(nbrnn.AudioError, match=r"input holds a sample of 1e\+300 at frame 2, channel 0, beyond "
                                                   r"float32's range .*--dtype float64"):
            render(src, tmp_path / "o.wav", nbrnn.load(MODEL), block_size=2, progress=False)
        sf.write(src, np.zeros(4), 48000, subtype="DOUBLE")
        with pytest.raises(nbrnn.AudioError,
                           match="control file '.*' holds a value of -1e\\+300 at frame 2, channel 0, beyond float32"):
            render(src, tmp_path / "o.wav", nbrnn.load(COND_MODEL), control_path=ctrl, block_size=2, progress=False)
        knob = nbrnn.load(COND_MODEL).conditioning_names[0]
        with pytest.raises(nbrnn.ArgumentError, match=rf"conditioning value for '{knob}' is -1e\+300, beyond "
                                                      r"float32's range .*--dtype float64"):
            render(src, tmp_path / "o.wav", nbrnn.load(COND_MODEL), cond=[-1e300], progress=False)
    res = _cli("render", tmp_path / "ctrl.wav", tmp_path / "o.wav", "--model", MODEL)
    assert res.returncode == 1 and "input holds a sample of -1e+300 at frame 2" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "o.wav").exists()


def test_render_checks_its_arguments(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(100, 1), 48000)
    model = nbrnn.load(MODEL)
    cases = [((src, tmp_path / "o.wav", str(MODEL)), {}, r"'model' must be an nbrnn Model .*nbrnn.load.*, not str"),
             ((src, tmp_path / "o.wav", model), {"subtype": 16}, "'subtype' must be a soundfile subtype name.*16"),
             ((None, tmp_path / "o.wav", model), {}, "'input_path' must be a file path .*, not NoneType"),
             ((src, b"o.wav", model), {}, "'output_path' must be a file path .*, not bytes"),
             ((src, tmp_path / "o.wav", model), {"control_path": 3}, "'control_path' must be a file path .*, not int")]
    for args, kw, match in cases:
        with pytest.raises(nbrnn.ArgumentError, match=match):
            render(*args, progress=False, **kw)
    assert _leftovers(tmp_path) == []


def test_file_names_that_are_not_utf8(tmp_path):
    """Any name the file system holds: soundfile would encode str names as strict UTF-8 and fail."""
    folder = os.fsencode(tmp_path)
    src, out = folder + b"/in\xe9.wav", folder + b"/out\xff.wav"
    x = _signal(3000, 1)
    sf.write(src, x, 48000, subtype="FLOAT")
    model = nbrnn.load(MODEL)
    render(os.fsdecode(src), os.fsdecode(out), model, progress=False)
    np.testing.assert_allclose(sf.read(out)[0], model.process(x[:, 0], 48000, dtype="float32"), rtol=0, atol=1e-7)
    res = subprocess.run([sys.executable, "-m", "nbrnn", "render", src, folder + b"/cli\xff.wav", "-q"],
                         capture_output=True, env=dict(os.environ, PYTHONPATH=str(GOLDEN.parents[2])), timeout=300)
    assert res.returncode == 0 and b"Traceback" not in res.stderr and os.path.exists(folder + b"/cli\xff.wav")


def test_an_output_that_appears_while_rendering_is_kept(tmp_path):
    from nbrnn._atomic import atomic_output

    target = tmp_path / "out.wav"
    with pytest.raises(nbrnn.OutputError, match="appeared while it was being written.*it is kept"):
        with atomic_output(str(target), overwrite=False) as tmp:
            open(tmp, "w").write("new")
            target.write_text("someone else's")  # another job finished first
    assert target.read_text() == "someone else's" and _leftovers(tmp_path) == ["out.wav"]
    with atomic_output(str(target), overwrite=True) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == ["out.wav"]


def test_float_output_beyond_float32_is_refused_not_written_as_inf(tmp_path):
    x = _signal(3000, 1)
    x[1234] = 1e300
    src = tmp_path / "in.wav"
    sf.write(src, x, 48000, subtype="DOUBLE")
    model = nbrnn.load(MODEL)
    with pytest.raises(nbrnn.OutputError, match=r"frame 1234 is beyond what FLOAT holds.*--subtype DOUBLE"):
        render(src, tmp_path / "out.wav", model, dtype="float64", progress=False)
    assert _leftovers(tmp_path) == []
    info = render(src, tmp_path / "out.wav", model, dtype="float64", subtype="DOUBLE", progress=False)
    assert info["subtype"] == "DOUBLE" and sf.read(tmp_path / "out.wav")[0][1234] > 1e299


@pytest.mark.parametrize("frames,out,match", [
    (3000, "out.wve", r"WVE ALAW cannot hold 1 channel\(s\) at 48000 Hz \(the file written says 1 at 8000 Hz\)"),
    (0, "out.flac", "wrote a FLAC PCM_16 file from an input without samples that it cannot read back"),
])
def test_a_file_that_does_not_read_back_as_written_is_refused(tmp_path, frames, out, match):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(frames, 1) if frames else np.zeros((0, 1)), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match=match):
        render(src, tmp_path / out, nbrnn.load(MODEL), progress=False)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("out,match", [("new.wav/", "ends with a slash"), ("noext", "has no extension"),
                                       ("in.wav/x.wav", "output folder '.*in.wav' is not a folder")])
def test_output_names_that_name_no_file(tmp_path, out, match):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(100, 1), 48000, subtype="FLOAT")
    with pytest.raises(nbrnn.OutputError, match=match):
        render(src, str(tmp_path) + "/" + out, nbrnn.load(MODEL), progress=False)
    assert _leftovers(tmp_path) == []


def test_cli_options_are_spelled_out_and_given_once(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(100, 1), 48000, subtype="FLOAT")
    for args, match in [(["--ov"], r"unrecognized arguments: --ov \(see nbrnn render --help\)"),
                        (["--method", "linear", "--method", "allpass"], "--method was given twice"),
                        (["--method", "fir", "--kernel", "0.5,,0.5"], "--kernel must be comma-separated numbers"),
                        (["--method", "fir", "--kernel", "nan"], "kernel' must hold finite numbers, not \\[nan\\]"),
                        (["--overwrite", "--overwrite"], "--overwrite was given twice"),
                        (["-q", "--quiet"], "--quiet/-q was given twice")]:
        res = _cli("render", src, tmp_path / "out.wav", *args)
        assert res.returncode != 0 and re.search(match, res.stderr) and len(res.stderr.strip().splitlines()) == 1, \
            (args, res.stderr)
    res = _cli("info", MODEL, "extra")
    assert "unrecognized arguments: extra (see nbrnn info --help)" in res.stderr
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("args,match", [
    (["--out", "in.wav"], "'--out' must be a folder, not the file 'in.wav'"),
    (["--only", ""], "'--only' must name at least one figure"),
    (["--only", "article", "--models", "."], "'--models' applies to the figures dafx24, icassp25, sweep, not to "
                                             "article"),
    (["--workers", "abc"], "argument --workers: invalid int value: 'abc' \\(see nbrnn figures --help\\)"),
    (["--scheduler", "bogus"], "'scheduler' \\(--scheduler\\) must be a Dask scheduler address such as "
                               "tcp://host:8786, not 'bogus'"),
    (["--quick", "--quick"], "--quick was given twice"),
])
def test_figures_arguments_are_checked_before_any_work(tmp_path, args, match):
    (tmp_path / "in.wav").write_bytes(b"x")
    res = _cli("figures", *args, cwd=tmp_path)
    assert res.returncode != 0 and re.search(match, res.stderr) and len(res.stderr.strip().splitlines()) == 1, \
        res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.parametrize("args,kw", [
    (["--method", "lagrange", "--order", "5", "--placement", "centred"], {"order": 5, "placement": "centred"}),
    (["--output-convention", "delayed"], {"output": "delayed"}),
    (["--dtype", "float64", "--subtype", "DOUBLE"], {"dtype": "float64"}),
    (["--activations", "fast"], {"activations": "fast"}),
])
def test_cli_method_options_reach_the_engine(tmp_path, args, kw):
    """Each option changes the output as the same option of Model.process does (float32 unless --dtype)."""
    model = nbrnn.load(MODEL)
    x = _signal(4000, 1)[:, 0]
    src = tmp_path / "in.wav"
    sf.write(src, x, 97000, subtype="DOUBLE")  # R = 2.2: the options change the plan
    res = _cli("render", src, tmp_path / "out.wav", "-q", "--model", MODEL, *args)
    assert res.returncode == 0, res.stderr
    y = sf.read(tmp_path / "out.wav")[0]
    kw = {"dtype": "float32", **kw}
    np.testing.assert_array_equal(y, model.process(x, 97000, **kw).astype(y.dtype))
    assert np.max(np.abs(y - model.process(x, 97000, dtype="float32"))) > 1e-9  # unlike the CLI's defaults


def test_help_and_argument_errors_do_not_wait_for_numba():
    """`nbrnn --help` took 0.7 s, most of it importing Numba for no kernel; a Ctrl-C in that time printed a
    traceback, since the import ran before the command's error handling."""
    out = run_fresh("import sys\n"
                    "from nbrnn import cli\n"
                    "for argv in (['--help'], ['render'], ['info', '--frobnicate']):\n"
                    "    try:\n"
                    "        cli.main(argv)\n"
                    "    except SystemExit:\n"
                    "        pass\n"
                    "print('numba' in sys.modules)\n"
                    "import nbrnn\n"
                    "print(nbrnn.load_default().trained_rate, 'numba' in sys.modules)\n"
                    "print(nbrnn.engine.CHUNK_BYTES > 0, callable(nbrnn.reference.run), 'stability' in dir(nbrnn))\n")
    assert out.splitlines()[-3:] == ["False", "48000.0 True", "True True True"], out[-500:]


@pytest.mark.parametrize("garble,match", [
    (lambda y: y * np.where(np.arange(len(y)) == 0, -1.0, 1.0)[:, None], "full-scale sample as WAV PCM_24 with the "
                                                                         "wrong sign"),
    (lambda y: y + np.where(np.arange(len(y)) == 700, 0.1, 0.0)[:, None], r"WAV PCM_24 encoder does not write back "
                                                                         r"what it is given .* read back 0.1 off at "
                                                                         r"frame 700"),
    (lambda y: y + 2.0 ** -21, "does not write back"),  # two steps of 24 bits are allowed, not four
])
def test_the_probe_reads_back_what_it_wrote(tmp_path, monkeypatch, garble, match):
    """The probe read back the header only: an encoder that garbled loud audio or wrapped +1.0 wrote a file."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(4800, 2), 48000, subtype="FLOAT")
    real = sf.read
    monkeypatch.setattr(sf, "read", lambda *a, **k: (lambda y, rate: (garble(y), rate))(*real(*a, **k)))
    with pytest.raises(nbrnn.OutputError, match=match):
        render(src, tmp_path / "o.wav", nbrnn.load(MODEL), subtype="PCM_24", progress=False)
    assert _leftovers(tmp_path) == []
    monkeypatch.setattr(sf, "read", real)
    render(src, tmp_path / "o.wav", nbrnn.load(MODEL), subtype="PCM_24", progress=False)
    assert _leftovers(tmp_path) == ["o.wav"]


def test_the_probe_is_written_beside_the_output(tmp_path, monkeypatch):
    """It was written into the system's temporary folder: a full /tmp refused a render to a roomy disk."""
    import tempfile

    src = tmp_path / "in.wav"
    sf.write(src, _signal(480, 1), 48000, subtype="FLOAT")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    render(src, tmp_path / "o.wav", nbrnn.load(MODEL), progress=False)
    assert _leftovers(tmp_path) == ["o.wav"]


def test_a_full_disk_midway_reports_the_bytes_that_reached_it(tmp_path, monkeypatch):
    """The message counted the block being written as written (on a 300 KiB file system: "once the 524288
    bytes written so far are removed")."""
    import collections
    import shutil

    src = tmp_path / "in.wav"
    sf.write(src, _signal(5000, 2), 44100)
    sizes = []

    class Full(sf.SoundFile):
        writes = 0

        def write(self, data):
            if "probe" not in os.path.basename(os.fsdecode(self.name)):
                Full.writes += 1
                if Full.writes == 3:
                    sizes.append(os.path.getsize(self.name))
                    raise sf.LibsndfileError(2, f"Error writing {self.name!r}: ")
            return super().write(data)

    monkeypatch.setattr(sf, "SoundFile", Full)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: collections.namedtuple("u", "total used free")(1, 1, 5000))
    with pytest.raises(nbrnn.OutputError, match=r"has 5000 bytes free once the (\d+) bytes written so far") as err:
        render(src, tmp_path / "out.wav", nbrnn.load(MODEL), block_size=1000, progress=False)
    written = int(re.search(r"once the (\d+) bytes", str(err.value)).group(1))
    assert written == sizes[0] and 2 * 1000 * 2 * 4 <= written < 3 * 1000 * 2 * 4  # two blocks of float32 stereo
    assert _leftovers(tmp_path) == []


def test_render_refuses_what_is_no_method_option_and_flags_that_are_not_flags(tmp_path):
    """channels= and sample_rate= reached Model.stream twice (a TypeError from inside); progress='yes' was taken
    for True."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(480, 2), 48000)
    model = nbrnn.load(MODEL)
    for option in ({"channels": 2}, {"sample_rate": 96000}):
        with pytest.raises(nbrnn.ArgumentError, match=f"unknown option\\(s\\) {next(iter(option))}; the method "
                                                      f"options are order, "):
            render(src, tmp_path / "o.wav", model, **option)
    with pytest.raises(nbrnn.ArgumentError, match="Argument 'progress' must be True or False, not 'yes'"):
        render(src, tmp_path / "o.wav", model, progress="yes")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("frames,refused", [(4801, True), (4800, False)])
def test_a_codec_that_pads_is_probed_with_the_input_s_padding(tmp_path, frames, refused):
    """8-bit AIFF pads an odd number of bytes: a probe of 1000 frames passed, and an odd-length render failed
    after all its work; an even-length one renders."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(frames, 1), 48000)
    model = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.0]),)))
    if refused:
        with pytest.raises(nbrnn.OutputError, match=r"AIFF PCM_S8 holds 1802 frames for 1801 written"):
            render(src, tmp_path / "o.aiff", model, subtype="PCM_S8", progress=False)
        assert _leftovers(tmp_path) == []
    else:
        render(src, tmp_path / "o.aiff", model, subtype="PCM_S8", progress=False)
        assert sf.info(tmp_path / "o.aiff").frames == frames
