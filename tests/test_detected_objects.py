import numpy as np
import pytest

import keras
from keras.src.testing import TestCase
from relzoo.layers import DetectedObjects
from relzoo.testing import check_layer

GROUPS = (3, 2)


def _cells(batch=2, n=6, values=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, n, 1 + values + sum(GROUPS))).astype("float32")


def _reference(cells, k, values, groups, threshold=0.0):
    """The layer's readout in plain numpy: top-k cells by objectness, values then a softmax per group."""
    cells = cells.reshape(len(cells), -1, cells.shape[-1])
    objects, masks = [], []
    for row in cells:
        order = np.argsort(-row[:, 0], kind="stable")[:k]
        kept = row[order]
        parts = [kept[:, 1:1 + values]]
        start = 1 + values
        for g in groups:
            z = np.exp(kept[:, start:start + g] - kept[:, start:start + g].max(1, keepdims=True))
            parts.append(z / z.sum(1, keepdims=True))
            start += g
        mask = kept[:, 0] > threshold
        objects.append(np.concatenate(parts, 1) * mask[:, None])
        masks.append(mask)
    return np.stack(objects), np.stack(masks)


def test_harness():
    out = check_layer(DetectedObjects, {"max_objects": 3, "groups": GROUPS, "num_values": 2},
                      {"cells": _cells()}, fit=True)
    assert np.asarray(out[0]).shape == (2, 3, 2 + 5) and np.asarray(out[1]).shape == (2, 3)


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_matches_numpy_reference(threshold):
    cells = _cells(batch=3, n=12, seed=1).reshape(3, 3, 4, -1)
    objects, mask = DetectedObjects(4, groups=GROUPS, num_values=2, threshold=threshold)(cells)
    want_objects, want_mask = _reference(cells, 4, 2, GROUPS, threshold)
    np.testing.assert_array_equal(np.asarray(mask), want_mask)
    np.testing.assert_allclose(np.asarray(objects), want_objects, rtol=1e-5, atol=1e-6)


def test_gradient_reaches_the_kept_cells_only():
    import tensorflow as tf

    cells = tf.Variable(_cells(batch=1, n=5, seed=2))
    with tf.GradientTape() as tape:
        objects, _ = DetectedObjects(2, groups=GROUPS, num_values=2, threshold=-100.0)(cells)
        loss = tf.reduce_sum(objects[..., :2])
    grad = tape.gradient(loss, cells).numpy()[0]
    kept = np.argsort(-cells.numpy()[0, :, 0])[:2]
    assert np.all(grad[kept, 1:3] == 1.0) and np.all(np.delete(grad, kept, axis=0) == 0.0)
    assert np.all(grad[:, 0] == 0.0)  # the selection passes nothing to the objectness


def test_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="max_objects"):
        DetectedObjects(0, groups=GROUPS)
    with pytest.raises(ValueError, match="groups"):
        DetectedObjects(2, groups=(3, 0))
    with pytest.raises(ValueError, match="at least one"):
        DetectedObjects(2)
    with pytest.raises(ValueError, match=r"1 \+ 2 \+ 5 = 8 channels"):
        DetectedObjects(2, groups=GROUPS, num_values=2)(np.zeros((1, 4, 7), "float32"))
    with pytest.raises(ValueError, match="cannot keep 5 of 4 cells"):
        DetectedObjects(5, groups=GROUPS, num_values=2)(np.zeros((1, 2, 2, 8), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, h, w, c\) or \(batch, n, c\)"):
        DetectedObjects(1, groups=GROUPS, num_values=2)(np.zeros((8,), "float32"))


class KerasLayerTest(TestCase):
    def test_run_layer_test(self):
        self.run_layer_test(DetectedObjects, {"max_objects": 3, "groups": list(GROUPS), "num_values": 2},
                            input_data=_cells(), expected_output_shape=((2, 3, 7), (2, 3)),
                            expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                            run_training_check=False)


def test_symbolic_shapes_and_config_round_trip():
    layer = DetectedObjects(10, groups=(8, 3, 2, 2), num_values=3, threshold=0.25, name="d")
    objects, mask = layer(keras.Input((16, 16, 19)))
    assert tuple(objects.shape) == (None, 10, 18) and tuple(mask.shape) == (None, 10) and mask.dtype == "bool"
    clone = DetectedObjects.from_config(layer.get_config())
    assert (clone.max_objects, clone.groups, clone.num_values, clone.threshold) == (10, (8, 3, 2, 2), 3, 0.25)
