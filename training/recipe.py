"""Training recipes as data: a JSON file per shipped model (training/recipes/) holds the model's id and
version and each training step's settings; the steps read it with `--config PATH`, and a flag given on the
command line overrides the file.

    {"description": "...",
     "model": {"model_id": "melanoma-lite0-224-ctx", "version": "2.1.0"},
     "trunk_cache": {"image_size": 288},                                         # training.trunk_cache
     "train_cached": {"epochs": 6, "samples_per_epoch": 4000, "seed": 42},      # training.train_cached
     "loso": {"sources": [...], "samples_per_epoch": 3000}}                     # its leave-one-source-out runs

A model made of several trained tails on one trunk (model/ensemble.py) names its members' recipes instead,
each trained as above and then combined (training/combine_runs.py):

    {"model": {...}, "ensemble": {"members": ["training/recipes/tail_blocks52.json", ...]}}

A key the reader does not know is refused with the file, the section and the known keys named, so a typo
never trains silently with a default.

    python -m training.recipe training/recipes/default_cpu.json loso.sources   # one value, for the shell
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from data.errors import TriageError

RECIPES = Path(__file__).resolve().parent / "recipes"
DEFAULT_CPU = RECIPES / "default_cpu.json"  # the shipped model (v2.3: an ensemble of the two member recipes)
V1_GPU = RECIPES / "v1_gpu.json"  # the first model's GPU recipe
# Top-level keys: the model's identity, and one section per reader (each read against its own fields).
SECTIONS = ("description", "model", "trunk_cache", "train", "train_cached", "loso", "ensemble")
MODEL_KEYS = ("model_id", "version")
LOSO_KEYS = ("sources", "samples_per_epoch")
ENSEMBLE_KEYS = ("members",)

Config = TypeVar("Config")


class RecipeError(TriageError, ValueError):
    """A recipe that cannot be used as written (the message names the file and the key)."""


def load_recipe(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        recipe = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"recipe {path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise RecipeError(f"recipe {path}: not valid JSON ({exc})") from None
    if not isinstance(recipe, dict):
        raise RecipeError(f"recipe {path}: expected a JSON object at the top")
    _refuse_unknown(path, "the top level", recipe, SECTIONS)
    for section, known in (("model", MODEL_KEYS), ("loso", LOSO_KEYS), ("ensemble", ENSEMBLE_KEYS)):
        if section in recipe:
            _refuse_unknown(path, f"'{section}'", _section(path, recipe, section), known)
    if "ensemble" in recipe:
        files = _member_paths(path, recipe)
        for member, file in zip(recipe["ensemble"]["members"], files, strict=True):
            found = load_recipe(file)
            if "ensemble" in found:
                raise RecipeError(f"recipe {path}: member {member} is an ensemble itself")
            if "train_cached" not in found:
                raise RecipeError(f"recipe {path}: member {member} has no 'train_cached' section to train it")
    return recipe


def ensemble_members(path: str | Path) -> list[Path]:
    """The member recipes of an ensemble recipe (paths relative to the repository root), each readable;
    [] for a recipe that trains one network."""
    recipe = load_recipe(path)
    return _member_paths(Path(path), recipe) if "ensemble" in recipe else []


def _member_paths(path: Path, recipe: dict[str, Any]) -> list[Path]:
    members = _section(path, recipe, "ensemble").get("members")
    if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
        raise RecipeError(f"recipe {path}: 'ensemble.members' must list at least two member recipe files")
    return [RECIPES.parent.parent / m for m in members]


def _section(path: Path, recipe: dict[str, Any], name: str) -> dict[str, Any]:
    section = recipe.get(name) or {}
    if not isinstance(section, dict):
        raise RecipeError(f"recipe {path}: '{name}' must be an object of settings")
    return section


def _refuse_unknown(path: Path, where: str, given: dict[str, Any], known: typing.Iterable[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise RecipeError(
            f"recipe {path}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
            f"{where}; known: {', '.join(sorted(known))}"
        )


def model_identity(path: str | Path) -> dict[str, str]:
    """{"model_id", "version"} of the model a recipe makes."""
    model = _section(Path(path), load_recipe(path), "model")
    missing = [k for k in MODEL_KEYS if not model.get(k)]
    if missing:
        raise RecipeError(f"recipe {path}: 'model' needs {', '.join(missing)}")
    return {k: str(model[k]) for k in MODEL_KEYS}


def _scalar_type(hint: Any) -> type:
    """int for `int | None`, str for `str`, … (the type a flag's text is converted with)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _scalar_type(args[0])
    return typing.get_origin(hint) or hint


def config_parser(
    cls: type, prog: str | None = None, description: str | None = None, **kwargs
) -> argparse.ArgumentParser:
    """One flag per dataclass field (--samples-per-epoch for samples_per_epoch), plus --config PATH."""
    parser = argparse.ArgumentParser(prog=prog, description=description, **kwargs)
    parser.add_argument(
        "--config", type=Path, default=None, help="a recipe file (training/recipes/); flags override it"
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = _scalar_type(hints[f.name])
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction)
        elif kind is list:
            parser.add_argument(flag, nargs="+")
        else:
            parser.add_argument(flag, type=kind)
    parser.set_defaults(**{f.name: _default(f) for f in dataclasses.fields(cls)})
    return parser


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _recipe_value(path: Path, section: str, name: str, value: Any, kind: type) -> Any:
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise RecipeError(
        f"recipe {path}: '{section}.{name}' is {json.dumps(value)}, "
        f"expected {'a list' if kind is list else kind.__name__}"
    )


def parse_config(
    cls: type[Config], section: str, argv: list[str] | None = None, prog: str | None = None, **parser_kwargs
) -> Config:
    """The dataclass `cls` from its defaults, then the recipe's `section` (--config), then the flags given."""
    parser = config_parser(cls, prog=prog, **parser_kwargs)
    known, _ = parser.parse_known_args(argv)
    if known.config is not None:
        try:
            recipe = load_recipe(known.config)
            given = _section(known.config, recipe, section)
            hints = typing.get_type_hints(cls)
            _refuse_unknown(known.config, f"'{section}'", given, hints)
            parser.set_defaults(
                **{k: _recipe_value(known.config, section, k, v, _scalar_type(hints[k])) for k, v in given.items()}
            )
        except RecipeError as exc:
            parser.error(str(exc))
    values = vars(parser.parse_args(argv))
    values.pop("config")
    return cls(**values)


def main(argv: list[str] | None = None) -> int:
    """Print one recipe value (KEY as section.name; a list one item a line) for the shell scripts."""
    parser = argparse.ArgumentParser(prog="python -m training.recipe", description=main.__doc__)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("key", help="e.g. model.version or loso.sources")
    args = parser.parse_args(argv)
    try:
        value: Any = load_recipe(args.recipe)
        for part in args.key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise RecipeError(f"recipe {args.recipe}: no value at '{args.key}'")
            value = value[part]
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(map(str, value)) if isinstance(value, list) else value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
