"""train.cell_loss: the per-cell loss, the twin that adds it, and the settings around it."""

import json

import numpy as np
import pytest

import keras
from relzoo.datasets.examples import Examples
from relzoo.models import build_rn_clevr_detect
from training import cell_loss as C
from training.errors import RecipeError
from training.scene_batches import SLOT, SceneBatches, scene_grouped_model
from training.settings import TrainSettings


def _tiny(seed=0):
    keras.utils.set_random_seed(seed)
    return build_rn_clevr_detect(12, image_size=8, conv_layers=1, conv_filters=4, cell_convs=1, cell_hidden=8,
                                 lstm_units=8, embedding_dim=4, max_objects=3, g_units=(8, 8), f_units=(8,),
                                 dropout=0.0)


def _examples(num_scenes=4, seed=0):
    rng = np.random.default_rng(seed)
    scene_index = np.repeat(np.arange(num_scenes), 3)
    question = rng.integers(1, 12, (len(scene_index), 6)).astype("int32")
    return Examples(inputs={"question": question}, answers=rng.integers(0, 28, len(scene_index)),
                    scenes={"image": rng.integers(0, 256, (num_scenes, 8, 8, 3), dtype=np.uint8)},
                    scene_index=scene_index, scale={"image": 1 / 255})


def _targets(num_scenes, cells=16, seed=1):
    """Random per-cell targets `(S, cells, 19)`: a few present cells with one-hot attributes."""
    rng = np.random.default_rng(seed)
    out = np.zeros((num_scenes, cells, 19), np.float32)
    for s in range(num_scenes):
        for k in rng.choice(cells, 3, replace=False):
            out[s, k, 0], out[s, k, 1:4] = 1.0, rng.uniform(-1, 1, 3)
            start = 4
            for size in C.CLEVR_READOUT.groups:
                out[s, k, start + rng.integers(size)] = 1.0
                start += size
    return out


def _numpy_slotted_loss(targets, logits, readout):
    """The loss of a slotted readout: the one-slot loss over every (cell, slot) of a scene."""
    k = len(targets)
    t, z = targets.reshape(k, -1, readout.slot_width), logits.reshape(k, -1, readout.slot_width)

    def log_softmax(v):
        v = v - v.max(-1, keepdims=True)
        return v - np.log(np.exp(v).sum(-1, keepdims=True))

    present = t[..., 0]
    p = 1 / (1 + np.exp(-z[..., 0]))
    bce = -(present * np.log(p) + (1 - present) * np.log(1 - p)).sum(-1)
    v = 1 + readout.values
    per = C.POSITION_WEIGHT * ((t[..., 1:v] - z[..., 1:v]) ** 2).sum(-1)
    for size in readout.groups:
        per += -(t[..., v:v + size] * log_softmax(z[..., v:v + size])).sum(-1)
        v += size
    return (bce + (per * present).sum(-1)) / np.maximum(present.sum(-1), 1)


def _numpy_loss(targets, logits):
    return _numpy_slotted_loss(targets, logits, C.CLEVR_READOUT)


def test_loss_matches_numpy():
    targets = _targets(3)
    logits = np.random.default_rng(2).normal(size=targets.shape).astype("float32")
    np.testing.assert_allclose(np.asarray(C.cell_loss(targets, logits)), _numpy_loss(targets, logits), rtol=1e-5)


def test_twin_adds_the_cell_loss_and_trains_the_stem():
    model = _tiny()
    twin = scene_grouped_model(model, ["image"], cell_loss=2.0)
    assert C.CELL_TARGETS in twin.input and {id(w) for w in twin.weights} == {id(w) for w in model.weights}
    examples = _examples()
    targets = _targets(4)
    batches = SceneBatches(examples, 2, cell_targets=lambda ids: targets[ids])
    x, y = batches[0]
    assert x[C.CELL_TARGETS].shape == (2, 16, 19)
    out = twin(x)  # the answers pass through unchanged; the loss is added
    np.testing.assert_allclose(np.asarray(out), np.asarray(model({"image": x["image"][x[SLOT]],
                                                                 "question": x["question"]})), rtol=1e-5, atol=1e-5)
    logits = keras.Model(model.input["image"], model.get_layer("cells").output)(x["image"])
    want = 2.0 * _numpy_loss(x[C.CELL_TARGETS], np.asarray(logits)).mean()
    np.testing.assert_allclose(float(twin.losses[0]), want, rtol=1e-4)
    before = model.get_layer("cells").get_weights()[0].copy()
    twin.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    twin.fit(batches.tf_dataset(), epochs=1, verbose=0)
    assert not np.allclose(before, model.get_layer("cells").get_weights()[0])


