import numpy as np
import pytest

import keras
from relzoo.layers import FeatureMapObjects
from relzoo.testing import check_layer


def test_harness():
    fmap = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    check_layer(FeatureMapObjects, {}, {"feature_map": fmap}, expected_output_shape=(2, 12, 7), fit=True)


def test_features_and_coordinates():
    fmap = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2)
    out = np.asarray(FeatureMapObjects()(fmap))
    assert out.shape == (2, 12, 4)
    # features are the cells, row-major
    np.testing.assert_array_equal(out[:, :, :2], fmap.reshape(2, 12, 2))
    xs = np.array([-1, -1 / 3, 1 / 3, 1], "float32")
    ys = np.array([-1, 0, 1], "float32")
    for r in range(3):
        for c in range(4):
            np.testing.assert_allclose(out[:, r * 4 + c, 2], xs[c], atol=1e-6)
            np.testing.assert_allclose(out[:, r * 4 + c, 3], ys[r], atol=1e-6)
    assert out[..., 2:].min() == -1.0 and out[..., 2:].max() == 1.0


def test_single_row_gets_zero_coordinate():
    out = np.asarray(FeatureMapObjects()(np.ones((1, 1, 3, 2), "float32")))
    np.testing.assert_allclose(out[0, :, 3], 0.0)
    np.testing.assert_allclose(out[0, :, 2], [-1.0, 0.0, 1.0], atol=1e-6)


def test_dynamic_spatial_size():
    inp = keras.Input((None, None, 3))
    out = FeatureMapObjects()(inp)
    assert tuple(out.shape) == (None, None, 5)
    model = keras.Model(inp, out)
    y = model.predict(np.zeros((2, 5, 6, 3), "float32"), verbose=0)
    assert y.shape == (2, 30, 5)
    np.testing.assert_allclose(y[0, -1, 3:], [1.0, 1.0])


def test_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(batch, h, w, c\)"):
        FeatureMapObjects()(np.zeros((2, 3, 4), "float32"))
