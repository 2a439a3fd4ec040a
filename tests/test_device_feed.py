"""The accelerator feed (training/device_feed.py): on-device jitter, the twin, fixed-shape batches, the trainer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras
from relzoo.datasets.examples import Examples
from relzoo.models import build_rn_pixels
from training import recipe as recipes
from training.augment import apply_jitter, jitter_draws, jitter_images
from training.device_feed import DeviceBatches, ImageJitter, device_fed_model, jitter_images_ops

ROOT = Path(__file__).resolve().parent.parent


def _examples(num_scenes=5, size=12, seed=0):
    rng = np.random.default_rng(seed)
    scene_index = rng.permutation(np.repeat(np.arange(num_scenes), 3))
    n = len(scene_index)
    return Examples(inputs={"question": rng.random((n, 18)).astype("float32")}, answers=rng.integers(0, 10, n),
                    scenes={"image": rng.integers(0, 256, (num_scenes, size, size, 3), dtype=np.uint8)},
                    scene_index=scene_index, scale={"image": 1 / 255})


def test_the_ops_jitter_is_the_numpy_jitter():
    rng = np.random.default_rng(0)
    images = rng.random((6, 16, 20, 3)).astype(np.float32)
    shift, angle = jitter_draws(rng, 6, 4, 0.3)
    want = apply_jitter(images, shift, angle)
    got = keras.ops.convert_to_numpy(jitter_images_ops(images, shift, angle))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a pure whole-pixel shift moves the image exactly, 0 where nothing came in
    moved = keras.ops.convert_to_numpy(jitter_images_ops(images, np.tile([[2.0, -3.0]], (6, 1)).astype("float32"),
                                                         np.zeros(6, np.float32)))
    np.testing.assert_allclose(moved[:, 2:, :-3], images[:, :-2, 3:], atol=1e-6)
    assert not moved[:, :2].any() and not moved[:, :, -3:].any()
    # and the numpy function used by scene-grouped batches is the same resampling
    np.testing.assert_array_equal(jitter_images(images, np.random.default_rng(5), 4, 0.3),
                                  apply_jitter(images, *jitter_draws(np.random.default_rng(5), 6, 4, 0.3)))


def test_image_jitter_layer_trains_only_and_serializes():
    layer = ImageJitter(3, 0.1, seed=7)
    images = np.random.default_rng(1).random((4, 10, 10, 3)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32 and not np.allclose(out, images)
    again = keras.ops.convert_to_numpy(layer(images, training=True))
    assert not np.allclose(out, again)  # new draws every call
    clone = ImageJitter.from_config(layer.get_config())
    assert (clone.max_shift, clone.max_rotation, clone.seed) == (3, 0.1, 7)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ImageJitter(0, 0.0)(images, training=True)), images)
    with pytest.raises(ValueError, match="max_shift must be an integer"):
        ImageJitter(-1)
    with pytest.raises(ValueError, match="max_rotation"):
        ImageJitter(2, float("nan"))


def test_the_twin_takes_raw_images_and_answers_like_the_model():
    keras.utils.set_random_seed(3)
    model = build_rn_pixels(image_size=12, conv_layers=2, conv_filters=4, g_units=(8, 8), f_units=(8,))
    ex = _examples()
    twin = device_fed_model(model, ex, max_shift=2, max_rotation=0.05, seed=1)
    assert {id(w) for w in model.weights} <= {id(w) for w in twin.weights}
    assert set(twin.input) == set(model.input) and twin.input["image"].dtype == "uint8"
    batches = DeviceBatches(ex, 4, seed=2)
    x, y = batches[0]
    assert x["image"].dtype == np.uint8 and len(y) == 4
    index = np.arange(len(ex))  # in inference mode the twin on raw arrays = the model on Examples.batch
    raw = {"question": ex.inputs["question"], "image": ex.scenes["image"][ex.scene_index]}
    np.testing.assert_allclose(twin(raw, training=False), model(ex.batch(index), training=False), rtol=1e-6,
                               atol=1e-6)
    with pytest.raises(ValueError, match="no scaled image input"):
        device_fed_model(model, Examples(inputs={"question": ex.inputs["question"],
                                                 "image": np.zeros((len(ex), 12, 12, 3), np.float32)},
                                         answers=ex.answers), max_shift=2)


def test_device_batches_have_fixed_shapes_and_resume():
    ex = _examples()  # 15 examples
    batches = DeviceBatches(ex, 4, seed=2)
    assert len(batches) == 3  # 3 left out each epoch
    seen = np.concatenate([batches[i][1] for i in range(3)])
    assert len(seen) == 12
    first = [batches[i][0]["question"] for i in range(3)]
    batches.on_epoch_end()
    second = [batches[i][0]["question"] for i in range(3)]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # reshuffled
    resumed = DeviceBatches(ex, 4, seed=2, start_epoch=1)
    for i in range(3):
        np.testing.assert_array_equal(resumed[i][0]["question"], second[i])
    with pytest.raises(IndexError):
        batches[3]
    with pytest.raises(ValueError, match="fewer than one batch"):
        DeviceBatches(ex, 16)


def test_the_recipe_checks_device_feed():
    path = ROOT / "training/recipes/rn_sort_of_clevr.toml"
    loaded = recipes.load(path, ["train.feed=\"device\"", "train.image_shift=8"])
    assert loaded.train.feed == "device"
    assert recipes.load(path).train.feed == "examples"
    with pytest.raises(recipes.RecipeError, match="feed must be one of"):
        recipes.load(path, ["train.feed=gpu"])
    with pytest.warns(FutureWarning, match="device_feed = true is deprecated"):  # 0.1's spelling
        assert recipes.load(path, ["train.device_feed=true"]).train.feed == "device"
    with pytest.raises(recipes.RecipeError, match="device_feed must be true or false"):
        recipes.load(path, ["train.device_feed=1"])


TINY = ["dataset.train_size=12", "dataset.validation_size=2", "dataset.test_size=2", "train.batch_size=16",
        "train.warmup_steps=2", "model.conv_filters=4", "model.g_units=[8, 8]",
        "model.f_units=[8]", "train.dtype_policy=\"float32\"", "train.feed=\"device\"",
        "train.bn_recalibration_batches=2", "train.image_shift=2", "train.image_rotation=0.05"]


def _train(run_dir, *args, backend="tensorflow", env=None):
    cmd = [sys.executable, "-m", "training.train", "training/recipes/rn_sort_of_clevr.toml", *TINY, *args,
           "--run-dir", str(run_dir), "--verbose", "2"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", KERAS_BACKEND=backend,
                                   **(env or {})))


@pytest.mark.slow
def test_the_trainer_trains_with_the_device_feed_and_resumes(tmp_path):
    run = tmp_path / "run"
    first = _train(run, "train.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "device feed: " in first.stdout and "images jittered on the device by up to 2 pixels" in first.stdout
    second = _train(run, "train.epochs=2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "1 of 2 epochs done" in second.stdout
    epochs = json.loads((run / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2] and all("val_accuracy" in e["logs"] for e in epochs)
    card = json.loads((run / "artifact" / "card.json").read_text())
    assert card["training"]["recipe_values"]["train"]["feed"] == "device"  # the card says how it was fed
    # the artifact is the plain model: raw uint8 inputs are the twin's, never the published model's
    model = keras.saving.load_model(run / "artifact" / "model.keras", compile=False)
    assert model.input["image"].dtype == "float32"
    refused = _train(tmp_path / "other", "--strategy", "mirrored")
    assert refused.returncode == 2 and "default strategy only" in refused.stderr


@pytest.mark.slow
def test_the_device_feed_on_jax_compiles_one_training_step(tmp_path):
    """The point of the feed: under JAX, one input shape, so one compiled train_step for the run."""
    pytest.importorskip("jax")
    done = _train(tmp_path / "run", "train.epochs=2", "dataset.train_size=40", "train.jit_compile=true", backend="jax",
                  env={"JAX_LOG_COMPILES": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "device feed: " in done.stdout
    compiled = [line for line in log.splitlines() if "Finished XLA compilation of jit(train_step)" in line]
    assert len(compiled) == 1, compiled  # 2 epochs of 75 batches, one compile


def _mirrored_scene(scene):
    """The scene reflected across the camera's "behind" axis, relationships recomputed."""
    from relzoo.datasets.clevr import camera
    from relzoo.datasets.clevr.scenes import relationships

    r = np.asarray(camera.DIRECTIONS["right"][:2])
    objects = []
    for obj in scene["objects"]:
        xy = np.asarray(obj["3d_coords"][:2], np.float64)
        xy = xy - 2 * (xy @ r) * r
        objects.append({**obj, "3d_coords": [float(xy[0]), float(xy[1]), obj["3d_coords"][2]]})
    return {**scene, "objects": objects, "relationships": relationships([o["3d_coords"] for o in objects])}


