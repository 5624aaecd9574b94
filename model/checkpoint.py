"""Checkpoints: safetensors weights + a JSON config. No pickle is ever loaded.

A checkpoint is a folder:
    model.safetensors   weights (fp16 floats by default)
    config.json         network config, training summary, metrics, operating point, code version, date

`config.json` records the SHA-256 of `model.safetensors` as `weights_sha256`. `load_checkpoint` hashes the
bytes it loads (`weights_sha256_actual`) and refuses a checkpoint whose weights are not the recorded ones;
a config without a recorded hash (hand-made or older) is still accepted. Code that needs "the hash of these
weights" calls `weights_digest(config)`, so every reader gives the same answer.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from data.errors import TriageError
from data.hashing import sha256_bytes, sha256_file
from data.settings import DEFAULT_CHECKPOINT, REPO_ROOT
from model.architectures import Network, build_model
from model.network import NetworkConfig

FORMAT = "melanoma-triage-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(TriageError, ValueError):
    pass


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()


def code_version() -> str:
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def same_weights(recorded: str | None, digest: str | None) -> bool:
    """Whether a recorded weights checksum (a stored prediction's, "sha256:…" or bare hex, any case) names the
    weights with SHA-256 ``digest``."""

    def bare(value: str | None) -> str:
        return str(value or "").lower().removeprefix("sha256:")

    return bool(bare(recorded)) and bare(recorded) == bare(digest)


def weights_digest(config: dict[str, Any]) -> str | None:
    """The SHA-256 of a checkpoint's weights: the one measured at load, else the recorded one, else None.

    After `load_checkpoint` the two are equal whenever both exist (a mismatch is refused), so preferring
    the measured one only matters for configs with no recorded hash.
    """
    digest = config.get("weights_sha256_actual") or config.get("weights_sha256")
    return str(digest) if digest else None


def save_checkpoint(folder: str | Path, model: Network, extra: dict[str, Any] | None = None, half: bool = True) -> Path:
    """Write weights + config; `extra` (training summary, metrics, operating point, …) goes into the JSON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        state[name] = tensor.half() if half and tensor.is_floating_point() else tensor
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(folder / WEIGHTS)
    config = {
        "format": FORMAT,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "network": model.config.to_dict(),
        **(extra or {}),
        "weights_sha256": sha256_file(folder / WEIGHTS),
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=2, default=str) + "\n")
    return folder


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "true/false", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def read_config(folder: str | Path) -> dict[str, Any]:
    """The checkpoint's config.json, checked enough that its readers may trust its shape: a JSON object of
    this FORMAT whose `network`, when present, is an object. CheckpointError (naming the file) otherwise."""
    folder = Path(folder)
    path = folder / CONFIG
    try:
        if not path.is_file():
            raise CheckpointError(f"{folder}: no {CONFIG} (a checkpoint is a folder with {WEIGHTS} + {CONFIG})")
        text = path.read_text(encoding="utf-8")  # save_checkpoint writes UTF-8 (JSON's own encoding)
    except OSError as exc:  # e.g. no permission to read the file or to look into the folder
        raise CheckpointError(f"{path}: not readable ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text, so not a checkpoint config ({exc})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: holds {_json_kind(config)}, not a JSON object (a checkpoint config)")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {config.get('format')!r}, expected {FORMAT}")
    if "network" in config and not isinstance(config["network"], dict):
        raise CheckpointError(f"{path}: 'network' is {_json_kind(config['network'])}, not a JSON object")
    return config


def check_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} tensor(s) of the wrong shape (e.g. {'; '.join(mismatched[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError("checkpoint weights do not fit the network its config describes: " + "; ".join(parts))


def load_checkpoint(folder: str | Path | None = None) -> tuple[Network, dict[str, Any]]:
    """Build the network from config.json (`network.architecture`: one MelanomaNet or a shared-trunk
    ensemble, model/architectures.py) and load model.safetensors, in eval mode, float32."""
    folder = Path(folder) if folder else DEFAULT_CHECKPOINT
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS}")
    try:
        data = weights.read_bytes()  # hash and load the same bytes
    except OSError as exc:
        raise CheckpointError(f"{weights}: not readable ({exc})") from None
    try:
        state = load(data)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    actual = sha256_bytes(data)
    recorded = config.get("weights_sha256")
    if recorded and str(recorded).lower() != actual:
        raise CheckpointError(
            f"{weights}: weights do not match their config: {folder / CONFIG} records weights_sha256 {recorded}, "
            f"the file's SHA-256 is {actual} (weights replaced or damaged after the checkpoint was saved?)"
        )
    try:
        model = build_model(NetworkConfig.from_dict(config["network"]))
    except (KeyError, TypeError, AttributeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: config does not describe a buildable network ({exc})") from None
    check_shapes(model, state)
    model_state = model.state_dict()
    model.load_state_dict({k: v.to(model_state[k].dtype) for k, v in state.items()})
    try:
        model.check_weights()  # e.g. an ensemble whose members' shared trunks differ
    except ValueError as exc:
        raise CheckpointError(f"{folder}: {exc}") from None
    model.eval()
    config["weights_sha256_actual"] = actual
    return model, config


def model_id(config: dict[str, Any]) -> str:
    return str(config.get("model_id") or config.get("network", {}).get("backbone", "model"))
