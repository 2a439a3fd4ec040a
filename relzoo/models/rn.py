"""Relation Network (Santoro et al. 2017) model builders."""

import keras

from relzoo.layers import PairwiseRelation


def _readout(x, f_units, dropout, num_answers):
    """The RN paper's f: dense ReLU layers, dropout after the last one, answer logits."""
    for k, units in enumerate(f_units):
        x = keras.layers.Dense(units, activation="relu", name=f"f_{k}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="f_dropout")(x)
    return keras.layers.Dense(num_answers, name="answer_logits")(x)


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
