"""The figures sibling: reproduction of the article's curves and the DAFx-24 ranking, determinism, executors."""

import gzip
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nbrnn
from nbrnn.errors import ArgumentError
from nbrnn.figures import article, circuit_truth, dafx24, icassp25, main, sources, sweep
from nbrnn.figures.evaluation import Outcome, method, pooled, snr_db
from nbrnn.figures.parallel import Progress, run_tasks
from nbrnn.figures.settings import Settings
from nbrnn.figures.tables import fmt, fmt_hz

DEFAULT_MODEL = Path(nbrnn.__file__).parent / "data" / "default_model.json"
needs_default = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the embedded model file is not built yet")


@pytest.fixture
def no_shared(monkeypatch):
    monkeypatch.setenv("NBRNN_SHARED", "/nonexistent/nbrnn-shared")


def settings_for(tmp_path, shared=None, workers=1, scheduler=None):
    return Settings(out=tmp_path, shared=shared, workers=workers, scheduler=scheduler,
                    progress=Progress(enabled=False))


# -- pieces ---------------------------------------------------------------------------------------------------------

def test_import_does_not_load_matplotlib():
    code = ("import sys, nbrnn, nbrnn.figures, nbrnn.figures.sweep, nbrnn.figures.dafx24, nbrnn.figures.article, "
            "nbrnn.figures.icassp25, nbrnn.figures.circuit_truth; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_shared_folder_beside_the_checkout_run_from(tmp_path, monkeypatch):
    """A package installed into a virtual environment (pip install ., the README's first command) has its
    root in site-packages: ../shared beside the checkout it is run from was not found."""
    (tmp_path / "shared" / "models").mkdir(parents=True)
    (tmp_path / "nbrnn").mkdir()
    monkeypatch.delenv("NBRNN_SHARED", raising=False)
    monkeypatch.setattr(sources, "REPO_ROOT", tmp_path / "venv" / "lib" / "site-packages")
    monkeypatch.chdir(tmp_path / "nbrnn")
    assert sources.shared_dir() == tmp_path / "shared"
    monkeypatch.chdir(tmp_path)  # no ../shared here, nor beside the package
    assert sources.shared_dir() is None
    monkeypatch.setenv("NBRNN_SHARED", str(tmp_path / "elsewhere"))  # set: the only place looked at
    monkeypatch.chdir(tmp_path / "nbrnn")
    assert sources.shared_dir() is None


def test_snr_and_pooling():
    assert snr_db(1.0, 0.01) == pytest.approx(20.0)
    assert snr_db(1.0, 0.0) == math.inf and snr_db(1.0, math.inf) == -math.inf
    both = pooled([Outcome(1.0, 0.01, "ok"), Outcome(3.0, 0.03, "ok")])
    assert snr_db(both.signal, both.error) == pytest.approx(20.0) and both.status == "ok"
    assert pooled([Outcome(1.0, 0.01, "ok"), Outcome(1.0, math.inf, "diverged")]).status == "diverged"
    assert pooled([Outcome(1.0, 2.0, "ok")]).status == "negative"  # below 0 dB
    assert pooled([Outcome(1.0, 0.1, "ok"), Outcome(math.nan, math.nan, "n/a")]).status == "n/a"


def test_cells_are_fixed_format():
    assert fmt(-0.0001, 3) == "0.000" and fmt(1 / 3, 2) == "0.33"
    assert (fmt(math.inf), fmt(-math.inf), fmt(math.nan)) == ("inf", "-inf", "nan")
    assert fmt_hz(48000.0) == "48000" and fmt_hz(40516.875) == "40516.875"


@pytest.mark.parametrize("trained_rate", [44100, 48000, 96000])
def test_sweep_rate_grid(trained_rate):
    rates = sweep.rate_grid(trained_rate)
    assert len(rates) >= 60 and rates == sorted(set(rates))
    assert 0.5 * trained_rate - 1 <= rates[0] and rates[-1] <= 4.5 * trained_rate + 1
    assert trained_rate in rates
    for common in (88200, 96000, 176400, 192000):
        assert common in rates or not 0.5 * trained_rate <= common <= 4.5 * trained_rate
    # every ratio is small enough for the polyphase resample baseline, and maps padded inputs to whole samples
    unit = sources.common_multiple(trained_rate, rates)
    assert unit <= 2 * trained_rate
    model = nbrnn.load_default() if DEFAULT_MODEL.is_file() else None
    if model is not None and trained_rate == 48000:
        for rate in rates:
            model.plan(rate, "resample")


def test_ranking_rule():
    ours = {rate: dict(values) for rate, values in dafx24.PUBLISHED_MEANS.items()}
    assert dafx24.ranking_disagreements(ours) == []
    swapped = {rate: dict(values) for rate, values in ours.items()}
    swapped[48000]["stn"], swapped[48000]["linear"] = 32.0, 30.0  # published 29.9 vs 31.7: within 2 dB, allowed
    assert dafx24.ranking_disagreements(swapped) == []
    swapped[96000]["allpass"], swapped[96000]["cubic"] = 57.0, 55.0  # published 54.5 vs 56.7: more than 2 dB apart
    problems = dafx24.ranking_disagreements(swapped)
    assert len(problems) == 1 and "96 kHz" in problems[0] and "cubic" in problems[0]


def test_scheduler_without_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ArgumentError, match=r"scheduler.*pip install"):
        run_tasks(abs, [(1,)], scheduler="tcp://127.0.0.1:1")


