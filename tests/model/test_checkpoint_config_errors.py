"""A damaged config.json is a CheckpointError naming the file and what is wrong, never a traceback: from
read_config / load_checkpoint, and from `python -m model.predict`, which prints one line and exits 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data.settings import REPO_ROOT
from model.checkpoint import CONFIG, CheckpointError, load_checkpoint, read_config
from model.predict import EXIT_USAGE
from model.predict import main as predict_main


def _png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (180, 120, 90)).save(path)


@pytest.fixture
def damaged(tiny_checkpoint, tmp_path) -> Path:
    """A copy of the tiny checkpoint whose config.json the test then damages."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def _good_config(folder: Path) -> dict:
    return json.loads((folder / CONFIG).read_text())


def _damage(folder: Path, how: str) -> str:
    """Damage ``folder``'s config.json; returns words the error must contain."""
    path = folder / CONFIG
    if how == "array":
        path.write_text("[1, 2]")
        return "holds an array, not a JSON object"
    if how == "network_number":
        path.write_text(json.dumps({**_good_config(folder), "network": 5}))
        return "'network' is a number, not a JSON object"
    if how == "network_list":
        path.write_text(json.dumps({**_good_config(folder), "network": ["tf_efficientnet_lite0"]}))
        return "'network' is an array, not a JSON object"
    if how == "not_utf8":
        path.write_bytes(b'{"format": "melanoma-triage-checkpoint/1", "model_id": "caf\xe9"}')  # Latin-1
        return "not UTF-8 text"
    raise AssertionError(how)


DAMAGES = ["array", "network_number", "network_list", "not_utf8"]


@pytest.mark.parametrize("how", DAMAGES)
def test_read_and_load_raise_checkpoint_error_naming_the_file(damaged, how):
    words = _damage(damaged, how)
    for reader in (read_config, load_checkpoint):
        with pytest.raises(CheckpointError) as caught:
            reader(damaged)
        assert str(damaged / CONFIG) in str(caught.value) and words in str(caught.value)


def test_a_network_whose_parts_have_the_wrong_type_is_not_buildable(damaged):
    config = _good_config(damaged)
    config["network"]["backbone"] = 5  # a timm model's name in a real config: timm fails with an AttributeError
    (damaged / CONFIG).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config does not describe a buildable network"):
        load_checkpoint(damaged)


def _refuse_to_open_configs(monkeypatch) -> None:
    """Opening any config.json fails as chmod 000 would (tests may run as root, where chmod does not stop a read)."""
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self.name == CONFIG:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)


def test_an_unreadable_config_is_a_checkpoint_error(damaged, monkeypatch):
    _refuse_to_open_configs(monkeypatch)
    with pytest.raises(CheckpointError, match=r"config\.json: not readable \(Permission denied\)") as caught:
        read_config(damaged)
    assert str(damaged / CONFIG) in str(caught.value)


@pytest.mark.parametrize("how", [*DAMAGES, "unreadable"])
def test_predict_prints_one_line_and_exits_2(damaged, how, tmp_path, capsys, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "lesion.png")
    if how == "unreadable":
        _refuse_to_open_configs(monkeypatch)
        words = "not readable (Permission denied)"
    else:
        words = _damage(damaged, how)
    out = tmp_path / "p.csv"
    code = predict_main(["--checkpoint", str(damaged), "--input", str(images), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE == 2
    assert f"error: {damaged / CONFIG}: " in err and words in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.slow
def test_predict_in_a_process_of_its_own(damaged, tmp_path):
    """The command as an operator runs it (a fresh interpreter importing torch: marked slow)."""
    _damage(damaged, "network_number")
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "lesion.png")
    command = [sys.executable, "-m", "model.predict", "--checkpoint", str(damaged), "--input", str(images)]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "p.csv")],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"error: {damaged / CONFIG}: 'network' is a number, not a JSON object" in run.stderr


def test_a_recorded_checksum_names_the_weights_in_any_spelling():
    from model.checkpoint import same_weights

    digest = "ab" * 32
    assert same_weights("sha256:" + digest.upper(), digest) and same_weights(digest, "sha256:" + digest)
    assert not same_weights("unknown", digest) and not same_weights(None, None) and not same_weights("", "")
    assert not same_weights("cd" * 32, digest)