def _swapped_program(program):
    swap = {"left": "right", "right": "left"}
    return [{**step, "value_inputs": [swap.get(v, v) for v in step.get("value_inputs", [])]} for step in program]


def test_a_mirrored_scene_with_left_and_right_swapped_has_the_same_answers():
    """What MirrorLeftRight relies on, checked with the executor on generated scenes and questions."""
    from relzoo.datasets.clevr import scenes as S
    from relzoo.datasets.clevr.executor import execute
    from relzoo.datasets.clevr.questions import Balancer, generate_questions

    scenes = S.generate_scenes(40, seed=4)
    records = generate_questions(scenes, 10, np.random.default_rng(4), Balancer())
    relational = 0
    for record in records:
        scene = scenes[record["image_index"]]
        mirrored, program = _mirrored_scene(scene), _swapped_program(record["program"])
        relational += program != record["program"]
        assert execute(mirrored, program) == execute(scene, record["program"]), record["question"]
    assert relational > 50  # many of the questions name left or right


def test_the_mirror_layer_mirrors_the_state_and_swaps_the_words():
    from relzoo.datasets.clevr import features, scenes as S
    from relzoo.datasets.clevr.features import Vocabulary
    from training.device_feed import clevr_mirror

    vocab = Vocabulary.shipped("clevr")
    scene = S.generate_scenes(1, seed=9)[0]
    objects, mask = features.scene_state(scene)
    want, _ = features.scene_state(_mirrored_scene(scene))
    question = vocab.encode("Is the cube left of the sphere or right of it?")
    layer = clevr_mirror(seed=3)
    batch_objects, batch_question = np.repeat(objects[None], 64, 0), np.repeat(question[None], 64, 0)
    out_objects, out_question = (keras.ops.convert_to_numpy(t) for t in layer(batch_objects, batch_question,
                                                                              training=True))
    flipped = np.array([not np.array_equal(q, question) for q in out_question])
    assert 10 < flipped.sum() < 54  # about half
    swapped = vocab.encode("Is the cube right of the sphere or left of it?")
    for o, q, f in zip(out_objects, out_question, flipped):
        np.testing.assert_array_equal(q, swapped if f else question)
        np.testing.assert_allclose(o, want if f else objects, atol=1e-6)
        assert not o[~mask].any()  # padding stays zero
    same = layer(batch_objects, batch_question, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same[1]), batch_question)
    clone = type(layer).from_config(layer.get_config())
    assert clone.left_id == vocab.tokens.index("left") and clone.right_id == vocab.tokens.index("right")