def test_slotted_loss_matches_numpy():
    from relzoo.datasets import sort_of_clevr

    readout = C.readout_of(sort_of_clevr)
    assert (readout.slots, readout.values, readout.groups, readout.width) == (6, 2, (2,), 30)
    spec = {"seed": 4, "test_size": 3}
    targets = sort_of_clevr.cell_annotations(spec, "test", 5)  # (3, 25, 30)
    logits = np.random.default_rng(5).normal(size=targets.shape).astype("float32")
    got = np.asarray(C.cell_loss(targets, logits, readout))
    np.testing.assert_allclose(got, _numpy_slotted_loss(targets, logits, readout), rtol=1e-5)
    assert C.readout_of(object()) == C.CLEVR_READOUT


def test_a_model_without_cells_gets_a_training_head():
    """rn_pixels has no `cells` layer: the twin puts a Dense head on the relation's objects."""
    from relzoo.datasets import sort_of_clevr
    from relzoo.models import build_rn_pixels

    keras.utils.set_random_seed(3)
    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    readout = C.readout_of(sort_of_clevr)
    twin = scene_grouped_model(model, ["image"], cell_loss=0.5, cell_readout=readout)
    head = twin.get_layer(C.HEAD)
    assert {id(w) for w in model.weights} < {id(w) for w in twin.weights}
    assert C.HEAD not in [layer.name for layer in model.layers]  # the published model has no head
    data = sort_of_clevr.generate_examples(2, seed=1, split="test")
    targets = sort_of_clevr.cell_annotations({"seed": 1, "test_size": 2}, "test", 5)
    x, _ = SceneBatches(data, 2, cell_targets=lambda ids: targets[ids])[0]
    twin(x)
    objects = keras.Model(model.input, model.get_layer("relation").input[0])(
        {"image": x["image"], "question": x["question"][:2]})  # (2, 25, d): the scenes' objects
    want = 0.5 * _numpy_slotted_loss(x[C.CELL_TARGETS], np.asarray(head(objects)), readout).mean()
    np.testing.assert_allclose(float(twin.losses[0]), want, rtol=1e-4)


def test_a_cells_layer_of_the_wrong_width_is_refused():
    from relzoo.datasets import sort_of_clevr

    with pytest.raises(ValueError, match=r"expected \(batch, cells, 30\) for the data's annotations"):
        scene_grouped_model(_tiny(), ["image"], cell_loss=1.0, cell_readout=C.readout_of(sort_of_clevr))


@pytest.mark.parametrize("table, match", [
    ({"cell_loss": 1.0}, "set train.feed = \"scenes\""),
    ({"cell_loss": 1.0, "feed": "scenes", "image_shift": 4}, "set train.image_shift and train.image_rotation to 0"),
    ({"init_layers": ["f_0"]}, "set train.init_from too"),
    ({"freeze": ["f_0", 3]}, "lists of layer names"),
    ({"cell_loss": -1.0}, "must be >= 0"),
    ({"cell_loss_grad": 0.5}, "set train.cell_loss > 0 too"),
    ({"cell_loss": 1.0, "feed": "scenes", "cell_loss_grad": 1.5}, "must be <= 1"),
])
def test_settings_refuse_what_cannot_work(table, match):
    with pytest.raises(RecipeError, match=match):
        TrainSettings.from_table(table)


def test_scene_targets_come_from_the_annotations(tmp_path, monkeypatch):
    from relzoo.datasets.clevr import dataset, scenes

    spec = {"name": "clevr_world", "seed": 0, "train_size": 5}
    cache = tmp_path / "cells.npz"
    targets = C.scene_cell_targets(dataset, spec, "train", 5, grid=16, cache=cache)(np.array([4, 0]))
    assert cache.is_file()
    monkeypatch.setattr(dataset, "split_scenes", None)  # the second time, from the cache alone
    again = C.scene_cell_targets(dataset, spec, "train", 5, grid=16, cache=cache)(np.array([4, 0]))
    np.testing.assert_array_equal(again, targets)
    monkeypatch.undo()
    generated = scenes.generate_scenes(5, 0, "train")
    assert targets.shape == (2, 256, 19)
    np.testing.assert_array_equal(targets[:, :, 0].sum(1), [len(generated[4]["objects"]),
                                                            len(generated[0]["objects"])])
    with pytest.raises(ValueError, match="has 6 scene arrays but 5 annotated scenes"):
        C.scene_cell_targets(dataset, spec, "train", 6, grid=16)


