"""training/train_cpu.sh's orchestration, run against a stand-in interpreter that records each training step
instead of running it: with WORKERS=2 the folds, held-out sources and cached datasets run as separate
single-threaded jobs and the folds are merged; with one worker each CV is one `--fold all` run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Recipe lookups and inline snippets run for real; every `-m training.<step>` is recorded with its thread
# setting, and its --out made, so the script goes on as after a real run.
STAND_IN = f"""#!{sys.executable}
import json, os, subprocess, sys
args = sys.argv[1:]
if args[:2] == ["-m", "training.recipe"] or args[:1] == ["-c"]:
    sys.exit(subprocess.call([{sys.executable!r}, *args]))
with open(os.environ["CALLS"], "a") as log:
    log.write(json.dumps({{"args": args, "threads": os.environ.get("OMP_NUM_THREADS")}}) + "\\n")
if "--out" in args:
    out = args[args.index("--out") + 1]
    os.makedirs(out if not out.endswith(".json") else os.path.dirname(out), exist_ok=True)
"""


def run_script(tmp_path: Path, workers: int, script: str = "training/train_cpu.sh", **env_extra: str) -> list[dict]:
    """The script run with the stand-in interpreter on RUN_DIR and OUT_CHECKPOINT under tmp_path: its calls."""
    import json

    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {**os.environ, "PYTHON": str(python), "CALLS": str(calls), "WORKERS": str(workers), "RERUN_SEED": "none"}
    env.pop("OMP_NUM_THREADS", None)
    env.update(env_extra)
    result = subprocess.run(
        ["bash", script, str(tmp_path / "run"), str(tmp_path / "shipped")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def steps(calls: list[dict], module: str) -> list[dict]:
    return [c for c in calls if c["args"][:2] == ["-m", f"training.{module}"]]


def option(call: dict, name: str) -> str:
    return call["args"][call["args"].index(name) + 1]


@pytest.mark.parametrize("workers", [2, 1])
def test_each_member_is_cached_cross_validated_finalised_and_held_out_by_source(tmp_path, workers):
    calls = run_script(tmp_path, workers)
    members = ["tail_blocks52", "tail_blocks52_pairs_long"]  # default_cpu.json's ensemble
    train = steps(calls, "train_cached")
    for member in members:
        run = str(tmp_path / "run" / member)
        mine = [c for c in train if option(c, "--config").endswith(f"/{member}.json")]
        folds = sorted(option(c, "--fold") for c in mine)
        loso = {f"source:{s}" for s in ("ham10000", "isic2017", "isic2020_patients")}
        if workers > 1:
            assert folds == sorted(["0", "1", "2", "3", "4", "none", *loso])
            cv = [c for c in mine if option(c, "--fold").isdigit()]
            assert {option(c, "--out") for c in cv} == {f"{run}/cv.parts/{k}" for k in range(5)}
            merged = [c for c in steps(calls, "merge_folds") if option(c, "--out") == f"{run}/cv"]
            assert len(merged) == 1 and sorted(merged[0]["args"][3:8]) == sorted(option(c, "--out") for c in cv)
        else:
            assert folds == sorted(["all", "none", *loso]) and not steps(calls, "merge_folds")
            assert option(next(c for c in mine if option(c, "--fold") == "all"), "--out") == f"{run}/cv"
        # the held-out-source runs get the recipe's shorter schedule
        assert all(option(c, "--samples-per-epoch") == "3000" for c in mine if option(c, "--fold") in loso)
    parallel = [c for c in train if option(c, "--fold") != "none"]
    assert {c["threads"] for c in parallel} == ({"1"} if workers > 1 else {None})
    cached = sorted(option(c, "--datasets") for c in steps(calls, "trunk_cache"))
    assert cached == sorted(2 * ["ham10000", "isic2017", "isic2020", "isic2020_patients", "derm7pt"])
    assert [option(c, "--run") for c in steps(calls, "assemble_default")] == [str(tmp_path / "run")]


def test_the_population_out_script_trains_every_tail_without_siim_isic_2020_and_writes_the_evidence(tmp_path):
    calls = run_script(tmp_path, 1, "training/loso_population.sh", CACHE=str(tmp_path / "cache"))
    cached = sorted(option(c, "--datasets") for c in steps(calls, "trunk_cache"))
    assert cached == ["ham10000", "isic2017", "isic2020_patients"]  # no isic2020 subset anywhere
    trained = steps(calls, "train_cached")
    assert {option(c, "--config") for c in trained} == {
        "training/recipes/tail_blocks52.json",
        "training/recipes/tail_blocks52_pairs_long.json",
    }
    for call in trained:
        assert option(call, "--fold") == "source:isic2020_patients" and option(call, "--samples-per-epoch") == "3000"
        datasets = call["args"][call["args"].index("--datasets") + 1 : call["args"].index("--fold")]
        assert datasets == ["ham10000", "isic2017", "isic2020_patients"] and call["threads"] == "1"
    [evidence] = steps(calls, "loso_evidence")
    assert option(evidence, "--checkpoint") == str(tmp_path / "shipped")
    members = evidence["args"][evidence["args"].index("--members") + 1 :]
    assert sorted(members) == sorted(option(c, "--out") for c in trained)
