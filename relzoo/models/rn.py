"""Relation Network (Santoro et al. 2017) model builders: state descriptions, pixels, the CNN+MLP
baseline, and the CLEVR models that read the question's tokens with an LSTM.

Every builder returns a functional `keras.Model` with named inputs and one output,
`answer_logits` `(batch, num_answers)`. Image inputs are float `(batch, s, s, 3)` in [0, 1];
CLEVR questions are int32 token ids `(batch, T)`, 0 (<NULL>) for padding, of any length T when
`question_length` is None (the data sets and `relzoo.encode_questions` pad to 50; the trainer
cuts each batch after its longest question, which changes no answer, since id 0 is masked).
"""

import keras

from relzoo.layers import DetectedObjects, FeatureMapObjects, PairwiseRelation
from relzoo.models.blocks import answer_head, conv_stack, question_lstm


def _relation(objects, question, g_units, aggregation, chunk_size=None, mask=None):
    """`PairwiseRelation` over the objects, conditioned on the question: `(batch, g_units[-1])`."""
    layer = PairwiseRelation(g_units=g_units, aggregation=aggregation, chunk_size=chunk_size, name="relation")
    return layer(objects, question, mask=mask)


def _image_objects(image, conv_layers, conv_filters, conv_norm):
    """The conv stack's last map as objects, one per cell tagged with its coordinates `(batch, cells, d + 2)`."""
    return FeatureMapObjects(name="objects")(conv_stack(image, conv_layers, conv_filters, norm=conv_norm))


def _token_question(question_length, vocab_size, embedding_dim, lstm_units):
    question = keras.Input((question_length,), dtype="int32", name="question")
    return question, question_lstm(question, vocab_size, embedding_dim, lstm_units)


def build_rn_state(num_objects, object_dim, question_dim, num_answers, g_units=(256, 256, 256, 256),
                   f_units=(256, 256), dropout=0.5, aggregation="sum", use_mask=False, chunk_size=None,
                   name="rn_state"):
    """An RN over a set of object vectors (state descriptions), conditioned on a question vector.

    Inputs: `objects` `(batch, num_objects, object_dim)`, `question` `(batch, question_dim)` and,
    with `use_mask=True`, `object_mask` `(batch, num_objects)` (bool, False for padding).
    """
    inputs = {"objects": keras.Input((num_objects, object_dim), name="objects"),
              "question": keras.Input((question_dim,), name="question")}
    if use_mask:
        inputs["object_mask"] = keras.Input((num_objects,), dtype="bool", name="object_mask")
    relation = _relation(inputs["objects"], inputs["question"], g_units, aggregation, chunk_size,
                         inputs.get("object_mask"))
    return keras.Model(inputs, answer_head(relation, f_units, dropout, num_answers), name=name)


def build_rn_pixels(image_size=75, question_dim=18, num_answers=10, conv_layers=4, conv_filters=24,
                    g_units=(256, 256, 256, 256), f_units=(256, 256), dropout=0.5, aggregation="sum",
                    chunk_size=None, conv_norm="batch", name="rn_pixels"):
    """The RN of the paper's Sort-of-CLEVR pixel model.

    `image` `(batch, s, s, 3)` -> conv stack -> `FeatureMapObjects` -> `PairwiseRelation`
    conditioned on `question` `(batch, question_dim)` -> f. With 75x75 images and 4 stride-2
    convs the last map is 5x5: 25 objects, 625 pairs.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question = keras.Input((question_dim,), name="question")
    objects = _image_objects(image, conv_layers, conv_filters, conv_norm)
    relation = _relation(objects, question, g_units, aggregation, chunk_size)
    return keras.Model({"image": image, "question": question},
                       answer_head(relation, f_units, dropout, num_answers), name=name)


def build_cnn_mlp(image_size=75, question_dim=18, num_answers=10, conv_layers=4, conv_filters=24,
                  f_units=(256, 256), dropout=0.5, conv_norm="batch", name="cnn_mlp"):
    """The paper's CNN+MLP baseline: the same conv stack, flattened, joined with the question, an MLP.

    No relation module: the same budget as `build_rn_pixels` shows what pairs add.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question = keras.Input((question_dim,), name="question")
    x = keras.layers.Flatten(name="flatten")(conv_stack(image, conv_layers, conv_filters, norm=conv_norm))
    x = keras.layers.Concatenate(name="join_question")([x, question])
    return keras.Model({"image": image, "question": question}, answer_head(x, f_units, dropout, num_answers),
                       name=name)