def test_scene_targets_from_a_modules_cell_annotations():
    from relzoo.datasets import sort_of_clevr

    spec = {"name": "sort_of_clevr", "seed": 2, "train_size": 4}
    targets = C.scene_cell_targets(sort_of_clevr, spec, "train", 4, grid=5)(np.array([3, 1]))
    np.testing.assert_array_equal(targets, sort_of_clevr.cell_annotations(spec, "train", 5)[[3, 1]])
    with pytest.raises(ValueError, match="has 5 scene arrays but 4 annotated scenes"):
        C.scene_cell_targets(sort_of_clevr, spec, "train", 5, grid=5)


def test_cell_loss_layer_config_round_trips():
    readout = C.Readout(6, 2, (2,))
    layer = C.CellLoss(2.0, readout, name="cell_loss")
    again = C.CellLoss.from_config(json.loads(json.dumps(layer.get_config())))
    assert again.readout == readout and again.weight == 2.0


@pytest.mark.parametrize("fraction", [0.0, 0.25, 1.0])
def test_gradient_scale_passes_values_and_a_fraction_of_the_gradient(fraction):
    import tensorflow as tf

    layer = C.GradientScale(fraction)
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 4)).astype("float32"))
    weights = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(y * weights)
    np.testing.assert_allclose(np.asarray(y), np.asarray(x))
    np.testing.assert_allclose(np.asarray(tape.gradient(total, x)), fraction * weights, rtol=1e-6)
    assert C.GradientScale.from_config(layer.get_config()).fraction == fraction


def test_with_no_gradient_to_the_model_only_the_head_learns():
    """`cell_loss_grad = 0`: a probe; the answers' loss is zero-weighted, so the model must not move."""
    from relzoo.datasets import sort_of_clevr
    from relzoo.models import build_rn_pixels

    keras.utils.set_random_seed(4)
    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    twin = scene_grouped_model(model, ["image"], cell_loss=1.0, cell_readout=C.readout_of(sort_of_clevr),
                               cell_loss_grad=0.0)
    data = sort_of_clevr.generate_examples(2, seed=1, split="test")
    targets = sort_of_clevr.cell_annotations({"seed": 1, "test_size": 2}, "test", 5)
    batches = SceneBatches(data, 2, cell_targets=lambda ids: targets[ids])
    before = [np.array(w) for w in model.trainable_weights]  # BatchNormalization's statistics still move
    head_before = twin.get_layer(C.HEAD).get_weights()[0].copy()
    twin.compile(keras.optimizers.SGD(0.1), lambda y, p: 0.0 * keras.ops.sum(p))
    twin.fit(batches.tf_dataset(), epochs=1, verbose=0)
    assert not np.allclose(head_before, twin.get_layer(C.HEAD).get_weights()[0])
    for old, new in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(old, new)


def test_the_cells_feed_trains_the_stem_alone():
    """`train.feed = "cells"`: a twin from the image to the cells, fit on the per-cell loss; the relation stays."""
    from training.cell_feed import CellBatches, CellLossFn, cell_model

    model = _tiny()
    twin = cell_model(model, ["image"])
    assert set(twin.input) == {"image"} and twin.output.shape[1:] == (16, 19)
    examples = _examples(num_scenes=4)
    targets = _targets(4)
    batches = CellBatches(examples, 3, lambda ids: targets[ids], seed=1, shuffle=True)
    assert len(batches) == 2 and [len(batches[i][0]["image"]) for i in range(2)] == [3, 1]
    x, y = batches[0]
    np.testing.assert_array_equal(y, targets[batches.scene_ids[batches.order[:3]]])
    loss = CellLossFn()
    np.testing.assert_allclose(float(loss(y, twin(x))), _numpy_loss(y, np.asarray(twin(x))).mean(), rtol=1e-4)
    relation = [np.array(w) for w in model.get_layer("relation").weights]
    stem = np.array(model.get_layer("cells").weights[0])
    twin.compile(keras.optimizers.Adam(1e-2), loss)
    twin.fit(batches.tf_dataset(), epochs=2, verbose=0)
    assert not np.allclose(stem, model.get_layer("cells").weights[0])
    for old, new in zip(relation, model.get_layer("relation").weights):
        np.testing.assert_array_equal(old, new)


def test_the_cells_feed_puts_a_head_on_a_model_without_cells():
    from relzoo.datasets import sort_of_clevr
    from relzoo.models import build_rn_pixels
    from training.cell_feed import cell_model

    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    twin = cell_model(model, ["image"], C.readout_of(sort_of_clevr))
    assert twin.output.shape[1:] == (25, 30) and C.HEAD in [layer.name for layer in twin.layers]
    with pytest.raises(RecipeError, match="has no input 'scene'"):
        cell_model(model, ["scene"], C.readout_of(sort_of_clevr))
