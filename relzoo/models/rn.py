"""Relation Network (Santoro et al. 2017) model builders."""

import keras

from relzoo.layers import PairwiseRelation


def _readout(x, f_units, dropout, num_answers):
    """The RN paper's f: dense ReLU layers, dropout after the last one, answer logits.

    f runs in float32 under any policy: it is cheap (once per question, not per pair) and
    its input, a sum over many pairs, needs float32's precision (see `PairwiseRelation`);
    the logits are float32 for a stable softmax and loss."""
    for k, units in enumerate(f_units):
        x = keras.layers.Dense(units, activation="relu", dtype="float32", name=f"f_{k}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, dtype="float32", name="f_dropout")(x)
    return keras.layers.Dense(num_answers, dtype="float32", name="answer_logits")(x)


def build_rn_state(
    num_objects,
    object_dim,
    question_dim,
    num_answers,
    g_units=(256, 256, 256, 256),
    f_units=(256, 256),
    dropout=0.5,
    aggregation="sum",
    use_mask=False,
    chunk_size=None,
    name="rn_state",
):
    """An RN over a set of object vectors (state descriptions), conditioned on a question vector.

    Inputs: `objects` `(batch, num_objects, object_dim)`, `question`
    `(batch, question_dim)` and, with `use_mask=True`, `mask` `(batch, num_objects)`
    (bool, False for padding). Output: `answer_logits` `(batch, num_answers)`.
    """
    objects = keras.Input((num_objects, object_dim), name="objects")
    question = keras.Input((question_dim,), name="question")
    inputs = {"objects": objects, "question": question}
    mask = None
    if use_mask:
        mask = keras.Input((num_objects,), dtype="bool", name="mask")
        inputs["mask"] = mask
    relation = PairwiseRelation(g_units=g_units, aggregation=aggregation, chunk_size=chunk_size, name="relation")(
        objects, question, mask=mask
    )
    logits = _readout(relation, f_units, dropout, num_answers)
    return keras.Model(inputs, logits, name=name)


CONV_NORMS = ("batch", "none")


def _conv_stack(x, conv_layers, filters, prefix="conv", norm="batch"):
    """The RN paper's image encoder: conv 3x3 stride 2 (same padding), batch norm, ReLU.

    `norm="none"` leaves out the batch norm.
    """
    if norm not in CONV_NORMS:
        raise ValueError(f"conv_norm must be one of {CONV_NORMS}, got {norm!r}.")
    for k in range(conv_layers):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"{prefix}_{k}")(x)
        if norm == "batch":
            x = keras.layers.BatchNormalization(name=f"{prefix}_{k}_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_{k}_relu")(x)
    return x


def build_rn_pixels(
    image_size=75,
    question_dim=18,
    num_answers=10,
    conv_layers=4,
    conv_filters=24,
    g_units=(256, 256, 256, 256),
    f_units=(256, 256),
    dropout=0.5,
    aggregation="sum",
    chunk_size=None,
    conv_norm="batch",
    name="rn_pixels",
):
    """The RN of the paper's Sort-of-CLEVR / CLEVR pixel models.

    `image` `(batch, s, s, 3)` float in [0, 1] -> conv stack -> `FeatureMapObjects`
    (one object per cell of the last map, tagged with its coordinates) ->
    `PairwiseRelation` conditioned on `question` `(batch, question_dim)` -> f ->
    `answer_logits` `(batch, num_answers)`. With 75x75 images and 4 stride-2
    convs the last map is 5x5: 25 objects, 625 pairs.
    """
    from relzoo.layers import FeatureMapObjects

    image = keras.Input((image_size, image_size, 3), name="image")
    question = keras.Input((question_dim,), name="question")
    x = _conv_stack(image, conv_layers, conv_filters, norm=conv_norm)
    objects = FeatureMapObjects(name="objects")(x)
    relation = PairwiseRelation(g_units=g_units, aggregation=aggregation, chunk_size=chunk_size, name="relation")(
        objects, question
    )
    logits = _readout(relation, f_units, dropout, num_answers)
    return keras.Model({"image": image, "question": question}, logits, name=name)


def build_cnn_mlp(
    image_size=75,
    question_dim=18,
    num_answers=10,
    conv_layers=4,
    conv_filters=24,
    f_units=(256, 256),
    dropout=0.5,
    conv_norm="batch",
    name="cnn_mlp",
):
    """The paper's CNN+MLP baseline: the same conv stack, flattened, joined with the question, an MLP.

    No relation module: the same budget as `build_rn_pixels` shows what pairs add.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question = keras.Input((question_dim,), name="question")
    x = _conv_stack(image, conv_layers, conv_filters, norm=conv_norm)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Concatenate(name="join_question")([x, question])
    logits = _readout(x, f_units, dropout, num_answers)
    return keras.Model({"image": image, "question": question}, logits, name=name)
