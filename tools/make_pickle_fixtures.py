"""Write the small PyTorch checkpoint fixtures used by ``tests/test_torch_pickle.py``.

Every fixture ``<name>.pt`` comes with ``<name>.npz`` holding the arrays PyTorch
itself returns for the same tensors (``tensor.detach().numpy()``; bfloat16 and
float16 tensors are widened to float32 first, the way nbrnn returns them), so the
tests compare nbrnn's reader with PyTorch without importing PyTorch.

Usage::

    python tools/make_pickle_fixtures.py [--out tests/data/pickles]

The fixtures are deterministic (fixed seed) and small (hidden size 8).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch


class _LstmLinear(torch.nn.Module):
    """LSTM followed by a linear output layer, named like the CoreAudioML models."""

    def __init__(self, n_in: int = 2, hidden: int = 8, dtype=torch.float32):
        super().__init__()
        self.rec = torch.nn.LSTM(n_in, hidden, dtype=dtype)
        self.lin = torch.nn.Linear(hidden, 1, dtype=dtype)


def _expected(state: dict) -> dict:
    """The arrays PyTorch itself gives for every tensor of ``state``."""
    out = {}
    for name, value in state.items():
        t = value.detach()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.to(torch.float32)
        out[name] = t.numpy()
    return out


def _save(out_dir: Path, name: str, obj, state: dict, legacy: bool = False) -> None:
    path = out_dir / f"{name}.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    np.savez(out_dir / f"{name}.npz", **_expected(state))
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(state)} tensors)")


def _shared_storage_state() -> dict:
    """Tensors that are views of one flat storage (offsets, a transposed view).

    This mimics cuDNN's flat weight buffer: every weight is a window into a
    single allocation, and one of them is stored transposed (non-contiguous).
    """
    flat = torch.randn(4 * 8 * 2 + 4 * 8 * 8 + 4 * 8 + 4 * 8 + 8 * 3)
    w_ih = flat[0:64].view(32, 2)
    w_hh = flat[64:320].view(32, 8)
    b_ih = flat[320:352]
    b_hh = flat[352:384]
    w_t = flat[384:408].view(8, 3).t()  # shape (3, 8), strides (1, 3)
    assert not w_t.is_contiguous()
    return collections.OrderedDict(
        [
            ("rec.weight_ih_l0", w_ih),
            ("rec.weight_hh_l0", w_hh),
            ("rec.bias_ih_l0", b_ih),
            ("rec.bias_hh_l0", b_hh),
            ("lin.weight_t", w_t),
            ("lin.bias", flat[400:401]),  # overlaps w_t's window on purpose
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "pickles"))
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(1234)

    model = _LstmLinear()
    state = model.state_dict()
    _save(out_dir, "lstm_zip", state, state)
    _save(out_dir, "lstm_legacy", state, state, legacy=True)

    # Lightning-style checkpoint: the weights sit under "state_dict" with the
    # LightningModule's attribute prefix, next to optimizer state and hyper-parameters.
    model_l = _LstmLinear(n_in=1)
    opt = torch.optim.Adam(model_l.parameters(), lr=1e-3)
    loss = model_l.lin(model_l.rec(torch.randn(5, 1))[0]).square().mean()
    loss.backward()
    opt.step()
    nested = collections.OrderedDict((f"model.{k}", v) for k, v in model_l.state_dict().items())
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": nested,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(0.125)}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": {"unit_type": "LSTM", "hidden_size": 8, "skip": 1, "lr": 1e-3, "betas": (0.9, 0.999)},
    }
    _save(out_dir, "lightning_ckpt", checkpoint, nested)

    # Plain training-loop checkpoints.
    _save(out_dir, "model_state_dict_ckpt", {"epoch": 7, "model_state_dict": state, "loss": 0.5}, state)
    _save(out_dir, "model_key_ckpt", {"model": state, "sample_rate": 48000}, state)

    shared = _shared_storage_state()
    _save(out_dir, "shared_views_zip", shared, shared)
    _save(out_dir, "shared_views_legacy", shared, shared, legacy=True)

    model64 = _LstmLinear(dtype=torch.float64)
    _save(out_dir, "lstm_float64", model64.state_dict(), model64.state_dict())

    dtypes = collections.OrderedDict(
        [
            ("half", torch.randn(3, 2).to(torch.float16)),
            ("bfloat16", torch.randn(2, 3).to(torch.bfloat16)),
            ("long", torch.arange(-3, 3, dtype=torch.int64)),
            ("int", torch.arange(4, dtype=torch.int32).view(2, 2)),
            ("uint8", torch.arange(250, 256, dtype=torch.uint8)),
            ("bool", torch.tensor([True, False, True])),
            ("uint16", torch.arange(65530, 65536, dtype=torch.int32).to(torch.uint16)),
            ("scalar", torch.tensor(2.5)),
            ("empty", torch.zeros(0, 4)),
        ]
    )
    _save(out_dir, "dtypes_zip", dtypes, dtypes)


if __name__ == "__main__":
    main()
