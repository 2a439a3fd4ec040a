"""The trainer end to end, on the tiny nearest_object task (seconds per run)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import relzoo
from relzoo import artifacts
from training import recipe as recipes

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "training/recipes/rn_nearest_object.toml"
SMALL = ["dataset.train_size=1024", "dataset.validation_size=256", "dataset.test_size=256", "train.warmup_steps=10"]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _train(run_dir, *args, env=None, timeout=300):
    cmd = [sys.executable, "-m", "training.train", RECIPE, *args, "--run-dir", str(run_dir), "--verbose", "2"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env or _env(), timeout=timeout)


# ----------------------------------------------------------------------- recipes
def test_recipe_loads_and_overrides():
    r = recipes.load(ROOT / RECIPE, ["train.epochs=3", "model.g_units=[8, 8]", "train.strategy=mirrored"])
    assert r.train.epochs == 3 and r.model["g_units"] == [8, 8] and r.train.strategy == "mirrored"
    assert r.train.clipnorm == 5.0 and r.train.weight_decay is None  # defaults filled in
    preset = relzoo.presets.get("rn_nearest_object")
    assert r.preset is preset and r.model == {**preset.kwargs, "g_units": [8, 8]} and r.dataset == preset.dataset
    assert not r.is_preset() and recipes.load(ROOT / RECIPE).is_preset()
    with pytest.warns(FutureWarning, match="model.kwargs.X is deprecated"):  # 0.1's spelling
        assert recipes.load(ROOT / RECIPE, ["model.kwargs.g_units=[8]"]).model["g_units"] == [8]
    with pytest.warns(FutureWarning, match="train.object_buckets = true is deprecated"):
        r = recipes.load(ROOT / "training/recipes/rn_clevr_state.toml", ["train.object_buckets=true"])
    assert r.train.feed == "object_buckets"
    cells = recipes.load(ROOT / "training/recipes/rn_clevr_cells.toml")
    assert cells.train.init_from == "rn_clevr_state" and cells.train.freeze and cells.train.cell_loss == 1.0
    fresh = recipes.load(ROOT / "training/recipes/rn_clevr_cells.toml",
                         ["train.init_from=null", "train.init_layers=null", "train.nothing_here=null"])
    assert fresh.train.init_from is None and fresh.train.init_layers is None and fresh.train.freeze  # defaults


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.epochs=0"], "train.epochs must be >= 1"),
        (["train.epochs=2.5"], "train.epochs must be int"),
        (["train.strategy=tpu_pod"], "strategy must be one of"),
        (["train.learnig_rate=1e-3"], "unknown \\[train\\] keys"),
        (["train.learning_rate=-1"], "learning_rate must be > 0"),
        (["noequals"], "dotted.path=value"),
        (["train.decay_steps=-5"], "decay_steps must be >= 0"),
        (["train.decay_steps=5"], "must exceed train.warmup_steps"),
        (["train.decay_steps=1000", "train.decay_to=1.5"], "decay_to must be <= 1"),
        (["train.image_shift=4"], "set train.feed = \"scenes\""),
        (["train.feed=device", "train.strategy=mirrored"], "default strategy only"),
        (["dataset.train_sise=8"], "the preset's data set spec has"),
        (["preset=rn_nowhere"], "Unknown model 'rn_nowhere'"),
        (["extra=1"], "unknown keys \\['extra'\\]"),
    ],
)
def test_recipe_errors(overrides, message):
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load(ROOT / RECIPE, overrides)


def test_model_overrides_the_builder_does_not_take_are_refused():
    recipe = recipes.load(ROOT / RECIPE, ["model.g_unitz=[8]"])  # reading a recipe needs no Keras
    with pytest.raises(recipes.RecipeError, match="\\['g_unitz'\\], which the builder 'rn_state' does not take"):
        recipe.check_model()
    assert recipes.load(ROOT / RECIPE, ["model.g_units=[8]"]).check_model().model["g_units"] == [8]


def test_warmup_cosine_schedule_values_and_round_trip():
    import keras

    from training.optimizer import make_optimizer
    from training.schedules import WarmupCosine

    sched = WarmupCosine(1e-3, warmup_steps=10, decay_steps=110, final_fraction=0.1)
    lr = lambda step: float(sched(step))  # noqa: E731
    assert lr(0) == pytest.approx(1e-4) and lr(9) == pytest.approx(1e-3)  # linear warm-up
    assert lr(10) == pytest.approx(1e-3)  # the cosine starts at the peak
    assert lr(60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5)) # half way down
    assert lr(110) == pytest.approx(1e-4) and lr(10_000) == pytest.approx(1e-4)  # then flat at the floor
    assert all(lr(s) >= lr(s + 1) - 1e-12 for s in range(10, 120))
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert isinstance(again, WarmupCosine) and again.get_config() == sched.get_config()
    with pytest.raises(ValueError, match="must exceed"):
        WarmupCosine(1e-3, warmup_steps=10, decay_steps=10)

    r = recipes.load(ROOT / RECIPE, ["train.decay_steps=2000", "train.decay_to=0.05"])
    opt = make_optimizer(r.train)
    schedule = keras.optimizers.schedules.deserialize(opt.get_config()["learning_rate"])
    assert isinstance(schedule, WarmupCosine)  # the schedule itself, not its current value
    assert recipes.load(ROOT / RECIPE, []).train.decay_steps == 0  # off unless asked for


def test_every_preset_has_its_recipe_and_every_recipe_names_a_preset():
    """A recipe holds training settings only: the architecture and data come from its preset."""
    for name in relzoo.list_models():
        preset = relzoo.presets.get(name)
        assert preset.recipe == f"training/recipes/{name}.toml", name
        assert recipes.load(ROOT / preset.recipe).is_preset(), name
    for path in sorted((ROOT / "training" / "recipes").glob("*.toml")):
        r = recipes.load(path)
        assert r.is_preset() or r.name not in relzoo.list_models(include_test=True), path.name
        assert "builder" not in r.table.get("model", {}) and "kwargs" not in r.table.get("model", {}), path.name


def test_publish_refuses_a_recipe_that_is_not_its_preset():
    from training.publish import check_publishable

    check_publishable(recipes.load(ROOT / RECIPE))
    with pytest.raises(SystemExit, match="model differ from the preset 'rn_nearest_object'"):
        check_publishable(recipes.load(ROOT / RECIPE, ["model.g_units=[8]"]))
    with pytest.raises(SystemExit, match="dataset differ"):
        check_publishable(recipes.load(ROOT / RECIPE, SMALL))
    with pytest.raises(SystemExit, match="'rn_clevr_gpu' is none"):
        check_publishable(recipes.load(ROOT / "training/recipes/rn_clevr_gpu.toml"))


def test_bad_recipe_is_a_clear_error(tmp_path):
    out = _train(tmp_path / "run", "train.epochs=-2")
    assert out.returncode == 2 and "train.epochs must be >= 1" in out.stderr


# ------------------------------------------------------------------ default + logs
@pytest.mark.slow
def test_train_default_writes_artifact_card_and_tensorboard(tmp_path):
    run = tmp_path / "run"
    out = _train(run, *SMALL, "train.epochs=3")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Epoch 3/3" in out.stdout  # progress per epoch
    card = artifacts.read_card(run / "artifact")
    assert card["training"]["strategy"] == "default" and card["training"]["replicas"] == 1
    test = [m for m in card["metrics"] if m["split"] == "test"][0]
    assert test["num_examples"] == 256 and 0.0 <= test["values"]["accuracy"] <= 1.0
    assert card["training"]["wall_time_s"] > 0 and card["training"]["samples_per_s"] > 0
    # the card's metric is what the evaluation code measures on that artifact
    from relzoo.evaluate import evaluate_model

    model = relzoo.load("rn_nearest_object", weights=run / "artifact" / "model.keras")
    again = evaluate_model(model, card["dataset"], "test")
    assert again["values"] == test["values"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def tags(sub):
        ea = EventAccumulator(str(run / "logs" / sub), size_guidance={"tensors": 0})
        ea.Reload()
        return ea

    train = tags("train")
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert tag in train.Tags()["tensors"], train.Tags()
        assert len(train.Tensors(tag)) == 3
    import tensorflow as tf

    lrs = [float(tf.make_ndarray(e.tensor_proto)) for e in train.Tensors("epoch_learning_rate")]
    assert lrs[-1] == pytest.approx(2e-3)  # the recipe's peak, after the warm-up
    validation = tags("validation")
    assert {"epoch_loss", "epoch_accuracy"} <= set(validation.Tags()["tensors"])
    root = tags("")
    assert "_hparams_/session_start_info" in root.Tags()["tensors"]
    assert "hparams" in root.PluginAssets("hparams") or root.PluginTagToContent("hparams")


# ------------------------------------------------------------------------- resume
@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = ["dataset.train_size=6144", "dataset.validation_size=256", "dataset.test_size=256", "train.epochs=25"]
    cmd = [sys.executable, "-m", "training.train", RECIPE, *args, "--run-dir", str(run), "--verbose", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    meta = run / "backup" / "training_metadata.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if meta.is_file():
                try:
                    if json.loads(meta.read_text())["epoch"] >= 2:
                        break
                except (ValueError, KeyError):
                    pass
            if proc.poll() is not None:
                pytest.fail("the run ended before it could be killed:\n" + proc.stdout.read()[-3000:])
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint of epoch 2 within the time limit")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "artifact").exists()
    killed_at = json.loads(meta.read_text())["epoch"]
    assert 2 <= killed_at < 25

    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming from the checkpoint in {run / 'backup'}: {killed_at} of 25 epochs done" in out.stdout
    assert f"Epoch {killed_at + 1}/25" in out.stdout and "Epoch 1/25" not in out.stdout
    assert "train split from the cache" in out.stdout  # the resumed run does not generate its data again
    card = artifacts.read_card(run / "artifact")
    assert card["training"]["resumed_at_epoch"] == killed_at
    # the curves and the training time cover the whole run, both invocations
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 25
    epochs = json.loads((run / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == list(range(1, 26))
    assert [e["epoch"] for e in epochs if e["first_in_invocation"]] == [1, killed_at + 1]
    assert card["training"]["train_time_s"] == pytest.approx(sum(e["seconds"] for e in epochs), abs=0.2)


CHECKPOINT_ORDER = r"""
import json, sys
from pathlib import Path
from training import checkpoints, train

