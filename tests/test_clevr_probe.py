"""benchmarks.clevr_probe: the object table, the feature gathering and the linear probe."""

import keras
import numpy as np

from benchmarks import clevr_probe as P
from relzoo.datasets.clevr import scenes as S
from relzoo.models.rn import build_rn_clevr_pixels

SPEC = {"name": "clevr_world", "seed": 0, "validation_size": 1500, "test_size": 1500}


def test_object_table_has_one_row_per_object_with_fractions_and_attribute_indices():
    scenes = S.generate_scenes(5, seed=0, split="validation")
    table = P.object_table(scenes)
    assert len(table) == sum(len(s["objects"]) for s in scenes)
    assert ((table[:, 1:3] >= 0) & (table[:, 1:3] < 1)).all()
    first = scenes[0]["objects"][0]
    assert table[0, 0] == 0
    assert np.isclose(table[0, 1], first["pixel_coords"][1] / 320) and np.isclose(table[0, 2], first["pixel_coords"][0] / 480)
    assert list(table[0, 3:]) == [S.COLORS.index(first["color"]), S.SHAPES.index(first["shape"]),
                                  S.MATERIALS.index(first["material"]), S.SIZES.index(first["size"])]


def test_object_features_reads_the_cell_under_each_object():
    # a "conv layer" that is the image itself (8x8, one value per pixel and channel)
    image = keras.Input((8, 8, 3), name="image")
    model = keras.Model(image, keras.layers.Activation("linear", name="conv_0_relu")(image))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    table = np.array([[0, 0.0, 0.0, 1, 0, 0, 0], [2, 0.99, 0.5, 2, 1, 1, 1], [1, 0.3, 0.74, 0, 2, 0, 1]])
    got = P.object_features(model, ["conv_0_relu"], images, table, batch_size=2)["conv_0_relu"]
    want = np.stack([images[0, 0, 0], images[2, 7, 4], images[1, 2, 5]]).astype(np.float32) / 255
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_linear_probe_reads_an_encoded_label_and_nothing_from_a_constant():
    rng = np.random.default_rng(0)
    y_fit, y_score = rng.integers(0, 4, 400), rng.integers(0, 4, 200)
    noise = lambda n: rng.normal(0, 0.1, (n, 6))  # noqa: E731
    encode = lambda y, n: np.concatenate([np.eye(4)[y], noise(n)], axis=1)  # noqa: E731
    assert P.linear_probe(encode(y_fit, 400), y_fit, encode(y_score, 200), y_score, 4, steps=400) == 1.0
    constant = P.linear_probe(np.ones((400, 3)), y_fit, np.ones((200, 3)), y_score, 4, steps=50)
    # every answer is one class: the share of that class among the scored labels, at most the commonest
    assert constant <= np.bincount(y_score).max() / 200 + 1e-9
    assert constant in {np.mean(y_score == k) for k in range(4)}


def test_probe_layers_on_a_tiny_model_and_split():
    fit = P.split_objects(SPEC, "validation", num_scenes=4, image_size=32)
    score = P.split_objects(SPEC, "test", num_scenes=4, image_size=32)
    assert fit[0].shape == (4, 32, 32, 3) and fit[0].dtype == np.uint8
    model = build_rn_clevr_pixels(vocab_size=90, image_size=32, conv_layers=2, conv_filters=4, g_units=(8,),
                                  f_units=(8,), lstm_units=8, embedding_dim=4)
    assert P.conv_layer_names(model) == ["conv_0_relu", "conv_1_relu"]
    results = P.probe_layers(model, fit, score, steps=2)
    assert set(results) == {"conv_0_relu", "conv_1_relu"}
    for row in results.values():
        assert set(row) == set(P.ATTRIBUTES) and all(0.0 <= v <= 1.0 for v in row.values())
    chance = P.majority_share(score[1])
    text = P.format_table({"trained": results, "random": results}, chance)
    assert text.count("conv_1_relu") == 2 and "(commonest value)" in text


def test_detected_object_features_are_the_rows_the_relation_sees():
    from relzoo.layers import DetectedObjects

    # a 4x4 "cells" map read straight off the image: objectness = red channel, the rest from green
    image = keras.Input((4, 4, 3), name="image")
    conv = keras.layers.Conv2D(19, 1, use_bias=False, name="readout")
    x = keras.layers.Reshape((16, 19), name="cells")(conv(image))
    rows, mask = DetectedObjects(2, groups=(8, 3, 2, 2), num_values=3, threshold=0.5, name="detected_objects")(x)
    model = keras.Model(image, keras.layers.Flatten()(rows))
    kernel = np.zeros((1, 1, 3, 19), np.float32)
    kernel[0, 0, 0, 0] = 1.0  # objectness
    kernel[0, 0, 1, 1:] = np.arange(1, 19)  # values and logits scale with green
    conv.set_weights([kernel])
    images = np.zeros((1, 4, 4, 3), np.uint8)
    images[0, 1, 2] = (255, 100, 0)  # an object at row 1, column 2
    images[0, 3, 0] = (200, 50, 0)  # one at row 3, column 0
    table = np.array([[0, 0.3, 0.6, 0, 0, 0, 0], [0, 0.9, 0.1, 0, 0, 0, 0], [0, 0.0, 0.0, 0, 0, 0, 0]])
    got = P.detected_object_features(model, images, table)
    want = np.asarray(DetectedObjects(2, groups=(8, 3, 2, 2), num_values=3, threshold=0.5)(
        conv(images.astype(np.float32) / 255).numpy().reshape(1, 16, 19))[0])[0]
    np.testing.assert_allclose(got[:2], want, rtol=1e-5)  # kept in that order: red 255 before 200
    assert not got[2].any()  # its cell was not kept: the relation does not see it
    found = P.detection_summary(model, images, table)  # 2 of the 3 objects kept, both right
    assert found == {"recall": 2 / 3, "precision": 1.0, "exact_count": 0.0}
