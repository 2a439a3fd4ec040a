"""The Relation Network's CLEVR models (Santoro et al. 2017): pixels and state descriptions,
both with an LSTM over the question's tokens.

Inputs follow the CLEVR features of `relzoo.datasets.clevr.features`: `image` float
`(batch, 128, 128, 3)` in [0, 1], or `objects` `(batch, 10, 18)` with `object_mask`
`(batch, 10)` (bool); `question` int32 `(batch, T)` token ids, 0 (<NULL>) for padding, T any
length (the data sets and `relzoo.encode_questions` pad to 50; the trainer cuts each batch
after its longest question, which saves LSTM steps and changes no answer, since id 0 is masked).
Output: `answer_logits` `(batch, 28)` over CLEVR's answers (`executor.ANSWERS`).
"""

import keras

from relzoo.layers import FeatureMapObjects, PairwiseRelation
from relzoo.models.rn import _conv_stack, _readout


def _question_encoder(question, vocab_size, embedding_dim, lstm_units):
    """Token ids `(batch, T)` -> the LSTM's last state `(batch, lstm_units)`; padding (id 0) is masked."""
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="word_embedding")(question)
    return keras.layers.LSTM(lstm_units, name="question_lstm")(x)


def build_rn_clevr_pixels(
    vocab_size,
    image_size=128,
    question_length=None,
    num_answers=28,
    embedding_dim=32,
    lstm_units=128,
    conv_layers=4,
    conv_filters=24,
    g_units=(256, 256, 256, 256),
    f_units=(256, 256),
    dropout=0.5,
    aggregation="sum",
    chunk_size=None,
    conv_norm="batch",
    name="rn_clevr",
):
    """The RN paper's CLEVR pixel model.

    `image` `(batch, s, s, 3)` -> `conv_layers` convs (3x3, stride 2, batch norm, ReLU) ->
    `FeatureMapObjects` (one object per cell, with its coordinates) -> `PairwiseRelation`
    conditioned on the question LSTM's state -> f -> `answer_logits` `(batch, num_answers)`.
    With 128x128 images, 4 convs give an 8x8 map (64 objects, 4,096 pairs); 5 give 4x4
    (16 objects, 256 pairs), a 16x cheaper relation module. `question` `(batch, T)`: token
    ids of any length T when `question_length` is None (the default), else exactly that many.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    question = keras.Input((question_length,), dtype="int32", name="question")
    q = _question_encoder(question, vocab_size, embedding_dim, lstm_units)
    x = _conv_stack(image, conv_layers, conv_filters, norm=conv_norm)
    objects = FeatureMapObjects(name="objects")(x)
    relation = PairwiseRelation(g_units=g_units, aggregation=aggregation, chunk_size=chunk_size, name="relation")(
        objects, q
    )
    logits = _readout(relation, f_units, dropout, num_answers)
    return keras.Model({"image": image, "question": question}, logits, name=name)


def build_rn_clevr_state(
    vocab_size,
    num_objects=10,
    object_dim=18,
    question_length=None,
    num_answers=28,
    embedding_dim=32,
    lstm_units=256,
    g_units=(512, 512, 512, 512),
    f_units=(512, 1024),
    dropout=0.5,
    aggregation="sum",
    name="rn_clevr_state",
):
    """The RN paper's CLEVR state-description model.

    `objects` `(batch, num_objects, object_dim)` with `object_mask` `(batch, num_objects)`
    (False for padding; pairs with a padded object are left out; `num_objects=None` takes any
    number, with the same weights) -> `PairwiseRelation`
    conditioned on the question LSTM's state -> f -> `answer_logits` `(batch, num_answers)`.
    `question` `(batch, T)`: token ids of any length T when `question_length` is None (the
    default), else exactly that many.
    """
    objects = keras.Input((num_objects, object_dim), name="objects")
    mask = keras.Input((num_objects,), dtype="bool", name="object_mask")
    question = keras.Input((question_length,), dtype="int32", name="question")
    q = _question_encoder(question, vocab_size, embedding_dim, lstm_units)
    relation = PairwiseRelation(g_units=g_units, aggregation=aggregation, name="relation")(objects, q, mask=mask)
    logits = _readout(relation, f_units, dropout, num_answers)
    return keras.Model({"objects": objects, "object_mask": mask, "question": question}, logits, name=name)