run = Path(sys.argv[1])
original = checkpoints.write_checkpoint

def save_and_report(*args):
    original(*args)  # the moment a kill would leave this checkpoint as the last one
    saved = checkpoints.completed_epochs(run / "backup")
    logged = len(json.loads((run / "epochs.json").read_text()))
    print(f"checkpoint {saved} logged {logged}", flush=True)

checkpoints.write_checkpoint = save_and_report
sys.exit(train.main(sys.argv[2:]))
"""


def test_every_checkpoint_comes_after_its_epoch_is_logged(tmp_path):
    """A kill right after any checkpoint leaves an epoch log that covers it (the resumed run's
    curves and training time then hold every epoch)."""
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", CHECKPOINT_ORDER, str(run), RECIPE, *SMALL, "train.epochs=3",
                          "--run-dir", str(run), "--verbose", "0"],
                         cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = [tuple(int(w) for w in line.split()[1::2]) for line in out.stdout.splitlines()
            if line.startswith("checkpoint ")]
    assert [saved for saved, _ in seen] == [1, 2, 3]
    assert all(logged >= saved for saved, logged in seen), seen


def test_a_kill_at_any_moment_of_a_checkpoint_write_leaves_a_whole_checkpoint(tmp_path, monkeypatch):
    import keras
    from training import checkpoints
    from training.callbacks import NaNGuard

    def fresh(seed):  # a compiled model whose optimizer is not built yet, as when fit begins
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        return model

    def trained(seed):
        model = fresh(seed)
        model.fit(np.ones((4, 3)), np.full((4, 2), seed, "float32"), verbose=0)
        return model

    def resume_into(model):
        callback = checkpoints.EpochCheckpoint(backup, NaNGuard())
        callback.set_model(model)
        callback.on_train_begin()
        return model

    def assert_same_weights(a, b):  # the optimizer's state (Adam's moments, its step) comes back too
        for x, y in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables, strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))

    backup = tmp_path / "backup"
    first = trained(1)
    checkpoints.write_checkpoint(first, backup, 1)
    assert checkpoints.completed_epochs(backup) == 1

    # killed while the weights are being written: the previous checkpoint is untouched
    def dies_midway(self, filepath, overwrite=True):
        Path(filepath).write_bytes(b"\x89HDF\r\n\x1a\n half of a file")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(keras.Model, "save_weights", dies_midway)
        with pytest.raises(KeyboardInterrupt):
            checkpoints.write_checkpoint(trained(2), backup, 2)
    assert checkpoints.completed_epochs(backup) == 1
    assert_same_weights(resume_into(fresh(3)), first)

    # killed after the weights, before Keras's metadata file: the weights carry their own epoch
    second = trained(2)
    real_replace = os.replace

    def dies_before_the_metadata(src, dst):
        if Path(dst).name == "training_metadata.json":
            raise KeyboardInterrupt
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", dies_before_the_metadata)
        with pytest.raises(KeyboardInterrupt):
            checkpoints.write_checkpoint(second, backup, 2)
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    assert checkpoints.completed_epochs(backup) == 2
    assert_same_weights(resume_into(fresh(3)), second)

    # a damaged checkpoint stops the run with a clear error and is left as it was
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:200])
    damaged = weights.read_bytes()
    with pytest.raises(checkpoints.CheckpointError, match="cannot be loaded into this run.s model.*--restart"):
        resume_into(trained(3))
    assert weights.read_bytes() == damaged


def test_generated_data_is_cached_by_spec_and_code(tmp_path, capsys):
    from training import data

    recipe = recipes.load(ROOT / RECIPE, SMALL)
    first = data.load_data(recipe.dataset, cache_dir=tmp_path)
    assert "cached as" in capsys.readouterr().out
    files = sorted(tmp_path.glob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["test", "train", "validation"]
    again = data.load_data(recipe.dataset, cache_dir=tmp_path)
    assert capsys.readouterr().out.count("from the cache") == 3
    for split in first:
        np.testing.assert_array_equal(first[split].answers, again[split].answers)
        for k, v in first[split].batch(slice(None)).items():
            np.testing.assert_array_equal(v, again[split].batch(slice(None))[k])
    # a damaged file is generated again, never used
    train_file = [f for f in files if f.name.startswith("train")][0]
    train_file.write_bytes(train_file.read_bytes()[:100])
    third = data.load_data(recipe.dataset, cache_dir=tmp_path)
    assert "unreadable" in capsys.readouterr().out
    np.testing.assert_array_equal(third["train"].answers, first["train"].answers)
    # another spec is another file
    other = recipes.load(ROOT / RECIPE, SMALL + ["dataset.seed=5"])
    assert data.fingerprint(other.dataset, "train") != data.fingerprint(recipe.dataset, "train")


def test_prepare_data_only_fills_the_cache_that_training_then_uses(tmp_path):
    run_dir = tmp_path / "run"
    prepared = _train(run_dir, *SMALL, "train.epochs=1", "--prepare-data")
    assert prepared.returncode == 0, prepared.stderr
    assert "data ready" in prepared.stdout
    assert sorted(f.name.split("-")[0] for f in (run_dir / "data").glob("*.npz")) == ["test", "train", "validation"]
    assert not (run_dir / "backup").exists() and not (run_dir / "epochs.json").exists()  # nothing trained
    trained = _train(run_dir, *SMALL, "train.epochs=1")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.count("from the cache") == 3 and "generated the" not in trained.stdout
    assert (run_dir / "backup").is_dir() and (run_dir / "artifact").is_dir()
    # --restart discards the checkpoint, logs and artifact, never the generated data
    data = {f.name: f.read_bytes() for f in (run_dir / "data").iterdir()}
    restarted = _train(run_dir, *SMALL, "train.epochs=1", "--restart", "--prepare-data")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.count("from the cache") == 3 and "generated the" not in restarted.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == ["data", "recipe.json"]  # this invocation's recipe
    assert {f.name: f.read_bytes() for f in (run_dir / "data").iterdir()} == data
    refused = _train(tmp_path / "other", *SMALL, "--prepare-data", "--no-data-cache")
    assert refused.returncode == 2 and "cannot be combined" in refused.stderr


def test_concurrent_writers_of_one_cache_file_all_succeed(tmp_path, monkeypatch):
    """The workers of a multi-worker run share a run directory and may cache the same split at once."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from relzoo.datasets.examples import Examples
    from relzoo.datasets import load_split

    recipe = recipes.load(ROOT / RECIPE, SMALL)
    examples = load_split(recipe.dataset, "validation")
    path = tmp_path / "validation.npz"
    real_savez = np.savez

    def slow_savez(*args, **kwargs):  # every writer finishes writing before any renames
        real_savez(*args, **kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(np, "savez", slow_savez)
    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(lambda _: examples.save(path), range(8)))
    assert written == [path] * 8
    np.testing.assert_array_equal(Examples.load(path).answers, examples.answers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["validation.npz"]  # no temporary file left behind


# ---------------------------------------------------------------------------- NaN
@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = _train(run, *SMALL, "train.epochs=2")
    assert first.returncode == 0, first.stderr[-3000:]
    weights = run / "backup" / "latest.weights.h5"
    good_sha = artifacts.sha256_file(weights)
    # the same run, continued with a learning rate that diverges
    out = _train(run, *SMALL, "train.epochs=4", "train.learning_rate=1e30", "train.clipnorm=0")
    assert out.returncode == 3, (out.returncode, out.stderr[-3000:])
    assert "training stopped: the loss became" in out.stderr and "at epoch 3" in out.stderr
    assert f"The last good checkpoint (the end of epoch 2) is kept in {run / 'backup'}" in out.stderr
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert artifacts.sha256_file(weights) == good_sha


# ------------------------------------------------------------------ strategies
@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tmp_path):
    out = _train(tmp_path / "run", *SMALL, "train.epochs=2", "--strategy", "mirrored", "--cpu-devices", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "strategy mirrored (2 replicas)" in out.stdout
    card = artifacts.read_card(tmp_path / "run" / "artifact")
    assert card["training"]["strategy"] == "mirrored" and card["training"]["replicas"] == 2


def _free_ports(k):
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_workers(run, epochs):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        cmd = [sys.executable, "-m", "training.train", RECIPE, *SMALL, f"train.epochs={epochs}", "--strategy",
               "multi_worker", "--run-dir", str(run), "--verbose", "2"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300)[0])
    finally:
        for p in procs:  # never leave a worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]
    return outputs


