"""Resumable training state: weights, optimiser, scheduler, scaler and every RNG, so an interrupted run
continues exactly where it stopped (safetensors for the weights, the restricted unpickler for the rest)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from model.network import MelanomaNet


def rng_state() -> dict:
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python_version": torch.tensor(py[0]),
        "python_state": torch.tensor(py[1], dtype=torch.int64),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": torch.tensor(np_state[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((int(state["python_version"]), tuple(int(x) for x in state["python_state"]), None))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), int(state["numpy_pos"]), 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    folder: Path, model: MelanomaNet, optimizer, scheduler, scaler, epoch: int, extra: dict
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        str(folder / "resume_weights.safetensors"),
    )
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": epoch,
        "rng": rng_state(),
    }
    tmp = folder / "resume_state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "resume_state.pt")
    (folder / "resume_meta.json").write_text(json.dumps({"epoch": epoch, **extra}, default=float))


def load_training_state(folder: Path, model: MelanomaNet, optimizer, scheduler, scaler) -> tuple[int, dict]:
    model.load_state_dict(load_file(str(folder / "resume_weights.safetensors")))
    # Our own file, and still loaded with the restricted unpickler: tensors and containers only.
    state = torch.load(folder / "resume_state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    meta = json.loads((folder / "resume_meta.json").read_text())
    return int(state["epoch"]), meta