@pytest.mark.skipif(not hasattr(__import__("os"), "killpg"), reason="process groups are POSIX")
def test_sigterm_to_the_process_group_stops_the_pool_quietly():
    """SIGTERM to the whole group (a service manager, a closed terminal, `kill -- -PGID`) stops the workers with
    the parent; the pool's thread then printed an InvalidStateError traceback for the tasks the parent had
    cancelled (Python 3.11)."""
    import os
    import signal
    import time

    code = (
        "import signal, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from nbrnn import cli\n"
        "from nbrnn.figures.parallel import Progress, _run_pool\n"
        "if __name__ == '__main__':\n"
        "    signal.signal(signal.SIGTERM, cli._terminate)\n"
        "    print('ready', flush=True)\n"
        "    try:\n"
        "        _run_pool(time.sleep, [(0.5,)] * 40, 2, Progress(False).tracker('t', 40))\n"
        "    except cli._Terminated:\n"
        "        print('stopped', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(2.0)  # the workers are up and busy
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert "stopped" in out and "Traceback" not in err, err[-2000:]


def test_unknown_figure_is_refused():
    with pytest.raises(ArgumentError, match=r"'--only'.*nosuch"):
        main(["--only", "article,nosuch", "--quiet"])


# -- the command ----------------------------------------------------------------------------------------------------

def test_models_the_figures_cannot_run_are_refused_before_any_run(tmp_path):
    """A two-output model stopped the sweep in a worker with a TypeError; a model with knobs stopped it midway
    asking for 'cond'; '--models ""' ran the default set."""
    rng = np.random.default_rng(0)
    rec = nbrnn.Recurrent("gru", rng.uniform(-0.2, 0.2, (12, 1)), rng.uniform(-0.2, 0.2, (12, 4)), np.zeros(12),
                          np.zeros(12))
    folder = tmp_path / "models"
    folder.mkdir()
    nbrnn.Model(nbrnn.Network((rec, nbrnn.Dense(np.ones((2, 4)), [0.0, 0.0])))).save(folder / "two.npz")
    with pytest.raises(ArgumentError, match=r"'models' names '.*two.npz', which has 2 outputs; the figures run "
                                            r"models with one audio input and one output"):
        sources.models_in(folder)
    knob = nbrnn.Recurrent("gru", np.zeros((12, 2)), np.zeros((12, 4)), np.zeros(12), np.zeros(12))
    nbrnn.Model(nbrnn.Network((knob, nbrnn.Dense(np.ones((1, 4)), [0.0])))).save(folder / "knob.npz")
    with pytest.raises(ArgumentError, match=r"'.*knob.npz', which has conditioning input\(s\)"):
        sources.models_in(folder / "knob.npz")
    with pytest.raises(ArgumentError, match="'--models' must be a folder of model files or a model file, not ''"):
        main(["--only", "sweep", "--models", "", "--out", str(tmp_path / "out"), "--quiet"])
    assert not (tmp_path / "out").exists()


def test_without_shared_the_paper_figures_are_skipped(tmp_path, no_shared, capsys):
    assert main(["--only", "dafx24,icassp25", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"skipped dafx24: needs the shared data", err)
    assert re.search(r"skipped icassp25: needs the shared data", err)
    assert list(tmp_path.iterdir()) == []


@needs_default
def test_rerun_writes_identical_bytes(tmp_path, no_shared):
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["--only", "article", "--out", str(out), "--workers", "1", "--quiet"]) == 0
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert sorted(outputs[0]) == ["article_embedded.png", "article_embedded_curves.csv.gz",
                                  "article_embedded_summary.csv"]
    assert outputs[0] == outputs[1]
    summary = outputs[0]["article_embedded_summary.csv"].decode()
    assert "x2.00_uncorrected,2.00,naive,96000," in summary


@needs_default
def test_dask_and_local_pool_write_identical_files(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    models = [sources.embedded_model()]
    settings = settings_for(tmp_path, workers=2)
    files = {}
    local = sweep.compute(models, settings, count=3, seconds=0.05, low=0.75, high=2.5)
    files["local"] = sweep.write(local, tmp_path / "local", "tiny")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        settings.scheduler = cluster.scheduler_address
        remote = sweep.compute(models, settings, count=3, seconds=0.05, low=0.75, high=2.5)
    files["dask"] = sweep.write(remote, tmp_path / "dask", "tiny")
    for a, b in zip(files["local"], files["dask"]):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name
    text = files["local"][0].read_text()
    assert text.count("\n") > 30 and ",linear,nan,n/a" in text  # 36 kHz is below the trained rate


# -- reproductions --------------------------------------------------------------------------------------------------

def test_article_curves_match_the_reference(shared):
    spec = sources.article_model(shared)
    model = sources.load_model(spec)
    files = sorted((shared / "reference" / "article").glob("*.csv.gz"))
    assert files
    for path in files:
        with gzip.open(path, "rt") as f:
            header = f.readline()
        fs = float(re.search(r"; fs=([0-9.]+);", header).group(1))
        assert float(re.search(r"train_fs=([0-9.]+)", header).group(1)) == model.trained_rate
        method_name = "naive" if "(uncorrected" in header else "linear"
        expected = np.loadtxt(path, comments="#")
        y = article.sine_response(model, fs, method_name)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12, err_msg=path.name)


def test_dafx24_ranking_agrees_on_all_18_models(shared, tmp_path):
    # 0.3 s of the first two riffs (CI time); the full-length run is tools/dafx24_table.py
    models = sources.proteus_models(shared)
    assert len(models) == 18
    rows = dafx24.compute(models, shared, settings_for(tmp_path, shared, workers=2), seconds=0.3, riffs=2,
                          lead=0.05, tail=0.02)
    ours = dafx24.means(rows)
    assert dafx24.ranking_disagreements(ours) == []
    # integer R = 2: linear, allpass and cubic Lagrange read the same state
    assert ours[88200]["linear"] == ours[88200]["allpass"] == ours[88200]["cubic"]
    assert ours[88200]["naive"] < 5.0 < ours[48000]["naive"]


def test_icassp25_orders_on_one_model(shared, tmp_path):
    models = sources.proteus_models(shared)[:1]
    kernels = [method(f"lagrange{n}", "lagrange", order=n) for n in (1, 2, 3)]
    settings = settings_for(tmp_path, shared, workers=1)
    clip = sources.clip_paths(shared)[:1]
    assert clip
    rows = icassp25.compute(models, shared, settings, seconds=0.25, methods=kernels)
    snr = {(r["direction"], r["order"]): r["snr_db"] for r in rows}
    for direction in ("up", "down"):
        assert snr[(direction, 1)] < snr[(direction, 2)] < snr[(direction, 3)]
    assert all(snr[("down", n)] < snr[("up", n)] for n in (1, 2, 3))


@needs_default
def test_circuit_comparison_at_two_rates():
    spec = sources.embedded_model()
    methods = (method("naive", "naive"), method("linear", "linear"), method("lagrange3", "lagrange", order=3))
    at_trained = circuit_truth.circuit_task(spec, 48000, methods, 0.3)
    (mm_signal, mm_error, _), (vc_signal, vc_error, status) = at_trained[0]
    assert mm_error == 0.0 and status == "ok"
    accuracy = snr_db(vc_signal, vc_error)  # the model's own error against the circuit
    assert 10.0 < accuracy < 80.0
    doubled = circuit_truth.circuit_task(spec, 96000, methods, 0.3)
    naive, linear, cubic = (snr_db(*vs_circuit[:2]) for _, vs_circuit in doubled)
    assert linear == cubic  # at integer R both read the state 2 samples back
    assert naive < linear and abs(linear - accuracy) < 3.0


# -- what the figures call unstable, and whose means they compare ---------------------------------------------------

def test_only_diverged_runs_count_as_unstable():
    """A stable run below 0 dB (the unadapted model far from its rate) was counted as unstable: the sweep's
    'unstable models' panel was mostly the plain model."""
    rows = [{"model": m, "trained_hz": 44100, "fs_hz": 88200, "ratio": 2.0, "method": "naive", "snr_db": -1.5,
             "status": "negative", "input": None} for m in "ab"]
    rows += [{"model": "a", "trained_hz": 44100, "fs_hz": 88200, "ratio": 2.0, "method": "lagrange3",
              "snr_db": math.nan, "status": "diverged", "input": None}]
    naive, cubic = sweep.summarise(rows)
    assert (naive["method"], naive["diverged"], naive["negative"]) == ("naive", 0, 2)
    assert (cubic["method"], cubic["diverged"], cubic["negative"]) == ("lagrange3", 1, 0)


def test_the_sweep_draws_oversample_only_where_it_is_not_cubic_lagrange(tmp_path, monkeypatch):
    """Above R = 1 oversample is cubic Lagrange (factor 1): drawn after it, it hid the default method's curve."""
    from nbrnn.figures import plotting

    figures = []
    monkeypatch.setattr(plotting, "save_png", lambda fig, path: figures.append(fig) or path)
    rows = [{"model": "a", "trained_hz": 44100, "fs_hz": 44100 * r, "ratio": r, "method": label, "snr_db": 30.0,
             "status": "ok", "input": None} for r in (0.5, 0.8, 1.5, 2.0) for label in ("lagrange3", "oversample")]
    summary = tmp_path / "s.csv"
    sweep.write_csv(summary, ["ratio", "fs_hz", "method", "models", "diverged", "negative", "na", "median_db",
                              "q25_db", "q75_db", "min_db", "max_db"],
                    [[s["ratio"], s["fs_hz"], s["method"], s["models"], s["diverged"], s["negative"], s["na"],
                      s["median"], s["q25"], s["q75"], s["min"], s["max"]] for s in sweep.summarise(rows)], [])
    sweep.render(summary, tmp_path / "s.png", "test")
    lines = {line.get_label(): line.get_xdata() for line in figures[0].axes[0].get_lines()}
    assert list(lines["lagrange3"]) == [0.5, 0.8, 1.5, 2.0]
    assert list(lines["oversample (R < 1)"]) == [0.5, 0.8]


def test_means_of_other_models_are_not_set_beside_the_published_ones(tmp_path):
    rows = [{"model": "mine", "rate": rate, "method": m.label, "snr_db": 20.0, "status": "ok", "signal": 1.0,
             "error": 0.01} for rate in dafx24.RATES for m in dafx24.METHODS]
    paths = dafx24.write(rows, tmp_path, suffix="_mine", published=None)
    assert [p.name for p in paths] == ["dafx24_mine_snr.csv", "dafx24_mine_means.csv", "dafx24_mine_bars.png"]
    text = paths[1].read_text()
    assert "not the paper's 18: the published means are left out" in text and "ranking" not in text
    assert all(line.endswith(",nan") for line in text.splitlines()[-15:])
    assert not sources.is_paper_set(sources.models_in(DEFAULT_MODEL))


@pytest.mark.parametrize("out,match", [("", "must name a folder, not ''"),
                                       ("afile/sub", "must be a folder, not 'afile/sub': 'afile' is a file")])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_run(tmp_path, monkeypatch, out, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ArgumentError, match=f"'--out' {match}"):
        main(["--only", "sweep", "--out", out, "--quiet"])


def test_the_dafx24_tool_refuses_impossible_arguments_in_one_line(shared, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import dafx24_table

    for args, match in ((["--riffs", "0"], "'--riffs' must be from 1 to 5"), (["--riffs", "-1"], "not -1"),
                        (["--seconds", "-1"], "'--seconds' must be a positive"), (["--seconds", "nan"], "not nan"),
                        (["--workers", "0"], "'workers' must be an integer"),
                        (["--models", "/nonexistent/m"], "'models' must be a model file")):
        assert dafx24_table.main(args + ["--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, err