def _assert_workers_identical(run):
    a = np.load(run / "workers" / "0" / "final_weights.npz")
    b = np.load(run / "workers" / "1" / "final_weights.npz")
    assert a.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    return a


@pytest.mark.slow
def test_multi_worker_two_processes_keep_identical_weights_and_resume(tmp_path):
    run = tmp_path / "run"
    outputs = _run_workers(run, epochs=2)
    assert "strategy multi_worker (2 replicas)" in outputs[0]
    a = _assert_workers_identical(run)
    card = artifacts.read_card(run / "artifact")
    assert card["training"]["strategy"] == "multi_worker" and card["training"]["replicas"] == 2
    # the chief's artifact holds the trained weights
    model = relzoo.load("rn_nearest_object", weights=run / "artifact" / "model.keras")
    for w, k in zip(model.get_weights(), a.files):
        np.testing.assert_array_equal(w, a[k])
    # the same command with more epochs continues from the chief's checkpoint
    outputs = _run_workers(run, epochs=3)
    assert "2 of 3 epochs done" in outputs[0] and "Epoch 3/3" in outputs[0] and "Epoch 1/3" not in outputs[0]
    _assert_workers_identical(run)


# --------------------------------------------------------------------------- JAX


@pytest.mark.slow
def test_jax_backend_without_tensorflow(tmp_path, train_without_tensorflow):
    run = tmp_path / "run"
    cmd = [sys.executable, "-c", train_without_tensorflow, RECIPE, *SMALL, "train.epochs=2", "--run-dir", str(run),
           "--verbose", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "backend jax" in out.stdout
    card = artifacts.read_card(run / "artifact")
    assert card["training"]["backend"] == "jax"
    # the JAX-trained artifact loads here (TensorFlow) and reproduces its card
    from relzoo.evaluate import evaluate_model

    model = relzoo.load("rn_nearest_object", weights=run / "artifact" / "model.keras")
    test = [m for m in card["metrics"] if m["split"] == "test"][0]
    assert evaluate_model(model, card["dataset"], "test")["values"] == test["values"]


@pytest.mark.slow
def test_sort_of_clevr_pixels_in_bfloat16_give_a_float32_artifact_with_per_type_metrics(tmp_path):
    """Scenes gathered per batch, a mixed_bfloat16 step, a float32 artifact whose card the evaluation reproduces."""
    run = tmp_path / "run"
    tiny = ["dataset.train_size=6", "dataset.validation_size=2", "dataset.test_size=2", "train.epochs=1",
            "model.conv_filters=4", "model.g_units=[8, 8]", "model.f_units=[8]", "train.warmup_steps=2"]
    cmd = [sys.executable, "-m", "training.train", "training/recipes/rn_sort_of_clevr.toml", *tiny,
           "--run-dir", str(run), "--verbose", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    card = artifacts.read_card(run / "artifact")
    assert card["training"]["recipe_values"]["train"]["dtype_policy"] == "mixed_bfloat16"
    test = [m for m in card["metrics"] if m["split"] == "test"][0]
    assert test["num_examples"] == 60
    for key in ("accuracy", "accuracy/non-relational", "accuracy/binary", "accuracy/ternary",
                "accuracy/binary/closest shape"):
        assert 0.0 <= test["values"][key] <= 1.0
    model = relzoo.load("rn_sort_of_clevr", weights=run / "artifact" / "model.keras")
    assert model.dtype_policy.name == "float32"
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers if hasattr(layer, "dtype_policy"))
    from relzoo.evaluate import evaluate_model

    assert evaluate_model(model, card["dataset"], "test")["values"] == test["values"]
    # BatchNormalization statistics recomputed under the final weights, and validation per epoch after it
    assert card["training"]["bn_recalibration"]["layers"] == 4
    epochs = json.loads((run / "epochs.json").read_text())
    assert {"val_loss", "val_accuracy"} <= set(epochs[0]["logs"])


def test_recalibrated_batch_norm_holds_the_average_batch_statistics():
    import keras

    from relzoo.datasets import load_split
    from training import batch_norm

    recipe = recipes.load(ROOT / "training/recipes/rn_sort_of_clevr.toml",
                          ["model.conv_filters=4", "model.g_units=[8, 8]", "model.f_units=[8]", "dataset.train_size=4"])
    model = recipe.build("float32")
    examples = load_split(recipe.dataset, "train")
    bn = model.get_layer("conv_1_bn")
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 50.0, "float32"))  # stale statistics
    assert batch_norm.recalibrate(model, examples, batches=5, batch_size=16, seed=3) == 4
    assert bn.momentum == 0.99  # restored
    # independently: the batch means of conv_1_bn's input, on the same 5 batches, under the same
    # (training-mode) normalisation of the layers before it
    index = np.random.default_rng(3).permutation(len(examples))[:80]
    upstream = keras.Model(model.inputs, bn.input)
    means = [np.asarray(upstream(examples.batch(index[i * 16:(i + 1) * 16]), training=True)).mean(axis=(0, 1, 2))
             for i in range(5)]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean(means, axis=0), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------- warm start
