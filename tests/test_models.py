import numpy as np
import pytest

import keras
from relzoo.models import build_cnn_mlp, build_rn_pixels, get_builder


def _batch(n=4, size=75):
    rng = np.random.default_rng(0)
    return {"image": rng.random((n, size, size, 3)).astype("float32"),
            "question": rng.random((n, 18)).astype("float32")}, rng.integers(0, 10, n)


@pytest.mark.parametrize("builder", [build_rn_pixels, build_cnn_mlp])
def test_pixel_builders_shape_fit_and_save(builder, tmp_path):
    kwargs = {"conv_filters": 8, "f_units": (16,)}
    if builder is build_rn_pixels:
        kwargs["g_units"] = (16, 16)
    model = builder(**kwargs)
    x, y = _batch()
    assert model.predict(x, verbose=0).shape == (4, 10)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][-1])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_rn_pixels_reads_25_objects_from_75px_images():
    model = build_rn_pixels(conv_filters=8, g_units=(8,), f_units=(8,))
    assert tuple(model.get_layer("objects").output.shape) == (None, 25, 10)  # 5x5 cells, 8 channels + (x, y)


def test_unknown_builder():
    with pytest.raises(ValueError, match="Unknown model builder"):
        get_builder("rn_nope")


@pytest.mark.parametrize("builder", ["rmc_sequence", "lstm_sequence"])
def test_sequence_builders_shape_fit_and_save(builder, tmp_path):
    from relzoo.datasets import nth_farthest

    kwargs = {"mlp_units": (16,)}
    kwargs.update({"mem_slots": 2, "head_size": 4, "num_heads": 2} if builder == "rmc_sequence" else {"units": 16})
    model = get_builder(builder)(**kwargs)
    x, y = nth_farthest.generate(6, seed=0, split="test")
    assert model.predict(x, verbose=0).shape == (6, 8)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][-1])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_conv_norm_option():
    plain = build_cnn_mlp(conv_filters=4, f_units=(8,), conv_norm="none")
    assert not [layer for layer in plain.layers if isinstance(layer, keras.layers.BatchNormalization)]
    default = build_rn_pixels(conv_filters=4, g_units=(8,), f_units=(8,))
    assert len([layer for layer in default.layers if isinstance(layer, keras.layers.BatchNormalization)]) == 4
    with pytest.raises(ValueError, match="conv_norm must be one of"):
        build_cnn_mlp(conv_norm="group")
