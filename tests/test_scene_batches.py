"""Scene-grouped training (training/scene_batches.py): the twin model and its batches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras
from relzoo.datasets.examples import Examples
from relzoo.models import build_rn_pixels, build_rn_state, get_builder
from training import recipe as recipes
from training.scene_batches import SLOT, SceneBatches, scene_grouped_model

ROOT = Path(__file__).resolve().parent.parent


def _examples(num_scenes=5, size=12, seed=0, uneven=True):
    """Pixel-like Examples: uint8 images stored once, 18-d question vectors, 1 to 4 questions a scene."""
    rng = np.random.default_rng(seed)
    per_scene = rng.integers(1, 5, num_scenes) if uneven else np.full(num_scenes, 3)
    scene_index = rng.permutation(np.repeat(np.arange(num_scenes), per_scene))  # questions in mixed order
    n = len(scene_index)
    return Examples(inputs={"question": rng.random((n, 18)).astype("float32")},
                    answers=rng.integers(0, 10, n), scenes={"image": rng.integers(0, 256, (num_scenes, size, size, 3),
                                                                                 dtype=np.uint8)},
                    scene_index=scene_index, scale={"image": 1 / 255})


def _rn(conv_norm="batch", dropout=0.0, seed=3):
    keras.utils.set_random_seed(seed)
    return build_rn_pixels(image_size=12, conv_layers=2, conv_filters=4, g_units=(8, 8), f_units=(8,),
                           dropout=dropout, conv_norm=conv_norm)


def _expanded(x):
    """The twin's batch as the model's: each question with its own copy of its scene's image."""
    return {"image": x["image"][x[SLOT]], "question": x["question"]}


def test_twin_answers_like_the_model_and_shares_its_weights():
    model = _rn(dropout=0.5)
    twin = scene_grouped_model(model, ["image"])
    assert {id(w) for w in twin.weights} == {id(w) for w in model.weights}
    assert set(twin.input) == {"image", "question", SLOT}
    x, _ = SceneBatches(_examples(), 3)[0]
    assert len(x["image"]) == 3 and len(x["question"]) == len(x[SLOT]) > 3
    np.testing.assert_allclose(twin(x, training=False), model(_expanded(x), training=False), rtol=1e-6, atol=1e-6)


def test_rn_clevr_twin_answers_like_the_model():
    from relzoo.datasets.clevr.features import Vocabulary

    keras.utils.set_random_seed(0)
    model = get_builder("rn_clevr_pixels")(len(Vocabulary.shipped("clevr")), image_size=32, conv_layers=3, conv_filters=4,
                                           g_units=(8, 8), f_units=(8,), lstm_units=8, embedding_dim=4)
    twin = scene_grouped_model(model, ["image"])
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 80, (5, 50)).astype("int32")
    tokens[:, 12:] = 0  # padded questions: the embedding's mask must reach the LSTM in the twin too
    x = {"image": rng.random((2, 32, 32, 3)).astype("float32"), "question": tokens,
         SLOT: np.array([1, 0, 1, 1, 0], np.int32)}
    np.testing.assert_allclose(twin(x, training=False), model(_expanded(x), training=False), rtol=1e-5, atol=1e-6)