def build_rn_clevr_pixels(vocab_size, image_size=128, question_length=None, num_answers=28, embedding_dim=32,
                          lstm_units=128, conv_layers=4, conv_filters=24, g_units=(256, 256, 256, 256),
                          f_units=(256, 256), dropout=0.5, aggregation="sum", chunk_size=None, conv_norm="batch",
                          name="rn_clevr"):
    """The RN paper's CLEVR pixel model.

    `image` `(batch, s, s, 3)` -> `conv_layers` convs -> `FeatureMapObjects` -> `PairwiseRelation`
    conditioned on the question LSTM's state -> f. With 128x128 images, 4 convs give an 8x8 map
    (64 objects, 4,096 pairs); 5 give 4x4 (16 objects, 256 pairs), a 16x cheaper relation module.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question, q = _token_question(question_length, vocab_size, embedding_dim, lstm_units)
    objects = _image_objects(image, conv_layers, conv_filters, conv_norm)
    relation = _relation(objects, q, g_units, aggregation, chunk_size)
    return keras.Model({"image": image, "question": question},
                       answer_head(relation, f_units, dropout, num_answers), name=name)


def build_rn_clevr_state(vocab_size, num_objects=10, object_dim=18, question_length=None, num_answers=28,
                         embedding_dim=32, lstm_units=256, g_units=(512, 512, 512, 512), f_units=(512, 1024),
                         dropout=0.5, aggregation="sum", name="rn_clevr_state"):
    """The RN paper's CLEVR state-description model.

    `objects` `(batch, num_objects, object_dim)` with `object_mask` `(batch, num_objects)` (False
    for padding; pairs with a padded object are left out; `num_objects=None` takes any number,
    with the same weights) -> `PairwiseRelation` conditioned on the question LSTM's state -> f.
    """
    objects = keras.Input((num_objects, object_dim), name="objects")
    mask = keras.Input((num_objects,), dtype="bool", name="object_mask")
    question, q = _token_question(question_length, vocab_size, embedding_dim, lstm_units)
    relation = _relation(objects, q, g_units, aggregation, mask=mask)
    return keras.Model({"objects": objects, "object_mask": mask, "question": question},
                       answer_head(relation, f_units, dropout, num_answers), name=name)


CLEVR_GROUPS = (8, 3, 2, 2)  # colours, shapes, materials, sizes: the state description's one-hot blocks
CLEVR_VALUES = 3  # x, y, z before them


def _cell_stem(image, conv_layers, conv_filters, cell_convs, cell_hidden):
    """Image -> per-cell logits `(batch, h, w, 1 + 3 + 15)`: objectness, 3D position, attribute logits.

    `conv_layers` stride-2 convs (a 16x16 map for 3 on 128x128 images), `cell_convs` stride-1 convs
    that widen each cell's view, then per cell (with its map coordinates) a hidden ReLU layer and
    the readout."""
    x = conv_stack(image, conv_layers, conv_filters)
    for k in range(cell_convs):
        x = keras.layers.Conv2D(conv_filters, 3, padding="same", name=f"cell_conv_{k}")(x)
        x = keras.layers.BatchNormalization(name=f"cell_conv_{k}_bn")(x)
        x = keras.layers.ReLU(name=f"cell_conv_{k}_relu")(x)
    x = FeatureMapObjects(name="cell_features")(x)  # (batch, h*w, filters + 2)
    x = keras.layers.Dense(cell_hidden, activation="relu", name="cell_hidden")(x)
    return keras.layers.Dense(1 + CLEVR_VALUES + sum(CLEVR_GROUPS), dtype="float32", name="cells")(x)


def build_rn_clevr_detect(vocab_size, image_size=128, question_length=None, num_answers=28, embedding_dim=32,
                          lstm_units=256, conv_layers=3, conv_filters=64, cell_convs=2, cell_hidden=128,
                          max_objects=10, g_units=(512, 512, 512, 512), f_units=(512, 1024), dropout=0.5,
                          aggregation="sum", name="rn_clevr"):
    """A CLEVR pixel RN whose objects are the image cells that hold one, read out as state descriptions.

    `image` `(batch, s, s, 3)` -> convs -> per-cell logits (`cells`: objectness, x, y, z, and
    colour / shape / material / size logits) -> `DetectedObjects` keeps the `max_objects` cells
    with the highest objectness as rows `[x, y, z, colour probabilities, ...]` with a mask ->
    `PairwiseRelation` conditioned on the question LSTM's state -> f. The rows have the form of
    `build_rn_clevr_state`'s objects, so its relation, LSTM and f (same sizes) read them as they
    are. The `cells` layer is trained against the training scenes' annotations
    (`relzoo.datasets.clevr.cells`) beside the answers.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question, q = _token_question(question_length, vocab_size, embedding_dim, lstm_units)
    cells = _cell_stem(image, conv_layers, conv_filters, cell_convs, cell_hidden)
    objects, mask = DetectedObjects(max_objects, groups=CLEVR_GROUPS, num_values=CLEVR_VALUES,
                                    name="detected_objects")(cells)
    relation = _relation(objects, q, g_units, aggregation, mask=mask)
    return keras.Model({"image": image, "question": question},
                       answer_head(relation, f_units, dropout, num_answers), name=name)


__all__ = ["build_cnn_mlp", "build_rn_clevr_detect", "build_rn_clevr_pixels", "build_rn_clevr_state", "build_rn_pixels", "build_rn_state"]
