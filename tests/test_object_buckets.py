"""Object-count buckets (training/object_buckets.py): batches of scenes of one size, cut to it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras
from relzoo.datasets.examples import Examples
from relzoo.models import get_builder
from training import recipe as recipes
from training.object_buckets import ObjectBuckets, ObjectBucketsError, object_counts

ROOT = Path(__file__).resolve().parent.parent


def _examples(num_scenes=9, max_objects=6, seed=0, per_scene=3):
    """State-like Examples: scenes of 1..max_objects packed objects, `per_scene` questions each."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_objects + 1, num_scenes)
    mask = np.arange(max_objects)[None, :] < counts[:, None]  # (S, n), real objects first
    objects = np.where(mask[..., None], rng.normal(size=(num_scenes, max_objects, 5)), 0).astype("float32")
    scene_index = rng.permutation(np.repeat(np.arange(num_scenes), per_scene))
    n = len(scene_index)
    lengths = rng.integers(2, 7, n)
    question = np.where(np.arange(9)[None, :] < lengths[:, None], rng.integers(1, 20, (n, 9)), 0).astype("int32")
    return Examples(inputs={"question": question}, answers=rng.integers(0, 4, n),
                    scenes={"objects": objects, "object_mask": mask}, scene_index=scene_index), counts


def test_counts_come_from_each_examples_scene():
    ex, counts = _examples()
    np.testing.assert_array_equal(object_counts(ex), counts[ex.scene_index])


def test_every_example_once_per_epoch_in_batches_of_one_size_cut_to_it():
    ex, counts = _examples(num_scenes=20)
    batches = ObjectBuckets(ex, 4, seed=1, shuffle=True, trim=("question",), trim_multiple=1)
    seen = []
    for i in range(len(batches)):
        x, y = batches[i]
        size = x["objects"].shape[1]
        assert x["object_mask"].shape == (len(y), size) and x["object_mask"].all()  # only real objects remain
        assert 1 <= len(y) <= 4
        rows = batches.batches[i][1]
        np.testing.assert_array_equal(object_counts(ex)[rows], size)
        np.testing.assert_array_equal(x["objects"], ex.batch(rows)["objects"][:, :size])
        np.testing.assert_array_equal(y, ex.answers[rows])
        full = ex.batch(rows)["question"]
        assert x["question"].shape[1] == max(int(np.flatnonzero(r)[-1]) + 1 for r in full)
        seen += list(rows)
    assert sorted(seen) == list(range(len(ex)))
    assert np.isclose(batches.mean_pairs(), np.mean(counts[ex.scene_index] ** 2))


def test_order_is_seeded_by_epoch_and_a_resumed_run_continues_it():
    ex, _ = _examples(num_scenes=30)
    run = ObjectBuckets(ex, 3, seed=5, shuffle=True)
    epoch0 = [b[1].tolist() for b in run.batches]
    run.on_epoch_end()
    epoch1 = [b[1].tolist() for b in run.batches]
    assert epoch0 != epoch1
    sizes = [b[0] for b in run.batches]
    assert sizes != sorted(sizes)  # the sizes interleave
    resumed = ObjectBuckets(ex, 3, seed=5, shuffle=True, start_epoch=1)
    assert [b[1].tolist() for b in resumed.batches] == epoch1
    assert [b[1].tolist() for b in ObjectBuckets(ex, 3, seed=6, shuffle=True).batches] != epoch0
    unshuffled = ObjectBuckets(ex, 3)
    assert [b[0] for b in unshuffled.batches] == sorted(b[0] for b in unshuffled.batches)


def test_a_cut_batch_gets_the_padded_batchs_answers_and_loss_gradients():
    ex, _ = _examples(num_scenes=12, max_objects=6)
    kwargs = dict(vocab_size=20, object_dim=5, num_answers=4, embedding_dim=4, lstm_units=8, g_units=(8, 8),
                  f_units=(8,), dropout=0.0)
    keras.utils.set_random_seed(0)
    fixed = get_builder("rn_clevr_state")(num_objects=6, **kwargs)
    flexible = get_builder("rn_clevr_state")(num_objects=None, **kwargs)
    flexible.set_weights(fixed.get_weights())
    batches = ObjectBuckets(ex, 5, shuffle=True, trim=("question",), trim_multiple=1)
    sizes = set()
    for i in range(len(batches)):
        x, _ = batches[i]
        padded = ex.batch(batches.batches[i][1])
        sizes.add(x["objects"].shape[1])
        np.testing.assert_allclose(flexible(x), fixed(padded), rtol=1e-5, atol=1e-5)
    assert len(sizes) > 2


