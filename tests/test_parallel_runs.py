"""training.parallel_runs: candidates side by side under a time limit, the best by validation kept."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from relzoo import artifacts
from training.parallel_runs import choose

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "training/recipes/rn_nearest_object.toml"
SMALL = "dataset.train_size=1024 dataset.validation_size=256 dataset.test_size=256 train.warmup_steps=10"


def _log(*vals):
    return [{"epoch": i + 1, "logs": {"val_accuracy": v}} for i, v in enumerate(vals)]


def test_choose_reads_each_candidates_checkpointed_epoch_only():
    results = [
        {"epochs": 2, "log": _log(0.5, 0.7, 0.99)},  # its third epoch was logged but never checkpointed
        {"epochs": 1, "log": _log(0.8)},
        {"epochs": 0, "log": []},                    # stopped before its first epoch ended
    ]
    assert choose(results, "val_accuracy") == 1
    results[1]["log"] = _log(0.6)
    assert choose(results, "val_accuracy") == 0
    assert choose([{"epochs": 0, "log": []}], "val_accuracy") is None


@pytest.mark.slow
def test_candidates_are_stopped_at_the_time_limit_and_the_best_by_validation_is_written(tmp_path):
    cmd = [sys.executable, "-m", "training.parallel_runs", RECIPE, "--candidate", f"{SMALL} train.learning_rate=1e-3",
           "--candidate", f"{SMALL} train.learning_rate=1e-5", "--minutes", "0.75", "--runs", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    sweep = json.loads((tmp_path / "rn_nearest_object-sweep.json").read_text())
    done = [c["epochs"] for c in sweep["candidates"]]
    assert all(d >= 1 for d in done) and all(d < 1000 for d in done)  # each ran, and the limit ended it
    vals = [c["log"][c["epochs"] - 1]["logs"]["val_accuracy"] for c in sweep["candidates"]]
    best = sweep["chosen"]
    assert vals[best] == max(vals)
    card = artifacts.read_card(tmp_path / f"rn_nearest_object-{best}" / "artifact")
    assert card["training"]["epochs"] == done[best]
    assert f"train.epochs={done[best]}" in card["training"]["command"]
    assert card["training"]["recipe_values"]["train"]["learning_rate"] == [1e-3, 1e-5][best]
    assert card["training"]["final"]["val_accuracy"] == pytest.approx(vals[best], abs=1e-6)
