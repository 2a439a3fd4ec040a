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


@pytest.fixture(scope="module")
def clevr_examples():
    from relzoo.datasets.clevr import dataset

    return {rep: dataset.generate_examples(3, seed=0, split="test", representation=rep, workers=1)
            for rep in ("pixels", "state")}


@pytest.mark.parametrize("builder", ["rn_clevr_pixels", "rn_clevr_state", "rn_clevr_detect"])
def test_clevr_builders_shape_fit_and_save(builder, clevr_examples, tmp_path):
    from relzoo.datasets.clevr.features import Vocabulary

    vocab_size = len(Vocabulary.shipped("clevr"))
    if builder == "rn_clevr_pixels":
        model = get_builder(builder)(vocab_size, conv_filters=4, conv_layers=5, g_units=(8, 8), f_units=(8,),
                                     lstm_units=8, embedding_dim=4)
        assert tuple(model.get_layer("objects").output.shape) == (None, 16, 6)  # 4x4 cells, 4 channels + (x, y)
        ex = clevr_examples["pixels"]
    elif builder == "rn_clevr_detect":
        model = get_builder(builder)(vocab_size, conv_filters=4, cell_hidden=8, g_units=(8, 8), f_units=(8,),
                                     lstm_units=8, embedding_dim=4)
        assert tuple(model.get_layer("cells").output.shape) == (None, 256, 19)  # 16x16 cells
        assert [tuple(t.shape) for t in model.get_layer("detected_objects").output] == [(None, 10, 18), (None, 10)]
        ex = clevr_examples["pixels"]
    else:
        model = get_builder(builder)(vocab_size, g_units=(8, 8), f_units=(8, 8), lstm_units=8, embedding_dim=4)
        ex = clevr_examples["state"]
    x, y = ex.batch(np.arange(len(ex.answers))), ex.answers
    assert model.predict(x, verbose=0).shape == (len(y), 28)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][-1])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_rn_clevr_question_padding_and_object_padding_are_ignored(clevr_examples):
    from relzoo.datasets.clevr.features import Vocabulary

    model = get_builder("rn_clevr_state")(len(Vocabulary.shipped("clevr")), g_units=(8,), f_units=(8,), lstm_units=8,
                                          embedding_dim=4, dropout=0.0)
    ex = clevr_examples["state"]
    x = ex.batch(np.arange(4))
    base = model.predict(x, verbose=0)
    # garbage in padded object rows changes nothing; a longer pad of the question neither
    noisy = dict(x, objects=np.where(x["object_mask"][..., None], x["objects"], 7.0).astype("float32"))
    np.testing.assert_allclose(model.predict(noisy, verbose=0), base, rtol=1e-5, atol=1e-5)
    assert not np.allclose(model.predict(dict(x, objects=x["objects"] + 0.5), verbose=0), base)
    # questions of any length: the batch cut after its longest question answers the same
    from relzoo.datasets.examples import trailing_length

    length = trailing_length(x["question"])
    assert length < x["question"].shape[1]
    cut = dict(x, question=x["question"][:, :length])
    np.testing.assert_allclose(model.predict(cut, verbose=0), base, rtol=1e-5, atol=1e-5)
    longer = dict(x, question=np.pad(x["question"], ((0, 0), (0, 9))))
    np.testing.assert_allclose(model.predict(longer, verbose=0), base, rtol=1e-5, atol=1e-5)


def test_padded_id_inputs_are_only_masked_token_ids():
    from relzoo.datasets.clevr.features import Vocabulary
    from training.feeds import padded_id_inputs

    vocab = len(Vocabulary.shipped("clevr"))
    for builder in ("rn_clevr_pixels", "rn_clevr_state"):
        kwargs = dict(g_units=(8,), f_units=(8,), lstm_units=8, embedding_dim=4)
        if builder == "rn_clevr_pixels":
            kwargs.update(image_size=32, conv_layers=2, conv_filters=4)
        assert padded_id_inputs(get_builder(builder)(vocab, **kwargs)) == ["question"]
        assert padded_id_inputs(get_builder(builder)(vocab, question_length=50, **kwargs)) == []
    ids = keras.Input((None,), dtype="int32", name="question")
    unmasked = keras.Model({"question": ids}, keras.layers.LSTM(4)(keras.layers.Embedding(10, 3)(ids)))
    assert padded_id_inputs(unmasked) == []  # trailing zeros would change its answers
