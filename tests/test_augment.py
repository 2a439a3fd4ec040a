"""Training-time image jitter (training/augment.py) and its use in scene-grouped batches."""

from pathlib import Path

import numpy as np
import pytest

from relzoo.datasets.examples import Examples
from training import recipe as recipes
from training.augment import jitter_images
from training.scene_batches import SLOT, SceneBatches

ROOT = Path(__file__).resolve().parent.parent


def _examples(num_scenes=7, size=12):
    """uint8 scene images stored once and 1 to 4 questions (18-d vectors) a scene."""
    rng = np.random.default_rng(0)
    scene_index = rng.permutation(np.repeat(np.arange(num_scenes), rng.integers(1, 5, num_scenes)))
    n = len(scene_index)
    return Examples(inputs={"question": rng.random((n, 18)).astype("float32")}, answers=rng.integers(0, 10, n),
                    scenes={"image": rng.integers(0, 256, (num_scenes, size, size, 3), dtype=np.uint8)},
                    scene_index=scene_index, scale={"image": 1 / 255})


def _images(k=3, size=16, seed=0):
    return np.random.default_rng(seed).random((k, size, size, 3)).astype(np.float32)


def test_no_jitter_returns_the_images_unchanged():
    images = _images()
    np.testing.assert_array_equal(jitter_images(images, np.random.default_rng(0)), images)


def test_a_shift_without_rotation_moves_each_image_by_whole_pixels_with_a_zero_border():
    images = _images(k=6)
    out = jitter_images(images, np.random.default_rng(5), max_shift=3)
    shifts = np.random.default_rng(5).integers(-3, 4, size=(6, 2))  # the draws jitter_images makes first
    assert (shifts != 0).any(axis=1).sum() >= 4  # the check below is not about unmoved images
    for image, moved, (dy, dx) in zip(images, out, shifts):
        expected = np.zeros_like(image)
        h, w = image.shape[:2]
        expected[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        np.testing.assert_array_equal(moved, expected)


def test_a_rotation_turns_the_image_about_its_centre():
    size = 33
    image = np.zeros((1, size, size, 1), np.float32)
    image[0, 16, 16 + 12] = 1.0  # a dot 12 pixels right of the centre
    out = jitter_images(image, np.random.default_rng(0), max_rotation=0.5)[0, ..., 0]
    angle = np.random.default_rng(0).uniform(-0.5, 0.5, size=1)[0]
    ys, xs = np.mgrid[0:size, 0:size]
    centre_y, centre_x = (out * ys).sum() / out.sum(), (out * xs).sum() / out.sum()
    radius = np.hypot(centre_y - 16, centre_x - 16)
    turned = np.arctan2(centre_y - 16, centre_x - 16)
    assert abs(radius - 12) < 0.5 and abs(abs(turned) - abs(angle)) < 0.03 and abs(angle) > 0.1
    assert out.sum() == pytest.approx(1.0, abs=0.05)  # resampled, not lost or doubled


def test_jitter_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(K, H, W, C\)"):
        jitter_images(np.zeros((4, 4, 3)), np.random.default_rng(0), max_shift=1)
    with pytest.raises(ValueError, match="max_shift must be an integer >= 0"):
        jitter_images(_images(), np.random.default_rng(0), max_shift=-1)
    with pytest.raises(ValueError, match="max_shift must be an integer >= 0"):
        jitter_images(_images(), np.random.default_rng(0), max_shift=1.5)
    with pytest.raises(ValueError, match="max_rotation must be a number >= 0"):
        jitter_images(_images(), np.random.default_rng(0), max_rotation=float("nan"))


def test_scene_batches_jitter_only_the_images_and_resume_with_the_same_draws():
    ex = _examples(num_scenes=7, size=12)
    plain = SceneBatches(ex, 3, seed=4, shuffle=True)
    jittered = SceneBatches(ex, 3, seed=4, shuffle=True, image_shift=2, image_rotation=0.05)
    seen = []
    for epoch in range(2):
        for i in range(len(plain)):
            (x, y), (xj, yj) = plain[i], jittered[i]
            assert set(xj) == set(x) and xj["image"].shape == x["image"].shape and xj["image"].dtype == np.float32
            for key in ("question", SLOT):
                np.testing.assert_array_equal(xj[key], x[key])  # same questions, same scenes, same answers
            np.testing.assert_array_equal(yj, y)
            assert not np.allclose(xj["image"], x["image"])
            np.testing.assert_array_equal(jittered[i][0]["image"], xj["image"])  # a batch is the same each time asked
            seen.append(xj["image"])
        plain.on_epoch_end()
        jittered.on_epoch_end()
    resumed = SceneBatches(ex, 3, seed=4, shuffle=True, start_epoch=1, image_shift=2, image_rotation=0.05)
    for i in range(len(resumed)):
        np.testing.assert_array_equal(resumed[i][0]["image"], seen[len(plain) + i])
    other = SceneBatches(ex, 3, seed=5, shuffle=False, image_shift=2)
    again = SceneBatches(ex, 3, seed=5, shuffle=False, image_shift=2)
    again.on_epoch_end()  # the same scenes in the same order, the next epoch: other draws
    assert not np.array_equal(other[0][0]["image"], again[0][0]["image"])


def test_the_recipe_checks_the_jitter_settings():
    path = ROOT / "training/recipes/rn_sort_of_clevr.toml"
    scenes = ["train.feed=scenes", "train.scenes_per_batch=4"]
    loaded = recipes.load(path, [*scenes, "train.image_shift=8", "train.image_rotation=0.05"])
    assert loaded.train.image_shift == 8 and loaded.train.image_rotation == 0.05
    assert recipes.load(path).train.image_shift == 0  # off unless asked for
    with pytest.raises(recipes.RecipeError, match="image_shift must be >= 0"):
        recipes.load(path, [*scenes, "train.image_shift=-2"])
    with pytest.raises(recipes.RecipeError, match="image_shift must be int"):
        recipes.load(path, [*scenes, "train.image_shift=2.5"])
    with pytest.raises(recipes.RecipeError, match="image_rotation must be <= 3.14159"):
        recipes.load(path, [*scenes, "train.image_rotation=5.0"])
    with pytest.raises(recipes.RecipeError, match='set train.feed = "scenes"'):
        recipes.load(path, ["train.image_shift=8"])