def test_a_twin_step_equals_a_step_on_repeated_images():
    """Without BatchNormalization (whose batch statistics are the one intended difference) and
    dropout, one SGD step of the twin gives the weights one step of the model gives on the
    same questions with each image repeated."""
    plain, grouped = _rn(conv_norm="none"), _rn(conv_norm="none")
    grouped.set_weights(plain.get_weights())
    twin = scene_grouped_model(grouped, ["image"])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for m in (plain, twin):
        m.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, jit_compile=False)
    x, y = SceneBatches(_examples(), 5)[0]
    twin.train_on_batch(x, y)
    plain.train_on_batch(_expanded(x), y)
    changed = [not np.allclose(a, b) for a, b in zip(plain.get_weights(), _rn(conv_norm="none").get_weights())]
    assert all(changed)
    for a, b in zip(plain.get_weights(), grouped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_batches_cover_every_question_once_per_epoch_and_resume():
    ex = _examples(num_scenes=7)
    batches = SceneBatches(ex, 3, seed=4, shuffle=True)
    assert len(batches) == 3
    epochs = []
    for _ in range(3):
        seen = []
        for i in range(len(batches)):
            x, y = batches[i]
            assert len(x["image"]) <= 3 and x["image"].dtype == np.float32 and x["image"].max() <= 1.0
            # which question is which: find each row of the batch in the data
            rows = [int(np.flatnonzero((ex.inputs["question"] == q).all(axis=1))[0]) for q in x["question"]]
            expected = ex.batch(np.array(rows))
            np.testing.assert_array_equal(x["image"][x[SLOT]], expected["image"])
            np.testing.assert_array_equal(y, ex.answers[rows])
            seen += rows
        assert sorted(seen) == list(range(len(ex)))
        epochs.append(seen)
        batches.on_epoch_end()
    assert epochs[0] != epochs[1]  # reshuffled
    resumed = SceneBatches(ex, 3, seed=4, shuffle=True, start_epoch=2)
    again = [q for i in range(len(resumed)) for q in resumed[i][0]["question"].tolist()]
    third = [ex.inputs["question"][r].tolist() for r in epochs[2]]
    assert again == third
    plain = SceneBatches(ex, 3)
    first = plain[0][0]
    assert plain[0][0]["question"].tolist() == first["question"].tolist()  # no shuffle: data order, every time
    with pytest.raises(IndexError):
        plain[len(plain)]


def test_tf_dataset_is_one_epoch_per_pass_with_cut_questions():
    rng = np.random.default_rng(2)
    ex = _examples(num_scenes=6)
    ids = np.zeros((len(ex), 9), np.int32)
    for row in range(len(ex)):
        ids[row, :rng.integers(1, 9)] = rng.integers(1, 20)
    ex.inputs["tokens"] = ids
    batches = SceneBatches(ex, 4, seed=1, shuffle=True, trim=["tokens"], trim_multiple=1)
    twin = SceneBatches(ex, 4, seed=1, shuffle=True, trim=["tokens"], trim_multiple=1)
    ds = batches.tf_dataset()
    for epoch in range(2):
        got = list(ds.as_numpy_iterator())
        assert len(got) == len(twin) == 2
        for i, (x, y) in enumerate(got):
            want_x, want_y = twin[i]
            assert set(x) == set(want_x)
            for k in x:
                np.testing.assert_array_equal(x[k], want_x[k])
            np.testing.assert_array_equal(y, want_y)
            assert x["tokens"].shape[1] < 9 or np.any(x["tokens"][:, -1])  # cut after the longest row
        twin.on_epoch_end()
    assert batches.epoch == 1  # the second pass began the next epoch's order
    assert ds.element_spec[0]["tokens"].shape.as_list() == [None, None]
    assert ds.element_spec[0]["image"].shape.as_list() == [None, 12, 12, 3]


def test_errors_say_what_is_expected():
    with pytest.raises(ValueError, match="state-description"):
        scene_grouped_model(build_rn_state(4, 6, 5, 3, g_units=(8,), f_units=(8,)), ["objects"])
    with pytest.raises(ValueError, match="must be inputs of"):
        scene_grouped_model(_rn(), ["picture"])
    cnn = get_builder("cnn_mlp")(image_size=12, conv_layers=2, conv_filters=4, f_units=(8,))
    with pytest.raises(ValueError, match="one PairwiseRelation"):
        scene_grouped_model(cnn, ["image"])
    no_scenes = Examples(inputs={"question": np.zeros((3, 18), np.float32)}, answers=np.zeros(3))
    with pytest.raises(ValueError, match="scene arrays"):
        SceneBatches(no_scenes, 2)
    with pytest.raises(ValueError, match="positive integer"):
        SceneBatches(_examples(), 0)
    with pytest.raises(recipes.RecipeError, match="scenes_per_batch must be >= 1"):
        recipes.load(ROOT / "training/recipes/rn_sort_of_clevr.toml", ["train.feed=scenes", "train.scenes_per_batch=-1"])


TINY = ["dataset.train_size=12", "dataset.validation_size=2", "dataset.test_size=2", "train.batch_size=16",
        "train.warmup_steps=2", "model.conv_filters=4", "model.g_units=[8, 8]",
        "model.f_units=[8]", "train.dtype_policy=\"float32\"", "train.feed=scenes", "train.scenes_per_batch=4",
        "train.bn_recalibration_batches=2"]


def _train(run_dir, *args):
    cmd = [sys.executable, "-m", "training.train", "training/recipes/rn_sort_of_clevr.toml", *TINY, *args,
           "--run-dir", str(run_dir), "--verbose", "2"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1"))


@pytest.mark.slow
def test_the_trainer_trains_scene_grouped_resumes_and_refuses_other_strategies(tmp_path):
    run = tmp_path / "run"
    jitter = ("train.image_shift=2", "train.image_rotation=0.05")
    first = _train(run, "train.epochs=1", *jitter)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "scene-grouped batches: 4 scenes" in first.stdout and "3 batches an epoch" in first.stdout
    assert "images jittered by up to 2 pixels and 0.05 radians" in first.stdout
    second = _train(run, "train.epochs=2", *jitter)  # resumes: one more epoch
    assert second.returncode == 0, second.stderr[-3000:]
    assert "1 of 2 epochs done" in second.stdout
    epochs = json.loads((run / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2] and all("val_accuracy" in e["logs"] for e in epochs)
    assert (run / "artifact" / "card.json").is_file()
    refused = _train(tmp_path / "other", "--strategy", "mirrored")
    assert refused.returncode == 2 and "default strategy only" in refused.stderr
    tune = subprocess.run([sys.executable, "-m", "training.tune", "training/recipes/rn_sort_of_clevr.toml",
                           "train.feed=scenes"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert tune.returncode == 2 and "override train.feed=examples" in tune.stderr
