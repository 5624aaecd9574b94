"""Training recipes as data (training/recipe.py): a recipe file sets a step's settings, a flag overrides the
file, and a key nobody reads is refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.checkpoint import DEFAULT_CHECKPOINT, read_config
from training import recipe as recipes
from training.train_cached import CachedTrainConfig
from training.train_cached import parse_args as parse_cached
from training.train_config import TrainConfig
from training.train_config import parse_args as parse_train
from training.trunk_cache import TrunkCacheConfig
from training.trunk_cache import parse_args as parse_trunk_cache

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, content: dict) -> str:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_a_recipe_file_sets_the_settings_it_names_and_leaves_the_rest_at_their_defaults(tmp_path):
    path = write(tmp_path, {"train_cached": {"epochs": 3, "samples_per_epoch": 123, "datasets": ["ham10000"]}})
    cfg = parse_cached(["--config", path])
    assert (cfg.epochs, cfg.samples_per_epoch, cfg.datasets) == (3, 123, ["ham10000"])
    defaults = CachedTrainConfig()
    assert (cfg.lr, cfg.fold, cfg.cache) == (defaults.lr, defaults.fold, defaults.cache)
    train = parse_train(["--config", write(tmp_path, {"train": {"image_size": 96, "lr": 1, "imagenet": False}})])
    assert (train.image_size, train.lr, train.imagenet) == (96, 1.0, False)
    assert isinstance(train.lr, float)  # a JSON integer for a float setting
    assert train.epochs == TrainConfig().epochs


def test_a_flag_overrides_the_file_wherever_it_stands(tmp_path):
    path = write(tmp_path, {"train_cached": {"epochs": 3, "samples_per_epoch": 123}})
    assert parse_cached(["--config", path, "--epochs", "5"]).epochs == 5
    after = parse_cached(["--samples-per-epoch", "7", "--config", path])
    assert (after.samples_per_epoch, after.epochs) == (7, 3)
    flags = parse_train(["--config", write(tmp_path, {"train": {"imagenet": False}}), "--imagenet"])
    assert flags.imagenet is True


@pytest.mark.parametrize("path", sorted((REPO / "training" / "recipes").glob("*.json")), ids=lambda p: p.name)
def test_every_recipe_in_the_folder_parses(path):
    """Measured-but-not-shipped recipes stay runnable: a key the trainer no longer knows would be refused."""
    recipe = recipes.load_recipe(path)
    assert recipe["description"]
    if "train_cached" in recipe:
        cfg = parse_cached(["--config", str(path)])
        for key, value in recipe["train_cached"].items():
            assert getattr(cfg, key) == value
    if "trunk_cache" in recipe:
        cache = parse_trunk_cache(["--config", str(path)])
        for key, value in recipe["trunk_cache"].items():
            assert getattr(cache, key) == value


def test_a_recipe_sets_the_trunk_cache_input_size_and_a_flag_overrides_it(tmp_path, capsys):
    path = write(tmp_path, {"trunk_cache": {"image_size": 288}})
    read = parse_trunk_cache(["--config", path, "--out", "x"])
    assert (read.image_size, read.out, read.cut) == (288, "x", TrunkCacheConfig().cut)
    assert parse_trunk_cache(["--config", path, "--image-size", "256"]).image_size == 256
    with pytest.raises(SystemExit):
        parse_trunk_cache(["--config", write(tmp_path, {"trunk_cache": {"size": 1}})])
    assert "unknown key 'size' in 'trunk_cache'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train_cached": {"epoch": 3}}, "unknown key 'epoch' in 'train_cached'; known: "),
        ({"trian_cached": {"epochs": 3}}, "unknown key 'trian_cached' in the top level; known: "),
        ({"model": {"model_id": "x", "versoin": "1"}}, "unknown key 'versoin' in 'model'; known: model_id, version"),
        ({"train_cached": {"epochs": "six"}}, "'train_cached.epochs' is \"six\", expected int"),
        ({"train_cached": {"datasets": "ham10000"}}, "'train_cached.datasets' is \"ham10000\", expected a list"),
        ({"train_cached": ["epochs"]}, "'train_cached' must be an object of settings"),
    ],
)
def test_a_key_the_reader_does_not_know_is_refused_with_a_clear_message(tmp_path, capsys, content, message):
    path = write(tmp_path, content)
    with pytest.raises(SystemExit) as stop:
        parse_cached(["--config", path])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"recipe {path}: " in err and message in err
    if "'epoch'" in message:
        assert "epochs" in err.split("known: ")[1]  # the setting that was meant is listed


def test_a_missing_or_broken_recipe_file_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_train(["--config", str(tmp_path / "nope.json")])
    assert "nope.json: file not found" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SystemExit):
        parse_train(["--config", str(broken)])
    assert "broken.json: not valid JSON" in capsys.readouterr().err


def test_the_shipped_recipes_parse_and_name_their_model():
    members = recipes.ensemble_members(recipes.DEFAULT_CPU)
    assert [m.name for m in members] == ["tail_blocks52.json", "tail_blocks52_pairs_long.json"]
    tails = [parse_cached(["--config", str(m)]) for m in members]
    assert [t.cut for t in tails] == ["blocks.5.2", "blocks.5.2"]
    assert [t.pair_loss_weight > 0 for t in tails] == [False, True]
    for member in members:
        assert set(recipes.load_recipe(member)["loso"]["sources"]) <= set(tails[0].datasets)
    v1 = parse_train(["--config", str(recipes.V1_GPU)])
    assert v1 != TrainConfig()  # it sets something
    # The committed default checkpoint is the model the CPU recipe makes.
    committed = read_config(DEFAULT_CHECKPOINT)
    identity = recipes.model_identity(recipes.DEFAULT_CPU)
    assert identity == {"model_id": committed["model_id"], "version": committed["version"]}
    assert committed["training"]["member_cuts"] == [t.cut for t in tails]
    assert recipes.model_identity(recipes.V1_GPU)["version"].startswith("1.")


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        ({"members": ["training/recipes/tail_blocks52.json"]}, "must list at least two member recipe files"),
        ({"members": ["training/recipes/tail_blocks52.json", "nope.json"]}, "nope.json: file not found"),
        ({"members": ["training/recipes/tail_blocks52.json", "training/recipes/v1_gpu.json"]}, "no 'train_cached'"),
        ({"members": ["training/recipes/tail_blocks52.json"], "cut": "x"}, "unknown key 'cut' in 'ensemble'"),
    ],
)
def test_an_ensemble_recipe_names_readable_member_recipes(tmp_path, ensemble, message):
    path = write(tmp_path, {"model": {"model_id": "m", "version": "1"}, "ensemble": ensemble})
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load_recipe(path)


def test_the_shell_scripts_read_values_one_a_line():
    def value(recipe: Path, key: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "training.recipe", str(recipe), key]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)

    members = value(recipes.DEFAULT_CPU, "ensemble.members")
    assert members.returncode == 0
    assert members.stdout.split() == recipes.load_recipe(recipes.DEFAULT_CPU)["ensemble"]["members"]
    member = recipes.ensemble_members(recipes.DEFAULT_CPU)[0]
    sources = value(member, "loso.sources")
    assert sources.stdout.split() == recipes.load_recipe(member)["loso"]["sources"]
    missing = value(member, "loso.nope")
    assert missing.returncode == 2 and "no value at 'loso.nope'" in missing.stderr
