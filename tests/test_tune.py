"""training/tune.py: a few tiny trials with each tuner; the best trial trains unchanged."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import recipe as recipes

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "training/recipes/rn_nearest_object.toml"
SMALL = ["dataset.train_size=512", "dataset.validation_size=128", "dataset.test_size=128", "train.warmup_steps=4"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("tuner,extra", [("hyperband", ["tune.max_epochs=2"]), ("bayesian", ["--max-trials", "3",
                                                                                             "--epochs", "1"])])
def test_tune_writes_a_recipe_that_trains(tmp_path, tuner, extra):
    out_recipe = tmp_path / "best.toml"
    overrides = [e for e in extra if "=" in e]
    flags = [e for e in extra if "=" not in e]
    result = _run("-m", "training.tune", RECIPE, *SMALL, *overrides, "--tuner", tuner, "--dir", str(tmp_path / "t"),
                  "--out", str(out_recipe), *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tune: best trial" in result.stdout
    best = recipes.load(out_recipe)
    assert best.tune["result"]["tuner"] == tuner and best.tune["result"]["trials"] >= 2
    space = recipes.load(ROOT / RECIPE).tune["space"]
    assert best.model["g_units"] in space["model.g_units"]["values"]
    lr = best.train.learning_rate
    assert space["train.learning_rate"]["min"] <= lr <= space["train.learning_rate"]["max"]
    # TensorBoard logs per trial
    trials = [d for d in (tmp_path / "t" / "logs").iterdir() if d.is_dir()]
    assert len(trials) >= 2
    assert all(any(p.name.startswith("events.out.tfevents") for p in t.rglob("*")) for t in trials)
    # train.py takes the written recipe unchanged
    train = _run("-m", "training.train", str(out_recipe), "--run-dir", str(tmp_path / "run"), "--verbose", "0")
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "run" / "artifact" / "card.json").is_file()
    # run again with the same folder: the search resumes, no trial is repeated
    again = _run("-m", "training.tune", RECIPE, *SMALL, *overrides, "--tuner", tuner, "--dir", str(tmp_path / "t"),
                 "--out", str(tmp_path / "again.toml"), *flags)
    assert again.returncode == 0, again.stderr[-3000:]
    assert recipes.load(tmp_path / "again.toml").tune["result"]["trials"] == best.tune["result"]["trials"]


def test_tune_needs_a_search_space(tmp_path):
    plain = tmp_path / "plain.toml"
    table = dict(recipes.load(ROOT / RECIPE).table)
    table.pop("tune")
    recipes.dump(table, plain)
    result = _run("-m", "training.tune", str(plain), timeout=120)
    assert result.returncode == 2 and "declares no [tune.space]" in result.stderr