def _tiny_model(recipe, **kwargs):
    return recipe.build(**kwargs)


def test_warm_start_copies_every_weight_and_refuses_what_does_not_match(tmp_path):
    from training.errors import CheckpointError
    from training.run_folder import RunFolder
    from training.warm_start import warm_start

    source_path = tmp_path / "source.keras"
    artifacts.save_model_file(_tiny_model(recipes.load(ROOT / RECIPE)), source_path)
    recipe = recipes.load(ROOT / RECIPE, [f"train.init_from={json.dumps(str(source_path))}"])
    run = RunFolder(tmp_path / "run").create()
    model = _tiny_model(recipe)
    source = relzoo.load("rn_nearest_object", weights=source_path)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), source.get_weights()))
    record = warm_start(model, recipe.train.init_from, run, done=0)
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert record["sha256"] == artifacts.sha256_file(source_path)
    assert json.loads((run.root / "init_from.json").read_text())["init_from"] == str(source_path)
    # a resumed run keeps the record of what it began from, and refuses another source
    assert warm_start(model, recipe.train.init_from, run, done=1)["sha256"] == record["sha256"]
    with pytest.raises(CheckpointError, match="began from .*source.keras.*--restart"):
        warm_start(model, None, run, done=1)
    # another architecture, a missing file
    with pytest.raises(CheckpointError, match="architectures differ"):
        warm_start(_tiny_model(recipe, g_units=[8, 8]), recipe.train.init_from, RunFolder(tmp_path / "run2").create(),
                   done=0)
    with pytest.raises(CheckpointError, match="neither a zoo model"):
        warm_start(model, "no_such_dir/x.keras", RunFolder(tmp_path), done=0)
    with pytest.raises(recipes.RecipeError, match="init_from must be str or null"):
        recipes.load(ROOT / RECIPE, ["train.init_from=3"])