def test_tf_dataset_passes_batches_of_every_size_then_the_next_epoch():
    ex, _ = _examples(num_scenes=15)
    batches = ObjectBuckets(ex, 4, seed=2, shuffle=True, trim=("question",), trim_multiple=1)
    epoch0 = [(size, len(rows)) for size, rows in batches.batches]
    ds = batches.tf_dataset()
    assert ds.element_spec[0]["objects"].shape.as_list() == [None, None, 5]
    assert int(ds.cardinality()) == len(batches)
    assert [(x["objects"].shape[1], len(y)) for x, y in ds] == epoch0
    epoch1 = [(size, len(rows)) for size, rows in ObjectBuckets(ex, 4, seed=2, shuffle=True, start_epoch=1).batches]
    assert epoch1 != epoch0
    assert [(x["objects"].shape[1], len(y)) for x, y in ds] == epoch1  # the second pass is epoch 1


def test_fit_sees_a_new_order_each_epoch_without_running_past_the_last_batch():
    ex, _ = _examples(num_scenes=40)
    batches = ObjectBuckets(ex, 4, seed=1, shuffle=True, trim=("question",), trim_multiple=1)
    model = get_builder("rn_clevr_state")(num_objects=None, vocab_size=20, object_dim=5, num_answers=4,
                                          embedding_dim=4, lstm_units=8, g_units=(8,), f_units=(8,), dropout=0.0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(batches.epoch))
    history = model.fit(batches.tf_dataset(), epochs=3, verbose=0, callbacks=[record])
    assert seen == [0, 1, 2] and len(history.history["loss"]) == 3


def test_errors_say_what_is_expected():
    ex, _ = _examples()
    with pytest.raises(ObjectBucketsError, match="'objects' and 'object_mask'"):
        object_counts(Examples(inputs={"question": ex.inputs["question"]}, answers=ex.answers))
    gap = dict(ex.scenes)
    gap["object_mask"] = gap["object_mask"].copy()
    gap["object_mask"][2] = [True, False, True, False, False, False]
    with pytest.raises(ObjectBucketsError, match="real objects first.*row 2"):
        object_counts(Examples(inputs=ex.inputs, answers=ex.answers, scenes=gap, scene_index=ex.scene_index))
    with pytest.raises(ValueError, match="positive integer"):
        ObjectBuckets(ex, 0)
    with pytest.raises(IndexError):
        ObjectBuckets(ex, 4)[10_000]
    base = {"preset": "rn_clevr_state", "seed": 0}
    with pytest.raises(recipes.RecipeError, match="true or false"):
        recipes.resolve(dict(base, train={"object_buckets": 1}))
    with pytest.raises(recipes.RecipeError, match="feed must be one of"):
        recipes.resolve(dict(base, train={"feed": "buckets"}))


# ------------------------------------------------------------------------ the trainer
TINY = ["dataset.train_size=12", "dataset.validation_size=2", "dataset.test_size=2", "train.batch_size=8",
        "train.warmup_steps=2", "model.g_units=[16, 16]", "model.f_units=[16]",
        "model.lstm_units=16", "model.embedding_dim=8", "train.feed=object_buckets",
        "train.dtype_policy=\"float32\""]


def _train(run_dir, recipe, *args):
    cmd = [sys.executable, "-m", "training.train", f"training/recipes/{recipe}", *TINY, *args,
           "--run-dir", str(run_dir), "--verbose", "2"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1"))


@pytest.mark.slow
def test_the_trainer_trains_with_buckets_resumes_and_publishes_the_fixed_size_model(tmp_path):
    from relzoo import artifacts, hub, presets

    run = tmp_path / "run"
    first = _train(run, "rn_clevr_state.toml", "train.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "object-count buckets: batches of up to 8 questions" in first.stdout
    second = _train(run, "rn_clevr_state.toml", "train.epochs=2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "1 of 2 epochs done" in second.stdout
    epochs = json.loads((run / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2] and all("val_accuracy" in e["logs"] for e in epochs)
    artifacts.verify_artifact(run / "artifact")
    model = hub.load_keras_file(run / "artifact" / "model.keras")
    assert model.input["objects"].shape == (None, 10, 18)  # the recipe's model, not the training twin
    card = json.loads((run / "artifact" / "card.json").read_text())
    assert card["training"]["recipe_values"]["train"]["feed"] == "object_buckets"
    refused = _train(tmp_path / "pixels", "rn_clevr.toml", "train.image_shift=0", "train.image_rotation=0.0")
    assert refused.returncode == 2 and "builder takes num_objects" in refused.stderr
    mirrored = _train(tmp_path / "mirrored", "rn_clevr_state.toml", "--strategy", "mirrored")
    assert mirrored.returncode == 2 and "default strategy only" in mirrored.stderr


@pytest.mark.slow
def test_buckets_train_on_jax_without_tensorflow(tmp_path, train_without_tensorflow):
    """The lent GPU machines run JAX and have no TensorFlow: the buckets feed fit as numpy."""
    run = tmp_path / "run"
    # 4 scenes: a few bucket shapes (each one a compile of the step under JAX), not a dozen
    cmd = [sys.executable, "-c", train_without_tensorflow, "training/recipes/rn_clevr_state.toml", *TINY,
           "dataset.train_size=4", "train.epochs=1", "--run-dir", str(run), "--verbose", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "backend jax" in out.stdout and "object-count buckets" in out.stdout
    assert json.loads((run / "artifact" / "card.json").read_text())["training"]["backend"] == "jax"