def test_the_recipe_checks_the_mirror():
    path = ROOT / "training/recipes/rn_clevr_state_gpu.toml"
    loaded = recipes.load(path, ["train.feed=\"device\"", "train.mirror_left_right=true"])
    assert loaded.train.mirror_left_right is True
    with pytest.raises(recipes.RecipeError, match='set train.feed = "device"'):
        recipes.load(path, ["train.mirror_left_right=true"])
    with pytest.raises(recipes.RecipeError, match="CLEVR-format state descriptions"):
        recipes.load(ROOT / "training/recipes/rn_clevr_gpu.toml", ["train.mirror_left_right=true"])


@pytest.mark.slow
def test_the_trainer_mirrors_state_questions(tmp_path):
    cmd = [sys.executable, "-m", "training.train", "training/recipes/rn_clevr_state.toml", "dataset.train_size=30",
           "dataset.validation_size=4", "dataset.test_size=4", "train.batch_size=32", "train.epochs=1",
           "train.feed=\"device\"", "train.mirror_left_right=true", "model.g_units=[16, 16]",
           "model.f_units=[16, 16]", "model.lstm_units=16", "train.dtype_policy=\"float32\"",
           "--run-dir", str(tmp_path / "run"), "--verbose", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "half the questions mirrored left to right" in out.stdout