def test_warm_start_record_lists_the_earlier_sources_flat(tmp_path):
    """A source that was itself warm-started: its chain is recorded as a flat list of what identifies
    each earlier source (not the nested records, recipe included, that grew a card at every restart);
    cards written before the list existed, with the chain nested under source_init_from, are read too."""
    from training.warm_start import EARLIER_SOURCE_KEYS, earlier_sources, load_source

    big = {"train": {"learning_rate": 5e-4, "epochs": 12}}
    oldest = {"init_from": "rn", "sha256": "a" * 64, "git_commit": "c1", "card_created": "t1", "epochs": 6,
              "test_metrics": {"accuracy": 0.49}, "recipe_values": big, "hardware": "cpu",
              "source_init_from": None}
    middle = dict(oldest, sha256="b" * 64, git_commit="c2", epochs=12, test_metrics={"accuracy": 0.52},
                  source_init_from=oldest)
    folder = tmp_path / "artifact"
    folder.mkdir()
    weights = folder / "model.keras"
    artifacts.save_model_file(_tiny_model(recipes.load(ROOT / RECIPE)), weights)
    card = artifacts.read_card(ROOT / "saved_models" / "rn_nearest_object")
    card.update(weights_file="model.keras", sha256=artifacts.sha256_file(weights), size_bytes=weights.stat().st_size)
    card["training"] = dict(card["training"], epochs=12, init_from=middle)
    (folder / artifacts.CARD_FILE).write_text(json.dumps(card))
    _, record = load_source(str(weights))
    assert record["sha256"] == card["sha256"] and record["epochs"] == 12
    assert "source_init_from" not in record
    assert record["earlier_sources"] == [{k: middle[k] for k in EARLIER_SOURCE_KEYS},
                                         {k: oldest[k] for k in EARLIER_SOURCE_KEYS}]
    assert all(set(e) == set(EARLIER_SOURCE_KEYS) for e in record["earlier_sources"])
    # one restart later, the chain grows by one short entry, not by a level of nesting
    later = earlier_sources({k: v for k, v in record.items() if k != "file"})
    assert [e["sha256"] for e in later] == [card["sha256"], "b" * 64, "a" * 64]
    assert earlier_sources(None) == []


@pytest.mark.slow
def test_warm_started_run_records_its_source_and_the_totals(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    out = _train(first, *SMALL, "train.epochs=1")
    assert out.returncode == 0, out.stderr[-3000:]
    source = first / "artifact" / "model.keras"
    card_a = artifacts.read_card(first / "artifact")
    out = _train(second, *SMALL, "train.epochs=2", f"train.init_from={json.dumps(str(source))}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "starting from the weights of" in out.stdout
    card_b = artifacts.read_card(second / "artifact")
    init = card_b["training"]["init_from"]
    assert init["sha256"] == card_a["sha256"] and init["epochs_total"] == 1
    assert init["earlier_sources"] == []  # the source was trained from scratch
    assert init["test_metrics"] == [m for m in card_a["metrics"] if m["split"] == "test"][0]["values"]
    assert card_b["training"]["epochs_total"] == 3
    assert card_b["training"]["train_time_total_s"] == pytest.approx(
        card_b["training"]["train_time_s"] + card_a["training"]["train_time_s"], abs=0.2)
    # a source altered after its card was written is refused, naming the file
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    source.write_bytes(bytes(data))
    out = _train(tmp_path / "third", *SMALL, "train.epochs=1", f"train.init_from={json.dumps(str(source))}")
    assert out.returncode == 4 and "sha256" in out.stderr and "model.keras" in out.stderr


@pytest.mark.slow
def test_recalibration_on_jax_is_jitted_and_equals_the_eager_average():
    """On JAX, `batch_norm.recalibrate` runs one compiled forward pass for every batch (eagerly, a JAX
    model compiles its LSTM's scan again on each call); its statistics equal the eager loop's."""
    pytest.importorskip("jax")
    script = textwrap.dedent("""
        import numpy as np, keras
        from training import batch_norm, recipe as recipes
        recipe = recipes.load("training/recipes/rn_clevr.toml", ["model.conv_filters=4",
            "model.g_units=[8, 8]", "model.f_units=[8]", "model.lstm_units=8",
            "model.image_size=32", "model.conv_layers=3"])
        from relzoo.datasets.examples import Examples
        rng = np.random.default_rng(0)
        ex = Examples(inputs={"question": rng.integers(1, 80, (40, 50)).astype("int32")},
                      answers=rng.integers(0, 28, 40), scenes={"image": rng.integers(0, 256, (6, 32, 32, 3),
                      dtype=np.uint8)}, scene_index=rng.integers(0, 6, 40), scale={"image": 1 / 255})
        model = recipe.build("float32")
        eager = recipe.build("float32")
        eager.set_weights(model.get_weights())
        assert batch_norm.recalibrate(model, ex, batches=4, batch_size=8, seed=3) == 3
        layers = batch_norm.batch_norm_layers(eager)
        index = np.random.default_rng(3).permutation(len(ex))[:32]
        for i in range(4):  # the eager loop of the other backends
            for layer in layers:
                layer.momentum = i / (i + 1)
            eager(ex.batch(index[i * 8:(i + 1) * 8]), training=True)
        for a, b in zip(batch_norm.batch_norm_layers(model), layers):
            assert a.momentum == 0.99
            np.testing.assert_allclose(np.asarray(a.moving_mean), np.asarray(b.moving_mean), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(np.asarray(a.moving_variance), np.asarray(b.moving_variance), rtol=1e-4,
                                       atol=1e-6)
        print("same statistics")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, KERAS_BACKEND="jax", JAX_LOG_COMPILES="1", PYTHONPATH=str(ROOT)))
    assert out.returncode == 0 and "same statistics" in out.stdout, out.stderr[-3000:]
    scans = [line for line in out.stderr.splitlines() if "Finished XLA compilation of jit(batch_statistics)" in line]
    assert len(scans) == 1, scans  # one compile for the 4 batches
